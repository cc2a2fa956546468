"""Health: every stream's connection state, rate, lag, clock offset and drops, and pipeline latency.

Two views of stream health side by side in one table:

* **dashboard** rows — each stream this dashboard reads, measured here: effective vs nominal
  rate, lag to now (newest stamp vs the LSL clock), clock offset, drops by cause, state;
* **pipeline** rows — each source of a running pipeline, as that pipeline reports it on its
  ``<pipeline>-health`` stream (``<src>_state``, ``_rate_hz``, ``_lag_ms``, drop counters).

Below, the pipeline's ``<pipeline>-latency`` stream: end-to-end and per-stage p50/p99 as bars,
and end-to-end latency over time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from edgestream.core.chunk import StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.io import ConnectionState
from edgestream.dashboard.lslinfo import desc_path
from edgestream.dashboard.panels.base import (MUTED, PANELS, STATE_BY_CODE, STATE_COLORS, Panel, StreamChooser,
                                              color, plot_widget, small_label)

COLUMNS = ["state", "stream", "seen by", "nominal Hz", "effective Hz", "lag ms", "clock offset ms", "overflow",
           "counter gap", "reconnect gap", "non-finite"]
TIPS = {"effective Hz": "samples per second received over the last seconds",
        "lag ms": "how old the newest sample was when it arrived (its stamp vs the LSL clock)",
        "clock offset ms": "correction from the sender's clock to this machine's LSL clock",
        "overflow": "samples discarded because the reader fell behind",
        "counter gap": "samples missing in the sender's counter channel",
        "reconnect gap": "samples missed while the stream was lost",
        "non-finite": "samples dropped for NaN/inf values"}
HEALTH_FIELDS = ("state", "rate_hz", "lag_ms", "overflow", "counter_gap", "reconnect_gap", "nonfinite")
LATENCY_HISTORY_S = 60.0


def _fmt(value: float, digits: int = 1) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def pipeline_rows(feed: Any) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Parse the newest sample of a Health stream into per-source rows and per-node queue drops."""
    data, _ = feed.last(1)
    if not len(data):
        return [], {}
    values = dict(zip(feed.info.ch_names, data[-1].astype(float)))
    sources: dict[str, dict[str, float]] = {}
    queues: dict[str, float] = {}
    for name, value in values.items():
        if name.endswith("_queue_drops"):
            queues[name[: -len("_queue_drops")]] = value
            continue
        for field in HEALTH_FIELDS:
            if name.endswith("_" + field):
                sources.setdefault(name[: -len(field) - 1], {})[field] = value
                break
    pipeline = pipeline_name(feed.info)
    rows = []
    for src, f in sources.items():
        code = f.get("state", float("nan"))
        state = STATE_BY_CODE.get(int(code)) if np.isfinite(code) else None
        rows.append({"stream": f"source {src}", "seen by": f"pipeline {pipeline}", "state": state,
                     "nominal_hz": float("nan"), "effective_hz": f.get("rate_hz", float("nan")),
                     "lag_ms": f.get("lag_ms", float("nan")), "clock_offset_ms": float("nan"),
                     "drops": {"overflow": f.get("overflow", 0), "counter_gap": f.get("counter_gap", 0),
                               "reconnect_gap": f.get("reconnect_gap", 0), "nonfinite": f.get("nonfinite", 0)}})
    return rows, queues


def pipeline_name(info: StreamInfo) -> str:
    """The pipeline a monitor stream belongs to: ``desc/pipeline/name``, else its name minus the suffix."""
    name = desc_path(info.desc, "pipeline", "name")
    if name:
        return str(name)
    for suffix in ("-health", "-latency"):
        if info.name.endswith(suffix):
            return info.name[: -len(suffix)]
    return info.name


def latency_stages(info: StreamInfo) -> list[str]:
    """Stage ids of a Latency stream, in channel order (``<node>_p50_ms`` / ``<node>_p99_ms``)."""
    return [n[: -len("_p50_ms")] for n in info.ch_names if n.endswith("_p50_ms") and not n.startswith("e2e_")]


