"""Reliability suite: faults injected into real streams, processes, files and (where the machine
allows) network namespaces, with what the user sees asserted and one JSON line per case.

Report: every case appends ``{"case", "outcome", "samples_lost", "lost_by_cause", "recovery_s",
"user_sees", "details", "test", "time"}`` to ``$EDGESTREAM_RELIABILITY_REPORT`` (default
``reports/reliability.jsonl`` in the repository; the directory is git-ignored).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.device import load_profile
from edgestream.core.lslmeta import OutletWriter
from edgestream.pipeline import Engine, build, parse_pipeline
from edgestream.sinks.memory import MemorySink

ROOT = Path(__file__).resolve().parents[2]
REPORT_ENV = "EDGESTREAM_RELIABILITY_REPORT"


def report_path() -> Path:
    return Path(os.environ.get(REPORT_ENV) or ROOT / "reports" / "reliability.jsonl")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def case(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The case's report entry: the test fills it; one JSON line is appended after the test."""
    entry: dict[str, Any] = {"case": request.node.name, "outcome": None, "samples_lost": None, "lost_by_cause": None,
                             "recovery_s": None, "user_sees": "", "details": {}}
    yield entry
    rep = getattr(request.node, "rep_call", None)
    if rep is None or rep.skipped:
        entry["outcome"] = "skipped"
        if rep is not None and isinstance(rep.longrepr, tuple):
            entry["details"]["skip_reason"] = str(rep.longrepr[2])
    else:
        entry["outcome"] = "pass" if rep.passed else "fail"
    entry["test"] = request.node.nodeid
    entry["time"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    path = report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(entry, default=str) + "\n")


# --- a pipeline running in the background, with instrumented sinks ------------------------------
class ArrivalSink(MemorySink):
    """Keeps chunks and the LSL-clock moment each arrived (to measure recovery)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, Chunk]] = []

    def write(self, chunk: Chunk) -> None:
        super().write(chunk)
        if chunk.n_times:
            self.arrivals.append((local_clock(), chunk))

    def first_arrival_after(self, stamp: float) -> float | None:
        """LSL-clock arrival of the first chunk holding a sample stamped at or after ``stamp``."""
        return next((t for t, c in list(self.arrivals) if c.timestamps[-1] >= stamp), None)

    def samples(self) -> int:
        return sum(c.n_times for _, c in list(self.arrivals))


PIPELINE = """
pipeline: rel
sources:
  eeg: {{kind: lsl, source_id: {uid}, timeout: 20.0{source_extra}}}
stages:
  pick: {{kind: pick, types: [eeg]}}
  bandpass: {{kind: bandpass, l_freq: 1.0, h_freq: 40.0, order: 4}}
  window: {{kind: window, size: 0.5, hop: 0.1}}
  bandpower: {{kind: bandpower}}
sinks:
  raw: {{kind: memory, input: eeg}}
  features: {{kind: memory, input: bandpower}}
"""


class RunningPipeline:
    """The fault-case pipeline (LSL input → pick → band-pass → 0.5-s windows → band power) on its engine thread.

    ``raw`` captures what the source delivered (with the producer's counter), ``features`` the outputs.
    """

    def __init__(self, uid: str, **source: Any) -> None:
        extra = "".join(f", {k}: {json.dumps(v)}" for k, v in source.items())
        spec = parse_pipeline(yaml.safe_load(PIPELINE.format(uid=json.dumps(uid), source_extra=extra)))
        self.graph = build(spec, load_profile("cpu"))
        for node in self.graph.nodes:
            if node.is_sink:
                node.component = ArrivalSink()
        self.graph.start()
        self.engine = Engine(self.graph, publish=True)
        self.summary: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._run, name="reliability-engine", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.summary = self.engine.run(None, raise_errors=False)

    @property
    def source(self) -> Any:
        return self.graph.sources[0].source

    def sink(self, node_id: str) -> ArrivalSink:
        return self.graph.node(node_id).component

    def wait_until(self, condition: Callable[[], bool], limit: float, what: str) -> None:
        deadline = time.monotonic() + limit
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"within {limit} s: {what} (source state {self.source.state.value})")
            if self.summary is not None:
                raise AssertionError(f"the pipeline stopped while waiting for: {what}; errors {self.engine.errors}")
            time.sleep(0.05)

    def stop(self) -> dict[str, Any]:
        self.engine.stop()
        self._thread.join(timeout=30)
        assert self.summary is not None, "the engine did not stop"
        return self.summary

    def raw_counter(self) -> np.ndarray:
        chunks = [c for _, c in self.sink("raw").arrivals]
        return np.concatenate([c.data[:, -1] for c in chunks]).astype(np.int64) if chunks else np.zeros(0, np.int64)


@pytest.fixture
def pipeline() -> Iterator[Callable[..., RunningPipeline]]:
    started: list[RunningPipeline] = []

    def start(uid: str, **source: Any) -> RunningPipeline:
        p = RunningPipeline(uid, **source)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.summary is None:
            p.stop()


# --- a producer thread with scripted faults --------------------------------------------------
class ScriptedProducer:
    """An LSL outlet (``n_channels`` EEG channels in µV + ``counter``) published from a thread.

    Sample ``k`` is pushed when due at ``true_rate`` (Hz, real time) and stamped ``stamp(k, t0)``
    (default: its real time ``t0 + k / true_rate``); ``values(k, x)`` may alter a block before it
    goes out (NaN bursts). The header declares ``sfreq``.
    """

    def __init__(self, uid: str, sfreq: float = 250.0, n_channels: int = 4, chunk: int = 5,
                 true_rate: float | None = None, stamp: Callable[[np.ndarray, float], np.ndarray] | None = None,
                 values: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None, duration: float = 60.0) -> None:
        self.sfreq, self.chunk = sfreq, chunk
        self.true_rate = true_rate or sfreq
        self.stamp = stamp or (lambda k, t0: t0 + k / self.true_rate)
        self.values = values
        self.duration = duration
        names = [f"C{i + 1}" for i in range(n_channels)]
        self.info = StreamInfo(uid, "EEG", uid, sfreq, names, ["eeg"] * n_channels, ["uV"] * n_channels)
        self.writer = OutletWriter(self.info, uid, counter=True)
        self.pushed = 0
        self.t0 = float("nan")
        self.sent_stamps: list[np.ndarray] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scripted-producer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rng = np.random.default_rng(7)
        self.t0 = t0 = local_clock()
        total = int(self.duration * self.true_rate)
        k = 0
        while not self._stop.is_set() and k < total:
            due = t0 + (k + self.chunk) / self.true_rate
            wait = due - local_clock()
            if wait > 0 and self._stop.wait(wait):
                break
            idx = np.arange(k, k + self.chunk)
            x = (20 * np.sin(2 * np.pi * 10 * idx[:, None] / self.true_rate + np.arange(self.info.n_channels))
                 + rng.standard_normal((self.chunk, self.info.n_channels))).astype(np.float32)
            if self.values is not None:
                x = self.values(idx, x)
            stamps = self.stamp(idx, t0)
            self.writer.push(x, stamps)
            self.sent_stamps.append(stamps)
            k += self.chunk
            self.pushed = k

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.writer.close()


@pytest.fixture
def producer() -> Iterator[Callable[..., ScriptedProducer]]:
    started: list[ScriptedProducer] = []

    def start(uid: str, **kwargs: Any) -> ScriptedProducer:
        p = ScriptedProducer(uid, **kwargs)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
