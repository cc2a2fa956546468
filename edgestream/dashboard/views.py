"""Turn buffered samples into what is drawn: display filters and power spectra.

* :class:`FilteredView` runs the project's own causal DSP stages (``edgestream.dsp``: high-pass,
  band-pass, notch) over a stream for display, incrementally — each frame filters only the
  samples that arrived since the previous one, carrying the stages' state. Switching a filter
  re-filters the buffered history in one pass, which (streaming equals offline) gives the same
  trace as if the filter had been on all along.
* :func:`welch_psd` is the spectrum panel's power spectral density.

Decimation to the screen's pixel columns is in :mod:`edgestream.dashboard.canvas`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import scipy.fft
from scipy import signal

from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import EdgestreamError
from edgestream.core.ringbuffer import RingBuffer
from edgestream.core.stage import STAGES, BuildContext, Stage

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FilterSettings:
    """Display filters of the trace panel (what the toolbar toggles)."""

    highpass: bool = False
    highpass_hz: float = 0.5
    bandpass: bool = False
    band_hz: tuple[float, float] = (1.0, 40.0)
    notch: bool = False
    notch_hz: float = 50.0

    def stages(self, sfreq: float) -> list[Stage]:
        """The DSP stages these settings stand for, skipping ones the rate cannot support."""
        specs: list[tuple[str, dict[str, Any]]] = []
        nyq = sfreq / 2.0
        if self.highpass and self.highpass_hz < nyq:
            specs.append(("highpass", {"freq": self.highpass_hz, "order": 2}))
        if self.bandpass and self.band_hz[1] < nyq:
            specs.append(("bandpass", {"l_freq": self.band_hz[0], "h_freq": self.band_hz[1], "order": 4}))
        if self.notch and self.notch_hz < nyq:
            specs.append(("notch", {"freqs": [self.notch_hz, 2 * self.notch_hz] if 2 * self.notch_hz < nyq
                                    else [self.notch_hz]}))
        return [STAGES.create(kind, **kw) for kind, kw in specs]

    def label(self) -> str:
        parts = []
        if self.highpass:
            parts.append(f"HP {self.highpass_hz:g} Hz")
        if self.bandpass:
            parts.append(f"BP {self.band_hz[0]:g}–{self.band_hz[1]:g} Hz")
        if self.notch:
            parts.append(f"notch {self.notch_hz:g} Hz")
        return ", ".join(parts) or "raw"


class FilteredView:
    """Filtered copy of one feed's buffer, kept up to date incrementally.

    Parameters
    ----------
    feed : Feed
        Source of raw samples (``feed.since(cursor)``).
    settings : FilterSettings
    columns : ndarray of int
        Channels to filter and keep (counters and other non-signal channels left out).
    """

    def __init__(self, feed: Any, settings: FilterSettings, columns: np.ndarray) -> None:
        self.feed = feed
        self.columns = np.asarray(columns, dtype=int)
        self.settings = dataclasses.replace(settings)
        info: StreamInfo = feed.info
        self._info = info.replace(ch_names=[info.ch_names[i] for i in self.columns], window=None)
        self.ring = RingBuffer(feed.ring.capacity, max(1, len(self.columns)))
        self.cursor = 0
        self.resets = 0  # times the filter state restarted after samples were skipped
        self._stages: list[Stage] = []
        self._states: list[Any] = []
        self.error = ""
        self._build()
        # Filter the history already buffered in one pass, then continue incrementally.
        self.cursor = max(0, feed.ring.total_written - feed.ring.capacity)

    def _build(self) -> None:
        self.error = ""
        try:
            stages = self.settings.stages(self._info.sfreq) if self._info.sfreq > 0 else []
            for stage in stages:
                stage.build(self._info, BuildContext(pipeline="dashboard", node=type(stage).__name__))
        except EdgestreamError as exc:  # e.g. a band above this stream's Nyquist: show raw and say why
            self.error = str(exc)
            stages = []
        self._stages = stages
        self._states = [s.init_state() for s in stages]

    @property
    def active(self) -> bool:
        return bool(self._stages)

    def update(self) -> None:
        """Filter whatever arrived since the last call."""
        data, stamps, self.cursor, skipped = self.feed.since(self.cursor)
        if skipped:  # fell behind the ring buffer: restart filter state on the newest samples
            self.resets += 1
            self._states = [s.init_state() for s in self._stages]
        if not len(stamps):
            return
        x = data[:, self.columns] if len(self.columns) else data[:, :1]
        chunk = Chunk(np.ascontiguousarray(x, dtype=np.float32), stamps, self._info)
        for i, stage in enumerate(self._stages):
            out, self._states[i] = stage.step(chunk, self._states[i])
            chunk = out[0]
        self.ring.push(chunk.data, chunk.timestamps)

    def since(self, cursor: int) -> tuple[np.ndarray, np.ndarray, int, bool]:
        """Filtered rows written after absolute index ``cursor`` (see :func:`ring_since`)."""
        return ring_since(self.ring, cursor)

    def last_seconds(self, seconds: float) -> tuple[np.ndarray, np.ndarray, int]:
        """Newest ``seconds`` of filtered samples, and the absolute index of the first row."""
        n = len(self.ring)
        if self._info.sfreq > 0:
            n = min(n, int(np.ceil(seconds * self._info.sfreq)) + 1)
        data, stamps = self.ring.last(n)
        return data, stamps, self.ring.total_written - n


def ring_since(ring: RingBuffer, cursor: int) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Rows of ``ring`` written after absolute index ``cursor``.

    Returns data, stamps, the new cursor, and whether rows were overwritten before they could
    be read (then only the rows still buffered are returned).
    """
    total = ring.total_written
    n = total - cursor
    skipped = n > len(ring) or n < 0
    data, stamps = ring.last(len(ring) if skipped else n)
    return data, stamps, total, skipped


def welch_psd(x: np.ndarray, sfreq: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density per channel, in float32 (what scipy's ``welch`` computes with a
    Hann window, 50 % overlap, no detrending and one-sided density scaling, ~4x faster for display).

    Parameters
    ----------
    x : ndarray, shape (n, C)
    sfreq : float
        Hz.
    nperseg : int
        Samples per segment (≤ n).

    Returns
    -------
    freqs : ndarray, shape (F,)
        Hz.
    psd : ndarray, shape (F, C)
        Units² / Hz.
    """
    window = signal.get_window("hann", nperseg).astype(np.float32)
    step = nperseg - nperseg // 2  # scipy's default overlap is nperseg // 2
    segments = np.lib.stride_tricks.sliding_window_view(np.asarray(x, np.float32), nperseg, axis=0)[::step]
    spec = scipy.fft.rfft(segments * window, axis=-1)  # (S, C, F) complex64
    psd = (spec.real ** 2 + spec.imag ** 2).mean(axis=0).T  # (F, C)
    psd *= 2.0 / (sfreq * float((window ** 2).sum()))
    psd[0] /= 2.0  # DC (and Nyquist for even lengths) appear once in a one-sided spectrum
    if nperseg % 2 == 0:
        psd[-1] /= 2.0
    return np.fft.rfftfreq(nperseg, 1.0 / sfreq), psd
