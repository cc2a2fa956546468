"""Causal IIR filters in second-order sections, with state carried from chunk to chunk.

The filter state ``zi`` (n_sections, 2, n_channels) is initialised from the first sample of
the stream (steady state for a constant input equal to it), so a signal with a DC offset does
not ring at start-up. Filtering a signal in chunks of any size gives exactly the result of one
``sosfilt`` pass over the whole signal with the same initial state.

Every filter stage appends its own spec to ``StreamInfo.desc["filters"]`` (``{"kind":
"bandpass", "l_freq": 8.0, "h_freq": 30.0}``, the shape ``edgestream train`` records as a
checkpoint's ``data.preprocessing``), so a model stage downstream can check that the stream's
pass band (:func:`passband`) is the one its checkpoint was trained on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy import signal

from edgestream.core.checks import check_number, check_value
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import ValidationError
from edgestream.core.stage import STAGES, Stage

FTYPES = ("butter", "cheby1", "cheby2", "ellip", "bessel")


class SOSFilter(Stage):
    """Base of the IIR stages: subclasses design ``self.sos`` in :meth:`_design`.

    State is ``None`` until the first sample arrives, then ``zi`` (n_sections, 2, C) float32.
    """

    def _design(self, sfreq: float) -> np.ndarray:
        raise NotImplementedError

    def _settle_seconds(self) -> float:
        """Rough settling time used as the warm-up length after a reset."""
        return 0.0

    def describe(self) -> dict[str, Any]:
        """This filter as a stage spec (kind and frequencies in Hz), as recorded in ``desc["filters"]``."""
        raise NotImplementedError

    def _check_freq(self, value: float, name: str, sfreq: float) -> None:
        nyq = sfreq / 2.0
        if not 0 < value < nyq:
            raise ValidationError(
                f"{type(self).__name__}: {name} must lie in (0, {nyq:g}) Hz (below Nyquist for a {sfreq:g} Hz stream); "
                f"got {value!r}. Lower {name} or resample the stream first."
            )

    def _build(self, info: StreamInfo) -> StreamInfo:
        if not info.regular:
            raise ValidationError(
                f"{type(self).__name__} needs a regularly sampled stream; stream {info.name!r} is irregular "
                "(nominal rate 0). Filter only signal streams."
            )
        self.sos = np.ascontiguousarray(self._design(info.sfreq), dtype=np.float64)
        # Steady-state response to a unit step, per section: scaled by the first sample at start.
        self._zi_unit = signal.sosfilt_zi(self.sos).astype(np.float32)  # (n_sections, 2)
        self._sos32 = self.sos.astype(np.float32)
        self.warmup_samples = int(round(self._settle_seconds() * info.sfreq))
        # Appended, not replaced: a cascade (high-pass, then notch, then low-pass) records every stage.
        return info.replace(desc=dict(info.desc) | {"filters": [*recorded_filters(info.desc), self.describe()]})

    def init_state(self) -> np.ndarray | None:
        self.require_built()
        return None

    def step(self, chunk: Chunk, state: np.ndarray | None) -> tuple[list[Chunk], np.ndarray | None]:
        x = chunk.data
        if x.shape[0] == 0:
            return [chunk], state
        if state is None:
            state = self._zi_unit[:, :, None] * x[0][None, None, :]  # (n_sections, 2, C)
        y, state = signal.sosfilt(self.sos, x, axis=0, zi=state)
        return [Chunk(y.astype(np.float32, copy=False), chunk.timestamps, self.out_info, chunk.gap, chunk.warming)], state


@STAGES.register("bandpass")
class BandPass(SOSFilter):
    """Causal band-pass (default 4th-order Butterworth per edge, as SOS).

    Parameters
    ----------
    l_freq, h_freq : float
        Pass-band edges in Hz.
    order : int
        Filter order (scipy's ``N``; the band-pass has 2·order poles).
    ftype : str
        "butter", "cheby1", "cheby2", "ellip" or "bessel".
    rp, rs : float
        Pass-band ripple / stop-band attenuation in dB (Chebyshev and elliptic only).
    """

    def __init__(self, l_freq: float, h_freq: float, order: int = 4, ftype: str = "butter", rp: float = 1.0,
                 rs: float = 40.0, gap_policy: str = "reset") -> None:
        super().__init__(gap_policy=gap_policy)
        self.l_freq = check_number(l_freq, "l_freq", low=0, low_inclusive=False)
        self.h_freq = check_number(h_freq, "h_freq", low=0, low_inclusive=False)
        if self.h_freq <= self.l_freq:
            raise ValidationError(f"h_freq must be greater than l_freq ({l_freq} Hz); got {h_freq}. Swap the edges.")
        self.order = check_number(order, "order", low=1, high=16, integer=True)
        self.ftype = check_value(ftype, FTYPES, "ftype")
        self.rp, self.rs = rp, rs

    def _design(self, sfreq: float) -> np.ndarray:
        self._check_freq(self.l_freq, "l_freq", sfreq)
        self._check_freq(self.h_freq, "h_freq", sfreq)
        return signal.iirfilter(self.order, [self.l_freq, self.h_freq], btype="bandpass", ftype=self.ftype,
                                rp=self.rp, rs=self.rs, fs=sfreq, output="sos")

    def _settle_seconds(self) -> float:
        return 3.0 / self.l_freq

    def describe(self) -> dict[str, Any]:
        return {"kind": "bandpass", "l_freq": float(self.l_freq), "h_freq": float(self.h_freq)}


class _SingleEdge(SOSFilter):
    """A high- or low-pass with one cut-off ``freq`` in Hz; ``btype`` is set by the subclass."""

    btype: ClassVar[str] = ""

    def __init__(self, freq: float, order: int = 4, ftype: str = "butter", gap_policy: str = "reset") -> None:
        super().__init__(gap_policy=gap_policy)
        self.freq = check_number(freq, "freq", low=0, low_inclusive=False)
        self.order = check_number(order, "order", low=1, high=16, integer=True)
        self.ftype = check_value(ftype, FTYPES, "ftype")

    def _design(self, sfreq: float) -> np.ndarray:
        self._check_freq(self.freq, "freq", sfreq)
        return signal.iirfilter(self.order, self.freq, btype=self.btype, ftype=self.ftype, fs=sfreq, output="sos",
                                rp=1.0, rs=40.0)

    def _settle_seconds(self) -> float:
        return 3.0 / self.freq

    def describe(self) -> dict[str, Any]:
        return {"kind": self.btype, "freq": float(self.freq)}


@STAGES.register("highpass")
class HighPass(_SingleEdge):
    """Causal high-pass at ``freq`` Hz (Butterworth by default)."""

    btype = "highpass"


@STAGES.register("lowpass")
class LowPass(_SingleEdge):
    """Causal low-pass at ``freq`` Hz (Butterworth by default)."""

    btype = "lowpass"


@STAGES.register("notch")
class Notch(SOSFilter):
    """Causal IIR notch(es) at ``freqs`` Hz (e.g. [50, 100] for mains and its harmonic).

    Parameters
    ----------
    freqs : float or list of float
        Centre frequencies in Hz.
    quality : float
        Quality factor Q = f0 / bandwidth (-3 dB).
    """

    def __init__(self, freqs: float | Sequence[float] = 50.0, quality: float = 30.0, gap_policy: str = "reset") -> None:
        super().__init__(gap_policy=gap_policy)
        values = [freqs] if isinstance(freqs, (int, float)) else list(freqs)
        if not values:
            raise ValidationError("freqs must list at least one frequency in Hz; got []. E.g. freqs: [50].")
        self.freqs = [check_number(f, "freqs", low=0, low_inclusive=False) for f in values]
        self.quality = check_number(quality, "quality", low=0, low_inclusive=False)

    def _design(self, sfreq: float) -> np.ndarray:
        sections = []
        for f in self.freqs:
            self._check_freq(f, "freqs", sfreq)
            b, a = signal.iirnotch(f, self.quality, fs=sfreq)
            sections.append(signal.tf2sos(b, a))
        return np.vstack(sections)

    def _settle_seconds(self) -> float:
        return max(self.quality / f for f in self.freqs)

    def describe(self) -> dict[str, Any]:
        return {"kind": "notch", "freqs": [float(f) for f in self.freqs]}


def recorded_filters(desc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The filter specs a stream's ``desc`` records (``[]`` when none).

    Over LSL, ``desc`` comes back from XML (:func:`edgestream.core.lslmeta.desc_to_dict`): still
    a list of mappings, but every value is text (``"8.0"``); :func:`passband` reads either.
    """
    found = desc.get("filters") if isinstance(desc, Mapping) else None
    return [f for f in found if isinstance(f, Mapping)] if isinstance(found, (list, tuple)) else []


def passband(specs: Iterable[Mapping[str, Any]]) -> tuple[float | None, float | None]:
    """The pass band ``(low, high)`` in Hz left by a cascade of filter specs (``None``: that edge open).

    Band-pass, high-pass and low-pass specs narrow the band (the highest low edge and the lowest
    high edge win); notches leave it as it is.

    Parameters
    ----------
    specs : iterable of mapping
        ``{"kind": "bandpass", "l_freq", "h_freq"}``, ``{"kind": "highpass" | "lowpass", "freq"}``
        or ``{"kind": "notch", ...}``, in Hz: what filter stages record in ``desc["filters"]`` and
        ``edgestream train`` in a checkpoint's ``data.preprocessing``.

    Returns
    -------
    tuple of (float or None, float or None)
        ``(None, None)`` for an unfiltered stream.
    """
    low: float | None = None
    high: float | None = None

    def narrowed(current: float | None, value: Any, pick: Any) -> float | None:
        edge = float(value)  # text when the spec came back over LSL
        return edge if current is None else pick(current, edge)

    for spec in specs:
        kind = str(spec.get("kind", ""))
        if kind == "bandpass":
            low, high = narrowed(low, spec["l_freq"], max), narrowed(high, spec["h_freq"], min)
        elif kind == "highpass":
            low = narrowed(low, spec["freq"], max)
        elif kind == "lowpass":
            high = narrowed(high, spec["freq"], min)
    return low, high
