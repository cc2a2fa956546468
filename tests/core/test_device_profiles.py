"""Device profiles: bundled ones validate, unknown keys and bad values are errors naming the rule,
and every fallback on a machine without the profile's hardware is an explicit, logged decision."""

from __future__ import annotations

import dataclasses
import logging
import sys

import pytest
import yaml

from edgestream.core.device import available_profiles, load_profile
from edgestream.core.errors import ConfigError


def write(tmp_path, name="custom", **settings):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.mark.parametrize("name", ["cpu", "desktop-cuda", "jetson", "rpi5"])
def test_bundled_profiles_validate_and_resolve_here(name, caplog):
    assert name in available_profiles()
    raw = load_profile(name, resolve=False)
    assert raw.name == name and raw.latency_budget_ms > 0 and raw.memory_budget_mb > 0
    resolved = load_profile(name)
    assert resolved.torch_device == "cpu" or raw.accelerator  # resolved on this CPU-only machine
    assert resolved.onnx_providers[-1] == "CPUExecutionProvider"


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path):
    path = write(tmp_path, backend="torch", latency_budget=20)
    with pytest.raises(ConfigError, match=r"unknown key 'latency_budget'; allowed keys are .*Did you mean 'latency_budget_ms'"):
        load_profile(path)


def test_resolved_fields_cannot_be_set_from_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'decisions'"):
        load_profile(write(tmp_path, decisions=["x"]))


@pytest.mark.parametrize("settings, message", [
    ({"backend": "tensorrt"}, r"backend must be one of 'torch', 'torchscript', 'onnxruntime'; got 'tensorrt'"),
    ({"precision": "int4"}, r"precision must be one of 'fp32', 'fp16', 'bf16', 'int8'; got 'int4'"),
    ({"backend": "onnxruntime", "precision": "bf16"}, r"precision with backend onnxruntime must be one of .*bf16 is a torch dtype"),
    ({"threads": 0}, r"threads must lie in \[1, inf\]; got 0"),
    ({"onnx_chunk": 2.5}, r"onnx_chunk must be an integer; got 2.5"),
    ({"torch_device": "tpu"}, r"torch_device must be 'cpu' or 'cuda\[:N\]'; got 'tpu'"),
    ({"onnx_providers": "CPUExecutionProvider"}, r"onnx_providers must be a list of provider names"),
    ({"model_overrides": {"gru_stream": {"backend": "tvm"}}}, r"model_overrides.gru_stream.backend must be one of"),
    ({"model_overrides": {"gru_stream": {"threads": 2}}}, r"model_overrides.gru_stream: unknown key 'threads'"),
    ({"model_overrides": ["gru_stream"]}, r"model_overrides must map a model or family name to settings"),
])
def test_bad_values_name_the_field_and_rule(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        load_profile(write(tmp_path, **settings))


def test_jetson_falls_back_explicitly_and_logs_each_decision(caplog):
    with caplog.at_level(logging.WARNING, logger="edgestream.core.device"):
        p = load_profile("jetson")
    logged = [r.getMessage() for r in caplog.records]
    assert p.torch_device == "cpu" and p.dtype == "float32"
    assert p.backend == "onnxruntime" and p.precision == "fp32" and p.onnx_providers == ("CPUExecutionProvider",)
    expected = ["CUDA not available", "providers TensorrtExecutionProvider, CUDAExecutionProvider not available",
                "fp16 unsupported on CPUExecutionProvider"]
    for text in expected:
        assert any(text in d for d in p.decisions), (text, p.decisions)
        assert any(text in m and "device 'jetson'" in m for m in logged), (text, logged)


def test_missing_provider_is_dropped_and_logged(tmp_path, caplog):
    path = write(tmp_path, backend="onnxruntime", onnx_providers=["OpenVINOExecutionProvider", "CPUExecutionProvider"])
    with caplog.at_level(logging.WARNING, logger="edgestream.core.device"):
        p = load_profile(path)
    assert p.onnx_providers == ("CPUExecutionProvider",)
    assert "ONNX Runtime providers OpenVINOExecutionProvider not available here" in caplog.text


def test_missing_onnxruntime_falls_back_to_torch_and_logs(tmp_path, caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an install without onnxruntime looks like to import
    with caplog.at_level(logging.WARNING, logger="edgestream.core.device"):
        p = load_profile("rpi5")
    assert p.backend == "torch"
    assert "onnxruntime not importable" in caplog.text and "falling back to the torch backend" in caplog.text


def test_strict_profile_refuses_to_fall_back(tmp_path):
    path = write(tmp_path, torch_device="cuda", strict=True)
    with pytest.raises(ConfigError, match=r"is strict and cannot run as written on this machine: CUDA not available.*strict: false"):
        load_profile(path)


def test_model_overrides_apply_by_name_then_family(tmp_path, caplog):
    path = write(tmp_path, backend="torch", model_overrides={
        "gru_stream": {"backend": "onnxruntime", "precision": "int8", "onnx_chunk": 4},
        "gru_stream_l": {"backend": "torch"},
        "cloud": {"backend": "onnxruntime", "precision": "fp16"},
    })
    p = load_profile(path)
    by_family = p.for_model("gru_stream_s", "gru_stream")
    assert (by_family.backend, by_family.precision, by_family.onnx_chunk) == ("onnxruntime", "int8", 4)
    assert p.for_model("gru_stream_l", "gru_stream").backend == "torch"  # the name wins over the family
    assert p.for_model("reference_conv", "reference") is p
    with caplog.at_level(logging.WARNING, logger="edgestream.core.device"):
        cloud = p.for_model("cloud")
    assert cloud.precision == "fp32" and "fp16 unsupported on CPUExecutionProvider" in caplog.text


def test_engine_cache_defaults_to_the_edgestream_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESTREAM_CACHE", str(tmp_path))
    assert load_profile("cpu").engine_cache_dir() == tmp_path / "engines"
    custom = dataclasses.replace(load_profile("cpu"), engine_cache=str(tmp_path / "mine"))
    assert custom.engine_cache_dir().is_dir()
