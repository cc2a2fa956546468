"""Recordings and trials: real EDF/FIF files, an XDF recorded by LabRecorder on loopback."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgestream.core import STAGES, ConfigError, DataError
from edgestream.core.stage import run_stage
from edgestream.testing import random_splits, split_chunk
from edgestream.train.epochs import EventMap, make_epochs, preprocess, split_train_val
from edgestream.train.recordings import find_recordings, load_recording, load_recordings


@pytest.fixture(scope="module")
def s001(shared_data):
    return load_recordings(shared_data / "eegmmidb" / "S001")


def test_eegmmidb_edf_loads_with_clean_names_units_and_events(s001):
    assert [r.path.name for r in s001] == ["S001R04.edf", "S001R08.edf", "S001R12.edf"]
    rec = s001[0]
    assert rec.data.shape == (20000, 64) and rec.sfreq == 160.0 and rec.data.dtype == np.float32
    assert rec.ch_names[:3] == ("Fc5", "Fc3", "Fc1") and "C3" in rec.ch_names and "T10" in rec.ch_names
    assert set(rec.units) == {"uV"}
    assert 5.0 < float(rec.data.std()) < 500.0  # µV scale, not volts
    assert rec.event_names() == {"T0": 15, "T2": 7, "T1": 8}


def test_fif_events_come_from_the_stim_channel(shared_data):
    rec = load_recording(shared_data / "eeg" / "mne_sample_audvis_raw.fif")
    assert rec.sfreq == pytest.approx(600.615, abs=1e-3) and len(rec.ch_names) == 60
    assert rec.event_names() == {"1": 7, "2": 8, "3": 8, "4": 6, "5": 1, "32": 1}


def test_event_map_aliases_and_explicit_names():
    m = EventMap.parse("left,right")
    assert m.classes == ("left", "right")
    assert (m.label_of("T1"), m.label_of("t2"), m.label_of("769"), m.label_of("T0")) == (0, 1, 0, None)
    m = EventMap.parse("aud=1|2, vis=3|4")
    assert (m.label_of("2"), m.label_of("3"), m.label_of("5")) == (0, 1, None)
    with pytest.raises(ConfigError, match="events must name at least two classes"):
        EventMap.parse("left")
    with pytest.raises(ConfigError, match="'t1' selects both 'left' and 'fists'"):
        EventMap.parse("left,fists=T1")


def test_epochs_from_eegmmidb(s001):
    epochs = make_epochs(s001, EventMap.parse("left,right"), 4.0)
    assert epochs.X.shape == (45, 64, 640) and epochs.counts() == {"left": 23, "right": 22}
    assert epochs.dropped == 0 and list(np.unique(epochs.groups)) == [0, 1, 2]
    # first T2 of R04 is at 4.2 s = sample 672
    first = np.flatnonzero(epochs.groups == 0)[0]
    np.testing.assert_array_equal(epochs.X[first], s001[0].data[672 : 672 + 640].T)
    train, val = split_train_val(epochs, 0.2)
    assert len(set(train) & set(val)) == 0 and len(train) + len(val) == 45
    for label in (0, 1):  # chronological: every validation trial of a class comes after its training trials
        order = np.lexsort((epochs.onsets, epochs.groups))
        rank = np.empty(45, int)
        rank[order] = np.arange(45)
        assert rank[train[epochs.y[train] == label]].max() < rank[val[epochs.y[val] == label]].min()


def test_epoch_errors_list_what_the_data_has(s001):
    with pytest.raises(ConfigError, match=r"no trial for \['feet'\].*Event names in the data: \{'T0': 45, 'T2': 22, 'T1': 23\}"):
        make_epochs(s001, EventMap.parse("left,feet"), 4.0)
    with pytest.raises(ConfigError, match=r"window must be a whole number \(>= 1\) of samples at 160 Hz; got 4.001 s"):
        make_epochs(s001, EventMap.parse("left,right"), 4.001)
    with pytest.raises(ConfigError, match="data must be an existing recording file or directory"):
        find_recordings("/nonexistent/dir")


def test_preprocessing_is_the_live_stage_streamed(s001, rng):
    spec = {"kind": "bandpass", "l_freq": 8.0, "h_freq": 30.0}
    offline = preprocess(s001[0], [spec])
    stage = STAGES.create("bandpass", l_freq=8.0, h_freq=30.0)
    stage.build(s001[0].stream_info())
    chunk = s001[0].as_chunk()
    live, _ = run_stage(stage, split_chunk(chunk, random_splits(chunk.n_times, rng, 200)))
    np.testing.assert_allclose(np.concatenate([c.data for c in live]), offline.data, rtol=1e-5, atol=1e-3)
    with pytest.raises(ConfigError, match="must keep the stream continuous"):
        preprocess(s001[0], [{"kind": "window", "size": 1.0, "hop": 0.5}])


def test_recordings_with_different_montages_are_refused(s001, shared_data):
    fif = load_recording(shared_data / "eeg" / "mne_sample_audvis_raw.fif")
    with pytest.raises(DataError, match="must share channels and rate"):
        make_epochs([s001[0], fif], EventMap.parse("left,right"), 1.0)


def _record_xdf(path, rec, uid, seconds=40.0):
    """Stream a slice of ``rec`` over loopback LSL (EEG + counter + markers) and record it with LabRecorderCLI."""
    import pylsl

    from edgestream.record import LabRecorderCLI

    n = int(seconds * rec.sfreq)
    info = pylsl.StreamInfo(f"eeg-{uid}", "EEG", rec.data.shape[1] + 1, rec.sfreq, "float32", f"eeg-{uid}")
    chans = info.desc().append_child("channels")
    for name in rec.ch_names:
        ch = chans.append_child("channel")
        ch.append_child_value("label", name)
        ch.append_child_value("unit", "microvolts")
        ch.append_child_value("type", "EEG")
    ch = chans.append_child("channel")
    ch.append_child_value("label", "counter")
    ch.append_child_value("type", "counter")
    markers_info = pylsl.StreamInfo(f"markers-{uid}", "Markers", 1, 0.0, "string", f"markers-{uid}")
    eeg_out, marker_out = pylsl.StreamOutlet(info), pylsl.StreamOutlet(markers_info)
    recorder = LabRecorderCLI(path, [f"source_id='eeg-{uid}'", f"source_id='markers-{uid}'"])
    recorder.start(timeout=20)
    try:
        time.sleep(1.0)
        t0 = pylsl.local_clock()
        data = np.column_stack([rec.data[:n], np.arange(n, dtype=np.float32)])
        for start in range(0, n, 320):
            block = data[start : start + 320]
            eeg_out.push_chunk(block.tolist(), [t0 + (start + i) / rec.sfreq for i in range(len(block))])
        for onset, name in rec.events:
            if onset < seconds:
                marker_out.push_sample([name], t0 + onset)
        time.sleep(1.5)
    finally:
        recorder.stop()
    return n


def test_xdf_recorded_on_loopback_gives_the_same_trials_as_the_edf(s001, tmp_path, uid):
    rec = s001[0]
    path = tmp_path / "calib.xdf"
    n = _record_xdf(path, rec, uid)
    xdf = load_recording(path)
    assert xdf.data.shape == (n, 64) and xdf.ch_names == rec.ch_names and set(xdf.units) == {"uV"}  # counter dropped
    np.testing.assert_array_equal(xdf.data, rec.data[:n])
    events = EventMap.parse("left,right")
    from_xdf = make_epochs([xdf], events, 4.0)
    trimmed = type(rec)(rec.data[:n], rec.timestamps[:n], rec.sfreq, rec.ch_names,
                        [e for e in rec.events if e[0] < 40.0], rec.path, rec.units)
    from_edf = make_epochs([trimmed], events, 4.0)
    assert len(from_xdf) == len(from_edf) >= 4 and from_xdf.dropped == from_edf.dropped == 1
    np.testing.assert_array_equal(from_xdf.y, from_edf.y)
    np.testing.assert_array_equal(from_xdf.X, from_edf.X)
    with pytest.raises(ConfigError, match=r"stream must select exactly one numeric stream .*Streams in the file:"):
        load_recording(path, stream="nope")
