"""The dashboard watching a real pipeline: ``edgestream simulate eeg`` → ``edgestream run`` → dashboard."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from edgestream.core.io import ConnectionState
from synthetic_streams import wait_until

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "edgestream", *args], env=dict(os.environ),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_dashboard_shows_a_running_pipeline(processes, uid, tmp_path) -> None:
    from edgestream.dashboard.acquisition import Acquisition
    from edgestream.dashboard.app import application, make_settings
    from edgestream.dashboard.window import DashboardWindow

    application()
    pipeline = f"dash_{uuid.uuid4().hex[:8]}"  # a pipeline name of its own: its streams are this test's only
    spec = (ROOT / "assets/pipelines/eeg_bandpower.yaml").read_text().replace("pipeline: eeg_bandpower",
                                                                            f"pipeline: {pipeline}")
    (tmp_path / "p.yaml").write_text(spec)
    processes("simulate", "eeg", "--channels", "8", "--sfreq", "250", "--counter", "--name", f"{uid}-eeg",
              "--source-id", uid, "--duration", "90")
    run = processes("run", str(tmp_path / "p.yaml"), "--duration", "60", "--set", f"eeg.source_id={uid}",
                    "--set", "eeg.counter_channel=counter")
    acq = Acquisition(patterns=[f"{uid}*", f"{pipeline}-*"], resolve_interval=0.5)
    acq.start()
    win = DashboardWindow(acq, make_settings(str(tmp_path / "s.ini")))
    win.show()
    win.resize_default(1600, 1000)
    try:
        health = win.panels["health"]
        key = f"source eeg / pipeline {pipeline}"
        assert wait_until(lambda: health.states.get(key) is ConnectionState.CONNECTED, 60), \
            (health.states, run.poll(), run.stderr.read() if run.poll() is not None else "")
        wanted = {f"{uid}-eeg", f"{uid}-eeg-markers", f"{pipeline}-latency", f"{pipeline}-health", f"{pipeline}-bandpower"}
        assert wait_until(lambda: wanted <= {f.info.name for f in acq.feeds()}, 30), [f.info.name for f in acq.feeds()]
        assert wait_until(lambda: "end-to-end p50" in health.latency_label.text(), 20), health.latency_label.text()
        spectrum = win.panels["spectrum"]
        assert wait_until(lambda: spectrum.bands.isVisible() and spectrum.updates > 3, 20)
        assert win.panels["traces"].updates > 3 and "8/8 ch shown" in win.panels["traces"].status.text()
        eeg = next(f for f in acq.feeds() if f.info.name == f"{uid}-eeg")
        assert eeg.samples_in > 0 and eeg.reader.drops.counter_gap == 0 and eeg.reader.drops.reconnect_gap == 0
        assert not any(win.stats()["panel_errors"].values())
    finally:
        win.close()
