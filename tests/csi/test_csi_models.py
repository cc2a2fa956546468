"""CSI predictors: exact parameter counts, shapes, per-sample normalisation, and that every fast
layer form equals its plain PyTorch definition."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from edgestream.core.errors import DataError
from edgestream.models import create_model, list_models
from edgestream.models.layers.csi4cast import (
    ARLayer,
    CSIEmbedding,
    GridDown,
    SubpixelUp,
    depthwise3x3,
    image_to_rows,
    rows_to_image,
)
from edgestream.models.csi_predictor import count_flops


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_configurations_have_the_papers_parameter_counts():
    with torch.device("meta"):  # no memory, no init cost
        assert n_params(create_model("csi4cast_tdd")) == 21_913_750
        assert n_params(create_model("csi4cast_fdd")) == 38_636_286


def test_predictors_are_registered():
    names = set(list_models(kind="predictor"))
    assert {"csi4cast_tdd", "csi4cast_fdd", "csi4cast_edge", "csi_repeat_last", "csi_gru"} <= names


@pytest.mark.parametrize("name", ["csi4cast_tdd", "csi4cast_fdd"])
def test_paper_models_forward_shape_on_one_row(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.randn(1, 1, 16, 600)  # one sample of one antenna row: ~2 GFLOPs
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 1, 4, 600) and torch.isfinite(y).all()


@pytest.mark.parametrize("name", ["csi4cast_edge", "csi_gru", "csi_repeat_last"])
def test_small_predictors_shapes_rows_and_samples(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    t = model.hist_len
    with torch.no_grad():
        assert model(torch.randn(3, 32, t, 600)).shape == (3, 32, 4, 600)
        assert model(torch.randn(5, t, 600)).shape == (5, 4, 600)


def test_wrong_input_shape_is_a_clear_error():
    model = create_model("csi4cast_edge")
    with pytest.raises(DataError, match=r"input must be \(B, 8, 600\) or \(B, A, 8, 600\).*got shape \(2, 8, 300\)"):
        model(torch.randn(2, 8, 300))


def test_normalisation_is_per_sample_not_across_the_batch():
    torch.manual_seed(0)
    model = create_model("csi4cast_edge").eval()
    a, b = torch.randn(1, 32, 8, 600), 50.0 * torch.randn(1, 32, 8, 600)
    with torch.no_grad():
        alone = model(a)
        together = model(torch.cat([a, b]))[:1]
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)
    # after the denoiser everything sees per-sample normalised values: without it, scaling a
    # sample scales its prediction (the dataset z-score is the identity here)
    plain = create_model("csi4cast_edge", denoiser_levels=0).eval()
    with torch.no_grad():
        torch.testing.assert_close(plain(a * 10.0), plain(a) * 10.0, rtol=1e-3, atol=1e-3)


def test_repeat_last_and_data_stats_round_trip():
    model = create_model("csi_repeat_last")
    model.set_data_stats([0.5, -0.2], [2.0, 3.0])
    x = torch.randn(2, 4, 16, 600)
    torch.testing.assert_close(model(x), x[:, :, -1:].expand(-1, -1, 4, -1), rtol=1e-5, atol=1e-5)


def test_gru_residual_starts_near_repeat_last():
    torch.manual_seed(0)
    model = create_model("csi_gru")
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()
        x = torch.randn(2, 8, 16, 600)
        torch.testing.assert_close(model(x), x[:, :, -1:].expand(-1, -1, 4, -1), rtol=1e-4, atol=1e-4)


def test_edge_skip_starts_as_repeat_last_and_paper_configs_have_none():
    edge = create_model("csi4cast_edge")
    assert edge.skip is not None and float(edge.skip.weight.detach()[:, -1].sum()) == 4.0
    x = torch.randn(2, 8, 8, 600)
    with torch.no_grad():  # untrained, the edge variant is exactly repeat-last
        torch.testing.assert_close(edge.eval()(x), x[:, :, -1:].expand(-1, -1, 4, -1), rtol=1e-4, atol=1e-4)
    with torch.device("meta"):
        assert create_model("csi4cast_tdd").skip is None


# --- the fast layer forms equal their definitions -----------------------------------------------
def test_rows_image_views_round_trip():
    x = torch.randn(3, 16, 600)
    img = rows_to_image(x)
    assert img.shape == (3, 2, 16, 300) and img.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(img[:, 0], x[..., 0::2])
    torch.testing.assert_close(image_to_rows(img), x)


def test_grid_down_equals_strided_conv():
    torch.manual_seed(0)
    layer = GridDown(2, 4, 10)
    x = rows_to_image(torch.randn(3, 16, 600))
    expected = F.conv2d(x, layer.weight, layer.bias, stride=(1, 10), padding=(1, 0))
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_subpixel_up_rearranges_coarse_channels():
    torch.manual_seed(0)
    layer = SubpixelUp(4, 2, 10)
    x = torch.randn(3, 4, 16, 30)
    y = layer(x)
    coarse = layer.conv(x)  # (3, 20, 16, 30): channel r*2 + c feeds subcarrier j*10 + r, channel c
    assert y.shape == (3, 2, 16, 300)
    torch.testing.assert_close(y[:, 1, :, 7 * 10 + 3], coarse[:, 3 * 2 + 1, :, 7])


def test_depthwise_equals_grouped_conv():
    torch.manual_seed(0)
    x, w = torch.randn(2, 6, 16, 30), torch.randn(6, 1, 3, 3)
    torch.testing.assert_close(depthwise3x3(x, w), F.conv2d(x, w, padding=1, groups=6), rtol=1e-5, atol=1e-5)


def test_arl_along_time_equals_transposed_definition():
    torch.manual_seed(0)
    layer = ARLayer(16, depth=3, hidden=32, mode="multiply", out_activation="tanh", axis=1).eval()
    x = torch.randn(4, 16, 600)
    xt = x.transpose(1, 2)  # the definition: MLP and LayerNorm over the time axis as the last axis
    expected = layer.norm(layer.mlp(xt) * xt).transpose(1, 2)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activation", ["none", "tanh"])
def test_arl_single_linear_fast_path_equals_definition(activation):
    torch.manual_seed(0)
    layer = ARLayer(8, depth=1, hidden=8, mode="plain", out_activation=activation, axis=1).eval()
    with torch.no_grad():
        layer.norm.weight.uniform_(0.5, 1.5)
        layer.norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(4, 8, 600)
    expected = layer.norm(layer.mlp(x.transpose(1, 2))).transpose(1, 2)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)


def test_token_conv_equals_circular_conv1d():
    torch.manual_seed(0)
    emb = CSIEmbedding(16, 600, 32, 4, 2, 1, "se", 2, 0, 0.0, 10)
    x = torch.randn(3, 16, 600)
    expected = emb.token(x.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(emb.tokens(x), expected, rtol=1e-4, atol=1e-5)


def test_head_contraction_order_equals_head_then_time_linear():
    torch.manual_seed(0)
    model = create_model("csi4cast_edge", skip=False).eval()
    e = torch.randn(5, model.hist_len, 64)
    reference = model.time_head(model.head(e).transpose(1, 2)).transpose(1, 2)
    a, c = model.time_head.weight, model.time_head.bias
    fast = F.linear(a @ e, model.head.weight) + a.sum(dim=1)[:, None] * model.head.bias + c[:, None]
    torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-5)


def test_flop_count_of_the_paper_tdd_model_is_near_the_papers():
    with torch.device("meta"):
        model = create_model("csi4cast_tdd")
    flops = count_flops(model)
    assert 0.9 * 72.2e9 < flops < 1.05 * 72.2e9  # paper: 72.2 GFLOPs per 32-antenna sample
