"""Every registered model, discovered from the registry (a new model is tested without writing a test):
it builds with its defaults, states its input shape, runs deterministically in eval mode, refuses
unknown constructor arguments with a suggestion, and — for streaming models — gives the same
outputs fed in random chunks with state carried as in one offline pass, and rejects foreign state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgestream.core import ConfigError, StateError
from edgestream.models import MODELS, create_model, list_models, model_tags
from edgestream.models.inputs import example_input
from edgestream.testing import randomize_norm_stats


def _input(model, name: str, batch: int = 2, steps: int = 24) -> torch.Tensor:
    size = model_tags(name).get("input_size")
    shape = (batch, *size) if size else example_input(model, batch, steps).shape
    return torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _maybe_slow(name: str):
    """The paper-size CSI-4CAST models take 30-50 s per forward on 2 cores: slow suite only."""
    return pytest.param(name, marks=pytest.mark.slow) if name in ("csi4cast_tdd", "csi4cast_fdd") else name


@pytest.mark.parametrize("name", [_maybe_slow(n) for n in list_models()])
def test_builds_runs_and_is_deterministic(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    tags = model_tags(name)
    assert tags.get("family") and tags.get("kind") in ("streaming", "window", "predictor", "vision"), tags
    assert _params(model) > 0 or tags["family"] == "csi_baseline"
    x = _input(model, name)
    with torch.no_grad():
        first, second = model(x), model(x)
    a = first[0] if tags["kind"] == "streaming" else first
    b = second[0] if tags["kind"] == "streaming" else second
    a, b = (a[-1], b[-1]) if isinstance(a, (tuple, list)) else (a, b)
    assert torch.isfinite(a).all() and torch.equal(a, b)
    assert a.shape[0] == x.shape[0]


@pytest.mark.parametrize("name", list_models())
def test_unknown_constructor_argument_is_a_clear_error(name):
    with pytest.raises(ConfigError, match=rf"model '{name}': unknown key 'not_a_param'"):
        create_model(name, not_a_param=1)


@pytest.mark.parametrize("name", [_maybe_slow(n) for n in list_models(kind="streaming")])
def test_streaming_in_random_chunks_equals_offline(name, rng):
    torch.manual_seed(0)
    model = randomize_norm_stats(create_model(name)).eval().double()
    x = _input(model, name, batch=2, steps=61).double()
    with torch.no_grad():
        offline, _ = model(x)
        state, parts, t = model.init_state(2), [], 0
        while t < x.shape[1]:
            n = int(rng.integers(1, 17))
            y, state = model(x[:, t : t + n], state)
            parts.append(y)
            t += n
    torch.testing.assert_close(torch.cat(parts, dim=1), offline, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", list_models(kind="streaming"))
def test_state_from_another_batch_size_is_refused(name):
    model = create_model(name).eval()
    state = model.init_state(3)
    x = _input(model, name, batch=1, steps=2)
    with pytest.raises(StateError, match="state"):
        model(x, state)


def test_registry_is_not_empty_and_every_kind_is_covered():
    kinds = {model_tags(n)["kind"] for n in list_models()}
    assert kinds == {"streaming", "window", "predictor", "vision"} and len(MODELS) >= 20
