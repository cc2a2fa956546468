"""LSLSource with in-process outlets: bad inputs give clear errors, units are scaled right, the
connection state machine follows a manual clock."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgestream.core import ConnectionState as S
from edgestream.core import StreamInfo, concat
from edgestream.core.clock import ManualClock, local_clock
from edgestream.core.errors import ConfigError, DataError, StreamError, ValidationError
from edgestream.core.lslmeta import COUNTER_MODULUS, OutletWriter
from edgestream.sources.lsl import LSLSource, build_predicate, list_streams

pytestmark = pytest.mark.timeout(60)


def outlet(sid: str, n: int = 4, sfreq: float = 100.0, units: tuple[str, ...] = (), fmt: str | None = None,
           stype: str = "EEG", counter: bool = False, labels: tuple[str, ...] | None = None) -> OutletWriter:
    dtype = "string" if fmt == "string" else "float32"
    info = StreamInfo(sid, stype, sid, sfreq, labels or tuple(f"ch{i}" for i in range(n)), units=units, dtype=dtype)
    return OutletWriter(info, sid, counter=counter, channel_format=fmt)


def read_n(src: LSLSource, n: int, limit: float = 5.0) -> list:
    chunks: list = []
    deadline = time.monotonic() + limit
    while sum(c.n_times for c in chunks) < n and time.monotonic() < deadline:
        chunks += [c for c in src.read(0.05) if c.n_times]
    assert sum(c.n_times for c in chunks) >= n, f"got {sum(c.n_times for c in chunks)} of {n} samples"
    return chunks


def started(src: LSLSource) -> LSLSource:
    src.start()
    src.read(0.0)  # opens the data connection; samples pushed from now on arrive
    return src


def stamps(t0: float, start: int, n: int, sfreq: float = 100.0) -> np.ndarray:
    return t0 + (start + np.arange(n)) / sfreq


def test_stream_not_found_lists_visible_streams(uid):
    """No matching stream: StreamError naming the predicate, the timeout, what is visible and a fix."""
    w = outlet(f"{uid}-other")
    with pytest.raises(StreamError, match=rf"no stream matching source_id='{uid}' appeared within timeout=0.3 s; "
                                          rf"visible streams: .*'{uid}-other'.*Start the producer"):
        LSLSource(source_id=uid, timeout=0.3).start()
    w.close()


def test_config_errors_name_the_argument():
    """Bad configuration is refused in the constructor with the argument, rule, value and a fix."""
    with pytest.raises(ConfigError, match="needs at least one of name, type, source_id or predicate"):
        LSLSource()
    with pytest.raises(ConfigError, match="nonfinite must be one of 'error', 'drop', 'zero', 'keep'; got 'nan'"):
        LSLSource(type="EEG", nonfinite="nan")
    with pytest.raises(ConfigError, match=r"lost_after must be longer than stall_after \(2.0 s\); got 1.0"):
        LSLSource(type="EEG", stall_after=2.0, lost_after=1.0)
    with pytest.raises(ConfigError, match="unit must be a recognised unit"):
        LSLSource(type="EEG", to_units="microfurlongs")
    assert build_predicate(name="a", type="EEG", predicate="starts-with(source_id,'x')") == \
        "name='a' and type='EEG' and (starts-with(source_id,'x'))"


def test_ambiguous_selection_is_an_error(uid):
    """Two streams match the selection: StreamError listing both and asking for a source_id."""
    a, b = outlet(f"{uid}-a"), outlet(f"{uid}-b")
    time.sleep(0.2)
    with pytest.raises(StreamError, match=r"2 streams match starts-with\(source_id.*Add source_id"):
        LSLSource(predicate=f"starts-with(source_id,'{uid}-')", timeout=2).start()
    a.close(), b.close()


@pytest.mark.parametrize("kwargs, message", [
    ({"expect_channels": 64}, r"expects 64 channels \(expect_channels\); stream '.*' delivers 4\. Connect the right"),
    ({"expect_channels": 3, "channels": ["ch0", "ch1"]}, r"expects 3 channels.*delivers 2 after channels="),
    ({"expect_sfreq": 1000.0}, r"expects a nominal rate of 1000 Hz \(expect_sfreq\); stream '.*' has 100 Hz"),
])
def test_header_mismatch_is_a_validation_error(uid, kwargs, message):
    """Wrong channel count or rate vs the expectation: ValidationError at start(), before any sample."""
    w = outlet(uid)
    with pytest.raises(ValidationError, match=message):
        LSLSource(source_id=uid, timeout=2, **kwargs).start()
    w.close()


def test_irregular_stream_where_regular_required(uid):
    """A marker (irregular) stream where a regular one is needed: ValidationError saying so."""
    w = outlet(uid, n=1, sfreq=0.0, fmt="string", stype="Markers")
    with pytest.raises(ValidationError, match=r"needs a regular stream \(require_regular=True\); stream .* is irregular"):
        LSLSource(source_id=uid, timeout=2, require_regular=True).start()
    w.close()


def test_unknown_channel_pick_suggests_names(uid):
    w = outlet(uid, labels=("C3", "Cz", "C4", "Pz"))
    with pytest.raises(ConfigError, match=r"got 'C5', which it does not have\. Did you mean .*'C3'"):
        LSLSource(source_id=uid, timeout=2, channels=["C5"]).start()
    w.close()


def test_nonfinite_policies(uid):
    """NaN/inf samples: 'error' raises DataError naming count, channel and fix; 'drop' removes
    exactly the bad samples (counted, chunk flagged as gap); 'zero' replaces the values (counted);
    'keep' delivers them unchanged (counted)."""
    w = outlet(uid, labels=("C3", "Cz", "C4", "Pz"))
    policies = {p: started(LSLSource(source_id=uid, timeout=2, nonfinite=p)) for p in ("error", "drop", "zero", "keep")}
    x = np.ones((10, 4), np.float32)
    x[3, 2], x[7, 0] = np.nan, np.inf
    t0 = local_clock()
    w.push(x, stamps(t0, 0, 10))
    time.sleep(0.1)
    with pytest.raises(DataError, match=r"samples must be finite \(nonfinite='error'\); got 2 NaN/inf values in 2 "
                                        r"samples, first in channel 'C4'.*set nonfinite='drop'"):
        read_n(policies["error"], 10)
    dropped = read_n(policies["drop"], 8)
    assert sum(c.n_times for c in dropped) == 8 and dropped[0].gap
    assert policies["drop"].drops.nonfinite == 2 and np.isfinite(dropped[0].data).all()
    kept = stamps(t0, 0, 10)[[0, 1, 2, 4, 5, 6, 8, 9]]  # the stamps of exactly the finite samples
    np.testing.assert_allclose(dropped[0].timestamps - dropped[0].timestamps[0], kept - kept[0], atol=1e-9)
    zeroed = concat(read_n(policies["zero"], 10))
    assert policies["zero"].nonfinite_replaced == 2 and zeroed.data[3, 2] == 0 and zeroed.data[7, 0] == 0
    assert policies["zero"].drops.total == 0 and not zeroed.gap
    kept_as_is = concat(read_n(policies["keep"], 10))
    assert policies["keep"].nonfinite_kept == 2 and np.isnan(kept_as_is.data[3, 2]) and np.isinf(kept_as_is.data[7, 0])
    assert policies["keep"].drops.total == 0 and not kept_as_is.gap
    for src in policies.values():
        src.stop()
    w.close()


@pytest.mark.parametrize("declared, kwargs, value, to_units, expected", [
    ("microvolts", {}, 5.0, "uV", 5.0),  # unit text
    ("", {"units": 107, "unit_mul": -6}, 5.0, "uV", 5.0),  # MNE FIFF code (volt) with micro multiplier
    ("V", {}, 5e-6, "uV", 5.0),  # a stream in volts arrives in µV
    ("-6", {}, 5.0, "uV", 5.0),  # MNE-LSL's bare exponent on an EEG channel
    ("V", {}, 5e-6, "mV", 5e-3),
    ("", {"units": "V"}, 5e-6, "uV", 5.0),  # undeclared units overridden as text
])
def test_units_and_to_units(uid, declared, kwargs, value, to_units, expected):
    """Units given as text, FIFF integer codes or exponents all scale correctly with to_units."""
    w = outlet(uid, n=2, units=(declared, declared))
    src = started(LSLSource(source_id=uid, timeout=2, to_units=to_units, **kwargs))
    assert src.info.units == (to_units, to_units)
    w.push(np.full((5, 2), value, np.float32), stamps(local_clock(), 0, 5))
    chunk = read_n(src, 5)[0]
    np.testing.assert_allclose(chunk.data, expected, rtol=1e-6)
    src.stop()
    w.close()


def test_to_units_without_matching_channel(uid):
    w = outlet(uid, n=2)  # no units declared → a.u.
    with pytest.raises(ConfigError, match=r"to_units='uV' must match the quantity of at least one channel.*"
                                          r"\['a\.u\.'\]\. Declare the stream's units with units="):
        LSLSource(source_id=uid, timeout=2, to_units="uV").start()
    w.close()


def test_counter_gap_counted_and_wrap_is_not_a_gap(uid):
    """Missing counter values are counted as counter_gap (and flag the chunk); the float32 counter
    wrapping at 2**24 is continuity, not loss."""
    w = outlet(uid, n=2, counter=True)
    src = started(LSLSource(source_id=uid, timeout=2))
    assert src.info.ch_types[-1] == "counter"  # detected by type, no counter_channel needed
    t0 = local_clock()
    w.count = COUNTER_MODULUS - 3  # the next values are 2**24-3, -2, -1, 0, 1
    w.push(np.zeros((5, 2)), stamps(t0, 0, 5))
    first = read_n(src, 5)
    assert src.drops.counter_gap == 0 and not any(c.gap for c in first)
    w.count += 7  # the producer lost 7 samples
    w.push(np.zeros((5, 2)), stamps(t0, 12, 5))
    second = read_n(src, 5)
    assert src.drops.counter_gap == 7 and second[0].gap
    assert src.drops.overflow == 0 and src.drops.reconnect_gap == 0
    src.stop()
    w.close()


def test_state_machine_with_manual_clock(uid):
    """Driven by a manual clock: connected → stalled (no samples > stall_after) → connected (samples)
    → stalled → lost (> lost_after; inlet closed) → recovering (stream found and reopened) →
    connected; the 50 samples the outlet skipped while disconnected are the reconnect gap."""
    clock = ManualClock(100.0)
    w = outlet(uid, n=2)
    src = started(LSLSource(source_id=uid, timeout=2, stall_after=1.0, lost_after=3.0, clock=clock))
    t0 = local_clock()
    w.push(np.zeros((10, 2)), stamps(t0, 0, 10))
    read_n(src, 10)
    clock.advance(1.5)
    src.read(0.01)
    assert src.state is S.STALLED and "no samples for 1.50 s (stall_after=1 s)" in src.events[-1].detail
    w.push(np.zeros((10, 2)), stamps(t0, 10, 10))
    assert not read_n(src, 10)[0].gap and src.state is S.CONNECTED
    clock.advance(3.5)
    src.read(0.01)
    assert src.state is S.LOST and "searching for source_id=" in src.events[-1].detail
    src.read(1.0)  # finds the (still existing) outlet and reopens it
    assert src.state is S.RECOVERING
    w.push(np.zeros((10, 2)), stamps(t0, 70, 10))  # samples 20..69 never reached this consumer
    chunk = read_n(src, 10)[0]
    assert chunk.gap and src.state is S.CONNECTED
    assert src.drops.reconnect_gap == 50 and src.drops.counter_gap == 0 and src.drops.overflow == 0
    src.stop()
    assert [e.new for e in src.events] == [S.CONNECTED, S.STALLED, S.CONNECTED, S.STALLED, S.LOST, S.RECOVERING,
                                           S.CONNECTED, S.ENDED]
    w.close()


def test_outlet_closed_then_back(uid):
    """The outlet disappears (connection closed): stalled at once, lost after lost_after, then a
    new outlet with the same source_id is found and read; events are emitted to subscribers."""
    clock = ManualClock(0.0)
    seen = []
    w = outlet(uid, n=2)
    src = started(LSLSource(source_id=uid, timeout=2, stall_after=1.0, lost_after=2.0, clock=clock))
    src.subscribe(seen.append)
    t0 = local_clock()
    w.push(np.zeros((5, 2)), stamps(t0, 0, 5))
    read_n(src, 5)
    w.close()
    deadline = time.monotonic() + 5
    while src.state is S.CONNECTED and time.monotonic() < deadline:
        src.read(0.05)
    assert src.state is S.STALLED and seen[-1].detail == "the outlet closed the connection"
    clock.advance(2.5)
    src.read(0.05)
    assert src.state is S.LOST
    w2 = outlet(uid, n=2)
    deadline = time.monotonic() + 5
    while src.state is not S.RECOVERING and time.monotonic() < deadline:
        src.read(0.2)
    w2.push(np.zeros((5, 2)), stamps(t0, 205, 5))
    assert read_n(src, 5)[0].gap
    assert src.drops.reconnect_gap == 200
    assert [e.new for e in seen] == [S.STALLED, S.LOST, S.RECOVERING, S.CONNECTED]
    src.stop()
    w2.close()


def test_marker_stream_round_trip_and_list_streams(uid):
    """String markers arrive as str with their stamps; list_streams shows the stream's header."""
    w = outlet(uid, n=1, sfreq=0.0, fmt="string", stype="Markers")
    src = started(LSLSource(source_id=uid, timeout=2))
    assert src.info.dtype == "string" and not src.info.regular
    t0 = local_clock()
    w.push([["left"], ["right"]], [t0, t0 + 1.0])
    chunk = concat(read_n(src, 2))
    assert chunk.data.tolist() == [["left"], ["right"]]
    assert abs((chunk.timestamps[1] - chunk.timestamps[0]) - 1.0) < 1e-9  # old markers are never trimmed
    assert src.drops.total == 0
    rows = [r for r in list_streams(0.5) if r["source_id"] == uid]
    assert rows == [{"name": uid, "type": "Markers", "source_id": uid, "sfreq": 0.0, "n_channels": 1,
                     "channel_format": "string", "hostname": rows[0]["hostname"]}]
    src.stop()
    w.close()


def test_streams_cli_lists_the_stream(uid):
    """`edgestream streams` prints a table row with name, type, rate, channels and source_id."""
    from click.testing import CliRunner

    from edgestream.cli.main import cli

    w = outlet(uid, n=3, sfreq=250.0)
    result = CliRunner().invoke(cli, ["streams", "--timeout", "0.5"])
    w.close()
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split()[:4] == ["name", "type", "rate", "(Hz)"]
    row = next(r for r in rows if r.startswith(uid))
    assert row.split()[1:6] == ["EEG", "250", "3", "float32", uid]


def test_slow_pipeline_build_between_start_and_first_read_is_not_a_stall(uid):
    """A pipeline may spend seconds building stages (e.g. exporting a model) after start();
    the silence clock starts at the first read, so the stream is not declared lost meanwhile."""
    writer = outlet(uid, n=2)
    src = LSLSource(source_id=uid, stall_after=0.3, lost_after=0.6)
    src.start()
    time.sleep(1.0)  # longer than lost_after
    got = 0
    deadline = time.monotonic() + 5.0
    k = 0
    while got < 50 and time.monotonic() < deadline:
        writer.push(np.ones((5, 2), np.float32), stamps(local_clock(), k, 5))
        k += 5
        got += sum(c.n_times for c in src.read(0.05))
    src.stop()
    assert got >= 50
    assert [e.new.value for e in src.events[:-1]] == ["connected"], [str(e) for e in src.events]
