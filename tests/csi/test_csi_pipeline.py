"""The csi_predict pipeline file on the engine equals the stages run offline on the same reports."""

from __future__ import annotations

import numpy as np
import yaml

from edgestream.core import STAGES, concat, run_stage
from edgestream.core.io import SOURCES
from edgestream.core.paths import SOURCE_ROOT
from edgestream.pipeline import Engine, build, parse_pipeline

PIPELINE = SOURCE_ROOT / "assets" / "pipelines" / "csi_predict.yaml"
SOURCE = {"kind": "simulate_csi", "model": "CDL-A", "speed": 10.0, "array_rows": 1, "array_cols": 1, "snr_db": 20.0,
          "drop_prob": 0.05, "drop_mode": "skip", "chunk_size": 5, "realtime": False, "duration": 0.2, "seed": 3}


def test_pipeline_file_equals_offline_stage_chain():
    raw = yaml.safe_load(PIPELINE.read_text())
    assert raw["stages"]["predict"]["kind"] == "csi_predict" and raw["sources"]["csi"]["type"] == "CSI"
    raw["sources"] = {"csi": dict(SOURCE)}
    raw["sinks"] = {"predictions": {"kind": "memory", "input": "predict"}, "metrics": {"kind": "memory", "input": "score"}}
    graph = build(parse_pipeline(raw))
    summary = Engine(graph, publish=False).run(duration=60)
    preds = graph.node("predictions").component.result()
    metrics = graph.node("metrics").component.result()
    assert graph.node("predict").info.type == "CSIPrediction" and graph.node("score").info.type == "CSIMetrics"
    # offline: the same reports, the same stages, one chunk
    source = SOURCES.create("simulate_csi", **{k: v for k, v in SOURCE.items() if k != "kind"})
    info = source.start()
    chunks = []
    while not source.finished:
        chunks.extend(source.read(0.1))
    reports = concat(chunks)
    assert summary["sources"]["csi"]["samples_in"] == reports.n_times < 80  # some reports were lost
    predict = STAGES.create("csi_predict", **{k: v for k, v in raw["stages"]["predict"].items() if k != "kind"})
    score = STAGES.create("csi_score", window=400)
    score.build(predict.build(info))
    offline, state = run_stage(predict, [reports])
    offline = concat(offline)
    np.testing.assert_allclose(preds.data, offline.data, rtol=1e-4, atol=1e-5)
    # same report times (each source run starts its clock at start())
    np.testing.assert_allclose(preds.timestamps - preds.timestamps[0], offline.timestamps - offline.timestamps[0], atol=1e-9)
    np.testing.assert_allclose(metrics.data, concat(run_stage(score, [offline])[0]).data, rtol=1e-4, atol=1e-4)
    assert state["counts"]["imputed"] == 80 - reports.n_times  # every lost report was held
    assert preds.n_times == reports.n_times
