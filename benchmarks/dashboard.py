"""Dashboard cost: rendered frames per second, CPU of the dashboard process, and whether a running
dashboard changes the latency of a pipeline.

Setup (all real processes on loopback LSL):

* ``edgestream simulate eeg``: 64 ch × 1000 Hz (and its marker stream; no counter channel, as the
  reference pipeline takes exactly 64 channels);
* ``edgestream run reference``: band-pass → 1-s window every 100 ms → ``reference_conv`` →
  a Predictions outlet, plus its latency and health streams; its ``--summary-json`` gives
  end-to-end latency p50/p99;
* ``edgestream dashboard`` reading the simulated EEG, the predictions, latency and health, at its
  default CPU priority (idle; ``--dashboard-priority normal`` to compare).

Phases, in one run with the same simulator, after a discarded warm-up run of the pipeline:
(A) pipeline alone, (B) pipeline while a dashboard runs, (C) pipeline while a *bare reader* runs
— another process that only pulls the same streams with pylsl (one blocking inlet per stream, as
any LSL consumer would) and draws nothing. Phases come in rounds A B C, C B A, A B C (one round
with ``--quick``, ``--no-control`` drops C); medians over the rounds are reported. C separates
what any second reader of the streams costs (liblsl's outlet serves each consumer from its own
thread, woken per sample) from what the dashboard adds on top. Dashboard FPS counts
paint events of the traces plot inside each B window; CPU is the dashboard process's
user+system time over that window. Targets: ≥ 30 FPS at ≤ 25 % of one core,
and the pipeline's p99 with the dashboard within 10 % of the p99 without it (A).

``--priority realtime`` runs the data path (simulator and pipeline, every phase) at ``SCHED_FIFO``
(their ``--priority realtime``; needs root or CAP_SYS_NICE, and the run stops if it was refused):
the setup for a live session that shares its machine with a dashboard. The default, normal,
measures what a pipeline started without it gets. Under Xvfb the display server's CPU is reported
too (it runs at normal priority and copies every frame the dashboard draws).

Rendering uses Xvfb when ``xvfb-run`` is installed (``--platform auto``), else Qt's offscreen
platform. ``--quick`` runs one round of 10-s phases; ``--pairs N --phase S`` N rounds of S-s phases (each
p99 is about the 3rd-largest of the ~10 outputs per second, so more rounds give a steadier median).
One JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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


def run_pipeline(source_id: str, seconds: float, summary: Path, env: dict[str, str], priority: str = "normal"
                 ) -> dict[str, Any]:
    """``edgestream run reference`` for ``seconds`` on the simulated stream; returns its summary."""
    cmd = edgestream("run", "reference", "--duration", f"{seconds:g}", "--set", f"eeg.source_id={source_id}",
                     "--summary-json", str(summary), "--priority", priority)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 120)
    if proc.returncode != 0:
        raise SystemExit(f"edgestream run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(summary.read_text())
    if not result.get("priority", "").startswith(priority):
        raise SystemExit(f"the pipeline was asked for --priority {priority} but ran at {result.get('priority')!r}")
    return result


def start_dashboard(patterns: list[str], workdir: Path, seconds: float, platform: str,
                    env: dict[str, str], priority: str = "idle") -> tuple[subprocess.Popen, Path]:
    stats = workdir / "dashboard-stats.json"
    args = ["dashboard", "--duration", f"{seconds:g}", "--stats-json", str(stats), "--settings",
            str(workdir / "dashboard.ini"), "--reset-settings", "--size", "1600", "1000", "--fps", "30",
            "--priority", priority]
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
                cmd = child.cmdline()
                # the Python interpreter itself, not xvfb-run's shell (whose command line holds the same words)
                if cmd and cmd[0] == sys.executable and "edgestream" in cmd and "dashboard" in cmd:
                    return child.pid
            except psutil.Error:
                continue
        time.sleep(0.2)
    raise SystemExit("could not find the dashboard process under xvfb-run")


def display_server(proc: subprocess.Popen, platform: str) -> Any:
    """The Xvfb process xvfb-run started for the dashboard (None with the offscreen platform)."""
    import psutil

    if platform != "xvfb":
        return None
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            if child.name() == "Xvfb":
                return child
        except psutil.Error:
            continue
    raise SystemExit("could not find the Xvfb process under xvfb-run")


def cpu_seconds(proc: Any) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def dashboard_phase(source_id: str, patterns: list[str], work: Path, phase: float, platform: str,
                    env: dict[str, str], k: int, dashboard_priority: str = "idle", data_priority: str = "normal"
                    ) -> tuple[dict[str, Any], float, float, float | None, dict[str, Any]]:
    """Run the pipeline for ``phase`` s while a dashboard runs:
    (summary, fps, dashboard cpu %, display server cpu % or None, dashboard stats)."""
    import psutil

    from edgestream.core.clock import local_clock

    sub = work / f"dash{k}"
    sub.mkdir()
    dash, stats_path = start_dashboard(patterns, sub, phase + WARMUP_S + 20, platform, env, dashboard_priority)
    try:
        proc = psutil.Process(dashboard_pid(dash, platform))
        xserver = display_server(dash, platform)
        time.sleep(WARMUP_S)
        if dash.poll() is not None or not proc.is_running():
            dash.wait(timeout=10)
            raise SystemExit(f"the dashboard exited during start-up ({dash.returncode}):\n{dash.stderr.read()[-3000:]}")
        x0 = cpu_seconds(xserver) if xserver else 0.0
        cpu0, t0, c0 = cpu_seconds(proc), time.monotonic(), local_clock()
        summary = run_pipeline(source_id, phase, sub / "with.json", env, data_priority)
        cpu1, t1, c1 = cpu_seconds(proc), time.monotonic(), local_clock()
        x1 = cpu_seconds(xserver) if xserver else 0.0
        dash.wait(timeout=phase + WARMUP_S + 120)
        if dash.returncode != 0:
            raise SystemExit(f"the dashboard exited with {dash.returncode}:\n{dash.stderr.read()[-3000:]}")
    finally:
        stop_tree(dash)
    stats = json.loads(stats_path.read_text())
    fps = sum(c0 <= t <= c1 for t in stats["paint_times"]) / (c1 - c0)
    cpu = 100.0 * (cpu1 - cpu0) / (t1 - t0)
    return summary, fps, cpu, (100.0 * (x1 - x0) / (t1 - t0) if xserver else None), stats


def stop_tree(proc: subprocess.Popen) -> None:
    """Stop a process and everything it started (xvfb-run leaves its Xvfb behind when interrupted)."""
    import psutil

    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        family = []
    for p in [*family, proc]:
        try:
            p.terminate()
        except (psutil.Error, ProcessLookupError):
            pass
    psutil.wait_procs([p for p in family if p.is_running()], timeout=10)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def bare_reader(patterns: list[str], seconds: float) -> None:
    """Body of the control process: pull every stream matching ``patterns`` for ``seconds``, draw nothing.

    One thread per stream blocks in ``pull_chunk`` (first sample, then whatever is buffered), the
    way a plain pylsl consumer reads; streams that appear later (the pipeline's) are picked up.
    Stops after ``seconds`` or on SIGTERM, then prints ``{stream name: samples read}`` as JSON.
    """
    import fnmatch
    import signal
    import threading

    import numpy as np
    import pylsl

    from edgestream.core.lslconf import use_loopback

    use_loopback()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    resolver, opened, threads, samples = pylsl.ContinuousResolver(forget_after=5.0), set(), [], {}

    def pull(info: Any) -> None:
        inlet = pylsl.StreamInlet(info, max_buflen=360, recover=False, processing_flags=pylsl.proc_clocksync)
        fmt = info.channel_format()  # a buffer with room for 1024 samples (float64 holds any numeric format)
        dtype = np.float32 if fmt == pylsl.cf_float32 else np.float64
        buf = None if fmt == pylsl.cf_string else np.empty((1024, info.channel_count()), dtype)
        samples[info.name()] = 0
        while not stop.is_set():
            try:
                _, stamps = inlet.pull_chunk(0.1, 1024, buf, 1, True)
            except pylsl.util.LostError:
                return
            samples[info.name()] += len(stamps)

    deadline = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        for info in resolver.results():
            if info.uid() not in opened and any(fnmatch.fnmatchcase(info.name(), p) for p in patterns):
                opened.add(info.uid())
                threads.append(threading.Thread(target=pull, args=(info,), daemon=True))
                threads[-1].start()
        stop.wait(0.5)
    stop.set()
    for t in threads:
        t.join(timeout=2)
    print(json.dumps(samples), flush=True)


def reader_phase(source_id: str, patterns: list[str], work: Path, phase: float, env: dict[str, str], k: int,
                 data_priority: str = "normal") -> tuple[dict[str, Any], dict[str, int]]:
    """Run the pipeline for ``phase`` s while a bare reader pulls the same streams as the dashboard:
    (pipeline summary, samples the reader read per stream)."""
    cmd = [sys.executable, __file__, "--bare-reader", f"{phase + WARMUP_S + 60:g}", *patterns]
    reader = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3.0)
        if reader.poll() is not None:
            raise SystemExit(f"the bare reader exited early ({reader.returncode}):\n{reader.stderr.read()[-3000:]}")
        summary = run_pipeline(source_id, phase, work / f"reader{k}.json", env, data_priority)
        reader.terminate()
        out, err = reader.communicate(timeout=20)
    finally:
        stop_tree(reader)
    if reader.returncode != 0 or not out.strip():
        raise SystemExit(f"the bare reader failed ({reader.returncode}):\n{err[-3000:]}")
    return summary, json.loads(out.strip().splitlines()[-1])


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10-s phases, one round, instead of 30-s phases, three rounds")
    parser.add_argument("--pairs", type=int, default=None, help="rounds of phases (default 3; 1 with --quick)")
    parser.add_argument("--phase", type=float, default=None, help="seconds per phase (default 30; 10 with --quick)")
    parser.add_argument("--platform", choices=("auto", "xvfb", "offscreen"), default="auto")
    parser.add_argument("--no-control", action="store_true", help="skip phase C (pipeline with a bare reader)")
    parser.add_argument("--bare-reader", nargs="+", metavar=("SECONDS", "PATTERN"), help=argparse.SUPPRESS)
    parser.add_argument("--priority", choices=("normal", "realtime"), default="normal",
                        help="CPU priority of the data path, simulator and pipeline, in every phase (their --priority; "
                             "realtime needs root or CAP_SYS_NICE)")
    parser.add_argument("--dashboard-priority", choices=("idle", "normal"), default="idle",
                        help="the dashboard's --priority (default: its own default, idle)")
    args = parser.parse_args()
    if args.bare_reader:  # the control process of phase C
        bare_reader(args.bare_reader[1:], float(args.bare_reader[0]))
        return
    from edgestream.core.lslconf import use_loopback

    use_loopback()
    env = dict(os.environ)
    phase, pairs = (10.0, 1) if args.quick else (30.0, 3)
    phase, pairs = args.phase or phase, args.pairs or pairs
    if phase < 5 or pairs < 1:
        parser.error(f"--phase must be >= 5 s and --pairs >= 1; got {phase:g} and {pairs}")
    platform = args.platform if args.platform != "auto" else ("xvfb" if shutil.which("xvfb-run") else "offscreen")
    run_id = uuid.uuid4().hex[:8]
    name, source_id = f"bench-dash-eeg-{run_id}", f"bench-dash-{run_id}"
    common = {"quick": args.quick, "phase_s": phase, "pairs": pairs, "platform": platform, "channels": N_CH,
              "sfreq": SFREQ, "data_path_priority": args.priority}
    # The dashboard shows the simulated EEG and everything the reference pipeline publishes.
    patterns = [f"{name}*", "reference-*"]
    reader_samples: list[dict[str, int]] = []
    xcpu: list[float] = []  # the display server's CPU (Xvfb draws what the dashboard sends it)
    alone, with_reader, with_dash, fps, cpu, streams, errors, redraws, priority = [], [], [], [], [], set(), {}, [], set()
    with tempfile.TemporaryDirectory(prefix="edgestream-bench-dashboard-") as tmp:
        work = Path(tmp)
        sim = subprocess.Popen(edgestream("simulate", "eeg", "--channels", str(N_CH), "--sfreq", f"{SFREQ:g}",
                                          "--name", name, "--source-id", source_id, "--priority", args.priority,
                                          "--duration", f"{pairs * (3 * phase + WARMUP_S + 80) + 90:g}"),
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(2.0)
            if sim.poll() is not None:
                raise SystemExit(f"the simulator exited early:\n{sim.stderr.read()[-2000:]}")
            # first-run effects (caches, ORT), discarded
            run_pipeline(source_id, WARMUP_S, work / "warmup.json", env, args.priority)
            for k in range(pairs):
                # A B C, then C B A, ...: drift on a shared machine hits every condition alike
                order = "AB" if args.no_control else "ABC"
                for which in (order if k % 2 == 0 else order[::-1]):
                    if which == "A":
                        alone.append(run_pipeline(source_id, phase, work / f"alone{k}.json", env, args.priority))
                        continue
                    if which == "C":
                        summary, read = reader_phase(source_id, patterns, work, phase, env, k, args.priority)
                        if not read.get(name):
                            raise SystemExit(f"the bare reader read nothing from {name!r}: {read}")
                        with_reader.append(summary)
                        reader_samples.append(read)
                        continue
                    summary, f, c, x, stats = dashboard_phase(source_id, patterns, work, phase, platform, env, k,
                                                         args.dashboard_priority, args.priority)
                    with_dash.append(summary)
                    fps.append(f)
                    cpu.append(c)
                    if x is not None:
                        xcpu.append(x)
                    redraws.append(stats.get("trace_redraws", 0) / max(1, stats["panel_updates"].get("traces", 1)))
                    streams.update(stats["streams"])
                    priority.add(stats.get("priority", "?"))
                    errors.update({n: v for n, v in stats["panel_errors"].items() if v})
        finally:
            if sim.poll() is None:
                sim.terminate()
                try:
                    sim.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    sim.kill()
    emit("rendered_fps", round(median(fps), 2), "frames/s", target=">= 30", per_pair=[round(v, 2) for v in fps],
         streams=sorted(streams), **common)
    emit("dashboard_cpu", round(median(cpu), 2), "% of one core", target="<= 25", per_pair=[round(v, 2) for v in cpu],
         dashboard_priority=sorted(priority), **common)
    if xcpu:
        emit("display_server_cpu", round(median(xcpu), 2), "% of one core", per_pair=[round(v, 2) for v in xcpu],
             note="Xvfb, at normal priority: it copies every frame the dashboard draws into its screen", **common)
    emit("trace_full_redraw_fraction", round(median(redraws), 4), "of frames", per_pair=[round(v, 4) for v in redraws],
         note="frames that redrew the whole trace window (rescale, resize) instead of the new columns", **common)
    p99 = {}
    for label, runs in (("without_dashboard", alone), ("with_dashboard", with_dash), ("with_bare_reader", with_reader)):
        if not runs:
            continue
        p50s = [r["e2e"]["p50_ms"] for r in runs]
        p99s = [r["e2e"]["p99_ms"] for r in runs]
        p99[label] = median(p99s)
        drops = sum(src["drops"]["total"] for r in runs for src in r["sources"].values())
        emit(f"pipeline_p50_{label}", round(median(p50s), 3), "ms", per_pair=[round(v, 3) for v in p50s], **common)
        emit(f"pipeline_p99_{label}", round(p99[label], 3), "ms", per_pair=[round(v, 3) for v in p99s],
             outputs=sum(r["e2e"]["count"] for r in runs), drops=drops,
             pipeline_cpu_percent=round(median([r["cpu_percent"] for r in runs]), 2), **common)
    emit("pipeline_p99_ratio_with_vs_without", round(p99["with_dashboard"] / p99["without_dashboard"], 4), "ratio",
         target="<= 1.10", baseline="pipeline alone, same run (median p99 over the pairs)", **common)
    if with_reader:
        emit("bare_reader_samples", reader_samples, "samples per stream",
             note="what the control reader pulled in each C phase", **common)
        emit("pipeline_p99_ratio_bare_reader_vs_without", round(p99["with_bare_reader"] / p99["without_dashboard"], 4),
             "ratio", baseline="pipeline alone, same run", note="what any second reader of the streams costs",
             **common)
        emit("pipeline_p99_ratio_with_dashboard_vs_bare_reader",
             round(p99["with_dashboard"] / p99["with_bare_reader"], 4), "ratio",
             baseline="pipeline with a bare reader of the same streams, same run",
             note="what the dashboard adds beyond reading the streams", **common)
    if errors:
        emit("panel_errors", errors, "count", **common)


if __name__ == "__main__":
    main()
