"""ED-ViT on Fashion-MNIST: accuracy, sizes and latency of the dense ViT vs its split on 2, 3, 4 nodes.

One run trains the dense ViT (bounded CPU budget), plans a split for N = 2, 3, 4 devices whose
memory budget is 1/N of the dense model, and measures on the test set: dense and fused
accuracy, accuracy with each single device missing, total and per-device size; then, on a
local Ray cluster with token auth (one node per device, loopback), the per-frame latency of the
dense model on one node and of each split. Prints one JSON object per line.

Targets (ED-ViT): per-device size ≤ 1/N of the dense model; fused accuracy within 2 points.
Latency here is measured on one shared 2-core machine, so N "devices" share two cores: the
split cannot show the parallel speed-up real separate boxes would give (the planner's expected
latency from the device profiles is reported beside it).

    python benchmarks/edvit_fashion.py --quick              # a few minutes
    python benchmarks/edvit_fashion.py --budget-s 1500      # fuller run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from edgestream.models import create_model
from edgestream.split.plan import SplitPlan, device_specs
from edgestream.split.runtime import InProcessBackend, SplitRuntime
from edgestream.train import TrainConfig, evaluate, fit, read_checkpoint, save_checkpoint
from edgestream.train.edvit import SplitConfig, make_plan
from edgestream.train.vision import FASHION_MNIST_CLASSES, load_idx_dataset, stratified_split

BENCH = "edvit_fashion"


def emit(metric: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"bench": BENCH, "metric": metric, "value": value, "unit": unit} | extra), flush=True)


def accuracy(plan: SplitPlan, x: torch.Tensor, y: torch.Tensor, disabled: tuple[str, ...] = ()) -> float:
    with SplitRuntime(plan, InProcessBackend(plan, disabled=disabled)) as rt:
        preds = np.concatenate([rt.predict(x[i : i + 500].numpy()).logits.argmax(1) for i in range(0, len(x), 500)])
    return float((preds == y.numpy()).mean())


def percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {"p50": statistics.median(s), "p90": s[int(0.9 * (len(s) - 1))], "mean": statistics.fmean(s)}


def ray_latency(plans: dict[int, SplitPlan], dense_ckpt: Path, frames: np.ndarray, n_frames: int, quick: bool) -> None:
    """Per-frame latency of the dense model on one node and of each split, on one local Ray cluster."""
    import ray

    from edgestream.split.cluster import LocalCluster
    from edgestream.split.plan import resource_name
    from edgestream.split.ray_backend import RayBackend, _actor_class

    names = sorted({d.name for p in plans.values() for d in p.devices})
    with LocalCluster(names, cpus_per_node=1):
        dense_blob = read_checkpoint(dense_ckpt)
        head = torch.nn.Linear(dense_blob["state_dict"]["head.weight"].shape[1], dense_blob["state_dict"]["head.weight"].shape[0])
        head.load_state_dict({"weight": dense_blob["state_dict"]["head.weight"], "bias": dense_blob["state_dict"]["head.bias"]})
        actor = _actor_class().options(resources={resource_name(names[0]): 1}, num_cpus=0).remote(ray.put([dense_blob]), 1)
        ray.get(actor.ping.remote(), timeout=120)
        times = []
        for i in range(n_frames + 5):
            f = frames[i % len(frames)][None]
            t0 = time.perf_counter()
            feats, _ = ray.get(actor.features.remote(ray.put(f)))
            with torch.no_grad():
                head(torch.from_numpy(feats[0]))
            if i >= 5:
                times.append(1e3 * (time.perf_counter() - t0))
        ray.kill(actor)
        for k, v in percentiles(times).items():
            emit(f"latency_{k}", v, "ms", model="dense", nodes=1, backend="ray", quick=quick)
        for n, plan in plans.items():
            with SplitRuntime(plan, RayBackend(plan, deadline_s=5.0, startup_timeout_s=120)) as rt:
                times = []
                for i in range(n_frames + 5):
                    t0 = time.perf_counter()
                    out = rt.predict(frames[i % len(frames)][None])
                    if i >= 5 and out.present.all():
                        times.append(1e3 * (time.perf_counter() - t0))
            for k, v in percentiles(times).items():
                emit(f"latency_{k}", v, "ms", model="split", nodes=n, backend="ray", quick=quick, frames=len(times))
            emit("expected_latency", plan.expected_latency_ms, "ms", model="split", nodes=n, source="planner (device profiles)", quick=quick)


def compute_latency(model_name: str, nodes: list[int], reps: int, quick: bool) -> None:
    """Forward latency (batch 1, this host) of a larger ViT and of its 1/N-pruned sub-models.

    Weights are untrained (latency does not depend on their values); pruning uses magnitude
    scores to 1/N of the dense parameter memory, as the planner does for N devices.
    """
    from edgestream.split.prune import compute_scores, plan_pruning

    torch.manual_seed(0)
    dense = create_model(model_name).eval()
    x = torch.rand(1, *dense.input_shape)

    def timed(model: torch.nn.Module) -> float:
        with torch.no_grad():
            model.forward_features(x)  # warm-up
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                model.forward_features(x)
                times.append(1e3 * (time.perf_counter() - t0))
        return statistics.median(times)

    emit("compute_latency_p50", timed(dense), "ms", model=model_name, part="dense", gflop=dense.flops() / 1e9,
         size_mb=dense.size_bytes() / 2**20, quick=quick)
    scores = compute_scores("magnitude", dense)
    for n in nodes:
        result = plan_pruning(dense, scores, dense.size_bytes() / n)
        sub = dense.prune(result.keep_heads, result.keep_neurons).eval()
        emit("compute_latency_p50", timed(sub), "ms", model=model_name, part=f"sub-model for {n} devices",
             gflop=sub.flops() / 1e9, size_mb=sub.size_bytes() / 2**20, nodes=n, quick=quick)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small data and budget (minutes)")
    ap.add_argument("--data", default=None, help="dataset directory (IDX files, or a folder with vision/fashion-mnist)")
    ap.add_argument("--model", default="vit_tiny_28")
    ap.add_argument("--budget-s", type=float, default=None, help="CPU training budget in seconds (dense + all splits)")
    ap.add_argument("--nodes", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--frames", type=int, default=None, help="frames timed per latency measurement")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray cluster latency part")
    ap.add_argument("--no-other", action="store_true", help="sub-model heads without the extra 'other' class (to compare)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scale-model", default=None, help="larger ViT whose 1/N sub-model compute latency is also measured "
                    "(default vit_tiny_224 in quick mode, vit_small_224 otherwise; 'none' to skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="keep the dense checkpoint and the plans here (default: a temporary directory, removed)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("ray").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    quick = args.quick
    budget = args.budget_s or (240.0 if quick else 1500.0)
    train_limit, test_limit = (8000, 2000) if quick else (None, None)
    n_frames = args.frames or (30 if quick else 100)

    x, y = load_idx_dataset(args.data, "train", limit=train_limit)
    xt, yt = load_idx_dataset(args.data, "test", limit=test_limit)
    tr, va = stratified_split(y, 0.1, seed=args.seed)
    train, val = (x[tr], y[tr]), (x[va], y[va])
    emit("dataset", len(tr), "images", split="train", val=len(va), test=len(xt), quick=quick)

    torch.manual_seed(args.seed)
    dense = create_model(args.model)
    dense_budget = 0.4 * budget
    res = fit(dense, train, val, TrainConfig(epochs=3 if quick else 40, batch_size=128, lr=2e-3, patience=5,
                                             max_seconds=dense_budget, seed=args.seed))
    dense_acc = float(evaluate(dense, (xt, yt))["accuracy"])
    dense_mb = dense.size_bytes() / 2**20
    emit("accuracy", dense_acc, "fraction", model="dense", nodes=1, train_seconds=round(res.seconds, 1), epochs=len(res.history), quick=quick)
    emit("size_total", dense_mb, "MB", model="dense", nodes=1, quick=quick)

    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="edvit_bench_"))
    try:
        return _splits(args, dense, dense_acc, dense_mb, train, val, xt, yt, work, n_frames, budget)
    finally:
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)


def _splits(args: argparse.Namespace, dense: torch.nn.Module, dense_acc: float, dense_mb: float, train: tuple,
            val: tuple, xt: torch.Tensor, yt: torch.Tensor, work: Path, n_frames: int, budget: float) -> int:
    quick = args.quick
    dense_ckpt = save_checkpoint(work / "dense.pt", dense, args.model, dense.config)
    per_split = 0.6 * budget / max(1, sum(args.nodes))  # seconds per sub-model fine-tune
    plans: dict[int, SplitPlan] = {}
    for n in args.nodes:
        devices = [dataclasses.replace(d, memory_budget_mb=dense_mb / n) for d in device_specs([f"dev{i}=edge-small" for i in range(n)])]
        cfg = SplitConfig(
            finetune=TrainConfig(epochs=1 if quick else 8, batch_size=128, lr=1e-3, patience=3, distill_alpha=0.5,
                                 max_seconds=per_split, seed=args.seed),
            fusion=TrainConfig(epochs=10 if quick else 40, batch_size=256, lr=2e-3, patience=6, seed=args.seed),
            other=not args.no_other, seed=args.seed,
        )
        t0 = time.perf_counter()
        plan = make_plan(dense, args.model, train, val, devices, work / f"split{n}", cfg, FASHION_MNIST_CLASSES)
        plans[n] = plan
        acc = accuracy(plan, xt, yt)
        sizes = plan.per_device_size_mb()
        emit("accuracy", acc, "fraction", model="split", nodes=n, other_class=not args.no_other,
             vs_dense_points=round(100 * (acc - dense_acc), 2),
             target_within_points=2.0, plan_seconds=round(time.perf_counter() - t0, 1), quick=quick)
        emit("size_total", sum(sizes.values()), "MB", model="split", nodes=n, quick=quick)
        emit("size_per_device_max", max(sizes.values()), "MB", model="split", nodes=n,
             ratio_to_dense=max(sizes.values()) / dense_mb, target_ratio=1.0 / n, per_device=sizes, quick=quick)
        missing = {d.name: accuracy(plan, xt, yt, disabled=(d.name,)) for d in plan.devices}
        emit("accuracy_one_device_missing_mean", statistics.fmean(missing.values()), "fraction", model="split", nodes=n,
             per_missing_device=missing, quick=quick)
        emit("accuracy_one_device_missing_min", min(missing.values()), "fraction", model="split", nodes=n, quick=quick)

    # In-process latency (one frame at a time on this host): dense vs split run sequentially here.
    frames = xt[:64].numpy()
    with torch.no_grad():
        times = []
        for i in range(n_frames + 5):
            t0 = time.perf_counter()
            dense(torch.from_numpy(frames[i % 64][None]))
            if i >= 5:
                times.append(1e3 * (time.perf_counter() - t0))
    emit("latency_p50", percentiles(times)["p50"], "ms", model="dense", nodes=1, backend="inprocess", quick=quick)
    for n, plan in plans.items():
        with SplitRuntime(plan, InProcessBackend(plan)) as rt:
            times = []
            for i in range(n_frames + 5):
                t0 = time.perf_counter()
                rt.predict(frames[i % 64][None])
                if i >= 5:
                    times.append(1e3 * (time.perf_counter() - t0))
        emit("latency_p50", percentiles(times)["p50"], "ms", model="split", nodes=n, backend="inprocess", quick=quick)
    if not args.no_ray:
        ray_latency(plans, dense_ckpt, frames, n_frames, quick)
    scale = args.scale_model or ("vit_tiny_224" if quick else "vit_small_224")
    if scale != "none":
        compute_latency(scale, args.nodes, 5 if quick else 10, quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
