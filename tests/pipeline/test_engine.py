"""The engine on in-process sources: outputs equal offline processing, validation at build time,
queues count drops, gaps reset state and flag warming."""

from __future__ import annotations

import numpy as np
import pytest

from edgestream.core import STAGES, Chunk, ValidationError, concat, run_stage
from edgestream.core.io import SINKS, SOURCES
from edgestream.pipeline import Engine, build, parse_pipeline
from edgestream.pipeline.queues import HandoffQueue, QueueFullError


def spec_for(data, sfreq, stages, chunk_size=7, sink_input=None, **source):
    raw = {
        "pipeline": "t",
        "sources": {"src": {"kind": "array", "data": data, "sfreq": sfreq, "chunk_size": chunk_size} | source},
        "stages": stages,
        "sinks": {"mem": {"kind": "memory"} | ({"input": sink_input} if sink_input else {})},
    }
    return parse_pipeline(raw)


def run(spec):
    graph = build(spec)
    engine = Engine(graph, publish=False)
    summary = engine.run(duration=30)
    return graph, summary


def test_pipeline_output_equals_offline_stage_chain(rng):
    data = rng.standard_normal((3000, 4)).astype(np.float32) * 10
    stages = {"bp": {"kind": "bandpass", "l_freq": 1.0, "h_freq": 40.0}, "notch": {"kind": "notch", "freqs": [50]},
              "win": {"kind": "window", "size": 0.5, "hop": 0.1}, "pow": {"kind": "bandpower"}}
    graph, summary = run(spec_for(data, 250.0, stages))
    out = graph.node("mem").component.result()
    # offline: the same stages over the whole signal in one chunk
    source = graph.node("src").source
    chunk = Chunk.make(data, source._times, graph.node("src").info)
    chain = [STAGES.create(s["kind"], **{k: v for k, v in s.items() if k != "kind"}) for s in stages.values()]
    info, chunks = chunk.info, [chunk]
    for stage in chain:
        info = stage.build(info)
        chunks, _ = run_stage(stage, chunks)
    expected = concat(chunks)
    np.testing.assert_allclose(out.data, expected.data, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out.timestamps, expected.timestamps)
    assert summary["sources"]["src"]["samples_in"] == 3000
    assert summary["nodes"]["mem"]["samples_out"] == out.n_times == 1 + (3000 - 125) // 25
    assert summary["e2e"]["count"] == summary["nodes"]["mem"]["samples_out"]


def test_build_time_validation_names_the_node():
    data = np.zeros((100, 2), np.float32)
    spec = spec_for(data, 100.0, {"bp": {"kind": "bandpass", "l_freq": 1.0, "h_freq": 80.0}})
    graph = build(spec)
    with pytest.raises(ValidationError, match=r"pipeline 't', stages.bp \(bandpass\): .*h_freq must lie in \(0, 50\) Hz"):
        graph.start()


def test_wrong_channel_count_for_model_is_caught_at_build():
    data = np.zeros((2000, 8), np.float32)
    stages = {"win": {"kind": "window", "size": 1.0, "hop": 0.5}, "model": {"kind": "model", "model": "reference_conv"}}
    graph = build(spec_for(data, 1000.0, stages))
    with pytest.raises(ValidationError, match=r"model 'reference_conv' must accept windows of 8 channels × 1000 samples"):
        graph.start()


def test_window_model_runner_outputs_probabilities(rng):
    data = rng.standard_normal((3000, 64)).astype(np.float32)
    stages = {"win": {"kind": "window", "size": 1.0, "hop": 0.5}, "model": {"kind": "model", "model": "reference_conv"}}
    graph, _ = run(spec_for(data, 1000.0, stages, chunk_size=10))
    out = graph.node("mem").component.result()
    info = graph.node("model").info
    assert info.type == "Predictions" and info.ch_names == ("p_0", "p_1", "class", "confidence", "warming")
    assert out.n_times == 5
    np.testing.assert_allclose(out.data[:, :2].sum(axis=1), 1.0, rtol=1e-5)
    # equals the model applied offline to the same windows
    import torch

    from edgestream.models import create_model

    net = create_model("reference_conv")
    x = torch.from_numpy(np.stack([data[i - 1000 : i].T for i in (1000, 1500, 2000, 2500, 3000)]))
    with torch.no_grad():
        probs = torch.softmax(net(x), dim=-1).numpy()
    np.testing.assert_allclose(out.data[:, :2], probs, rtol=1e-4, atol=1e-6)


def test_gap_resets_state_and_flags_warming():
    from edgestream.core import StreamInfo
    from edgestream.pipeline.config import NodeSpec
    from edgestream.pipeline.graph import Node

    stage = STAGES.create("bandpass", l_freq=5.0, h_freq=40.0)  # warm-up 3 / 5 Hz = 0.6 s = 60 samples
    node = Node(NodeSpec("bp", "stages", "bandpass", {}), stage)
    sinfo = StreamInfo("x", "EEG", "", 100.0, ["a"])
    node.info = stage.build(sinfo)
    node.state = stage.init_state()
    sink = SINKS.create("memory")
    sink.build(node.info)
    node.children.append(Node(NodeSpec("m", "sinks", "memory", {}), sink))
    x = np.ones((20, 1), np.float32)
    node.process(Chunk.make(x, np.arange(20) / 100.0, sinfo))
    assert node.state is not None and not sink.chunks[-1].warming
    node.process(Chunk.make(x, 5 + np.arange(20) / 100.0, sinfo, gap=True))
    assert stage.warmup_samples == 60
    assert sink.chunks[-1].warming and sink.chunks[-1].gap and node.warm_left == 40
    for k in range(3):
        node.process(Chunk.make(x, 6 + k + np.arange(20) / 100.0, sinfo))
    assert [c.warming for c in list(sink.chunks)[-3:]] == [True, True, False]


@pytest.mark.parametrize("policy,kept,dropped", [("drop-oldest", [2, 3, 4], 2), ("reject", [0, 1, 2], 2)])
def test_queue_policies_count_drops(policy, kept, dropped):
    q = HandoffQueue(3, policy)
    for i in range(5):
        q.put(i)
    assert [q.get(0) for _ in range(3)] == kept and q.dropped_items == dropped


def test_queue_fail_policy_raises_clearly():
    q = HandoffQueue(1, "fail", "model")
    q.put(1)
    with pytest.raises(QueueFullError, match="queue in front of 'model' overflowed"):
        q.put(2)


def test_queued_node_runs_on_its_own_thread(rng):
    data = rng.standard_normal((2000, 2)).astype(np.float32)
    stages = {"bp": {"kind": "bandpass", "l_freq": 1.0, "h_freq": 40.0, "queue": {"size": 10000, "policy": "block"}}}
    graph, summary = run(spec_for(data, 250.0, stages))
    assert graph.node("mem").component.result().n_times == 2000
    assert summary["nodes"]["bp"]["queue_drops"] == 0


def test_sources_registry_lists_array():
    assert "array" in SOURCES and "memory" in SINKS
