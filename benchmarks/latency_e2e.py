"""End-to-end latency of the reference pipeline, edgestream vs a hand-written pylsl + scipy loop.

Three processes on loopback LSL, as other frameworks run the same work:

1. pusher: 64 ch × 1000 Hz float32 in chunks of 10 samples, explicit per-sample timestamps
   (the newest sample stamped with the LSL clock at push time);
2. the pipeline under test: 4th-order Butterworth band-pass 1–40 Hz (SOS, causal, state
   carried) → 1-s window every 100 ms → ``reference_conv`` (seed 0, one thread) → LSL
   outlet stamped with the newest input sample. edgestream runs the model on the device
   profile's backend (``cpu``: ONNX Runtime, same outputs to float tolerance); the baseline
   uses eager torch, as hand-written code does. A model that runs once per 100 ms starts with
   cold caches: eager torch took 1.26 ms per window that way vs 0.28 ms back to back, ONNX
   Runtime 0.60 ms. Either ``edgestream run reference`` or the
   baseline loop in this file (``pull_chunk(timeout=0)`` + 1 ms sleep polling, the usual way);
3. receiver: latency = receipt time on the LSL clock − output timestamp.

Prints one JSON line per metric; ``ratio`` lines compare edgestream with the baseline
measured in the same run. ``--quick`` runs 10 s per system instead of 30 s.
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

ROOT = Path(__file__).resolve().parents[1]
N_CH, SFREQ, CHUNK = 64, 1000.0, 10


def pusher(source_id: str, duration: float) -> None:
    import numpy as np
    import pylsl

    info = pylsl.StreamInfo("bench-eeg", "EEG", N_CH, SFREQ, "float32", source_id)
    chans = info.desc().append_child("channels")
    for i in range(N_CH):
        ch = chans.append_child("channel")
        ch.append_child_value("label", f"E{i}")
        ch.append_child_value("unit", "microvolts")
        ch.append_child_value("type", "EEG")
    outlet = pylsl.StreamOutlet(info, chunk_size=CHUNK)
    outlet.wait_for_consumers(30)
    rng = np.random.default_rng(0)
    block = (rng.standard_normal((int(SFREQ), N_CH)) * 20).astype(np.float32)
    period = CHUNK / SFREQ
    start = time.perf_counter()
    k = 0
    while time.perf_counter() - start < duration:
        due = start + (k + 1) * period
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        now = pylsl.local_clock()
        stamps = now - (CHUNK - 1 - np.arange(CHUNK)) / SFREQ
        i0 = (k * CHUNK) % int(SFREQ)
        outlet.push_chunk(block[i0 : i0 + CHUNK], stamps.tolist())
        k += 1


def receiver(name: str, duration: float, out_path: str) -> None:
    import numpy as np
    import pylsl

    streams = pylsl.resolve_byprop("name", name, timeout=60)
    if not streams:
        raise SystemExit(f"receiver: no stream named {name!r}")
    inlet = pylsl.StreamInlet(streams[0], max_buflen=10)
    info = inlet.info(10)
    labels, ch = [], info.desc().child("channels").child("channel")
    while not ch.empty():
        labels.append(ch.child_value("label"))
        ch = ch.next_sibling()
    has_counter = bool(labels) and labels[-1] == "counter"  # edgestream outlets end with a sample counter
    inlet.open_stream(timeout=10)
    lat, counters = [], []
    end = time.perf_counter() + duration
    while time.perf_counter() < end:
        data, ts = inlet.pull_chunk(timeout=0.5, max_samples=64, min_samples=1, as_numpy=True)
        now = pylsl.local_clock()
        if len(ts):
            lat.extend((now - np.asarray(ts)).tolist())
            if has_counter:
                counters.extend(np.asarray(data)[:, -1].tolist())
    gaps = int(np.sum(np.diff(counters) - 1)) if len(counters) > 1 else (None if not has_counter else 0)
    Path(out_path).write_text(json.dumps({"latency": lat, "counter_gaps": gaps}))


def baseline(source_id: str, out_name: str, duration: float, stats_path: str) -> None:
    """The hand-written reference: pylsl polling + scipy sosfilt + numpy ring + torch model."""
    import numpy as np
    import psutil
    import pylsl
    import torch
    from scipy import signal

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv1d(64, 16, 7, stride=4), torch.nn.ReLU(), torch.nn.Conv1d(16, 8, 7, stride=4), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten(), torch.nn.Linear(8, 2)).eval()
    sos = signal.butter(4, [1, 40], btype="bandpass", fs=SFREQ, output="sos")
    inlet = pylsl.StreamInlet(pylsl.resolve_byprop("source_id", source_id, timeout=30)[0], max_buflen=10)
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(out_name, "Predictions", 2, 10.0, "float32", out_name))
    zi = None
    ring = np.zeros((1000, N_CH), np.float32)
    filled = since = 0
    proc = psutil.Process()
    cpu0, t0 = proc.cpu_times(), time.perf_counter()
    end = t0 + duration
    while time.perf_counter() < end:
        data, ts = inlet.pull_chunk(timeout=0.0, max_samples=1024, as_numpy=True)
        if not len(ts):
            time.sleep(0.001)
            continue
        if zi is None:
            zi = signal.sosfilt_zi(sos)[:, :, None] * data[0][None, None, :]
        y, zi = signal.sosfilt(sos, data, axis=0, zi=zi)
        n = len(ts)
        ring = np.concatenate([ring[n:], y.astype(np.float32)])[-1000:]
        filled, since = min(1000, filled + n), since + n
        if filled == 1000 and since >= 100:
            since = 0
            with torch.inference_mode():
                out = model(torch.from_numpy(np.ascontiguousarray(ring.T))[None]).numpy()
            outlet.push_sample(out[0], ts[-1])
    cpu1, wall = proc.cpu_times(), time.perf_counter() - t0
    cpu = 100 * ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / wall
    Path(stats_path).write_text(json.dumps({"cpu_percent": cpu}))


def measure(system: str, duration: float, tmp: Path) -> dict:
    import numpy as np

    sid = f"bench-{uuid.uuid4().hex[:8]}"
    out_name = "reference-model" if system == "edgestream" else f"baseline-{sid}"
    lat_path, stats_path = tmp / f"{system}-lat.json", tmp / f"{system}-stats.json"
    env = dict(os.environ)
    env.setdefault("LSLAPICFG", str(ROOT / "assets" / "lsl_loopback.cfg"))
    me = [sys.executable, str(Path(__file__).resolve())]
    push = subprocess.Popen(me + ["--role", "pusher", "--source-id", sid, "--duration", str(duration + 12)], env=env)
    try:
        time.sleep(1.0)
        if system == "edgestream":
            runner = subprocess.Popen([sys.executable, "-m", "edgestream", "run", "reference", "--duration", str(duration + 4),
                                       "--set", f"eeg.source_id={sid}", "--summary-json", str(stats_path)], env=env,
                                      stdout=subprocess.DEVNULL)
        else:
            runner = subprocess.Popen(me + ["--role", "baseline", "--source-id", sid, "--out-name", out_name,
                                            "--duration", str(duration + 4), "--stats", str(stats_path)], env=env)
        time.sleep(2.0)  # warm-up: first window needs 1 s of data
        recv = subprocess.Popen(me + ["--role", "receiver", "--out-name", out_name, "--duration", str(duration),
                                      "--stats", str(lat_path)], env=env)
        recv.wait(timeout=duration + 90)
        runner.wait(timeout=duration + 90)
    finally:
        push.terminate()
        push.wait(timeout=10)
    received = json.loads(lat_path.read_text())
    lat = np.asarray(received["latency"])
    stats = json.loads(stats_path.read_text())
    drops = None  # the hand-written loop has no loss accounting: not reported
    if system == "edgestream":
        drops = sum(s["drops"]["total"] for s in stats["sources"].values()) + sum(
            n["queue_drops"] for n in stats["nodes"].values())
        drops += received["counter_gaps"] or 0  # outputs lost between the outlet and the receiver
    from edgestream.core.latency import percentiles_ms

    p = percentiles_ms(lat)
    return {"p50_ms": p["p50_ms"], "p99_ms": p["p99_ms"], "max_ms": p["max_ms"], "outputs": int(lat.size),
            "cpu_percent": stats["cpu_percent"], "drops": drops}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 s per system instead of 30 s")
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--role", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--source-id", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out-name", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--stats", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "pusher":
        return pusher(args.source_id, args.duration)
    if args.role == "receiver":
        return receiver(args.out_name, args.duration, args.stats)
    if args.role == "baseline":
        return baseline(args.source_id, args.out_name, args.duration, args.stats)
    import tempfile

    duration = args.duration or (10.0 if args.quick else 30.0)
    with tempfile.TemporaryDirectory() as d:
        results = {system: measure(system, duration, Path(d)) for system in ("baseline", "edgestream")}
    for system, r in results.items():
        for metric, unit in (("p50_ms", "ms"), ("p99_ms", "ms"), ("max_ms", "ms"), ("cpu_percent", "%"), ("drops", "samples"),
                             ("outputs", "count")):
            if r[metric] is None:
                continue
            print(json.dumps({"bench": "latency_e2e", "system": system, "metric": metric, "value": round(r[metric], 3),
                              "unit": unit, "duration_s": duration}))
    for metric in ("p50_ms", "p99_ms", "cpu_percent"):
        ratio = results["edgestream"][metric] / results["baseline"][metric]
        print(json.dumps({"bench": "latency_e2e", "metric": f"{metric}_ratio_vs_baseline", "value": round(ratio, 3),
                          "unit": "ratio", "baseline": "hand-written pylsl+scipy loop, same run"}))


if __name__ == "__main__":
    main()
