"""One training loop for every model family.

``fit`` trains a model on a training set, selects the epoch on a held-out validation set
(never on test data), stops early when validation stops improving, and returns the best
weights with the history. The protocol (loss, optimiser settings, schedule) is a parameter,
not a copied script::

    result = fit(model, train_set, val_set, TrainConfig(loss="bce", lr=2.5e-3, epochs=50))
    metrics = evaluate(model, test_set, n_classes=35)
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from edgestream.core.checks import check_number, check_value
from edgestream.train.metrics import classification_metrics

log = logging.getLogger(__name__)

LOSSES = ("ce", "bce", "mse", "nmse", "nmse_vector")


@dataclasses.dataclass
class TrainConfig:
    """Training protocol. Every field is a plain value so it can be stored in a manifest."""

    loss: str = "ce"  # "ce", "bce" (BCE-with-logits on one-hot targets), "mse", "nmse" (per item), "nmse_vector"
    # ("nmse_vector": mean over all leading axes of ||pred − target||² / ||target||² along the last axis)
    lr: float = 1e-3  # Adam learning rate
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    weight_decay: float = 0.0  # Adam weight decay (L2)
    batch_size: int = 32
    epochs: int = 100  # upper bound; early stopping usually ends sooner
    patience: int | None = 20  # epochs without validation improvement before stopping; None = never
    monitor: str = "auto"  # "loss", "accuracy", or "auto" (accuracy for classification losses)
    schedule: str | None = None  # None, "step" (×gamma every step_size epochs from step_start), "plateau"
    step_size: int = 10
    step_start: int = 0
    gamma: float = 0.5
    grad_clip: float | None = None  # max gradient norm
    seed: int = 0
    device: str = "cpu"
    progress: bool | None = None  # tqdm bar; None = only when stderr is a terminal
    num_threads: int | None = None  # torch intra-op threads during training
    distill_alpha: float = 0.0  # weight of the distillation term (0 = none; needs fit(..., teacher=...))
    distill_temperature: float = 2.0  # softmax temperature of the distillation term
    max_seconds: float | None = None  # wall-clock training budget; stops after the epoch that exceeds it

    def __post_init__(self) -> None:
        check_value(self.loss, LOSSES, "loss")
        check_number(self.lr, "lr", low=0, low_inclusive=False)
        check_number(self.batch_size, "batch_size", low=1, integer=True)
        check_number(self.epochs, "epochs", low=1, integer=True)
        check_value(self.monitor, ("auto", "loss", "accuracy"), "monitor")
        check_value(self.schedule, (None, "step", "plateau"), "schedule")
        check_number(self.distill_alpha, "distill_alpha", low=0.0, high=1.0)
        check_number(self.distill_temperature, "distill_temperature", low=0, low_inclusive=False)
        if self.max_seconds is not None:
            check_number(self.max_seconds, "max_seconds", low=0, low_inclusive=False)


@dataclasses.dataclass
class TrainResult:
    best_epoch: int  # 1-based epoch whose weights were kept
    best_score: float  # monitored validation value at best_epoch
    history: list[dict[str, float]]  # one row per epoch: train_loss, val_loss, val_accuracy, lr, seconds
    seconds: float  # wall-clock training time
    stopped_early: bool


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft-target term: ``T² · KL(softmax(teacher/T) ‖ softmax(student/T))``, batch mean.

    Both are logits ``(B, K)`` over the same classes.
    """
    t = temperature
    log_p = nn.functional.log_softmax(student / t, dim=-1)
    log_q = nn.functional.log_softmax(teacher / t, dim=-1)
    return nn.functional.kl_div(log_p, log_q, log_target=True, reduction="batchmean") * t * t


def as_dataset(data: Dataset | tuple[Any, Any]) -> Dataset:
    """Accept a torch Dataset or an ``(X, y)`` pair of arrays/tensors."""
    if isinstance(data, Dataset):
        return data
    x, y = data
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    y_arr = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    return TensorDataset(x, y_arr)


def _logits(output: Any) -> torch.Tensor:
    """Models may return logits, (features, logits), or (logits, state); take the logits."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        tensors = [o for o in output if isinstance(o, torch.Tensor)]
        # (features, logits): logits is the last tensor; (logits, state-dict): the only tensor
        return tensors[-1] if tensors else output[0]
    raise TypeError(f"model output must be a tensor or a tuple containing one; got {type(output).__name__}")


def model_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of ``model`` for a training/evaluation batch.

    A model whose ``forward`` is not its training output (a streaming model's forward continues a
    stream and returns per-step outputs with state) exposes ``training_logits(x)``, used instead.
    """
    hook = getattr(model, "training_logits", None)
    return hook(x) if callable(hook) else _logits(model(x))


def loss_fn(kind: str, n_classes: int | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if kind == "ce":
        return nn.CrossEntropyLoss()
    if kind == "bce":
        bce = nn.BCEWithLogitsLoss()
        return lambda logits, y: bce(logits, nn.functional.one_hot(y.long(), logits.shape[-1]).to(logits.dtype))
    if kind == "mse":
        return nn.MSELoss()

    def nmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, target.ndim))
        return ((pred - target).pow(2).sum(dims) / target.pow(2).sum(dims).clamp_min(1e-12)).mean()

    def nmse_vector(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((pred - target).pow(2).sum(-1) / target.pow(2).sum(-1).clamp_min(1e-12)).mean()

    return nmse if kind == "nmse" else nmse_vector


def _progress(total: int, enabled: bool | None, desc: str):
    enabled = sys.stderr.isatty() if enabled is None else enabled
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="epoch", leave=False)


