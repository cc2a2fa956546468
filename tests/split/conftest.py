"""A small trained split plan on real Fashion-MNIST images, shared by the split tests."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from edgestream.models import create_model
from edgestream.split.plan import device_specs
from edgestream.train import TrainConfig, fit
from edgestream.train.edvit import SplitConfig, make_plan
from edgestream.train.vision import FASHION_MNIST_CLASSES, load_idx_dataset

TINY = {"dim": 32, "depth": 2, "n_heads": 4, "mlp_hidden": 64, "patch_size": 7}


@pytest.fixture(scope="session")
def fashion(shared_data):
    x, y = load_idx_dataset(shared_data, "train", limit=1200)
    xt, yt = load_idx_dataset(shared_data, "test", limit=64)
    return (x[:900], y[:900]), (x[900:], y[900:]), (xt, yt)


@pytest.fixture(scope="session")
def dense(fashion):
    torch.manual_seed(0)
    model = create_model("vit_tiny_28", **TINY)
    fit(model, fashion[0], fashion[1], TrainConfig(epochs=2, batch_size=64, lr=3e-3, progress=False))
    return model


@pytest.fixture(scope="session")
def tiny_plan(tmp_path_factory, fashion, dense):
    """Two devices, each with half the dense model's memory: a 2-sub-model plan on disk."""
    half = dense.size_bytes() / 2**20 / 2
    devices = [dataclasses.replace(d, memory_budget_mb=half) for d in device_specs(["dev-a=edge-small", "dev-b=edge-small"])]
    cfg = SplitConfig(
        finetune=TrainConfig(epochs=1, batch_size=64, lr=1e-3, distill_alpha=0.5, progress=False),
        fusion=TrainConfig(epochs=3, batch_size=128, lr=3e-3, progress=False),
        score_batches=2,
    )
    out = tmp_path_factory.mktemp("plan")
    return make_plan(dense, "vit_tiny_28", fashion[0], fashion[1], devices, out, cfg, FASHION_MNIST_CLASSES)
