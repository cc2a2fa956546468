"""DBConformer training recipe (MODELS.md §2): 0.5-s patches, 8–30 Hz, Euclidean alignment, Adam 1e-3."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgestream.models.dbconformer import dbconformer_config
from edgestream.train.recipes import RECIPES, Recipe, TrialShape


def size_dbconformer(shape: TrialShape, overrides: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The generic ``dbconformer`` variant sized for the trials (``patch_s`` may be overridden)."""
    overrides = dict(overrides)
    patch_s = float(overrides.pop("patch_s", 0.5))
    config = dbconformer_config(shape.n_channels, shape.sfreq, shape.window_s, shape.n_classes, patch_s=patch_s, **overrides)
    return "dbconformer", config


@RECIPES.register("dbconformer")
def dbconformer_recipe() -> Recipe:
    """Reference protocol: Adam lr 1e-3, batch 32, cross entropy, up to 200 epochs (here with early stopping)."""
    return Recipe(
        family="dbconformer",
        model=size_dbconformer,
        train={"loss": "ce", "lr": 1e-3, "batch_size": 32, "epochs": 200, "patience": 40},
        window_s=4.0,
        l_freq=8.0,
        h_freq=30.0,
        align=True,
        layout="BCT",
        description="DBConformer (dual-branch conformer) on motor-imagery windows",
    )
