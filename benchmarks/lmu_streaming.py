"""LMUFormer streaming cost: constant work per new sample vs recomputing a window, EEG throughput, spikes.

Three parts, one torch thread throughout (``torch.set_num_threads(1)``), eager torch unless noted:

a. ``per_sample`` — cost per new frame of the same model run three ways: ``step`` (one frame per
   call, state carried), ``chunk10`` / ``chunk32`` (10 or 32 frames per call, state carried), and
   ``window<W>`` (recompute the whole-sequence model over the last W = 128, 256, 1000 frames for
   every new frame, the way a window classifier would). Headline: ``speedup_vs_window`` =
   window cost / streaming cost per frame, measured in the same run. ``ort_step`` / ``ort_chunk32``:
   the streaming forms through ONNX Runtime (the cpu profile's backend) against the same torch window.
b. ``throughput`` — the ``streaming_model`` stage on a 64-channel 1000 Hz simulated EEG stream fed
   in 10-sample chunks (the simulator's push size) and 32-sample chunks (the cpu profile's read
   size): samples per CPU second and × real time, per model, backend (torch, ONNX Runtime) and
   frame decimation (1 = one frame per sample, 10 = 100 Hz frames).

Costs are this thread's CPU time (``time.thread_time``), so a loaded shared machine does not
inflate them with waiting; wall-clock figures are printed alongside.
c. ``spikes`` — per-layer spike rates and synaptic operations (SOPs) of the spiking EEG variant,
   briefly trained with the ``lmuformer`` recipe on real motor-imagery runs (PhysioNet eegmmidb
   S001 R04+R08, left vs right, 8–30 Hz, batch 8; 4 epochs quick, 20 full) and run on the held-out run 12.
   A short training run: its accuracy is printed with the rates, which will differ after full training.

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


def median_call_us(fn, calls: int, warmup: int = 2) -> tuple[float, float]:
    """Median (wall, CPU) microseconds per call. CPU time is this thread's own: on a shared, loaded
    machine it is the better estimate of the cost on one free core (wall time includes waiting)."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(calls):
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        fn()
        cpu.append(time.thread_time_ns() - c0)
        wall.append(time.perf_counter_ns() - w0)
    return float(np.median(wall)) / 1e3, float(np.median(cpu)) / 1e3


