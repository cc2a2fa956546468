"""The shared training loop: validation-based selection (ties broken by loss), early stopping,
metrics against hand-computed values, checkpoints that rebuild the same model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgestream.core import ConfigError
from edgestream.models import create_model
from edgestream.train import TrainConfig, classification_metrics, evaluate, fit, load_checkpoint, save_checkpoint


def toy(n=160, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 64, 64, generator=g)
    y = (torch.arange(n) % 2).long()
    x[:, :8] += (2 * y[:, None, None] - 1) * 0.8  # separable on a few channels
    return x, y


def test_selects_best_validation_epoch_and_restores_its_weights():
    x, y = toy()
    model = create_model("reference_conv")
    snapshots = {}
    result = fit(model, (x[:120], y[:120]), (x[120:], y[120:]),
                 TrainConfig(epochs=6, lr=5e-3, patience=None, progress=False),
                 on_epoch=lambda row: snapshots.setdefault(row["epoch"], row))
    accs = [r["val_accuracy"] for r in result.history]
    losses = [r["val_loss"] for r in result.history]
    best = max(range(6), key=lambda i: (accs[i], -losses[i])) + 1  # accuracy first, then lower loss
    assert result.best_epoch == best and result.best_score == pytest.approx(accs[best - 1])
    assert evaluate(model, (x[120:], y[120:]))["loss"] == pytest.approx(losses[best - 1], rel=1e-5)


def test_early_stopping_and_config_checks():
    x, y = toy(64)
    result = fit(create_model("reference_conv"), (x[:48], y[:48]), (x[48:], y[48:]),
                 TrainConfig(epochs=50, lr=0.0 + 1e-9, patience=2, progress=False))
    assert result.stopped_early and len(result.history) == result.best_epoch + 2
    with pytest.raises(ConfigError, match="loss must be one of"):
        TrainConfig(loss="hinge")


def test_metrics_match_hand_computed_values():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    m = classification_metrics(y_true, y_pred, 3)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    expected = (3 * 2 + 2 * 2 + 1 * 2) / 36  # chance agreement from the marginals
    assert m["kappa"] == pytest.approx((4 / 6 - expected) / (1 - expected))


def test_checkpoint_round_trip_and_corruption(tmp_path):
    model = create_model("reference_conv", n_classes=3, seed=1)
    path = save_checkpoint(tmp_path / "m.pt", model, "reference_conv", {"n_classes": 3, "seed": 1},
                           data={"classes": ["a", "b", "c"]}, metrics={"accuracy": 0.5})
    loaded, blob = load_checkpoint(path)
    x = torch.randn(2, 64, 200)
    assert torch.equal(loaded(x), model.eval()(x))
    assert blob["manifest"]["data"]["classes"] == ["a", "b", "c"] and blob["manifest"]["git_revision"]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ConfigError, match="must be a readable edgestream checkpoint.*truncated or corrupted"):
        load_checkpoint(path)
