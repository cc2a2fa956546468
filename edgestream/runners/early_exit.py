"""Early decisions on a trial from per-step predictions (e.g. an LMUFormer's running probabilities).

A streaming model emits a prediction at every step. Instead of the paper's fixed cut-off (the
spiking LMUFormer reaches 95.17 % on Speech Commands at frame 87 of 128 by averaging the head
over the prefix), :class:`ConfidenceExit` stops each trial as soon as its confidence has stayed
above a threshold, for the same class, for ``patience`` consecutive steps. Both policies take
per-step class probabilities and return, per trial, the number of steps used and the label.

Online use is a state value like everything else: ``state = policy.init()``, then
``state, decision = policy.update(state, probs_t)`` per step; ``decision`` is ``None`` until the
policy stops, then ``(steps_used, label)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from edgestream.core.checks import check_number, fail


def _as_trials(probs: Any) -> np.ndarray:
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] == 0:
        fail("probs", "have shape (T, K) or (N, T, K) with T ≥ 1 (per-step class probabilities)", arr.shape)
    return arr


@dataclasses.dataclass(frozen=True)
class FixedCutoff:
    """Decide every trial at step ``step`` (1-based; clipped to the trial length): the paper's rule."""

    step: int  # steps seen before deciding, e.g. 87 of 128

    def __post_init__(self) -> None:
        check_number(self.step, "step", low=1, integer=True)

    def decide(self, probs: Any) -> tuple[np.ndarray, np.ndarray]:
        """``probs`` ``(N, T, K)`` → (steps used ``(N,)``, labels ``(N,)``)."""
        p = _as_trials(probs)
        used = min(self.step, p.shape[1])
        return np.full(p.shape[0], used), p[:, used - 1].argmax(-1)


@dataclasses.dataclass(frozen=True)
class ConfidenceExit:
    """Stop when the top class has kept confidence ≥ ``threshold`` for ``patience`` consecutive steps.

    Trials that never qualify are decided at their last step.
    """

    threshold: float = 0.9  # probability of the top class
    patience: int = 5  # consecutive qualifying steps (same class each step)
    min_steps: int = 1  # never decide before this many steps

    def __post_init__(self) -> None:
        check_number(self.threshold, "threshold", low=0.0, high=1.0)
        check_number(self.patience, "patience", low=1, integer=True)
        check_number(self.min_steps, "min_steps", low=1, integer=True)

    def init(self) -> dict[str, int]:
        """Online state: steps seen, current streak length and its class."""
        return {"steps": 0, "streak": 0, "label": -1}

    def update(self, state: dict[str, int], probs_t: Any) -> tuple[dict[str, int], tuple[int, int] | None]:
        """Consume one step's probabilities ``(K,)``; return the new state and the decision (or None)."""
        p = np.asarray(probs_t, dtype=np.float64).reshape(-1)
        label = int(p.argmax())
        ok = p[label] >= self.threshold
        streak = (state["streak"] + 1 if label == state["label"] else 1) if ok else 0
        state = {"steps": state["steps"] + 1, "streak": streak, "label": label if ok else -1}
        if streak >= self.patience and state["steps"] >= self.min_steps:
            return state, (state["steps"], label)
        return state, None

    def decide(self, probs: Any) -> tuple[np.ndarray, np.ndarray]:
        """``probs`` ``(N, T, K)`` → (steps used ``(N,)``, labels ``(N,)``) — the online rule, vectorised."""
        p = _as_trials(probs)
        n, t, _ = p.shape
        label = p.argmax(-1)  # (N, T)
        ok = np.take_along_axis(p, label[..., None], -1)[..., 0] >= self.threshold
        streak = np.zeros((n, t), dtype=np.int64)
        run = np.zeros(n, dtype=np.int64)
        prev = np.full(n, -1)  # class of the current streak (-1: none), as in update()
        for i in range(t):
            run = np.where(ok[:, i], np.where(label[:, i] == prev, run + 1, 1), 0)
            prev = np.where(ok[:, i], label[:, i], -1)
            streak[:, i] = run
        steps = np.arange(1, t + 1)
        qualifies = (streak >= self.patience) & (steps >= self.min_steps)[None]
        first = np.where(qualifies.any(1), qualifies.argmax(1), t - 1)
        return first + 1, label[np.arange(n), first]


def evaluate(policy: FixedCutoff | ConfidenceExit, probs: Any, labels: Any) -> dict[str, float]:
    """Accuracy and steps used (mean, and as a fraction of the trial length) of ``policy``."""
    p = _as_trials(probs)
    used, pred = policy.decide(p)
    y = np.asarray(labels).reshape(-1)
    if len(y) != p.shape[0]:
        fail("labels", f"have one label per trial ({p.shape[0]})", len(y))
    return {"accuracy": float((pred == y).mean()), "mean_steps": float(used.mean()),
            "mean_fraction": float(used.mean() / p.shape[1]), "n": int(len(y))}
