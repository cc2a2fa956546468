"""DBConformer: parameter counts, window validation, attention fidelity, variants."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgestream.core.errors import ConfigError, ValidationError
from edgestream.models import create_model, list_models
from edgestream.models.dbconformer import ChannelAttentionPool, DBConformer, MultiHeadSelfAttention, dbconformer_for


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_count_matches_paper_bnci2014001():
    assert n_params(create_model("dbconformer_bnci2014001")) == 93_747
    assert n_params(dbconformer_for(22, 250.0, 4.0, 2)) == 93_747


@pytest.mark.parametrize("n_channels,n_classes", [(22, 2), (22, 4), (64, 2), (3, 3)])
def test_parameter_count_scales_with_channels_and_classes(n_channels, n_classes):
    # Per extra channel: a 1x1-conv column (D=40) and a channel embedding row (40); per class: 32 + 1.
    expected = 93_747 + (n_channels - 22) * 80 + (n_classes - 2) * 33
    assert n_params(DBConformer(n_channels=n_channels, n_classes=n_classes)) == expected


def test_eegmmidb_variant_shapes():
    model = create_model("dbconformer_eegmmidb").eval()
    assert (model.n_channels, model.n_times, model.patch, model.n_tokens) == (64, 640, 80, 8)
    features, logits = model(torch.randn(3, 64, 640))
    assert features.shape == (3, 80) and logits.shape == (3, 2)


@pytest.mark.parametrize("name", list_models(family="dbconformer"))
def test_every_variant_builds_and_runs_its_window(name):
    model = create_model(name).eval()
    features, logits = model(model.example_input(2))
    assert features.shape == (2, 2 * model.config["dim"]) and logits.shape == (2, model.n_classes)
    assert torch.isfinite(logits).all()


def test_window_length_must_be_tokens_times_patch():
    model = create_model("dbconformer_bnci2014001")
    with pytest.raises(ValidationError, match=r"window length must be exactly 1000 samples \(8 tokens x patch 125\); got 1001"):
        model(torch.zeros(1, 22, 1001))
    with pytest.raises(ValidationError, match=r"got 1125 samples\. 1125 samples are 9 patches: build the model with n_tokens=9"):
        model(torch.zeros(1, 22, 1125))
    with pytest.raises(ValidationError, match=r"must have 22 channels .* got 21"):
        model(torch.zeros(1, 21, 1000))
    with pytest.raises(ValidationError, match=r"batch of windows \(B, C, T\); got shape \(22, 1000\)"):
        model(torch.zeros(22, 1000))


def test_factory_sizes_from_stream_and_lists_valid_windows():
    model = dbconformer_for(64, 160.0, 4.0, 2)
    assert (model.n_tokens, model.patch) == (8, 80)
    assert dbconformer_for(8, 250.0, 2.0, 3).config | {} == DBConformer(n_channels=8, n_classes=3, n_tokens=4, patch=125).config
    with pytest.raises(ConfigError, match=r"window must be a whole number of 80-sample patches .*got 4\.1 s = 656 samples\. "
                                          r"Valid windows near it: 640 samples \(4 s\) or 720 samples \(4\.5 s\)"):
        dbconformer_for(64, 160.0, 4.1, 2)
    with pytest.raises(ConfigError, match="n_classes must lie in"):
        dbconformer_for(64, 160.0, 4.0, 1)


def _torch_mha(ours: MultiHeadSelfAttention, dim: int, heads: int, q_gain: float) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.query.weight * q_gain, ours.key.weight, ours.value.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.query.bias * q_gain, ours.key.bias, ours.value.bias]))
        ref.out_proj.weight.copy_(ours.out.weight)
        ref.out_proj.bias.copy_(ours.out.bias)
    return ref.eval()


@pytest.mark.parametrize("scale", ["head", "embed"])
def test_attention_equals_torch_mha_with_its_scale(scale):
    torch.manual_seed(0)
    dim, heads = 40, 10
    ours = MultiHeadSelfAttention(dim, heads, dropout=0.0, scale=scale).eval()
    # torch scales by 1/sqrt(head_dim); the reference's 1/sqrt(D) is the same as shrinking Q by sqrt(head_dim/D).
    gain = 1.0 if scale == "head" else (dim // heads / dim) ** 0.5
    ref = _torch_mha(ours, dim, heads, gain)
    x = torch.randn(3, 7, dim)
    expected, _ = ref(x, x, x, need_weights=False)
    torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-6)


def test_attention_scale_option_changes_the_model():
    torch.manual_seed(0)
    a = DBConformer(attention_scale="embed").eval()
    b = DBConformer(attention_scale="head").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 22, 1000)
    assert not torch.allclose(a(x)[1], b(x)[1])
    with pytest.raises(ConfigError, match="attention_scale must be one of 'embed', 'head'"):
        DBConformer(attention_scale="dim")


def test_channel_attention_pool_is_a_softmax_weighted_mean():
    torch.manual_seed(0)
    pool = ChannelAttentionPool(40)
    s = torch.randn(2, 5, 40)
    scores = pool.score(torch.tanh(pool.hidden(s)))  # (B, C, 1)
    alpha = torch.softmax(scores, dim=1)
    torch.testing.assert_close(pool(s), (alpha * s).sum(1))
    # channel order does not matter to the pooled feature
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(pool(s[:, perm]), pool(s), rtol=1e-5, atol=1e-6)


def test_eval_predictions_do_not_depend_on_the_batch():
    torch.manual_seed(0)
    model = create_model("dbconformer_eegmmidb").eval()
    x = torch.randn(4, 64, 640)
    with torch.no_grad():
        together = model(x)[1]
        alone = torch.cat([model(x[i : i + 1])[1] for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_training_step_reduces_loss_on_a_separable_toy_problem():
    torch.manual_seed(0)
    model = DBConformer(n_channels=4, n_classes=2, n_tokens=4, patch=25, dropout=0.0, head_dropout=0.0)
    x = torch.randn(16, 4, 100)
    y = torch.arange(16) % 2
    x[y == 1, 0] += 2.0  # class 1 has a much larger channel 0
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x)[1], y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
