"""Test configuration: liblsl stays on this machine, Qt runs offscreen, seeds are fixed; producers
run in subprocesses (``procs``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

# Before anything imports pylsl: liblsl reads its config once, at first use.
from edgestream.core.lslconf import loopback_config_path

os.environ["LSLAPICFG"] = str(loopback_config_path())
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from edgestream.core.paths import data_dir  # noqa: E402
from edgestream.testing import mend_traceback  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# pytester runs a pytest session inside a test (tests/core/test_test_harness.py checks this conftest's hooks).
pytest_plugins = ("pytester",)

try:  # one intra-op thread: CI has 2 cores and several test processes (simulators, players) share them
    import torch  # noqa: E402

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a hard dependency
    pass


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item, call):
    """A test whose traceback has a frame without a line number (a pytest-timeout signal that
    fired inside a C extension) is reported as failed instead of crashing pytest."""
    if call.excinfo is not None and mend_traceback(call.excinfo.value):
        call.excinfo = pytest.ExceptionInfo.from_exception(call.excinfo.value)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def uid(request) -> str:
    """A unique LSL source_id / stream-name suffix for this test."""
    return f"es-test-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def shared_data():
    return data_dir()


def edgestream_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgestream", *args]


def spawn(*args: str) -> subprocess.Popen:
    """Start ``python -m edgestream ARGS`` with this test session's loopback LSL config."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.Popen(edgestream_cmd(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _starter() -> Iterator[Callable[..., subprocess.Popen]]:
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        p = spawn(*args)
        started.append(p)
        return p

    yield start
    for p in started:
        end(p)


@pytest.fixture
def procs() -> Iterator[Callable[..., subprocess.Popen]]:
    """``procs(*args)`` starts ``python -m edgestream ARGS``; all are stopped after the test."""
    yield from _starter()


@pytest.fixture(scope="module")
def module_procs() -> Iterator[Callable[..., subprocess.Popen]]:
    """Like ``procs``, stopped after the test module."""
    yield from _starter()


def _raw_inlet(source_id: str, timeout: float = 15.0):
    """A plain pylsl inlet (no clock processing) on the stream with ``source_id``, connected."""
    import pylsl

    found = pylsl.resolve_bypred(f"source_id='{source_id}'", 1, timeout)
    assert found, f"stream {source_id!r} not found"
    inlet = pylsl.StreamInlet(found[0], max_buflen=60, recover=False)
    inlet.open_stream(timeout)
    return inlet


@pytest.fixture
def raw_inlet() -> Callable[..., object]:
    """``raw_inlet(source_id, timeout=15)``: a connected pylsl inlet without clock processing."""
    return _raw_inlet


# --- one recorded pipeline session, shared by the recording and reliability suites ---------------
SESSION_PIPELINE = """pipeline: session
description: 4-ch simulated EEG, band-pass, 1-s windows every 100 ms, reference_conv from a checkpoint
sources:
  eeg: {{kind: lsl, source_id: "{uid}", timeout: 20.0}}
stages:
  pick: {{kind: pick, types: [eeg]}}
  bandpass: {{kind: bandpass, l_freq: 1.0, h_freq: 40.0, order: 4}}
  window: {{kind: window, size: 1.0, hop: 0.1}}
  model: {{kind: model, checkpoint: "{checkpoint}"}}
sinks:
  predictions: {{kind: lsl_outlet, input: model}}
  filtered: {{kind: lsl_outlet, input: bandpass}}
record:
  out: "{out}"
  subject: "01"
  task: loopback
  extra: ["source_id='{uid}-markers'"]
"""


def save_reference_checkpoint(path: Path, seed: int, in_channels: int = 4) -> Path:
    """A reference_conv checkpoint (two classes) with the given weight seed."""
    from edgestream.models import create_model
    from edgestream.train.checkpoint import save_checkpoint

    model = create_model("reference_conv", in_channels=in_channels, seed=seed)
    return save_checkpoint(path, model, "reference_conv", {"in_channels": in_channels, "seed": seed},
                           data={"classes": ["left", "right"]})


@pytest.fixture
def reference_checkpoint() -> Callable[..., Path]:
    """``reference_checkpoint(path, seed, in_channels=4)`` writes a reference_conv checkpoint."""
    return save_reference_checkpoint


@pytest.fixture(scope="session")
def recorded_session(tmp_path_factory) -> dict:
    """``edgestream run`` of a pipeline with a ``record:`` section on a loopback simulator (4 ch + counter
    at 250 Hz, with cue markers), 6 s. Returns paths (xdf, manifest, pipeline, checkpoints a/b), the
    run's output and exit code. Tests copy the files before changing them."""
    from click.testing import CliRunner

    from edgestream.cli.main import cli
    from edgestream.record.naming import manifest_path
    from edgestream.sources.eeg_model import EEGParams
    from edgestream.sources.simulate_eeg import EEGSimulator

    tmp = tmp_path_factory.mktemp("session")
    uid = f"es-test-session-{uuid.uuid4().hex[:8]}"
    ckpt_a = save_reference_checkpoint(tmp / "model_a.pt", seed=0)
    ckpt_b = save_reference_checkpoint(tmp / "model_b.pt", seed=1)
    pipe = tmp / "session.yaml"
    pipe.write_text(SESSION_PIPELINE.format(uid=uid, checkpoint=ckpt_a, out=tmp / "recordings"))
    sim = EEGSimulator(n_channels=4, sfreq=250.0, chunk_size=5, name=uid, source_id=uid, counter=True,
                       params=EEGParams(iti=(0.5, 1.0), cue_len=0.4)).start()
    try:
        result = CliRunner().invoke(cli, ["run", str(pipe), "--duration", "6"])
    finally:
        sim.stop()
    xdf = tmp / "recordings" / "sub-01" / "eeg" / "sub-01_task-loopback_run-01_eeg.xdf"
    return {"uid": uid, "dir": tmp, "xdf": xdf, "manifest": manifest_path(xdf), "pipeline": pipe, "checkpoint_a": ckpt_a,
            "checkpoint_b": ckpt_b, "output": result.output, "exit_code": result.exit_code,
            "exception": result.exception, "simulated": sim.samples_pushed}
