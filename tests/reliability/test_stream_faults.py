"""Faults of a live input stream, seen through a running pipeline (LSL source → band-pass →
windows → band power): the producer killed and restarted, frozen, its clock stepped, NaN/inf
bursts, its sample rate off nominal. Every case asserts no crash, loss counted by cause (every
producer counter value is delivered or counted), and outputs flowing again.
"""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from edgestream.core import ConnectionState as S
from edgestream.core.clock import local_clock

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(180)]

FS = 250


def _sim_args(uid: str) -> tuple[str, ...]:
    return ("simulate", "eeg", "--channels", "4", "--sfreq", str(FS), "--chunk", "5", "--counter", "--no-markers",
            "--duration", "120", "--name", uid, "--source-id", uid)


def _transitions(source) -> list[tuple[S, S]]:
    return [(e.old, e.new) for e in source.events]


def _contiguous_runs(counter: np.ndarray) -> int:
    """How many contiguous stretches the delivered counter values form."""
    return 1 + int(np.sum(np.diff(counter) != 1)) if len(counter) else 0


def test_outlet_killed_and_restarted(uid, procs, pipeline, case):
    """The producer process is SIGKILLed and started again (same source_id). The user sees, in the
    run summary: events connected → stalled → lost → recovering → connected, the outage counted as
    reconnect_gap (about outage × rate), no other loss; outputs resume, the first ones after the
    gap flagged warming."""
    first = procs(*_sim_args(uid))
    run = pipeline(uid, stall_after=0.3, lost_after=1.0)
    features = run.sink("features")
    run.wait_until(lambda: features.samples() >= 10, 30, "outputs before the fault")
    first.kill()
    first.wait()
    run.wait_until(lambda: run.source.state is S.LOST, 15, "the source noticing the stream is lost")
    n_before = len(run.raw_counter())
    procs(*_sim_args(uid))
    run.wait_until(lambda: len(run.raw_counter()) > n_before + FS, 60, "one second of samples after the restart")
    raw = run.sink("raw")
    back = next(c for _, c in raw.arrivals[::-1] if c.gap)  # the first chunk after the outage
    restarted_at = float(back.timestamps[0])
    converged = lambda: any(not c.warming for _, c in list(features.arrivals) if c.timestamps[-1] >= restarted_at)  # noqa: E731
    run.wait_until(converged, 30, "converged outputs after the restart (band-pass warm-up: 3 s)")
    summary = run.stop()
    src = run.source
    drops = src.drops
    expected = [(S.CONNECTING, S.CONNECTED), (S.CONNECTED, S.STALLED), (S.STALLED, S.LOST), (S.LOST, S.RECOVERING),
                (S.RECOVERING, S.CONNECTED)]
    assert _transitions(src)[:5] == expected
    assert not summary["errors"]
    counter = run.raw_counter()
    assert _contiguous_runs(counter) == 2 and counter[n_before] < counter[n_before - 1]  # restarted at 0
    stamps = np.concatenate([c.timestamps for _, c in raw.arrivals])
    gap_s = stamps[n_before] - stamps[n_before - 1]
    assert drops.reconnect_gap == round(gap_s * FS) - 1 > 0
    assert drops.counter_gap == drops.overflow == drops.nonfinite == 0
    after = [c for _, c in features.arrivals if c.timestamps[-1] >= restarted_at]
    assert after[0].warming and not after[-1].warming  # re-warmed, then converged
    recovery = features.first_arrival_after(restarted_at) - restarted_at
    case.update(case="outlet_killed_and_restarted", samples_lost=drops.total, lost_by_cause=drops.as_dict(),
                recovery_s=round(recovery, 3),
                user_sees="summary events connected->stalled->lost->recovering->connected; "
                          f"reconnect_gap {drops.reconnect_gap} samples; outputs resume (first ones warming)",
                details={"outage_s": round(gap_s, 3), "events": summary["sources"]["eeg"]["events"]})


