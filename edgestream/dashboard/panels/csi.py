"""CSI: magnitude heat-maps (antenna × subcarrier) of the actual and the predicted channel, and
the live NMSE per horizon.

Stream conventions (see ``edgestream.csi``): ``CSI`` reports are antenna-major rows with real
and imaginary parts interleaved per subcarrier (``a0 Re k0, a0 Im k0, a0 Re k1, …``), the
layout in ``desc/csi`` (``n_antennas``, ``n_subcarriers``); ``CSIPrediction`` carries one such
block per predicted step (horizon 1 first); ``CSIMetrics`` carries live NMSE in dB per horizon.
A prediction is stamped with the newest report it used, so the horizon-1 prediction *for* the
newest report is the one stamped with the report before it.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from edgestream.core.chunk import StreamInfo
from edgestream.core.clock import local_clock
from edgestream.dashboard.lslinfo import desc_path
from edgestream.dashboard.panels.base import (MUTED, PANELS, Panel, color, plot_widget, signal_columns,
                                              small_label)

CSI_TYPES = ("CSI", "CSIPrediction", "CSIMetrics")
NMSE_HISTORY_S = 60.0
_NAME = re.compile(r"a(\d+)_k(\d+)_(re|im)$")


def csi_shape(info: StreamInfo) -> tuple[int, int]:
    """(n_antennas, n_subcarriers) from ``desc/csi``, else from channel names like ``a00_k000_re``."""
    a = desc_path(info.desc, "csi", "n_antennas")
    k = desc_path(info.desc, "csi", "n_subcarriers")
    if a is not None and k is not None:
        return int(float(a)), int(float(k))
    found = [m.groups() for m in map(_NAME.search, info.ch_names) if m]
    if found:
        return max(int(g[0]) for g in found) + 1, max(int(g[1]) for g in found) + 1
    return 1, max(1, len(signal_columns(info)) // 2)


def magnitude(row: np.ndarray, n_antennas: int, n_subcarriers: int) -> np.ndarray:
    """Interleaved report values → |H|, shape (n_antennas, n_subcarriers)."""
    block = row[: n_antennas * n_subcarriers * 2].reshape(n_antennas, n_subcarriers, 2)
    return np.hypot(block[..., 0], block[..., 1])


def nmse_db(h: np.ndarray, h_hat: np.ndarray) -> float:
    """NMSE of one report in dB (interleaved values; mean over antennas of per-antenna ratios)."""
    err = np.sum((h - h_hat) ** 2, axis=-1)
    ref = np.maximum(np.sum(h ** 2, axis=-1), 1e-30)
    return float(10 * np.log10(np.mean(err / ref)))


@PANELS.register("csi", area="right", order=2)
class CSIPanel(Panel):
    """Actual vs predicted CSI magnitude and live NMSE."""

    title = "CSI"
    waiting_text = "CSI: waiting for CSI, CSIPrediction or CSIMetrics streams."
    max_hz = 10.0

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self.content)
        layout.setContentsMargins(2, 2, 2, 2)
        maps = QtWidgets.QHBoxLayout()
        self.maps: dict[str, tuple[pg.PlotWidget, pg.ImageItem]] = {}
        cmap = pg.colormap.get("viridis")
        for key, title in (("actual", "actual |H|"), ("predicted", "predicted |Ĥ| (h=1)"), ("error", "|H − Ĥ|")):
            w = plot_widget(bottom="subcarrier", left="antenna")
            w.setTitle(title, color=MUTED, size="9pt")
            img = pg.ImageItem(axisOrder="row-major")
            img.setColorMap(cmap)
            w.addItem(img)
            w.getPlotItem().setMouseEnabled(x=False, y=False)
            maps.addWidget(w)
            self.maps[key] = (w, img)
        layout.addLayout(maps, 3)
        self.info_label = small_label()
        self.info_label.setStyleSheet(f"color: {MUTED};")
        layout.addWidget(self.info_label)
        self.nmse_plot = plot_widget(bottom="time to now (s)", left="NMSE (dB)")
        self.nmse_plot.setXRange(-NMSE_HISTORY_S, 0, padding=0)
        self.nmse_legend = self.nmse_plot.addLegend(offset=(5, 1), brush=(21, 23, 28, 180))
        self.nmse_curves: dict[str, pg.PlotDataItem] = {}
        layout.addWidget(self.nmse_plot, 2)
        self.last_nmse_db = float("nan")  # NMSE of the newest aligned actual/predicted pair

    @classmethod
    def accepts(cls, info: StreamInfo) -> bool:
        return info.type in CSI_TYPES and info.dtype != "string"

    def _of(self, kind: str) -> Any:
        return next((f for f in self.feeds if f.info.type == kind), None)

    def draw(self) -> bool:
        actual, pred, metrics = self._of("CSI"), self._of("CSIPrediction"), self._of("CSIMetrics")
        drew = False
        notes = []
        if actual is not None:
            drew |= self._draw_maps(actual, pred, notes)
        else:
            notes.append("no CSI report stream")
        if metrics is not None:
            drew |= self._draw_nmse(metrics)
        else:
            notes.append("no CSIMetrics stream (live NMSE)")
        self.info_label.setText(" · ".join(notes))
        return drew

    def _draw_maps(self, actual: Any, pred: Any, notes: list[str]) -> bool:
        n_a, n_k = csi_shape(actual.info)
        cols = signal_columns(actual.info)
        data, stamps = actual.last(2)
        if not len(stamps):
            return False
        h = data[-1, cols]
        mag = magnitude(h, n_a, n_k)
        levels = (0.0, float(max(mag.max(), 1e-12)))
        self._show("actual", mag, levels)
        notes.append(f"{actual.info.name}: {n_a} antennas × {n_k} subcarriers, report {_age(stamps[-1])} ago")
        if pred is None:
            notes.append("no CSIPrediction stream")
            return True
        p_data, p_stamps = pred.last(64)
        if not len(p_stamps):
            return True
        p_cols = signal_columns(pred.info)
        target_stamp = stamps[-2] if len(stamps) > 1 else np.nan
        period = 1.0 / actual.info.sfreq if actual.info.sfreq > 0 else 0.01
        match = np.flatnonzero(np.abs(p_stamps - target_stamp) <= period / 2)
        aligned = len(match) > 0
        row = p_data[match[-1] if aligned else -1, p_cols]
        h_hat = row[: n_a * n_k * 2]
        if h_hat.size != n_a * n_k * 2:
            notes.append(f"{pred.info.name}: {row.size} values do not hold a {n_a}×{n_k} report")
            return True
        self._show("predicted", magnitude(h_hat, n_a, n_k), levels)
        err = magnitude(h - h_hat, n_a, n_k)
        self._show("error", err, levels)
        horizons = max(1, row.size // (n_a * n_k * 2))
        if aligned:
            self.last_nmse_db = nmse_db(h.reshape(n_a, -1), h_hat.reshape(n_a, -1))
            notes.append(f"prediction for this report: NMSE {self.last_nmse_db:.1f} dB ({horizons} horizon(s) streamed)")
        else:
            notes.append("latest prediction shown (no prediction made from the previous report yet)")
        return True

    def _show(self, key: str, image: np.ndarray, levels: tuple[float, float]) -> None:
        w, img = self.maps[key]
        img.setImage(image, levels=levels, autoLevels=False)
        w.setXRange(0, image.shape[1], padding=0)
        w.setYRange(0, image.shape[0], padding=0)

    def _draw_nmse(self, metrics: Any) -> bool:
        data, stamps, _ = metrics.last_seconds(NMSE_HISTORY_S)
        if not len(stamps):
            return False
        x = stamps - local_clock()
        cols = signal_columns(metrics.info)
        in_db = [i for i in cols if metrics.info.units[i] == "dB"]  # other metrics (e.g. bit/s/Hz) need another axis
        for j, i in enumerate(in_db or cols):
            name = metrics.info.ch_names[i]
            if name not in self.nmse_curves:
                self.nmse_curves[name] = self.nmse_plot.plot(pen=pg.mkPen(color(j), width=2), name=name)
                self.nmse_legend.setColumnCount(len(self.nmse_curves))  # one row, above the curves
            self.nmse_curves[name].setData(x, data[:, i])
        return True


def _age(stamp: float) -> str:
    return f"{(local_clock() - stamp) * 1e3:.0f} ms"
