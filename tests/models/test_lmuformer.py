"""LMUFormer family: every registered variant streams exactly like its whole-sequence model."""

from __future__ import annotations

import io

import pytest
import torch

from edgestream.core.errors import ConfigError, DataError, StateError
from edgestream.models import create_model, list_models
from edgestream.models.layers.spiking import SpikeStats
from edgestream.testing import random_splits, randomize_norm_stats

FAMILY = list_models(family="lmuformer")
MODES = ("causal", "delayed")
# Small configurations of each constructor kind (the registry decides which one a variant takes).
SMALL_FORMER = {"in_channels": 5, "n_classes": 3, "dim": 16, "memory": 24, "theta": 20.0, "max_len": 32}
SMALL_CLASSIFIER = {"in_channels": 2, "n_classes": 3, "hidden": 12, "memory": 20, "theta": 30.0, "max_len": 32}
TOL = {torch.float64: 1e-9, torch.float32: 1e-5}


def small(name: str, mode: str = "causal", dtype: torch.dtype = torch.float64, seed: int = 0):
    torch.manual_seed(seed)
    try:
        model = create_model(name, mode=mode, **SMALL_FORMER)
    except ConfigError:
        model = create_model(name, mode=mode, **SMALL_CLASSIFIER)
    model = model.to(dtype)
    randomize_norm_stats(model, seed)
    with torch.no_grad():  # larger weights than the training init so every spiking layer fires
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(0.0, 0.5)
    return model.eval()


def frames(model, n: int = 60, batch: int = 2, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, model.in_channels, generator=gen, dtype=torch.float64) * 2
    return x.to(next(model.parameters()).dtype)


def run_chunks(model, x: torch.Tensor, sizes: list[int], state=None):
    out, start = [], 0
    for n in sizes:
        y, state = model(x[:, start : start + n], state)
        out.append(y)
        start += n
    return torch.cat(out, 1), state


def close(a: torch.Tensor, b: torch.Tensor, tol: float) -> None:
    scale = max(1.0, float(b.abs().max()))
    assert float((a - b).abs().max()) <= tol * scale, float((a - b).abs().max())


def test_family_is_registered():
    assert {"lmuformer_scv2", "spiking_lmuformer_scv2", "lmuformer_eeg_s", "spiking_lmuformer_eeg_s", "lmuformer_psmnist"} <= set(FAMILY)


@pytest.mark.parametrize(
    "name,count", [("lmuformer_scv2", 1_621_796), ("spiking_lmuformer_scv2", 1_689_894), ("lmuformer_psmnist", 166_798)]
)
def test_parameter_counts(name, count):
    assert sum(p.numel() for p in create_model(name).parameters()) == count


@pytest.mark.parametrize("name", ["lmuformer_eeg_s", "spiking_lmuformer_eeg_s"])
def test_eeg_variants_take_eeg_channels(name):
    model = create_model(name, in_channels=32, n_classes=2)
    y, state = model(torch.randn(1, 10, 32))
    assert y.shape == (1, 10, 4) and model.delay == 0 and state["frames"].tolist() == [10]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", FAMILY)
def test_parallel_equals_recurrent_equals_chunked(name, mode, dtype, rng):
    model = small(name, mode, dtype)
    x = frames(model)
    T, d, k = x.shape[1], model.delay, model.n_classes
    with torch.no_grad():
        par = model.parallel(x)  # (B, T, K) the whole-sequence model
        full, _ = model(x)
        steps, state = [], None
        for t in range(T):
            y, state = model.step(x[:, t], state)
            steps.append(y)
        stepped = torch.stack(steps, 1)
        chunked = [run_chunks(model, x, random_splits(T, rng, max_chunk=m))[0] for m in (3, 17, 40)]
    frame, running = model.split_outputs(full)
    close(frame[:, d:], par[:, : T - d], TOL[dtype])  # delayed: exactly the parallel model, d frames late
    close(running[:, -1], par[:, : T - d].mean(1), TOL[dtype])
    close(stepped, full, TOL[dtype])
    for y in chunked:
        close(y, full, TOL[dtype])
    assert torch.equal(full[:, :d], torch.zeros(2, d, 2 * k, dtype=dtype))  # placeholders, not invented


