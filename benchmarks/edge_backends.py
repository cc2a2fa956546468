"""Torch eager vs ONNX Runtime (fp32) vs ONNX Runtime int8 for every registered streaming model.

Per model and backend, through the runners' own backends (numpy in, numpy out, state carried):

* ``step_latency_p50/p99`` — one time step per call (live decoding), µs;
* ``chunk_throughput`` — time steps per second when fed ``--chunk``-step calls;
* ratios against torch eager measured in the same run, and int8's output change vs torch.

Backends are measured round-robin (``--rounds`` rounds, medians of the per-round medians), so a
busy machine slows all of them alike. The last lines name the fastest backend per model for
the ``cpu`` profile (accuracy-preserving: torch or ONNX Runtime fp32) and the ``rpi5`` profile
(int8 when it is at least 10 % faster than the best float variant, since it changes the
outputs) — the choices written into ``devices/*.yaml`` ``model_overrides``.
Window models are included with ``--window`` (per-window latency; default input shapes).

    python benchmarks/edge_backends.py [--quick] [--models gru_stream_s,...] [--window]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time

import numpy as np

VARIANTS = (("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8"))


def emit(**fields) -> None:
    print(json.dumps({"bench": "edge_backends"} | fields), flush=True)


def build(model, name: str, backend: str, precision: str, chunk: int, streaming: bool, example):
    from edgestream.core.device import load_profile
    from edgestream.runners.backend import make_backend, make_streaming_backend

    profile = dataclasses.replace(load_profile("cpu"), backend=backend, precision=precision, threads=1,
                                  onnx_chunk=chunk, warmup_runs=0, model_overrides={})
    if streaming:
        return make_streaming_backend(model, profile, model_name=name, progress=lambda m: None)
    return make_backend(model, example, profile, model_name=name, progress=lambda m: None)


def time_calls(fn, n: int) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn(i)
        out[i] = time.perf_counter_ns() - t0
    return out / 1e3  # µs


def bench_streaming(name: str, args) -> None:
    import torch

    from edgestream.models import create_model
    from edgestream.models.inputs import example_input
    from edgestream.runners.export_verify import output_error

    torch.manual_seed(0)
    model = create_model(name).float().eval()
    n_params = sum(p.numel() for p in model.parameters())
    rng = np.random.default_rng(0)
    xs = rng.standard_normal(example_input(model, 1, args.steps).shape).astype(np.float32)
    backends = {v: build(model, name, *v, args.chunk, True, None) for v in VARIANTS}
    step_lat = {v: [] for v in VARIANTS}
    thru = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for v, b in backends.items():
            state = [b.init_state(1)]

            def one(i, b=b, state=state):
                _, state[0] = b(xs[:, i % args.steps : i % args.steps + 1], state[0])

            time_calls(one, args.warmup)
            step_lat[v].append(time_calls(one, args.calls))
            n_chunks = args.steps // args.chunk
            state = [b.init_state(1)]

            def chunked(i, b=b, state=state):
                j = (i % n_chunks) * args.chunk
                _, state[0] = b(xs[:, j : j + args.chunk], state[0])

            chunk_us = time_calls(chunked, max(n_chunks, 8))
            thru[v].append(args.chunk / (np.median(chunk_us) / 1e6))
    # output change of each variant vs torch over the whole sequence (state carried, chunked calls)
    ref, _ = backends[("torch", "fp32")](xs, backends[("torch", "fp32")].init_state(1))
    results = {}
    for v in VARIANTS:
        lat = np.concatenate(step_lat[v])
        p50 = float(np.median([np.median(r) for r in step_lat[v]]))
        tp = float(np.median(thru[v]))
        results[v] = (p50, tp)
        common = {"model": name, "backend": v[0], "precision": v[1], "params": n_params}
        emit(metric="step_latency_p50", value=round(p50, 2), unit="us", **common)
        emit(metric="step_latency_p99", value=round(float(np.percentile(lat, 99)), 2), unit="us", **common)
        emit(metric="chunk_throughput", value=round(tp, 1), unit="steps/s", chunk=args.chunk, **common)
        emit(metric="step_throughput", value=round(1e6 / p50, 1), unit="steps/s", chunk=1, **common)  # one step per call
        if v != ("torch", "fp32"):
            t_p50, t_tp = results[("torch", "fp32")]
            emit(metric="step_latency_p50_ratio_vs_torch", value=round(p50 / t_p50, 3), unit="ratio", **common)
            emit(metric="chunk_throughput_ratio_vs_torch", value=round(tp / t_tp, 3), unit="ratio", **common)
            y, _ = backends[v](xs, backends[v].init_state(1))
            err = output_error(y, ref)
            results[v] += (err["max_rel"],)
            emit(metric="output_max_rel_error_vs_torch", value=float(f"{err['max_rel']:.3g}"), unit="fraction", **common)
            if "argmax_agreement" in err:
                emit(metric="argmax_agreement_vs_torch", value=round(err["argmax_agreement"], 4), unit="fraction", **common)
    choose(name, results, "step")


def bench_window(name: str, args) -> None:
    import torch

    from edgestream.models import create_model
    from edgestream.models.inputs import example_input
    from edgestream.runners.export_verify import output_error

    torch.manual_seed(0)
    model = create_model(name).float().eval()
    example = example_input(model, 1)
    x = np.random.default_rng(0).standard_normal(example.shape).astype(np.float32)
    backends = {v: build(model, name, *v, args.chunk, False, example) for v in VARIANTS}
    lat = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for v, b in backends.items():
            time_calls(lambda i, b=b: b(x), args.warmup)
            lat[v].append(time_calls(lambda i, b=b: b(x), max(args.calls // 10, 20)))
    results = {}
    ref = backends[VARIANTS[0]](x)
    for v in VARIANTS:
        p50 = float(np.median([np.median(r) for r in lat[v]]))
        results[v] = (p50, 1e6 / p50)
        common = {"model": name, "backend": v[0], "precision": v[1], "input_shape": list(example.shape)}
        emit(metric="window_latency_p50", value=round(p50, 2), unit="us", **common)
        if v != VARIANTS[0]:
            err = output_error(backends[v](x), ref)
            results[v] += (err["max_rel"],)
            emit(metric="output_max_rel_error_vs_torch", value=float(f"{err['max_rel']:.3g}"), unit="fraction", **common)
    choose(name, results, "window")


INT8_MARGIN = 0.10  # int8 changes the outputs: it must beat the best float variant by 10 % to be chosen


def choose(name: str, results: dict, what: str) -> None:
    """Fastest by p50 latency: cpu among the float variants; rpi5 may take int8 if it wins by INT8_MARGIN
    and its output change vs torch is within the export's int8 bound (INT8_MAX_REL)."""
    from edgestream.runners.export import INT8_MAX_REL

    int8 = results[VARIANTS[2]]
    for profile, allowed in (("cpu", VARIANTS[:2]), ("rpi5", VARIANTS)):
        best = min(VARIANTS[:2], key=lambda v: results[v][0])
        if VARIANTS[2] in allowed and int8[0] < (1 - INT8_MARGIN) * results[best][0] and int8[-1] <= INT8_MAX_REL:
            best = VARIANTS[2]
        emit(metric=f"fastest_{what}_latency_p50", value=round(results[best][0], 2), unit="us", model=name,
             profile=profile, choice={"backend": best[0], "precision": best[1]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    ap.add_argument("--models", default=None, help="comma-separated model names (default: every streaming model)")
    ap.add_argument("--window", action="store_true", help="also window models (per-window latency)")
    ap.add_argument("--chunk", type=int, default=16, help="time steps per call for the throughput figure")
    args = ap.parse_args()
    args.steps, args.calls, args.warmup, args.rounds = (256, 300, 30, 3) if args.quick else (1024, 2000, 100, 5)
    os.environ.setdefault("EDGESTREAM_CACHE", tempfile.mkdtemp(prefix="edge-backends-"))  # fresh exports, not stale caches
    import onnxruntime
    import torch

    from edgestream.models import list_models

    torch.set_num_threads(1)
    from edgestream.core.cpu import cpu_features, int8_kernel

    emit(metric="machine", value=os.cpu_count(), unit="cpus", platform=platform.platform(), processor=platform.processor(),
         int8_kernel=int8_kernel(), cpu_flags=cpu_features()["flags"],
         torch=torch.__version__, onnxruntime=onnxruntime.__version__, quick=args.quick, load_avg=os.getloadavg()[0])
    names = args.models.split(",") if args.models else list_models(kind="streaming")
    for name in names:
        if name in list_models(kind="streaming"):
            bench_streaming(name, args)
        else:
            bench_window(name, args)
    if args.window and not args.models:
        for name in list_models(kind="window"):
            bench_window(name, args)


if __name__ == "__main__":
    main()
