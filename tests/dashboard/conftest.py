"""Fixtures of the dashboard tests: live loopback streams (published from a child process)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from edgestream.dashboard.fixtures import PublisherProcess

ALL_RECIPES = ("eeg", "predictions", "latency", "health", "edvit", "periods", "csi", "markers")


@pytest.fixture
def publish(uid: str) -> Iterator[Callable[..., PublisherProcess]]:
    """``publish("eeg", "predictions", ...)`` starts a publisher process for those recipes (stream names
    start with the test's uid); all are stopped after the test."""
    started: list[PublisherProcess] = []

    def start(*recipes: str, **kwargs) -> PublisherProcess:
        pub = PublisherProcess([(r, {"uid": uid, **kwargs.get(r, {})}) for r in recipes])
        started.append(pub)
        return pub

    yield start
    for pub in started:
        pub.stop()


def wait_until(condition: Callable[[], bool], timeout: float, step_ms: int = 20) -> bool:
    """Run the Qt event loop until ``condition()`` holds or ``timeout`` seconds pass."""
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, step_ms)
        if condition():
            return True
        time.sleep(step_ms / 1000)
    return condition()