@pytest.mark.parametrize("name", [n for n in FAMILY if "spiking" in n])
def test_every_spiking_layer_fires_in_the_equivalence_setup(name):
    model = small(name)
    stats = SpikeStats()
    with torch.no_grad():
        model.parallel(frames(model), stats=stats)
    rates = {row["layer"]: row["spike_rate"] for row in stats.report()}
    assert len(rates) == 11  # 4 embedding, 4 LMU mixer, 2 channel mixer, 1 head
    assert all(0 < r < 1 for r in rates.values()), rates
    assert stats.total_sops > 0 and stats.samples == 120


@pytest.mark.parametrize("name", [n for n in FAMILY if "psmnist" not in n])
def test_lookahead_causal_zero_delayed_five(name):
    """Perturbing frame t0 changes outputs from t0 (causal) or t0 − 5 (delayed) on, never earlier."""
    t0 = 30
    for mode, reach in (("causal", 0), ("delayed", 5)):
        model = small(name, mode)
        x = frames(model)
        x2 = x.clone()
        x2[:, t0] += 5.0
        with torch.no_grad():
            diff = (model.parallel(x) - model.parallel(x2)).abs().amax(dim=(0, 2))
        assert model.delay == reach
        assert float(diff[: t0 - reach].max()) == 0.0
        assert float(diff[t0 - reach]) > 0.0


