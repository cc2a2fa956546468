"""Soak: the default pipeline on the simulator for a long run with the dashboard attached.

Three processes, as a user would start them: ``edgestream simulate eeg`` (64 ch × 1000 Hz by
default), ``edgestream run eeg_bandpower`` (reading that stream, publishing features, latency and
health) and ``edgestream dashboard`` (offscreen Qt, showing every stream). This process samples
the resident memory of the pipeline and the dashboard every ``--interval`` seconds and reads the
pipeline's own latency stream (end-to-end p50/p99 per second).

Prints one JSON object per line: one per sample (``rss_mb`` per process, ``e2e_p50_ms``) and a
summary — memory growth (MB/min, least-squares slope after the warm-up fifth of the run, and
end/start ratio), latency drift (p50 of the last fifth minus the first fifth after warm-up, and
their ratio), the pipeline's drops by cause and the dashboard's frame count. Ratios compare the
run with its own start (the baseline measured in the same run).

    python benchmarks/soak.py                 # 10 minutes
    python benchmarks/soak.py --quick         # ~1 minute
    python benchmarks/soak.py --duration 120 --no-dashboard
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

BENCH = "soak"


def emit(metric: str, value: float | int | None, unit: str, **extra: object) -> None:
    value = None if value is None or (isinstance(value, float) and not np.isfinite(value)) else value
    print(json.dumps({"bench": BENCH, "metric": metric, "value": value, "unit": unit} | extra), flush=True)


def slope_per_min(t: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of ``y`` over ``t`` (seconds), per minute."""
    if len(t) < 3 or np.ptp(t) <= 0:
        return float("nan")
    return float(np.polyfit(t, y, 1)[0] * 60.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of steady running (default 600)")
    ap.add_argument("--quick", action="store_true", help="60 s instead of --duration")
    ap.add_argument("--interval", type=float, default=None, help="seconds between samples (default duration/60, 1-10 s)")
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--sfreq", type=float, default=1000.0)
    ap.add_argument("--pipeline", default="eeg_bandpower")
    ap.add_argument("--no-dashboard", action="store_true", help="run without the dashboard")
    args = ap.parse_args()
    duration = 60.0 if args.quick else args.duration
    interval = args.interval or min(10.0, max(1.0, duration / 60))

    import psutil
    import pylsl

    from edgestream.core.lslconf import use_loopback

    use_loopback()
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    name = f"soak-{uuid.uuid4().hex[:8]}"
    es = [sys.executable, "-m", "edgestream"]
    tmp = Path(tempfile.mkdtemp(prefix="edgestream-soak-"))
    procs: dict[str, subprocess.Popen] = {}
    try:
        procs["simulator"] = subprocess.Popen(
            es + ["simulate", "eeg", "--channels", str(args.channels), "--sfreq", str(args.sfreq), "--name", name,
                  "--duration", str(duration + 120)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        summary_file = tmp / "summary.json"
        procs["pipeline"] = subprocess.Popen(
            es + ["run", args.pipeline, "--set", f"eeg.source_id={name}", "--duration", str(duration + 60),
                  "--summary-json", str(summary_file), "--no-record"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        found = pylsl.resolve_bypred(f"name='{args.pipeline}-latency'", 1, 90.0)
        if not found:
            raise SystemExit(f"the pipeline's latency stream did not appear: {procs['pipeline'].stderr.read()[-2000:]}")
        latency = pylsl.StreamInlet(found[0], max_buflen=int(duration + 120))
        labels = latency.info(10.0).get_channel_labels() or []
        p50_col = labels.index("e2e_p50_ms") if "e2e_p50_ms" in labels else 0
        stats_file = tmp / "dashboard.json"
        if not args.no_dashboard:
            procs["dashboard"] = subprocess.Popen(
                es + ["dashboard", "--duration", str(duration + 5), "--stats-json", str(stats_file), "--size", "1280",
                      "800", "--settings", str(tmp / "dashboard.ini")],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        watched = {k: psutil.Process(p.pid) for k, p in procs.items() if k != "simulator"}
        t0 = time.monotonic()
        rows: list[tuple[float, dict[str, float], float]] = []
        while time.monotonic() - t0 < duration:
            time.sleep(interval)
            t = time.monotonic() - t0
            rss = {}
            for k, proc in watched.items():
                try:
                    rss[k] = proc.memory_info().rss / 2**20
                except psutil.Error:
                    rss[k] = float("nan")
            data, _ = latency.pull_chunk(0.0, 10_000)
            p50 = float(np.median([r[p50_col] for r in data])) if data else float("nan")
            rows.append((t, rss, p50))
            for k, v in rss.items():
                emit("rss_mb", round(v, 2), "MB", process=k, t_s=round(t, 1))
            emit("e2e_p50_ms", round(p50, 3), "ms", t_s=round(t, 1))
        latency.close_stream()  # before the outlet goes, so liblsl does not report a broken transmission
        procs["pipeline"].terminate()  # like Ctrl-C: summary written
        procs["pipeline"].wait(timeout=60)
        if "dashboard" in procs:
            procs["dashboard"].wait(timeout=60)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
    t = np.asarray([r[0] for r in rows])
    steady = t >= 0.2 * duration  # the first fifth is warm-up (imports, model build, buffers filling)
    fifth = max(1, int(round(0.2 * steady.sum())))
    for k in watched:
        y = np.asarray([r[1][k] for r in rows])
        emit("rss_growth_mb_per_min", round(slope_per_min(t[steady], y[steady]), 3), "MB/min", process=k,
             duration_s=duration)
        emit("rss_end_over_start_ratio", round(float(y[steady][-1] / y[steady][0]), 4), "ratio", process=k,
             baseline="RSS after warm-up, same run")
        emit("rss_end_mb", round(float(y[-1]), 1), "MB", process=k)
    p50 = np.asarray([r[2] for r in rows])[steady]
    first, last = float(np.nanmedian(p50[:fifth])), float(np.nanmedian(p50[-fifth:]))
    emit("e2e_p50_first_ms", round(first, 3), "ms", window="first fifth after warm-up")
    emit("e2e_p50_last_ms", round(last, 3), "ms", window="last fifth")
    emit("e2e_p50_drift_ms", round(last - first, 3), "ms")
    emit("e2e_p50_last_over_first_ratio", round(last / first, 3) if first > 0 else None, "ratio",
         baseline="first fifth after warm-up, same run")
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    for sid, src in summary.get("sources", {}).items():
        for cause, n in src["drops"].items():
            emit(f"drops_{cause}", n, "samples", source=sid)
        emit("samples_in", src["samples_in"], "samples", source=sid)
    emit("pipeline_errors", len(summary.get("errors", [])) if summary else None, "count")
    if "dashboard" in procs:
        stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
        emit("dashboard_frames", stats.get("frames"), "frames", exit_code=procs["dashboard"].returncode,
             panel_errors=sum((stats.get("panel_errors") or {}).values()) if stats else None)
    else:
        emit("dashboard_frames", None, "frames", note="run without the dashboard (--no-dashboard)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
