"""ED-ViT device status: one table row per edge device of a split vision transformer.

Reads ``EDViTStatus`` streams. Channels are grouped by device from their names
(``<device>_<field>``, e.g. ``dev0_alive``, ``dev0_latency_ms``); channels without a device prefix
go to a ``(fusion)`` row. Fields that read as liveness (``alive``, ``up``, ``online``, ``masked``)
are coloured; a ``state`` field holding a connection-state code is shown by name.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtGui, QtWidgets

from edgestream.core.chunk import StreamInfo
from edgestream.core.clock import local_clock
from edgestream.dashboard.panels.base import (MUTED, PANELS, STATE_BY_CODE, STATE_COLORS, Panel, signal_columns,
                                              small_label)

LIVENESS = {"alive": True, "up": True, "online": True, "ok": True, "masked": False, "down": False, "failed": False}


def split_channel(name: str) -> tuple[str, str]:
    """``dev0_latency_ms`` → (``dev0``, ``latency_ms``); ``fused_class`` → (``(fusion)``, ``fused_class``)."""
    head, _, tail = name.partition("_")
    if tail and (head[-1:].isdigit() or head.startswith(("dev", "device", "node", "worker"))):
        return head, tail
    return "(fusion)", name


def format_value(field: str, value: float) -> tuple[str, str | None]:
    """Text and optional colour for one status value."""
    if not np.isfinite(value):
        return "—", None
    if field == "state" and int(value) in STATE_BY_CODE and float(value).is_integer():
        state = STATE_BY_CODE[int(value)]
        return state.value, STATE_COLORS[state]
    if field in LIVENESS:
        good = (value > 0.5) == LIVENESS[field]
        return ("yes" if value > 0.5 else "no"), ("#5cc98a" if good else "#e8615a")
    if float(value).is_integer() and abs(value) < 1e9:
        return f"{int(value)}", None
    return f"{value:.3g}", None


@PANELS.register("edvit", area="right", order=3)
class EDViTPanel(Panel):
    """Status of the devices serving a split ViT (latest values, per device)."""

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
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        layout.addWidget(self.header)
        layout.addWidget(self.table, 1)
        self._version = -1

    @classmethod
    def accepts(cls, info: StreamInfo) -> bool:
        return info.type == "EDViTStatus" and info.dtype != "string"

    def draw(self) -> bool:
        feed = self.feeds[0]
        if feed.version == self._version:
            return False
        self._version = feed.version
        data, stamps = feed.last(1)
        if not len(stamps):
            return False
        rows: dict[str, dict[str, float]] = {}
        for i in signal_columns(feed.info):
            device, field = split_channel(feed.info.ch_names[i])
            rows.setdefault(device, {})[field] = float(data[-1, i])
        fields: list[str] = []
        for values in rows.values():
            fields += [f for f in values if f not in fields]
        self.table.setColumnCount(len(fields) + 1)
        self.table.setHorizontalHeaderLabels(["device"] + fields)
        self.table.setRowCount(len(rows))
        for r, (device, values) in enumerate(rows.items()):
            self.table.setItem(r, 0, QtWidgets.QTableWidgetItem(device))
            for c, field in enumerate(fields, start=1):
                text, colour = format_value(field, values.get(field, float("nan")))
                item = QtWidgets.QTableWidgetItem(text)
                if colour:
                    item.setForeground(QtGui.QColor(colour))
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        extra = f" (+{len(self.feeds) - 1} more status streams)" if len(self.feeds) > 1 else ""
        self.header.setText(f"{feed.info.name}: {len(rows)} device(s), updated {(local_clock() - stamps[-1]):.1f} s ago{extra}")
        return True
