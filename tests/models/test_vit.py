"""ViT invariants: masks, physical pruning, the reference attention, checkpoints, input errors."""

from __future__ import annotations

import pytest
import torch

from edgestream.core.errors import ConfigError, DataError
from edgestream.models import create_model, list_models
from edgestream.models.vit import attention_reference
from edgestream.train import load_checkpoint, save_checkpoint

SMALL = {"vit_tiny_28": {}, "vit_small_28": {}, "vit_tiny_224": {"depth": 2}, "vit_small_224": {"depth": 1}}


def _model(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **SMALL[name]).eval()


def _images(model, n: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.rand((n, *model.input_shape), generator=torch.Generator().manual_seed(seed))


def test_every_vit_variant_is_registered_as_vision():
    assert set(SMALL) == set(list_models(family="vit"))
    assert set(SMALL) <= set(list_models(kind="vision"))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_all_ones_masks_equal_the_dense_model(name):
    model = _model(name)
    x = _images(model, 2)
    heads, neurons = model.ones_masks()
    with torch.no_grad():
        torch.testing.assert_close(model(x, heads, neurons), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["vit_tiny_28", "vit_small_28", "vit_tiny_224"])
def test_removing_heads_and_neurons_equals_masking_them(name):
    model = _model(name)
    x = _images(model)
    gen = torch.Generator().manual_seed(7)
    heads, neurons = model.ones_masks()
    for h, m in zip(heads, neurons):
        h[torch.randperm(len(h), generator=gen)[: len(h) // 2]] = 0  # half the heads of every block
        m[torch.randperm(len(m), generator=gen)[: len(m) // 3]] = 0
    keep_h = [torch.nonzero(h).flatten().tolist() for h in heads]
    keep_n = [torch.nonzero(m).flatten().tolist() for m in neurons]
    pruned = model.prune(keep_h, keep_n)
    assert pruned.n_heads == [len(k) for k in keep_h] and pruned.mlp_hidden == [len(k) for k in keep_n]
    assert pruned.n_params() < model.n_params()
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), model(x, heads, neurons), rtol=1e-5, atol=1e-5)


def test_removing_one_head_equals_zero_masking_that_head():
    model = _model("vit_tiny_28")
    x = _images(model)
    for block in range(len(model.blocks)):
        for head in range(model.n_heads[block]):
            heads, _ = model.ones_masks()
            heads[block][head] = 0
            keep = [list(range(h)) for h in model.n_heads]
            keep[block].remove(head)
            pruned = model.prune(keep, [list(range(m)) for m in model.mlp_hidden])
            with torch.no_grad():
                torch.testing.assert_close(pruned(x), model(x, heads), rtol=1e-5, atol=1e-5)


def test_a_block_with_every_head_and_neuron_removed_still_matches_masks():
    model = _model("vit_tiny_28")
    x = _images(model)
    heads, neurons = model.ones_masks()
    heads[1].zero_()
    neurons[2].zero_()
    keep_h = [list(range(h)) for h in model.n_heads]
    keep_n = [list(range(m)) for m in model.mlp_hidden]
    keep_h[1], keep_n[2] = [], []
    pruned = model.prune(keep_h, keep_n)
    assert pruned.n_heads[1] == 0 and pruned.mlp_hidden[2] == 0
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), model(x, heads, neurons), rtol=1e-5, atol=1e-5)


def test_fast_attention_equals_the_reference():
    model = _model("vit_tiny_28")
    tokens = torch.randn(2, model.n_patches + 1, model.dim, generator=torch.Generator().manual_seed(3))
    attn = model.blocks[0].attn
    mask = torch.tensor([1.0, 0.0, 1.0, 0.5])
    with torch.no_grad():
        torch.testing.assert_close(attn(tokens, mask), attention_reference(tokens, attn, mask), rtol=1e-5, atol=1e-6)


def test_pruned_model_round_trips_through_a_checkpoint(tmp_path):
    model = _model("vit_tiny_28")
    pruned = model.prune([[0, 2], [1], [0, 1, 3], []], [list(range(0, 128, 2)), [5], list(range(10)), list(range(128))]).with_head(4)
    path = save_checkpoint(tmp_path / "sub.pt", pruned, "vit_tiny_28", pruned.config)
    loaded, _ = load_checkpoint(path)
    x = _images(model)
    assert loaded.n_heads == [2, 1, 3, 0] and loaded.mlp_hidden == [64, 1, 10, 128]
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), pruned.eval()(x))


def test_size_and_flops_shrink_with_pruning():
    model = _model("vit_tiny_28")
    pruned = model.prune([[0]] * 4, [[0]] * 4)
    assert pruned.size_bytes() == pruned.n_params() * 4
    assert pruned.flops() < model.flops() / 4


def test_wrong_image_shape_is_a_clear_error():
    model = _model("vit_tiny_28")
    with pytest.raises(DataError, match=r"images must have shape \(B, 1, 28, 28\); got \(2, 3, 28, 28\)"):
        model(torch.zeros(2, 3, 28, 28))


def test_bad_prune_indices_are_a_clear_error():
    model = _model("vit_tiny_28")
    with pytest.raises(ConfigError, match=r"keep_heads\[0\] must hold distinct indices in \[0, 4\); got \[0, 9\]"):
        model.prune([[0, 9], [0], [0], [0]], [[0]] * 4)
    with pytest.raises(ConfigError, match="patch_size must divide img_size"):
        create_model("vit_tiny_28", patch_size=5)
