"""Training recipes: how ``edgestream train FAMILY`` sizes and trains one model family.

A recipe holds a family's defaults (window, band, alignment, optimiser settings) and a
function that sizes a registered model from the trials it will be trained on. Families plug
in by adding a module to this package that registers a recipe — the CLI and the calibration
code never branch on family names::

    @RECIPES.register("dbconformer")
    def dbconformer_recipe() -> Recipe:
        return Recipe(family="dbconformer", model=size_dbconformer, train={"lr": 1e-3, "epochs": 200})

Families trained on a labelled window dataset that carries its own train/test split (e.g. a UEA
``.ts`` directory) instead of event-locked recordings give ``train_dataset`` (and may leave
``model`` unset); ``edgestream train`` then hands the data directory to it and prints the
:class:`DatasetReport` it returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from edgestream.core.registry import Registry

if TYPE_CHECKING:
    from pathlib import Path

RECIPES: Registry[Recipe] = Registry("training recipe", packages=("edgestream.train.recipes",))


@dataclasses.dataclass(frozen=True)
class TrialShape:
    """What a recipe knows about the trials when it sizes a model."""

    n_channels: int  # C
    n_times: int  # T, samples per trial
    sfreq: float  # Hz
    window_s: float  # seconds per trial
    n_classes: int
    classes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One family's training defaults and model sizing."""

    family: str  # model family tag (``register_model(family=...)``)
    # (trial shape, user overrides) -> (registered model name, constructor config saved in the checkpoint);
    # None: the family does not train on recordings (see train_dataset)
    model: Callable[[TrialShape, Mapping[str, Any]], tuple[str, dict[str, Any]]] | None = None
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # TrainConfig defaults (lr, epochs, ...)
    window_s: float = 4.0  # trial / live window length, seconds
    l_freq: float | None = 8.0  # band-pass edges in Hz (None: no filter on that side)
    h_freq: float | None = 30.0
    align: bool = True  # Euclidean alignment before the model
    layout: str = "BCT"  # model input layout: "BCT" (window models) or "BTC" (streaming models)
    description: str = ""
    # Dataset training (keyword arguments: data, out, epochs, lr, batch_size, patience, val_fraction, seed,
    # model_args, progress) -> DatasetReport; None: recordings only
    train_dataset: Callable[..., DatasetReport] | None = None


@dataclasses.dataclass
class DatasetReport:
    """What a dataset recipe reports back to ``edgestream train``."""

    model_name: str  # registered variant trained
    config: dict[str, Any]  # constructor config saved in the checkpoint
    summary: list[str]  # lines describing the data and what was derived from it
    metrics: dict[str, dict[str, Any]]  # split name ("validation", "test") -> classification metrics
    classes: tuple[str, ...]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    seconds: float  # training wall time
    path: Path | None  # checkpoint written


def get_recipe(family: str) -> Recipe:
    """The registered recipe of ``family`` (unknown names list the known ones)."""
    return RECIPES.create(family)


def recipe_names() -> list[str]:
    return RECIPES.names()
