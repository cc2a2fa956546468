"""Cost of edgestream's LSL reader vs hand-written pylsl loops reading the same stream.

A separate process pushes 64 ch × 1000 Hz float32 in chunks of 10 samples with explicit
per-sample stamps. The consumer (this process) reads it for DURATION seconds with one of:

* ``edgestream``: ``LSLSource.read(0.05)`` (counting, state machine, float32 chunks);
* ``pylsl_blocking``: ``pull_chunk(0.05, min_samples=1, dest_obj=buf)`` + a float32 copy — the
  same wait-in-liblsl strategy without edgestream's bookkeeping;
* ``pylsl_polling``: ``pull_chunk(0.0)`` + 1 ms sleep, the usual hand-written loop.

Latency = LSL clock when the read returns − stamp of the newest sample it returned (how old
data is when the consumer gets it); CPU = this process's CPU time / wall time.
Prints one JSON object per line; ratios compare with the baselines measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

N_CH, SFREQ, CHUNK = 64, 1000.0, 10


def pusher(source_id: str, duration: float) -> None:
    import numpy as np
    import pylsl

    outlet = pylsl.StreamOutlet(pylsl.StreamInfo("bench-lsl-source", "EEG", N_CH, SFREQ, "float32", source_id),
                                chunk_size=CHUNK)
    outlet.wait_for_consumers(30)
    block = (np.random.default_rng(0).standard_normal((CHUNK, N_CH)) * 20).astype(np.float32)
    start, k = time.perf_counter(), 0
    while time.perf_counter() - start < duration:
        delay = start + (k + 1) * CHUNK / SFREQ - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        now = pylsl.local_clock()
        outlet.push_chunk(block, (now - (CHUNK - 1 - np.arange(CHUNK)) / SFREQ).tolist())
        k += 1


def consume(system: str, source_id: str, duration: float) -> dict:
    import numpy as np
    import psutil
    import pylsl

    from edgestream.core.latency import percentiles_ms
    from edgestream.sources.lsl import LSLSource

    lat, samples = [], 0
    if system == "edgestream":
        src = LSLSource(source_id=source_id, timeout=30)
        src.start()

        def read() -> tuple[int, float]:
            chunks = src.read(0.05)
            return (chunks[0].n_times, chunks[0].newest) if chunks else (0, 0.0)
    else:
        inlet = pylsl.StreamInlet(pylsl.resolve_bypred(f"source_id='{source_id}'", 1, 30)[0], recover=False,
                                  processing_flags=pylsl.proc_clocksync)
        inlet.time_correction(5)
        inlet.open_stream(5)
        buf = np.empty((1024, N_CH), np.float32)
        if system == "pylsl_blocking":
            def read() -> tuple[int, float]:
                data, ts = inlet.pull_chunk(0.05, 1024, buf, 1, True)
                _ = data.copy()
                return (len(ts), float(ts[-1])) if len(ts) else (0, 0.0)
        else:
            def read() -> tuple[int, float]:
                data, ts = inlet.pull_chunk(0.0, 1024, buf, None, True)
                _ = data.copy()
                if not len(ts):
                    time.sleep(0.001)
                    return 0, 0.0
                return len(ts), float(ts[-1])
    proc = psutil.Process()
    end = time.perf_counter() + 1.0  # warm-up
    while time.perf_counter() < end:
        read()
    cpu0, t0 = proc.cpu_times(), time.perf_counter()
    end = t0 + duration
    while time.perf_counter() < end:
        n, newest = read()
        if n:
            lat.append(pylsl.local_clock() - newest)
            samples += n
    cpu1, wall = proc.cpu_times(), time.perf_counter() - t0
    p = percentiles_ms(np.asarray(lat))
    return {"p50_ms": p["p50_ms"], "p99_ms": p["p99_ms"], "samples": samples, "reads": len(lat),
            "cpu_percent": 100 * ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 s per system instead of 20 s")
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--role", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--source-id", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "pusher":
        return pusher(args.source_id, args.duration)
    from edgestream.core.lslconf import use_loopback

    use_loopback()
    duration = args.duration or (5.0 if args.quick else 20.0)
    results = {}
    for system in ("pylsl_polling", "pylsl_blocking", "edgestream"):
        sid = f"bench-{uuid.uuid4().hex[:8]}"
        push = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--role", "pusher", "--source-id", sid,
                                 "--duration", str(duration + 10)], env=dict(os.environ))
        try:
            results[system] = consume(system, sid, duration)
        finally:
            push.terminate()
            push.wait(timeout=10)
    for system, r in results.items():
        for metric, unit in (("p50_ms", "ms"), ("p99_ms", "ms"), ("cpu_percent", "%"), ("samples", "samples"),
                             ("reads", "count")):
            print(json.dumps({"bench": "lsl_source", "system": system, "metric": metric, "value": round(r[metric], 3),
                              "unit": unit, "duration_s": duration}))
    for base in ("pylsl_polling", "pylsl_blocking"):
        for metric in ("p50_ms", "p99_ms", "cpu_percent"):
            print(json.dumps({"bench": "lsl_source", "metric": f"{metric}_ratio_vs_{base}",
                              "value": round(results["edgestream"][metric] / results[base][metric], 3), "unit": "ratio",
                              "baseline": f"{base}, same run"}))


if __name__ == "__main__":
    main()
