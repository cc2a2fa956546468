"""ED-ViT planning end to end: split → prune → fine-tune (distilled) → fuse → assign → plan file.

::

    devices = device_specs(["box-a=edge-small", "box-b=edge-small"])     # edgestream.split.plan
    plan = make_plan(dense, "vit_tiny_28", (x_train, y_train), (x_val, y_val), devices, "out/", SplitConfig())
    # out/plan.yaml, out/sub0.pt, out/sub1.pt, out/fusion.pt

Planning lives in ``train/`` because two of its four steps train (fine-tuning the sub-models
with distillation, and the fusion MLP) and it writes checkpoints. The steps that do not train
— class split, pruning, assignment, the plan file — stay in :mod:`edgestream.split`, with the
runtime that executes a plan; this module composes them, so ``split`` never imports training.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgestream.core.checks import check_number, check_value, fail
from edgestream.models.vit import VisionTransformer
from edgestream.split.assign import Job, Machine, assign, job_seconds, makespan
from edgestream.split.classes import CLASS_SPLITS, split_classes
from edgestream.split.fusion import FusionMLP, fusion_input
from edgestream.split.plan import DeviceSpec, SplitPlan, SubModelSpec
from edgestream.split.prune import SCORES, compute_scores, plan_pruning
from edgestream.train.checkpoint import save_checkpoint
from edgestream.train.loop import TrainConfig, evaluate, fit

log = logging.getLogger(__name__)
MB = 2.0**20


@dataclasses.dataclass
class SplitConfig:
    """How to cut a dense ViT into sub-models (every field a plain value, stored in the plan's notes)."""

    n_submodels: int | None = None  # S sub-models; None = one per device
    class_split: str = "confusion"  # "balanced" or "confusion" (group classes the dense model confuses)
    score: str = "taylor"  # pruning importance: "taylor" (class-wise, data) or "magnitude"
    other: bool = True  # sub-model heads get an extra "other" output trained on out-of-subset images
    other_ratio: float = 1.0  # out-of-subset training images per in-subset image (when other=True)
    score_batches: int = 8  # batches of the subset's data for Taylor scores
    min_heads: int = 1  # heads kept per block at least
    min_neurons: int = 1  # MLP neurons kept per block at least
    finetune: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(epochs=5, lr=1e-3, batch_size=128, patience=3, distill_alpha=0.5, distill_temperature=2.0)
    )
    fusion: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(epochs=30, lr=2e-3, batch_size=256, patience=6))
    fusion_hidden: int = 128  # fusion MLP width
    drop_p: float = 0.25  # chance a sub-model is dropped per training sample (graceful degradation)
    coordinator_gflops: float = 20.0  # where the fusion runs (the host with the camera); for latency estimates
    seed: int = 0

    def __post_init__(self) -> None:
        check_value(self.class_split, CLASS_SPLITS.names(), "class_split")
        check_value(self.score, SCORES.names(), "score")
        check_number(self.other_ratio, "other_ratio", low=0.0)
        if self.n_submodels is not None:
            check_number(self.n_submodels, "n_submodels", low=1, integer=True)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class SubsetTeacher(nn.Module):
    """The dense model's logits restricted to ``classes`` (+ an "other" logit = logsumexp of the rest)."""

    def __init__(self, dense: nn.Module, classes: Sequence[int], n_classes: int, other: bool) -> None:
        super().__init__()
        self.dense = dense
        self.register_buffer("inside", torch.tensor(list(classes), dtype=torch.long), persistent=False)
        rest = [c for c in range(n_classes) if c not in set(classes)]
        self.register_buffer("outside", torch.tensor(rest, dtype=torch.long), persistent=False)
        self.other = other and bool(rest)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.dense(x)  # (B, K)
        sub = logits[:, self.inside]
        if self.other:
            sub = torch.cat([sub, torch.logsumexp(logits[:, self.outside], dim=1, keepdim=True)], dim=1)
        return sub


