"""The soak benchmark, short: simulator → default pipeline → dashboard for 20 s, memory and latency
sampled every 2 s (benchmarks/soak.py runs 10 minutes; this checks it works end to end)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.reliability, pytest.mark.gui, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


def test_soak_short(case):
    pytest.importorskip("PySide6")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--duration", "20", "--interval", "2",
                          "--channels", "8", "--sfreq", "250"], env=env, capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert all({"bench", "metric", "value", "unit"} <= set(x) and x["bench"] == "soak" for x in lines)
    by = {(x["metric"], x.get("process") or x.get("source")): x["value"] for x in lines}
    assert sum(1 for x in lines if x["metric"] == "rss_mb" and x["process"] == "pipeline") >= 8
    assert by[("pipeline_errors", None)] == 0 and by[("samples_in", "eeg")] > 20 * 250 * 0.8
    assert by[("dashboard_frames", None)] > 0
    for k in ("pipeline", "dashboard"):
        assert by[("rss_end_mb", k)] > 0 and by[("rss_growth_mb_per_min", k)] is not None
    assert by[("e2e_p50_first_ms", None)] is not None and by[("e2e_p50_last_ms", None)] is not None
    case.update(case="soak_short_20s", samples_lost=by[("drops_total", "eeg")],
                lost_by_cause={x["metric"].removeprefix("drops_"): x["value"] for x in lines
                               if x["metric"].startswith("drops_")},
                recovery_s=None, user_sees="benchmark JSON lines: memory per process, latency drift, drops, frames",
                details={"pipeline_rss_growth_mb_per_min": by[("rss_growth_mb_per_min", "pipeline")],
                         "dashboard_rss_growth_mb_per_min": by[("rss_growth_mb_per_min", "dashboard")],
                         "e2e_p50_drift_ms": by[("e2e_p50_drift_ms", None)],
                         "dashboard_frames": by[("dashboard_frames", None)]})
