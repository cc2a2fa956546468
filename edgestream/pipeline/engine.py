"""Run a built graph: one thread per source (processing inline, minimal hand-offs), one per
queued node, and a 1 Hz monitor publishing latency and health as LSL streams.

Stop conditions: the duration elapsed, every source finished, ``stop()`` was called (Ctrl-C /
SIGTERM in the CLI), or a component raised — then everything is torn down in order and the
error is re-raised after the summary was assembled.

A ``recording`` hook (:class:`edgestream.record.pipeline_recording.PipelineRecording`) is started once
every outlet exists and before any source is read, and stopped after the last output and
before any outlet closes, so a recording holds every sample the run consumed and produced.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
import psutil

from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.io import SINKS
from edgestream.core.latency import LatencyStats, percentiles_ms
from edgestream.pipeline.graph import Graph, Node, SourceNode

log = logging.getLogger(__name__)

READ_TIMEOUT = 0.05  # s; how often a source thread checks the stop flag when no data arrives


class Engine:
    """Drive a :class:`Graph`. ``run(duration)`` blocks and returns the summary dict."""

    def __init__(self, graph: Graph, publish: bool = True, recording: Any = None) -> None:
        self.graph = graph
        self.publish = publish
        self.recording = recording  # has start(engine) and stop(engine, summary) -> dict
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._monitor_sinks: list[tuple[str, Any]] = []
        self.started_at = float("nan")
        self.stopped_at = float("nan")

    # --- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def errors(self) -> list[BaseException]:
        return list(self._errors)

    def run(self, duration: float | None = None, raise_errors: bool = True) -> dict[str, Any]:
        if not self.graph.started:
            self.graph.start()
        proc = psutil.Process()
        cpu0 = proc.cpu_times()
        wall0 = time.perf_counter()
        self.started_at = local_clock()
        try:
            self._start_monitor()
            if self.recording is not None:
                self.recording.start(self)  # returns once the recorder collects every stream
            for s in self.graph.sources:
                self._spawn(f"source-{s.id}", self._source_loop, s)
            for node in self.graph.nodes:
                if node.queue is not None:
                    self._spawn(f"node-{node.id}", self._queue_loop, node)
            deadline = None if duration is None else time.monotonic() + duration
            monitor_next = time.monotonic() + 1.0
            while not self._stop.is_set():
                timeout = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
                self._stop.wait(timeout)
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if all(s.source.finished for s in self.graph.sources) and self._queues_empty():
                    break
                if time.monotonic() >= monitor_next:
                    monitor_next += 1.0
                    self._publish_monitor()
        except KeyboardInterrupt:
            log.info("interrupted; stopping")
        finally:
            self._stop.set()
            for t in self._threads:
                t.join(timeout=5.0)
            self.stopped_at = local_clock()
            wall = time.perf_counter() - wall0
            cpu1 = proc.cpu_times()
            cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
            summary = self.summary(wall, cpu, proc)
            if self.recording is not None:
                summary["recording"] = self._stop_recording(summary)
            self.graph.stop()
            for _, sink in self._monitor_sinks:
                sink.stop()
        if self._errors and raise_errors:
            raise self._errors[0]
        return summary

    def _stop_recording(self, summary: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.recording.stop(self, summary)
        except Exception as exc:  # the run's own results must still come out
            log.error("stopping the recording failed: %s", exc)
            return {"status": f"failed: {exc}"}

    @property
    def monitor_outlets(self) -> list[tuple[str, Any]]:
        """``(kind, lsl_outlet sink)`` of the latency and health streams, once running."""
        return list(self._monitor_sinks)

    def _spawn(self, name: str, target: Any, arg: Any) -> None:
        t = threading.Thread(target=self._guard, args=(target, arg), name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _guard(self, target: Any, arg: Any) -> None:
        try:
            target(arg)
        except BaseException as exc:  # surfaced by run() after an orderly stop
            log.error("%s failed: %s", threading.current_thread().name, exc)
            self._errors.append(exc)
            self._stop.set()

    def _source_loop(self, s: SourceNode) -> None:
        source, children, stop = s.source, s.children, self._stop
        while not stop.is_set():
            for chunk in source.read(READ_TIMEOUT):
                if chunk.n_times:
                    if s.first_ts is None:
                        s.first_ts = float(chunk.timestamps[0])
                    s.last_ts = float(chunk.timestamps[-1])
                for child in children:
                    child.push(chunk)
            if source.finished:
                return

    def _queue_loop(self, node: Node) -> None:
        while not self._stop.is_set():
            chunk = node.queue.get(0.1)
            if chunk is not None:
                node.process(chunk)

    def _queues_empty(self) -> bool:
        return all(len(n.queue) == 0 for n in self.graph.nodes if n.queue is not None)

    # --- monitoring ------------------------------------------------------------------------
    def _start_monitor(self) -> None:
        spec = self.graph.spec
        if not self.publish or "lsl_outlet" not in SINKS:
            return
        stage_ids = [n.id for n in self.graph.nodes if not n.is_sink]
        if spec.latency_stream:
            ch = ["e2e_p50_ms", "e2e_p99_ms", "e2e_max_ms"] + [f"{i}_{q}_ms" for i in stage_ids for q in ("p50", "p99")]
            info = StreamInfo(f"{spec.name}-latency", "Latency", "", 1.0, ch, ["latency"] * len(ch), ["ms"] * len(ch))
            self._monitor_sinks.append(("latency", self._monitor_outlet(info, "latency")))
        if spec.health_stream:
            ch = []
            for s in self.graph.sources:
                ch += [f"{s.id}_{k}" for k in ("state", "rate_hz", "lag_ms", "overflow", "counter_gap", "reconnect_gap",
                                               "nonfinite", "clock_steps")]
            ch += [f"{n.id}_queue_drops" for n in self.graph.nodes if n.queue is not None]
            info = StreamInfo(f"{spec.name}-health", "Health", "", 1.0, ch, ["health"] * len(ch))
            self._monitor_sinks.append(("health", self._monitor_outlet(info, "health")))
        self._rate_prev = {s.id: (s.source.samples_in, time.monotonic()) for s in self.graph.sources}

    def _monitor_outlet(self, info: StreamInfo, node: str) -> Any:
        sink = SINKS.create("lsl_outlet", name=info.name)  # <pipeline>-latency / <pipeline>-health
        sink.build(info, {"pipeline": self.graph.spec.name, "node": node, "input": "engine",
                          "pipeline_desc": self.graph.spec.to_dict()})
        sink.start()
        return sink

    def _publish_monitor(self) -> None:
        now = local_clock()
        for kind, sink in self._monitor_sinks:
            row = self._latency_row() if kind == "latency" else self._health_row(now)
            sink.write(Chunk(np.asarray([row], np.float32), np.asarray([now]), sink.in_info))

    def _latency_row(self) -> list[float]:
        recent = [n.latency.recent_values() for n in self.graph.nodes if n.is_sink]
        r = percentiles_ms(np.concatenate(recent) if recent else np.zeros(0))
        row = [r["p50_ms"], r["p99_ms"], r["max_ms"]]
        for n in self.graph.nodes:
            if not n.is_sink:
                q = n.latency.recent()
                row += [q["p50_ms"], q["p99_ms"]]
        return row

    def _health_row(self, now: float) -> list[float]:
        row: list[float] = []
        for s in self.graph.sources:
            src = s.source
            prev_n, prev_t = self._rate_prev[s.id]
            t = time.monotonic()
            rate = (src.samples_in - prev_n) / max(t - prev_t, 1e-6)
            self._rate_prev[s.id] = (src.samples_in, t)
            lag = getattr(src, "lag", float("nan"))
            d = src.drops
            row += [src.state.code, rate, lag * 1e3, d.overflow, d.counter_gap, d.reconnect_gap, d.nonfinite,
                    getattr(src, "clock_steps", 0)]
        row += [n.queue.dropped_samples for n in self.graph.nodes if n.queue is not None]
        return row

    # --- summary ---------------------------------------------------------------------------
    def summary(self, wall: float, cpu_seconds: float, proc: Any) -> dict[str, Any]:
        g = self.graph
        e2e = LatencyStats()
        for n in g.nodes:
            if n.is_sink:
                e2e.merge(n.latency)
        try:
            rss = proc.memory_info().rss / 2**20
        except psutil.Error:
            rss = float("nan")
        return {
            "pipeline": g.spec.name,
            "device": getattr(g.device, "name", "cpu"),
            "wall_s": wall,
            "cpu_percent": 100.0 * cpu_seconds / wall if wall > 0 else float("nan"),
            "rss_mb": rss,
            "sources": {
                s.id: {"stream": s.info.name if s.info else "", "samples_in": s.source.samples_in,
                       "first_timestamp": s.first_ts, "last_timestamp": s.last_ts,
                       "clock_steps": getattr(s.source, "clock_steps", 0),
                       "state": s.source.state.value, "drops": s.source.drops.as_dict(),
                       "events": [f"{e.old.value}->{e.new.value} {e.detail}".strip() for e in s.source.events]}
                for s in g.sources
            },
            "nodes": {
                n.id: {"kind": n.spec.kind, "samples_in": n.samples_in, "samples_out": n.samples_out,
                       "latency": n.latency.summary(), "compute": n.compute.summary(),
                       "queue_drops": n.queue.dropped_samples if n.queue else 0}
                for n in g.nodes
            },
            "e2e": e2e.summary(),
            "errors": [f"{type(e).__name__}: {e}" for e in self._errors],
        }


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable summary table printed at exit."""
    lines = [f"edgestream run summary — pipeline {summary['pipeline']!r} on device {summary['device']!r}",
             f"  wall {summary['wall_s']:.1f} s, CPU {summary['cpu_percent']:.1f} % of one core, RSS {summary['rss_mb']:.0f} MB"
             + (f", CPU priority {summary['priority']}" if "priority" in summary else ""), ""]
    lines.append(f"  {'source':<16}{'stream':<28}{'samples in':>12}{'overflow':>10}{'counter':>9}{'reconnect':>10}{'nonfinite':>10}  state")
    for sid, s in summary["sources"].items():
        d = s["drops"]
        lines.append(f"  {sid:<16}{s['stream'][:27]:<28}{s['samples_in']:>12}{d['overflow']:>10}{d['counter_gap']:>9}"
                     f"{d['reconnect_gap']:>10}{d['nonfinite']:>10}  {s['state']}")
    lines.append("")
    lines.append(f"  {'node':<16}{'kind':<16}{'in':>10}{'out':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'step p50':>10}{'q drops':>9}")
    for nid, n in summary["nodes"].items():
        lat, comp = n["latency"], n["compute"]
        lines.append(f"  {nid:<16}{n['kind'][:15]:<16}{n['samples_in']:>10}{n['samples_out']:>10}{lat['p50_ms']:>9.2f}"
                     f"{lat['p99_ms']:>9.2f}{lat['max_ms']:>9.2f}{comp['p50_ms']:>10.3f}{n['queue_drops']:>9}")
    e = summary["e2e"]
    lines.append("")
    lines.append(f"  end-to-end latency (newest input sample → sink): p50 {e['p50_ms']:.2f} ms, p99 {e['p99_ms']:.2f} ms, "
                 f"max {e['max_ms']:.2f} ms over {e['count']} outputs")
    for s in summary["sources"].values():
        for ev in s["events"]:
            lines.append(f"  event {s['stream']}: {ev}")
    for err in summary["errors"]:
        lines.append(f"  ERROR {err}")
    return "\n".join(lines)