def subset_data(
    x: torch.Tensor, y: torch.Tensor, classes: Sequence[int], other: bool, other_ratio: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of ``classes`` with labels 0..k-1, plus (``other``) sampled others labelled k."""
    lut = torch.full((int(y.max()) + 1,), -1, dtype=torch.long)
    lut[torch.tensor(list(classes))] = torch.arange(len(classes))
    mapped = lut[y]
    inside = torch.nonzero(mapped >= 0).flatten()
    idx, labels = [inside], [mapped[inside]]
    if other:
        outside = torch.nonzero(mapped < 0).flatten()
        n = min(len(outside), int(round(other_ratio * len(inside))))
        pick = outside[torch.randperm(len(outside), generator=torch.Generator().manual_seed(seed))[:n]]
        idx.append(pick)
        labels.append(torch.full((len(pick),), len(classes), dtype=torch.long))
    return x[torch.cat(idx)], torch.cat(labels)


def _sub_head(sub: VisionTransformer, dense: VisionTransformer, classes: Sequence[int], other: bool) -> None:
    """Initialise the sub-model head from the dense head's rows (the "other" row: mean of the rest)."""
    with torch.no_grad():
        idx = torch.tensor(list(classes))
        sub.head.weight[: len(classes)] = dense.head.weight[idx]
        sub.head.bias[: len(classes)] = dense.head.bias[idx]
        if other:
            rest = torch.tensor([c for c in range(dense.head.out_features) if c not in set(classes)])
            sub.head.weight[-1] = dense.head.weight[rest].mean(0)
            sub.head.bias[-1] = dense.head.bias[rest].mean(0)


def _batches(x: torch.Tensor, y: torch.Tensor, batch: int, n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[: batch * n]
    return [(x[perm[i : i + batch]], y[perm[i : i + batch]]) for i in range(0, len(perm), batch)]


@torch.no_grad()
def submodel_features(model: VisionTransformer, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """CLS features ``(n, D)`` of a frozen sub-model."""
    model.eval()
    return torch.cat([model.forward_features(x[i : i + batch]) for i in range(0, len(x), batch)])


def make_plan(
    dense: VisionTransformer,
    model_name: str,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    devices: Sequence[DeviceSpec],
    out_dir: str | os.PathLike[str],
    config: SplitConfig | None = None,
    class_names: Sequence[str] | None = None,
    plan_name: str = "plan.yaml",
) -> SplitPlan:
    """Run the four ED-ViT steps and write ``out_dir/plan.yaml`` with one checkpoint per sub-model.

    Parameters
    ----------
    dense : VisionTransformer
        The trained dense model (teacher; left unchanged).
    train, val : (images (n, C, H, W) float32 in [0, 1], labels (n,) int64)
        Fine-tuning data and the held-out split used for model selection and the confusion split.
    devices : list of DeviceSpec
        Device instances (see :func:`edgestream.split.plan.device_specs`); their memory budgets bound the sub-models.
    """
    cfg = config or SplitConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dense.eval()
    k = dense.config["n_classes"]
    names = tuple(class_names) if class_names is not None else tuple(str(i) for i in range(k))
    if len(names) != k:
        fail("class_names", f"list the dense model's {k} classes", len(names))
    n_sub = cfg.n_submodels or len(devices)
    if n_sub > len(devices):
        fail("n_submodels", f"be at most the number of devices ({len(devices)})", n_sub, "Add devices or plan fewer sub-models.")
    dense_metrics = evaluate(dense, val)
    log.info("dense %s: val accuracy %.4f, %.3f MB", model_name, dense_metrics["accuracy"], dense.size_bytes() / MB)

    # 1. split classes
    subsets = split_classes(cfg.class_split, k, n_sub, confusion=dense_metrics["confusion_matrix"], seed=cfg.seed)
    subsets.sort(key=lambda s: (-len(s), s))
    log.info("step 1/4 class split (%s): %s", cfg.class_split, subsets)
    # Budgets: the i-th largest sub-model is sized for the i-th roomiest device (a matching that
    # always fits); the assignment below may still find a faster placement.
    by_memory = sorted(range(len(devices)), key=lambda d: (-devices[d].memory_budget_mb, d))
    pairing = [by_memory[i] for i in range(n_sub)]

    subs: list[VisionTransformer] = []
    specs: list[dict[str, Any]] = []
    for i, classes in enumerate(subsets):
        budget = devices[pairing[i]].memory_budget_mb * MB
        xs, ys = subset_data(*train, classes, cfg.other, cfg.other_ratio, cfg.seed + i)
        vx, vy = subset_data(*val, classes, cfg.other, cfg.other_ratio, cfg.seed + 100 + i)
        # 2. class-wise pruning: importance measured on this subset's images with the dense objective
        inside = torch.isin(train[1], torch.tensor(classes))
        sx, sy = train[0][inside], train[1][inside]
        scores = compute_scores(cfg.score, dense, _batches(sx, sy, 64, cfg.score_batches, cfg.seed + i))
        pr = plan_pruning(dense, scores, budget, min_heads=cfg.min_heads, min_neurons=cfg.min_neurons)
        sub = dense.prune(pr.keep_heads, pr.keep_neurons).with_head(len(classes) + int(cfg.other))
        _sub_head(sub, dense, classes, cfg.other)
        log.info("step 2/4 sub%d classes %s: pruned %.0f%% of heads/neurons → %.3f MB (budget %.3f MB)",
                 i, classes, 100 * pr.fraction, sub.size_bytes() / MB, budget / MB)
        # 3. fine-tune on the subset, distilling from the dense model
        teacher = SubsetTeacher(dense, classes, k, cfg.other)
        ft = dataclasses.replace(cfg.finetune, seed=cfg.seed + i)
        result = fit(sub, (xs, ys), (vx, vy), ft, teacher=teacher if ft.distill_alpha > 0 else None)
        log.info("step 3/4 sub%d fine-tuned: val accuracy %.4f (epoch %d, %.0f s)", i, result.best_score, result.best_epoch, result.seconds)
        ckpt = f"sub{i}.pt"
        save_checkpoint(out / ckpt, sub, model_name, sub.config, data={"classes": list(classes)},
                        metrics={"val_accuracy": result.best_score}, extra={"classes": list(classes), "other": cfg.other})
        subs.append(sub)
        specs.append({"name": f"sub{i}", "classes": tuple(classes), "checkpoint": ckpt, "other": cfg.other,
                      "size_mb": sub.size_bytes() / MB, "gflop": sub.flops() / 1e9, "n_heads": tuple(sub.n_heads),
                      "mlp_hidden": tuple(sub.mlp_hidden), "feature_dim": sub.dim})

    # 4. fusion over frozen backbones, with sub-models dropped at random
    log.info("step 4/4 fusion: features of %d train / %d val images from %d sub-models", len(train[0]), len(val[0]), n_sub)
    ftrain = fusion_input([submodel_features(s, train[0]) for s in subs])
    fval = fusion_input([submodel_features(s, val[0]) for s in subs])
    torch.manual_seed(cfg.seed)
    fusion = FusionMLP(n_sub, dense.dim, k, cfg.fusion_hidden, cfg.drop_p)
    fres = fit(fusion, (ftrain, train[1]), (fval, val[1]), dataclasses.replace(cfg.fusion, seed=cfg.seed))
    fused = evaluate(fusion, (fval, val[1]))
    log.info("fusion: val accuracy %.4f (dense %.4f)", fused["accuracy"], dense_metrics["accuracy"])
    save_checkpoint(out / "fusion.pt", fusion, "edvit_fusion", fusion.config, metrics={"val_accuracy": fused["accuracy"]})

    # assignment by makespan under memory budgets
    c, h, w = dense.input_shape
    jobs = [Job(s["name"], s["size_mb"], s["gflop"], (c * h * w + s["feature_dim"]) * 4 / 1e6) for s in specs]
    machines = [Machine(d.name, d.memory_budget_mb, d.compute_gflops, d.network_mbps) for d in devices]
    placement = assign(jobs, machines, candidates=[pairing])
    span = makespan(jobs, machines, placement)
    fusion_gflop = fusion.flops() / 1e9
    submodels = tuple(
        SubModelSpec(**s, device=devices[d].name, expected_ms=1e3 * job_seconds(jobs[j], machines[d]))
        for j, (s, d) in enumerate(zip(specs, placement))
    )
    plan = SplitPlan(
        model=model_name, classes=names, input_shape=dense.input_shape, devices=tuple(devices), submodels=submodels,
        fusion_checkpoint="fusion.pt", fusion_gflop=fusion_gflop, makespan_ms=1e3 * span,
        expected_latency_ms=1e3 * (span + fusion_gflop / cfg.coordinator_gflops), dense_size_mb=dense.size_bytes() / MB,
        notes={"config": cfg.to_dict(), "dense_val_accuracy": dense_metrics["accuracy"], "fused_val_accuracy": fused["accuracy"],
               "fusion_best_epoch": fres.best_epoch},
        root=out.resolve(),
    )
    plan.save(out / plan_name)
    log.info("plan written to %s: makespan %.3f ms, sizes %s", out / plan_name, plan.makespan_ms,
             {k: round(v, 4) for k, v in plan.per_device_size_mb().items()})
    return plan
