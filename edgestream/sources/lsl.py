"""Live LSL input: :class:`LSLSource` (kind ``"lsl"``) and :func:`list_streams`.

The reader sits on the latency-critical path: the engine calls :meth:`LSLSource.read` in a
tight loop; each call blocks inside liblsl until the first sample arrives (up to ``timeout``)
and then drains everything already buffered, so consumers always work at "now".

Loss is counted, never silent, and by cause (:class:`~edgestream.core.io.DropCounts`):

* ``overflow`` — samples older than ``max_lag`` behind the newest one at a read (the consumer
  fell behind; the oldest excess is discarded so the reader stays at "now");
* ``counter_gap`` — values missing in the producer's sample-counter channel;
* ``reconnect_gap`` — samples missed while the stream was gone, estimated from the timestamps
  on both sides of the outage × the nominal rate;
* ``nonfinite`` — samples dropped by ``nonfinite="drop"``.

Timestamps that leave the sample schedule (the counter, or the nominal rate, says where the
next sample belongs) by more than ``clock_step`` seconds are a *clock step* on the producer:
counted in ``clock_steps``, reported as an event, and never mistaken for lag (``max_lag``
measures time on the schedule, so a forward step does not discard the samples before it).

Connection states (events through :meth:`Source.subscribe`, list in ``source.events``)::

    connected ──no samples > stall_after, or outlet closed──> stalled
    stalled ──no samples > lost_after──> lost (inlet closed; searching by source_id)
    stalled/lost ──stream found again, new inlet opened──> recovering
    recovering ──no samples > lost_after──> lost
    stalled/lost/recovering ──samples arrive──> connected

Inlets are opened with liblsl's ``recover=False``: liblsl's own recovery blocks ``pull_chunk``
for the whole outage, which would freeze the state machine; re-resolving and reopening is
done here instead, explicitly. While the stream is gone a background ``ContinuousResolver``
keeps looking for it, so short reads never cut a search short (streams on other hosts found
through ``KnownPeers`` answer only after liblsl's unicast wave, ~0.5 s into a search).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from edgestream.core.checks import check_number, check_positive, check_type, check_value, described, fail
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.errors import ConfigError, DataError, StreamError, ValidationError
from edgestream.core.io import SOURCES, ConnectionState, Source
from edgestream.core.lslmeta import COUNTER_MODULUS, LSLHeader, parse_header
from edgestream.core.units import parse_unit
from edgestream.sources.lsl_connection import ConnectionStates
from edgestream.sources.lsl_plan import ReadPlan, plan_reading
from edgestream.sources.lsl_resolve import build_predicate, describe_visible, list_streams

__all__ = ["LSLSource", "build_predicate", "describe_visible", "list_streams"]

log = logging.getLogger(__name__)

NONFINITE_POLICIES = ("error", "drop", "zero", "keep")
CLOCK_STEP_EVENTS = 20  # clock steps reported as events (a jittery device must not grow the event list forever)
AMBIGUITY_WAIT = 0.6  # s; without a source_id, start() listens this long for a second matching stream
_S = ConnectionState


@SOURCES.register("lsl")
class LSLSource(ConnectionStates, Source):
    """Read one live LSL stream, drained to "now", with counted loss and reconnection.

    Parameters
    ----------
    name, type, source_id : str or None
        Select the stream by these header fields (combined with ``and``).
    predicate : str or None
        Extra XPath predicate, as LabRecorder takes them, e.g. ``"name='X' and type='EEG'"``.
    timeout : float
        Seconds :meth:`start` waits for the stream to appear.
    max_chunk : int
        Samples per liblsl pull (a read drains with as many pulls as needed).
    max_lag : float or None
        Seconds. Samples older than this behind the newest one available are discarded at a
        read and counted in ``drops.overflow``; None keeps every sample (regular streams only;
        marker streams are never trimmed).
    stall_after, lost_after : float or None
        Seconds without samples before the state becomes ``stalled`` / ``lost``. Defaults:
        ``max(0.5, 20 / sfreq)`` and ``max(3.0, 2 * stall_after)`` for regular streams; marker
        streams only stall when their outlet closes, and are lost ``lost_after`` (3 s) later.
    counter_channel : str, int, False or None
        Channel holding a sample counter (name or index in the stream). None: the first
        channel of type ``counter`` if there is one (edgestream's convention); False: none.
    units : str, int, sequence or mapping or None
        Override the declared units: one unit for every signal channel (not ``counter``
        channels), one per channel, or ``{channel: unit}``. Strings ("uV", "microvolts") or
        MNE FIFF codes (107 = volt, with ``unit_mul``).
    unit_mul : int
        Power-of-ten multiplier for FIFF codes in ``units`` (-6: micro).
    to_units : str or None
        Deliver channels measured in this quantity in this unit (e.g. ``"uV"``: a stream in V
        arrives multiplied by 1e6). Channels of other quantities are untouched.
    channels : sequence of str or None
        Deliver only these channels, in this order.
    nonfinite : {"error", "drop", "zero", "keep"}
        NaN/inf samples: raise :class:`DataError`; drop those samples (counted in
        ``drops.nonfinite``); replace the values by 0 (counted in ``nonfinite_replaced``); or
        deliver them unchanged (counted in ``nonfinite_kept``) for consumers that show NaN as
        "missing", such as the dashboard (ED-ViT status carries NaN for a device that missed a frame).
    expect_sfreq, expect_channels : float, int or None
        :meth:`start` raises :class:`ValidationError` unless the stream has this nominal rate
        (Hz) / delivers this many channels (after ``channels``).
    require_regular : bool
        Refuse irregular (event) streams at :meth:`start`.
    clocksync : bool
        Apply liblsl's clock-offset correction so stamps are on this machine's LSL clock.
    max_buflen : int
        Seconds liblsl buffers for this inlet (beyond ``max_lag`` only reached when the
        consumer stops reading for that long).
    clock_step : float or None
        Seconds a sample's timestamp may be off its place on the schedule (previous stamp plus
        counter step / nominal rate) before it counts as a clock step (regular streams; None:
        no check). Without a counter channel a forward jump may also be samples lost upstream;
        the event says so.
    clock : callable or None
        Time source for the connection state machine (default the LSL clock; tests pass a
        :class:`~edgestream.core.clock.ManualClock`).
    """

    def __init__(self, name: str | None = None, type: str | None = None, source_id: str | None = None,
                 predicate: str | None = None, timeout: float = 10.0, max_chunk: int = 1024,
                 max_lag: float | None = 0.5, stall_after: float | None = None, lost_after: float | None = None,
                 counter_channel: str | int | bool | None = None,
                 units: str | int | Sequence[str | int] | Mapping[str, str | int] | None = None, unit_mul: int = 0,
                 to_units: str | None = None, channels: Sequence[str] | None = None, nonfinite: str = "error",
                 expect_sfreq: float | None = None, expect_channels: int | None = None, require_regular: bool = False,
                 clocksync: bool = True, max_buflen: int = 360, clock_step: float | None = 0.5,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        for arg, value in (("name", name), ("type", type), ("source_id", source_id), ("predicate", predicate)):
            if value is not None:
                check_type(value, str, arg)
        if not any((name, type, source_id, predicate)):
            raise ConfigError("LSLSource needs at least one of name, type, source_id or predicate to select a stream; "
                              "got none. Pass e.g. type='EEG' (see `edgestream streams` for what is visible).")
        self.name, self.type, self.source_id, self.predicate = name, type, source_id, predicate
        self.timeout = check_positive(timeout, "timeout")
        self.max_chunk = check_positive(max_chunk, "max_chunk", integer=True)
        self.max_lag = None if max_lag is None else check_positive(max_lag, "max_lag")
        self.stall_after = None if stall_after is None else check_positive(stall_after, "stall_after")
        self.lost_after = None if lost_after is None else check_positive(lost_after, "lost_after")
        if self.stall_after is not None and self.lost_after is not None and self.lost_after <= self.stall_after:
            fail("lost_after", f"be longer than stall_after ({self.stall_after} s)", lost_after)
        if counter_channel is not None and not isinstance(counter_channel, (str, int)):
            fail("counter_channel", "be a channel name, an index, False or None", counter_channel)
        self.counter_channel = counter_channel
        self.units, self.unit_mul, self.to_units = units, int(unit_mul), to_units
        if to_units is not None:
            parse_unit(to_units)  # raises a clear error for an unknown unit now, not at start()
        if channels is not None:
            if isinstance(channels, str) or not all(isinstance(c, str) for c in channels):
                fail("channels", "be a list of channel names", channels, "e.g. channels=['C3', 'Cz', 'C4'].")
            channels = list(channels)
        self.channels = channels
        self.nonfinite = check_value(nonfinite, NONFINITE_POLICIES, "nonfinite")
        self.expect_sfreq = None if expect_sfreq is None else check_number(expect_sfreq, "expect_sfreq", low=0)
        self.expect_channels = None if expect_channels is None else check_positive(expect_channels, "expect_channels", integer=True)
        self.require_regular = bool(require_regular)
        self.clocksync = bool(clocksync)
        self.max_buflen = check_positive(max_buflen, "max_buflen", integer=True)
        self.clock_step = None if clock_step is None else check_positive(clock_step, "clock_step")
        self.clock_steps = 0  # timestamp jumps detected (see clock_step)
        self.clock = clock
        self._now = clock or local_clock
        self.nonfinite_replaced = 0  # values set to 0 by nonfinite="zero"
        self.nonfinite_kept = 0  # NaN/inf values delivered as they are by nonfinite="keep"
        self.lag = float("nan")  # s, LSL clock at the last read minus the newest sample delivered
        self.clock_offset = float("nan")  # s, sender's clock → this machine's, estimated when the inlet opened
        self.header: LSLHeader | None = None
        self.plan: ReadPlan | None = None  # how samples of the resolved stream become chunks
        self._inlet: Any = None
        self._resolver: Any = None  # pylsl.ContinuousResolver while the stream is gone
        self._buf: np.ndarray | None = None  # liblsl writes pulled samples here (numeric streams)
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        self._t_ref = 0.0  # state-machine clock: last sample arrival / reopen / outlet-closed moment
        self._last_ts: float | None = None  # LSL stamp of the newest sample pulled
        self._last_counter: float | None = None
        self._pending_gap = False  # loss happened; flag the next delivered chunk
        self._reopened = False  # first samples after a new inlet: estimate the reconnect gap
        self._sched: tuple[float, float | None] | None = None  # (stamp, counter) of the last sample, for clock_step

    # --- start / stop ----------------------------------------------------------------------
    @property
    def query(self) -> str:
        """The XPath predicate used to find the stream the first time."""
        return build_predicate(self.name, self.type, self.source_id, self.predicate)

    def start(self) -> StreamInfo:
        import pylsl

        query = self.query
        found = pylsl.resolve_bypred(query, 1, self.timeout)
        if not found:
            raise StreamError(f"LSL source: no stream matching {query} appeared within timeout={self.timeout:g} s; "
                              f"{describe_visible()}. Start the producer (e.g. `edgestream simulate eeg`), fix "
                              "name/type/source_id, or raise timeout.")
        if not self.source_id:
            # resolve returns at the first answer, and liblsl asks again in waves ~0.5 s apart:
            # without a source_id, wait one more wave for a second match so a choice is never arbitrary
            found = list({s.uid(): s for s in found + pylsl.resolve_bypred(query, 2, AMBIGUITY_WAIT)}.values())
        uids = {s.uid() for s in found}
        if len(uids) > 1:
            listed = "; ".join(f"{s.name()!r} (source_id {s.source_id()!r}, host {s.hostname()!r})" for s in found)
            raise StreamError(f"LSL source: {len(uids)} streams match {query}: {listed}. Add source_id=... (or a "
                              "narrower predicate) to choose one.")
        self._reset_runtime()
        inlet = self._make_inlet(found[0])
        try:
            self.header = parse_header(inlet.info(self.timeout).as_xml())
            self.plan = plan_reading(self.header, units=self.units, unit_mul=self.unit_mul, to_units=self.to_units,
                                     channels=self.channels, counter_channel=self.counter_channel)
            self.info = self.plan.info
            self._buf = None if self.plan.string else np.empty((self.max_chunk, self.header.n_channels), self.plan.dtype)
            self._validate(self.header)
            self._first_clock_offset(inlet, self.timeout)
        except BaseException:
            inlet.close_stream()
            raise
        # The data connection opens at the first read(): samples produced before the consumer
        # starts reading were never its backlog, so they are neither delivered nor counted.
        self._inlet = inlet
        self._opened = False
        self._t_ref = self._now()
        h = self.header
        self._set_state(_S.CONNECTED, self._t_ref, f"opened {h.name!r} from {h.hostname or '?'} "
                        f"({h.n_channels} ch, {h.sfreq:g} Hz, source_id {h.source_id!r})")
        return self.info

    def stop(self) -> None:
        self._close_inlet()
        self._resolver = None
        self._set_state(_S.ENDED, self._now(), "stopped")

    def _make_inlet(self, lsl_info: Any) -> Any:
        import pylsl

        flags = pylsl.proc_clocksync if self.clocksync else pylsl.proc_none
        return pylsl.StreamInlet(lsl_info, max_buflen=self.max_buflen, max_chunklen=0, recover=False,
                                 processing_flags=flags)

    def _first_clock_offset(self, inlet: Any, timeout: float) -> None:
        # liblsl's first clock-offset estimate takes ~0.6 s of probes; with clocksync the first
        # pull would block for it while samples pile up, so get it before data flows.
        if self.clocksync:
            try:
                self.clock_offset = float(inlet.time_correction(timeout))
            except TimeoutError:
                log.warning("LSL source %r: no clock-offset estimate within %.1f s; stamps may be offset",
                            self.header.name if self.header else "?", timeout)

    def _close_inlet(self) -> None:
        inlet, self._inlet = self._inlet, None
        if inlet is not None:
            try:
                inlet.close_stream()
            except Exception:  # a lost inlet may refuse; it is discarded either way
                log.debug("close_stream failed", exc_info=True)

    def _validate(self, h: LSLHeader) -> None:
        info = self.info
        if self.require_regular and h.sfreq <= 0:
            raise ValidationError(f"LSL source needs a regular stream (require_regular=True); stream {h.name!r} "
                                  f"(type {h.type!r}) is irregular (nominal rate 0). Connect a stream with a fixed "
                                  "sampling rate, or set require_regular=False.")
        if self.expect_sfreq is not None and abs(h.sfreq - self.expect_sfreq) > 1e-6 * max(1.0, self.expect_sfreq):
            raise ValidationError(f"LSL source expects a nominal rate of {self.expect_sfreq:g} Hz (expect_sfreq); "
                                  f"stream {h.name!r} has {h.sfreq:g} Hz. Connect the right stream, add a 'resample' "
                                  "stage, or set expect_sfreq to the stream's rate.")
        if self.expect_channels is not None and info.n_channels != self.expect_channels:
            picked = " after channels=..." if self.channels is not None else ""
            raise ValidationError(f"LSL source expects {self.expect_channels} channels (expect_channels); stream "
                                  f"{h.name!r} delivers {info.n_channels}{picked}. Connect the right stream, pick "
                                  "channels with channels=[...], or fix expect_channels.")

    # --- reading ---------------------------------------------------------------------------
    def read(self, timeout: float) -> list[Chunk]:
        """Chunks available now (at most one), waiting up to ``timeout`` s for the first sample."""
        inlet = self._inlet
        if inlet is None:
            if self.state is _S.ENDED or self.info is None:
                return []
            return self._read_disconnected(timeout)
        if not self._opened:
            try:
                inlet.open_stream(max(timeout, 0.5))
            except TimeoutError:  # not reachable yet; the state machine keeps time
                self._update_state(self._now())
                return []
            except Exception as exc:
                return self._on_pull_error(exc)
            self._opened = True
            # silence is measured from when data can flow, not from start(): the pipeline may
            # spend seconds building stages (model export) between start() and the first read
            self._t_ref = self._now()
        try:
            if self.plan.string:
                data, ts = inlet.pull_chunk(timeout, self.max_chunk, None, 1, True)
            else:
                data, ts = inlet.pull_chunk(timeout, self.max_chunk, self._buf, 1, True)
        except Exception as exc:
            return self._on_pull_error(exc)
        n = ts.shape[0]
        if n == 0:
            self._update_state(self._now())
            return []
        raw = data.copy() if not self.plan.string else data
        if n == self.max_chunk:  # more may be waiting: drain to now
            raw, ts = self._drain(inlet, raw, ts)
        return self._deliver(raw, ts)

    def _drain(self, inlet: Any, raw: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts, stamps = [raw], [ts]
        while True:
            try:
                if self.plan.string:
                    d, t = inlet.pull_chunk(0.0, self.max_chunk, None, None, True)
                else:
                    d, t = inlet.pull_chunk(0.0, self.max_chunk, self._buf, None, True)
            except Exception as exc:
                self._on_pull_error(exc)  # deliver what we have; the loss shows at reconnect
                break
            if t.shape[0]:
                parts.append(d.copy() if not self.plan.string else d)
                stamps.append(t)
            if t.shape[0] < self.max_chunk:
                break
        return np.concatenate(parts), np.concatenate(stamps)

    def _on_pull_error(self, exc: Exception) -> list[Chunk]:
        import pylsl

        if not isinstance(exc, pylsl.util.LostError):
            raise StreamError(f"LSL source {self.info.name!r}: pulling samples failed ({type(exc).__name__}: {exc}).") from exc
        self._close_inlet()
        now = self._now()
        if not self.info.regular:
            self._t_ref = now  # marker streams: lost_after counts from the moment the outlet closed
        self._pending_gap = True
        self._update_state(now, "the outlet closed the connection")
        return []

    def _deliver(self, raw: np.ndarray, ts: np.ndarray) -> list[Chunk]:
        now = self._now()
        info = self.info
        gap, self._pending_gap = self._pending_gap, False
        reconnect_missing = 0
        if self._reopened:
            self._reopened = False
            self._last_counter = None  # a restarted producer may restart its counter
            self._sched = None  # ... and its stamps continue after the outage, not on the old schedule
            if self._last_ts is not None and info.sfreq > 0:
                reconnect_missing = max(0, int(round((ts[0] - self._last_ts) * info.sfreq)) - 1)
                self.drops.reconnect_gap += reconnect_missing
                gap = True
        counter = raw[:, self.plan.counter_idx].astype(np.float64) if self.plan.counter_idx is not None else None
        if counter is not None:
            gap = self._check_counter(counter) or gap
        self._last_ts = float(ts[-1])
        # lag is measured on the sample schedule: stamps with clock steps taken out
        sched = ts if self.clock_step is None or info.sfreq <= 0 else self._check_clock(ts, counter, now)
        if self.max_lag is not None and info.sfreq > 0 and sched[-1] - sched[0] > self.max_lag:
            k = int(np.searchsorted(sched, sched[-1] - self.max_lag, side="left"))
            self.drops.overflow += k
            raw, ts, gap = raw[k:], ts[k:], True
        if self.plan.string:
            data = np.asarray([[v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row]
                               for row in raw], dtype=object).reshape(len(ts), -1)
            if self.plan.picks is not None:
                data = data[:, self.plan.picks]
        else:
            x = raw if self.plan.picks is None else raw[:, self.plan.picks]
            if self.plan.scale is not None:
                x = x * self.plan.scale
            data = x if x.dtype == np.float32 and x.flags.c_contiguous else np.ascontiguousarray(x, dtype=np.float32)
            if not np.isfinite(data).all():
                data, ts = self._nonfinite(data, ts)
                gap = gap or self.nonfinite == "drop"
                if ts.shape[0] == 0:
                    self._pending_gap = True
                    self._mark_alive(now, reconnect_missing)
                    return []
        self.samples_in += ts.shape[0]
        self._mark_alive(now, reconnect_missing)
        self.lag = local_clock() - float(ts[-1])
        return [Chunk(data, ts, info, gap)]

    def _mark_alive(self, now: float, reconnect_missing: int) -> None:
        self._t_ref = now
        if self.state is not _S.CONNECTED and self._inlet is not None:  # (a drain may have hit a closed outlet)
            detail = "samples arriving again"
            if reconnect_missing:
                detail += f"; about {reconnect_missing} samples missed while disconnected (drops.reconnect_gap)"
            self._set_state(_S.CONNECTED, now, detail)

    def _check_clock(self, ts: np.ndarray, counter: np.ndarray | None, now: float) -> np.ndarray:
        """Count and report clock steps in ``ts``; return the stamps with the steps taken out."""
        prev = self._sched
        self._sched = (float(ts[-1]), None if counter is None else float(counter[-1]))
        if prev is None:
            t, c = ts, counter
        else:
            t = np.concatenate(([prev[0]], ts))
            c = None if counter is None or prev[1] is None else np.concatenate(([prev[1]], counter))
        if len(t) < 2:
            return ts
        if c is not None:
            steps = np.diff(c)
            steps = np.where(steps <= -(COUNTER_MODULUS - 1) + 0.5, steps + COUNTER_MODULUS, steps)  # float32 wrap
            steps = np.maximum(steps, 1.0)  # a counter that restarted says nothing about time
        else:
            steps = 1.0
        off = np.diff(t) - steps / self.info.sfreq  # (n - 1,) or (n,) seconds off the schedule
        jumps = np.flatnonzero(np.abs(off) > self.clock_step)
        if not jumps.size:
            return ts
        shift = np.concatenate(([0.0], np.cumsum(np.where(np.abs(off) > self.clock_step, off, 0.0))))
        reported = self.clock_steps
        self.clock_steps += len(jumps)
        for k, j in enumerate(jumps[: max(0, CLOCK_STEP_EVENTS - reported)]):
            where = f"at counter {c[j + 1]:.0f}" if c is not None else f"at t={t[j + 1]:.3f} s"
            cause = ("clock step on the producer; samples are continuous (counter)" if c is not None else
                     "clock step on the producer, or samples missing upstream (no counter channel to tell)")
            self._note(now, f"timestamps jumped by {off[j]:+.3f} s {where}: {cause} (clock_steps={reported + k + 1})")
            log.warning("LSL source %r: timestamps jumped by %+.3f s %s", self.info.name, off[j], where)
        if reported <= CLOCK_STEP_EVENTS < self.clock_steps:
            log.warning("LSL source %r: more than %d clock steps; further ones are only counted (clock_steps)",
                        self.info.name, CLOCK_STEP_EVENTS)
        return (t - shift)[-len(ts):]

    def _check_counter(self, counter: np.ndarray) -> bool:
        """Count values missing from the counter channel; True if any were."""
        c = counter
        prev = self._last_counter
        self._last_counter = float(c[-1])
        n = c.shape[0]
        if (prev is None or c[0] - prev == 1) and c[-1] - c[0] == n - 1:
            return False  # the common case: contiguous
        steps = np.diff(c) if prev is None else np.diff(np.concatenate(([prev], c)))
        steps = np.where(steps <= -(COUNTER_MODULUS - 1) + 0.5, steps + COUNTER_MODULUS, steps)  # float32 wrap
        missing = int(np.sum(steps[steps > 1] - 1))
        if np.any(steps < 1):
            log.warning("LSL source %r: counter channel went backwards or repeated (producer restarted?); "
                        "gap counting resumes from the new values", self.info.name)
        self.drops.counter_gap += missing
        return missing > 0

    def _nonfinite(self, data: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bad = ~np.isfinite(data)
        if self.nonfinite == "keep":
            self.nonfinite_kept += int(bad.sum())
            return data, ts
        if self.nonfinite == "zero":
            self.nonfinite_replaced += int(bad.sum())
            data = data.copy() if not data.flags.writeable else data
            data[bad] = 0.0
            return data, ts
        rows = bad.any(axis=1)
        if self.nonfinite == "drop":
            self.drops.nonfinite += int(rows.sum())
            keep = ~rows
            return np.ascontiguousarray(data[keep]), ts[keep]
        i, j = np.argwhere(bad)[0]
        fail(f"LSL stream {self.info.name!r} samples", "be finite (nonfinite='error')",
             described(f"{int(bad.sum())} NaN/inf values in {int(rows.sum())} samples, first in channel "
                       f"{self.info.ch_names[j]!r} at t={ts[i]:.3f} s"),
             "Fix the producer, or set nonfinite='drop' (drop those samples, counted) or 'zero' (replace by 0).",
             DataError)

    def health(self) -> dict[str, Any]:
        return super().health() | {"lag_s": self.lag, "clock_offset_s": self.clock_offset,
                                   "nonfinite_replaced": self.nonfinite_replaced, "nonfinite_kept": self.nonfinite_kept,
                                   "clock_steps": self.clock_steps}
