"""Train a model on calibration recordings: the library behind ``edgestream train``.

::

    result = calibrate("dbconformer", "calib.xdf", "left,right", out="model.pt", window=4.0)
    result.metrics["validation"]["accuracy"]

Steps: load recordings → run the live pipeline's filters over them (same stage code) → cut
event-locked trials → Euclidean alignment fitted on all calibration trials (label-free) →
stratified train/validation split (chronological by default) → the family's recipe sizes the
model → :func:`edgestream.train.fit` (model selection and early stopping on the validation
split only; there is no test data here) → metrics on both splits → checkpoint with the
alignment state, classes and preprocessing in it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgestream.core.checks import check_number
from edgestream.core.errors import ConfigError
from edgestream.core.provenance import file_sha256
from edgestream.dsp import alignment
from edgestream.train.checkpoint import save_checkpoint
from edgestream.train.epochs import EpochSet, EventMap, make_epochs, preprocess, split_train_val
from edgestream.train.loop import TrainConfig, TrainResult, evaluate, fit
from edgestream.train.recipes import Recipe, TrialShape, get_recipe
from edgestream.train.recordings import load_recordings

log = logging.getLogger(__name__)


def preprocessing_specs(l_freq: float | None, h_freq: float | None, notch: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """Stage specs for the pipeline's filters: band-pass, or high-/low-pass when one edge is None."""
    specs: list[dict[str, Any]] = []
    if l_freq and h_freq:
        specs.append({"kind": "bandpass", "l_freq": float(l_freq), "h_freq": float(h_freq)})
    elif l_freq:
        specs.append({"kind": "highpass", "freq": float(l_freq)})
    elif h_freq:
        specs.append({"kind": "lowpass", "freq": float(h_freq)})
    if notch:
        specs.append({"kind": "notch", "freqs": [float(f) for f in notch]})
    return specs


def to_layout(X: np.ndarray, layout: str) -> np.ndarray:
    """Trials (N, C, T) in the layout the model takes ("BCT" as is, "BTC" transposed)."""
    return X if layout == "BCT" else np.ascontiguousarray(X.transpose(0, 2, 1))


def chance_level(y: np.ndarray, n_classes: int) -> float:
    """Accuracy of always predicting the most frequent class of ``y``."""
    return float(np.bincount(y, minlength=n_classes).max() / max(len(y), 1))


def fit_on_trials(
    recipe: Recipe,
    epochs: EpochSet,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    config: TrainConfig,
    *,
    window_s: float,
    model_args: Mapping[str, Any] | None = None,
) -> tuple[Any, str, dict[str, Any], TrainResult]:
    """Size the recipe's model for ``epochs`` and fit it; selection uses ``val_idx`` only."""
    from edgestream.models import create_model

    shape = TrialShape(len(epochs.ch_names), epochs.n_times, epochs.sfreq, window_s, len(epochs.classes), epochs.classes)
    name, model_config = recipe.model(shape, model_args or {})
    import torch

    torch.manual_seed(config.seed)  # weight initialisation is part of the seeded protocol
    model = create_model(name, **model_config)
    X = to_layout(epochs.X, recipe.layout)
    result = fit(model, (X[train_idx], epochs.y[train_idx]), (X[val_idx], epochs.y[val_idx]), config)
    return model, name, model_config, result


def split_metrics(model: Any, recipe: Recipe, epochs: EpochSet, index: np.ndarray) -> dict[str, Any]:
    metrics = evaluate(model, (to_layout(epochs.X[index], recipe.layout), epochs.y[index]), n_classes=len(epochs.classes))
    metrics["chance"] = chance_level(epochs.y[index], len(epochs.classes))
    return metrics


@dataclasses.dataclass
class CalibrationResult:
    model: Any  # trained torch module (eval mode, best validation epoch)
    model_name: str  # registered name it was created with
    config: dict[str, Any]  # constructor overrides (manifest "config")
    metrics: dict[str, Any]  # {"train": {...}, "validation": {...}, "best_epoch", ...}
    epochs: EpochSet  # aligned trials used (train and validation)
    train_idx: np.ndarray
    val_idx: np.ndarray
    alignment: alignment.AlignmentState | None
    path: Path | None  # checkpoint written, if any


