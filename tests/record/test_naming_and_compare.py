"""BIDS names and the never-overwrite rule; the `record:` section; output matching by timestamp."""

from __future__ import annotations

import os

import numpy as np
import pytest

from edgestream.core.errors import ConfigError
from edgestream.pipeline import load_pipeline
from edgestream.record.compare import compare_stream, format_table, match_by_time
from edgestream.record.naming import BidsName, manifest_path, reserve
from edgestream.record.pipeline_recording import parse_record


def test_bids_paths():
    name = BidsName(subject="01", task="mi", run=3, session="02")
    assert name.path("out").as_posix() == "out/sub-01/ses-02/eeg/sub-01_ses-02_task-mi_run-03_eeg.xdf"
    assert BidsName("7", "rest").stem() == "sub-7_task-rest_run-01_eeg"
    assert BidsName("7", "rest", acquisition="dry").stem(split=2) == "sub-7_task-rest_acq-dry_run-01_split-02_eeg"
    assert manifest_path("a/sub-7_task-rest_run-01_eeg.xdf").name == "sub-7_task-rest_run-01_eeg.manifest.json"
    with pytest.raises(ConfigError, match=r"subject must be a BIDS label \(letters and digits only\); got 'p-01'\. "
                                          r"E\.g\. subject='p01'\."):
        BidsName("p-01", "mi")
    with pytest.raises(ConfigError, match=r"run must lie in \[1, inf\]; got 0"):
        BidsName("01", "mi", run=0)


def test_reserve_renames_never_deletes(tmp_path):
    xdf = BidsName("01", "mi").path(tmp_path)
    assert reserve(xdf) == []  # nothing there
    xdf.parent.mkdir(parents=True)
    xdf.write_bytes(b"first")
    manifest_path(xdf).write_text("{}")
    os.utime(xdf, (1_700_000_000, 1_700_000_000))
    os.utime(manifest_path(xdf), (1_700_000_000, 1_700_000_000))
    moved = reserve(xdf)
    assert not xdf.exists() and not manifest_path(xdf).exists()
    names = sorted(new.name for _, new in moved)
    stamp = __import__("datetime").datetime.fromtimestamp(1_700_000_000).strftime("%Y%m%dT%H%M%S")
    assert names == [f"sub-01_task-mi_run-01_eeg.old-{stamp}.manifest.json", f"sub-01_task-mi_run-01_eeg.old-{stamp}.xdf"]
    xdf.write_bytes(b"second")  # same mtime again: a second old file gets a suffix, the first is kept
    os.utime(xdf, (1_700_000_000, 1_700_000_000))
    (_, second), = reserve(xdf)
    assert second.name == f"sub-01_task-mi_run-01_eeg.old-{stamp}-2.xdf" and second.read_bytes() == b"second"
    assert (xdf.parent / f"sub-01_task-mi_run-01_eeg.old-{stamp}.xdf").read_bytes() == b"first"


def test_record_section():
    assert parse_record(None, "p") is None and parse_record(False, "p") is None
    spec = parse_record(True, "mi_dbconformer")
    assert spec.name == BidsName("01", "midbconformer") and spec.out == "recordings" and spec.grace == 1.5
    spec = parse_record({"subject": 3, "session": 1, "task": "calib", "run": 2, "extra": "type='Markers'"}, "p")
    assert spec.name == BidsName("03", "calib", 2, "01") and spec.extra == ("type='Markers'",)
    with pytest.raises(ConfigError, match="record: unknown key 'subjcet'.*Did you mean 'subject'"):
        parse_record({"subjcet": "01"}, "p")
    with pytest.raises(ConfigError, match=r"record\.grace must lie in \[0, inf\]; got -1"):
        parse_record({"grace": -1}, "p")


