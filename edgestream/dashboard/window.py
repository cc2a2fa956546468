"""The dashboard's main window: panels in docks, the stream picker, the render timer, settings.

Rendering is driven by one timer capped at :data:`MAX_FPS` (60 Hz; 30 Hz by default). Each
tick hands newly opened feeds to the panels and asks each visible panel to draw (each panel
also caps its own rate: the spectrum redraws a few times per second, the traces every frame).
*Freeze* stops drawing while acquisition carries on, so un-freezing jumps back to "now".
"""

from __future__ import annotations

import collections
import json
import logging
import time
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from edgestream.core.checks import check_number
from edgestream.core.clock import local_clock
from edgestream.dashboard.acquisition import Acquisition
from edgestream.dashboard.panels.base import PANELS, Panel
from edgestream.dashboard.picker import StreamPicker

log = logging.getLogger(__name__)

MAX_FPS = 60.0
DEFAULT_FPS = 30.0
AREAS = {"right": QtCore.Qt.DockWidgetArea.RightDockWidgetArea,
         "bottom": QtCore.Qt.DockWidgetArea.BottomDockWidgetArea,
         "left": QtCore.Qt.DockWidgetArea.LeftDockWidgetArea}
SETTINGS_VERSION = 1  # bump when the dock layout changes shape, so old saved layouts are ignored


