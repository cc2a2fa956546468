"""Scrolling multichannel traces: one lane per channel, per-channel scaling, display filters.

The lanes are drawn incrementally into an image (:mod:`edgestream.dashboard.canvas`): each
frame draws only the pixel columns time has added, one min/max line per lane and column, in
two alternating colours for contrast. The whole window is drawn again only when the picture's
meaning changes (size, window, channels, gains, or a lane outgrowing or leaving its scale) —
which is what keeps 64 channels at 1000 Hz cheap. Marker streams appear as labelled vertical
lines.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from edgestream.core.chunk import StreamInfo
from edgestream.core.clock import local_clock
from edgestream.dashboard.panels.base import (BACKGROUND, DERIVED_TYPES, FOREGROUND, MUTED, PANELS, Panel,
                                              StreamChooser, grid_lines, plot_widget, signal_columns, small_label)
from edgestream.dashboard.canvas import CanvasItem, ColumnStore, TraceCanvas
from edgestream.dashboard.views import FilteredView, FilterSettings

WINDOWS_S = (2.0, 5.0, 10.0, 20.0, 30.0)
LANE_FILL = 0.45  # half-height of a lane used by a full-scale signal (lanes are 1.0 apart)
MAX_MARKER_LINES = 24
TRACE_COLORS = ("#8ab4f8", "#c5d3e8")  # even and odd lanes
# Auto scale: a lane is rescaled (and the window redrawn) when the span of its shown signal
# leaves [RESCALE_BELOW, RESCALE_ABOVE] × its scale, or the middle of its range moves RECENTRE_BEYOND × its scale.
RESCALE_ABOVE, RESCALE_BELOW, RECENTRE_BEYOND = 1.25, 0.5, 0.25
# Curves and marker lines stay this fraction of the plot clear of its left and bottom edges:
# Qt repaints whatever touches a redrawn area (widened by a pixel), and curves touching the
# axes would make both axes repaint their ticks and labels with every frame.
EDGE_GAP = 0.01


@PANELS.register("traces", area="center", order=0)
class TracesPanel(Panel):
    """Scrolling traces of one signal stream (EEG or any regular numeric stream)."""

    title = "Traces"
    waiting_text = "Traces: waiting for a signal stream (EEG or any regular LSL stream).\nStart one with `edgestream simulate eeg`."
    max_hz = 60.0

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.window_s = 10.0
        self.scale_mode = "auto"  # "auto": each channel fills its lane; "fixed": same units per lane
        self.fixed_scale = 100.0  # stream units per lane (e.g. µV) in fixed mode
        self.filters = FilterSettings()
        self.channel_prefs: dict[str, dict[str, Any]] = {}  # stream key → {"hidden": [...], "gain": {...}}
        self._view: FilteredView | None = None
        self._view_key = ""
        self._scales: tuple[np.ndarray, np.ndarray] | None = None  # (span, centre) per shown lane
        self._scales_mode: tuple[str, float] | None = None
        self._store: ColumnStore | None = None
        self._store_key: tuple[Any, ...] | None = None
        self._canvas: TraceCanvas | None = None
        self._canvas_key: tuple[Any, ...] | None = None
        self.full_redraws = 0  # frames that drew the whole window rather than the new columns
        self._ticks_key: tuple[Any, ...] | None = None
        self._markers: list[pg.InfiniteLine] = []
        self._build_ui()

    # --- UI ------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        layout = QtWidgets.QVBoxLayout(self.content)
        layout.setContentsMargins(2, 2, 2, 2)
        bar = QtWidgets.QHBoxLayout()
        self.chooser = StreamChooser(preferred_types=("EEG", "EMG", "ECG", "MEG"))
        self.chooser.setMinimumContentsLength(14)
        self.chooser.currentIndexChanged.connect(lambda _: self._reset_view())
        self.window_box = QtWidgets.QComboBox()
        for w in WINDOWS_S:
            self.window_box.addItem(f"{w:g} s", w)
        self.window_box.currentIndexChanged.connect(lambda _: self._set_window(self.window_box.currentData()))
        self.scale_box = QtWidgets.QComboBox()
        self.scale_box.addItem("auto scale", "auto")
        self.scale_box.addItem("fixed scale", "fixed")
        self.scale_box.setToolTip("auto: each channel fills its lane; fixed: the same span (box on the right) for all")
        self.scale_box.currentIndexChanged.connect(lambda _: self._set_scale_mode(self.scale_box.currentData()))
        self.scale_spin = QtWidgets.QDoubleSpinBox()
        self.scale_spin.setRange(1e-6, 1e9)
        self.scale_spin.setDecimals(3)
        self.scale_spin.setValue(self.fixed_scale)
        self.scale_spin.setToolTip("Signal span of one lane in fixed-scale mode, in the stream's units")
        self.scale_spin.setMaximumWidth(90)
        self.scale_spin.setEnabled(False)
        self.scale_spin.valueChanged.connect(lambda v: setattr(self, "fixed_scale", float(v)))
        self.hp_box = QtWidgets.QCheckBox("HP 0.5")
        self.bp_box = QtWidgets.QCheckBox("BP 1–40")
        self.notch_box = QtWidgets.QCheckBox("notch")
        self.notch_hz = QtWidgets.QComboBox()
        self.notch_hz.addItems(["50 Hz", "60 Hz"])
        for box in (self.hp_box, self.bp_box, self.notch_box):
            box.setToolTip("Display filter (edgestream.dsp stage, causal); the stream itself is not changed")
            box.toggled.connect(lambda _: self._filters_changed())
        self.notch_hz.currentIndexChanged.connect(lambda _: self._filters_changed())
        self.channels_button = QtWidgets.QToolButton()
        self.channels_button.setText("Channels")
        self.channels_button.setCheckable(True)
        self.channels_button.setToolTip("Show or hide channels and set a gain per channel")
        self.channels_button.toggled.connect(lambda on: self.table.setVisible(on))
        for w in (self.chooser, self.window_box, self.scale_box, self.scale_spin, self.hp_box, self.bp_box,
                  self.notch_box, self.notch_hz, self.channels_button):
            bar.addWidget(w)
        bar.addStretch(1)
        layout.addLayout(bar)
        body = QtWidgets.QHBoxLayout()
        self.plot = plot_widget(bottom="time to now (s)")
        item = self.plot.getPlotItem()
        item.setMouseEnabled(x=False, y=True)
        # No axis grid: pyqtgraph draws it as part of the axis, so every frame would repaint the
        # axes and their labels; plain lines at whole seconds cost almost nothing.
        item.showGrid(x=False, y=False)
        self._grid: list[pg.InfiniteLine] = []
        self.image = CanvasItem()
        self.image.setZValue(-20)  # opaque: below the (translucent) grid and marker lines
        self.plot.addItem(self.image)
        self._set_window(self.window_s)
        self.status = small_label()
        self.status.setStyleSheet(f"color: {MUTED};")
        self.table = QtWidgets.QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["channel", "gain"])
        self.table.verticalHeader().setVisible(False)
        self.table.setMaximumWidth(200)
        self.table.setVisible(False)
        self.table.itemChanged.connect(self._table_changed)
        body.addWidget(self.plot, 1)
        body.addWidget(self.table)
        layout.addLayout(body, 1)
        layout.addWidget(self.status)

    def _set_window(self, seconds: float) -> None:
        self.window_s = float(seconds)
        self.plot.setXRange(-self.window_s, 0.0, padding=0.0)
        self.image.clip_left = -self.window_s * (1.0 - EDGE_GAP)  # clear of the channel axis
        step = 1.0 if self.window_s <= 10 else 5.0
        for line in self._grid:
            self.plot.removeItem(line)
        self._grid = grid_lines(self.plot, xs=[-k * step for k in range(1, int(self.window_s / step))], span=EDGE_GAP)

    def _set_scale_mode(self, mode: str) -> None:
        self.scale_mode = mode
        self.scale_spin.setEnabled(mode == "fixed")

    def _filters_changed(self) -> None:
        self.filters = FilterSettings(highpass=self.hp_box.isChecked(), bandpass=self.bp_box.isChecked(),
                                      notch=self.notch_box.isChecked(),
                                      notch_hz=50.0 if self.notch_hz.currentIndex() == 0 else 60.0)
        self._view = None  # rebuilt (and the history re-filtered) on the next frame

    def _reset_view(self) -> None:
        self._view = None
        self._store = None
        self._scales = None
        self._ticks_key = None
        self._fill_table()

    @classmethod
    def accepts(cls, info: StreamInfo) -> bool:
        return info.dtype != "string" and info.sfreq > 0 and info.type not in DERIVED_TYPES

    def feeds_changed(self) -> None:
        self.chooser.blockSignals(True)
        self.chooser.set_feeds(self.feeds)
        self.chooser.blockSignals(False)
        feed = self.chooser.current(self.feeds)
        if feed is not None and feed.key != self._view_key:
            self._reset_view()

    # --- per-channel preferences -------------------------------------------------------------
    def _prefs(self, key: str) -> dict[str, Any]:
        return self.channel_prefs.setdefault(key, {"hidden": [], "gain": {}})

    def _fill_table(self) -> None:
        feed = self.chooser.current(self.feeds)
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        if feed is not None:
            prefs = self._prefs(feed.key)
            names = [feed.info.ch_names[i] for i in signal_columns(feed.info)]
            self.table.setRowCount(len(names))
            for row, name in enumerate(names):
                item = QtWidgets.QTableWidgetItem(name)
                item.setFlags(QtCore.Qt.ItemFlag.ItemIsUserCheckable | QtCore.Qt.ItemFlag.ItemIsEnabled)
                item.setCheckState(QtCore.Qt.CheckState.Unchecked if name in prefs["hidden"]
                                   else QtCore.Qt.CheckState.Checked)
                self.table.setItem(row, 0, item)
                self.table.setItem(row, 1, QtWidgets.QTableWidgetItem(f"{prefs['gain'].get(name, 1.0):g}"))
        self.table.blockSignals(False)

    def _table_changed(self, item: QtWidgets.QTableWidgetItem) -> None:
        feed = self.chooser.current(self.feeds)
        if feed is None:
            return
        prefs = self._prefs(feed.key)
        name = self.table.item(item.row(), 0).text()
        if item.column() == 0:
            hidden = set(prefs["hidden"])
            hidden.discard(name) if item.checkState() == QtCore.Qt.CheckState.Checked else hidden.add(name)
            prefs["hidden"] = sorted(hidden)
            self._scales = None
        else:
            try:
                gain = float(item.text())
            except ValueError:
                gain = 1.0
                item.setText("1")
            prefs["gain"][name] = gain

    # --- drawing -------------------------------------------------------------------------------
    def _columns(self, feed: Any, width: int) -> tuple[ColumnStore, list[str], str]:
        """The pixel-column store of the shown samples (filtered if filters are on), up to date;
        ``width`` pixel columns span the window."""
        cols = signal_columns(feed.info)
        names = [feed.info.ch_names[i] for i in cols]
        label = "raw"
        if self.filters.label() != "raw":
            if self._view is None or self._view.feed is not feed:
                self._view = FilteredView(feed, self.filters, cols)
            self._view.update()
            source, columns = self._view, None
            label = self.filters.label() if self._view.active else f"raw ({self._view.error or 'filter n/a'})"
        else:
            source, columns = feed, cols
        self._view_key = feed.key
        key = (id(source), width, self.window_s, len(cols))
        if self._store is None or self._store_key != key:
            self._store = ColumnStore(width / self.window_s, width + 2, len(cols), columns)
            self._store_key = key
        self._store.update(source.since)
        return self._store, names, label

    def _lane_scales(self, low: np.ndarray, high: np.ndarray) -> bool:
        """Update each lane's centre and scale from the shown window's extrema; True if they changed.

        They change only when a lane's signal has outgrown its lane (or shrunk to well inside it,
        or moved off its centre): every change redraws the whole window.
        """
        span = np.maximum(np.nan_to_num(high - low), 1e-12)
        centre = np.nan_to_num((high + low) / 2)
        if self.scale_mode == "fixed":
            span = np.full_like(span, self.fixed_scale)
        old, mode = self._scales, (self.scale_mode, self.fixed_scale)
        if old is not None and len(old[0]) == len(span) and mode == self._scales_mode:
            scale, mid = old
            outgrown = (span > RESCALE_ABOVE * scale) | (span < RESCALE_BELOW * scale)
            moved = np.abs(centre - mid) > RECENTRE_BEYOND * scale
            if not (outgrown | moved).any():
                return False
        self._scales, self._scales_mode = (span, centre), mode
        return True

    def draw(self) -> bool:
        feed = self.chooser.current(self.feeds)
        if feed is None:
            return False
        now = local_clock()
        box = self.plot.getPlotItem().getViewBox()
        width = max(50, int(round(box.width())))  # one image column per screen pixel
        store, names, label = self._columns(feed, width)
        prefs = self._prefs(feed.key)
        keep = [i for i, n in enumerate(names) if n not in prefs["hidden"]]
        self._draw_markers(now)
        if store.newest is None or not keep:
            self.image.place(None, 0.0, 0.0)
            self.status.setText(f"{feed.info.name}: no samples yet")
            return False
        names = [names[i] for i in keep]
        low, high = store.span()
        rescaled = self._lane_scales(low[keep], high[keep])
        self._set_ticks(names)
        (y_bottom, y_top), height = box.viewRange()[1], max(1.0, box.height())
        rows = max(1, int(round(height * (1.0 - EDGE_GAP))))  # the canvas stays clear of the time axis
        y_bottom = y_top - (y_top - y_bottom) * rows / height
        gains = np.asarray([prefs["gain"].get(n, 1.0) for n in names], dtype=np.float32)
        key = (width, rows, y_top, y_bottom, tuple(keep), tuple(gains), id(store))
        if self._canvas is None or (self._canvas.width, self._canvas.height) != (width, rows):
            self._canvas = TraceCanvas(width, rows, y_top, y_bottom, TRACE_COLORS, BACKGROUND)
        elif key != self._canvas_key or rescaled:
            self._canvas.invalidate()
        self._canvas.y_top, self._canvas.y_bottom = y_top, y_bottom
        self._canvas_key = key
        span, centre = self._scales
        factor = (gains * (2 * LANE_FILL) / span).astype(np.float32)
        offsets = np.arange(len(names) - 1, -1, -1, dtype=np.float32)  # first channel on top

        def to_lanes(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # missing values (NaN from the producer) sit on the lane's centre line
            a = np.nan_to_num((lo[:, keep] - centre) * factor, nan=0.0, posinf=0.0, neginf=0.0) + offsets
            b = np.nan_to_num((hi[:, keep] - centre) * factor, nan=0.0, posinf=0.0, neginf=0.0) + offsets
            return a, b

        before = self._canvas.full_draws
        self._canvas.draw(store, to_lanes)
        self.full_redraws += self._canvas.full_draws - before
        px_per_s = store.px_per_s
        self.image.place(self._canvas, self._canvas.left / px_per_s - now, width / px_per_s)
        unit = feed.info.units[0] if feed.info.units else ""
        scale_text = "auto per channel" if self.scale_mode == "auto" else f"{self.fixed_scale:g} {unit}/lane"
        self.status.setText(f"{feed.info.name} · {len(names)}/{len(prefs['hidden']) + len(names)} ch shown · "
                            f"{feed.info.sfreq:g} Hz · {label} · {scale_text}")
        return True

    def _set_ticks(self, names: list[str]) -> None:
        """Channel labels on the left axis (every k-th when lanes are shorter than a line of text).

        Only touched when the lanes change: re-setting ticks or ranges every frame would make
        pyqtgraph redraw the axes every frame too.
        """
        height = max(1.0, self.plot.getPlotItem().getViewBox().height())
        step = max(1, int(np.ceil(len(names) * 13 / height)))
        key = (tuple(names), step)
        if key == self._ticks_key:
            return
        self._ticks_key = key
        ticks = [(float(len(names) - 1 - i), names[i]) for i in range(0, len(names), step)]
        self.plot.getPlotItem().getAxis("left").setTicks([ticks, []])
        self.plot.setYRange(-0.8 - EDGE_GAP * len(names), len(names) - 0.3, padding=0.0)

    def _draw_markers(self, now: float) -> None:
        feeds = getattr(self, "marker_feeds", [])
        events: list[tuple[float, str]] = []
        for f in feeds:
            with f.lock:
                events += [e for e in f.markers if e[0] >= now - self.window_s]
        events = events[-MAX_MARKER_LINES:]
        while len(self._markers) < len(events):
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#f2a33a", width=1, style=QtCore.Qt.PenStyle.DashLine),
                                   label="", labelOpts={"position": 0.97, "color": FOREGROUND})
            line.setSpan(EDGE_GAP, 1.0 - EDGE_GAP)  # clear of the time axis (see EDGE_GAP)
            self.plot.addItem(line)
            self._markers.append(line)
        for i, line in enumerate(self._markers):
            if i < len(events):
                line.setPos(events[i][0] - now)
                if line.label.format != events[i][1][:24]:  # re-lays the label out: only when it changes
                    line.label.setFormat(events[i][1][:24])
                if not line.isVisible():
                    line.show()
            elif line.isVisible():
                line.hide()

    def set_feeds(self, feeds: Any) -> None:
        self.marker_feeds = [f for f in feeds if f.info.dtype == "string" or f.info.type == "Markers"]
        super().set_feeds(feeds)

    # --- settings ------------------------------------------------------------------------------
    def save_settings(self, settings: QtCore.QSettings) -> None:
        settings.setValue("window_s", self.window_s)
        settings.setValue("scale_mode", self.scale_mode)
        settings.setValue("fixed_scale", self.fixed_scale)
        settings.setValue("filters", json.dumps({"hp": self.hp_box.isChecked(), "bp": self.bp_box.isChecked(),
                                                 "notch": self.notch_box.isChecked(),
                                                 "notch60": self.notch_hz.currentIndex() == 1}))
        settings.setValue("channels", json.dumps(self.channel_prefs))
        settings.setValue("stream", self.chooser.wanted_key)

    def restore_settings(self, settings: QtCore.QSettings) -> None:
        window = float(settings.value("window_s", self.window_s))
        if window in WINDOWS_S:
            self.window_box.setCurrentIndex(WINDOWS_S.index(window))
        self.scale_box.setCurrentIndex(1 if settings.value("scale_mode", "auto") == "fixed" else 0)
        self.scale_spin.setValue(float(settings.value("fixed_scale", self.fixed_scale)))
        try:
            f = json.loads(str(settings.value("filters", "{}")))
            prefs = json.loads(str(settings.value("channels", "{}")))
        except ValueError:  # a damaged settings file: start from defaults
            f, prefs = {}, {}
        self.hp_box.setChecked(bool(f.get("hp")))
        self.bp_box.setChecked(bool(f.get("bp")))
        self.notch_box.setChecked(bool(f.get("notch")))
        self.notch_hz.setCurrentIndex(1 if f.get("notch60") else 0)
        self.channel_prefs = prefs if isinstance(prefs, dict) else {}
        self.chooser.wanted_key = str(settings.value("stream", "") or "")
