"""Dominant periods from the FFT amplitude spectrum (MPTSNet's period extraction) and a
streaming period tracker stage.

The rule (``specs/MODELS.md`` §4), used everywhere in this module:

1. reduce the data to one length-``T`` series (dataset level: mean over samples and channels;
   tracker: mean over channels, or each channel alone);
2. amplitude spectrum ``A[f] = (2/T)·|Y[f]|`` at integer bins ``f = 0 … T//2 − 1``;
3. drop bins 0 (the mean) and 1 (one cycle per window: trend, not a period);
4. sort the remaining bins by amplitude, largest first (ties keep the lower bin first);
5. period ``p = round(T/f)`` (numpy rounding, half to even), skipping a period already taken,
   until ``k`` periods are found. Fewer than ``k`` distinct periods is an error, never a short
   result.

Amplitudes are in the units of the input signal (a pure sine of amplitude ``a`` on an exact bin
gives ``A = a``). Periods are integers in samples; the tracker can also publish them in seconds.

Per-window weights for a model (:func:`period_amplitudes`, torch, detached): the amplitude at the
bin nearest ``T/p`` (:func:`nearest_bins`) of the channel-mean of each window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from edgestream.core.checks import check_array, check_number, check_value, described, fail
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import DataError, ValidationError
from edgestream.core.stage import STAGES, Stage

if TYPE_CHECKING:
    import torch

FIRST_BIN = 2  # bins 0 (mean) and 1 (one cycle per window) are never periods


@dataclasses.dataclass(frozen=True)
class PeriodSet:
    """Top-k periods of a series, strongest first."""

    periods: tuple[int, ...]  # samples per cycle, round(T / bin)
    amplitudes: tuple[float, ...]  # (2/T)|Y| at the chosen bin, in signal units
    bins: tuple[int, ...]  # FFT bin (cycles per window) each period came from
    length: int  # T, the series length the spectrum was taken over


def amplitude_spectrum(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """One-sided amplitude spectrum ``(2/T)|FFT(x)|`` at bins ``0 … T//2 − 1`` along ``axis``.

    Parameters
    ----------
    x : ndarray, any shape; ``axis`` holds the ``T`` time samples.

    Returns
    -------
    ndarray (float64), ``x``'s shape with ``axis`` of length ``T//2``.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[axis]
    spec = np.abs(np.fft.rfft(x, axis=axis)) * (2.0 / n)
    return np.take(spec, np.arange(n // 2), axis=axis)


def top_periods(spectrum: np.ndarray, length: int, k: int) -> PeriodSet:
    """Apply the selection rule (module docstring, steps 3–5) to one amplitude spectrum.

    Parameters
    ----------
    spectrum : ndarray (length // 2,)
        Output of :func:`amplitude_spectrum` for one series.
    length : int
        ``T``, samples in the series.
    k : int
        Periods wanted.
    """
    spectrum = np.asarray(spectrum, dtype=np.float64)
    bins = np.arange(FIRST_BIN, spectrum.shape[0])
    # stable sort of -amplitude: equal amplitudes keep the lower bin (longer period) first
    order = bins[np.argsort(-spectrum[FIRST_BIN:], kind="stable")]
    periods: list[int] = []
    amps: list[float] = []
    chosen: list[int] = []
    for f in order:
        p = int(np.round(length / f))
        if p in periods:
            continue
        periods.append(p)
        amps.append(float(spectrum[f]))
        chosen.append(int(f))
        if len(periods) == k:
            return PeriodSet(tuple(periods), tuple(amps), tuple(chosen), int(length))
    fail(
        "k",
        f"be at most the number of distinct periods a length-{length} window offers ({len(periods)})",
        k,
        "Use a longer window or ask for fewer periods.",
    )


def extract_periods(x: Any, k: int = 5) -> PeriodSet:
    """Dataset-level period extraction (MPTSNet): mean over samples and channels, then the rule.

    Parameters
    ----------
    x : array (n_samples, n_channels, T)
        Training windows in the model layout ``(B, C, T)``, finite (replace NaN padding first,
        e.g. with 0 as MPTSNet does). A single window ``(C, T)`` or series ``(T,)`` is accepted.
    k : int
        Number of periods (MPTSNet uses 5).

    Returns
    -------
    PeriodSet with ``k`` periods (samples), strongest first.
    """
    k = check_number(k, "k", low=1, integer=True)
    arr = check_array(x, "x", dtype=np.float64)
    if arr.ndim not in (1, 2, 3):
        fail("x", "be (n_samples, n_channels, T), (n_channels, T) or (T,)", described(f"shape {arr.shape}"),
             error=DataError)
    length = arr.shape[-1]
    if length < 2 * (FIRST_BIN + 1):
        fail("x", f"have at least {2 * (FIRST_BIN + 1)} time samples (last axis)", described(f"T={length}"),
             "Periods need bins above 1; use longer windows.", DataError)
    series = arr.reshape(-1, length).mean(axis=0)  # mean over samples and channels -> (T,)
    return top_periods(amplitude_spectrum(series), length, k)


def default_periods(length: int, k: int = 5) -> tuple[int, ...]:
    """The periods the rule yields for a flat spectrum: lowest usable bins first.

    Used only to build a model without data (registry defaults); train with
    :func:`extract_periods` on the training set.
    """
    return top_periods(np.ones(length // 2), length, k).periods


def nearest_bins(length: int, periods: Sequence[int]) -> list[int]:
    """For each period, the bin in ``0 … length//2 − 1`` nearest to ``length / p`` (lower bin on ties)."""
    grid = np.arange(length // 2)
    return [int(np.argmin(np.abs(grid - length / p))) for p in periods]


def dft_basis(length: int, periods: Sequence[int], *, dtype: Any = None, device: Any = None) -> torch.Tensor:
    """Cosine and sine rows at each period's nearest bin: tensor (2, length, k), float64 by default.

    ``x @ basis[0]`` and ``x @ basis[1]`` are the real part and minus the imaginary part of the
    DFT at those bins; :func:`period_amplitudes` uses it so the computation is plain matmuls
    (exportable to ONNX, where FFT operators are not portable).
    """
    import torch

    bins = torch.tensor(nearest_bins(length, periods), dtype=torch.float64)
    t = torch.arange(length, dtype=torch.float64)
    angle = 2.0 * torch.pi * t[:, None] * bins[None, :] / length  # (T, k)
    basis = torch.stack([torch.cos(angle), torch.sin(angle)])
    return basis.to(dtype=dtype or torch.float64, device=device)


def period_amplitudes(x: torch.Tensor, periods: Sequence[int] | None = None, *, basis: torch.Tensor | None = None) -> torch.Tensor:
    """Per-window weight of each period: amplitude at the bin nearest ``T/p`` of the channel mean.

    Parameters
    ----------
    x : Tensor (B, C, T)
    periods : the k periods (samples); or pass a precomputed ``basis`` from :func:`dft_basis`.

    Returns
    -------
    Tensor (B, k), detached, in the units of ``x`` — ``(2/T)|Y[f_p]|``.
    """
    if basis is None:
        if periods is None:
            fail("periods", "be given when basis is not", None)
        basis = dft_basis(x.shape[-1], periods, dtype=x.dtype, device=x.device)
    mean = x.detach().mean(dim=1)  # (B, T)
    re = mean @ basis[0]  # (B, k)
    im = mean @ basis[1]
    return (re * re + im * im).sqrt() * (2.0 / x.shape[-1])


# --- streaming tracker ---------------------------------------------------------------------

PERIOD_UNITS = ("s", "samples")
MODES = ("average", "per_channel")


@dataclasses.dataclass
class TrackerState:
    """Streaming state of :class:`PeriodTracker` (a value: copy it to save/restore)."""

    buffer: np.ndarray  # (size, n_channels) ring of the newest samples
    times: np.ndarray  # (size,) their timestamps
    pos: int = 0  # ring index of the next write (= oldest sample once full)
    filled: int = 0  # valid samples (< size only while the first window fills)
    since: int = 0  # samples pushed since the last emission

    def window(self) -> tuple[np.ndarray, np.ndarray]:
        """The full window, oldest first: data (size, n_channels) and timestamps (size,)."""
        order = np.r_[self.pos : self.buffer.shape[0], 0 : self.pos]
        return self.buffer[order], self.times[order]

    def push(self, data: np.ndarray, times: np.ndarray) -> None:
        """Append ``n <= size`` samples in place."""
        size, n = self.buffer.shape[0], data.shape[0]
        idx = (self.pos + np.arange(n)) % size
        self.buffer[idx] = data
        self.times[idx] = times
        self.pos = (self.pos + n) % size
        self.filled = min(size, self.filled + n)
        self.since += n


@STAGES.register("periods")
class PeriodTracker(Stage):
    """Top-k dominant periods of a sliding window, emitted every hop (stream type ``Periods``).

    Continuous input: a window of ``size`` seconds slides by ``hop`` seconds; the first output
    comes when the window is first full, then one per hop. Windowed input (``info.window`` set):
    one output per window chunk; ``size`` and ``hop`` must then be left unset.

    Output channels: ``period_1..k`` then ``amp_1..k`` (mode ``"average"``: channels averaged
    before the FFT), or ``<channel>/period_1..k`` and ``<channel>/amp_1..k`` for each input channel
    (mode ``"per_channel"``). Periods are in seconds (unit ``"s"``) or samples (``"samples"``)
    per ``period_unit``; amplitudes are ``(2/T)|Y|`` in the input's unit. Each output sample is
    stamped with the timestamp of the newest input sample of its window.

    Parameters
    ----------
    size : float | None
        Window length in seconds (continuous input only).
    hop : float | None
        Seconds between outputs (continuous input only); defaults to ``size / 4``.
    k : int
        Periods reported per output.
    mode : ``"average"`` | ``"per_channel"``
    period_unit : ``"s"`` | ``"samples"``
    gap_policy : see :class:`~edgestream.core.stage.Stage`; ``"reset"`` refills the window after a gap.
    """

    accepts_windows = True

    def __init__(
        self,
        size: float | None = None,
        hop: float | None = None,
        k: int = 5,
        mode: str = "average",
        period_unit: str = "s",
        gap_policy: str = "reset",
    ) -> None:
        super().__init__(gap_policy=gap_policy)
        self.size = None if size is None else check_number(size, "size", low=0, low_inclusive=False)
        self.hop = None if hop is None else check_number(hop, "hop", low=0, low_inclusive=False)
        self.k = check_number(k, "k", low=1, integer=True)
        self.mode = check_value(mode, MODES, "mode")
        self.period_unit = check_value(period_unit, PERIOD_UNITS, "period_unit")
        self._size_n = 0  # window length in samples (set by build)
        self._hop_n = 0  # hop in samples (set by build; 0 for windowed input)

    def _build(self, info: StreamInfo) -> StreamInfo:
        if not info.regular:
            raise ValidationError(f"periods needs a regular stream with a sampling rate; {info.name!r} is irregular.")
        if info.window is not None:
            if self.size is not None or self.hop is not None:
                raise ValidationError(
                    f"periods: size and hop must be unset for windowed input; stream {info.name!r} already carries "
                    f"windows of {info.window} samples (got size={self.size}, hop={self.hop}). Remove them."
                )
            self._size_n, self._hop_n = int(info.window), 0
        else:
            if self.size is None:
                raise ValidationError(
                    f"periods: size must be given (seconds) for continuous stream {info.name!r}; got None. "
                    "Set e.g. size: 2.0, hop: 0.25."
                )
            self._size_n = int(round(self.size * info.sfreq))
            hop = self.hop if self.hop is not None else self.size / 4
            self._hop_n = max(1, int(round(hop * info.sfreq)))
        if self._size_n < 2 * (FIRST_BIN + 1):
            raise ValidationError(
                f"periods: the window must hold at least {2 * (FIRST_BIN + 1)} samples; got {self._size_n} "
                f"(size={self.size} s at {info.sfreq} Hz). Use a longer window."
            )
        available = len(set(np.round(self._size_n / np.arange(FIRST_BIN, self._size_n // 2)).astype(int)))
        if self.k > available:
            raise ValidationError(
                f"periods: k must be at most {available} for a {self._size_n}-sample window; got {self.k}. "
                "Use a longer window or a smaller k."
            )
        if self.mode == "average":
            prefixes, amp_units = [""], [_common_unit(info.units)]
        else:
            prefixes, amp_units = [f"{c}/" for c in info.ch_names], list(info.units)
        names, units = [], []
        for prefix, amp_unit in zip(prefixes, amp_units):
            names += [f"{prefix}period_{i + 1}" for i in range(self.k)] + [f"{prefix}amp_{i + 1}" for i in range(self.k)]
            units += [self.period_unit] * self.k + [amp_unit] * self.k
        rate = info.sfreq / self._hop_n if self._hop_n else 0.0
        desc = {
            "periods": {
                "window_samples": self._size_n,
                "hop_samples": self._hop_n,
                "k": self.k,
                "mode": self.mode,
                "period_unit": self.period_unit,
                "input": info.name,
                "rule": "mean over channels (average mode); A=(2/T)|FFT| at bins 2..T//2-1; p=round(T/f); distinct",
            }
        }
        return StreamInfo(
            name=f"{self.context.pipeline}-{self.context.node or 'periods'}",
            type="Periods",
            source_id=f"{info.source_id}/periods" if info.source_id else "",
            sfreq=rate,
            ch_names=tuple(names),
            ch_types=("misc",) * len(names),
            units=tuple(units),
            desc=desc,
        )

    def init_state(self) -> TrackerState:
        info = self.require_built()
        return TrackerState(np.zeros((self._size_n, info.n_channels), np.float32), np.zeros(self._size_n), 0, 0)

    def step(self, chunk: Chunk, state: TrackerState) -> tuple[list[Chunk], TrackerState]:
        info = self.require_built()
        if chunk.gap:
            state = self.on_gap(state)
        if info.window is not None:
            if chunk.n_times != info.window:
                fail("chunk", f"hold exactly one window of {info.window} samples", described(f"{chunk.n_times} samples"),
                     "Windowed streams carry one window per chunk.", DataError)
            row = self.analyse(chunk.data)
            return [Chunk(row[None, :].astype(np.float32), chunk.timestamps[-1:].copy(), self.out_info, warming=chunk.warming)], state
        rows, stamps = [], []
        start = 0
        while start < chunk.n_times:
            if state.filled < self._size_n:  # first window still filling: emit when it is full
                need = self._size_n - state.filled
            else:
                need = self._hop_n - state.since
            take = min(need, chunk.n_times - start)
            state.push(chunk.data[start : start + take], chunk.timestamps[start : start + take])
            start += take
            if take == need:
                window, times = state.window()
                rows.append(self.analyse(window))
                stamps.append(times[-1])
                state.since = 0
        if not rows:
            return [], state
        out = Chunk(np.stack(rows).astype(np.float32), np.asarray(stamps, dtype=np.float64), self.out_info)
        return [out], state

    def on_gap(self, state: TrackerState) -> TrackerState:
        if self.gap_policy == "keep":
            return state
        return self.init_state()  # "reset" and "rewarm": the window refills before the next output

    def analyse(self, window: np.ndarray) -> np.ndarray:
        """Periods then amplitudes for one window ``(size, n_channels)`` → flat row (float64)."""
        series = window.mean(axis=1, keepdims=True) if self.mode == "average" else window
        spectra = amplitude_spectrum(series, axis=0)  # (size//2, n_series)
        scale = 1.0 / self.require_built().sfreq if self.period_unit == "s" else 1.0
        parts = []
        for j in range(spectra.shape[1]):
            found = top_periods(spectra[:, j], self._size_n, self.k)
            parts += [np.asarray(found.periods, dtype=np.float64) * scale, np.asarray(found.amplitudes)]
        return np.concatenate(parts)


def _common_unit(units: Sequence[str]) -> str:
    return units[0] if len(set(units)) == 1 else "a.u."


__all__ = [
    "FIRST_BIN", "PeriodSet", "PeriodTracker", "TrackerState", "amplitude_spectrum", "default_periods",
    "dft_basis", "extract_periods", "nearest_bins", "period_amplitudes", "top_periods",
]