def fit(
    model: nn.Module,
    train_set: Dataset | tuple[Any, Any],
    val_set: Dataset | tuple[Any, Any] | None,
    config: TrainConfig | None = None,
    *,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    teacher: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch.

    ``teacher`` (with ``config.distill_alpha > 0``) maps an input batch to target logits shaped
    like the model's; the loss becomes ``(1 - α) · task + α · distillation_loss``. It is called
    under ``torch.no_grad`` and never trained.
    """
    cfg = config or TrainConfig()
    if cfg.distill_alpha > 0 and teacher is None:
        from edgestream.core.errors import ConfigError

        raise ConfigError(
            f"distill_alpha must be 0 when no teacher is given; got {cfg.distill_alpha}. Pass fit(..., teacher=model) "
            "or set distill_alpha=0."
        )
    if isinstance(teacher, nn.Module):
        teacher.eval()
    torch.manual_seed(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    generator = torch.Generator().manual_seed(cfg.seed)
    train_ds = as_dataset(train_set)
    val_ds = as_dataset(val_set) if val_set is not None else None
    loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, generator=generator)
    classify = cfg.loss in ("ce", "bce")
    monitor = ("accuracy" if classify else "loss") if cfg.monitor == "auto" else cfg.monitor
    criterion = loss_fn(cfg.loss)
    model.to(cfg.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    sched: Any = None
    if cfg.schedule == "step":
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda e: cfg.gamma ** max(0, (e - cfg.step_start) // cfg.step_size + (1 if e >= cfg.step_start else 0))
            if e >= cfg.step_start else 1.0
        )
    elif cfg.schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.gamma, patience=max(1, cfg.step_size // 2))

    best_score, best_epoch, best_state = -math.inf, 0, copy.deepcopy(model.state_dict())
    best_key: tuple[float, float] = (-math.inf, -math.inf)
    history: list[dict[str, float]] = []
    bar = _progress(cfg.epochs, cfg.progress, type(model).__name__)
    start = time.perf_counter()
    stopped_early = False
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for xb, yb in loader:
            xb, yb = xb.to(cfg.device), yb.to(cfg.device)
            opt.zero_grad(set_to_none=True)
            logits = model_logits(model, xb)
            loss = criterion(logits, yb)
            if cfg.distill_alpha > 0:
                with torch.no_grad():
                    target = _logits(teacher(xb))
                loss = (1 - cfg.distill_alpha) * loss + cfg.distill_alpha * distillation_loss(logits, target, cfg.distill_temperature)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            total += float(loss.detach()) * len(xb)
            count += len(xb)
        row = {"epoch": epoch, "train_loss": total / max(count, 1), "lr": opt.param_groups[0]["lr"]}
        if val_ds is not None:
            val = evaluate(model, val_ds, loss=cfg.loss, batch_size=max(cfg.batch_size, 64), device=cfg.device)
            row |= {"val_loss": val["loss"]} | ({"val_accuracy": val["accuracy"]} if classify else {})
            score = val["accuracy"] if monitor == "accuracy" else -val["loss"]
            # small validation sets tie on accuracy often: break ties by the lower validation loss
            key = (score, -val["loss"])
        else:
            score = -row["train_loss"]
            key = (score, score)
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if on_epoch:
            on_epoch(row)
        if key > best_key:
            best_key, best_score, best_epoch, best_state = key, score, epoch, copy.deepcopy(model.state_dict())
        if bar is not None:
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k in ("train_loss", "val_loss", "val_accuracy")})
            bar.update(1)
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(-score)
        elif sched is not None:
            sched.step()
        if cfg.patience is not None and epoch - best_epoch >= cfg.patience:
            stopped_early = True
            break
        if cfg.max_seconds is not None and time.perf_counter() - start >= cfg.max_seconds:
            log.info("training budget of %.0f s used after epoch %d; stopping", cfg.max_seconds, epoch)
            stopped_early = True
            break
    if bar is not None:
        bar.close()
    model.load_state_dict(best_state)
    model.eval()
    best_value = best_score if monitor == "accuracy" else -best_score
    return TrainResult(best_epoch, float(best_value), history, time.perf_counter() - start, stopped_early)


@torch.no_grad()
def predict(model: nn.Module, data: Dataset | tuple[Any, Any] | Any, batch_size: int = 256, device: str = "cpu") -> torch.Tensor:
    """Logits for every item (model in eval mode). ``data`` may be a Dataset, (X, y) or X alone."""
    model.eval()
    if isinstance(data, Dataset) or isinstance(data, tuple):
        ds = as_dataset(data)
        batches = (xb for xb, _ in DataLoader(ds, batch_size=batch_size))
    else:
        x = torch.as_tensor(np.asarray(data) if not isinstance(data, torch.Tensor) else data, dtype=torch.float32)
        batches = (x[i : i + batch_size] for i in range(0, len(x), batch_size))
    return torch.cat([model_logits(model, xb.to(device)).cpu() for xb in batches])


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Dataset | tuple[Any, Any],
    *,
    loss: str = "ce",
    n_classes: int | None = None,
    batch_size: int = 256,
    device: str = "cpu",
) -> dict[str, Any]:
    """Loss plus, for classification losses, accuracy / balanced accuracy / kappa / confusion matrix."""
    ds = as_dataset(data)
    model.eval()
    criterion = loss_fn(loss)
    outs, ys = [], []
    for xb, yb in DataLoader(ds, batch_size=batch_size):
        outs.append(model_logits(model, xb.to(device)).cpu())
        ys.append(yb)
    logits, y = torch.cat(outs), torch.cat(ys)
    result: dict[str, Any] = {"loss": float(criterion(logits, y))}
    if loss in ("ce", "bce"):
        k = n_classes or logits.shape[-1]
        result |= classification_metrics(y.numpy(), logits.argmax(-1).numpy(), k)
    return result
