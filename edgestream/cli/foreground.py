"""Keep a publisher (simulator, file player) running until it finishes, a duration passes, or the
user stops it with Ctrl-C / SIGTERM — then stop it cleanly."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import click

PRIORITY_HELP = ("CPU priority of every thread: high = nice -10, realtime = SCHED_FIFO, so that other work on the "
                 "machine (a dashboard, a desktop) cannot delay the data path. Needs root, CAP_SYS_NICE or an "
                 "rtprio/nice limit; without it the command runs at normal priority and says so.")


def priority_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--priority normal|high|realtime`` for commands on a live session's data path."""
    return click.option("--priority", type=click.Choice(["normal", "high", "realtime"]), default="normal",
                        show_default=True, help=PRIORITY_HELP)(func)


def apply_priority(level: str) -> str:
    """Set this process's priority (first thing: later threads inherit it); say what was applied."""
    from edgestream.core.priority import set_priority

    applied = set_priority(level)
    if level != "normal":
        click.echo(f"CPU priority: {applied}", err=True)
    return applied


def serve(wait: Callable[[float], bool], stop: Callable[[], None], duration: float | None = None) -> str:
    """Block until ``wait(timeout)`` returns True, ``duration`` seconds pass, or SIGINT/SIGTERM.

    ``stop()`` always runs before returning. Returns why it stopped: ``"finished"``,
    ``"duration"`` or ``"signal"``.
    """
    stopping = threading.Event()
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, lambda *_: stopping.set())
    deadline = None if duration is None else time.monotonic() + duration
    reason = "signal"
    try:
        while not stopping.is_set():
            step = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
            if wait(step):
                reason = "finished"
                break
            if deadline is not None and time.monotonic() >= deadline:
                reason = "duration"
                break
    except KeyboardInterrupt:
        reason = "signal"
    finally:
        stop()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return reason
