"""Fixtures of the dashboard tests: live loopback streams (published from a child process)."""

from __future__ import annotations

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
