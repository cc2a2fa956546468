"""Helpers for LSL source tests: bounded read loops (producer subprocesses and raw inlets: tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def _read_until(source, condition: Callable[[list], bool], limit: float, timeout: float = 0.05) -> list:
    """Read chunks from ``source`` until ``condition(chunks)`` holds or ``limit`` seconds pass."""
    chunks: list = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        chunks += [c for c in source.read(timeout) if c.n_times]
        if condition(chunks):
            return chunks
    raise AssertionError(f"condition not met within {limit} s (state {source.state.value}, {len(chunks)} chunks)")


@pytest.fixture
def read_until() -> Callable[..., list]:
    """``read_until(source, condition, limit)``: read chunks until ``condition(chunks)`` (bounded)."""
    return _read_until
