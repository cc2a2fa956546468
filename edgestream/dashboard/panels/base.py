"""What every panel shares: the registry, the base class, colours, and the stream chooser.

A panel declares which streams it shows (:meth:`Panel.accepts`, usually by LSL stream type),
receives the list of open feeds whenever it changes (:meth:`Panel.set_feeds`), and draws in
:meth:`Panel.refresh`, which the window calls from its render timer — never faster than the
panel's ``max_hz`` and the global frame cap, and not at all while the panel is hidden or the
display is frozen. Panels only read snapshots of the feeds; they never block on the network.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from edgestream.core.chunk import StreamInfo
from edgestream.core.io import ConnectionState
from edgestream.core.registry import Registry

PANELS: Registry[Panel] = Registry("panel", packages=("edgestream.dashboard.panels",))

# Stream types that have a panel of their own; every other numeric, regular stream is a signal.
DERIVED_TYPES = frozenset({"Predictions", "Latency", "Health", "CSI", "CSIPrediction", "CSIMetrics",
                           "EDViTStatus", "Periods", "BandPower", "Markers"})

BACKGROUND = "#15171c"
FOREGROUND = "#c9ced6"
MUTED = "#7d8590"
PALETTE = ["#4e9af1", "#f2a33a", "#5cc98a", "#e8615a", "#a98ff0", "#47c4cf", "#e580c0", "#c8c05a",
           "#8fa3b8", "#f07e3a"]
STATE_COLORS = {
    ConnectionState.CONNECTING: "#8fa3b8",
    ConnectionState.CONNECTED: "#5cc98a",
    ConnectionState.STALLED: "#f2a33a",
    ConnectionState.LOST: "#e8615a",
    ConnectionState.RECOVERING: "#4e9af1",
    ConnectionState.ENDED: "#7d8590",
}
STATE_BY_CODE = {s.code: s for s in ConnectionState}


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def signal_columns(info: StreamInfo) -> np.ndarray:
    """Indices of the channels worth drawing (not counters, flags or marker text)."""
    skip = {"counter", "marker", "markers", "stim", "trigger"}
    cols = [i for i, (n, t) in enumerate(zip(info.ch_names, info.ch_types)) if t not in skip and n != "counter"]
    return np.asarray(cols or range(info.n_channels), dtype=int)


def plot_widget(grid: bool = True, **labels: str) -> pg.PlotWidget:
    """A PlotWidget in the dashboard's style (dark, light grid, no auto-range menu clutter).

    ``grid=False`` leaves out the axis grid: pyqtgraph draws it as part of the axes, so a plot
    updated many times a second would repaint its axes each time; use :func:`grid_lines`.
    """
    w = pg.PlotWidget(background=BACKGROUND)
    # One repaint rectangle per frame (the union of what changed): with the default, Qt draws
    # the scene once per disjoint dirty rectangle, i.e. a 64-channel curve several times.
    w.setViewportUpdateMode(QtWidgets.QGraphicsView.ViewportUpdateMode.BoundingRectViewportUpdate)
    item = w.getPlotItem()
    item.showGrid(x=grid, y=grid, alpha=0.15)
    item.setMenuEnabled(False)
    item.hideButtons()
    for side, text in labels.items():
        item.setLabel(side, text, color=MUTED)
    for axis in ("left", "bottom"):
        ax = item.getAxis(axis)
        ax.setPen(pg.mkPen(MUTED))
        ax.setTextPen(pg.mkPen(FOREGROUND))
        # Ticks point outwards: inward ticks make the axis overlap the plot area, so every
        # curve update near an edge would repaint the axis and its labels too.
        ax.setStyle(tickLength=5)
    return w


class Panel(QtWidgets.QWidget):
    """Base class of dashboard panels.

    Subclasses set ``title``, ``waiting_text`` (shown until a matching stream is open),
    ``max_hz``, implement :meth:`accepts` and :meth:`draw`, and build their widgets into
    ``self.content``.
    """

    title: ClassVar[str] = ""
    waiting_text: ClassVar[str] = "waiting for a stream"
    max_hz: ClassVar[float] = 30.0

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.feeds: list[Any] = []  # the open feeds this panel accepts
        self.updates = 0  # refreshes that drew new data (tests check every panel receives data)
        self.draw_seconds = 0.0  # time spent drawing (the benchmark reports it)
        self._last_refresh = 0.0
        self._stack = QtWidgets.QStackedLayout(self)
        self._waiting = QtWidgets.QLabel(self.waiting_text)
        self._waiting.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self._waiting.setWordWrap(True)
        self._waiting.setStyleSheet(f"color: {MUTED}; font-size: 13px; background: {BACKGROUND};")
        self.content = QtWidgets.QWidget()
        self._stack.addWidget(self._waiting)
        self._stack.addWidget(self.content)

    @classmethod
    def accepts(cls, info: StreamInfo) -> bool:
        raise NotImplementedError

    def set_feeds(self, feeds: Sequence[Any]) -> None:
        """All open feeds (the window calls this whenever the set changes)."""
        self.feeds = [f for f in feeds if self.accepts(f.info)]
        self._stack.setCurrentIndex(1 if self.feeds else 0)
        self.feeds_changed()

    def feeds_changed(self) -> None:
        """Hook: rebuild stream choosers, curves... after :meth:`set_feeds`."""

    def visible_on_screen(self) -> bool:
        return self.isVisible() and not self.visibleRegion().isEmpty()

    def refresh(self, now: float, force: bool = False) -> None:
        """Draw if due (rate cap) and visible; ``force`` skips both checks (screenshots)."""
        if not self.feeds:
            return
        if not force:
            if now - self._last_refresh < 1.0 / self.max_hz or not self.visible_on_screen():
                return
        self._last_refresh = now
        t0 = time.perf_counter()
        if self.draw():
            self.updates += 1
        self.draw_seconds += time.perf_counter() - t0

    def draw(self) -> bool:
        """Draw from the feeds; return True when new data was drawn."""
        raise NotImplementedError

    def save_settings(self, settings: QtCore.QSettings) -> None:
        """Hook: remember choices under ``settings`` (already scoped to this panel's group)."""

    def restore_settings(self, settings: QtCore.QSettings) -> None:
        """Hook: restore what :meth:`save_settings` wrote."""


class StreamChooser(QtWidgets.QComboBox):
    """Pick one of a panel's feeds; keeps the choice (by stream key) across list changes."""

    def __init__(self, preferred_types: Sequence[str] = (), parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.preferred_types = tuple(preferred_types)
        self.wanted_key = ""  # the user's choice, kept even while that stream is away
        # Long stream names must not widen the window: show ~24 characters, full names in the list.
        self.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(18)
        self.activated.connect(lambda _: setattr(self, "wanted_key", self.currentData() or ""))

    def set_feeds(self, feeds: Sequence[Any]) -> None:
        self.blockSignals(True)
        self.clear()
        for f in feeds:
            self.addItem(f"{f.info.name}  ({f.info.type}, {f.info.n_channels} ch)", f.key)
        keys = [f.key for f in feeds]
        if self.wanted_key in keys:
            index = keys.index(self.wanted_key)
        else:
            preferred = [i for i, f in enumerate(feeds) if f.info.type in self.preferred_types]
            index = preferred[0] if preferred else 0
        if feeds:
            self.setCurrentIndex(index)
        self.blockSignals(False)

    def current(self, feeds: Sequence[Any]) -> Any:
        key = self.currentData()
        return next((f for f in feeds if f.key == key), feeds[0] if feeds else None)


def small_label(text: str = "", bold: bool = False) -> QtWidgets.QLabel:
    """A one-line label that never widens its panel (long text is cut, full text in the tooltip)."""
    label = _ElidingLabel(text)
    label.setStyleSheet(f"color: {FOREGROUND}; {'font-weight: 600;' if bold else ''}")
    return label


def grid_lines(plot: pg.PlotWidget, xs: Sequence[float] = (), ys: Sequence[float] = (),
               span: float = 0.0) -> list[pg.InfiniteLine]:
    """Fixed grid lines drawn as plot items (vertical at ``xs``, horizontal at ``ys``).

    ``span`` keeps each line that fraction of the plot clear of both ends (see traces' EDGE_GAP).
    """
    lines = [pg.InfiniteLine(v, angle=angle, movable=False, pen=pg.mkPen(255, 255, 255, 28))
             for angle, values in ((90, xs), (0, ys)) for v in values]
    for line in lines:
        line.setSpan(span, 1.0 - span)
        line.setZValue(-10)
        plot.addItem(line)
    return lines


def set_style(widget: QtWidgets.QWidget, css: str) -> None:
    """Set a style sheet only when it changes (every setStyleSheet re-polishes the widget)."""
    if widget.styleSheet() != css:
        widget.setStyleSheet(css)


class _ElidingLabel(QtWidgets.QLabel):
    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt naming)
        if text != self.text():  # unchanged text: no relayout, no repaint
            super().setText(text)
            self.setToolTip(text)


def big_font(points: int) -> QtGui.QFont:
    font = QtGui.QFont()
    font.setPointSize(points)
    font.setBold(True)
    return font
