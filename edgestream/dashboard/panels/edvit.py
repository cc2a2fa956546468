"""ED-ViT device status: one table row per edge device of a split vision transformer, and each
device's round-trip time over the last seconds.

Reads ``EDViTStatus`` streams (``edgestream.runners.edvit``): per device ``<dev>_state`` (an
index into ``desc/edvit/states``: ok, late, down, waiting) and ``<dev>_ms`` (round trip, NaN
when the device missed the frame), then ``n_present`` and ``fused_ms``. Device names come from
``desc/edvit/devices``; without that block, channels are grouped by their name prefix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtGui, QtWidgets

from edgestream.core.chunk import StreamInfo
from edgestream.core.clock import local_clock
from edgestream.dashboard.lslinfo import desc_list
from edgestream.dashboard.panels.base import MUTED, PANELS, Panel, color, plot_widget, signal_columns, small_label

DEFAULT_STATES = ("ok", "late", "down", "waiting")
STATE_COLOURS = {"ok": "#5cc98a", "late": "#f2a33a", "down": "#e8615a", "waiting": "#8fa3b8"}
FUSION = "(fusion)"
HISTORY_S = 30.0


def device_fields(info: StreamInfo) -> dict[str, dict[str, int]]:
    """Device (or ``(fusion)``) → field → channel index."""
    devices = sorted(desc_list(info.desc, "edvit", "devices"), key=len, reverse=True)  # longest prefix first
    out: dict[str, dict[str, int]] = {}
    for i in signal_columns(info):
        name = info.ch_names[i]
        device = next((d for d in devices if name.startswith(d + "_")), None)
        if device is None and not devices:  # no metadata: <device>_<field> by name
            head, _, tail = name.partition("_")
            device = head if tail and head[-1:].isdigit() else None
        if device is None:
            out.setdefault(FUSION, {})[name] = int(i)
        else:
            out.setdefault(device, {})[name[len(device) + 1:]] = int(i)
    return out


def format_field(field: str, value: float, states: Sequence[str]) -> tuple[str, str | None]:
    """Text and optional colour for one status value."""
    if not np.isfinite(value):
        return "—", None
    if field == "state" and float(value).is_integer() and 0 <= int(value) < len(states):
        name = states[int(value)]
        return name, STATE_COLOURS.get(name)
    if field.endswith("ms"):
        return f"{value:.1f}", None
    return (f"{int(value)}" if float(value).is_integer() else f"{value:.3g}"), None


@PANELS.register("edvit", area="right", order=3)
class EDViTPanel(Panel):
    """Status of the devices serving a split ViT (latest values, per device) and their round trips."""

    title = "ED-ViT devices"
    waiting_text = "ED-ViT: waiting for a device status stream (type EDViTStatus)."
    max_hz = 4.0

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self.content)
        layout.setContentsMargins(2, 2, 2, 2)
        self.header = small_label()
        self.header.setStyleSheet(f"color: {MUTED};")
        self.table = QtWidgets.QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.plot = plot_widget(bottom="time to now (s)", left="round trip (ms)")
        self.plot.setXRange(-HISTORY_S, 0, padding=0)
        self.legend = self.plot.addLegend(offset=(5, 1), brush=(21, 23, 28, 180))
        self.curves: dict[str, pg.PlotDataItem] = {}
        layout.addWidget(self.header)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.plot, 1)
        self.shown: dict[str, dict[str, str]] = {}  # device → field → text (tests read it)
        self._version = -1

    @classmethod
    def accepts(cls, info: StreamInfo) -> bool:
        return info.type == "EDViTStatus" and info.dtype != "string"

    def draw(self) -> bool:
        feed = self.feeds[0]
        if feed.version == self._version:
            return False
        self._version = feed.version
        data, stamps, _ = feed.last_seconds(HISTORY_S)
        if not len(stamps):
            return False
        info: StreamInfo = feed.info
        states = desc_list(info.desc, "edvit", "states") or list(DEFAULT_STATES)
        groups = device_fields(info)
        fields: list[str] = []
        for values in groups.values():
            fields += [f for f in values if f not in fields]
        self.table.setColumnCount(len(fields) + 1)
        self.table.setHorizontalHeaderLabels(["device"] + fields)
        self.table.setRowCount(len(groups))
        self.shown = {}
        for r, (device, cols) in enumerate(groups.items()):
            self.table.setItem(r, 0, QtWidgets.QTableWidgetItem(device))
            self.shown[device] = {}
            for c, field in enumerate(fields, start=1):
                value = float(data[-1, cols[field]]) if field in cols else float("nan")
                text, colour = format_field(field, value, states)
                self.shown[device][field] = text
                item = QtWidgets.QTableWidgetItem(text)
                if colour:
                    item.setForeground(QtGui.QColor(colour))
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        t = stamps - local_clock()
        for j, (device, cols) in enumerate(groups.items()):
            field = "ms" if "ms" in cols else ("fused_ms" if "fused_ms" in cols else None)
            if field is None:
                continue
            if device not in self.curves:
                self.curves[device] = self.plot.plot(pen=pg.mkPen(color(j), width=2), name=device)
                self.legend.setColumnCount(len(self.curves))
            self.curves[device].setData(t, data[:, cols[field]], connect="finite")
        extra = f" (+{len(self.feeds) - 1} more status streams)" if len(self.feeds) > 1 else ""
        self.header.setText(f"{info.name}: {len(groups) - (FUSION in groups)} device(s), "
                            f"updated {(local_clock() - stamps[-1]):.1f} s ago{extra}")
        return True
