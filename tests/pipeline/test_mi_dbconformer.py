"""The mi_dbconformer pipeline file on a real recording equals the offline computation; references in configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from edgestream.core import ConfigError, ValidationError
from edgestream.core.paths import SOURCE_ROOT
from edgestream.dsp import alignment
from edgestream.pipeline import Engine, build, parse_pipeline
from edgestream.pipeline.config import load_pipeline
from edgestream.train import load_checkpoint, read_checkpoint
from edgestream.train.calibration import calibrate
from edgestream.train.epochs import preprocess
from edgestream.train.recordings import load_recording
from edgestream.runners.window import softmax

PIPELINE = SOURCE_ROOT / "assets" / "pipelines" / "mi_dbconformer.yaml"


@pytest.fixture(scope="module")
def checkpoint(shared_data, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("mi") / "model.pt"
    calibrate("dbconformer", shared_data / "eegmmidb" / "S001", "left,right", out, epochs=1, include="*R[01][82].edf")
    return out


def offline_predictions(recording, ckpt, hop):
    """Independent offline path: filter the whole recording, cut windows by index, align with the batch formula."""
    blob = read_checkpoint(ckpt)
    model, _ = load_checkpoint(ckpt)
    n_times = blob["manifest"]["data"]["n_times"]
    filtered = preprocess(recording, blob["manifest"]["data"]["preprocessing"]).data
    calib, _ = alignment.alignment_from_extra(blob["extra"], "checkpoint")
    starts = range(0, filtered.shape[0] - n_times + 1, hop)
    windows = np.stack([filtered[s : s + n_times] for s in starts])  # (N, T, C)
    covs = np.stack([alignment.covariance(w) for w in windows])
    sums = np.cumsum(covs, axis=0) + calib.n * calib.mean
    aligned = np.stack([alignment.transform(w, alignment.make_state(calib.n + k + 1, sums[k] / (calib.n + k + 1)))
                        for k, w in enumerate(windows)])
    with torch.no_grad():
        logits = model(torch.from_numpy(np.ascontiguousarray(aligned.transpose(0, 2, 1))))[1].numpy()
    stamps = np.array([recording.timestamps[s + n_times - 1] for s in starts])
    return softmax(logits), stamps


def test_pipeline_file_equals_offline_predictions_on_a_real_recording(checkpoint, shared_data):
    rec = load_recording(shared_data / "eegmmidb" / "S001" / "S001R04.edf")
    n = 60 * 160  # one minute of the held-out run
    rec = type(rec)(rec.data[:n], rec.timestamps[:n], rec.sfreq, rec.ch_names, rec.events, rec.path, rec.units)
    raw = yaml.safe_load(PIPELINE.read_text())
    raw["sources"] = {"eeg": {"kind": "array", "data": rec.data, "sfreq": rec.sfreq, "ch_names": list(rec.ch_names),
                              "ch_types": ["eeg"] * 64, "units": ["uV"] * 64, "chunk_size": 13, "t0": 0.0}}
    raw["sinks"] = {"predictions": {"kind": "memory", "input": "model"}}
    raw["stages"]["model"]["checkpoint"] = str(checkpoint)
    graph = build(parse_pipeline(raw))
    Engine(graph, publish=False).run(duration=None)  # until the array source is exhausted (no wall-clock cap)
    out = graph.node("predictions").component.result()
    info = graph.node("model").info
    assert info.type == "Predictions" and info.ch_names == ("p_left", "p_right", "class", "confidence", "warming")
    assert info.desc["model"]["classes"] == ["left", "right"]
    assert graph.node("align").info.desc["alignment"] == {"kind": "euclidean", "calibrated": True, "adapt": True}
    probs, stamps = offline_predictions(rec, checkpoint, hop=16)
    assert out.n_times == len(probs) == 1 + (n - 640) // 16
    np.testing.assert_array_equal(out.timestamps, stamps)
    np.testing.assert_allclose(out.data[:, :2], probs, rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(out.data[:, 2], probs.argmax(1))
    assert not out.data[:, 4].any()  # calibrated alignment: never warming


def test_set_checkpoint_feeds_both_alignment_and_model(checkpoint):
    spec = load_pipeline(PIPELINE, [f"model.checkpoint={checkpoint}"])
    assert spec.node("model").params["checkpoint"] == str(checkpoint)
    assert spec.node("align").params["checkpoint"] == str(checkpoint)
    spec = load_pipeline(PIPELINE)
    assert spec.node("align").params["checkpoint"] is None


def test_reference_errors_are_clear():
    base = {"pipeline": "t", "sources": {"s": {"kind": "array", "data": [[0.0]], "sfreq": 1.0}},
            "sinks": {"m": {"kind": "memory"}}}
    with pytest.raises(ConfigError, match=r"stages.a.checkpoint = '\$\{modl.checkpoint\}': unknown node 'modl'. Did you mean 'model'"):
        parse_pipeline(base | {"stages": {"a": {"kind": "euclidean_align", "checkpoint": "${modl.checkpoint}"},
                                          "model": {"kind": "model", "model": "dbconformer"}}})
    with pytest.raises(ConfigError, match=r"must name a parameter set on node 'model'; it sets kind, model"):
        parse_pipeline(base | {"stages": {"a": {"kind": "euclidean_align", "checkpoint": "${model.checkpoint}"},
                                          "model": {"kind": "model", "model": "dbconformer"}}})


def test_model_refuses_unaligned_input_for_an_aligned_checkpoint(checkpoint, shared_data):
    raw = yaml.safe_load(PIPELINE.read_text())
    raw["sources"] = {"eeg": {"kind": "array", "data": np.zeros((700, 64), np.float32), "sfreq": 160.0,
                              "ch_types": ["eeg"] * 64}}
    raw["sinks"] = {"predictions": {"kind": "memory", "input": "model"}}
    del raw["stages"]["align"]
    raw["stages"]["model"]["checkpoint"] = str(checkpoint)
    graph = build(parse_pipeline(raw))
    with pytest.raises(ValidationError, match="was trained on Euclidean-aligned trials, so its input must be aligned"):
        graph.start()


def test_live_loopback_predictions_equal_offline_on_the_same_windows(checkpoint, shared_data, uid, tmp_path):
    """`edgestream play` in a subprocess → the pipeline on real LSL → its Predictions outlet, read by an inlet."""
    import os
    import subprocess
    import sys
    import threading
    import time

    import pylsl

    from edgestream.pipeline.config import apply_set

    edf = shared_data / "eegmmidb" / "S001" / "S001R04.edf"
    rec = load_recording(edf)
    out_sid = f"{uid}-predictions"
    raw = apply_set(yaml.safe_load(PIPELINE.read_text()), [
        f"model.checkpoint={checkpoint}", f"eeg.source_id={uid}", "eeg.max_lag=null", "eeg.timeout=60",
        f"predictions.source_id={out_sid}"])
    raw["sinks"]["received"] = {"kind": "memory", "input": "eeg"}  # what the pipeline read, counter included
    graph = build(parse_pipeline(raw))
    engine = Engine(graph, publish=False)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.setdefault("summary", engine.run(duration=240)), daemon=True)
    runner.start()
    player = subprocess.Popen(
        [sys.executable, "-m", "edgestream", "play", str(edf), "--speed", "3", "--counter", "--source-id", uid,
         "--no-markers", "--duration", "20"], env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        found = pylsl.resolve_byprop("source_id", out_sid, 1, 60.0)
        assert found, "the pipeline's Predictions outlet did not appear"
        inlet = pylsl.StreamInlet(found[0], max_buflen=360)
        inlet.open_stream(timeout=30.0)  # subscribe now: an inlet only buffers samples once its stream is open
        header = inlet.info()
        classes = header.desc().child("model").child("classes")
        rows, stamps = [], []
        player.wait(timeout=120)
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 5.0:  # drain until the pipeline has caught up
            data, ts = inlet.pull_chunk(timeout=0.5)
            if ts:
                rows.extend(data)
                stamps.extend(ts)
                idle_since = time.monotonic()
    finally:
        engine.stop()
        runner.join(timeout=30)
        if player.poll() is None:
            player.kill()
    assert header.type() == "Predictions" and header.channel_count() == 6  # p_left, p_right, class, confidence, warming, counter
    names, element = [], classes.first_child()
    while not element.empty():
        names.append(element.child_value())
        element = element.next_sibling()
    assert names == ["left", "right"]  # desc/model/classes
    received = graph.node("received").component.result()
    counter = received.data[:, -1].astype(np.int64)
    s0, n = int(counter[0]), len(counter)
    np.testing.assert_array_equal(counter, np.arange(s0, s0 + n))  # no sample lost between player and pipeline
    np.testing.assert_array_equal(received.data[:, :-1], rec.data[s0 : s0 + n])  # µV, cleaned channel order
    # offline: the same file samples, filtered, windowed, aligned and classified without the engine
    sliced = type(rec)(rec.data[s0 : s0 + n], received.timestamps, rec.sfreq, rec.ch_names, [], rec.path, rec.units)
    probs, offline_stamps = offline_predictions(sliced, checkpoint, hop=16)
    rows, stamps = np.asarray(rows, dtype=np.float64), np.asarray(stamps)
    assert len(rows) >= 0.9 * len(probs) > 100
    index = np.searchsorted(offline_stamps, stamps)
    np.testing.assert_array_equal(offline_stamps[index], stamps)  # every live prediction is one offline window
    np.testing.assert_allclose(rows[:, :2], probs[index], rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(rows[:, 2], probs[index].argmax(1))
    np.testing.assert_array_equal(np.diff(rows[:, 5]), 1)  # the outlet's counter: nothing lost on the way out
