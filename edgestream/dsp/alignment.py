"""Euclidean alignment (He & Wu, 2019) of EEG windows, batch and online.

Every window ``X`` (C channels × T samples) is whitened by the mean spatial covariance of the
windows seen so far::

    cov(X) = X Xᵀ / T                      # uncentred: band-passed EEG has ~zero mean
    R̄      = mean_i cov(X_i)               # batch fit (calibration)
    X̃      = R̄^{-1/2} X
    R      ← (n·R + cov(X)) / (n + 1)      # online update, one window at a time

so the aligned windows of one session (subject) have identity mean covariance, which makes
recordings of different sessions and subjects comparable. The state is a value
(:class:`AlignmentState`: ``n`` and ``R``); it is fitted on calibration windows, saved in the
model checkpoint (:func:`alignment_to_extra`), restored by the ``euclidean_align`` stage, and
keeps adapting online.

The online stage updates first and then aligns, so after the n-th window its output equals
the batch alignment fitted on windows 1..n — the property the tests check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgestream.core.checks import check_number, check_type, fail
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import ConfigError, StateError, ValidationError
from edgestream.core.stage import STAGES, Stage

EXTRA_KEY = "alignment"  # key of the alignment state in a checkpoint's ``extra``


@dataclasses.dataclass(frozen=True)
class AlignmentState:
    """Running mean covariance of the windows seen so far."""

    n: int  # windows averaged into ``mean``
    mean: np.ndarray  # (C, C) float64, symmetric positive (semi-)definite; zeros when n == 0
    whiten: np.ndarray  # (C, C) float32, mean^{-1/2}; identity when n == 0


def covariance(x: np.ndarray) -> np.ndarray:
    """Spatial covariance ``Xᵀ X / T`` of one window ``x`` (n_times, n_channels), in float64."""
    x = np.asarray(x, dtype=np.float64)
    return x.T @ x / max(x.shape[0], 1)


def inverse_sqrt(mean: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """``mean^{-1/2}`` of a symmetric PSD matrix; eigenvalues below ``eps·max`` are clipped there.

    The clip keeps rank-deficient data (e.g. average-referenced EEG) finite instead of
    amplifying rounding noise without bound.
    """
    values, vectors = np.linalg.eigh((mean + mean.T) / 2)
    floor = eps * max(float(values.max()), np.finfo(np.float64).tiny)
    return (vectors * (1.0 / np.sqrt(np.maximum(values, floor)))) @ vectors.T


def empty_state(n_channels: int) -> AlignmentState:
    return AlignmentState(0, np.zeros((n_channels, n_channels)), np.eye(n_channels, dtype=np.float32))


def make_state(n: int, mean: np.ndarray, eps: float = 1e-9) -> AlignmentState:
    mean = np.asarray(mean, dtype=np.float64)
    whiten = inverse_sqrt(mean, eps).astype(np.float32) if n > 0 else np.eye(mean.shape[0], dtype=np.float32)
    return AlignmentState(int(n), mean, whiten)


def update(state: AlignmentState, window: np.ndarray, eps: float = 1e-9) -> AlignmentState:
    """Fold one window (n_times, n_channels) into the running mean: ``R ← (n·R + cov)/(n+1)``."""
    n = state.n
    return make_state(n + 1, (n * state.mean + covariance(window)) / (n + 1), eps)


def fit(windows: np.ndarray | Sequence[np.ndarray], eps: float = 1e-9) -> AlignmentState:
    """Batch fit on calibration windows, each (n_times, n_channels): ``R̄ = mean_i cov(X_i)``."""
    windows = list(windows)
    if not windows:
        fail("windows", "hold at least one calibration window", windows, "Pass the calibration epochs.")
    mean = np.mean([covariance(w) for w in windows], axis=0)
    return make_state(len(windows), mean, eps)


def transform(windows: np.ndarray, state: AlignmentState) -> np.ndarray:
    """Align windows ``(..., n_times, n_channels)``: each row becomes ``R^{-1/2} x`` (float32)."""
    return (np.asarray(windows, dtype=np.float32) @ state.whiten.T).astype(np.float32, copy=False)


def alignment_to_extra(state: AlignmentState, ch_names: Sequence[str]) -> dict[str, Any]:
    """Checkpoint-ready form (tensors and plain values only, for ``weights_only`` loading)."""
    import torch

    return {"kind": "euclidean", "n": int(state.n), "mean": torch.from_numpy(np.ascontiguousarray(state.mean)),
            "ch_names": [str(c) for c in ch_names]}


def alignment_from_extra(extra: Mapping[str, Any], where: str, eps: float = 1e-9) -> tuple[AlignmentState, list[str]]:
    """Inverse of :func:`alignment_to_extra`; ``where`` names the source in error messages."""
    blob = extra.get(EXTRA_KEY) if isinstance(extra, Mapping) else None
    if not isinstance(blob, Mapping) or blob.get("kind") != "euclidean":
        raise ConfigError(
            f"{where} must hold Euclidean-alignment state (extra['{EXTRA_KEY}']); it has none. Train with "
            "`edgestream train ... --align`, or leave the stage's checkpoint unset to align from live data only."
        )
    mean = np.asarray(blob["mean"].numpy() if hasattr(blob["mean"], "numpy") else blob["mean"], dtype=np.float64)
    return make_state(int(blob["n"]), mean, eps), list(blob.get("ch_names", []))


def _same_names(a: Sequence[str], b: Sequence[str]) -> bool:
    """Channel labels equal up to case and PhysioNet's trailing dots ("C3.." == "C3")."""
    def norm(names: Sequence[str]) -> list[str]:
        return [str(n).strip().rstrip(".").lower() for n in names]

    return norm(a) == norm(b)


