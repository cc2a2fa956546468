"""LMUFormer streaming cost: constant work per new sample vs recomputing a window, EEG throughput, spikes.

Three parts, one torch thread throughout (``torch.set_num_threads(1)``), eager torch unless noted:

a. ``per_sample`` — cost per new frame of the same model run three ways: ``step`` (one frame per
   call, state carried), ``chunk10`` / ``chunk32`` (10 or 32 frames per call, state carried), and
   ``window<W>`` (recompute the whole-sequence model over the last W = 128, 256, 1000 frames for
   every new frame, the way a window classifier would). Headline: ``speedup_vs_window`` =
   window cost / streaming cost per frame, measured in the same run.
b. ``throughput`` — the ``streaming_model`` stage on a 64-channel 1000 Hz simulated EEG stream fed
   in 10-sample chunks (the simulator's push size): samples/s and × real time, per model, backend
   (torch, ONNX Runtime) and frame decimation (1 = one frame per sample, 10 = 100 Hz frames).
c. ``spikes`` — per-layer spike rates and synaptic operations (SOPs) of the spiking EEG variant on
   a real recording (PhysioNet eegmmidb S001R04, 64 ch, 160 Hz, z-scored per channel), with
   untrained (seed-0) weights: rates of a trained model will differ.

Usage: ``python benchmarks/lmu_streaming.py [--quick] [--parts a,b,c] [--data DIR]``. ``--quick``
times fewer calls and skips the window of 1000 frames for the Speech Commands configurations.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

BENCH = "lmu_streaming"


def emit(**fields) -> None:
    print(json.dumps({"bench": BENCH} | fields), flush=True)


def median_call_us(fn, calls: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t0)
    return float(np.median(out)) / 1e3


def part_a(args) -> None:
    import torch

    from edgestream.models import create_model

    names = ["lmuformer_eeg_s", "spiking_lmuformer_eeg_s"] + ([] if args.quick else ["lmuformer_scv2", "spiking_lmuformer_scv2"])
    for name in names:
        torch.manual_seed(0)
        model = create_model(name).eval()
        rng = np.random.default_rng(0)
        x = torch.from_numpy(rng.standard_normal((1, 1100, model.in_channels)).astype(np.float32))
        costs: dict[str, float] = {}
        with torch.inference_mode():
            state = [model.init_state(1)]
            pos = [0]

            def step():
                i = pos[0] % 1000
                _, state[0] = model.step(x[:, i], state[0])
                pos[0] += 1

            costs["step"] = median_call_us(step, args.calls)
            for n in (10, 32):
                def chunk(n=n):
                    i = pos[0] % 900
                    _, state[0] = model(x[:, i : i + n], state[0])
                    pos[0] += n

                costs[f"chunk{n}"] = median_call_us(chunk, max(5, args.calls // n)) / n
            windows = (128, 256) if args.quick and "scv2" in name else (128, 256, 1000)
            for w in windows:
                costs[f"window{w}"] = median_call_us(lambda w=w: model.parallel(x[:, :w]), max(3, args.calls // 20), warmup=1)
        common = {"model": name, "threads": 1, "backend": "torch"}
        for form, us in costs.items():
            emit(metric="per_sample_cost", form=form, value=round(us, 2), unit="us", **common)
        for form in ("step", "chunk10", "chunk32"):
            for w in windows:
                emit(metric="speedup_vs_window", form=form, window=w, value=round(costs[f"window{w}"] / costs[form], 2),
                     unit="x", **common)


def part_b(args) -> None:
    import torch

    from edgestream.core import BuildContext, Chunk, StreamInfo
    from edgestream.core.device import load_profile
    from edgestream.core.stage import STAGES
    from edgestream.sources.simulate_eeg import EEGGenerator

    fs, push = 1000.0, 10
    seconds = 4.0 if args.quick else 20.0
    data, _ = EEGGenerator(64, fs, seed=0).generate(int(seconds * fs))
    info = StreamInfo("sim", "EEG", "sim", fs, [f"E{i}" for i in range(64)], units=("uV",) * 64)
    chunks = [Chunk(data[i : i + push], np.arange(i, i + push) / fs, info) for i in range(0, len(data), push)]
    cache = tempfile.mkdtemp(prefix="lmu-bench-")
    os.environ.setdefault("EDGESTREAM_CACHE", cache)
    profile = load_profile("cpu")  # one thread, ONNX Runtime fp32
    for name in ("lmuformer_eeg_s", "spiking_lmuformer_eeg_s"):
        for backend in ("torch", "onnxruntime"):
            for decimate in (1, 10):
                torch.set_num_threads(1)
                stage = STAGES.create("streaming_model", model=name, backend=backend, decimate=decimate, emit="chunk")
                stage.build(info, BuildContext(pipeline="bench", node="model", device=profile))
                state = stage.init_state()
                for c in chunks[:20]:  # warm up
                    _, state = stage.step(c, state)
                state = stage.init_state()
                t0 = time.perf_counter()
                for c in chunks:
                    _, state = stage.step(c, state)
                wall = time.perf_counter() - t0
                rate = len(data) / wall
                common = {"model": name, "backend": backend, "decimate": decimate, "frame_rate_hz": fs / decimate,
                          "chunk_samples": push, "channels": 64, "threads": 1}
                emit(metric="throughput", value=round(rate, 1), unit="samples/s", **common)
                emit(metric="realtime_factor_1000hz", value=round(rate / fs, 2), unit="x", target=20, **common)


def part_c(args) -> None:
    import torch

    from edgestream.core.paths import data_dir
    from edgestream.models import create_model
    from edgestream.models.spiking_lmuformer import spike_report
    from edgestream.train.recordings import load_recording

    path = data_dir(args.data) / "eegmmidb" / "S001" / "S001R04.edf"
    rec = load_recording(path)
    seconds = 10 if args.quick else 60
    x = np.asarray(rec.data[: int(seconds * rec.sfreq)], dtype=np.float64)
    x = ((x - x.mean(0)) / (x.std(0) + 1e-12)).astype(np.float32)
    torch.manual_seed(0)
    model = create_model("spiking_lmuformer_eeg_s", in_channels=x.shape[1]).eval()
    rep = spike_report(model, torch.from_numpy(x)[None])
    common = {"model": "spiking_lmuformer_eeg_s", "weights": "untrained (seed 0)", "data": f"eegmmidb S001R04 first {seconds} s",
              "frames": int(x.shape[0])}
    for row in rep["layers"]:
        emit(metric="spike_rate", layer=row["layer"], value=round(row["spike_rate"], 4), unit="spikes/neuron/frame",
             neurons=row["neurons"], fanout=row["fanout"], **common)
        emit(metric="sops_per_frame", layer=row["layer"], value=round(row["sops_per_step"], 1), unit="SOP", **common)
    emit(metric="sops_per_frame_total", value=round(rep["sops_per_frame"], 1), unit="SOP", **common)
    emit(metric="dense_ops_per_frame_same_synapses", value=rep["dense_ops_per_frame"], unit="MAC", **common)
    emit(metric="sops_fraction_of_dense", value=round(rep["sops_fraction_of_dense"], 4), unit="fraction", **common)
    emit(metric="mean_spike_rate", value=round(rep["mean_rate"], 4), unit="spikes/neuron/frame", **common)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, shorter signals, no SCv2 window of 1000")
    parser.add_argument("--parts", default="a,b,c", help="comma list of parts to run: a,b,c")
    parser.add_argument("--data", default=None, help="data directory (default: $EDGESTREAM_DATA or ../shared/data)")
    args = parser.parse_args()
    args.calls = 60 if args.quick else 400
    import torch

    torch.set_num_threads(1)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    emit(metric="config", value=1, unit="flag", quick=args.quick, parts=sorted(parts), cpu_count=os.cpu_count(),
         load_average=list(os.getloadavg()))
    for key, fn in (("a", part_a), ("b", part_b), ("c", part_c)):
        if key in parts:
            fn(args)


if __name__ == "__main__":
    main()
