"""Simulator → pipeline → outlets over real liblsl on loopback: every report arrives, is predicted
once and scored, nothing is lost; plus the `simulate csi` command's input checks."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from edgestream.core.paths import SOURCE_ROOT
from edgestream.csi.channel import CSIConfig
from edgestream.csi.noise import NoiseConfig
from edgestream.pipeline import Engine, build
from edgestream.pipeline.config import load_pipeline
from edgestream.sources.simulate_csi import CSIReportGenerator, CSISimulator

pytestmark = pytest.mark.timeout(180)
PIPELINE = SOURCE_ROOT / "assets" / "pipelines" / "csi_predict.yaml"
CFG = CSIConfig(model="CDL-A", delay_spread=30e-9, speed=10.0, array_rows=1, array_cols=1)  # 2 antennas × 300
NOISE = NoiseConfig(snr_db=20.0)
N_REPORTS = 800  # 2 s at 400 reports/s
D = 2 * 2 * 300  # CSI values per report


def _pull_until(inlet, rows: int, limit: float) -> tuple[np.ndarray, np.ndarray]:
    data, stamps = [], []
    deadline = time.monotonic() + limit
    while sum(len(s) for s in stamps) < rows and time.monotonic() < deadline:
        d, t = inlet.pull_chunk(0.2, 100_000)
        if t:
            data.append(np.asarray(d, np.float64))
            stamps.append(np.asarray(t))
    return (np.concatenate(data), np.concatenate(stamps)) if stamps else (np.zeros((0, 0)), np.zeros(0))


def test_simulator_to_pipeline_to_outlets_loses_no_report(uid, raw_inlet):
    sim = CSISimulator(CFG, NOISE, seed=1, name=f"{uid}-csi", source_id=f"{uid}-csi", chunk_size=4,
                       duration=N_REPORTS / CFG.report_rate, wait_for_consumer=60.0)
    spec = load_pipeline(PIPELINE, [
        f"csi.source_id={uid}-csi", "csi.max_lag=30",  # a busy machine may lag; this test is about loss, not latency
        "predict.model=csi_repeat_last",  # the data path is under test; model outputs are checked exactly
        f"predictions.source_id={uid}-pred", f"metrics.source_id={uid}-met",
    ])
    with sim:  # the simulator waits for its first consumer: the pipeline's inlet
        graph = build(spec)
        graph.start()
        pred_in, met_in = raw_inlet(f"{uid}-pred", 20.0), raw_inlet(f"{uid}-met", 20.0)
        engine = Engine(graph, publish=False)
        result: dict = {}
        runner = threading.Thread(target=lambda: result.update(summary=engine.run(duration=150)))
        runner.start()
        try:
            pred, pred_t = _pull_until(pred_in, N_REPORTS, 120)
            met, _ = _pull_until(met_in, N_REPORTS - 4, 30)
        finally:
            engine.stop()
            runner.join(30)
    summary = result["summary"]
    assert summary["sources"]["csi"]["drops"]["total"] == 0
    assert sim.reports_pushed == N_REPORTS and sim.reports_dropped == 0
    # every report predicted exactly once, in order; the outlet's counter is continuous
    assert pred.shape == (N_REPORTS, 4 * D + 1 + 12 + 1)
    np.testing.assert_array_equal(pred[:, 4 * D], np.arange(N_REPORTS))  # report_index
    np.testing.assert_array_equal(pred[:, -1], np.arange(N_REPORTS))  # counter
    # stamped with the report each prediction was made at (the simulator's schedule)
    # (up to liblsl's clock-offset estimate, which the pipeline's inlet refreshes: microseconds here)
    np.testing.assert_allclose(np.diff(pred_t), 1.0 / CFG.report_rate, atol=1e-4)
    # repeat-last: the horizon-1 prediction is the report itself, bit for bit through two LSL hops
    data, _, _ = CSIReportGenerator(CFG, NOISE, seed=1).generate(N_REPORTS)
    np.testing.assert_array_equal(pred[:, :D].astype(np.float32), data)
    # live scores: every report from the 5th on scored for all 4 horizons, all finite
    assert met.shape == (N_REPORTS - 4, 16 + 1) and np.isfinite(met).all()
    np.testing.assert_allclose(met[:, 12:16], 0.0, atol=1e-3)  # repeat-last vs itself: no gain


def test_simulate_csi_command_checks_its_input():
    from edgestream.cli.main import cli

    runner = CliRunner()
    bad_rate = runner.invoke(cli, ["simulate", "csi", "--rate", "333", "--duration", "0.1"])
    assert bad_rate.exit_code == 2 and "--rate must be 2000 Hz divided by a whole number of slots" in bad_rate.output
    bad_ant = runner.invoke(cli, ["simulate", "csi", "--antennas", "5", "--duration", "0.1"])
    assert bad_ant.exit_code == 2 and "--antennas must be a positive multiple of 2" in bad_ant.output
    bad_model = runner.invoke(cli, ["simulate", "csi", "--model", "CDL-Z", "--duration", "0.1"])
    assert bad_model.exit_code == 2 and "must be one of 'A', 'B', 'C', 'D', 'E'; got 'Z'" in bad_model.output
