"""LMU memory forms and the snntorch LIF adapter."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from snntorch._neurons.neurons import SpikingNeuron

from edgestream.core.errors import ConfigError, StateError
from edgestream.models.layers.lmu import LMUMemory, discretize_zoh, legendre_delay
from edgestream.models.layers.spiking import LIF, SpikeStats
from edgestream.testing import random_splits


def chunked(mem: LMUMemory, u: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    out, m, start = [], None, 0
    for n in sizes:
        piece = mem.chunk(u[:, start : start + n], m)
        if piece.shape[1]:
            m = piece[:, -1]
        out.append(piece)
        start += n
    return torch.cat(out, 1)


def test_legendre_matrices_follow_the_definition():
    a, b = legendre_delay(4, 8.0)
    assert a[0, 0] == pytest.approx(-1 / 8) and a[0, 3] == pytest.approx(-1 / 8)
    assert a[2, 1] == pytest.approx(5 / 8) and a[3, 1] == pytest.approx(-7 / 8)
    np.testing.assert_allclose(b[:, 0], [1 / 8, -3 / 8, 5 / 8, -7 / 8])
    with pytest.raises(ConfigError, match="theta must lie in"):
        legendre_delay(4, 0.0)


def test_spectral_radius_d256_theta128():
    mem = LMUMemory(256, 128.0, max_len=8, dtype=torch.float32)
    stored = np.abs(np.linalg.eigvals(mem.A.double().numpy())).max()
    # The spec's 0.879 is the radius of Ā as stored in float32 (the matrix is very non-normal, so
    # rounding moves its eigenvalues); the exact float64 Ā has radius 0.861. Both are stable.
    assert stored == pytest.approx(0.879, abs=2e-3)
    exact = np.abs(np.linalg.eigvals(discretize_zoh(*legendre_delay(256, 128.0))[0])).max()
    assert exact == pytest.approx(0.861, abs=2e-3) and exact < 1


def test_parallel_equals_recurrent_float64_128_steps():
    mem = LMUMemory(256, 128.0, max_len=128, dtype=torch.float64)
    u = torch.randn(2, 128, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    par, rec = mem.parallel(u), mem.recurrent(u)
    assert (par - rec).abs().max() < 3e-7
    torch.testing.assert_close(par, rec, rtol=0, atol=1e-9)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-5)])
def test_chunk_parallel_with_carried_state_equals_recurrence(rng, dtype, tol):
    mem = LMUMemory(48, 40.0, max_len=100, dtype=dtype)
    u = torch.as_tensor(rng.standard_normal((3, 257)), dtype=dtype)
    ref = mem.recurrent(u)
    scale = ref.abs().max()
    for max_chunk in (1, 7, 80, 150):  # direct, FFT and longer-than-max_len pieces
        got = chunked(mem, u, random_splits(u.shape[1], rng, max_chunk=max_chunk))
        assert ((got - ref).abs().max() / scale) < tol
    assert ((mem.parallel(u) - ref).abs().max() / scale) < tol  # 257 > max_len: split, state carried


def test_matrices_rederived_in_float64_after_to():
    mem32 = LMUMemory(32, 16.0, max_len=16, dtype=torch.float32)
    mem64 = LMUMemory(32, 16.0, max_len=16, dtype=torch.float64)
    back = mem32.to(torch.float64)
    assert back.A.dtype == torch.float64
    torch.testing.assert_close(back.A, mem64.A, rtol=0, atol=0)  # not the float32-rounded values
    torch.testing.assert_close(back.H, mem64.H, rtol=0, atol=0)
    assert "A" not in back.state_dict()  # derived, not weights


def test_memory_state_shape_mismatch_is_a_state_error():
    mem = LMUMemory(8, 4.0, max_len=8)
    with pytest.raises(StateError, match=r"must have shape \(2, 8\) for batch 2; got \(2, 9\)"):
        mem.chunk(torch.zeros(2, 3), torch.zeros(2, 9))


# --- LIF adapter -------------------------------------------------------------------------------
def spec_lif(x: torch.Tensor, v: torch.Tensor, threshold: float, tau: float = 2.0) -> torch.Tensor:
    """The spec's equation with an immediate hard reset; ``v`` is the post-reset membrane."""
    out = []
    for t in range(x.shape[-1]):
        h = v + (x[..., t] - v) / tau
        s = (h > threshold).to(x.dtype)
        out.append(s)
        v = h * (1 - s)
    return torch.stack(out, -1)


@pytest.mark.parametrize("threshold", [1.0, 0.5])
def test_lif_matches_spec_equation_and_snntorch_path_bit_for_bit(threshold):
    gen = torch.Generator().manual_seed(1)
    layer = LIF(6, threshold=threshold)
    x = torch.randn(3, 6, 40, generator=gen) * 2
    mem0 = layer.init_state(3)
    fast, mem_fast = layer(x, mem0)
    xg = x.clone().requires_grad_()
    slow, mem_slow = layer(xg, mem0)  # grad enabled and input needs grad: snntorch's Leaky
    assert torch.equal(fast, slow.detach()) and torch.equal(mem_fast, mem_slow.detach())
    assert torch.equal(fast, spec_lif(x, mem0, threshold))
    assert 0 < fast.mean() < 1
    slow.sum().backward()  # surrogate gradient reaches the input
    assert xg.grad is not None and xg.grad.abs().sum() > 0
    assert layer.neuron.mem.numel() == 0  # nothing left on the module


def test_lif_continues_from_explicit_membrane():
    layer = LIF(4)
    x = torch.randn(2, 4, 30, generator=torch.Generator().manual_seed(2)) * 3
    whole, _ = layer(x, layer.init_state(2))
    a, mem = layer(x[..., :11], layer.init_state(2))
    b, _ = layer(x[..., 11:], mem)
    assert torch.equal(torch.cat([a, b], -1), whole)


def test_lif_raises_instead_of_silent_reset_and_stays_off_snntorch_list():
    before = len(SpikingNeuron.instances)
    layer = LIF(5, name="probe")
    assert len(SpikingNeuron.instances) == before
    with pytest.raises(StateError, match=r"LIF layer 'probe' needs input \(B, 5, n\) and membrane \(B, 5\); got input \(2, 5, 3\) and membrane \(3, 5\)"):
        layer(torch.zeros(2, 5, 3), torch.zeros(3, 5))


def test_spike_stats_count_rates_and_sops():
    layer = LIF(3, name="l", fanout=10)
    stats = SpikeStats()
    x = torch.tensor([[[4.0, 0.0, 4.0, 4.0], [0.0, 0.0, 0.0, 0.0], [10.0, 10.0, 10.0, 10.0]]])
    spikes, _ = layer(x, layer.init_state(1), stats)
    expected = float(spikes.sum())
    row = stats.report()[0]
    assert row["layer"] == "l" and row["spikes"] == expected and row["sops"] == expected * 10
    assert row["spike_rate"] == pytest.approx(expected / 12)
    assert stats.total_sops == expected * 10


def test_membrane_state_round_trips_through_torch_save():
    layer = LIF(4)
    x = torch.randn(1, 4, 20, generator=torch.Generator().manual_seed(3)) * 3
    _, mem = layer(x[..., :9], layer.init_state(1))
    buf = io.BytesIO()
    torch.save({"mem": mem}, buf)
    buf.seek(0)
    restored = torch.load(buf, weights_only=True)["mem"]
    assert torch.equal(layer(x[..., 9:], restored)[0], layer(x[..., 9:], mem)[0])