class _PaintCounter(QtCore.QObject):
    """Counts paint events of a widget (frames that actually reached the screen) and when they
    happened on the LSL clock, so a benchmark can count the frames inside its own time window."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.times: collections.deque[float] = collections.deque(maxlen=100_000)

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if event.type() == QtCore.QEvent.Type.Paint:
            self.count += 1
            self.times.append(local_clock())
        return False


class DashboardWindow(QtWidgets.QMainWindow):
    """Main window.

    Parameters
    ----------
    acquisition : Acquisition
        Started by the caller; stopped when the window closes.
    settings : QSettings
        Where choices are remembered (per user by default).
    fps : float or None
        Frame cap in Hz (≤ 60); None uses the remembered value (30 by default).
    """

    def __init__(self, acquisition: Acquisition, settings: QtCore.QSettings, fps: float | None = None) -> None:
        super().__init__()
        self.acquisition = acquisition
        self.settings = settings
        self.setWindowTitle("edgestream dashboard")
        self.frames = 0  # render ticks that drew something
        self.ticks = 0
        self.frozen = False
        self._feed_ids: tuple[int, ...] = ()
        self.streams_seen: set[str] = set()  # names of every stream opened during this session
        self._frame_times: collections.deque[float] = collections.deque(maxlen=120)
        self.panels: dict[str, Panel] = {}
        self.docks: dict[str, QtWidgets.QDockWidget] = {}
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.picker_timer = QtCore.QTimer(self)
        self.picker_timer.timeout.connect(self._slow_tick)
        self._build_panels()
        self._build_toolbar()
        self.paints = _PaintCounter()
        if "traces" in self.panels:
            self.panels["traces"].plot.viewport().installEventFilter(self.paints)
        self.status = QtWidgets.QLabel()
        self.statusBar().addPermanentWidget(self.status)
        self._restore(fps)
        self.set_fps(self.fps_box.value())
        self.timer.start()
        self.picker_timer.start(1000)

    # --- layout --------------------------------------------------------------------------------
    def _build_panels(self) -> None:
        self.setDockOptions(QtWidgets.QMainWindow.DockOption.AnimatedDocks
                            | QtWidgets.QMainWindow.DockOption.AllowTabbedDocks)
        entries = sorted(PANELS, key=lambda e: (e.tags.get("area", "right"), e.tags.get("order", 0)))
        tab_with: dict[str, QtWidgets.QDockWidget] = {}
        for entry in entries:
            panel: Panel = entry.factory()
            self.panels[entry.name] = panel
            area = entry.tags.get("area", "right")
            if area == "center":
                self.setCentralWidget(panel)
                continue
            dock = QtWidgets.QDockWidget(panel.title, self)
            dock.setObjectName(f"dock-{entry.name}")
            dock.setWidget(panel)
            self.docks[entry.name] = dock
            self.addDockWidget(AREAS[area], dock)
            # The first right-hand panel stands alone on top; later ones share one tabbed dock below it.
            if area == "right" and entry.tags.get("order", 0) > 0:
                if "right" in tab_with:
                    self.tabifyDockWidget(tab_with["right"], dock)
                else:
                    tab_with["right"] = dock
        if "right" in tab_with:
            tab_with["right"].raise_()
        self.picker = StreamPicker(self.acquisition)
        dock = QtWidgets.QDockWidget("Streams", self)
        dock.setObjectName("dock-streams")
        dock.setWidget(self.picker)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.docks["streams"] = dock
        self._needs_default_sizes = True

    def _default_sizes(self) -> None:
        """First-run proportions (later runs restore the user's own layout); needs a shown window."""
        w, h = self.width(), self.height()
        self.resizeDocks([self.docks["streams"]], [300], QtCore.Qt.Orientation.Horizontal)
        right = [d for n, d in self.docks.items() if n in ("predictions", "spectrum")]
        if len(right) == 2:
            self.resizeDocks(right[:1], [int(0.38 * w)], QtCore.Qt.Orientation.Horizontal)
            self.resizeDocks(right, [int(0.3 * h), int(0.5 * h)], QtCore.Qt.Orientation.Vertical)
        if "health" in self.docks:
            self.resizeDocks([self.docks["health"]], [int(0.27 * h)], QtCore.Qt.Orientation.Vertical)

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)
        if self._needs_default_sizes:
            self._needs_default_sizes = False
            QtCore.QTimer.singleShot(0, self._default_sizes)

    def resize_default(self, width: int, height: int) -> None:
        """Resize and, on a first run, lay the docks out again for the new size."""
        self.resize(width, height)
        if not self._restored_layout:
            self._needs_default_sizes = not self.isVisible()
            if self.isVisible():
                QtCore.QTimer.singleShot(0, self._default_sizes)

    def _build_toolbar(self) -> None:
        bar = self.addToolBar("Dashboard")
        bar.setObjectName("toolbar")
        bar.setMovable(False)
        self.freeze_action = QtGui.QAction("Freeze", self)
        self.freeze_action.setCheckable(True)
        self.freeze_action.setShortcut(QtGui.QKeySequence(QtCore.Qt.Key.Key_Space))
        self.freeze_action.setToolTip("Freeze the display (Space); streams keep being read")
        self.freeze_action.toggled.connect(self.set_frozen)
        shot = QtGui.QAction("Screenshot…", self)
        shot.setShortcut(QtGui.QKeySequence.StandardKey.Save)
        shot.triggered.connect(self._ask_screenshot)
        bar.addAction(self.freeze_action)
        bar.addAction(shot)
        bar.addSeparator()
        bar.addWidget(QtWidgets.QLabel(" max FPS "))
        self.fps_box = QtWidgets.QSpinBox()
        self.fps_box.setRange(1, int(MAX_FPS))
        self.fps_box.setValue(int(DEFAULT_FPS))
        self.fps_box.setToolTip(f"Redraw rate cap (at most {MAX_FPS:g} Hz)")
        self.fps_box.valueChanged.connect(self.set_fps)
        bar.addWidget(self.fps_box)
        bar.addSeparator()
        view = self.menuBar().addMenu("View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())

    # --- control -------------------------------------------------------------------------------
    def set_fps(self, fps: float) -> None:
        fps = check_number(float(fps), "fps", low=1.0, high=MAX_FPS, fix=f"Use 1 to {MAX_FPS:g} frames per second.")
        if self.fps_box.value() != int(fps):
            self.fps_box.setValue(int(fps))
        # nearest whole millisecond: 30 FPS -> 33 ms (30.3 Hz); rounding up (34 ms) never reached 30
        self.timer.setInterval(int(round(1000.0 / fps)))

    def set_frozen(self, frozen: bool) -> None:
        self.frozen = bool(frozen)
        if self.freeze_action.isChecked() != self.frozen:
            self.freeze_action.setChecked(self.frozen)
        self._update_status()

    def _tick(self) -> None:
        self.ticks += 1
        self._sync_feeds()
        if self.frozen:
            return
        now = time.monotonic()
        before = sum(p.updates for p in self.panels.values())
        for panel in self.panels.values():
            try:
                panel.refresh(now)
            except Exception:  # one panel's bug must not freeze the others; logged once per second at most
                self._log_panel_error(panel)
        if sum(p.updates for p in self.panels.values()) > before:
            self.frames += 1
            self._frame_times.append(now)

    def _log_panel_error(self, panel: Panel) -> None:
        t = time.monotonic()
        if t - getattr(panel, "_last_error_log", 0.0) > 1.0:
            panel._last_error_log = t
            log.exception("panel %s failed to draw", panel.title)
        panel.errors = getattr(panel, "errors", 0) + 1

    def _sync_feeds(self) -> None:
        feeds = self.acquisition.feeds()
        ids = tuple(id(f) for f in feeds)
        if ids != self._feed_ids:
            self._feed_ids = ids
            self.streams_seen.update(f.info.name for f in feeds)
            for panel in self.panels.values():
                panel.set_feeds(feeds)

    def _slow_tick(self) -> None:
        self.picker.refresh()
        self._update_status()

    @property
    def fps(self) -> float:
        """Frames drawn per second over the last couple of seconds."""
        t = self._frame_times
        if len(t) < 2:
            return 0.0
        return (len(t) - 1) / max(t[-1] - t[0], 1e-6)

    def _update_status(self) -> None:
        feeds = self.acquisition.feeds()
        text = f"{len(feeds)} stream(s) open · {self.fps:.0f} FPS (cap {self.fps_box.value()})"
        if self.frozen:
            text = "FROZEN — press Space to resume · " + text
        self.status.setText(text)

    # --- screenshots -----------------------------------------------------------------------------
    def screenshot(self, path: str | Path) -> Path:
        """Draw every visible panel now and save the window as an image (PNG by extension)."""
        path = Path(path)
        self._sync_feeds()
        if not self.frozen:
            for panel in self.panels.values():
                panel.refresh(time.monotonic(), force=panel.visible_on_screen())
        self._update_status()
        QtWidgets.QApplication.processEvents()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.grab().save(str(path)):
            from edgestream.core.errors import ConfigError

            raise ConfigError(f"screenshot path must be a writable image file (.png, .jpg); got {str(path)!r}.")
        log.info("screenshot written to %s", path)
        return path

    def _ask_screenshot(self) -> None:
        name = time.strftime("edgestream-dashboard-%Y%m%d-%H%M%S.png")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save screenshot", str(Path.home() / name), "PNG (*.png)")
        if path:
            self.screenshot(path)
            self.statusBar().showMessage(f"saved {path}", 5000)

    # --- settings ------------------------------------------------------------------------------
    def _restore(self, fps: float | None) -> None:
        s = self.settings
        self._restored_layout = False
        if int(s.value("version", 0) or 0) == SETTINGS_VERSION:
            geometry = s.value("geometry")
            state = s.value("state")
            if geometry is not None:
                self.restoreGeometry(geometry)
            if state is not None:
                self._restored_layout = bool(self.restoreState(state))
                self._needs_default_sizes = not self._restored_layout
        else:
            self.resize(1600, 1000)
        for name, panel in self.panels.items():
            s.beginGroup(f"panels/{name}")
            try:
                panel.restore_settings(s)
            except (TypeError, ValueError) as exc:  # a damaged or old settings file: keep defaults
                log.warning("ignoring saved settings of panel %s: %s", name, exc)
            finally:
                s.endGroup()
        self.fps_box.setValue(int(min(MAX_FPS, fps if fps is not None else float(s.value("fps", DEFAULT_FPS)))))

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("version", SETTINGS_VERSION)
        s.setValue("geometry", self.saveGeometry())
        s.setValue("state", self.saveState())
        s.setValue("fps", self.fps_box.value())
        s.setValue("deselected", json.dumps(sorted(self.acquisition.deselected)))
        for name, panel in self.panels.items():
            s.beginGroup(f"panels/{name}")
            panel.save_settings(s)
            s.endGroup()
        s.sync()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.timer.stop()
        self.picker_timer.stop()
        self.save_settings()
        self.acquisition.stop()
        super().closeEvent(event)

    def stats(self) -> dict[str, Any]:
        """Counters the CLI's ``--stats-json`` and the benchmark read."""
        return {"frames": self.frames, "ticks": self.ticks, "paints": self.paints.count,
                "paint_times": list(self.paints.times),
                "panel_updates": {n: p.updates for n, p in self.panels.items()},
                "panel_draw_s": {n: round(p.draw_seconds, 4) for n, p in self.panels.items()},
                "panel_errors": {n: getattr(p, "errors", 0) for n, p in self.panels.items()},
                "trace_redraws": getattr(self.panels.get("traces"), "full_redraws", 0),
                "streams": sorted(self.streams_seen), "clock": local_clock()}


def saved_deselected(settings: QtCore.QSettings) -> list[str]:
    """Stream keys the user unticked in an earlier session."""
    try:
        value = json.loads(str(settings.value("deselected", "[]")))
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []
