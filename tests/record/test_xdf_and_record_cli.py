"""Reading sessions back (structure check, truncation vs corruption, predicates on recorded headers)
and `edgestream record` on loopback streams."""

from __future__ import annotations

import json
import struct
import time

import numpy as np
import pytest
from click.testing import CliRunner

from edgestream.cli.main import cli
from edgestream.core.errors import ConfigError
from edgestream.record import LabRecorderCLI, XdfCorrupted, load_session, scan_xdf

pytestmark = pytest.mark.timeout(300)


def chunk_offsets(data: bytes) -> list[tuple[int, int, int]]:
    """``(offset, tag, length)`` of every chunk of an XDF file (test helper, independent of the scanner)."""
    out, pos = [], 4
    while pos < len(data):
        nb = data[pos]
        length = int.from_bytes(data[pos + 1:pos + 1 + nb], "little")
        tag = struct.unpack_from("<H", data, pos + 1 + nb)[0]
        out.append((pos, tag, length))
        pos += 1 + nb + length
    return out


@pytest.fixture(scope="module")
def xdf_bytes(recorded_session) -> bytes:
    return recorded_session["xdf"].read_bytes()


def test_scan_of_a_complete_file(recorded_session):
    scan = scan_xdf(recorded_session["xdf"])
    assert not scan.truncated and not scan.unfinished and "complete (6 streams" in scan.describe()
    session = load_session(recorded_session["xdf"])
    for s in session.streams:
        assert len(s.stamps) == scan.streams[s.stream_id].samples == int(s.footer["sample_count"])
    uid = recorded_session["uid"]
    (eeg,) = [s for s in session.streams if s.matches(f"source_id='{uid}' and type='EEG'")]
    assert eeg.header.labels[-1] == "counter" and eeg.data.dtype == np.float32
    assert not eeg.matches("type='Markers'")
    markers = [s for s in session.streams if s.matches("type='Markers'")]
    assert len(markers) == 1 and markers[0].data.dtype == object


@pytest.mark.parametrize("fraction", [0.5, 0.93])
def test_truncated_file_loads_up_to_the_cut(recorded_session, xdf_bytes, tmp_path, fraction):
    path = tmp_path / "cut.xdf"
    path.write_bytes(xdf_bytes[: int(len(xdf_bytes) * fraction)])
    session = load_session(path)
    assert session.scan.truncated and "truncated" in session.scan.describe()
    full = {s.name: len(s.stamps) for s in load_session(recorded_session["xdf"]).streams}
    for s in session.streams:
        assert len(s.stamps) <= full[s.name]
        if s.header.channel_format != "string" and len(s.stamps) > 1:
            np.testing.assert_array_equal(np.diff(s.data[:, -1]), 1)  # what is there is intact
    assert sum(len(s.stamps) for s in session.streams) > 0


def test_unusable_files_get_clear_errors(tmp_path, xdf_bytes):
    empty = tmp_path / "empty.xdf"
    empty.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"must contain a recording; it is empty \(0 bytes\)"):
        scan_xdf(empty)
    other = tmp_path / "other.xdf"
    other.write_bytes(b"PK\x03\x04 not an xdf")
    with pytest.raises(ConfigError, match=r"must start with the magic bytes 'XDF:'; got b'PK\\x03\\x04'"):
        scan_xdf(other)
    headless = tmp_path / "headless.xdf"
    headless.write_bytes(xdf_bytes[:30])
    with pytest.raises(ConfigError, match="must hold at least one complete stream header; it has none"):
        scan_xdf(headless)
    with pytest.raises(ConfigError, match="session must be an existing XDF file"):
        scan_xdf(tmp_path / "missing.xdf")


def test_corrupted_structure_is_named_by_offset(tmp_path, xdf_bytes):
    chunks = chunk_offsets(xdf_bytes)
    samples = [c for c in chunks if c[1] == 3]
    off, _, _ = samples[len(samples) // 2]
    bad = bytearray(xdf_bytes)
    bad[off] = 3  # a length field of 3 bytes does not exist
    path = tmp_path / "bad_length.xdf"
    path.write_bytes(bytes(bad))
    with pytest.raises(XdfCorrupted, match=rf"corrupted at byte {off} \(chunk \d+\): its length field claims 3 bytes"):
        scan_xdf(path)
    bad = bytearray(xdf_bytes)
    nb = bad[off]
    bad[off + 1 + nb] = 9  # tag 9
    path.write_bytes(bytes(bad))
    with pytest.raises(XdfCorrupted, match=r"its tag is 9 \(XDF chunk tags are 1-6\)"):
        scan_xdf(path)
    bad = bytearray(xdf_bytes)
    bad[off + 1 + nb + 2 + 4 + 1 + 1] = 5  # the first sample's timestamp flag (0 or 8)
    path.write_bytes(bytes(bad))
    with pytest.raises(XdfCorrupted, match="a samples chunk of stream .* does not add up"):
        scan_xdf(path)
    header = next(c for c in chunks if c[1] == 2)
    bad = bytearray(xdf_bytes)
    bad[header[0] + 20: header[0] + 24] = b"<<<<"
    path.write_bytes(bytes(bad))
    with pytest.raises(XdfCorrupted, match="the stream header is not valid XML"):
        scan_xdf(path)


def test_record_cli(uid, tmp_path):
    """`edgestream record`: BIDS path, manifest, every sample of the selected streams, old files renamed."""
    from edgestream.record.naming import BidsName, manifest_path
    from edgestream.sources.simulate_eeg import EEGSimulator

    out = tmp_path / "rec"
    target = BidsName("07", "rest", 2, "1").path(out)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"an earlier recording")
    sim = EEGSimulator(n_channels=2, sfreq=200.0, chunk_size=5, name=uid, source_id=uid, counter=True).start()
    try:
        result = CliRunner().invoke(cli, ["record", "-p", f"source_id='{uid}'", "-p", f"source_id='{uid}-markers'",
                                          "--out", str(out), "--subject", "07", "--session", "1", "--task", "rest",
                                          "--run", "2", "--duration", "2"])
    finally:
        sim.stop()
    assert result.exit_code == 0, result.output
    assert f"recording 2 stream(s) to {target}" in result.output
    assert "an earlier recording sub-07_ses-1_task-rest_run-02_eeg.xdf was renamed sub-07_ses-1_task-rest_run-02_eeg.old-" \
        in result.output
    old = [p for p in target.parent.iterdir() if ".old-" in p.name]
    assert len(old) == 1 and old[0].read_bytes() == b"an earlier recording"
    session = load_session(target)
    (eeg,) = session.by_source_id(uid)
    assert len(eeg.stamps) >= 300 and eeg.footer is not None
    np.testing.assert_array_equal(np.diff(eeg.data[:, -1]), 1)
    m = json.loads(manifest_path(target).read_text())
    assert m["status"] == "complete" and m["pipeline"] is None
    assert sorted(s["source_id"] for s in m["streams"]) == sorted([uid, f"{uid}-markers"])
    assert m["files"][0]["samples"][uid] == len(eeg.stamps)
    assert f"{uid} {len(eeg.stamps)}" in result.output


def test_record_cli_errors(uid):
    runner = CliRunner()
    result = runner.invoke(cli, ["record", "--subject", "01", "--task", "x"])
    assert result.exit_code == 2 and "record needs --predicate XPATH (repeatable) or --all; got neither" in result.output
    result = runner.invoke(cli, ["record", "--all", "-p", "type='EEG'", "--subject", "01", "--task", "x"])
    assert result.exit_code == 2 and "--all and --predicate exclude each other" in result.output
    result = runner.invoke(cli, ["record", "--all", "--subject", "s_1", "--task", "x"])
    assert result.exit_code == 2 and "subject must be a BIDS label" in result.output
    result = runner.invoke(cli, ["record", "-p", f"source_id='{uid}'", "--subject", "01", "--task", "x", "--wait", "0.3"])
    assert result.exit_code == 1 and f"predicate \"source_id='{uid}'\" matched no stream within 0.3 s" in result.output


def test_labrecorder_refuses_to_overwrite_and_reports_unmatched(uid, tmp_path):
    existing = tmp_path / "x.xdf"
    existing.write_bytes(b"keep")
    with pytest.raises(ConfigError, match="path must be a new file"):
        LabRecorderCLI(existing, [f"source_id='{uid}'"]).start()
    rec = LabRecorderCLI(tmp_path / "y.xdf", [f"source_id='{uid}'"])
    t0 = time.monotonic()
    with pytest.raises(Exception, match="matched no stream"):
        rec.start(timeout=20)
    assert time.monotonic() - t0 < 20 and not rec.alive and existing.read_bytes() == b"keep"
    with pytest.raises(ConfigError, match="predicates must be a non-empty list"):
        LabRecorderCLI(tmp_path / "z.xdf", [])

