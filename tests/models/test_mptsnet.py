"""MPTSNet: segment layouts, layers against their reference forms, shapes, gradients, ONNX, periods stored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgestream.core import ConfigError, DataError, StateError
from edgestream.dsp.periods import amplitude_spectrum, nearest_bins
from edgestream.models import create_model, list_models
from edgestream.models.layers.inception import InceptionCBAM, InceptionCNN, InceptionConv1d
from edgestream.models.mptsnet import MPTSNet, from_segments, segment_index, to_segments
from edgestream.train.checkpoint import load_checkpoint, save_checkpoint

# small enough for fast tests; same structure as the paper model
SMALL = {"in_channels": 3, "n_classes": 4, "seq_len": 20, "periods": [7, 5, 3], "d_model": 16, "d_window": 32,
         "d_ff": 32, "cnn_hidden": 24}


def small(**kw) -> MPTSNet:
    torch.manual_seed(0)
    return MPTSNet(**(SMALL | kw))


def test_segment_layouts_on_the_spec_example():
    # p = 4, T = L = 12: contiguous [0,1,2,3], [4,5,6,7], [8,9,10,11]; the reference's strided [0,3,6,9], ...
    assert segment_index(12, 4, "contiguous").tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert segment_index(12, 4, "strided").tolist() == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("length,period", [(12, 4), (10, 4), (29, 7), (20, 1), (20, 20)])
def test_to_segments_follows_the_index_and_inverts(layout, length, period):
    x = torch.arange(2 * 3 * length, dtype=torch.float32).reshape(2, 3, length) + 1  # 0 marks padding below
    seg = to_segments(x, period, layout)  # (B, n, D, p)
    index = segment_index(length, period, layout)
    padded = torch.nn.functional.pad(x, (0, index.numel() - length))
    expected = padded[:, :, index].permute(0, 2, 1, 3)  # (B, D, n, p) -> (B, n, D, p)
    torch.testing.assert_close(seg, expected, rtol=0, atol=0)
    torch.testing.assert_close(from_segments(seg, length, layout), x, rtol=0, atol=0)


def test_inception_fast_path_equals_six_convolutions():
    torch.manual_seed(0)
    conv = InceptionConv1d(5, 7, n_kernels=6)
    for c in conv.kernels:  # non-zero biases, so bias averaging is checked too
        torch.nn.init.normal_(c.bias)
    x = torch.randn(4, 5, 9, dtype=torch.float64)
    conv = conv.double()
    torch.testing.assert_close(conv(x), conv.forward_ref(x), rtol=1e-10, atol=1e-10)
    block = InceptionCBAM(5, 32).double()
    torch.testing.assert_close(block(x), block.forward_ref(x), rtol=1e-10, atol=1e-10)
    cnn = InceptionCNN(5, 16).double()
    for length in (1, 3, 5, 6, 9):  # shorter than the widest kernel: the fast path crops the kernel
        xs = x[..., :length]
        torch.testing.assert_close(conv(xs), conv.forward_ref(xs), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(cnn(xs), cnn.forward_ref(xs), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(cnn(xs, cnn.fused()), cnn.forward_ref(xs), rtol=1e-10, atol=1e-10)
    # same gradients for each kernel whichever path computed the output
    g_fast = torch.autograd.grad(conv(x).square().sum(), [c.weight for c in conv.kernels])
    g_ref = torch.autograd.grad(conv.forward_ref(x).square().sum(), [c.weight for c in conv.kernels])
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_shapes_and_every_parameter_gets_a_gradient(layout):
    model = small(layout=layout).train()
    assert model.example_input(2).shape == (2, 3, 20)
    x = torch.randn(5, 3, 20)
    logits = model(x)
    assert logits.shape == (5, 4)
    assert model.features(x).shape == (5, 16 * 20)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3, 0])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


def test_layouts_differ_but_share_parameters():
    x = torch.randn(2, 3, 20)
    a, b = small(layout="contiguous").eval(), small(layout="strided").eval()
    b.load_state_dict(a.state_dict())
    assert not torch.allclose(a(x), b(x))


def test_paper_sizes_follow_the_clamp_rules():
    assert MPTSNet(in_channels=12, seq_len=29).d_model == 64 and MPTSNet(in_channels=12, seq_len=29).d_window == 256
    wide = MPTSNet(in_channels=100, n_classes=2, seq_len=8, periods=[4], cnn_hidden=8)
    assert (wide.d_model, wide.d_window) == (256, 512)


def test_period_weights_are_fft_amplitudes_of_the_block_input():
    model = small().eval()
    h = model.embedding(torch.randn(3, 3, 20))
    block = model.blocks[0]
    spec = amplitude_spectrum(h.detach().double().numpy().mean(axis=1), axis=-1)[:, nearest_bins(20, [7, 5, 3])]
    expected = torch.softmax(torch.from_numpy(spec), dim=1)
    torch.testing.assert_close(block.weights(h).double(), expected, rtol=1e-4, atol=1e-6)
    assert not block.weights(h.requires_grad_()).requires_grad


def test_registered_variants_build_and_run():
    names = list_models(family="mptsnet")
    assert {"mptsnet", "mptsnet_strided", "mptsnet_compact"} <= set(names)
    compact = create_model("mptsnet_compact", in_channels=3, n_classes=4, seq_len=20, periods=[7, 5, 3])
    assert compact(torch.randn(2, 3, 20)).shape == (2, 4)
    paper = create_model("mptsnet", in_channels=3, n_classes=4, seq_len=20, periods=[7, 5, 3])
    n_compact = sum(p.numel() for p in compact.parameters())
    assert n_compact * 10 < sum(p.numel() for p in paper.parameters())
    assert create_model("mptsnet_strided").layout == "strided"
    with pytest.raises(ConfigError, match="unknown key 'd_modle'.*Did you mean 'd_model'"):
        create_model("mptsnet", d_modle=8)


def test_onnx_export_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = small().eval()
    x = torch.randn(3, 3, 20)
    path = tmp_path / "mptsnet.onnx"
    with torch.inference_mode():
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}}, dynamo=False)
        expected = model(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    got_one = session.run(None, {"x": x[:1].numpy()})[0]  # batch axis is dynamic
    np.testing.assert_allclose(got_one, expected[:1], rtol=1e-4, atol=1e-5)


def test_periods_are_stored_with_the_model(tmp_path):
    model = small()
    assert model.state_dict()["period_table"].tolist() == [7, 5, 3]
    path = save_checkpoint(tmp_path / "m.pt", model, "mptsnet", model.config)
    loaded, blob = load_checkpoint(path)
    assert loaded.periods == (7, 5, 3) and blob["manifest"]["config"]["periods"] == [7, 5, 3]
    x = torch.randn(2, 3, 20)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    with pytest.raises(StateError, match=r"checkpoint periods must match the model's periods \[6, 5, 3\]; got \[7, 5, 3\]"):
        small(periods=[6, 5, 3]).load_state_dict(model.state_dict())


def test_input_and_config_errors():
    model = small()
    with pytest.raises(DataError, match=r"x must have shape \(batch, 3, 20\) \(channels, time steps\); got shape \(2, 20, 3\)"):
        model(torch.randn(2, 20, 3))
    with pytest.raises(ConfigError, match=r"periods must be distinct integers in \[1, seq_len=20\]; got \[7, 7\]"):
        small(periods=[7, 7])
    with pytest.raises(ConfigError, match=r"periods must be distinct integers in \[1, seq_len=20\]; got \[30\]"):
        small(periods=[30])
    with pytest.raises(ConfigError, match="layout must be one of 'contiguous', 'strided'; got 'stride'"):
        small(layout="stride")
    with pytest.raises(ConfigError, match="heads must divide the embedding size 16; got 3"):
        small(n_heads=3)
