"""The eeg_periods pipeline file on a real recording equals the offline stage chain, and its
Periods stream reads back from a real LSL inlet with labels, units and values intact."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import yaml

from edgestream.core import STAGES, SINKS, Chunk, concat, run_stage
from edgestream.core.paths import SOURCE_ROOT
from edgestream.pipeline import Engine, build, parse_pipeline
from edgestream.train.recordings import load_recording

PIPELINE = SOURCE_ROOT / "assets" / "pipelines" / "eeg_periods.yaml"
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def recording(shared_data):
    rec = load_recording(shared_data / "eegmmidb" / "S001" / "S001R04.edf")
    n = 30 * 160  # 30 s at 160 Hz
    return rec.data[:n], rec.sfreq, list(rec.ch_names)


def run_file(data, sfreq, ch_names, chunk_size):
    raw = yaml.safe_load(PIPELINE.read_text())
    raw["sources"] = {"eeg": {"kind": "array", "data": data, "sfreq": sfreq, "ch_names": ch_names,
                              "ch_types": ["eeg"] * len(ch_names), "units": ["uV"] * len(ch_names),
                              "chunk_size": chunk_size, "t0": 0.0}}
    raw["sinks"] = {"dominant_periods": {"kind": "memory", "input": "periods"}}
    graph = build(parse_pipeline(raw))
    Engine(graph, publish=False).run(duration=60)
    return graph


def test_pipeline_file_equals_offline_chain_on_a_real_recording(recording):
    data, sfreq, ch_names = recording
    graph = run_file(data, sfreq, ch_names, chunk_size=13)
    out = graph.node("dominant_periods").component.result()
    info = graph.node("periods").info
    assert info.type == "Periods" and info.sfreq == pytest.approx(4.0)
    assert info.ch_names == tuple(f"period_{i}" for i in range(1, 6)) + tuple(f"amp_{i}" for i in range(1, 6))
    # offline: the same stages, one chunk
    source = graph.node("eeg")
    chunk = Chunk.make(data, source.source._times, source.info)
    spec = yaml.safe_load(PIPELINE.read_text())["stages"]
    chunks = [chunk]
    stream = chunk.info
    for params in spec.values():
        stage = STAGES.create(params["kind"], **{k: v for k, v in params.items() if k != "kind"})
        stream = stage.build(stream)
        chunks, _ = run_stage(stage, chunks)
    expected = concat(chunks)
    assert out.n_times == expected.n_times == 1 + (len(data) - 640) // 40
    np.testing.assert_allclose(out.data, expected.data, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out.timestamps, expected.timestamps)
    periods = out.data[:, :5]
    assert np.all((periods >= 2 / sfreq) & (periods <= 640 / 2 / sfreq))  # between 2 samples and half a window


def test_periods_stream_over_lsl(uid, rng):
    import pylsl

    from edgestream.core import StreamInfo
    from edgestream.testing import make_chunk

    info = StreamInfo("sensor", "EEG", f"{uid}-src", 100.0, ["a", "b"], units=("uV", "uV"))
    t = np.arange(1200)
    x = np.stack([np.sin(2 * np.pi * t / 25), np.sin(2 * np.pi * t / 25)], axis=1) + 0.1 * rng.standard_normal((1200, 2))
    stage = STAGES.create("periods", size=2.0, hop=0.5, k=3)
    out_info = stage.build(info)
    (out,), _ = run_stage(stage, [make_chunk(x, info)])
    sink = SINKS.create("lsl_outlet", source_id=uid)
    sink.build(out_info, {"pipeline": "p", "node": "published", "input": "periods"})
    sink.start()
    try:
        found = pylsl.resolve_bypred(f"source_id='{uid}'", 1, 5.0)
        assert found
        inlet = pylsl.StreamInlet(found[0], recover=False)
        inlet.open_stream(5.0)
        header = ET.fromstring(inlet.info(5.0).as_xml())
        assert header.findtext("type") == "Periods"
        chans = header.findall("desc/channels/channel")
        assert [c.findtext("label") for c in chans] == ["period_1", "period_2", "period_3", "amp_1", "amp_2", "amp_3",
                                                        "counter"]
        assert [c.findtext("unit") for c in chans][:6] == ["s", "s", "s", "uV", "uV", "uV"]
        time.sleep(0.2)
        sink.write(out)
        rows, stamps = [], []
        deadline = time.monotonic() + 10
        while len(rows) < out.n_times and time.monotonic() < deadline:
            samples, ts = inlet.pull_chunk(timeout=0.5)
            rows += samples
            stamps += ts
        got = np.asarray(rows)
        np.testing.assert_allclose(got[:, :6], out.data, rtol=1e-6)
        np.testing.assert_array_equal(got[:, 6], np.arange(out.n_times))  # counter
        np.testing.assert_allclose(stamps, out.timestamps, rtol=0, atol=1e-6)
        np.testing.assert_allclose(got[:, 0], 0.25, atol=1e-6)  # planted 25-sample period at 100 Hz
        inlet.close_stream()
    finally:
        sink.stop()