@pytest.mark.parametrize("name", ["spiking_lmuformer_eeg_s", "lmuformer_eeg_s"])
@pytest.mark.parametrize("mode", MODES)
def test_state_round_trips_through_torch_save(name, mode):
    model = small(name, mode)
    x = frames(model)
    with torch.no_grad():
        whole, _ = model(x)
        first, state = model(x[:, :23])
        buf = io.BytesIO()
        torch.save(state, buf)
        buf.seek(0)
        restored = torch.load(buf, weights_only=True)
        second, end = model(x[:, 23:], restored)
        uninterrupted, end_ref = model(x[:, 23:], state)
    assert restored.keys() == state.keys() and all(torch.equal(restored[k], state[k]) for k in state)
    assert torch.equal(second, uninterrupted) and all(torch.equal(end[k], end_ref[k]) for k in end)
    close(torch.cat([first, second], 1), whole, 1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_two_streams_never_share_state(mode):
    model = small("spiking_lmuformer_eeg_s", mode)
    a, b = frames(model, batch=1, seed=1), frames(model, batch=1, seed=2)
    sizes = [7] * 8 + [4]
    with torch.no_grad():
        alone_a, _ = run_chunks(model, a, sizes)
        alone_b, _ = run_chunks(model, b, sizes)
        # interleaved chunks of two streams through one model, each with its own state
        sa = sb = None
        outs_a, outs_b = [], []
        for start in range(0, 60, 7):
            ya, sa = model(a[:, start : start + 7], sa)
            yb, sb = model(b[:, start : start + 7], sb)
            outs_a.append(ya)
            outs_b.append(yb)
        batched, _ = model(torch.cat([a, b]))
    assert torch.equal(torch.cat(outs_a, 1), alone_a) and torch.equal(torch.cat(outs_b, 1), alone_b)
    close(batched, torch.cat([alone_a, alone_b]), 1e-12)
    assert not torch.equal(alone_a, alone_b)


def test_state_mismatches_raise_clear_errors():
    model = small("spiking_lmuformer_eeg_s", "delayed")
    x = frames(model, n=8)
    _, state = model(x[:1])
    with pytest.raises(StateError, match=r"must have shape \(2,\) for batch 2; got \(1,\).*init_state\(batch=2\)"):
        model(x, state)
    other = small("lmuformer_eeg_s", "delayed")
    with pytest.raises(StateError, match=r"missing \[.*'blocks.0.token.lif_h'.*\]"):
        model(x, other.init_state(2))
    bad = other.init_state(2) | {"embed.convs.0": torch.zeros(2, 6, 2, dtype=x.dtype)}
    with pytest.raises(StateError, match=r"state\['embed.convs.0'\] for LMUFormer must have shape \(2, 5, 2\) for batch 2; got \(2, 6, 2\)"):
        other(x, bad)
    state = model.init_state(2)
    state["frames"] = torch.tensor([0, 3])
    with pytest.raises(StateError, match=r"state\['frames'\] must be equal across the batch.*got \[0, 3\]"):
        model(x, state)
    with pytest.raises(DataError, match=r"x must be a tensor \(B, T, 5\).*got \(2, 8, 4\)"):
        model(x[..., :4])


def test_empty_chunk_is_harmless():
    model = small("lmuformer_eeg_s", "delayed")
    x = frames(model, n=12)
    with torch.no_grad():
        y0, s0 = model(x[:, :0])
        y, _ = model(x, s0)
        ref, _ = model(x)
    assert y0.shape == (2, 0, 6) and torch.equal(y, ref)


def test_fresh_models_are_in_eval_mode_and_accept_device_dtype():
    model = create_model("lmuformer_eeg_s", dtype=torch.float64)
    assert not model.training and next(model.parameters()).dtype == torch.float64
    assert model.blocks[0].token.memory.A.dtype == torch.float64
    model2 = create_model("spiking_lmuformer_eeg_s", mode="delayed")
    assert model2.warmup == 128 + 5


def test_unknown_override_lists_valid_keys():
    with pytest.raises(ConfigError, match="unknown key 'thetaa'.*Did you mean 'theta'"):
        create_model("lmuformer_eeg_s", thetaa=3)
    with pytest.raises(ConfigError, match="mode must be one of 'causal', 'delayed'"):
        create_model("lmuformer_eeg_s", mode="lookahead")


@pytest.mark.parametrize("name", ["lmuformer_eeg_s", "spiking_lmuformer_eeg_s"])
def test_training_with_shared_loop_and_checkpoint_round_trip(tmp_path, name):
    from edgestream.train import TrainConfig, fit, load_checkpoint, save_checkpoint

    gen = torch.Generator().manual_seed(0)
    n, T, C = 96, 24, 4
    y = torch.randint(0, 2, (n,), generator=gen)
    x = torch.randn(n, T, C, generator=gen) * 0.5
    x[:, :, 0] += (y.float() * 2 - 1)[:, None]  # class shows in channel 0
    overrides = {"in_channels": C, "n_classes": 2, "dim": 8, "memory": 8, "theta": 16.0, "max_len": 32}
    torch.manual_seed(0)
    model = create_model(name, **overrides)
    result = fit(model, (x[:64], y[:64]), (x[64:], y[64:]),
                 TrainConfig(loss="bce", epochs=10, batch_size=16, lr=2e-2, patience=None, progress=False))
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    assert result.best_score > 0.9  # the class is plainly visible in channel 0
    path = save_checkpoint(tmp_path / "m.pt", model, name, overrides)
    loaded, _ = load_checkpoint(path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x[:3])[0], model(x[:3])[0], rtol=0, atol=0)


def test_spike_report_totals():
    from edgestream.models.spiking_lmuformer import spike_report

    model = small("spiking_lmuformer_eeg_s")
    rep = spike_report(model, frames(model, n=40))
    assert len(rep["layers"]) == 11 and 0 < rep["mean_rate"] < 1
    assert rep["sops_per_frame"] == pytest.approx(sum(r["sops"] for r in rep["layers"]) / 80)
    dense = sum(r["neurons"] * r["fanout"] for r in rep["layers"])
    assert rep["dense_ops_per_frame"] == dense and 0 < rep["sops_fraction_of_dense"] < 1
