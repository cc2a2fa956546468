"""LSLSource against producers running in other processes (real liblsl on loopback).

Each test states what it proves; sample counts are verified through the producer's counter
channel, never assumed.
"""

from __future__ import annotations

import signal
import time
import uuid

import numpy as np
import pytest

from edgestream.core import ConnectionState as S
from edgestream.core.chunk import concat
from edgestream.core.clock import local_clock
from edgestream.sinks.lsl_outlet import LSLOutlet
from edgestream.sources.lsl import LSLSource

pytestmark = pytest.mark.timeout(90)

SIM = ("simulate", "eeg", "--channels", "8", "--sfreq", "500", "--chunk", "10", "--counter", "--no-markers",
       "--duration", "120")


@pytest.fixture(scope="module")
def sim500_proc(module_procs):
    """One simulator subprocess (8 ch + counter, 500 Hz) shared by the tests of this module."""
    sid = f"es-test-sim500-{uuid.uuid4().hex[:8]}"
    return sid, module_procs(*SIM, "--name", sid, "--source-id", sid)


@pytest.fixture
def sim500(sim500_proc):
    return sim500_proc[0]


def _pull_all(inlet, settle: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """What an inlet has received, waiting ``settle`` s for stragglers (the producer has stopped)."""
    time.sleep(settle)
    d, t = inlet.pull_chunk(0.0, 1_000_000, None, None, True)
    return d, t


def test_counter_continuity_source_to_outlet(sim500, uid, raw_inlet):
    """Simulator subprocess → LSLSource → LSLOutlet → receiving inlet: every producer counter value
    arrives once and in order, nothing is dropped, the outlet republishes exactly the samples and
    timestamps the source delivered, and those stamps are the producer's own (same clock, up to
    liblsl's clock-offset estimate)."""
    direct = raw_inlet(sim500)  # the producer's stream, stamps as sent
    assert len(direct.pull_chunk(10.0, 50, None, 50, True)[1]) == 50  # the producer runs steadily
    # max_lag is generous here: this test is about transport continuity, and a producer stalled
    # by a busy CI machine must not turn into (correctly counted) overflow
    src = LSLSource(source_id=sim500, timeout=15, max_lag=5.0)
    info = src.start()
    assert info.ch_names[-1] == "counter" and info.ch_types == ("eeg",) * 8 + ("counter",)
    assert info.units == ("uV",) * 8 + ("a.u.",) and info.sfreq == 500.0
    sink = LSLOutlet(source_id=f"{uid}-out")
    sink.build(info, {"pipeline": "t", "node": "out", "input": "eeg"})
    sink.start()
    recv = raw_inlet(f"{uid}-out")
    got = []
    deadline = time.monotonic() + 20
    while sum(c.n_times for c in got) < 1500 and time.monotonic() < deadline:
        for chunk in src.read(0.05):
            sink.write(chunk)
            got.append(chunk)
    out, out_ts = _pull_all(recv)
    d_data, d_ts = _pull_all(direct, 0.0)
    src.stop()
    sink.stop()
    data = concat(got)
    counter = data.data[:, -1].astype(np.int64)
    assert len(counter) >= 1500
    np.testing.assert_array_equal(np.diff(counter), 1)  # once each, in order
    assert src.drops.total == 0 and src.drops.as_dict()["total"] == 0
    # the outlet republishes exactly what the source delivered, stamped with the input stamps
    assert out.shape == (len(counter), 10)
    np.testing.assert_array_equal(out[:, :9], data.data)
    np.testing.assert_array_equal(out[:, 9], np.arange(len(counter)))  # the outlet's own counter
    np.testing.assert_array_equal(out_ts, data.timestamps)
    # the source's stamps are the producer's: matched by counter value, a constant sub-ms offset
    d_counter = d_data[:, -1].astype(np.int64)
    common, i_src, i_dir = np.intersect1d(counter, d_counter, return_indices=True)
    assert len(common) >= 1000
    offset = data.timestamps[i_src] - d_ts[i_dir]
    assert np.abs(offset).max() < 1e-3 and np.ptp(offset) < 2e-4


def test_slow_consumer_overflow_counted_and_reader_at_now(sim500):
    """A reader that sleeps longer than max_lag gets only the newest max_lag seconds: the discarded
    samples are exactly the ones missing from the counter channel, counted as overflow (not as a
    counter gap), the chunk is flagged as a gap, and its newest sample is recent."""
    src = LSLSource(source_id=sim500, timeout=15, max_lag=0.2)
    src.start()
    warm = []
    deadline = time.monotonic() + 10
    while sum(c.n_times for c in warm) < 50 and time.monotonic() < deadline:
        warm += [c for c in src.read(0.05) if c.n_times]
    last = int(warm[-1].data[-1, -1])
    time.sleep(1.0)  # the consumer falls behind by ~1 s
    chunks = src.read(0.5)
    now = local_clock()
    src.stop()
    assert len(chunks) == 1
    c = chunks[0]
    counter = c.data[:, -1].astype(np.int64)
    discarded = int(counter[0]) - last - 1
    assert discarded > 0.5 * 500  # most of the second was stale
    assert src.drops.overflow == discarded
    assert src.drops.counter_gap == 0 and src.drops.reconnect_gap == 0
    assert c.gap
    np.testing.assert_array_equal(np.diff(counter), 1)
    assert c.timestamps[-1] - c.timestamps[0] <= 0.2 + 1e-9  # (stamps ~1e4 s: float rounding)
    assert now - c.timestamps[-1] < 0.25  # at "now", not a second behind


def test_outlet_killed_and_restarted(uid, procs):
    """The producer process is killed and restarted with the same source_id: the source moves
    connected → stalled → lost → recovering → connected, counts the samples missed during the
    outage as reconnect_gap (not as counter gap or overflow), flags the first chunk after it,
    and data flows again."""
    fs = 200
    args = ("simulate", "eeg", "--channels", "4", "--sfreq", str(fs), "--chunk", "4", "--counter", "--no-markers",
            "--duration", "60", "--name", uid, "--source-id", uid)
    first = procs(*args)
    src = LSLSource(source_id=uid, timeout=15, stall_after=0.3, lost_after=0.8)
    src.start()
    before = []
    deadline = time.monotonic() + 10
    while sum(c.n_times for c in before) < 100 and time.monotonic() < deadline:
        before += [c for c in src.read(0.05) if c.n_times]
    first.kill()
    first.wait()
    t_kill = local_clock()
    deadline = time.monotonic() + 5
    while src.state is not S.LOST and time.monotonic() < deadline:
        before += [c for c in src.read(0.05) if c.n_times]
    assert src.state is S.LOST
    t_spawn = local_clock()
    second = procs(*args)
    after = []
    deadline = time.monotonic() + 30
    while sum(c.n_times for c in after) < 100 and time.monotonic() < deadline:
        after += [c for c in src.read(0.05) if c.n_times]
    src.stop()
    transitions = [(e.old, e.new) for e in src.events]
    expected = [(S.CONNECTING, S.CONNECTED), (S.CONNECTED, S.STALLED), (S.STALLED, S.LOST), (S.LOST, S.RECOVERING),
                (S.RECOVERING, S.CONNECTED), (S.CONNECTED, S.ENDED)]
    assert transitions == expected, transitions
    assert sum(c.n_times for c in after) >= 100
    assert after[0].gap and not any(c.gap for c in after[1:])
    missed = src.drops.reconnect_gap
    assert missed == round((after[0].timestamps[0] - before[-1].timestamps[-1]) * fs) - 1
    assert missed >= 0.9 * (t_spawn - t_kill) * fs  # at least the time nobody was publishing
    assert src.drops.counter_gap == 0 and src.drops.overflow == 0
    resumed = concat(after).data[:, -1]
    np.testing.assert_array_equal(np.diff(resumed), 1)
    assert "samples missed while disconnected" in src.events[4].detail
    second.send_signal(signal.SIGTERM)  # SIGTERM stops the simulator cleanly
    assert second.wait(timeout=10) == 0
    assert "stopped (signal)" in second.stderr.read().decode()


def test_ctrl_c_stops_the_simulator_cleanly(sim500_proc):
    """SIGINT (Ctrl-C) ends `edgestream simulate eeg` with exit code 0 and a closing line."""
    _, proc = sim500_proc
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    assert "stopped (signal) after" in proc.stderr.read().decode()
