"""Step 1 of ED-ViT: split the K classes into S subsets, one per sub-model.

Two strategies (registered in :data:`CLASS_SPLITS`):

* ``"balanced"`` — classes dealt round-robin after a seeded shuffle; subset sizes differ by at
  most one.
* ``"confusion"`` — classes the dense model confuses with each other go to the same subset, so
  each sub-model learns the fine distinctions and the fusion only has to pick the subset. Sizes
  stay balanced; the grouping maximises the within-subset confusion by a greedy start and
  pairwise swaps (deterministic).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgestream.core.checks import check_number, fail
from edgestream.core.registry import Registry

CLASS_SPLITS: Registry[Callable[..., list[list[int]]]] = Registry("class split")


def _check(n_classes: int, n_parts: int) -> None:
    check_number(n_classes, "n_classes", low=1, integer=True)
    check_number(n_parts, "n_parts", low=1, high=n_classes, integer=True, fix="Use at most one sub-model per class.")


def _capacities(n_classes: int, n_parts: int) -> list[int]:
    base, extra = divmod(n_classes, n_parts)
    return [base + (1 if i < extra else 0) for i in range(n_parts)]


@CLASS_SPLITS.register("balanced")
def balanced_split(n_classes: int, n_parts: int, *, seed: int = 0, confusion: np.ndarray | None = None) -> list[list[int]]:
    """``n_parts`` subsets of sizes differing by at most one, classes shuffled with ``seed``."""
    _check(n_classes, n_parts)
    order = np.random.default_rng(seed).permutation(n_classes) if seed is not None else np.arange(n_classes)
    parts: list[list[int]] = [[] for _ in range(n_parts)]
    for i, c in enumerate(order):
        parts[i % n_parts].append(int(c))
    return [sorted(p) for p in parts]


def within_similarity(parts: list[list[int]], similarity: np.ndarray) -> float:
    """Sum of pairwise similarity inside each subset (what the confusion split maximises)."""
    return float(sum(similarity[np.ix_(p, p)].sum() - np.trace(similarity[np.ix_(p, p)]) for p in parts) / 2)


@CLASS_SPLITS.register("confusion")
def confusion_split(n_classes: int, n_parts: int, *, confusion: np.ndarray | None = None, seed: int = 0) -> list[list[int]]:
    """Balanced subsets grouping mutually confused classes.

    Parameters
    ----------
    confusion : ndarray, shape (K, K)
        Counts, rows true class, columns predicted (e.g. the dense model on validation data).
    """
    _check(n_classes, n_parts)
    if confusion is None:
        fail("confusion", "be given for the 'confusion' class split", None, "Pass the dense model's validation confusion matrix.")
    cm = np.asarray(confusion, dtype=np.float64)
    if cm.shape != (n_classes, n_classes):
        fail("confusion", f"have shape ({n_classes}, {n_classes})", cm.shape)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1.0)  # row-normalised: P(pred j | true i)
    sim = rates + rates.T
    np.fill_diagonal(sim, 0.0)
    caps = _capacities(n_classes, n_parts)
    parts: list[list[int]] = [[] for _ in range(n_parts)]
    # Greedy start: most-confused pairs first, each joining the part of its partner while it has room.
    where: dict[int, int] = {}
    pairs = sorted(((sim[i, j], i, j) for i in range(n_classes) for j in range(i + 1, n_classes)), reverse=True)
    for _, i, j in pairs:
        for a, b in ((i, j), (j, i)):
            if a in where and b not in where and len(parts[where[a]]) < caps[where[a]]:
                parts[where[a]].append(b)
                where[b] = where[a]
        if i not in where and j not in where:
            free = [k for k in range(n_parts) if not parts[k] and caps[k] >= 2]
            if free:
                parts[free[0]] += [i, j]
                where[i] = where[j] = free[0]
    for c in range(n_classes):  # leftovers into the emptiest parts
        if c not in where:
            k = min(range(n_parts), key=lambda k: (len(parts[k]) - caps[k], k))
            parts[k].append(c)
            where[c] = k
    # Local search: swap two classes between parts while the within-part similarity grows.
    improved = True
    while improved:
        improved = False
        best = within_similarity(parts, sim)
        for a in range(n_parts):
            for b in range(a + 1, n_parts):
                for x in list(parts[a]):
                    for y in list(parts[b]):
                        pa = [c for c in parts[a] if c != x] + [y]
                        pb = [c for c in parts[b] if c != y] + [x]
                        trial = parts[:a] + [pa] + parts[a + 1 : b] + [pb] + parts[b + 1 :]
                        score = within_similarity(trial, sim)
                        if score > best + 1e-12:
                            parts, best, improved = trial, score, True
                            break
                    if improved:
                        break
                if improved:
                    break
            if improved:
                break
    return sorted(sorted(p) for p in parts)


def split_classes(strategy: str, n_classes: int, n_parts: int, **kwargs: object) -> list[list[int]]:
    """Create a class split by strategy name (``"balanced"``, ``"confusion"``)."""
    return CLASS_SPLITS.get(strategy).factory(n_classes, n_parts, **kwargs)
