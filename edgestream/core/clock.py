"""Clocks. Everything is timed on the LSL clock so stamps from any process compare directly."""

from __future__ import annotations

import threading

import pylsl


def local_clock() -> float:
    """Seconds on the LSL clock (monotonic, shared by all LSL processes on this machine)."""
    return pylsl.local_clock()


class ManualClock:
    """A clock tests advance by hand, for deterministic timing logic (state machines, policies)."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now
