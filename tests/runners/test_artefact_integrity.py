"""Cached ONNX artefacts are verified, not trusted (issue 17, point 3).

The manifest records the sha256 of ``model.onnx``; a swapped, truncated or unreadable file, or a
missing or unparsable manifest, is found on the next use and exported again with a warning that
names the model and the file; code or version changes give a new digest (a new artefact). Where
no model is at hand to export again, the error names the file and the fix.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
import sys

import numpy as np
import pytest
import torch

from edgestream.models import create_model
from edgestream.runners.artefact import EXPORT_VERSION, Artefact, ArtefactError, code_modules, read_artefact
from edgestream.runners.backend import OrtBackend, OrtStreamingBackend, open_session
from edgestream.runners.export import export_onnx

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESTREAM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "engines"


def fresh(name: str):
    torch.manual_seed(0)
    return create_model(name).float().eval()


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_records_sha256_size_versions_and_code():
    import onnx
    import onnxruntime

    art = export_onnx(fresh("gru_stream_s"), "gru_stream_s", chunk=2)
    m = art.manifest
    assert m["sha256"] == sha256(art.path) and m["size"] == art.path.stat().st_size
    assert m["versions"]["onnx"] == onnx.__version__ and m["versions"]["onnxruntime"] == onnxruntime.__version__
    assert m["versions"]["export_version"] == str(EXPORT_VERSION) == "4"
    assert set(m["key"]["modules"]) == {"edgestream.models.base", "edgestream.models.gru_stream", "edgestream.models.registry"}
    assert m["key"]["class"] == "edgestream.models.gru_stream.GRUStream"
    assert json.loads((art.path.parent / "manifest.json").read_text())["sha256"] == m["sha256"]


def test_code_modules_follow_layers_and_imported_helpers():
    mods = code_modules(fresh("mptsnet_compact"))
    # the model's module, its layers' modules, and the DFT helpers its module imports from edgestream.dsp
    assert {"edgestream.models.mptsnet", "edgestream.models.layers.inception", "edgestream.dsp.periods"} <= set(mods)
    assert not [m for m in mods if m.startswith(("torch", "edgestream.core"))]


def test_swapped_artefact_is_reexported_and_predicts_like_torch_again(caplog):
    model, other = fresh("gru_stream_s"), fresh("gru_stream_s")
    with torch.no_grad():
        other.head.bias.add_(1.0)  # same graph, other weights: a file of the same size
    cached = export_onnx(model, "gru_stream_s", chunk=1)
    shutil.copyfile(export_onnx(other, "gru_stream_s", chunk=1).path, cached.path)
    x = np.random.default_rng(2).standard_normal((1, 12, 8)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x))[0].numpy()
    import onnxruntime

    unchecked = onnxruntime.InferenceSession(str(cached.path), providers=["CPUExecutionProvider"])
    y0 = unchecked.run(None, {"x": x[:, :1], "state_in.h": np.zeros((1, 2, 64), np.float32)})[0]
    assert np.abs(y0 - ref[:, :1]).max() > 0.5  # what the swap did before: other predictions, silently
    messages: list[str] = []
    with caplog.at_level(logging.WARNING, logger="edgestream.runners.export"):
        backend = OrtStreamingBackend(model, "gru_stream_s", chunk=1, progress=messages.append)
    assert f"gru_stream_s: the cached fp32 ONNX model {cached.path} is damaged: model.onnx's sha256 " in caplog.text
    assert "(the file was swapped or modified); exporting it again" in caplog.text
    assert f"gru_stream_s: re-exported fp32 ONNX model {cached.path} (the cached one was damaged: " in "\n".join(messages)
    assert backend.artefacts[1].path == cached.path and sha256(cached.path) == cached.manifest["sha256"]
    y, _ = backend(x, backend.init_state(1))
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))


def test_truncated_artefact_is_reexported_with_the_message(caplog):
    model, example = fresh("reference_conv"), np.zeros((1, 64, 300), np.float32)
    cached = export_onnx(model, "reference_conv", example=example)
    size = cached.path.stat().st_size
    with open(cached.path, "r+b") as f:
        f.truncate(size // 2)
    messages: list[str] = []
    with caplog.at_level(logging.WARNING, logger="edgestream.runners.export"):
        backend = OrtBackend(model, example, model_name="reference_conv", progress=messages.append)
    problem = f"model.onnx has {size // 2:,} bytes where {size:,} were written (truncated or replaced)"
    assert f"reference_conv: the cached fp32 ONNX model {cached.path} is damaged: {problem}; exporting it again" in caplog.text
    assert f"WARNING: reference_conv: the cached fp32 ONNX model {cached.path} is damaged" in messages[0]
    assert any(m.startswith(f"reference_conv: re-exported fp32 ONNX model {cached.path}") for m in messages)
    x = np.random.default_rng(3).standard_normal((2, 64, 300)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(backend(x), ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))
    again: list[str] = []
    export_onnx(model, "reference_conv", example=example, progress=again.append)
    assert again == [f"reference_conv: using cached fp32 ONNX model {cached.path.parent}"]


@pytest.mark.parametrize("damage, problem", [
    ("missing", "manifest.json is missing"),
    ("garbled", "manifest.json cannot be parsed (JSONDecodeError: "),
    ("other", "manifest.json belongs to another artefact (digest 'feedfacefeedface', expected "),
])
def test_missing_or_unparsable_manifest_is_reexported(damage, problem, caplog):
    model = fresh("gru_stream_s")
    cached = export_onnx(model, "gru_stream_s", chunk=2)
    manifest = cached.path.parent / "manifest.json"
    if damage == "missing":
        manifest.unlink()
    elif damage == "garbled":
        manifest.write_text('{"name": "gru_stream_s", "sha2')
    else:
        manifest.write_text(json.dumps(cached.manifest | {"digest": "feedfacefeedface"}))
    with caplog.at_level(logging.WARNING, logger="edgestream.runners.export"):
        again = export_onnx(model, "gru_stream_s", chunk=2, verify=False)  # no verification asked: still exported again
    assert f"gru_stream_s: the cached fp32 ONNX model {cached.path} is damaged: {problem}" in caplog.text
    assert again.path == cached.path and again.manifest["sha256"] == sha256(again.path)
    assert json.loads(manifest.read_text())["digest"] == cached.digest


def test_damaged_int8_artefact_is_derived_again_and_verified_on_this_cpu(caplog):
    model = fresh("gru_stream_s")
    int8 = export_onnx(model, "gru_stream_s", chunk=2, precision="int8")
    int8.path.write_bytes(int8.path.read_bytes()[:100])
    messages: list[str] = []
    with caplog.at_level(logging.WARNING, logger="edgestream.runners.export"):
        again = export_onnx(model, "gru_stream_s", chunk=2, precision="int8", progress=messages.append)
    assert f"gru_stream_s: the cached int8 ONNX model {int8.path} is damaged: model.onnx has 100 bytes" in caplog.text
    assert any(m.startswith("gru_stream_s: using cached fp32 ONNX model") for m in messages)  # the sound fp32 base is kept
    assert again.path == int8.path and again.manifest["verification"]["status"] == "ok"
    assert again.manifest["verification"]["cpu"]["int8_kernel"] and again.manifest["quantization"]["per_channel"] is False


TINY = '''
import torch
from edgestream.models.base import StreamingModule


class Tiny(StreamingModule):
    in_channels = 3

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)

    def state_shapes(self, batch=1):
        return {"acc": (batch, 2)}

    def forward(self, x, state=None):  # (B, T, 3) -> (B, T, 2)
        state = state if state is not None else self.init_state(x.shape[0])
        y = self.lin(x) * SCALE
        return y, {"acc": state["acc"] + y.sum(1)}
'''


def _load_tiny(path, scale: float, monkeypatch):
    path.write_text(TINY + f"\nSCALE = {scale}\n")
    spec = importlib.util.spec_from_file_location("es_tiny_model", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "es_tiny_model", module)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    return module.Tiny().eval()


def test_changed_model_code_gives_a_new_artefact_and_says_the_old_one_is_stale(tmp_path, monkeypatch):
    first = export_onnx(_load_tiny(tmp_path / "es_tiny_model.py", 1.0, monkeypatch), "tiny", chunk=2)
    edited = _load_tiny(tmp_path / "es_tiny_model.py", 2.0, monkeypatch)  # same weights, other forward
    messages: list[str] = []
    second = export_onnx(edited, "tiny", chunk=2, progress=messages.append)
    assert second.path != first.path and second.manifest["key"]["weights"] == first.manifest["key"]["weights"]
    assert f"tiny: the cached fp32 ONNX model {first.path} is stale (code of es_tiny_model changed); exporting a new one" \
        in messages
    x = np.ones((1, 2, 3), np.float32)
    got = open_session(second).run(None, {"x": x, "state_in.acc": np.zeros((1, 2), np.float32)})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, edited(torch.from_numpy(x))[0].numpy(), rtol=1e-5, atol=1e-6)


def test_changed_onnxruntime_version_is_a_stale_artefact(monkeypatch):
    import onnxruntime

    model, installed = fresh("gru_stream_s"), onnxruntime.__version__
    first = export_onnx(model, "gru_stream_s", chunk=2, verify=False)
    monkeypatch.setattr(onnxruntime, "__version__", "0.0.1")
    messages: list[str] = []
    second = export_onnx(model, "gru_stream_s", chunk=2, verify=False, progress=messages.append)
    assert second.digest != first.digest and second.manifest["versions"]["onnxruntime"] == "0.0.1"
    assert (f"gru_stream_s: the cached fp32 ONNX model {first.path} is stale (onnxruntime {installed} -> 0.0.1); "
            "exporting a new one") in messages


def test_without_a_model_a_damaged_artefact_is_a_clear_error():
    art = export_onnx(fresh("gru_stream_s"), "gru_stream_s", chunk=2, verify=False)
    shutil.copyfile(art.path, art.path.with_name("spare.onnx"))
    art.path.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ArtefactError) as err:
        read_artefact(art.path.parent)
    assert str(err.value) == (
        f"ONNX artefact {art.path} must match the manifest.json written with it at export; got a damaged artefact: "
        f"model.onnx has 9 bytes where {art.manifest['size']:,} were written (truncated or replaced). Re-export it: "
        f"edgestream export gru_stream_s --force, or delete {art.path.parent} (edgestream then exports the model again "
        "on its next use).")
    with pytest.raises(ArtefactError, match=r"got a damaged artefact: model.onnx has 9 bytes"):
        open_session(art)  # checked before ONNX Runtime sees it


def test_a_file_onnx_runtime_cannot_load_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "gru_stream_s-fp32-T2-0123456789abcdef" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ArtefactError) as err:  # an artefact without a recorded sha256: ONNX Runtime is the check
        open_session(Artefact(path, {"name": "gru_stream_s", "digest": "0123456789abcdef", "precision": "fp32"}))
    message = str(err.value)
    assert message.startswith(f"ONNX Runtime must be able to load the artefact {path}; got ")
    assert ".. " not in message  # onnxruntime's own full stop is not doubled
    assert message.endswith(f"Re-export it: edgestream export gru_stream_s --force, or delete {path.parent} "
                            "(edgestream then exports the model again on its next use).")
