"""Classification metrics (numpy; no torch needed)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts; rows are true classes, columns predictions."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return cm


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """Accuracy, balanced accuracy, Cohen's kappa and the confusion matrix (as nested lists)."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    total = cm.sum()
    acc = float(np.trace(cm) / total) if total else float("nan")
    support = cm.sum(axis=1)
    recalls = np.divide(np.diag(cm), support, out=np.zeros(n_classes), where=support > 0)
    bal = float(recalls[support > 0].mean()) if (support > 0).any() else float("nan")
    expected = float((cm.sum(axis=0) * support).sum() / total**2) if total else float("nan")
    kappa = (acc - expected) / (1 - expected) if total and expected < 1 else 0.0
    return {
        "accuracy": acc,
        "balanced_accuracy": bal,
        "kappa": float(kappa),
        "confusion_matrix": cm.tolist(),
        "n": int(total),
    }
