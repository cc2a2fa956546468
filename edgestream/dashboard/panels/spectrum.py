"""Spectrum and spectrogram of a signal stream, with the dominant periods marked.

Dominant periods come from a ``Periods`` stream when one is open (the pipeline's own period
tracker, ``period_1..k`` / ``amp_1..k``), otherwise from the largest peaks of the spectrum shown.
A ``BandPower`` stream, when open, is summarised as bars (mean over channels per band).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets
from scipy import signal

from edgestream.core.chunk import StreamInfo
from edgestream.core.clock import local_clock
from edgestream.dashboard.lslinfo import desc_path
from edgestream.dashboard.panels.base import (MUTED, PANELS, Panel, StreamChooser, color, plot_widget,
                                              signal_columns, small_label)
from edgestream.dashboard.panels.traces import TracesPanel
from edgestream.dashboard.views import welch_psd

PSD_SECONDS = 3.0  # signal used per spectrum (Welch, 1-s segments, 50 % overlap: 1 Hz resolution)
SPECTROGRAM_COLUMNS = 120  # columns kept (at max_hz columns per second: 30 s)
MAX_FREQ = 100.0  # Hz shown at most
N_PEAKS = 3


def dominant_peaks(freqs: np.ndarray, power: np.ndarray, k: int = N_PEAKS, fmin: float = 0.5) -> list[float]:
    """Frequencies (Hz) of the ``k`` largest local maxima of ``power`` above ``fmin``."""
    mask = freqs >= fmin
    f, p = freqs[mask], power[mask]
    if len(p) < 3:
        return []
    peaks, _ = signal.find_peaks(p)
    top = peaks[np.argsort(p[peaks])[::-1][:k]]
    return [float(f[i]) for i in sorted(top)]


def periods_from_stream(feed: Any, fallback_sfreq: float) -> list[tuple[float, float]]:
    """Latest (frequency Hz, amplitude) pairs from a Periods stream (average mode, or its first channel)."""
    data, _ = feed.last(1)
    if not len(data):
        return []
    info: StreamInfo = feed.info
    row = dict(zip(info.ch_names, data[-1]))
    units = dict(zip(info.ch_names, info.units))
    names = [n for n in info.ch_names if n.split("/")[-1].startswith("period_")]
    prefix = names[0].rsplit("period_", 1)[0] if names else ""
    out = []
    for name in names:
        if not name.startswith(prefix) or "/" in name[len(prefix):]:
            continue
        i = name.rsplit("_", 1)[-1]
        period = float(row[name])
        if units.get(name) == "samples":
            period /= max(fallback_sfreq, 1e-9)
        if period > 0 and np.isfinite(period):
            out.append((1.0 / period, float(row.get(f"{prefix}amp_{i}", np.nan))))
    return out


@PANELS.register("spectrum", area="right", order=1)
class SpectrumPanel(Panel):
    """Power spectrum (dB) and a scrolling spectrogram of one signal stream."""

    title = "Spectrum"
    waiting_text = "Spectrum: waiting for a signal stream."
    max_hz = 3.0

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._columns: list[np.ndarray] = []
        self._column_times: list[float] = []  # LSL clock time of each spectrogram column
        self._freqs = np.zeros(0)
        self._peak_lines: list[pg.InfiniteLine] = []
        self.period_feeds: list[Any] = []
        self.bandpower_feeds: list[Any] = []
        self.marked: list[float] = []  # frequencies currently marked (Hz)
        layout = QtWidgets.QVBoxLayout(self.content)
        layout.setContentsMargins(2, 2, 2, 2)
        bar = QtWidgets.QHBoxLayout()
        self.chooser = StreamChooser(preferred_types=("EEG",))
        self.chooser.currentIndexChanged.connect(lambda _: self._restart())
        self.channel_box = QtWidgets.QComboBox()
        self.channel_box.currentIndexChanged.connect(lambda _: self._restart())
        bar.addWidget(self.chooser)
        bar.addWidget(self.channel_box)
        bar.addStretch(1)
        layout.addLayout(bar)
        self.psd = plot_widget(bottom="frequency (Hz)", left="power (dB)")
        self.psd.setTitle(f"power spectrum, last {PSD_SECONDS:g} s", color=MUTED, size="9pt")
        self.psd_curve = self.psd.plot(pen=pg.mkPen("#8ab4f8", width=1.5))
        layout.addWidget(self.psd, 4)
        self.peaks_label = small_label()
        self.peaks_label.setStyleSheet(f"color: {MUTED};")
        layout.addWidget(self.peaks_label)
        self.spec = plot_widget(grid=False, bottom="time to now (s)", left="Hz")  # no grid over an image
        self.spec.setTitle("spectrogram", color=MUTED, size="9pt")
        # a short plot (when the band-power bars share the dock): labels every 50 Hz stay legible
        self.spec.getPlotItem().getAxis("left").setTickSpacing(50.0, 50.0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("inferno"))
        self.spec.addItem(self.image)
        layout.addWidget(self.spec, 3)
        self.bands = plot_widget(left="dB")
        self.bands.setMaximumHeight(120)
        self.band_bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=color(0))
        self.bands.addItem(self.band_bars)
        self.bands.setVisible(False)
        layout.addWidget(self.bands, 1)

    @classmethod
    def accepts(cls, info: StreamInfo) -> bool:
        return TracesPanel.accepts(info)

    def set_feeds(self, feeds: Any) -> None:
        self.period_feeds = [f for f in feeds if f.info.type == "Periods"]
        self.bandpower_feeds = [f for f in feeds if f.info.type == "BandPower"]
        super().set_feeds(feeds)

    def feeds_changed(self) -> None:
        self.chooser.blockSignals(True)
        self.chooser.set_feeds(self.feeds)
        self.chooser.blockSignals(False)
        self._fill_channels()

    def _fill_channels(self) -> None:
        feed = self.chooser.current(self.feeds)
        current = self.channel_box.currentData()
        self.channel_box.blockSignals(True)
        self.channel_box.clear()
        self.channel_box.addItem("all channels (mean power)", -1)
        if feed is not None:
            for i in signal_columns(feed.info):
                self.channel_box.addItem(feed.info.ch_names[i], int(i))
        index = self.channel_box.findData(current)
        self.channel_box.setCurrentIndex(max(index, 0))
        self.channel_box.blockSignals(False)

    def _restart(self) -> None:
        self._columns = []
        if self.sender() is self.chooser:
            self._fill_channels()

    def draw(self) -> bool:
        feed = self.chooser.current(self.feeds)
        if feed is None or feed.info.sfreq <= 0:
            return False
        sfreq = feed.info.sfreq
        data, _, _ = feed.last_seconds(PSD_SECONDS)
        nperseg = int(min(len(data), sfreq))
        if nperseg < 16:
            return False
        col = self.channel_box.currentData()
        x = data[:, signal_columns(feed.info)] if col is None or col < 0 else data[:, [col]]
        x = x - x.mean(axis=0)  # once for the whole block: cheaper than Welch's per-segment detrend
        freqs, pxx = welch_psd(x, sfreq, nperseg)  # (F, C)
        power = 10 * np.log10(np.maximum(pxx.mean(axis=1), 1e-30))
        keep = freqs <= min(MAX_FREQ, sfreq / 2)
        freqs, power = freqs[keep], power[keep]
        self.psd_curve.setData(freqs, power)
        self._spectrogram(freqs, power)
        self._mark_periods(feed, freqs, power)
        self._draw_bandpower()
        return True

    def _spectrogram(self, freqs: np.ndarray, power: np.ndarray) -> None:
        if len(freqs) != len(self._freqs) or not np.allclose(freqs, self._freqs):
            self._columns, self._column_times, self._freqs = [], [], freqs
        now = local_clock()
        self._columns.append(power.astype(np.float32))
        self._column_times.append(now)
        self._columns = self._columns[-SPECTROGRAM_COLUMNS:]
        self._column_times = self._column_times[-SPECTROGRAM_COLUMNS:]
        img = np.stack(self._columns, axis=1)  # (F, T)
        lo, hi = np.percentile(img, [5, 99.5])
        self.image.setImage(img, levels=(lo, max(hi, lo + 1e-3)), autoLevels=False)
        # columns are drawn evenly spaced between the first and the newest one (draws are about
        # evenly spaced; on a busy machine the span, not the spacing, stays right)
        span = max(now - self._column_times[0], 1.0 / self.max_hz) * len(self._columns) / max(len(self._columns) - 1, 1)
        df = freqs[1] - freqs[0] if len(freqs) > 1 else 1.0
        self.image.setRect(QtCore.QRectF(-span, freqs[0] - df / 2, span, df * len(freqs)))
        self.spec.setXRange(-SPECTROGRAM_COLUMNS / self.max_hz, 0, padding=0)
        self.spec.setYRange(freqs[0], freqs[-1], padding=0)

    def _mark_periods(self, feed: Any, freqs: np.ndarray, power: np.ndarray) -> None:
        source = "spectrum peaks"
        marks: list[float] = []
        for pf in self.period_feeds:
            got = periods_from_stream(pf, feed.info.sfreq)
            if got:
                marks = [f for f, _ in got]
                source = f"stream {pf.info.name}"
                break
        if not marks:
            marks = dominant_peaks(freqs, power)
        self.marked = marks
        while len(self._peak_lines) < len(marks):
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#5cc98a", width=1, style=QtCore.Qt.PenStyle.DashLine),
                                   label="", labelOpts={"position": 0.92, "color": "#5cc98a", "fill": (21, 23, 28, 200)})
            self.psd.addItem(line)
            self._peak_lines.append(line)
        for i, line in enumerate(self._peak_lines):
            if i < len(marks):
                line.setPos(marks[i])
                line.label.setFormat(f"T={1.0 / marks[i]:.3g} s")
                line.label.setPosition(0.92 - 0.14 * (i % 3))  # staggered: close peaks' labels do not overlap
                line.show()
            else:
                line.hide()
        text = ", ".join(f"{f:.2f} Hz (T = {1 / f:.3g} s)" for f in marks) or "none found"
        self.peaks_label.setText(f"dominant periods ({source}): {text}")

    def _draw_bandpower(self) -> None:
        feed = self.bandpower_feeds[0] if self.bandpower_feeds else None
        self.bands.setVisible(feed is not None)
        if feed is None:
            return
        data, _ = feed.last(1)
        if not len(data):
            return
        bands = list(desc_path(feed.info.desc, "bands", default={}) or {})
        names = feed.info.ch_names
        if not bands:
            bands = sorted({n.rsplit("_", 1)[-1] for n in names if "_" in n})
        values = [float(np.mean([v for n, v in zip(names, data[-1]) if n.endswith("_" + b)] or [np.nan])) for b in bands]
        self.band_bars.setOpts(x=np.arange(len(bands)), height=np.nan_to_num(values), width=0.7)
        self.bands.getPlotItem().getAxis("bottom").setTicks([list(enumerate(bands)), []])
        self.bands.setTitle(f"{feed.info.name}: mean band power over channels", color=MUTED, size="9pt")
