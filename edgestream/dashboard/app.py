"""Start the dashboard: Qt application, acquisition threads, window; headless screenshots.

:func:`run_dashboard` is what ``edgestream dashboard`` calls. It runs in its own process and
only reads streams, so a pipeline never waits for it, and by default at idle CPU priority
(:func:`edgestream.core.priority.set_priority`), so a pipeline on the same machine gets the CPU first. For headless use (CI, reports),
``screenshot=PATH, after=SECONDS`` saves the window after that long and exits; it works with
``QT_QPA_PLATFORM=offscreen`` or under Xvfb.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgestream.core.checks import check_number
from edgestream.core.errors import ConfigError
from edgestream.core.priority import check_level, set_priority, thread_policies

log = logging.getLogger(__name__)

ORGANISATION, APPLICATION = "edgestream", "dashboard"
PRIORITIES = ("idle", "normal")


@dataclasses.dataclass
class DashboardOptions:
    """What ``edgestream dashboard`` was asked to do."""

    streams: Sequence[str] = ()  # name / source_id / type patterns; empty: every stream found
    screenshot: str | None = None  # save the window here ...
    after: float = 5.0  # ... this many seconds after start, then exit
    duration: float | None = None  # exit after this many seconds (no screenshot)
    fps: float | None = None  # frame cap (≤ 60); None: remembered value, 30 by default
    settings_file: str | None = None  # INI file instead of the per-user settings store
    reset_settings: bool = False  # forget remembered layout and choices first
    stats_json: str | None = None  # write frame/CPU counters here at exit (benchmarks)
    size: tuple[int, int] | None = None  # window size in pixels (default: remembered, else 1600×1000)
    priority: str = "idle"  # CPU priority of the dashboard's threads: "idle" or "normal" (see set_priority)

    def __post_init__(self) -> None:
        check_number(self.after, "--after", low=0.0, fix="Give the seconds to wait before the screenshot, e.g. --after 5.")
        if self.duration is not None:
            check_number(self.duration, "--duration", low=0.0, low_inclusive=False)
        if self.fps is not None:
            check_number(self.fps, "--fps", low=1.0, high=60.0, fix="Rendering is capped at 60 frames per second.")
        check_level(self.priority, "--priority", PRIORITIES)
        if self.screenshot is not None and Path(self.screenshot).suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
            raise ConfigError(f"--screenshot must name an image file ending in .png, .jpg or .bmp; got "
                              f"{self.screenshot!r}. E.g. --screenshot dashboard.png.")


def make_settings(path: str | None = None) -> Any:
    """Per-user settings (QSettings), or an INI file at ``path``."""
    from PySide6 import QtCore

    if path:
        return QtCore.QSettings(str(path), QtCore.QSettings.Format.IniFormat)
    return QtCore.QSettings(ORGANISATION, APPLICATION)


def application() -> Any:
    """The process's QApplication (created once), styled dark to match the plots."""
    from PySide6 import QtGui, QtWidgets
    import pyqtgraph as pg

    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication([APPLICATION])
        app.setOrganizationName(ORGANISATION)
        app.setApplicationName(APPLICATION)
        app.setStyle("Fusion")
        palette = QtGui.QPalette()
        roles = QtGui.QPalette.ColorRole
        for role, value in ((roles.Window, "#1d2026"), (roles.WindowText, "#d7dbe0"), (roles.Base, "#15171c"),
                            (roles.AlternateBase, "#1d2026"), (roles.Text, "#d7dbe0"), (roles.Button, "#262a31"),
                            (roles.ButtonText, "#d7dbe0"), (roles.Highlight, "#3b6fb6"),
                            (roles.HighlightedText, "#ffffff"), (roles.ToolTipBase, "#262a31"),
                            (roles.ToolTipText, "#d7dbe0"), (roles.PlaceholderText, "#7d8590")):
            palette.setColor(role, QtGui.QColor(value))
        app.setPalette(palette)
    # enableExperimental: pyqtgraph then builds multi-segment curve paths by writing straight into
    # the QPainterPath (about 25x faster than its QDataStream route for the traces' lanes; the path
    # is identical, checked in tests/dashboard/test_views.py).
    pg.setConfigOptions(antialias=False, foreground="#c9ced6", background="#15171c", enableExperimental=True)
    return app


def run_dashboard(options: DashboardOptions) -> int:
    """Open the dashboard and run the Qt event loop until the window closes (or the timers end it).

    Returns the process exit code.
    """
    priority = set_priority(options.priority)  # first: threads started from here on inherit it
    log.info("dashboard CPU priority: %s", priority)
    from PySide6 import QtCore

    app = application()
    from edgestream.dashboard.acquisition import Acquisition
    from edgestream.dashboard.window import DashboardWindow, saved_deselected

    settings = make_settings(options.settings_file)
    if options.reset_settings:
        settings.clear()
    acquisition = Acquisition(patterns=options.streams, deselected=() if options.streams else saved_deselected(settings))
    acquisition.start()
    window = DashboardWindow(acquisition, settings, fps=options.fps)
    window.show()
    if options.size:
        window.resize_default(*options.size)
    result: dict[str, Any] = {"code": 0}

    def take_screenshot() -> None:
        try:
            window.screenshot(options.screenshot)
        except ConfigError as exc:
            log.error("%s", exc)
            result["code"] = 2
        window.close()

    if options.screenshot:
        QtCore.QTimer.singleShot(int(options.after * 1000), take_screenshot)
    if options.duration is not None:
        QtCore.QTimer.singleShot(int(options.duration * 1000), window.close)
    app.exec()
    if options.stats_json:
        stats = {**window.stats(), "priority": priority, "thread_policies": thread_policies()}
        Path(options.stats_json).write_text(json.dumps(stats, indent=2))
    return result["code"]
