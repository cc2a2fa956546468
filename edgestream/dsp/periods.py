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

The torch side a model needs (per-window weights, exportable as matmuls) is in
:mod:`edgestream.models.layers.periods`; it uses :func:`nearest_bins` from here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgestream.core.checks import check_array, check_number, check_value, described, fail
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import DataError, ValidationError
from edgestream.core.stage import STAGES, Stage
from edgestream.dsp.windows import Window

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
    periods, amps, bins = top_periods_many(np.asarray(spectrum, dtype=np.float64)[:, None], length, k)
    return PeriodSet(tuple(int(p) for p in periods[:, 0]), tuple(float(a) for a in amps[:, 0]),
                     tuple(int(b) for b in bins[:, 0]), int(length))


def top_periods_many(spectra: np.ndarray, length: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rule for many spectra at once: ``spectra`` (length // 2, n) → periods, amplitudes, bins, each (k, n).

    Equivalent to walking the bins by falling amplitude and skipping taken periods: ``round(T/f)``
    never increases with ``f``, so the bins sharing a period are one contiguous run; the walk meets
    each period first at its run's strongest bin (lowest bin on ties), and meets the periods in
    the order of those maxima (lower bin first on ties).
    """
    bins = np.arange(FIRST_BIN, spectra.shape[0])
    bin_period = np.round(length / bins).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, bin_period[1:] != bin_period[:-1]])  # first bin of each period's run
    if starts.size < k:
        fail("k", f"be at most the number of distinct periods a length-{length} window offers ({starts.size})", k,
             "Use a longer window or ask for fewer periods.")
    spec = spectra[FIRST_BIN:]  # (n_bins, n)
    peak = np.maximum.reduceat(spec, starts, axis=0)  # (n_periods, n) strongest amplitude per period
    runs = np.diff(np.r_[starts, bins.size])
    at_peak = spec == np.repeat(peak, runs, axis=0)
    offsets = np.arange(bins.size)[:, None]
    # first (lowest) bin of each run reaching its peak: (n_periods, n) offsets into ``bins``
    best = np.minimum.reduceat(np.where(at_peak, offsets, bins.size), starts, axis=0)
    order = np.argsort(-peak, axis=0, kind="stable")[:k]  # (k, n); ties keep the lower bin first
    chosen = np.take_along_axis(best, order, axis=0)
    return bin_period[chosen], np.take_along_axis(peak, order, axis=0), bins[chosen]


def top_periods_ref(spectrum: np.ndarray, length: int, k: int) -> PeriodSet:
    """The rule written literally (slow): walk bins by falling amplitude, skip taken periods, stop at k."""
    bins = np.arange(FIRST_BIN, len(spectrum))
    order = bins[np.argsort(-np.asarray(spectrum)[FIRST_BIN:], kind="stable")]
    periods: list[int] = []
    amps: list[float] = []
    chosen: list[int] = []
    for f in order:
        p = int(np.round(length / f))
        if p not in periods:
            periods.append(p)
            amps.append(float(spectrum[f]))
            chosen.append(int(f))
        if len(periods) == k:
            return PeriodSet(tuple(periods), tuple(amps), tuple(chosen), int(length))
    fail("k", f"be at most the number of distinct periods a length-{length} window offers ({len(periods)})", k)


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


# --- streaming tracker ---------------------------------------------------------------------

PERIOD_UNITS = ("s", "samples")
MODES = ("average", "per_channel")


@STAGES.register("periods")
class PeriodTracker(Stage):
    """Top-k dominant periods of a sliding window, emitted every hop (stream type ``Periods``).

    Continuous input: a window of ``size`` slides by ``hop`` (the ``window`` stage's rules and
    units); the first output comes when the window is first full, then one per hop. Windowed
    input (after a ``window`` stage): one output per window; ``size`` and ``hop`` stay unset.

    Output channels: ``period_1..k`` then ``amp_1..k`` (mode ``"average"``: channels averaged
    before the FFT), or ``<channel>/period_1..k`` and ``<channel>/amp_1..k`` for each input channel
    (mode ``"per_channel"``). Periods are in seconds (unit ``"s"``) or samples (``"samples"``)
    per ``period_unit``; amplitudes are ``(2/T)|Y|`` in the input's unit. Each output sample is
    stamped with the timestamp of the newest input sample of its window.

    Parameters
    ----------
    size, hop : float | None
        Window length and hop for continuous input, in ``unit``.
    unit : ``"s"`` | ``"samples"``
        Unit of ``size`` and ``hop``.
    k : int
        Periods reported per output.
    mode : ``"average"`` | ``"per_channel"``
    period_unit : ``"s"`` | ``"samples"``
        Unit of the published periods.
    gap_policy : ``"reset"`` refills the window after a gap before the next output; ``"keep"``
        slides across it.
    """

    accepts_windows = True

    def __init__(
        self,
        size: float | None = None,
        hop: float | None = None,
        unit: str = "s",
        k: int = 5,
        mode: str = "average",
        period_unit: str = "s",
        gap_policy: str = "reset",
    ) -> None:
        super().__init__(gap_policy=gap_policy)
        self.size = None if size is None else check_number(size, "size", low=0, low_inclusive=False)
        self.hop = None if hop is None else check_number(hop, "hop", low=0, low_inclusive=False)
        self.unit = check_value(unit, PERIOD_UNITS, "unit")
        self.k = check_number(k, "k", low=1, integer=True)
        self.mode = check_value(mode, MODES, "mode")
        self.period_unit = check_value(period_unit, PERIOD_UNITS, "period_unit")
        self._window: Window | None = None  # slides over continuous input (set by build)

    def _build(self, info: StreamInfo) -> StreamInfo:
        if not info.regular:
            raise ValidationError(f"periods needs a regular stream with a sampling rate; {info.name!r} is irregular.")
        if info.window is not None:
            if self.size is not None or self.hop is not None:
                raise ValidationError(
                    f"periods: size and hop must be unset for windowed input; stream {info.name!r} already carries "
                    f"windows of {info.window} samples (got size={self.size}, hop={self.hop}). Remove them."
                )
            self._window = None
            n_size = int(info.window)
            hop_n = int(info.desc.get("window", {}).get("hop", n_size))
        else:
            if self.size is None or self.hop is None:
                raise ValidationError(
                    f"periods: size and hop must be given for continuous stream {info.name!r}; got size={self.size}, "
                    f"hop={self.hop}. Set e.g. size: 2.0, hop: 0.25 (seconds)."
                )
            self._window = Window(self.size, self.hop, unit=self.unit, gap_policy=self.gap_policy)
            windowed = self._window.build(info, self.context)
            n_size, hop_n = int(windowed.window), self._window.n_hop
        self._n_size = n_size
        if n_size < 2 * (FIRST_BIN + 1):
            raise ValidationError(
                f"periods: the window must hold at least {2 * (FIRST_BIN + 1)} samples; got {n_size}. Use a longer window."
            )
        available = len(set(np.round(n_size / np.arange(FIRST_BIN, n_size // 2)).astype(int)))
        if self.k > available:
            raise ValidationError(
                f"periods: k must be at most {available} for a {n_size}-sample window; got {self.k}. "
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
        desc = {k: v for k, v in info.desc.items() if k != "window"} | {
            "periods": {
                "window_samples": n_size, "hop_samples": hop_n, "k": self.k, "mode": self.mode,
                "period_unit": self.period_unit, "input": info.name,
                "rule": "A=(2/T)|FFT| at bins 2..T//2-1 (channel mean in average mode); p=round(T/f), distinct, top k",
            }
        }
        return StreamInfo(
            name=f"{self.context.pipeline}-{self.context.node or 'periods'}", type="Periods",
            source_id=f"{info.source_id}/periods" if info.source_id else "", sfreq=info.sfreq / hop_n,
            ch_names=tuple(names), ch_types=("misc",) * len(names), units=tuple(units), desc=desc,
        )

    def init_state(self) -> Any:
        """The sliding window's state (continuous input) or None (windowed input)."""
        self.require_built()
        return self._window.init_state() if self._window is not None else None

    def step(self, chunk: Chunk, state: Any) -> tuple[list[Chunk], Any]:
        info = self.require_built()
        if self._window is None:
            if chunk.n_times != info.window:
                fail("chunk", f"hold exactly one window of {info.window} samples", described(f"{chunk.n_times} samples"),
                     "Windowed streams carry one window per chunk.", DataError)
            windows = [chunk]
        else:
            windows, state = self._window.step(chunk, state)
        if not windows:
            return [], state
        rows = np.stack([self.analyse(w.data) for w in windows]).astype(np.float32)
        stamps = np.array([w.timestamps[-1] for w in windows], dtype=np.float64)
        gap, warming = any(w.gap for w in windows), any(w.warming for w in windows)
        return [Chunk(rows, stamps, self.out_info, gap, warming)], state

    def on_gap(self, state: Any) -> Any:
        return self._window.on_gap(state) if self._window is not None else state

    def analyse(self, window: np.ndarray) -> np.ndarray:
        """Periods then amplitudes of one window ``(size, n_channels)`` → flat row (float64)."""
        series = window.mean(axis=1, keepdims=True) if self.mode == "average" else window
        spectra = amplitude_spectrum(series, axis=0)  # (size//2, n_series)
        scale = 1.0 / self.require_built().sfreq if self.period_unit == "s" else 1.0
        periods, amps, _ = top_periods_many(spectra, self._n_size, self.k)  # (k, n_series) each
        return np.concatenate([periods * scale, amps]).T.reshape(-1)  # per series: k periods then k amplitudes


def _common_unit(units: Sequence[str]) -> str:
    return units[0] if len(set(units)) == 1 else "a.u."


__all__ = [
    "FIRST_BIN", "PeriodSet", "PeriodTracker", "amplitude_spectrum", "default_periods",
    "extract_periods", "nearest_bins", "top_periods", "top_periods_many",
]
