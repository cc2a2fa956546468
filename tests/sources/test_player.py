"""File replay with real recordings: FIF (subprocess, `edgestream play`), EDF (in-process player and
source), XDF (recorded here with LabRecorderCLI, then replayed). Values, markers and timing are
compared with what MNE / pyxdf read from the same files."""

from __future__ import annotations

import time

import numpy as np
import pytest
from click.testing import CliRunner

from edgestream.core import SOURCES
from edgestream.core import ConnectionState as S
from edgestream.core.chunk import concat
from edgestream.sources.lsl import LSLSource
from edgestream.sources.player import FilePlayer

pytestmark = pytest.mark.timeout(90)


def _collect(sources: dict[str, LSLSource], done, limit: float) -> dict[str, list]:
    """Read every source until ``done(chunks)`` or ``limit`` seconds."""
    chunks: dict[str, list] = {k: [] for k in sources}
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not done(chunks):
        for key, src in sources.items():
            chunks[key] += [c for c in src.read(0.01) if c.n_times]
    return chunks


def _started(**kwargs) -> LSLSource:
    # max_lag=None: these tests check that every sample arrives; trimming a backlog when a loaded
    # machine delays the reader is the overflow policy, tested on its own in test_lsl_live.py
    src = LSLSource(timeout=30, max_lag=None, **kwargs)
    src.start()
    src.read(0.0)  # open the data connection: the player waits for this consumer
    return src


def test_fif_replay_in_subprocess(uid, procs, shared_data):
    """`edgestream play` of the MNE sample recording (EEG channels, 8× speed, counter): every sample
    arrives once, in µV, equal to MNE's data; the stim events arrive as markers with the codes of
    the recording's event file, stamped at their sample."""
    import mne

    path = shared_data / "eeg" / "mne_sample_audvis_raw.fif"
    proc = procs("play", str(path), "--speed", "8", "--picks", "eeg", "--counter", "--name", uid, "--source-id", uid,
                 "--wait", "60")
    raw = mne.io.read_raw(path, preload=True, verbose="error").pick("eeg")
    n = raw.n_times
    eeg, mk = _started(source_id=uid), _started(source_id=f"{uid}-markers")  # playback starts now
    got = _collect({"eeg": eeg, "mk": mk}, lambda c: sum(x.n_times for x in c["eeg"]) >= n, 40)
    data = concat(got["eeg"])
    assert eeg.info.ch_names == tuple(raw.ch_names) + ("counter",)
    assert eeg.info.units == ("uV",) * 60 + ("a.u.",) and eeg.info.sfreq == pytest.approx(raw.info["sfreq"])
    np.testing.assert_array_equal(data.data[:, -1], np.arange(n))  # all samples, once, in order
    np.testing.assert_allclose(data.data[:, :-1], raw.get_data().T * 1e6, rtol=1e-6, atol=1e-6)
    assert eeg.drops.total == 0
    events = mne.read_events(shared_data / "eeg" / "mne_sample_audvis-eve.fif")
    markers = concat(got["mk"])
    assert [row[0] for row in markers.data] == [str(code) for code in events[:, 2]]
    at_sample = data.timestamps[events[:, 0] - raw.first_samp]
    np.testing.assert_allclose(markers.timestamps, at_sample, atol=2e-4)  # two inlets' clock offsets
    assert proc.wait(timeout=20) == 0  # the player ends by itself after the file (and a short linger)
    assert "stopped (finished)" in proc.stderr.read().decode()


def test_edf_player_annotations_and_values(uid, shared_data):
    """An eegmmidb EDF (64 ch, 160 Hz) replayed at 50×: names without PhysioNet's dots, values in µV
    equal to MNE's, T0/T1/T2 annotations as markers in order and at their sample."""
    import mne

    path = shared_data / "eegmmidb" / "S001" / "S001R04.edf"
    raw = mne.io.read_raw(path, preload=True, verbose="error")
    player = FilePlayer(path, speed=50, counter=True, source_id=uid, wait_for_consumers=20).start()
    try:
        eeg, mk = _started(source_id=uid), _started(source_id=f"{uid}-markers")
        got = _collect({"eeg": eeg, "mk": mk}, lambda c: sum(x.n_times for x in c["eeg"]) >= raw.n_times, 30)
    finally:
        player.stop()
    data = concat(got["eeg"])
    assert eeg.info.ch_names[:3] == ("Fc5", "Fc3", "Fc1") and eeg.info.units[0] == "uV"
    np.testing.assert_array_equal(data.data[:, -1], np.arange(raw.n_times))
    np.testing.assert_allclose(data.data[:, :-1], raw.get_data().T * 1e6, rtol=1e-6, atol=1e-4)
    markers = concat(got["mk"])
    ann = raw.annotations
    assert [row[0] for row in markers.data] == list(ann.description) and set(ann.description) == {"T0", "T1", "T2"}
    idx = raw.time_as_index(ann.onset, use_rounding=True, origin=ann.orig_time)
    np.testing.assert_allclose(markers.timestamps, data.timestamps[idx], atol=2e-4)


