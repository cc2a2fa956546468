"""Clock steps on the producer: timestamps leaving the sample schedule are counted and reported,
and never discarded as lag (in-process outlets, real liblsl on loopback)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgestream.core import StreamInfo, concat
from edgestream.core.clock import local_clock
from edgestream.core.lslmeta import OutletWriter
from edgestream.sources.lsl import CLOCK_STEP_EVENTS, LSLSource

pytestmark = pytest.mark.timeout(60)


def _outlet(uid: str, counter: bool) -> OutletWriter:
    return OutletWriter(StreamInfo(uid, "EEG", uid, 100.0, ("a", "b")), uid, counter=counter)


def _read(src: LSLSource, n: int) -> list:
    chunks, deadline = [], time.monotonic() + 10
    while sum(c.n_times for c in chunks) < n and time.monotonic() < deadline:
        chunks += [c for c in src.read(0.05) if c.n_times]
    return chunks


@pytest.mark.parametrize("counter", [True, False], ids=["counter", "no_counter"])
def test_forward_step_inside_one_read_is_not_overflow(uid, counter):
    """A +2 s jump in the middle of one pushed block: before the fix, max_lag (0.5 s) measured the
    jump as lag and discarded the samples before it as overflow. Now: every sample delivered with
    its stamp, one clock step counted and reported (the cause hedged when there is no counter)."""
    w = _outlet(uid, counter)
    src = LSLSource(source_id=uid, timeout=5, max_lag=0.5, clocksync=False)  # same machine: stamps as sent
    src.start()
    src.read(0.0)
    t = local_clock() + np.arange(40) / 100.0  # 0.39 s on the schedule: within max_lag
    t[20:] += 2.0
    w.push(np.ones((40, 2), np.float32), t)
    got = concat(_read(src, 40))
    src.stop()
    w.close()
    assert got.n_times == 40 and src.drops.total == 0 and not got.gap
    np.testing.assert_array_equal(got.timestamps, t)
    assert src.clock_steps == 1
    (event,) = [e for e in src.events if "timestamps jumped" in e.detail]
    assert "by +2.000 s" in event.detail
    assert ("samples are continuous (counter)" if counter else "or samples missing upstream") in event.detail


def test_counter_gaps_are_not_clock_steps_and_events_are_capped(uid):
    """Samples missing from the counter move the stamps as expected (no step); a stream whose stamps
    jump back and forth is counted in full but reported only CLOCK_STEP_EVENTS times."""
    w = _outlet(uid, counter=False)
    src = LSLSource(source_id=uid, timeout=5, max_lag=None, counter_channel="b")
    src.start()
    src.read(0.0)
    t0 = local_clock()
    k = np.r_[0:10, 50:60]  # 40 samples missing, stamps follow the counter
    w.push(np.column_stack([np.zeros(20), k]).astype(np.float32), t0 + k / 100.0)
    assert sum(c.n_times for c in _read(src, 20)) == 20
    assert src.drops.counter_gap == 40 and src.clock_steps == 0
    k = np.arange(60, 110)
    w.push(np.column_stack([np.zeros(50), k]).astype(np.float32), t0 + k / 100.0 + np.where(k % 2, 1.0, 0.0))
    assert sum(c.n_times for c in _read(src, 50)) == 50
    src.stop()
    w.close()
    assert src.clock_steps == 49  # every sample from 61 on is 1 s off its neighbour
    assert sum("timestamps jumped" in e.detail for e in src.events) == CLOCK_STEP_EVENTS