def part_a(args) -> None:
    import torch

    from edgestream.models import create_model

    names = ["lmuformer_eeg_s", "spiking_lmuformer_eeg_s"] + ([] if args.quick else ["lmuformer_scv2", "spiking_lmuformer_scv2"])
    for name in names:
        torch.manual_seed(0)
        model = create_model(name).eval()
        rng = np.random.default_rng(0)
        x = torch.from_numpy(rng.standard_normal((1, 1100, model.in_channels)).astype(np.float32))
        costs: dict[str, tuple[float, float]] = {}  # form -> (wall, cpu) us per new frame
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

                wall, cpu = median_call_us(chunk, max(5, args.calls // n))
                costs[f"chunk{n}"] = (wall / n, cpu / n)
            windows = (128, 256) if args.quick and "scv2" in name else (128, 256, 1000)
            for w in windows:
                costs[f"window{w}"] = median_call_us(lambda w=w: model.parallel(x[:, :w]), max(3, args.calls // 20), warmup=1)
        # the same streaming forms through ONNX Runtime (the cpu profile's backend), state carried
        from edgestream.runners.backend import OrtStreamingBackend

        xs = x.numpy()
        for n in (1, 32):
            ort = OrtStreamingBackend(model, name, chunk=n)
            ostate, opos = [ort.init_state(1)], [0]

            def ort_call(n=n, ort=ort, ostate=ostate, opos=opos):
                i = opos[0] % 900
                _, ostate[0] = ort(xs[:, i : i + n], ostate[0])
                opos[0] += n

            wall, cpu = median_call_us(ort_call, max(5, args.calls // n))
            costs[f"ort_{'step' if n == 1 else f'chunk{n}'}"] = (wall / n, cpu / n)
        for form, (wall, cpu) in costs.items():
            backend = "onnxruntime" if form.startswith("ort_") else "torch"
            emit(metric="per_sample_cost", form=form, value=round(cpu, 2), unit="us_cpu", wall_us=round(wall, 2),
                 model=name, threads=1, backend=backend)
        for form in ("step", "chunk10", "chunk32", "ort_step", "ort_chunk32"):
            for w in windows:
                emit(metric="speedup_vs_window", form=form, window=w, value=round(costs[f"window{w}"][1] / costs[form][1], 2),
                     unit="x", basis="cpu time", wall_ratio=round(costs[f"window{w}"][0] / costs[form][0], 2), model=name,
                     threads=1, window_backend="torch", backend="onnxruntime" if form.startswith("ort_") else "torch")


def part_b(args) -> None:
    import torch

    from edgestream.core import BuildContext, Chunk, StreamInfo
    from edgestream.core.device import load_profile
    from edgestream.core.stage import STAGES
    from edgestream.sources.simulate_eeg import EEGGenerator

    fs = 1000.0
    seconds = 4.0 if args.quick else 20.0
    data, _ = EEGGenerator(64, fs, seed=0).generate(int(seconds * fs))
    info = StreamInfo("sim", "EEG", "sim", fs, [f"E{i}" for i in range(64)], units=("uV",) * 64)
    pushes = (10, 32)  # the simulator's push size, and the cpu profile's read size (chunk_size)
    profile = load_profile("cpu")  # one thread, ONNX Runtime fp32
    for name in ("lmuformer_eeg_s", "spiking_lmuformer_eeg_s"):
        for backend in ("torch", "onnxruntime"):
            for decimate in (1, 10):
                torch.set_num_threads(1)
                stage = STAGES.create("streaming_model", model=name, backend=backend, decimate=decimate, emit="chunk")
                stage.build(info, BuildContext(pipeline="bench", node="model", device=profile))
                for push in pushes:
                    chunks = [Chunk(data[i : i + push], np.arange(i, i + push) / fs, info) for i in range(0, len(data), push)]
                    state = stage.init_state()
                    for c in chunks[:20]:  # warm up
                        _, state = stage.step(c, state)
                    state = stage.init_state()
                    w0, c0 = time.perf_counter(), time.thread_time()
                    for c in chunks:
                        _, state = stage.step(c, state)
                    cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
                    common = {"model": name, "backend": backend, "decimate": decimate, "frame_rate_hz": fs / decimate,
                              "chunk_samples": push, "channels": 64, "threads": 1}
                    emit(metric="throughput", value=round(len(data) / cpu, 1), unit="samples/cpu_s",
                         wall_samples_per_s=round(len(data) / wall, 1), **common)
                    emit(metric="realtime_factor_1000hz", value=round(len(data) / cpu / fs, 2), unit="x", basis="cpu time",
                         wall_factor=round(len(data) / wall / fs, 2), target=20, **common)


def recalibrate_batchnorm(model, trials) -> None:
    """Replace every BatchNorm's running statistics by their average over ``trials`` ``(N, T, C)``."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    with torch.no_grad():
        for i in range(0, len(trials), 8):
            model.classify(trials[i : i + 8])
    for m in norms:
        m.momentum = 0.1
    model.eval()


def part_c(args) -> None:
    import torch

    from edgestream.core.paths import data_dir
    from edgestream.models.spiking_lmuformer import spike_report
    from edgestream.train.calibration import calibrate, preprocessing_specs
    from edgestream.train.recipes import get_recipe
    from edgestream.train.epochs import preprocess
    from edgestream.train.recordings import load_recording

    subject = data_dir(args.data) / "eegmmidb" / "S001"
    epochs = 4 if args.quick else 20
    t0 = time.perf_counter()
    # a short training run with the family's recipe (left vs right imagery, runs 4 and 8), so the
    # rates are those of weights that have seen data, not of the initialisation
    # (batch 8: several BatchNorm running-statistics updates per epoch, which eval mode relies on)
    result = calibrate("lmuformer", subject, "left,right", None, epochs=epochs, batch_size=8, include="*R0[48].edf",
                       progress=False)
    train_s = time.perf_counter() - t0
    val = result.metrics["validation"]
    model = result.model
    if args.quick:
        # A few epochs leave BatchNorm's running statistics near their initial values, which silences
        # every spiking layer in eval mode; re-estimate them (cumulative average) on the training trials.
        recalibrate_batchnorm(model, torch.from_numpy(np.ascontiguousarray(result.epochs.X[result.train_idx].transpose(0, 2, 1))))
    # held-out run 12, filtered like the training trials, first seconds as one continuous sequence
    recipe = get_recipe("lmuformer")
    rec = preprocess(load_recording(subject / "S001R12.edf"), preprocessing_specs(recipe.l_freq, recipe.h_freq))
    seconds = 10 if args.quick else 60
    x = np.ascontiguousarray(rec.data[: int(seconds * rec.sfreq)], dtype=np.float32)
    rep = spike_report(model.eval(), torch.from_numpy(x)[None])
    common = {"model": result.model_name, "weights": f"trained {result.metrics['epochs_run']} epoch(s) on S001 R04+R08"
              + (", BatchNorm statistics re-estimated on the training trials" if args.quick else ""),
              "val_accuracy": round(val["accuracy"], 3), "val_chance": round(val["chance"], 3),
              "data": f"eegmmidb S001R12 first {seconds} s, 8-30 Hz", "frames": int(x.shape[0])}
    emit(metric="spike_model_train_seconds", value=round(train_s, 1), unit="s", **common)
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
    # exported ONNX graphs go to a temporary cache unless the user points EDGESTREAM_CACHE elsewhere
    os.environ.setdefault("EDGESTREAM_CACHE", tempfile.mkdtemp(prefix="lmu-bench-"))
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    emit(metric="config", value=1, unit="flag", quick=args.quick, parts=sorted(parts), cpu_count=os.cpu_count(),
         load_average=list(os.getloadavg()))
    for key, fn in (("a", part_a), ("b", part_b), ("c", part_c)):
        if key in parts:
            fn(args)


if __name__ == "__main__":
    main()
