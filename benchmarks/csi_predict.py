"""CSI prediction: NMSE of the trained CSI-4CAST edge variants, a GRU and repeat-last over a grid
of generated scenarios, plus parameters, FLOPs and CPU latency per prediction (32 antennas), the
paper's TDD/FDD configurations included. Prints one JSON object per line.

Protocol
--------
* Data: 3GPP CDL channels from ``sionna-no-rt`` (``edgestream.csi``), carrier 2.4 GHz, 30 kHz SCS,
  32-antenna 4×4 dual-polarised panel, 300 subcarriers, a report every 2.5 ms; 16 history reports
  → 4 predicted (the edge variants read the newest 8 — ``csi4cast_edge_xs``: 4 — of the 16). Training set: CDL-A/C/D × delay spread × speed {1, 10, 30} m/s, AWGN on the
  history at an SNR drawn per sample from 0–25 dB (the paper's protocol); 10 % of it held out
  for model selection. Test set: a different seed, CDL-A…E (B and E unseen in training) ×
  delay spread × speed, at fixed SNRs. Channels are cached (``cache_dir("csi")``).
* Training: NMSE loss (mean over antenna rows and steps of per-report ratios), Adam
  (lr 1e-3, weight decay 1e-4), each trained model gets the same CPU-time budget (``--budget``,
  one thread); samples are split into groups of 8 antennas for training (each model treats
  antenna rows independently; normalisation statistics then cover 8 rows instead of 32).
* NMSE in dB = 10·log10(mean over (sample, antenna, step) of ‖h−ĥ‖²/‖h‖²); SE = mean log2(1 + ρ|hᴴw|²)
  with the MRT beamformer w = ĥ/‖ĥ‖ from the prediction, ρ = 10 dB (``edgestream.csi.metrics``).
* Latency: one prediction of 32 antennas, batch 1, on one CPU thread (torch eager, TorchScript —
  the ``cpu`` profile's choice for CSI-4CAST — and ONNX Runtime unless ``--quick``), of the *trained* models, with subnormal floats flushed to zero (without
  it a trained edge variant ran ~15× slower: 108 vs 7 ms), wall-clock p50/p99 and the thread's CPU
  time, with the machine's load average next to it (this machine is shared; the lead re-measures
  on a quiet one).

Usage: ``python benchmarks/csi_predict.py [--quick] [--budget SECONDS] [--save-checkpoint PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

BENCH = "csi_predict"
REPORT_PERIOD_MS = 2.5
TRAINED = ("csi4cast_edge", "csi4cast_edge_xs", "csi_gru")


def emit(metric: str, value: Any, unit: str, **context: Any) -> None:
    row = {"bench": BENCH, "metric": metric, "value": value, "unit": unit} | context
    print(json.dumps(row), flush=True)


def datasets(quick: bool, seed: int) -> tuple[Any, dict[float, Any], dict[str, Any]]:
    from edgestream.csi.dataset import CSIDatasetSpec, build_csi_dataset, grid
    from edgestream.csi.noise import NoiseConfig

    if quick:
        train_grid = grid("ACD", (100e-9,), (1.0, 10.0, 30.0))
        test_grid = grid("ACD", (100e-9,), (1.0, 10.0, 30.0))
        n_train, n_test, snrs = 24, 6, (10.0, 25.0)
    else:
        train_grid = grid("ACD", (30e-9, 100e-9, 300e-9), (1.0, 10.0, 30.0))
        test_grid = grid("ABCDE", (30e-9, 100e-9, 300e-9), (1.0, 10.0, 30.0))
        n_train, n_test, snrs = 32, 8, (10.0, 25.0)
    train_spec = CSIDatasetSpec(scenarios=train_grid, samples_per_scenario=n_train, seed=seed)
    test_spec = CSIDatasetSpec(scenarios=test_grid, samples_per_scenario=n_test, seed=seed + 1000)
    t0 = time.perf_counter()
    train = build_csi_dataset(train_spec, snr_range=(0.0, 25.0), noise_seed=seed)
    tests = {snr: build_csi_dataset(test_spec, NoiseConfig(snr_db=snr), noise_seed=seed + 1) for snr in snrs}
    info = {"train_samples": len(train), "train_scenarios": len(train_grid), "test_samples": len(tests[snrs[0]]),
            "test_scenarios": len(test_grid), "seconds": time.perf_counter() - t0}
    return train, tests, info


def train_model(name: str, train: Any, budget: float, seed: int) -> tuple[Any, dict[str, Any]]:
    import torch

    from edgestream.models import create_model
    from edgestream.models.csi_predictor import data_stats
    from edgestream.train import TrainConfig, fit

    x, y = train.arrays()  # (N, 32, T, 600)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_val = max(1, len(x) // 10)
    val, tr = order[:n_val], order[n_val:]
    group = 8  # antennas per training sample

    def groups(a: np.ndarray) -> np.ndarray:
        return a.reshape(a.shape[0] * (a.shape[1] // group), group, *a.shape[2:])

    torch.manual_seed(seed)
    model = create_model(name)
    x = x[:, :, -model.hist_len :]  # edge variants read only the newest reports of the 16
    model.set_data_stats(*data_stats(x[tr]))
    cfg = TrainConfig(loss="nmse_vector", lr=1e-3, weight_decay=1e-4, batch_size=8, epochs=10_000, patience=None,
                      schedule="plateau", step_size=6, gamma=0.1, max_seconds=budget, num_threads=1, seed=seed,
                      progress=False)
    result = fit(model, (groups(x[tr]), groups(y[tr])), (groups(x[val]), groups(y[val])), cfg)
    return model.eval(), {"epochs": len(result.history), "best_epoch": result.best_epoch,
                          "best_val_nmse_db": float(10 * np.log10(result.best_score)), "seconds": result.seconds}


def predict(model: Any, data: Any, batch: int = 8) -> np.ndarray:
    import torch

    from edgestream.csi.layout import deinterleave

    x, _ = data.arrays()
    x = np.ascontiguousarray(x[:, :, -model.hist_len :])
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            out.append(model(torch.from_numpy(x[i : i + batch])).numpy())
    return deinterleave(np.concatenate(out))  # (N, A, pred_len, K) complex


def evaluate(models: dict[str, Any], tests: dict[float, Any], quick: bool) -> None:
    from edgestream.csi.metrics import nmse_ratios, spectral_efficiency, spectral_efficiency_bound, to_db

    for snr, data in tests.items():
        preds = {name: predict(model, data) for name, model in models.items()}
        ratios = {name: nmse_ratios(data.future, p) for name, p in preds.items()}  # (N, A, steps)
        for i, scenario in enumerate(data.spec.scenarios):
            sel = data.scenario_index == i
            for name in models:
                r = ratios[name][sel]
                emit("nmse_db", round(to_db(r.mean()), 3), "dB", model=name, scenario=scenario.name, cdl=scenario.model,
                     delay_spread_ns=round(scenario.delay_spread * 1e9), speed_mps=scenario.speed, snr_db=snr,
                     per_step_db=[round(float(v), 2) for v in to_db(r.mean(axis=(0, 1)))], samples=int(sel.sum()), quick=quick)
        speeds = np.array([data.spec.scenarios[i].speed for i in data.scenario_index])
        for name in models:
            for label, mask in (("all", np.ones(len(speeds), bool)), ("speed>=10", speeds >= 10), ("speed<10", speeds < 10)):
                nm = to_db(ratios[name][mask].mean())
                base = to_db(ratios["csi_repeat_last"][mask].mean())
                emit("nmse_db_mean", round(nm, 3), "dB", model=name, subset=label, snr_db=snr, quick=quick)
                if name != "csi_repeat_last":
                    emit("nmse_gain_vs_repeat_last", round(base - nm, 3), "dB", model=name, subset=label, snr_db=snr,
                         quick=quick)
            se = spectral_efficiency(data.future, preds[name], snr_db=10.0, antenna_axis=1)
            emit("spectral_efficiency", round(se, 4), "bit/s/Hz", model=name, tx_snr_db=10.0, history_snr_db=snr, quick=quick)
        emit("spectral_efficiency", round(spectral_efficiency_bound(data.future, snr_db=10.0, antenna_axis=1), 4),
             "bit/s/Hz", model="perfect_csi", tx_snr_db=10.0, history_snr_db=snr, quick=quick)


def cost_and_latency(models: dict[str, Any], quick: bool) -> None:
    import torch

    from edgestream.models import create_model
    from edgestream.models.csi_predictor import count_flops

    torch.set_num_threads(1)
    names = list(models) + ["csi4cast_tdd"] + ([] if quick else ["csi4cast_fdd"])
    for name in names:
        with torch.device("meta"):
            meta = create_model(name)
        emit("params", int(sum(p.numel() for p in meta.parameters())), "count", model=name)
        emit("flops", count_flops(meta), "FLOP", model=name, antennas=32,
             note="matmul/conv/attention FLOPs (2 per multiply-add) of one 32-antenna prediction")
    for name in names:
        model = models.get(name)
        if model is None:
            torch.manual_seed(0)
            model = create_model(name).eval()
        x = torch.randn(1, 32, model.hist_len, 600)
        runs = (3 if quick else 5) if name in ("csi4cast_tdd", "csi4cast_fdd") else (60 if quick else 300)
        wall, cpu = [], []
        with torch.inference_mode():
            for _ in range(2 if runs <= 5 else 10):
                model(x)
            for _ in range(runs):
                t, c = time.perf_counter(), time.thread_time()
                model(x)
                cpu.append(time.thread_time() - c)
                wall.append(time.perf_counter() - t)
        emit_latency(name, "torch", wall, cpu, quick)
        if name in models and name != "csi_repeat_last":
            backend_latency(name, model, "torchscript", quick)
            if not quick:
                backend_latency(name, model, "onnxruntime", quick)


def emit_latency(name: str, backend: str, wall: list[float], cpu: list[float], quick: bool) -> None:
    load = os.getloadavg()[0]
    p50, p99 = float(np.percentile(wall, 50)) * 1e3, float(np.percentile(wall, 99)) * 1e3
    ctx = dict(model=name, backend=backend, threads=1, antennas=32, runs=len(wall), load_avg_1min=round(load, 2), quick=quick)
    emit("latency_p50", round(p50, 3), "ms", **ctx, cpu_ms_p50=round(float(np.percentile(cpu, 50)) * 1e3, 3),
         wall_ms_min=round(min(wall) * 1e3, 3))
    emit("latency_p99", round(p99, 3), "ms", **ctx)
    emit("latency_vs_report_period", round(p50 / REPORT_PERIOD_MS, 3), "ratio", **ctx,
         note="p50 latency / 2.5 ms; <= 1 fits one report period")


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send file descriptor 1 to stderr for a while: the ONNX exporter prints graphs, and stdout is JSON only."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def backend_latency(name: str, model: Any, backend: str, quick: bool) -> None:
    """Latency of ``model`` through an edgestream backend (``torchscript``, ``onnxruntime``), as a pipeline runs it."""
    from edgestream.core.device import load_profile
    from edgestream.runners.backend import make_backend

    example = np.zeros((1, 32, model.hist_len, 600), np.float32)
    try:
        with stdout_to_stderr():
            run = make_backend(model, example, load_profile("cpu"), backend=backend, model_name=name)
    except Exception as exc:  # report, do not hide
        emit("latency_p50", None, "ms", model=name, backend=backend, error=str(exc)[:200], quick=quick)
        return
    x = np.random.default_rng(0).standard_normal(example.shape).astype(np.float32)
    for _ in range(10):
        run(x)
    wall, cpu = [], []
    for _ in range(60 if quick else 300):
        t, c = time.perf_counter(), time.thread_time()
        run(x)
        cpu.append(time.thread_time() - c)
        wall.append(time.perf_counter() - t)
    emit_latency(name, backend, wall, cpu, quick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid and budget (a few minutes)")
    parser.add_argument("--budget", type=float, default=None, help="training CPU-time budget per model, s "
                        "(default 150 quick, 900 full)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-checkpoint", default=None, help="write a trained model here (for edgestream run csi_predict)")
    parser.add_argument("--checkpoint-model", default="csi4cast_edge_xs", choices=TRAINED,
                        help="which trained model --save-checkpoint writes (default: the one the csi_predict pipeline runs)")
    parser.add_argument("--latency-only", action="store_true",
                        help="only parameters, FLOPs and latency (untrained weights: latency does not depend on them)")
    args = parser.parse_args(argv)
    budget = args.budget if args.budget is not None else (150.0 if args.quick else 900.0)

    import torch

    from edgestream.models import create_model

    torch.set_num_threads(1)
    # Subnormal floats (trained weights and activations that decay towards 0) run 10-20x slower on
    # x86; flush them to zero, as the csi_predict stage does for inference.
    torch.set_flush_denormal(True)
    if args.latency_only:
        torch.manual_seed(args.seed)
        cost_and_latency({name: create_model(name).eval() for name in ("csi_repeat_last", *TRAINED)}, args.quick)
        return 0
    train, tests, info = datasets(args.quick, args.seed)
    emit("dataset_seconds", round(info.pop("seconds"), 1), "s", **info, quick=args.quick)
    models: dict[str, Any] = {"csi_repeat_last": create_model("csi_repeat_last").eval()}
    for name in TRAINED:
        model, stats = train_model(name, train, budget, args.seed)
        models[name] = model
        emit("train_seconds", round(stats.pop("seconds"), 1), "s", model=name, budget_s=budget, **stats, quick=args.quick)
        if name == args.checkpoint_model and args.save_checkpoint:
            from edgestream.train.checkpoint import save_checkpoint

            save_checkpoint(args.save_checkpoint, model, name, {},
                            data={"generator": "edgestream.csi (sionna-no-rt CDL)", "train_scenarios": [s.name for s in train.spec.scenarios],
                                  "samples_per_scenario": train.spec.samples_per_scenario, "seed": train.spec.seed,
                                  "snr_range_db": [0, 25], "antenna_groups": 8, "channel": dataclasses.asdict(train.spec.channel)},
                            metrics=stats, notes=f"benchmarks/csi_predict.py {'--quick ' if args.quick else ''}--budget {budget:g}")
    del train
    evaluate(models, tests, args.quick)
    cost_and_latency(models, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
