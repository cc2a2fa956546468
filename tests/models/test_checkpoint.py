"""Checkpoints read through the models factory: ``create_model(name, checkpoint=...)``,
``load_checkpoint``, weight-mismatch and wrong-model errors, and the training package's
re-exports being the same functions (one implementation, two import paths)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import edgestream.train
from edgestream.core.errors import ConfigError
from edgestream.core.provenance import file_sha256, git_revision, to_plain
from edgestream.models import create_model, load_checkpoint, model_from_checkpoint, read_checkpoint
from edgestream.train import save_checkpoint
from edgestream.train import checkpoint as train_checkpoint


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    model = create_model("reference_conv", in_channels=4, n_classes=3, seed=1)
    path = save_checkpoint(tmp_path / "ref.pt", model, "reference_conv", {"in_channels": 4, "n_classes": 3, "seed": 1},
                           data={"classes": ["a", "b", "c"]})
    return path, model


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_create_model_from_checkpoint_rebuilds_the_saved_model(saved):
    path, original = saved
    model = create_model("reference_conv", checkpoint=path)
    assert _same_weights(model, original) and not model.training
    assert model.head.out_features == 3 and model.in_channels == 4  # configuration from the manifest
    x = torch.randn(2, 4, 64)  # (B, C, T)
    torch.testing.assert_close(model(x), original(x))


def test_create_model_from_checkpoint_applies_overrides_and_dtype(saved):
    path, _ = saved
    model = create_model("reference_conv", checkpoint=str(path), seed=None, dtype=torch.float64)
    assert next(model.parameters()).dtype == torch.float64


def test_create_model_refuses_a_checkpoint_of_another_model(saved):
    path, _ = saved
    with pytest.raises(ConfigError, match=r"must hold model 'gru_stream'; its manifest names 'reference_conv'\. "
                                          r"Pass 'reference_conv' as the name, or use load_checkpoint"):
        create_model("gru_stream", checkpoint=path)


def test_load_checkpoint_returns_model_and_manifest(saved):
    path, original = saved
    model, blob = load_checkpoint(path)
    assert _same_weights(model, original)
    assert blob["manifest"]["model"] == "reference_conv" and blob["manifest"]["data"]["classes"] == ["a", "b", "c"]
    shipped = model_from_checkpoint(read_checkpoint(path), where="shipped")
    assert _same_weights(shipped, original)


def test_weights_that_do_not_fit_name_the_checkpoint(saved):
    path, _ = saved
    blob = read_checkpoint(path)
    del blob["state_dict"]["head.bias"]
    with pytest.raises(ConfigError, match=r"checkpoint 'edited' must match model 'reference_conv'; missing keys \['head.bias'\]"):
        model_from_checkpoint(blob, where="edited")


def test_missing_checkpoint_message(tmp_path):
    with pytest.raises(ConfigError, match="checkpoint must be an existing file; got .*Train one with `edgestream train`"):
        create_model("reference_conv", checkpoint=tmp_path / "nope.pt")


def test_training_reexports_are_the_models_functions():
    # users' `edgestream.train.load_checkpoint` keeps working, with no second implementation
    assert edgestream.train.load_checkpoint is load_checkpoint
    assert edgestream.train.read_checkpoint is read_checkpoint
    assert train_checkpoint.model_from_checkpoint is model_from_checkpoint
    assert train_checkpoint.file_sha256 is file_sha256 and train_checkpoint.git_revision is git_revision


def test_provenance_helpers(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    assert file_sha256(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert git_revision(tmp_path) == "unknown"  # not a git work tree
    text = json.dumps({"a": np.float32(1.5), "b": np.arange(3), "p": Path("/x")}, default=to_plain)
    assert json.loads(text) == {"a": 1.5, "b": [0, 1, 2], "p": "/x"}
