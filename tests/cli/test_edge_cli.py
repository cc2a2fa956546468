"""`edgestream export`, `edgestream doctor --device` and `edgestream bench` as a user runs them."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from edgestream.cli.main import cli


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESTREAM_CACHE", str(tmp_path / "cache"))


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_export_streaming_int8_with_progress_cache_and_out_dir(tmp_path):
    out = tmp_path / "engines"
    r = invoke("export", "gru_stream_s", "--backend", "onnx", "--int8", "--chunk", "4", "--device", "rpi5", "--out", str(out))
    assert r.exit_code == 0, r.output
    for step in ("exporting to ONNX (1 step(s) per call", "exporting to ONNX (4 step(s) per call", "int8 dynamic quantisation",
                 "verifying int8 ONNX against torch", "warm-up 1/2 on CPUExecutionProvider"):
        assert step in r.output, step
    dirs = sorted(p.name for p in out.iterdir())
    assert len(dirs) == 2 and all(d.startswith("gru_stream_s-int8-T") for d in dirs)
    manifest = json.loads((out / dirs[1] / "manifest.json").read_text())
    assert manifest["precision"] == "int8" and manifest["chunk"] == 4
    assert manifest["verification"]["status"] == "ok" and manifest["verification"]["vs_torch"]["max_rel"] < 0.25
    assert (out / dirs[1] / "model.onnx").stat().st_size > 0
    again = invoke("export", "gru_stream_s", "--int8", "--chunk", "4", "--device", "rpi5")
    assert again.exit_code == 0 and again.output.count("using cached int8 ONNX model") == 2


def test_export_window_model_with_shape_and_fp16(tmp_path):
    r = invoke("export", "reference_conv", "--fp16", "--shape", "64x1000")
    assert r.exit_code == 0, r.output
    assert "converting to float16" in r.output and "no CUDA/TensorRT provider here" in r.output
    assert "reference_conv-fp16-64x1000-" in r.output


def test_export_checkpoint_file(tmp_path):
    from edgestream.models import create_model
    from edgestream.train.checkpoint import save_checkpoint

    path = tmp_path / "gru.pt"
    save_checkpoint(path, create_model("gru_stream_s", n_classes=3), "gru_stream_s", {"n_classes": 3})
    r = invoke("export", str(path), "--chunk", "2")
    assert r.exit_code == 0, r.output
    assert "gru_stream_s (streaming" in r.output and "fp32 vs torch" in r.output


@pytest.mark.parametrize("args, message", [
    (["export", "gru_stream_x"], "unknown model 'gru_stream_x'. Did you mean 'gru_stream_s'?"),
    (["export", "reference_conv", "--shape", "64by1000"], "--shape must be positive sizes joined by 'x'"),
    (["export", "reference_conv", "--shape", "64x3"], "must accept an input of shape (1, 64, 3) to be exported"),
    (["export", "gru_stream_s", "--chunk", "0"], "--chunk must lie in [1, inf]; got 0"),
    (["export", "gru_stream_s", "--set", "hidden=-1"], "hidden must lie in [1, inf]; got -1"),
])
def test_export_user_errors_exit_2_with_the_rule(args, message):
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    assert message in r.output


def test_doctor_reports_each_fallback_decision():
    r = invoke("doctor", "--device", "jetson")
    assert r.exit_code == 0, r.output
    assert "decision: CUDA not available" in r.output
    assert "decision: ONNX Runtime providers TensorrtExecutionProvider, CUDAExecutionProvider not available here" in r.output
    assert "decision: fp16 unsupported on CPUExecutionProvider" in r.output
    report = json.loads(invoke("doctor", "--device", "jetson", "--json").output)
    assert report["profile"]["resolved"]["precision"] == "fp32" and len(report["profile"]["decisions"]) == 3


def _pipeline(tmp_path, rng):
    data = (rng.standard_normal((3000, 4)) * 10).astype("float32").tolist()
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({
        "pipeline": "benchme", "device": "cpu",
        "sources": {"eeg": {"kind": "array", "data": data, "sfreq": 500.0, "chunk_size": 25, "realtime": True}},
        "stages": {"bp": {"kind": "bandpass", "l_freq": 1.0, "h_freq": 40.0},
                   "win": {"kind": "window", "size": 0.5, "hop": 0.1},
                   "model": {"kind": "model", "model": "reference_conv", "overrides": {"in_channels": 4}}},
        "sinks": {"out": {"kind": "memory"}}}, sort_keys=False))
    return path


def test_bench_reports_latency_throughput_and_budget_as_json(tmp_path, rng):
    report_path = tmp_path / "report.json"
    r = invoke("bench", str(_pipeline(tmp_path, rng)), "--source", "live", "--device", "rpi5", "--duration", "2",
               "--warmup", "0.5", "--json", str(report_path))
    assert r.exit_code == 0, r.output
    report = json.loads(report_path.read_text())
    assert report["pipeline"] == "benchme" and report["device"] == "rpi5" and report["profile"]["backend"] == "onnxruntime"
    assert set(report["stages"]) == {"bp", "win", "model"} and set(report["sinks"]) == {"out"}
    model = report["stages"]["model"]
    assert model["samples_out"] >= report["e2e"]["count"] > 0  # totals include the warm-up; statistics do not
    assert abs(model["latency_since_sample"]["count"] - report["e2e"]["count"]) <= 1  # reset together after the warm-up
    for stats in (model["latency_since_sample"], model["compute"], report["e2e"]):
        assert 0 < stats["p50_ms"] <= stats["p99_ms"] <= stats["max_ms"] * 1.02  # histogram bins: ~1 % resolution
    assert 300 < report["throughput"]["input_samples_per_s"]["eeg"] < 700  # real-time replay at 500 Hz
    assert report["drops"]["total"] == 0 and report["warmup_s"] == 0.5 and report["measured_s"] >= 1.9
    assert report["cpu_percent"] > 0 and report["rss_mb"] > 0 and report["machine"]["cpus"] >= 1
    assert report["latency_budget"]["budget_ms"] == 50 and report["verdict"] in ("PASS", "FAIL")
    assert report["latency_budget"]["pass"] == (report["e2e"]["p99_ms"] <= 50)
    assert "end-to-end latency: p50" in r.output and f"verdict: {report['verdict']}" in r.output


def test_bench_fails_a_budget_the_device_cannot_meet(tmp_path, rng):
    tight = tmp_path / "tight.yaml"
    tight.write_text(yaml.safe_dump({"description": "impossible budget", "latency_budget_ms": 0.001}))
    r = CliRunner().invoke(cli, ["bench", str(_pipeline(tmp_path, rng)), "--source", "live", "--device", str(tight),
                                 "--duration", "1.5", "--warmup", "0.5", "--check"])
    assert r.exit_code == 1, r.output
    assert "latency budget: FAIL — end-to-end p99" in r.output and "> budget 0.001 ms" in r.output
    assert "verdict: FAIL" in r.output


def test_bench_source_must_exist(tmp_path, rng):
    r = CliRunner().invoke(cli, ["bench", str(_pipeline(tmp_path, rng)), "--source", str(tmp_path / "missing.fif")])
    assert r.exit_code == 2 and "--source must be 'simulate', 'live' or an existing recording file" in r.output


def test_bench_on_the_simulator_and_on_a_recording(tmp_path, shared_data):
    """The bundled reference pipeline on the in-process EEG simulator, then on a replayed EDF file."""
    sim = tmp_path / "sim.json"
    r = invoke("bench", "reference", "--device", "cpu", "--duration", "2", "--warmup", "1", "--channels", "64",
               "--sfreq", "1000", "--json", str(sim))
    assert r.exit_code == 0, r.output
    report = json.loads(sim.read_text())
    assert report["source"] == "simulate" and report["e2e"]["count"] >= 10  # ~10 windows per second
    assert 700 < report["throughput"]["input_samples_per_s"]["eeg"] < 1300
    edf = shared_data / "eegmmidb" / "S001" / "S001R04.edf"
    r = invoke("bench", "reference", "--device", "rpi5", "--duration", "2", "--warmup", "1", "--source", str(edf),
               "--json", str(tmp_path / "file.json"))
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "file.json").read_text())
    assert report["source"] == str(edf) and report["e2e"]["count"] >= 10 and report["profile"]["backend"] == "onnxruntime"
    assert 100 < report["throughput"]["input_samples_per_s"]["eeg"] < 250  # 160 Hz recording replayed in real time


@pytest.mark.timeout(180)
def test_run_with_the_jetson_profile_just_works_on_this_cpu(tmp_path, uid):
    """`edgestream run reference --device jetson --priority realtime` on a real loopback LSL stream
    (simulator in another process): the profile falls back to CPU / ONNX Runtime fp32, each decision
    logged, and predictions flow; the run is at SCHED_FIFO (as root) or says it was refused."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, EDGESTREAM_CACHE=str(tmp_path / "cache"))
    sim = subprocess.Popen([sys.executable, "-m", "edgestream", "simulate", "eeg", "--channels", "64", "--sfreq", "1000",
                            "--name", uid, "--source-id", uid, "--no-markers", "--duration", "120"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        summary_path = tmp_path / "summary.json"
        run = subprocess.run([sys.executable, "-m", "edgestream", "run", "reference", "--device", "jetson", "--duration", "4",
                              "--set", f"eeg.source_id={uid}", "--no-monitor", "--summary-json", str(summary_path),
                              "--priority", "realtime"],
                             env=env, capture_output=True, text=True, timeout=150)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    assert run.returncode == 0, run.stderr[-2000:]
    for decision in ("device 'jetson': CUDA not available", "TensorrtExecutionProvider, CUDAExecutionProvider not available",
                     "fp16 unsupported on CPUExecutionProvider"):
        assert decision in run.stderr, decision
    assert "reference_conv: warm-up 3/3 on CPUExecutionProvider" in run.stderr  # progress shown
    summary = json.loads(summary_path.read_text())
    assert summary["device"] == "jetson" and not summary["errors"]
    want = "realtime (SCHED_FIFO 10)" if os.geteuid() == 0 else "normal (realtime refused"
    assert summary["priority"].startswith(want) and f"CPU priority: {want}" in run.stderr, summary["priority"]
    assert summary["sources"]["eeg"]["samples_in"] > 2000 and summary["nodes"]["predictions"]["samples_out"] >= 20
