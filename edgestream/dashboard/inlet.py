"""The dashboard's stream reader: one LSL inlet behind the :class:`~edgestream.core.io.Source` contract.

:func:`open_reader` is the one place the dashboard creates readers, so switching to the
project's LSL source (which owns the connection state machine and loss counting for the whole
project) is a one-line change. The small :class:`InletReader` below keeps the same contract: ``start() -> StreamInfo``,
``read(timeout) -> list[Chunk]``, ``state``, ``drops``, ``events``, ``lag``, ``clock_offset``.

The stand-in reads with ``recover=False`` so that a vanished outlet raises at once and the
stream is shown as *lost*; :meth:`InletReader.reopen` attaches it to the outlet again when the
acquisition's discovery loop sees the same stream (same source_id) reappear.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pylsl

from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.errors import StreamError
from edgestream.core.io import ConnectionState, Source
from edgestream.dashboard.lslinfo import info_from_xml

log = logging.getLogger(__name__)

MAX_PULL = 4096  # samples per pull; several pulls per read drain a backlog to "now"
MAX_BUFLEN_S = 10  # liblsl's inlet buffer (seconds of data kept if the dashboard stalls)
CLOCK_REFRESH_S = 5.0  # how often the clock offset shown in the health panel is refreshed


class InletReader(Source):
    """Read one LSL stream for display.

    Parameters
    ----------
    lsl_info : pylsl.StreamInfo
        A resolved stream (from ``pylsl.resolve_streams``).
    stall_after, lost_after : float or None
        Seconds without samples before the stream counts as stalled / lost. Default: from the
        nominal rate (``max(0.5, 10/sfreq)`` and ``max(2.0, 4 × stall)``); irregular streams
        are never declared stalled by silence (only by a broken connection).
    open_timeout : float
        Seconds to wait for the full header (with channel labels) when opening.
    """

    def __init__(self, lsl_info: Any, stall_after: float | None = None, lost_after: float | None = None,
                 open_timeout: float = 5.0) -> None:
        super().__init__()
        self._lsl_info = lsl_info
        self._stall_after = stall_after
        self._lost_after = lost_after
        self.open_timeout = open_timeout
        self._inlet: Any = None
        self._counter_col: int | None = None
        self._last_counter: float | None = None
        self._last_stamp = float("nan")
        self._last_arrival = float("nan")
        self._pending_gap = False
        self._clock_checked = -1e9
        self.lag = float("nan")  # s: local_clock() − newest sample stamp at the last read
        self.clock_offset = float("nan")  # s: remote clock → local clock correction
        self.uid = lsl_info.uid()

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> StreamInfo:
        self._open(self._lsl_info)
        return self.info

    def _open(self, lsl_info: Any) -> None:
        inlet = pylsl.StreamInlet(lsl_info, max_buflen=MAX_BUFLEN_S, recover=False,
                                  processing_flags=pylsl.proc_clocksync)
        try:
            full = inlet.info(self.open_timeout)
            inlet.open_stream(self.open_timeout)
        except Exception as exc:
            raise StreamError(f"could not open LSL stream {lsl_info.name()!r} ({lsl_info.source_id()!r}): {exc}. "
                              "Check that its outlet is still running.") from None
        info = info_from_xml(full.as_xml())
        if self.info is not None and info.n_channels != self.info.n_channels:
            inlet.close_stream()
            raise StreamError(f"stream {info.name!r} came back with {info.n_channels} channels instead of "
                              f"{self.info.n_channels}; it is shown as lost. Restart the dashboard to follow it.")
        self.info = info
        self._inlet = inlet
        self.uid = lsl_info.uid()
        counters = [i for i, (n, t) in enumerate(zip(info.ch_names, info.ch_types)) if t == "counter" or n == "counter"]
        self._counter_col = counters[-1] if counters else None
        self._last_arrival = local_clock()

    def reopen(self, lsl_info: Any) -> None:
        """Attach to the stream again after it was lost (a new outlet with the same identity)."""
        self._close()
        self._open(lsl_info)
        self._pending_gap = True
        self._set_state(ConnectionState.RECOVERING, local_clock(), "outlet found again")

    def stop(self) -> None:
        self._close()
        self._set_state(ConnectionState.ENDED, local_clock(), "stopped by the dashboard")

    def _close(self) -> None:
        if self._inlet is not None:
            try:
                self._inlet.close_stream()
            except Exception:  # closing a lost inlet may fail; nothing left to release
                pass
            self._inlet = None

    # --- reading -----------------------------------------------------------------------------
    @property
    def stall_after(self) -> float:
        if self._stall_after is not None:
            return self._stall_after
        sfreq = self.info.sfreq if self.info else 0.0
        return max(0.5, 10.0 / sfreq) if sfreq > 0 else float("inf")

    @property
    def lost_after(self) -> float:
        if self._lost_after is not None:
            return self._lost_after
        return max(2.0, 4.0 * self.stall_after)

    def read(self, timeout: float = 0.0) -> list[Chunk]:
        """Everything the inlet holds now (drained), as one chunk; ``[]`` when nothing arrived."""
        if self._inlet is None or self.state in (ConnectionState.LOST, ConnectionState.ENDED):
            return []
        now = local_clock()
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        try:
            wait = timeout
            while True:
                data, stamps = self._inlet.pull_chunk(timeout=wait, max_samples=MAX_PULL, as_numpy=True)
                wait = 0.0
                if len(stamps) == 0:
                    break
                parts.append((data, stamps))
                if len(stamps) < MAX_PULL:
                    break
        except pylsl.util.LostError:
            self._set_state(ConnectionState.LOST, now, "outlet closed the connection")
            self._close()
            return []
        self._refresh_clock(now)
        if not parts:
            idle = now - self._last_arrival
            if self.state is ConnectionState.CONNECTED and idle > self.stall_after:
                self._set_state(ConnectionState.STALLED, now, f"no samples for {idle:.1f} s")
            if self.state is ConnectionState.STALLED and idle > self.lost_after:
                self._set_state(ConnectionState.LOST, now, f"no samples for {idle:.1f} s")
            return []
        data = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        stamps = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        if self.info.dtype == "string":
            data = np.vectorize(lambda b: b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b),
                                otypes=[object])(data)
        gap = self._count_gaps(data, stamps)
        self._last_arrival = now
        self._last_stamp = float(stamps[-1])
        self.lag = now - self._last_stamp
        self.samples_in += len(stamps)
        if self.state is not ConnectionState.CONNECTED:
            self._set_state(ConnectionState.CONNECTED, now, "samples arriving")
        return [Chunk.make(data, stamps, self.info, gap=gap)]

    def _count_gaps(self, data: np.ndarray, stamps: np.ndarray) -> bool:
        """Count lost samples: counter-channel jumps, and the estimated span missed while lost."""
        gap = self._pending_gap
        col = self._counter_col
        if col is not None and self.info.dtype != "string":
            counter = data[:, col].astype(np.float64)
            prev = self._last_counter
            steps = np.diff(counter, prepend=counter[0] if prev is None else prev)
            missing = int(np.sum(np.clip(steps - 1, 0, None)[steps > 1]))
            self._last_counter = float(counter[-1])
            if missing and self._pending_gap:
                self.drops.reconnect_gap += missing
            elif missing:
                self.drops.counter_gap += missing
                gap = True
        elif self._pending_gap and self.info.sfreq > 0 and np.isfinite(self._last_stamp):
            self.drops.reconnect_gap += max(0, int(round((stamps[0] - self._last_stamp) * self.info.sfreq)) - 1)
        self._pending_gap = False
        return gap

    def _refresh_clock(self, now: float) -> None:
        if now - self._clock_checked < CLOCK_REFRESH_S:
            return
        self._clock_checked = now
        try:
            self.clock_offset = float(self._inlet.time_correction(timeout=0.0))
        except Exception:  # not estimated yet (first query still running): keep the previous value
            pass

    def health(self) -> dict[str, Any]:
        return super().health() | {"lag_s": self.lag, "clock_offset_s": self.clock_offset}


def open_reader(lsl_info: Any) -> Source:
    """Create (not start) the reader for a resolved stream."""
    return InletReader(lsl_info)