def test_outlet_frozen(uid, procs, pipeline, case):
    """The producer process is frozen (SIGSTOP) for 2 s, then continues (SIGCONT) and pushes what it
    owes in one burst. The user sees the source go stalled → connected, any part of the burst older
    than max_lag (0.5 s) behind the newest sample discarded and counted as overflow (the reader
    stays at "now"), outputs resuming at once."""
    proc = procs(*_sim_args(uid))
    run = pipeline(uid)
    features = run.sink("features")
    run.wait_until(lambda: features.samples() >= 10, 30, "outputs before the fault")
    proc.send_signal(signal.SIGSTOP)
    time.sleep(2.0)
    resumed = local_clock()
    proc.send_signal(signal.SIGCONT)
    run.wait_until(lambda: features.first_arrival_after(resumed) is not None, 20, "outputs after SIGCONT")
    time.sleep(1.0)
    summary = run.stop()
    src, drops = run.source, run.source.drops
    assert not summary["errors"]
    assert _transitions(src) == [(S.CONNECTING, S.CONNECTED), (S.CONNECTED, S.STALLED), (S.STALLED, S.CONNECTED),
                                 (S.CONNECTED, S.ENDED)]
    counter = run.raw_counter()
    missing = int(counter[-1] - counter[0] + 1 - len(counter))
    # every missing value is counted, as overflow (how many depends on how the catch-up burst
    # meets the reader: pieces spanning less than max_lag are delivered late rather than dropped)
    assert drops.overflow == missing
    assert drops.counter_gap == drops.reconnect_gap == 0
    recovery = features.first_arrival_after(resumed) - resumed
    case.update(case="outlet_frozen_sigstop_2s", samples_lost=drops.total, lost_by_cause=drops.as_dict(),
                recovery_s=round(recovery, 3),
                user_sees=f"source stalled then connected; overflow {drops.overflow} samples (stale part of the "
                          "catch-up burst after SIGCONT; reader kept at now); outputs resume",
                details={"events": summary["sources"]["eeg"]["events"]})


@pytest.mark.parametrize("step", [2.0, -2.0], ids=["forward", "backward"])
def test_clock_step_on_the_source(uid, producer, pipeline, case, step):
    """The producer's timestamps jump by ``step`` seconds mid-stream while its samples (counter)
    stay continuous. The user sees an event naming the step and ``clock_steps`` in the source
    health; no sample is dropped (in particular not as overflow), outputs continue and carry
    the producer's new stamps."""
    at = [np.inf]  # sample index of the step, set once the pipeline reads
    prod = producer(uid, stamp=lambda k, t0: t0 + k / FS + np.where(k >= at[0], step, 0.0), duration=60)
    run = pipeline(uid)
    features = run.sink("features")
    run.wait_until(lambda: run.sink("features").samples() >= 5, 30, "outputs before the step")
    at[0] = prod.pushed + FS // 2 + 2  # inside a push: one read sees both sides of the step
    run.wait_until(lambda: run.raw_counter()[-1] >= at[0] + 2 * FS, 30, "two seconds of samples after the step")
    summary = run.stop()
    src, drops = run.source, run.source.drops
    assert not summary["errors"]
    counter = run.raw_counter()
    assert _contiguous_runs(counter) == 1  # nothing lost
    assert drops.total == 0
    assert src.clock_steps == 1
    step_events = [e for e in src.events if "clock step" in e.detail]
    assert len(step_events) == 1 and f"{step:+.3f} s" in step_events[0].detail
    out = np.concatenate([c.timestamps for _, c in features.arrivals])
    assert out[-1] > prod.t0 + (at[0] / FS) + step  # outputs after the step carry the new stamps
    case.update(case=f"clock_step_{'forward' if step > 0 else 'backward'}_{abs(step):g}s", samples_lost=drops.total,
                lost_by_cause=drops.as_dict(), recovery_s=0.0,
                user_sees=f"event '{step_events[0].detail}'; clock_steps=1 in health; no samples dropped",
                details={"events": summary["sources"]["eeg"]["events"]})


def _nan_bursts(k, x):
    x = x.copy()
    burst = ((k >= 500) & (k < 520)) | ((k >= 900) & (k < 905))  # 20 + 5 samples
    x[burst, 1] = np.nan
    x[(k >= 700) & (k < 710), 2] = np.inf
    return x


