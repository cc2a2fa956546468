"""Fixtures of the dashboard tests: the QApplication and live loopback streams (published from a child process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from synthetic_streams import PublisherProcess

ALL_RECIPES = ("eeg", "predictions", "latency", "health", "edvit", "periods", "csi", "markers")


@pytest.fixture(scope="session")
def qapp():
    """The dashboard's QApplication (offscreen in tests)."""
    from edgestream.dashboard.app import application

    return application()


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