def test_file_source_in_process_and_loop(shared_data):
    """Kind "file" replays a recording without LSL: the samples equal MNE's, the source ends at the
    end of the file, and with loop=True it continues with increasing stamps and counter."""
    import mne

    path = shared_data / "eegmmidb" / "S001" / "S001R08.edf"
    expected = (mne.io.read_raw(path, preload=True, verbose="error").get_data().T * 1e6).astype(np.float32)
    src = SOURCES.create("file", path=str(path), speed=None, chunk_size=1000)
    info = src.start()
    chunks = []
    while not src.finished:
        chunks += src.read(0.1)
    data = concat(chunks)
    assert info.sfreq == 160.0 and src.state is S.ENDED
    np.testing.assert_array_equal(data.data, expected)
    looped = SOURCES.create("file", path=str(path), speed=None, chunk_size=5000, loop=True, counter=True)
    looped.start()
    part = concat([c for _ in range(10) for c in looped.read(0.1)])
    n = len(expected)
    assert part.n_times == 50000 and not looped.finished
    np.testing.assert_array_equal(part.data[:, -1], np.arange(50000))
    np.testing.assert_array_equal(part.data[n:2 * n, :-1], expected)  # second pass, same samples
    np.testing.assert_allclose(np.diff(part.timestamps), 1 / 160.0, atol=1e-9)  # seamless across the loop


def test_xdf_recorded_with_labrecorder_replays(uid, tmp_path):
    """A session recorded here with LabRecorderCLI (simulated EEG with counter + cue markers) is
    replayed by the player: every stream of the file comes back, values sample for sample, the
    relative timing of samples and markers preserved (compressed by the speed)."""
    import pyxdf

    from edgestream.record import LabRecorderCLI
    from edgestream.sources.eeg_model import EEGParams
    from edgestream.sources.simulate_eeg import EEGSimulator

    fname = tmp_path / "session.xdf"
    sim = EEGSimulator(n_channels=4, sfreq=250.0, chunk_size=5, name=uid, source_id=uid, counter=True, duration=30,
                       params=EEGParams(iti=(0.3, 0.6), cue_len=0.4)).start()
    rec = LabRecorderCLI(fname, [f"source_id='{uid}'", f"source_id='{uid}-markers'"])
    try:
        rec.start(timeout=20)
        time.sleep(3.0)
        rec.stop()
    finally:
        sim.stop()
    streams, _ = pyxdf.load_xdf(str(fname), synchronize_clocks=True, dejitter_timestamps=False, verbose=False)
    orig = {s["info"]["name"][0]: s for s in streams}
    assert len(orig[uid]["time_stamps"]) > 300 and len(orig[f"{uid}-markers"]["time_stamps"]) >= 2
    speed = 2.0
    player = FilePlayer(fname, speed=speed, source_id=f"{uid}-replay", wait_for_consumers=20).start()
    try:
        # same machine, same clock: no offset estimate, so stamps come back exactly as sent
        eeg = _started(source_id=f"{uid}-replay-{uid}", clocksync=False)
        mk = _started(source_id=f"{uid}-replay-{uid}-markers", clocksync=False)
        n = len(orig[uid]["time_stamps"])
        n_mk = len(orig[f"{uid}-markers"]["time_stamps"])
        got = _collect({"eeg": eeg, "mk": mk}, lambda c: sum(x.n_times for x in c["eeg"]) >= n
                       and sum(x.n_times for x in c["mk"]) >= n_mk, 30)
    finally:
        player.stop()
    data, markers = concat(got["eeg"]), concat(got["mk"])
    assert eeg.info.name == uid and eeg.info.units == ("uV",) * 4 + ("a.u.",)
    np.testing.assert_array_equal(data.data, orig[uid]["time_series"])  # counter channel included
    t_eeg = orig[uid]["time_stamps"]
    np.testing.assert_allclose(np.diff(data.timestamps), np.diff(t_eeg) / speed, atol=1e-6)
    assert [r[0] for r in markers.data] == [r[0] for r in orig[f"{uid}-markers"]["time_series"]]
    t_mk = orig[f"{uid}-markers"]["time_stamps"]
    np.testing.assert_allclose(markers.timestamps - data.timestamps[0], (t_mk - t_eeg[0]) / speed, atol=1e-6)


def test_play_cli_errors(tmp_path):
    """A missing or unsupported file is a usage error (exit 2) naming the rule and a fix."""
    from edgestream.cli.main import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["play", str(tmp_path / "missing.fif")])
    assert result.exit_code == 2 and "file must be an existing recording" in result.output
    other = tmp_path / "notes.txt"
    other.write_text("not a recording")
    result = runner.invoke(cli, ["play", str(other)])
    assert result.exit_code == 2 and "file must have a supported suffix (.bdf, .edf, .fif" in result.output
    broken = tmp_path / "broken.edf"
    broken.write_bytes(b"0" * 300)
    result = runner.invoke(cli, ["play", str(broken)])
    assert result.exit_code == 2 and "must be readable by MNE" in result.output
