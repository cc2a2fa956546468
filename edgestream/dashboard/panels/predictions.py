"""Model outputs: class probabilities over time, the current decision and its confidence.

Reads ``Predictions`` streams (channels ``p_<class>``…, ``class``, ``confidence``, ``warming``,
``counter``; class names from ``desc/model/classes``). One row per stream.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from edgestream.core.chunk import StreamInfo
from edgestream.core.clock import local_clock
from edgestream.dashboard.lslinfo import class_names, desc_path
from edgestream.dashboard.panels.base import (BACKGROUND, FOREGROUND, MUTED, PANELS, Panel, big_font, color,
                                              grid_lines, plot_widget, set_style, small_label)

HISTORY_S = 30.0
MAX_ROWS = 4
SIDE_WIDTH = 170  # px of the decision read-out beside each plot


class _Row(QtWidgets.QWidget):
    """Probabilities plot + decision read-out for one Predictions stream."""

    def __init__(self, feed: Any) -> None:
        super().__init__()
        self.feed = feed
        info: StreamInfo = feed.info
        self.classes = class_names(info)
        idx = {n: i for i, n in enumerate(info.ch_names)}
        self.prob_cols = [i for i, n in enumerate(info.ch_names) if n.startswith("p_")]
        self.class_col = idx.get("class")
        self.conf_col = idx.get("confidence")
        self.warm_col = idx.get("warming")
        self.version = -1
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plot = plot_widget(grid=False, bottom="time to now (s)", left="probability")
        grid_lines(self.plot, xs=np.arange(-HISTORY_S + 5, 0, 5), ys=(0.2, 0.4, 0.6, 0.8, 1.0))
        self.plot.setYRange(0, 1.02, padding=0)
        self.plot.setXRange(-HISTORY_S, 0, padding=0)
        self.plot.getPlotItem().setMouseEnabled(x=False, y=False)
        # class colours as a title line rather than a legend box drawn over the curves
        self.plot.setTitle("&nbsp;&nbsp;".join(f'<span style="color:{color(i)}">&#9632; {self._class(i)}</span>'
                                               for i in range(len(self.prob_cols))), size="9pt")
        self.curves = [self.plot.plot(pen=pg.mkPen(color(i), width=2)) for i in range(len(self.prob_cols))]
        layout.addWidget(self.plot, 1)
        side = QtWidgets.QVBoxLayout()
        model = desc_path(info.desc, "model", "name", default="") or desc_path(info.desc, "model", "model", default="")
        title = small_label(f"model {model}" if model else info.name)
        title.setToolTip(f"stream {info.name} ({info.source_id or 'no source_id'})")
        title.setStyleSheet(f"color: {MUTED}; font-size: 11px;")
        title.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.decision = QtWidgets.QLabel("—")
        self.decision.setFont(big_font(20))
        self.decision.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.confidence = QtWidgets.QLabel("")
        self.confidence.setFont(big_font(12))
        self.confidence.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.confidence.setStyleSheet(f"color: {FOREGROUND};")
        self.badge = QtWidgets.QLabel("")
        self.badge.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        for w in (title, self.decision, self.confidence, self.badge):
            side.addWidget(w)
        side.addStretch(1)
        margins = side.contentsMargins()
        for label in (self.decision, self.confidence, self.badge):
            # A fixed-size label changing its text (10 times a second) does not make Qt lay out
            # the panel, its dock and the main window again; a free-sized one does.
            label.setFixedSize(SIDE_WIDTH - margins.left() - margins.right(), label.fontMetrics().height() + 8)
        box = QtWidgets.QWidget()
        box.setLayout(side)
        box.setFixedWidth(SIDE_WIDTH)
        box.setStyleSheet(f"background: {BACKGROUND};")
        layout.addWidget(box)

    def _class(self, i: int) -> str:
        return self.classes[i] if i < len(self.classes) else self.feed.info.ch_names[self.prob_cols[i]]

    def draw(self) -> bool:
        if self.feed.version == self.version:
            return False
        self.version = self.feed.version
        data, stamps, _ = self.feed.last_seconds(HISTORY_S)
        if not len(stamps):
            return False
        x = stamps - local_clock()
        for i, curve in enumerate(self.curves):
            curve.setData(x, data[:, self.prob_cols[i]])
        last = data[-1]
        if self.class_col is not None and np.isfinite(last[self.class_col]):
            k = int(last[self.class_col])
        elif self.prob_cols:
            k = int(np.argmax(last[self.prob_cols]))
        else:
            k = -1
        name = self._class(k) if 0 <= k < len(self.prob_cols) else (str(k) if k >= 0 else "—")
        conf = float(last[self.conf_col]) if self.conf_col is not None else (
            float(last[self.prob_cols[k]]) if 0 <= k < len(self.prob_cols) else float("nan"))
        self.decision.setText(name)
        set_style(self.decision, f"color: {color(k) if k >= 0 else FOREGROUND};")
        self.confidence.setText(f"confidence {conf:.0%}" if np.isfinite(conf) else "")
        warming = self.warm_col is not None and last[self.warm_col] > 0.5
        self.badge.setText("warming up" if warming else "")
        set_style(self.badge, "color: #15171c; background: #f2a33a; border-radius: 3px; padding: 2px;"
                  if warming else "")
        return True


@PANELS.register("predictions", area="right", order=0)
class PredictionsPanel(Panel):
    """Class probabilities over time and the current decision, per Predictions stream."""

    title = "Predictions"
    waiting_text = "Predictions: waiting for a model output stream (type Predictions)."
    max_hz = 20.0

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[_Row] = []
        self._layout = QtWidgets.QVBoxLayout(self.content)
        self._layout.setContentsMargins(2, 2, 2, 2)

    @classmethod
    def accepts(cls, info: StreamInfo) -> bool:
        return info.type == "Predictions" and info.dtype != "string"

    def feeds_changed(self) -> None:
        keys = [f.key for f in self.feeds[:MAX_ROWS]]
        if keys == [r.feed.key for r in self.rows] and all(r.feed is f for r, f in zip(self.rows, self.feeds)):
            return
        for row in self.rows:
            self._layout.removeWidget(row)
            row.deleteLater()
        self.rows = [_Row(f) for f in self.feeds[:MAX_ROWS]]
        for row in self.rows:
            self._layout.addWidget(row, 1)

    def draw(self) -> bool:
        drew = [row.draw() for row in self.rows]
        return any(drew)
