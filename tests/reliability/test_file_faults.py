"""Faults in files and in the recorder: a malformed checkpoint, a corrupted or truncated XDF file on
replay, the recorder killed with SIGKILL (LabRecorderCLI itself, and the `edgestream record`
process controlling it). Each case states what the user sees."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from click.testing import CliRunner

from edgestream.cli.main import cli
from edgestream.core.clock import local_clock
from edgestream.record import load_session, scan_xdf
from edgestream.record.naming import manifest_path

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))


def _simulator(uid: str):
    from edgestream.sources.simulate_eeg import EEGSimulator

    return EEGSimulator(n_channels=4, sfreq=250.0, chunk_size=5, name=uid, source_id=uid, counter=True).start()


def _children_named(pid: int, name: str, limit: float) -> list[psutil.Process]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = [p for p in psutil.Process(pid).children(recursive=True) if name in p.name()]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no child process {name!r} of {pid} within {limit} s")


def _recorder_collecting(log: Path) -> bool:
    """LabRecorderCLI has started collecting every stream it found (what ``LabRecorderCLI.start`` waits for:
    killed before that, the recorder failed to start, which is a different case)."""
    text = log.read_text(errors="replace")
    lines = [ln.strip() for ln in text.splitlines()]
    found = sum(ln.startswith("Found ") for ln in lines)
    started = sum(ln.startswith("Started data collection") for ln in lines)
    return found > 0 and "Starting the recording" in text and started >= found


# --- checkpoints -------------------------------------------------------------------------------
def _torch_save(path: Path, obj: object) -> None:
    import torch

    torch.save(obj, path)


CHECKPOINT_FAULTS = {  # name: (make(good, bad, write_reference_checkpoint), expected message)
    "truncated": (lambda good, bad, _: bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2]),
                  r"must be a readable edgestream checkpoint; loading failed .*truncated or corrupted; re-create it"),
    "random_bytes": (lambda good, bad, _: bad.write_bytes(np.random.default_rng(0).bytes(4096)),
                     r"must be a readable edgestream checkpoint; loading failed"),
    "not_edgestream": (lambda good, bad, _: _torch_save(bad, {"weights": [1.0, 2.0]}),
                       r"must contain 'manifest' and 'state_dict'; got keys \['weights'\]\. It was not written by edgestream"),
    "wrong_configuration": (lambda good, bad, write: write(bad, seed=0, in_channels=8),
                            r"must accept windows of 4 channels × 250 samples"),
}


@pytest.mark.parametrize("fault", list(CHECKPOINT_FAULTS))
def test_malformed_checkpoint(fault, uid, tmp_path, case, recorded_session, reference_checkpoint):
    """`edgestream run` with a damaged checkpoint stops before reading any sample: exit code 2 and a
    message naming the node, the file and a fix; no recording file is started. With the good
    checkpoint back in place the same command runs."""
    make, message = CHECKPOINT_FAULTS[fault]
    good = recorded_session["checkpoint_a"]
    ckpt = tmp_path / "model.pt"
    make(good, ckpt, reference_checkpoint)
    text = recorded_session["pipeline"].read_text().replace(recorded_session["uid"], uid)
    text = text.replace(str(good), str(ckpt)).replace(str(recorded_session["dir"] / "recordings"), str(tmp_path / "rec"))
    pipe = tmp_path / "p.yaml"
    pipe.write_text(text)
    sim = _simulator(uid)
    try:
        bad = CliRunner().invoke(cli, ["run", str(pipe), "--duration", "2"])
        shutil.copy(good, ckpt)
        t0 = time.monotonic()
        fixed = CliRunner().invoke(cli, ["run", str(pipe), "--duration", "2", "--no-record"])
        rerun_s = time.monotonic() - t0
    finally:
        sim.stop()
    assert bad.exit_code == 2, bad.output
    assert "stages.model (model)" in bad.output
    assert re.search(message, bad.output), bad.output
    assert "Traceback" not in bad.output
    assert not (tmp_path / "rec").exists()  # nothing half-recorded
    assert fixed.exit_code == 0, fixed.output
    produced = int(re.search(r"predictions\s+lsl_outlet\s+(\d+)", fixed.output).group(1))
    assert produced > 0
    case.update(case=f"malformed_checkpoint_{fault}", samples_lost=0, lost_by_cause=None, recovery_s=None,
                user_sees="exit code 2 before any sample is read: " + bad.output.strip().splitlines()[-1][:220],
                details={"rerun_with_good_checkpoint": {"exit_code": fixed.exit_code, "predictions": produced,
                                                        "wall_s": round(rerun_s, 1)}})


# --- XDF files on replay -----------------------------------------------------------------------
def _copy_session(recorded_session, dest: Path, data: bytes | None = None) -> Path:
    xdf = dest / recorded_session["xdf"].name
    if data is None:
        shutil.copy(recorded_session["xdf"], xdf)
    else:
        xdf.write_bytes(data)
    shutil.copy(recorded_session["manifest"], manifest_path(xdf))
    return xdf


def _chunks(data: bytes) -> list[tuple[int, int, int]]:
    out, pos = [], 4
    while pos < len(data):
        nb = data[pos]
        length = int.from_bytes(data[pos + 1:pos + 1 + nb], "little")
        out.append((pos, struct.unpack_from("<H", data, pos + 1 + nb)[0], length))
        pos += 1 + nb + length
    return out


def test_truncated_xdf_on_replay(recorded_session, tmp_path, case):
    """A session cut at 70 % (a recorder that died, a partial copy): replay warns that the file is
    truncated, replays the part that is there and reproduces its outputs (exit 0)."""
    full = recorded_session["xdf"].read_bytes()
    xdf = _copy_session(recorded_session, tmp_path, full[: int(len(full) * 0.7)])
    result = CliRunner().invoke(cli, ["replay", str(xdf)])
    assert result.exit_code == 0, result.output
    assert "are an incomplete chunk and are ignored" in result.output and "no footer for" in result.output
    whole = {s.name: len(s.stamps) for s in load_session(recorded_session["xdf"]).streams}
    cut = {s.name: len(s.stamps) for s in load_session(xdf).streams}
    lost = sum(whole.values()) - sum(cut.values())
    case.update(case="xdf_truncated_on_replay", samples_lost=lost, lost_by_cause={"not_in_file": lost}, recovery_s=None,
                user_sees="'" + next(ln for ln in result.output.splitlines() if "warning:" in ln).strip()[:220]
                          + "'; table OK for the part that is there; exit 0",
                details={"kept_samples": cut, "file_samples": whole})


@pytest.mark.parametrize("damage", ["empty", "header_cut", "bad_length", "bad_tag"])
def test_unreadable_xdf_on_replay(recorded_session, tmp_path, case, damage):
    """Damaged files are refused with exit code 2 and a message naming the rule (and the byte offset
    of a damaged chunk) — never a traceback, never a silent partial replay."""
    full = bytearray(recorded_session["xdf"].read_bytes())
    samples = [c for c in _chunks(bytes(full)) if c[1] == 3]
    off = samples[len(samples) // 2][0]
    if damage == "empty":
        data, expected = b"", "it is empty (0 bytes)"
    elif damage == "header_cut":
        data, expected = bytes(full[:40]), "must hold at least one complete stream header"
    elif damage == "bad_length":
        full[off] = 2
        data, expected = bytes(full), f"corrupted at byte {off}"
    else:
        full[off + 1 + full[off]] = 77
        data, expected = bytes(full), "its tag is 77"
    xdf = _copy_session(recorded_session, tmp_path, data)
    result = CliRunner().invoke(cli, ["replay", str(xdf)])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    case.update(case=f"xdf_{damage}_on_replay", samples_lost=None, lost_by_cause=None, recovery_s=None,
                user_sees="exit code 2: " + result.output.strip().splitlines()[-1][:240])


def test_xdf_sample_value_changed_on_replay(recorded_session, tmp_path, case):
    """XDF has no checksums: a changed sample *value* cannot be detected in the file. What the user
    sees is the replay reporting outputs that differ, from the changed sample on (exit 1)."""
    full = bytearray(recorded_session["xdf"].read_bytes())
    session = load_session(recorded_session["xdf"])
    (eeg,) = session.by_source_id(recorded_session["uid"])
    chunks = [c for c in _chunks(bytes(full))
              if c[1] == 3 and struct.unpack_from("<I", full, c[0] + 1 + full[c[0]] + 2)[0] == eeg.stream_id]
    # a chunk from the middle: the recorded outputs cover it (the last input chunks may arrive after
    # the pipeline's last recorded output, where a change would have nothing to differ from)
    off = chunks[len(chunks) // 2][0]
    nb = full[off]
    first_value = off + 1 + nb + 2 + 4 + 1 + full[off + 1 + nb + 2 + 4] + 1 + 8  # id, n, ts flag, stamp
    full[first_value:first_value + 4] = struct.pack("<f", 5e4)
    xdf = _copy_session(recorded_session, tmp_path, bytes(full))
    result = CliRunner().invoke(cli, ["replay", str(xdf)])
    assert result.exit_code == 1, result.output
    assert "filtered" in result.output and "DIFFERENT" in result.output
    case.update(case="xdf_sample_value_changed_on_replay", samples_lost=None, lost_by_cause=None, recovery_s=None,
                user_sees="replay exits 1 and reports the outputs downstream of the changed sample as DIFFERENT "
                          "(XDF has no checksums; the file itself looks valid)")


# --- the recorder killed ----------------------------------------------------------------------
def _counter(stream) -> np.ndarray:
    return stream.data[:, -1].astype(np.int64)


def test_labrecorder_killed_during_a_run(recorded_session, uid, tmp_path, case):
    """LabRecorderCLI is SIGKILLed 4 s into a recorded `edgestream run`. The run goes on (exit 0);
    the user sees "recording problem: recorder of ... died (exit code -9) ...; recording continues
    in ..._split-02_eeg.xdf"; the first file keeps everything it had written (loaded as a truncated
    file, counters continuous, replayable), the second holds the rest of the run; the samples lost
    are the ones in flight while no recorder ran."""
    text = recorded_session["pipeline"].read_text().replace(recorded_session["uid"], uid)
    text = text.replace(str(recorded_session["dir"] / "recordings"), str(tmp_path / "rec"))
    pipe = tmp_path / "p.yaml"
    pipe.write_text(text)
    sim = _simulator(uid)
    try:
        run = subprocess.Popen([sys.executable, "-m", "edgestream", "run", str(pipe), "--duration", "12"], env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        (recorder,) = _children_named(run.pid, "LabRecorderCLI", 60)
        first = tmp_path / "rec" / "sub-01" / "eeg" / "sub-01_task-loopback_run-01_eeg.xdf"
        log = Path(os.readlink(f"/proc/{recorder.pid}/fd/1"))  # LabRecorderCLI's output, which edgestream reads
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (_recorder_collecting(log) and first.exists()
                                                   and first.stat().st_size >= 64_000):
            time.sleep(0.2)  # until edgestream counts the recording as started and a good part is on disk
        time.sleep(0.5)  # edgestream's reader of that output has seen it too
        killed_at = local_clock()
        recorder.send_signal(signal.SIGKILL)
        out, err = run.communicate(timeout=120)
    finally:
        sim.stop()
    assert run.returncode == 0, err[-3000:]
    second = first.with_name("sub-01_task-loopback_run-01_split-02_eeg.xdf")
    assert "recording problem: recorder of sub-01_task-loopback_run-01_eeg.xdf died (exit code -9)" in out
    assert f"recording continues in {second.name}" in out
    a, b = load_session(first), load_session(second)
    assert a.scan.unfinished and not b.scan.unfinished  # the killed file has no footers; the second closed cleanly
    manifest = json.loads(manifest_path(first).read_text())
    assert manifest == json.loads(manifest_path(second).read_text())
    assert manifest["status"] == "complete with problems" and "died" in manifest["files"][0]["status"]
    lost: dict[str, int] = {}
    for node, name in (("filtered", "session-bandpass"), ("predictions", "session-model")):
        (sa,), (sb,) = [s for s in a.streams if s.name == name], [s for s in b.streams if s.name == name]
        ca, cb = _counter(sa), _counter(sb)
        np.testing.assert_array_equal(np.diff(ca), 1)
        np.testing.assert_array_equal(np.diff(cb), 1)
        produced = manifest["summary"]["nodes"][node]["samples_out"]
        assert ca[0] == 0 and cb[-1] == produced - 1  # first and last output both recorded
        lost[name] = int(cb[0] - ca[-1] - 1)
        assert lost[name] == produced - len(ca) - len(cb) > 0
    (fb,) = [s for s in b.streams if s.name == "session-bandpass"]
    recovery = float(fb.stamps[0] - killed_at)
    # what was written before the kill replays
    replayed = CliRunner().invoke(cli, ["replay", str(first)])
    assert replayed.exit_code == 0, replayed.output
    case.update(case="labrecorder_sigkill_during_run", samples_lost=sum(lost.values()),
                lost_by_cause={"not_recorded_" + k: v for k, v in lost.items()}, recovery_s=round(recovery, 3),
                user_sees=next(ln for ln in out.splitlines() if "recording problem" in ln).strip()[:260],
                details={"first_file": a.scan.describe(), "run_exit_code": run.returncode,
                         "first_file_replay": "exit 0 (reproduced)"})


def test_record_process_killed(uid, tmp_path, case):
    """The `edgestream record` process is SIGKILLed. Its LabRecorderCLI reads end-of-file on its
    stdin and still closes the file: the XDF is complete (footers, counters continuous); the
    manifest keeps status "recording", which replay reports as a recording that never finished."""
    sim = _simulator(uid)
    out = tmp_path / "rec"
    try:
        proc = subprocess.Popen([sys.executable, "-m", "edgestream", "record", "-p", f"source_id='{uid}'", "--out",
                                 str(out), "--subject", "01", "--task", "kill"], env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        (recorder,) = _children_named(proc.pid, "LabRecorderCLI", 60)
        xdf = out / "sub-01" / "eeg" / "sub-01_task-kill_run-01_eeg.xdf"
        time.sleep(3.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed_at = time.monotonic()
        recorder.wait(timeout=30)  # it finishes by itself
        closed_s = time.monotonic() - killed_at
    finally:
        sim.stop()
    scan = scan_xdf(xdf)
    assert not scan.truncated and not scan.unfinished
    (eeg,) = load_session(xdf).by_source_id(uid)
    np.testing.assert_array_equal(np.diff(_counter(eeg)), 1)
    assert len(eeg.stamps) > 250
    manifest = json.loads(manifest_path(xdf).read_text())
    assert manifest["status"] == "recording" and manifest["summary"] is None
    for log in Path(tempfile.gettempdir()).glob("labrecorder-sub-01_task-kill_run-01_eeg-*.log"):
        if uid in log.read_text(errors="replace"):
            log.unlink()  # the killed controller could not remove its recorder's log
    case.update(case="record_process_sigkill", samples_lost=0, lost_by_cause={}, recovery_s=None,
                user_sees=f"XDF complete ({len(eeg.stamps)} samples, counter continuous, footers written "
                          f"{closed_s:.1f} s after the kill); manifest status stays 'recording'")
