"""LMUFormer training recipe: trials as frame sequences (B, T, C), clip logits = mean of frame logits.

Paper protocol (MODELS.md §1): Adam lr 2.5e-3, betas (0.95, 0.999), BCE-with-logits on one-hot
targets. Trials are fed sample by sample (one frame per sample at the recording's rate), so a
live ``streaming_model`` stage must see the same rate (``decimate`` to match when the stream
is faster). ``model_args``: ``spiking`` (default true: the spiking EEG variant) and any
constructor override (``dim``, ``memory``, ``theta``, ``mode``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgestream.train.recipes import RECIPES, Recipe, TrialShape


def size_lmuformer(shape: TrialShape, overrides: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The compact EEG variant (spiking unless ``spiking: false``) for the trials' channels and classes."""
    overrides = dict(overrides)
    spiking = bool(overrides.pop("spiking", True))
    name = "spiking_lmuformer_eeg_s" if spiking else "lmuformer_eeg_s"
    return name, {"in_channels": shape.n_channels, "n_classes": shape.n_classes} | overrides


@RECIPES.register("lmuformer")
def lmuformer_recipe() -> Recipe:
    """Adam lr 2.5e-3, betas (0.95, 0.999), BCE on one-hot targets, early stopping on validation accuracy."""
    return Recipe(
        family="lmuformer",
        model=size_lmuformer,
        train={"loss": "bce", "lr": 2.5e-3, "betas": (0.95, 0.999), "batch_size": 32, "epochs": 100, "patience": 20},
        window_s=4.0,
        l_freq=8.0,
        h_freq=30.0,
        align=False,  # the streaming_model stage consumes the filtered stream directly
        layout="BTC",
        description="LMUFormer / spiking LMUFormer on frame sequences (one frame per sample)",
    )
