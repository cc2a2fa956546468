"""The TorchScript backend: traced + frozen window models give the eager model's outputs."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch
from torch import nn

from edgestream.core.device import load_profile
from edgestream.core.errors import ConfigError
from edgestream.models import create_model
from edgestream.runners.backend import TorchBackend, TorchScriptBackend, make_backend, make_streaming_backend
from edgestream.runners.export import ExportError


@pytest.mark.parametrize("name, shape", [("reference_conv", (1, 64, 1000)), ("csi4cast_edge_xs", (1, 32, 4, 600))])
def test_traced_model_equals_eager(rng, name, shape):
    torch.manual_seed(1)
    net = create_model(name).eval()
    if name.startswith("csi4cast"):  # move off the repeat-last initialisation so the learned path counts
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.05 * torch.randn_like(p))
    example = np.zeros(shape, np.float32)
    run = make_backend(net, example, load_profile("cpu"), backend="torchscript", model_name=name)
    assert isinstance(run, TorchScriptBackend) and run.name == "torchscript"
    eager = TorchBackend(net)
    for _ in range(3):
        x = rng.standard_normal(shape).astype(np.float32)
        want = eager(x)
        np.testing.assert_allclose(run(x), want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_other_shapes_run_eager(rng):
    net = create_model("reference_conv").eval()
    run = TorchScriptBackend(net, np.zeros((1, 64, 1000), np.float32))
    x = rng.standard_normal((2, 64, 500)).astype(np.float32)  # not the traced shape
    np.testing.assert_allclose(run(x), TorchBackend(net)(x), rtol=1e-5, atol=1e-6)


class DataDependent(nn.Module):
    """Output branches on the data: a trace records one branch only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.sum()) > 0:
            return x.mean(dim=-1)
        return -x.mean(dim=-1)


def test_a_trace_that_differs_is_refused_and_the_profile_falls_back(caplog):
    example = np.zeros((1, 3, 8), np.float32)
    with pytest.raises(ExportError, match="differs from the eager model"):
        TorchScriptBackend(DataDependent(), example)
    profile = dataclasses.replace(load_profile("cpu"), backend="torchscript")
    with caplog.at_level(logging.WARNING):
        run = make_backend(DataDependent(), example, profile)
    assert type(run) is TorchBackend
    assert "TorchScript export of DataDependent failed" in caplog.text and "falling back to the torch backend" in caplog.text


def test_streaming_models_run_eager_and_unknown_backends_are_named():
    profile = dataclasses.replace(load_profile("cpu"), backend="torchscript")
    run = make_streaming_backend(create_model("gru_stream_s"), profile)
    assert run.name == "torch"
    with pytest.raises(ConfigError, match="'torch', 'torchscript' or 'onnxruntime'; got 'jit'"):
        make_backend(create_model("reference_conv"), np.zeros((1, 64, 1000), np.float32), backend="jit")
