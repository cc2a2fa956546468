"""``edgestream bench``: run a pipeline on a replayed or simulated stream and judge it against a device budget.

The pipeline's source is replaced (unless ``source="live"``) by

* ``"simulate"`` — the in-process EEG simulator (``simulate_eeg`` source), in real time;
* a file path — the file player (``file`` source) replaying the recording in real time;

everything else (stages, sinks, queues, the device profile's backend/precision/threads) runs
as ``edgestream run`` would. The report holds per-stage latency (since the newest input sample,
and the stage's own compute time; p50/p99/max), end-to-end latency at the sinks, throughput,
CPU, memory, every drop counter, and pass/fail against the profile's ``latency_budget_ms``
(end-to-end p99) and ``memory_budget_mb`` (process RSS, an upper bound on model memory) — with
the machine and the profile's fallback decisions, so the JSON can be shared as it is.
"""

from __future__ import annotations

import inspect
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any

from edgestream.core.errors import ConfigError
from edgestream.core.latency import LatencyStats

REPORT_VERSION = 1
SIMULATOR = "simulate_eeg"  # registered in-process EEG simulator source
FILE_PLAYER = "file"  # registered file replay source


def replay_source(source: str, channels: int | None, sfreq: float | None) -> dict[str, Any]:
    """Pipeline-file entry for the bench's input stream (``kind`` plus constructor arguments)."""
    from edgestream.core.io import SOURCES

    if source == "simulate":
        kind, wanted = SIMULATOR, {"n_channels": channels, "sfreq": sfreq, "realtime": True}
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ConfigError(f"--source must be 'simulate', 'live' or an existing recording file; got {source!r} "
                              "(no such file).")
        kind, wanted = FILE_PLAYER, {"path": str(path), "realtime": True, "loop": True}
    if kind not in SOURCES:
        from edgestream.core.checks import unknown_name

        raise unknown_name("source", kind, [e.name for e in SOURCES])
    accepted = inspect.signature(SOURCES.get(kind).factory).parameters
    return {"kind": kind} | {k: v for k, v in wanted.items() if v is not None and k in accepted}


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (shared with the report)."""
    import onnxruntime
    import pylsl
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from edgestream import __version__

    return {"hostname": platform.node(), "platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0], "python": platform.python_version(), "edgestream": __version__,
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "liblsl": str(pylsl.library_version())}


def run_bench(pipeline: str, device: str | None = None, duration: float = 10.0, source: str = "simulate",
              channels: int | None = None, sfreq: float | None = None, overrides: tuple[str, ...] = (),
              warmup: float = 2.0) -> dict[str, Any]:
    """Run ``pipeline`` for ``warmup + duration`` seconds and return the report (see module docstring).

    Latency, compute time and throughput cover the last ``duration`` seconds only: during the first
    ``warmup`` seconds the pipeline drains what queued up while models were exported and loaded.
    Drops, CPU and memory cover the whole run.
    """
    from edgestream.core.checks import check_number
    from edgestream.core.device import load_profile
    from edgestream.pipeline import Engine, build, load_pipeline
    from edgestream.pipeline.config import NodeSpec

    check_number(duration, "--duration", low=0, low_inclusive=False, fix="Pass seconds, e.g. --duration 30.")
    check_number(warmup, "--warmup", low=0, fix="Pass seconds, e.g. --warmup 2 (0 measures from the first sample).")
    spec = load_pipeline(pipeline, overrides)
    profile = load_profile(device or spec.device or "cpu")  # logs each fallback decision
    if source != "live":
        if len(spec.sources) != 1:
            raise ConfigError(f"--source {source!r} replaces the pipeline's one source; pipeline {spec.name!r} has "
                              f"{len(spec.sources)} ({', '.join(s.id for s in spec.sources)}). Use --source live.")
        entry = replay_source(source, channels, sfreq)
        old = spec.sources[0]
        spec.sources[0] = NodeSpec(old.id, old.section, entry.pop("kind"), entry, None, old.queue)
    machine = machine_info()
    graph = build(spec, profile)
    t_build = time.perf_counter()
    graph.start()
    build_s = time.perf_counter() - t_build
    window: dict[str, Any] = {}

    def start_measuring() -> None:  # from here on: fresh latency statistics and throughput counters
        for node in graph.nodes:
            node.latency, node.compute = LatencyStats(), LatencyStats()
        window.update(t0=time.perf_counter(), inputs={s.id: s.source.samples_in for s in graph.sources},
                      outputs={n.id: n.samples_out for n in graph.nodes})

    timer = threading.Timer(warmup, start_measuring)
    timer.daemon = True
    if warmup > 0:
        timer.start()
    else:
        start_measuring()
    try:
        summary = Engine(graph, publish=False).run(duration + warmup, raise_errors=False)
    finally:
        timer.cancel()
    end = time.perf_counter()
    if window:
        seconds = end - window["t0"]
        window = {"seconds": seconds,
                  "input_samples_per_s": {sid: (s["samples_in"] - window["inputs"][sid]) / seconds
                                          for sid, s in summary["sources"].items()},
                  "output_samples_per_s": {nid: (n["samples_out"] - window["outputs"][nid]) / seconds
                                           for nid, n in summary["nodes"].items()}}
    return make_report(summary, spec, profile, source, duration, build_s, machine, warmup, window)


def _lat(stats: dict[str, float]) -> dict[str, float]:
    return {k: stats[k] for k in ("count", "p50_ms", "p99_ms", "max_ms", "mean_ms") if k in stats}


def make_report(summary: dict[str, Any], spec: Any, profile: Any, source: str, duration: float, build_s: float,
                machine: dict[str, Any], warmup: float = 0.0, window: dict[str, Any] | None = None) -> dict[str, Any]:
    """The shareable bench report from an engine summary (``window``: throughput after the warm-up)."""
    wall = summary["wall_s"] or float("nan")
    sinks = [nid for nid, n in summary["nodes"].items() if any(s.id == nid for s in spec.sinks)]
    stages = {nid: {"kind": n["kind"], "samples_in": n["samples_in"], "samples_out": n["samples_out"],
                    "latency_since_sample": _lat(n["latency"]), "compute": _lat(n["compute"]),
                    "queue_drops": n["queue_drops"]}
              for nid, n in summary["nodes"].items() if nid not in sinks}
    e2e = _lat(summary["e2e"])
    drops = {sid: s["drops"] for sid, s in summary["sources"].items()}
    queue_drops = sum(n["queue_drops"] for n in summary["nodes"].values())
    total_drops = sum(d["total"] for d in drops.values()) + queue_drops
    budget = float(profile.latency_budget_ms)
    p99 = e2e.get("p99_ms", float("nan"))
    if not e2e.get("count"):
        latency = {"pass": False, "reason": "no output reached a sink during the run"}
    else:
        latency = {"pass": bool(p99 <= budget), "reason": f"end-to-end p99 {p99:.2f} ms {'<=' if p99 <= budget else '>'} "
                   f"budget {budget:g} ms"}
    rss = summary["rss_mb"]
    memory = {"pass": bool(rss <= profile.memory_budget_mb),
              "reason": f"process RSS {rss:.0f} MB {'<=' if rss <= profile.memory_budget_mb else '>'} budget "
                        f"{profile.memory_budget_mb:g} MB (RSS includes the Python runtime: an upper bound)"}
    verdict = "PASS" if latency["pass"] and memory["pass"] and not summary["errors"] else "FAIL"
    return {
        "report": "edgestream bench", "version": REPORT_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pipeline": spec.name, "pipeline_file": spec.path, "source": source, "duration_s": duration,
        "device": profile.name, "profile": profile.to_dict(), "decisions": list(profile.decisions), "machine": machine,
        "build_s": round(build_s, 3), "wall_s": wall, "cpu_percent": summary["cpu_percent"], "rss_mb": rss,
        "warmup_s": warmup, "measured_s": (window or {}).get("seconds", 0.0),
        "throughput": {
            "input_samples_per_s": (window or {}).get("input_samples_per_s", {}),
            "output_samples_per_s": {nid: v for nid, v in (window or {}).get("output_samples_per_s", {}).items() if nid in sinks},
        },
        "stages": stages, "sinks": {nid: {"kind": summary["nodes"][nid]["kind"], "latency": _lat(summary["nodes"][nid]["latency"]),
                                          "write": _lat(summary["nodes"][nid]["compute"])} for nid in sinks},
        "e2e": e2e, "drops": {"sources": drops, "queues": queue_drops, "total": total_drops},
        "latency_budget": latency | {"budget_ms": budget, "p99_ms": p99}, "memory_budget": memory | {"budget_mb": profile.memory_budget_mb},
        "errors": summary["errors"], "verdict": verdict,
    }


def format_report(r: dict[str, Any]) -> str:
    """The report as a table for the terminal."""
    m = r["machine"]
    lines = [f"edgestream bench — pipeline {r['pipeline']!r} on device {r['device']!r}, source {r['source']}, "
             f"{r['measured_s']:.1f} s measured after {r['warmup_s']:g} s warm-up",
             f"  machine: {m['cpu']} ({m['cpus']} CPUs, load {m['load_avg_1m']:.2f}), torch {m['torch']}, "
             f"onnxruntime {m['onnxruntime']}, liblsl {m['liblsl']}"]
    p = r["profile"]
    lines.append(f"  profile: backend {p['backend']} ({p['precision']}), torch {p['torch_device']} {p['dtype']}, "
                 f"{p['threads']} thread(s); graph built in {r['build_s']:.2f} s")
    lines += [f"  decision: {d}" for d in r["decisions"]]
    lines += ["", f"  {'stage':<16}{'kind':<18}{'in':>9}{'out':>8}{'since sample p50/p99/max ms':>30}{'compute p50/p99/max ms':>26}"]

    def trio(s: dict[str, float]) -> str:
        return f"{s.get('p50_ms', float('nan')):.2f}/{s.get('p99_ms', float('nan')):.2f}/{s.get('max_ms', float('nan')):.2f}"

    for nid, s in r["stages"].items():
        lines.append(f"  {nid:<16}{s['kind'][:17]:<18}{s['samples_in']:>9}{s['samples_out']:>8}{trio(s['latency_since_sample']):>30}"
                     f"{trio(s['compute']):>26}")
    for nid, s in r["sinks"].items():
        lines.append(f"  {nid:<16}{s['kind'][:17]:<18}{'':>9}{'':>8}{trio(s['latency']):>30}{trio(s['write']):>26}")
    e = r["e2e"]
    t = r["throughput"]
    lines += ["",
              f"  end-to-end latency: p50 {e.get('p50_ms', float('nan')):.2f} ms, p99 {e.get('p99_ms', float('nan')):.2f} ms, "
              f"max {e.get('max_ms', float('nan')):.2f} ms over {e.get('count', 0)} outputs",
              "  throughput: " + ", ".join(f"{k} {v:,.0f} samples/s in" for k, v in t["input_samples_per_s"].items())
              + "; " + ", ".join(f"{k} {v:,.1f} samples/s out" for k, v in t["output_samples_per_s"].items()),
              f"  CPU {r['cpu_percent']:.1f} % of one core, RSS {r['rss_mb']:.0f} MB (whole run)",
              f"  drops: {r['drops']['total']} samples (" + ", ".join(
                  f"{sid}: " + ", ".join(f"{k} {v}" for k, v in d.items() if k != "total") for sid, d in r["drops"]["sources"].items())
              + f"; queues {r['drops']['queues']})"]
    for err in r["errors"]:
        lines.append(f"  ERROR {err}")
    lb, mb = r["latency_budget"], r["memory_budget"]
    lines += [f"  latency budget: {'pass' if lb['pass'] else 'FAIL'} — {lb['reason']}",
              f"  memory budget:  {'pass' if mb['pass'] else 'FAIL'} — {mb['reason']}",
              f"  verdict: {r['verdict']}"]
    return "\n".join(lines)