def test_set_turns_recording_on():
    spec = load_pipeline("eeg_bandpower", ["record.subject=02", "record.out=/tmp/x"])
    assert spec.record == {"subject": 2, "out": "/tmp/x"}
    assert parse_record(spec.record, spec.name).name.subject == "02"


def test_match_by_time_pairs_in_order_within_tolerance():
    a = np.array([0.0, 0.1, 0.1, 0.2, 0.5])
    b = np.array([0.00002, 0.1, 0.1, 0.1, 0.30, 0.50001])
    ia, ib = match_by_time(a, b, 1e-4)
    assert ia.tolist() == [0, 1, 2, 4] and ib.tolist() == [0, 1, 2, 5]  # duplicates pair in order, once each


def test_compare_stream_counts_and_tolerance():
    t = np.arange(10) / 10.0
    rec = np.column_stack([np.linspace(0, 100, 10), np.arange(10)]).astype(np.float32)  # value, outlet counter
    labels, types = ["x", "counter"], ["misc", "counter"]
    rep = rec[:, :1].copy()
    rep[3, 0] += 100 * 2e-4  # 2e-4 relative to |value| = 33: beyond 1e-4 × 33
    rep[5, 0] += 1e-3  # 1e-3 absolute on 55: within 1e-4 × 55
    d = compare_stream("s", "n", rec, t, labels, types, rep[1:], t[1:] + 2e-5, ["x"], tolerance=1e-4, time_tol=1e-3,
                       span=(t[0], t[-1]))
    assert (d.recorded, d.replayed, d.matched, d.missing, d.extra, d.mismatched) == (10, 9, 9, 1, 0, 1)
    assert d.status == "DIFFERENT" and d.worst_channel == "x" and d.first_difference_s == pytest.approx(0.3)
    same = compare_stream("s", "n", rec, t, labels, types, rec[:, :1], t, ["x"], tolerance=1e-4, time_tol=1e-3,
                          span=(0.2, 0.6))  # only the recorded samples the replayed input covers count
    assert same.ok and same.recorded == same.matched == 5
    other = compare_stream("s", "n", rec, t, labels, types, rec, t, ["x", "y"], tolerance=1e-4, time_tol=1e-3,
                           span=(0, 1))
    assert other.status == "NOT COMPARED" and "channels differ" in other.note
    table = format_table([d, same, other])
    assert "DIFFERENT" in table and "first difference 0.300 s" in table and "NOT COMPARED" in table


def test_compare_nan_and_strings():
    t = np.arange(3.0)
    rec = np.array([[np.nan], [1.0], [np.inf]], np.float32)
    d = compare_stream("s", "n", rec, t, ["x"], ["misc"], rec.copy(), t, ["x"], tolerance=0, time_tol=0.1, span=(0, 2))
    assert d.ok and d.max_abs_diff == 0  # NaN equals NaN, inf equals inf
    rec = np.array([["left"], ["right"]], dtype=object)
    rep = np.array([["left"], ["rest"]], dtype=object)
    d = compare_stream("m", "n", rec, t[:2], ["cue"], ["marker"], rep, t[:2], ["cue"], tolerance=0, time_tol=0.1,
                       span=(0, 2))
    assert d.mismatched == 1 and d.first_difference_s == 1.0


def test_run_record_options_and_a_missing_recorder(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from edgestream.cli.main import cli

    result = CliRunner().invoke(cli, ["run", "eeg_bandpower", "--record", str(tmp_path), "--no-record"])
    assert result.exit_code == 2 and "--record and --no-record exclude each other" in result.output
    monkeypatch.setenv("EDGESTREAM_LABRECORDER", str(tmp_path / "nothing"))
    result = CliRunner().invoke(cli, ["run", "eeg_bandpower", "--record", str(tmp_path)])
    assert result.exit_code == 2
    assert "$EDGESTREAM_LABRECORDER must name an executable LabRecorderCLI; got" in result.output
    assert not any(tmp_path.iterdir())  # failed before any stream was resolved or file written