@pytest.mark.parametrize("policy", ["drop", "zero", "error"])
def test_nan_inf_bursts(uid, producer, pipeline, case, policy):
    """Bursts of NaN/inf samples (35 samples in three bursts). ``drop``: the samples are dropped and
    counted (drops.nonfinite), the next chunk is flagged as a gap (filters re-warm), outputs stay
    finite. ``zero``: values replaced by 0, counted (nonfinite_replaced). ``error`` (the default):
    the run stops with a DataError naming the stream, channel and time and the policies that keep
    it running — no crash, no traceback."""
    prod = producer(uid, values=_nan_bursts, duration=40)
    run = pipeline(uid, nonfinite=policy)
    features = run.sink("features")
    if policy == "error":
        deadline = time.monotonic() + 30
        while run.summary is None and time.monotonic() < deadline:
            time.sleep(0.05)
        summary = run.stop()
        assert summary["errors"] and summary["errors"][0].startswith("DataError: LSL stream")
        message = summary["errors"][0]
        assert "must be finite (nonfinite='error')" in message and "channel 'C2'" in message
        assert "set nonfinite='drop'" in message
        case.update(case="nan_inf_bursts_policy_error", samples_lost=0, lost_by_cause=run.source.drops.as_dict(),
                    recovery_s=None, user_sees=f"run stops: {message[:160]}", details={"produced": prod.pushed})
        return
    run.wait_until(lambda: prod.pushed >= 1200, 30, "the bursts to pass")
    run.wait_until(lambda: len(run.raw_counter()) and run.raw_counter()[-1] >= 1150, 20, "samples after the bursts")
    summary = run.stop()
    src, drops = run.source, run.source.drops
    assert not summary["errors"]
    out = np.concatenate([c.data for _, c in features.arrivals])
    assert np.isfinite(out).all()
    counter = run.raw_counter()
    if policy == "drop":
        assert drops.nonfinite == 35 and drops.total == 35
        assert int(counter[-1] - counter[0] + 1 - len(counter)) == 35  # exactly the dropped ones are missing
    else:
        assert drops.total == 0 and src.nonfinite_replaced == 35 and _contiguous_runs(counter) == 1
    last_burst = prod.t0 + 905 / FS
    recovery = features.first_arrival_after(last_burst) - last_burst
    case.update(case=f"nan_inf_bursts_policy_{policy}", samples_lost=drops.total, lost_by_cause=drops.as_dict(),
                recovery_s=round(recovery, 3),
                user_sees=(f"nonfinite {drops.nonfinite} samples dropped (counted), outputs finite" if policy == "drop"
                           else f"{src.nonfinite_replaced} values set to 0 (nonfinite_replaced), outputs finite"),
                details={"nonfinite_replaced": src.nonfinite_replaced})


@pytest.mark.parametrize("stamping", ["host_clock", "device_clock"])
def test_sample_rate_drift(uid, producer, pipeline, case, stamping):
    """The device samples 2 % faster than its nominal 250 Hz. ``host_clock``: stamps are real times
    (what liblsl does for a driver that stamps at push time). ``device_clock``: stamps follow the
    nominal rate, so they run ahead of this machine's clock by 2 % of the elapsed time. Nothing is
    lost either way; the user sees the effective rate in the health stream and, for device-clock
    stamps, the source's lag going negative."""
    true_rate = FS * 1.02
    stamp = (lambda k, t0: t0 + k / true_rate) if stamping == "host_clock" else (lambda k, t0: t0 + k / FS)
    prod = producer(uid, true_rate=true_rate, stamp=stamp, duration=40)
    run = pipeline(uid)
    run.wait_until(lambda: prod.pushed >= 6 * true_rate, 30, "six seconds of samples")
    n0, t0 = run.source.samples_in, time.monotonic()
    time.sleep(3.0)
    rate = (run.source.samples_in - n0) / (time.monotonic() - t0)
    lag = run.source.lag
    summary = run.stop()
    drops = run.source.drops
    assert not summary["errors"]
    counter = run.raw_counter()
    assert drops.total == 0 and _contiguous_runs(counter) == 1
    assert abs(rate / true_rate - 1) < 0.05  # arrival rate = the device's true rate (busy machine: loose)
    stamps = np.concatenate([c.timestamps for _, c in run.sink("raw").arrivals])
    stamp_rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert abs(stamp_rate - (true_rate if stamping == "host_clock" else FS)) < 0.5
    if stamping == "device_clock":
        assert lag < 0  # stamps ahead of this clock
    assert run.sink("features").samples() > 50
    case.update(case=f"sample_rate_drift_plus2pct_{stamping}", samples_lost=drops.total, lost_by_cause=drops.as_dict(),
                recovery_s=0.0,
                user_sees=f"health effective rate {rate:.1f} Hz vs nominal {FS} Hz; source lag {lag * 1e3:.0f} ms; "
                          "no samples lost",
                details={"effective_rate_hz": round(rate, 2), "stamp_rate_hz": round(stamp_rate, 2),
                         "lag_ms": round(lag * 1e3, 1)})
