"""Dashboard cost: rendered frames per second, CPU of the dashboard process, and whether a running
dashboard changes the latency of a pipeline.

Setup (all real processes on loopback LSL):

* ``edgestream simulate eeg``: 64 ch × 1000 Hz with a counter channel (and its marker stream);
* ``edgestream run reference``: band-pass → 1-s window every 100 ms → ``reference_conv`` →
  a Predictions outlet, plus its latency and health streams; its ``--summary-json`` gives
  end-to-end latency p50/p99;
* ``edgestream dashboard`` reading the simulated EEG, the predictions, latency and health.

Phases, in one run with the same simulator: (A) pipeline alone, (B) pipeline while the dashboard
runs. Dashboard FPS counts paint events of the traces plot inside phase B's window; CPU is the
dashboard process's user+system time over that window. Targets: ≥ 30 FPS at ≤ 25 % of one core,
and the pipeline's p99 with the dashboard within 10 % of the p99 without it.

Rendering uses Xvfb when ``xvfb-run`` is installed (``--platform auto``), else Qt's offscreen
platform. ``--quick`` runs 10-s phases instead of 30-s ones. One JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = "dashboard"
N_CH, SFREQ = 64, 1000.0
WARMUP_S = 6.0  # dashboard start-up (imports, stream discovery, first frames) before measuring


def emit(metric: str, value: Any, unit: str, **extra: Any) -> None:
    print(json.dumps({"bench": BENCH, "metric": metric, "value": value, "unit": unit, **extra}), flush=True)


def edgestream(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgestream", *args]


def run_pipeline(source_id: str, seconds: float, summary: Path, env: dict[str, str]) -> dict[str, Any]:
    """``edgestream run reference`` for ``seconds`` on the simulated stream; returns its summary."""
    cmd = edgestream("run", "reference", "--duration", f"{seconds:g}", "--set", f"eeg.source_id={source_id}",
                     "--summary-json", str(summary))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 120)
    if proc.returncode != 0:
        raise SystemExit(f"edgestream run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(summary.read_text())


def start_dashboard(patterns: list[str], workdir: Path, seconds: float, platform: str,
                    env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    stats = workdir / "dashboard-stats.json"
    args = ["dashboard", "--duration", f"{seconds:g}", "--stats-json", str(stats), "--settings",
            str(workdir / "dashboard.ini"), "--reset-settings", "--size", "1600", "1000", "--fps", "30"]
    for p in patterns:
        args += ["--stream", p]
    cmd = edgestream(*args)
    env = dict(env)
    if platform == "xvfb":
        env["QT_QPA_PLATFORM"] = "xcb"
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1920x1080x24"] + cmd
    else:
        env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), stats


def dashboard_pid(proc: subprocess.Popen, platform: str) -> int:
    """The Python process drawing the dashboard (under xvfb-run it is a grandchild)."""
    import psutil

    if platform != "xvfb":
        return proc.pid
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if "edgestream" in " ".join(child.cmdline()) and "dashboard" in child.cmdline():
                    return child.pid
            except psutil.Error:
                continue
        time.sleep(0.2)
    raise SystemExit("could not find the dashboard process under xvfb-run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10-s phases instead of 30-s ones")
    parser.add_argument("--platform", choices=("auto", "xvfb", "offscreen"), default="auto")
    args = parser.parse_args()
    import psutil

    from edgestream.core.clock import local_clock
    from edgestream.core.lslconf import use_loopback

    use_loopback()
    env = dict(os.environ)
    phase = 10.0 if args.quick else 30.0
    platform = args.platform if args.platform != "auto" else ("xvfb" if shutil.which("xvfb-run") else "offscreen")
    run_id = uuid.uuid4().hex[:8]
    name, source_id = f"bench-dash-eeg-{run_id}", f"bench-dash-{run_id}"
    common = {"quick": args.quick, "phase_s": phase, "platform": platform, "channels": N_CH, "sfreq": SFREQ}
    with tempfile.TemporaryDirectory(prefix="edgestream-bench-dashboard-") as tmp:
        work = Path(tmp)
        sim = subprocess.Popen(edgestream("simulate", "eeg", "--channels", str(N_CH), "--sfreq", f"{SFREQ:g}",
                                          "--name", name, "--source-id", source_id, "--counter",
                                          "--duration", f"{4 * phase + 120:g}"),
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        dash = None
        try:
            time.sleep(2.0)
            if sim.poll() is not None:
                raise SystemExit(f"the simulator exited early:\n{sim.stderr.read()[-2000:]}")
            alone = run_pipeline(source_id, phase, work / "alone.json", env)
            # The dashboard shows the simulated EEG and everything the reference pipeline publishes.
            dash, stats_path = start_dashboard([f"{name}*", "reference-*"], work, phase + WARMUP_S + 20, platform, env)
            pid = dashboard_pid(dash, platform)
            time.sleep(WARMUP_S)
            proc = psutil.Process(pid)
            cpu0, t0, c0 = proc.cpu_times(), time.monotonic(), local_clock()
            with_dash = run_pipeline(source_id, phase, work / "with.json", env)
            cpu1, t1, c1 = proc.cpu_times(), time.monotonic(), local_clock()
            dash.wait(timeout=phase + WARMUP_S + 120)
            if dash.returncode != 0:
                raise SystemExit(f"the dashboard exited with {dash.returncode}:\n{dash.stderr.read()[-3000:]}")
            stats = json.loads(stats_path.read_text())
        finally:
            for p in (dash, sim):
                if p is not None and p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()
    paints = [t for t in stats["paint_times"] if c0 <= t <= c1]
    fps = len(paints) / (c1 - c0)
    cpu = 100.0 * ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / (t1 - t0)
    emit("rendered_fps", round(fps, 2), "frames/s", target=">= 30", streams=stats["streams"], **common)
    emit("dashboard_cpu", round(cpu, 2), "% of one core", target="<= 25", **common)
    a, b = alone["e2e"], with_dash["e2e"]
    for label, s in (("without_dashboard", alone), ("with_dashboard", with_dash)):
        e = s["e2e"]
        drops = sum(src["drops"]["total"] for src in s["sources"].values())
        emit(f"pipeline_p50_{label}", round(e["p50_ms"], 3), "ms", **common)
        emit(f"pipeline_p99_{label}", round(e["p99_ms"], 3), "ms", outputs=e["count"], drops=drops,
             pipeline_cpu_percent=round(s["cpu_percent"], 2), **common)
    emit("pipeline_p99_ratio_with_vs_without", round(b["p99_ms"] / a["p99_ms"], 4), "ratio", target="<= 1.10",
         baseline="pipeline alone, same run", **common)
    errors = {k: v for k, v in stats["panel_errors"].items() if v}
    if errors:
        emit("panel_errors", errors, "count", **common)


if __name__ == "__main__":
    main()