@PANELS.register("health", area="bottom", order=0)
class HealthPanel(Panel):
    """Stream health table and pipeline latency."""

    title = "Health"
    waiting_text = "Health: no streams open yet. Streams appear in the stream picker as they are found."
    max_hz = 2.0

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.all_feeds: list[Any] = []
        self.states: dict[str, ConnectionState | None] = {}  # row label → state shown (tests read it)
        layout = QtWidgets.QHBoxLayout(self.content)
        layout.setContentsMargins(2, 2, 2, 2)
        left = QtWidgets.QVBoxLayout()
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for i, name in enumerate(COLUMNS):
            if name in TIPS:
                self.table.horizontalHeaderItem(i).setToolTip(TIPS[name])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        self.queue_label = small_label()
        self.queue_label.setStyleSheet(f"color: {MUTED};")
        left.addWidget(self.table, 1)
        left.addWidget(self.queue_label)
        layout.addLayout(left, 3)
        right = QtWidgets.QVBoxLayout()
        self.chooser = StreamChooser(preferred_types=("Latency",))
        self.chooser.currentIndexChanged.connect(lambda _: self._reset_latency())
        right.addWidget(self.chooser)
        plots = QtWidgets.QHBoxLayout()
        self.bars_plot = plot_widget(bottom="latency (ms)")  # horizontal bars: stage names stay readable
        self.bars_plot.setTitle(f'<span style="color:{color(0)}">&#9632; p50</span>&nbsp;&nbsp;'
                                f'<span style="color:{color(1)}">&#9632; p99</span>&nbsp;&nbsp;'
                                f'<span style="color:{MUTED}">per stage, latest report</span>', size="9pt")
        self.bars50 = pg.BarGraphItem(x0=[], y=[], width=[], height=0.38, brush=color(0))
        self.bars99 = pg.BarGraphItem(x0=[], y=[], width=[], height=0.38, brush=color(1))
        self.bars_plot.addItem(self.bars50)
        self.bars_plot.addItem(self.bars99)
        self.bars_plot.getPlotItem().setMouseEnabled(x=False, y=False)
        self.time_plot = plot_widget(bottom="time to now (s)", left="end-to-end (ms)")
        self.time_plot.setXRange(-LATENCY_HISTORY_S, 0, padding=0)
        legend = self.time_plot.addLegend(offset=(5, 1), brush=(21, 23, 28, 180))
        self.e2e_curves = {q: self.time_plot.plot(pen=pg.mkPen(color(i), width=2), name=q)
                           for i, q in enumerate(("p50", "p99", "max"))}
        legend.setColumnCount(3)
        plots.addWidget(self.bars_plot, 1)
        plots.addWidget(self.time_plot, 1)
        plot_box = QtWidgets.QWidget()
        plot_box.setLayout(plots)
        plots.setContentsMargins(0, 0, 0, 0)
        self.no_latency = QtWidgets.QLabel("Pipeline latency: no stream of type Latency open.\n"
                                           "`edgestream run` publishes <pipeline>-latency once a second.")
        self.no_latency.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.no_latency.setStyleSheet(f"color: {MUTED};")
        self.latency_stack = QtWidgets.QStackedWidget()
        self.latency_stack.addWidget(self.no_latency)
        self.latency_stack.addWidget(plot_box)
        right.addWidget(self.latency_stack, 1)
        self.latency_label = small_label()
        self.latency_label.setStyleSheet(f"color: {MUTED};")
        right.addWidget(self.latency_label)
        layout.addLayout(right, 2)

    @classmethod
    def accepts(cls, info: StreamInfo) -> bool:
        return True

    def set_feeds(self, feeds: Any) -> None:
        super().set_feeds(feeds)
        latency = [f for f in self.feeds if f.info.type == "Latency"]
        self.chooser.blockSignals(True)
        self.chooser.set_feeds(latency)
        self.chooser.blockSignals(False)
        self.chooser.setVisible(len(latency) > 1)
        self.latency_stack.setCurrentIndex(1 if latency else 0)
        if not latency:
            self.latency_label.setText("")

    def _reset_latency(self) -> None:
        for c in self.e2e_curves.values():
            c.setData([], [])

    def draw(self) -> bool:
        rows = [self._dashboard_row(f) for f in self.feeds]
        queues: dict[str, float] = {}
        for f in self.feeds:
            if f.info.type == "Health":
                more, q = pipeline_rows(f)
                rows += more
                queues.update(q)
        self._fill_table(rows)
        self.queue_label.setText("pipeline queue drops: " + ", ".join(f"{k} {int(v)}" for k, v in queues.items())
                                 if queues else "")
        self._draw_latency()
        return True

    def _dashboard_row(self, feed: Any) -> dict[str, Any]:
        h = feed.health()
        return {"stream": f"{h['name']} ({h['type']})", "seen by": "dashboard", "state": h["state"],
                "nominal_hz": h["nominal_hz"], "effective_hz": h["effective_hz"], "lag_ms": h["lag_ms"],
                "clock_offset_ms": h["clock_offset_ms"], "drops": h["drops"]}

    def _fill_table(self, rows: list[dict[str, Any]]) -> None:
        self.table.setRowCount(len(rows))
        self.states = {}
        for r, row in enumerate(rows):
            state: ConnectionState | None = row["state"]
            self.states[f"{row['stream']} / {row['seen by']}"] = state
            nominal = row["nominal_hz"]
            d = row["drops"]
            cells = [state.value if state else "?", row["stream"], row["seen by"],
                     "irregular" if nominal == 0 else _fmt(nominal), _fmt(row["effective_hz"]), _fmt(row["lag_ms"]),
                     _fmt(row["clock_offset_ms"], 2), f"{int(d['overflow'])}", f"{int(d['counter_gap'])}",
                     f"{int(d['reconnect_gap'])}", f"{int(d['nonfinite'])}"]
            for c, text in enumerate(cells):
                item = self.table.item(r, c)
                if item is None:
                    item = QtWidgets.QTableWidgetItem()
                    self.table.setItem(r, c, item)
                item.setText(text)
                if c == 0:
                    item.setForeground(QtGui.QColor(STATE_COLORS.get(state, MUTED)))
                elif c >= 7:
                    item.setForeground(QtGui.QColor("#e8615a" if text != "0" else "#c9ced6"))
        self.table.resizeColumnsToContents()
        for col, widest in ((1, 300), (2, 180)):  # long names are elided in the middle
            if self.table.columnWidth(col) > widest:
                self.table.setColumnWidth(col, widest)

    def _draw_latency(self) -> None:
        feeds = [f for f in self.feeds if f.info.type == "Latency"]
        feed = self.chooser.current(feeds)
        if feed is None:
            return
        data, stamps, _ = feed.last_seconds(LATENCY_HISTORY_S)
        if not len(stamps):
            self.latency_label.setText(f"{feed.info.name}: waiting for the first latency report")
            return
        idx = {n: i for i, n in enumerate(feed.info.ch_names)}
        last = data[-1]
        labels = ["e2e"] + latency_stages(feed.info)
        p50 = [last[idx[f"{s}_p50_ms"]] for s in labels if f"{s}_p50_ms" in idx]
        p99 = [last[idx[f"{s}_p99_ms"]] for s in labels if f"{s}_p99_ms" in idx]
        y = np.arange(len(p50))[::-1].astype(float)  # end-to-end on top, then the stages in order
        self.bars50.setOpts(x0=np.zeros(len(y)), y=y + 0.2, width=np.nan_to_num(p50), height=0.38)
        self.bars99.setOpts(x0=np.zeros(len(y)), y=y - 0.2, width=np.nan_to_num(p99), height=0.38)
        self.bars_plot.getPlotItem().getAxis("left").setTicks([list(zip(y, labels[: len(p50)])), []])
        t = stamps - local_clock()
        for q, curve in self.e2e_curves.items():
            col = idx.get(f"e2e_{q}_ms")
            if col is not None:
                curve.setData(t, data[:, col])
        e50, e99 = (last[idx[k]] if k in idx else np.nan for k in ("e2e_p50_ms", "e2e_p99_ms"))
        self.latency_label.setText(f"{feed.info.name}: end-to-end p50 {_fmt(e50, 2)} ms, p99 {_fmt(e99, 2)} ms "
                                   f"(newest report {local_clock() - stamps[-1]:.1f} s ago)")
