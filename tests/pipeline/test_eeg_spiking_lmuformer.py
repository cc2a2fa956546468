"""assets/pipelines/eeg_spiking_lmuformer.yaml: equals the offline stage pass, and runs live over LSL."""

from __future__ import annotations

import threading
import time

import numpy as np
import torch
import yaml

from edgestream.core import BuildContext, concat, run_stage
from edgestream.core.paths import SOURCE_ROOT
from edgestream.core.stage import STAGES
from edgestream.pipeline import Engine, build, parse_pipeline
from edgestream.sources.lsl import LSLSource
from edgestream.sources.simulate_eeg import EEGGenerator, EEGSimulator
from edgestream.testing import make_chunk

PIPELINE = SOURCE_ROOT / "assets" / "pipelines" / "eeg_spiking_lmuformer.yaml"
FS = 1000.0


def small_raw() -> dict:
    """The pipeline file with a small model (fast on the shared CI machine) on eager torch."""
    raw = yaml.safe_load(PIPELINE.read_text())
    raw["stages"]["model"] |= {"backend": "torch", "overrides": {"dim": 16, "memory": 24, "theta": 32.0}}
    return raw


def test_pipeline_file_equals_the_offline_stage_pass():
    torch.set_num_threads(1)
    data, _ = EEGGenerator(64, FS, seed=3).generate(3000)
    raw = small_raw()
    raw["sources"] = {"eeg": {"kind": "array", "data": data, "sfreq": FS, "ch_types": ["eeg"] * 64, "units": ["uV"] * 64,
                              "chunk_size": 13, "t0": 0.0}}
    raw["sinks"] = {"predictions": {"kind": "memory", "input": "model"}}
    graph = build(parse_pipeline(raw))
    Engine(graph, publish=False).run(duration=120)
    out = graph.node("predictions").component.result()
    info = graph.node("model").info
    assert info.type == "Predictions" and info.desc["model"]["classes"] == ["rest", "left", "right"]
    assert info.ch_names == ("p_rest", "p_left", "p_right", "class", "confidence", "warming")
    # offline: the same stages in one pass over the whole recording, the model emitting every frame
    specs = [{k: v for k, v in spec.items() if k != "kind"} | {"kind": spec["kind"]} for spec in raw["stages"].values()]
    specs[-1]["emit"] = "step"
    x = make_chunk(data, graph.sources[0].info, t0=0.0)
    for i, spec in enumerate(specs):
        st = STAGES.create(spec.pop("kind"), **spec)
        st.build(x.info, BuildContext(pipeline="eeg_spiking_lmuformer", node=f"s{i}"))
        (x,), _ = run_stage(st, [x])
    ref = x
    # the pipeline emits the newest complete frame of each 13-sample source chunk that completed one
    ends = np.minimum(np.arange(13, 3000 + 13, 13), 3000)
    done = ends // 10
    rows = np.unique(done[done > 0]) - 1
    assert out.n_times == len(rows)
    np.testing.assert_allclose(out.data, ref.data[rows], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.timestamps, ref.timestamps[rows], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.timestamps, (rows * 10 + 9) / FS, rtol=0, atol=1e-12)  # newest sample of the frame
    assert out.data[:, 5].any() and not out.data[-1, 5]  # warming for θ frames, then not


def test_live_over_lsl_loopback(uid):
    """Simulator → LSL → pipeline → LSL outlet → inlet: predictions with metadata, counter and the stamps of
    the newest EEG sample each prediction depends on."""
    torch.set_num_threads(1)
    sim = EEGSimulator(n_channels=64, sfreq=FS, chunk_size=10, name=uid, source_id=uid, seed=1, duration=60).start()
    raw = small_raw()
    raw["sources"]["eeg"] |= {"source_id": uid}
    raw["sinks"]["predictions"] |= {"source_id": f"{uid}-pred"}
    graph = build(parse_pipeline(raw))
    engine = Engine(graph, publish=False)
    runner = threading.Thread(target=engine.run, kwargs={"duration": 30}, daemon=True)
    runner.start()
    try:
        inlet = LSLSource(source_id=f"{uid}-pred", timeout=20)
        info = inlet.start()
        assert info.type == "Predictions" and info.desc["model"]["classes"] == ["rest", "left", "right"]
        assert info.desc["model"]["name"] == "spiking_lmuformer_eeg_s" and info.ch_names[-1] == "counter"
        chunks = []
        deadline = time.monotonic() + 20
        while sum(c.n_times for c in chunks) < 60 and time.monotonic() < deadline:
            chunks += [c for c in inlet.read(0.05) if c.n_times]
        inlet.stop()
    finally:
        engine.stop()
        runner.join(timeout=30)
        sim.stop()
    got = concat(chunks)
    assert got.n_times >= 60
    probs = got.data[:, :3]
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(got.data[:, 3], probs.argmax(1))
    np.testing.assert_array_equal(np.diff(got.data[:, -1]), 1)  # outlet counter: nothing lost
    # each row is stamped with an EEG sample's own time t0 + i / fs, the newest of its 10-sample frame:
    # one frame phase for the whole run (where the first frame starts depends on when the inlet
    # joined), frames 10 samples apart
    # (the receiving inlet's clock-offset estimate jitters by tens of µs on a loaded machine: 0.2 sample)
    k = (got.timestamps - sim.t0) * FS
    np.testing.assert_allclose(k, np.round(k), atol=0.2)
    index = np.round(k).astype(int)
    assert len(set(index % 10)) == 1 and (np.diff(index) % 10 == 0).all() and (np.diff(index) > 0).all()
