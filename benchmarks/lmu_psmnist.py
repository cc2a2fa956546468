"""Permuted sequential MNIST with the paper's psMNIST LMU configuration, under a bounded CPU budget.

Protocol: MNIST in its classic 50 000 / 10 000 / 10 000 split (``vision/mnist/mnist.pkl.gz``), one
pixel per step (L = θ = 784), one fixed permutation of the 784 pixel positions (``--perm-seed``),
model ``lmuformer_psmnist`` (Conv1x1(1→3)+BN → LMU memory 468, hidden 346 → dropout 0.4 → Linear,
per-step logits averaged: 166 798 parameters). Adam lr 1e-3 (the reference notebook's default),
cross entropy, batch 100; model selection on the validation split (``edgestream.train.fit``),
stopped after the epoch that exhausts ``--budget`` seconds of training. The test split is used
once, at the end. The paper trains far longer on a GPU; numbers here are what the stated CPU
budget buys, not a reproduction of its accuracy.

Also: early decisions on the test set from the model's running (cumulative-mean) probabilities —
the paper's fixed cut-off at the same fraction of the sequence as its frame 87 of 128, against
:class:`edgestream.runners.early_exit.ConfidenceExit` (stop when confident for a few steps).

Usage: ``python benchmarks/lmu_psmnist.py [--quick] [--budget SECONDS] [--train-size N] [--data DIR]``.
``--quick`` = 60 s budget, 2 000 training / 500 validation / 1 000 test images.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import time

import numpy as np

BENCH = "lmu_psmnist"
PAPER_CUTOFF = 87 / 128  # the spiking LMUFormer's 95.17 % point on Speech Commands


def emit(**fields) -> None:
    print(json.dumps({"bench": BENCH} | fields), flush=True)


def load_mnist(data: str | None) -> tuple:
    from edgestream.core.paths import data_dir

    path = data_dir(data) / "vision" / "mnist" / "mnist.pkl.gz"
    with gzip.open(path, "rb") as f:
        return pickle.load(f, encoding="latin1"), path


def sequences(images: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """(n, 784) images → (n, 784, 1) pixel sequences in the permuted order."""
    return np.ascontiguousarray(images[:, perm, None], dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 s budget on small subsets")
    parser.add_argument("--budget", type=float, default=None, help="training wall-clock budget in seconds (default 3600; quick 60)")
    parser.add_argument("--train-size", type=int, default=None, help="training images used (default 50000; quick 2000)")
    parser.add_argument("--val-size", type=int, default=None, help="validation images (default 10000; quick 500)")
    parser.add_argument("--test-size", type=int, default=None, help="test images (default 10000; quick 1000)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--perm-seed", type=int, default=0, help="seed of the fixed pixel permutation")
    parser.add_argument("--seed", type=int, default=0, help="training seed (initialisation, shuffling)")
    parser.add_argument("--data", default=None, help="data directory (default: $EDGESTREAM_DATA or ../shared/data)")
    args = parser.parse_args()
    budget = args.budget if args.budget is not None else (60.0 if args.quick else 3600.0)
    n_train = args.train_size or (2000 if args.quick else 50000)
    n_val = args.val_size or (500 if args.quick else 10000)
    n_test = args.test_size or (1000 if args.quick else 10000)

    import torch

    from edgestream.models import create_model
    from edgestream.runners.early_exit import ConfidenceExit, FixedCutoff, evaluate as evaluate_policy
    from edgestream.train import TrainConfig, evaluate, fit

    torch.set_num_threads(args.threads)
    (train, val, test), path = load_mnist(args.data)
    perm = np.random.default_rng(args.perm_seed).permutation(784)
    xtr, ytr = sequences(train[0][:n_train], perm), np.asarray(train[1][:n_train], dtype=np.int64)
    xva, yva = sequences(val[0][:n_val], perm), np.asarray(val[1][:n_val], dtype=np.int64)
    xte, yte = sequences(test[0][:n_test], perm), np.asarray(test[1][:n_test], dtype=np.int64)

    torch.manual_seed(args.seed)
    model = create_model("lmuformer_psmnist")
    n_params = sum(p.numel() for p in model.parameters())
    config = TrainConfig(loss="ce", lr=1e-3, batch_size=args.batch_size, epochs=1000, patience=None, seed=args.seed,
                         max_seconds=budget, progress=False, num_threads=args.threads)
    common = {"model": "lmuformer_psmnist", "params": n_params, "budget_s": budget, "threads": args.threads,
              "n_train": n_train, "n_val": n_val, "n_test": n_test, "perm_seed": args.perm_seed, "quick": args.quick,
              "load_average": [round(v, 2) for v in os.getloadavg()]}
    emit(metric="config", value=1, unit="flag", data=str(path), **common)
    result = fit(model, (xtr, ytr), (xva, yva), config,
                 on_epoch=lambda row: emit(metric="epoch", value=row["epoch"], unit="epoch",
                                           train_loss=round(row["train_loss"], 4),
                                           val_accuracy=round(row.get("val_accuracy", float("nan")), 4),
                                           seconds=round(row["seconds"], 1)))
    t0 = time.perf_counter()
    test_metrics = evaluate(model, (xte, yte), loss="ce", batch_size=args.batch_size)
    emit(metric="test_accuracy", value=round(test_metrics["accuracy"], 4), unit="fraction",
         best_epoch=result.best_epoch, epochs_run=len(result.history), train_seconds=round(result.seconds, 1),
         val_accuracy=round(result.best_score, 4), **common)
    emit(metric="chance_accuracy", value=round(float(np.bincount(yte).max() / len(yte)), 4), unit="fraction", **common)

    # running (cumulative-mean) probabilities at every step, the streaming model's per-step output
    with torch.no_grad():
        probs = np.concatenate([
            torch.softmax(torch.cumsum(frame := model.parallel(torch.from_numpy(xte[i : i + args.batch_size])), 1)
                          / torch.arange(1, frame.shape[1] + 1)[None, :, None], -1).numpy()
            for i in range(0, len(xte), args.batch_size)])
    steps = probs.shape[1]
    policies = {f"fixed_{PAPER_CUTOFF:.4f}": FixedCutoff(int(round(PAPER_CUTOFF * steps))), "fixed_full": FixedCutoff(steps)}
    for threshold in (0.8, 0.9, 0.95):
        policies[f"confidence_{threshold}_x20"] = ConfidenceExit(threshold=threshold, patience=20)
    for label, policy in policies.items():
        res = evaluate_policy(policy, probs, yte)
        emit(metric="early_decision_accuracy", policy=label, value=round(res["accuracy"], 4), unit="fraction",
             mean_steps=round(res["mean_steps"], 1), mean_fraction=round(res["mean_fraction"], 4), **common)
    emit(metric="eval_seconds", value=round(time.perf_counter() - t0, 1), unit="s", **common)


if __name__ == "__main__":
    main()
