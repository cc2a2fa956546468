"""Held-out validation splits for model selection (never the test set)."""

from __future__ import annotations

import numpy as np

from edgestream.core.checks import check_number, described, fail
from edgestream.core.errors import DataError


def stratified_split(y: np.ndarray, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(fit, val)`` with about ``val_fraction`` of every class in ``val``.

    Each class with at least two cases puts ``max(1, round(val_fraction · n_c))`` of them in
    ``val`` (and keeps at least one for fitting); the choice is seeded and both index arrays are
    sorted, so the split is reproducible.

    Parameters
    ----------
    y : ndarray (n,) of integer class labels.
    val_fraction : float in (0, 1).
    seed : int
    """
    check_number(val_fraction, "val_fraction", low=0, high=1, low_inclusive=False, high_inclusive=False)
    y = np.asarray(y)
    if y.ndim != 1 or y.size < 2:
        fail("y", "be a 1-D array of at least two labels", described(f"shape {y.shape}"), error=DataError)
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        if idx.size < 2:
            continue
        n_val = min(idx.size - 1, max(1, int(round(val_fraction * idx.size))))
        val.append(rng.permutation(idx)[:n_val])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    fit_idx = np.setdiff1d(np.arange(y.size), val_idx)
    return fit_idx, val_idx