def calibrate(
    family: str,
    data: str | Path | Sequence[str | Path],
    events: str | Sequence[str],
    out: str | Path | None = None,
    *,
    window: float | None = None,
    tmin: float = 0.0,
    l_freq: float | None = None,
    h_freq: float | None = None,
    notch: Sequence[float] | None = None,
    align: bool | None = None,
    val_fraction: float = 0.2,
    split: str = "chronological",
    seed: int = 0,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    patience: int | None = None,
    include: str | None = None,
    stream: str | None = None,
    marker_stream: str | None = None,
    model_args: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> CalibrationResult:
    """Train ``family`` on the recordings in ``data``; write a checkpoint to ``out`` if given.

    ``None`` options take the recipe's defaults; ``l_freq=0`` / ``h_freq=0`` switch that filter
    edge off. Returns the trained model and its metrics on both splits.
    """
    recipe = get_recipe(family)
    if recipe.model is None:
        raise ConfigError(
            f"family must train on recordings for calibrate(); got {family!r}, which trains on labelled window datasets "
            f"({recipe.description}). Use `edgestream train {family} --data DIR` with a dataset directory."
        )
    window_s = check_number(window if window is not None else recipe.window_s, "window", low=0, low_inclusive=False)
    lo = recipe.l_freq if l_freq is None else (l_freq or None)
    hi = recipe.h_freq if h_freq is None else (h_freq or None)
    use_align = recipe.align if align is None else bool(align)
    event_map = EventMap.parse(events)
    specs = preprocessing_specs(lo, hi, notch)

    recordings = [preprocess(r, specs) for r in load_recordings(data, include, stream=stream, marker_stream=marker_stream)]
    trials = make_epochs(recordings, event_map, window_s, tmin=tmin)
    state = None
    if use_align:
        # Label-free, so fitting on every calibration trial (validation included) leaks no labels;
        # the same state seeds the live stage.
        state = alignment.fit(trials.X.transpose(0, 2, 1))
        aligned = alignment.transform(trials.X.transpose(0, 2, 1), state)  # (N, T, C)
        trials = dataclasses.replace(trials, X=np.ascontiguousarray(aligned.transpose(0, 2, 1)))
    train_idx, val_idx = split_train_val(trials, val_fraction, seed=seed, how=split)

    defaults = dict(recipe.train)
    overrides = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "patience": patience}
    train_config = TrainConfig(**(defaults | {k: v for k, v in overrides.items() if v is not None}
                                  | {"seed": seed, "progress": progress}))
    model, name, model_config, result = fit_on_trials(recipe, trials, train_idx, val_idx, train_config,
                                                      window_s=window_s, model_args=model_args)
    metrics = {
        "validation": split_metrics(model, recipe, trials, val_idx),
        "train": split_metrics(model, recipe, trials, train_idx),
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "seconds": result.seconds,
        "selection": f"best validation accuracy ({split} {val_fraction:g} split, stratified by class)",
    }
    path = None
    if out is not None:
        manifest_data = {
            "sources": [{"path": s, "sha256": file_sha256(s)} for s in trials.sources],
            "classes": list(trials.classes),
            "events": event_map.describe(),
            "counts": trials.counts(),
            "n_train": int(len(train_idx)),
            "n_val": int(len(val_idx)),
            "dropped_events": trials.dropped,
            "sfreq": trials.sfreq,
            "ch_names": list(trials.ch_names),
            # per channel, so a model stage can refuse a stream in other units (V vs µV: 1e6 apart)
            "units": list(trials.units),
            "window_s": window_s,
            "n_times": trials.n_times,
            "tmin": tmin,
            "preprocessing": specs,
            "align": use_align,
            "split": split,
            "val_fraction": val_fraction,
            "train_config": dataclasses.asdict(train_config),
            "recipe": recipe.family,
        }
        extra: dict[str, Any] = {"classes": list(trials.classes), "preprocessing": specs,
                                 "window": {"seconds": window_s, "samples": trials.n_times}, "ch_names": list(trials.ch_names)}
        if state is not None:
            extra[alignment.EXTRA_KEY] = alignment.alignment_to_extra(state, trials.ch_names)
        path = save_checkpoint(out, model, name, model_config, data=manifest_data, metrics=metrics, extra=extra,
                               notes=f"edgestream train {family}")
    return CalibrationResult(model, name, model_config, metrics, trials, train_idx, val_idx, state, path)