@STAGES.register("euclidean_align")
class EuclideanAlign(Stage):
    """Whiten every window by the running mean covariance (online Euclidean alignment).

    Input: windowed stream (each chunk one window of ``info.window`` samples × C channels).
    Output: the aligned window, same shape and timestamps; ``desc["alignment"]`` says so.

    Parameters
    ----------
    checkpoint : str or None
        Edgestream checkpoint whose ``extra["alignment"]`` holds the calibration state (written by
        ``edgestream train --align``). ``None``: start from no windows and align from live data.
    adapt : bool
        Keep updating the mean covariance online with every window (``R ← (n·R + cov)/(n+1)``).
        ``False`` freezes the calibration (needs ``checkpoint``).
    min_windows : int
        Outputs are flagged ``warming`` until the mean holds at least this many windows.
    eps : float
        Relative eigenvalue floor of ``R^{-1/2}``.
    gap_policy : str
        ``"keep"`` (default): the covariance describes the session, not the last samples.
    """

    accepts_continuous = False
    accepts_windows = True

    def __init__(
        self,
        checkpoint: str | None = None,
        adapt: bool = True,
        min_windows: int = 10,
        eps: float = 1e-9,
        gap_policy: str = "keep",
    ) -> None:
        super().__init__(gap_policy=gap_policy)
        if checkpoint is not None:
            check_type(checkpoint, str, "checkpoint", "Give the path of a checkpoint written by `edgestream train`.")
        check_type(adapt, bool, "adapt")
        if not adapt and checkpoint is None:
            raise ConfigError(
                "adapt must be True when no checkpoint is given; got adapt=False with checkpoint=None. A frozen "
                "alignment needs calibration state: set checkpoint to a model trained with --align."
            )
        self.checkpoint = checkpoint
        self.adapt = adapt
        self.min_windows = check_number(min_windows, "min_windows", low=0, integer=True)
        self.eps = check_number(eps, "eps", low=0, low_inclusive=False)
        self._calibration: AlignmentState | None = None

    def _build(self, info: StreamInfo) -> StreamInfo:
        self._calibration = None
        if self.checkpoint is not None:
            # lazy: dsp sits below models (models use dsp.periods); only a stage given a checkpoint reaches up
            from edgestream.models.checkpoint import read_checkpoint

            state, names = alignment_from_extra(read_checkpoint(self.checkpoint).get("extra", {}),
                                                f"checkpoint {self.checkpoint!r}", self.eps)
            if state.mean.shape[0] != info.n_channels or (names and not _same_names(names, info.ch_names)):
                raise ValidationError(
                    f"euclidean_align calibration from {self.checkpoint!r} must match the stream's channels; it was "
                    f"fitted on {state.mean.shape[0]} channels {names[:4]}..., stream {info.name!r} has "
                    f"{info.n_channels} channels {list(info.ch_names[:4])}.... Train on a recording of this montage."
                )
            self._calibration = state
        desc = dict(info.desc) | {"alignment": {"kind": "euclidean", "calibrated": self._calibration is not None,
                                                "adapt": self.adapt}}
        return info.replace(desc=desc)

    def init_state(self) -> AlignmentState:
        info = self.require_built()
        return self._calibration if self._calibration is not None else empty_state(info.n_channels)

    def step(self, chunk: Chunk, state: AlignmentState) -> tuple[list[Chunk], AlignmentState]:
        if chunk.n_times == 0:
            return [], state
        if not isinstance(state, AlignmentState) or state.mean.shape[0] != chunk.info.n_channels:
            raise StateError(
                f"euclidean_align state must be an AlignmentState for {chunk.info.n_channels} channels; got "
                f"{type(state).__name__}. Create it with stage.init_state()."
            )
        if self.adapt:
            state = update(state, chunk.data, self.eps)
        out = Chunk(transform(chunk.data, state), chunk.timestamps, self.out_info or chunk.info, chunk.gap,
                    chunk.warming or state.n < self.min_windows)
        return [out], state
