"""Helpers for LSL source tests: producers in subprocesses, raw inlets, bounded read loops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def edgestream_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgestream", *args]


def spawn(*args: str) -> subprocess.Popen:
    """Start ``python -m edgestream ARGS`` with this test session's loopback LSL config."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.Popen(edgestream_cmd(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _starter() -> Iterator[Callable[..., subprocess.Popen]]:
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        p = spawn(*args)
        started.append(p)
        return p

    yield start
    for p in started:
        end(p)


@pytest.fixture
def procs() -> Iterator[Callable[..., subprocess.Popen]]:
    """``procs(*args)`` starts ``python -m edgestream ARGS``; all are stopped after the test."""
    yield from _starter()


@pytest.fixture(scope="module")
def module_procs() -> Iterator[Callable[..., subprocess.Popen]]:
    """Like ``procs``, stopped after the test module."""
    yield from _starter()


def _read_until(source, condition: Callable[[list], bool], limit: float, timeout: float = 0.05) -> list:
    """Read chunks from ``source`` until ``condition(chunks)`` holds or ``limit`` seconds pass."""
    chunks: list = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        chunks += [c for c in source.read(timeout) if c.n_times]
        if condition(chunks):
            return chunks
    raise AssertionError(f"condition not met within {limit} s (state {source.state.value}, {len(chunks)} chunks)")


def _raw_inlet(source_id: str, timeout: float = 15.0):
    """A plain pylsl inlet (no clock processing) on the stream with ``source_id``, connected."""
    import pylsl

    found = pylsl.resolve_bypred(f"source_id='{source_id}'", 1, timeout)
    assert found, f"stream {source_id!r} not found"
    inlet = pylsl.StreamInlet(found[0], max_buflen=60, recover=False)
    inlet.open_stream(timeout)
    return inlet


@pytest.fixture
def read_until() -> Callable[..., list]:
    """``read_until(source, condition, limit)``: read chunks until ``condition(chunks)`` (bounded)."""
    return _read_until


@pytest.fixture
def raw_inlet() -> Callable[..., object]:
    """``raw_inlet(source_id)``: a connected pylsl inlet without clock processing."""
    return _raw_inlet
