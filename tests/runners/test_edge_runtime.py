"""The device profile's backend choice inside running pipelines: the `model` stage on ONNX Runtime
(fp32 and int8) gives the torch pipeline's predictions; per-model overrides pick the backend."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgestream.core.device import load_profile
from edgestream.pipeline import Engine, build, parse_pipeline
from edgestream.runners.backend import OrtBackend, TorchBackend, make_backend, provider_options


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESTREAM_CACHE", str(tmp_path))


def run_reference(data, profile):
    raw = {"pipeline": "t",
           "sources": {"src": {"kind": "array", "data": data, "sfreq": 1000.0, "chunk_size": 50, "t0": 0.0}},
           "stages": {"win": {"kind": "window", "size": 1.0, "hop": 0.25},
                      "model": {"kind": "model", "model": "reference_conv", "overrides": {"in_channels": 4}}},
           "sinks": {"mem": {"kind": "memory"}}}
    graph = build(parse_pipeline(raw), profile)
    Engine(graph, publish=False).run(duration=60)
    return graph, graph.node("mem").component.result()


@pytest.mark.parametrize("profile_name, precision", [("rpi5", "fp32"), ("rpi5", "int8"), ("jetson", None)])
def test_model_stage_on_onnxruntime_matches_torch(rng, profile_name, precision):
    data = (rng.standard_normal((4000, 4)) * 10).astype(np.float32)
    _, ref = run_reference(data, load_profile("cpu"))
    profile = load_profile(profile_name)  # jetson: falls back to CPU, ONNX Runtime fp32 (decisions logged)
    if precision:
        profile = dataclasses.replace(profile, precision=precision)
    graph, out = run_reference(data, profile)
    desc = graph.node("model").info.desc["model"]
    assert desc["backend"] == "onnxruntime" and desc["precision"] == (precision or "fp32")
    assert out.n_times == ref.n_times == 1 + (4000 - 1000) // 250
    np.testing.assert_array_equal(out.timestamps, ref.timestamps)
    if desc["precision"] == "fp32":
        np.testing.assert_allclose(out.data[:, :2], ref.data[:, :2], rtol=1e-4, atol=1e-6)
    else:  # int8 weights: probabilities move a little, decisions mostly agree
        assert np.abs(out.data[:, :2] - ref.data[:, :2]).max() < 0.05
        assert np.mean(out.data[:, 2] == ref.data[:, 2]) >= 0.9


def test_model_overrides_choose_the_backend_per_family(tmp_path):
    profile = dataclasses.replace(load_profile("cpu"), backend="torch", model_overrides={"reference": {"backend": "onnxruntime"}})
    from edgestream.models import create_model

    example = np.zeros((1, 64, 300), np.float32)
    chosen = make_backend(create_model("reference_conv"), example, profile, model_name="reference_conv")
    assert isinstance(chosen, OrtBackend) and chosen.providers == ["CPUExecutionProvider"]
    plain = make_backend(create_model("reference_conv"), example, profile, model_name=None)
    assert isinstance(plain, TorchBackend)


def test_provider_options_for_gpu_profiles(tmp_path):
    """What a Jetson session is opened with (TensorRT engine cache, fp16, device id) — built from the profile."""
    from edgestream.runners.export import Artefact

    jetson = dataclasses.replace(load_profile("jetson", resolve=False), engine_cache=str(tmp_path), torch_device="cuda:1")
    art = Artefact(tmp_path / "model.onnx", {"digest": "abc123", "precision": "fp32"})
    opts = dict(provider_options(jetson, art))
    trt = opts["TensorrtExecutionProvider"]
    assert trt["trt_engine_cache_enable"] and trt["trt_fp16_enable"] and trt["device_id"] == 1
    assert trt["trt_engine_cache_path"] == str(tmp_path / "tensorrt" / "abc123") and (tmp_path / "tensorrt" / "abc123").is_dir()
    assert opts["CUDAExecutionProvider"] == {"device_id": 1} and opts["CPUExecutionProvider"] == {}
    from edgestream.runners.backend import graph_precision

    assert graph_precision(jetson) == "fp32"  # TensorRT builds fp16 from the fp32 graph itself
    cuda_only = dataclasses.replace(jetson, onnx_providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    assert graph_precision(cuda_only) == "fp16"


def test_warm_up_is_reported_as_progress():
    from edgestream.models import create_model

    profile = dataclasses.replace(load_profile("rpi5"), precision="fp32", warmup_runs=3)
    messages: list[str] = []
    make_backend(create_model("reference_conv"), np.zeros((1, 64, 300), np.float32), profile, model_name="reference_conv",
                 progress=messages.append)
    steps = [m for m in messages if "warm-up" in m]
    assert steps == [f"reference_conv: warm-up {i}/3 on CPUExecutionProvider" for i in (1, 2, 3)]
    assert any("exporting to ONNX" in m for m in messages) and any("verifying fp32" in m for m in messages)


def test_cpu_and_rpi5_profiles_choose_the_measured_backend():
    """benchmarks/edge_backends.py: ONNX Runtime fp32 by default; the measured exceptions are per-model overrides."""
    from edgestream.models import MODELS, list_models, model_tags

    families = {e.tags.get("family") for e in MODELS}
    for name in ("cpu", "rpi5"):
        profile = load_profile(name)
        assert profile.backend == "onnxruntime" and profile.precision == "fp32"
        for key in profile.model_overrides:  # a typo would silently never apply
            assert key in list_models() or key in families, (name, key)
        for model in list_models(kind="streaming"):
            chosen = profile.for_model(model, model_tags(model).get("family"))
            assert chosen.backend == "onnxruntime", (name, model)
    cpu, rpi5 = load_profile("cpu"), load_profile("rpi5")
    assert cpu.for_model("reference_conv", "reference").backend == "onnxruntime"  # the profile default, no override
    assert cpu.for_model("csi4cast_edge", "csi4cast").backend == "torchscript"
    assert cpu.for_model("spiking_lmuformer_eeg_s", "lmuformer").onnx_chunk == 1
    assert cpu.for_model("lmuformer_eeg_s", "lmuformer").onnx_chunk == 16
    assert rpi5.for_model("lmuformer_psmnist", "lmuformer").precision == "int8"
    assert rpi5.for_model("lmuformer_eeg_s", "lmuformer").precision == "fp32"
