"""The connection state machine of :class:`~edgestream.sources.lsl.LSLSource`.

Kept apart from reading: these methods decide, from the silence since the last sample, when a
stream is stalled or lost, and find and reopen it (a background ``ContinuousResolver``) when it
comes back. They use the source's attributes (``_inlet``, ``_t_ref``, ``header``, ...).
"""

from __future__ import annotations

import logging
import time

from edgestream.core.chunk import Chunk
from edgestream.core.errors import StreamError
from edgestream.core.io import ConnectionState
from edgestream.core.lslmeta import parse_header
from edgestream.sources.lsl_resolve import build_predicate

log = logging.getLogger("edgestream.sources.lsl")

RESOLVE_SLICE = 0.5  # s; longest a read() waits for the stream to reappear, or for a reopened inlet
_S = ConnectionState


class ConnectionStates:
    """Mixin for LSLSource: stall/loss detection and recovery."""

    def _limits(self) -> tuple[float | None, float]:
        sfreq = self.info.sfreq if self.info else 0.0
        stall = self.stall_after
        if stall is None and sfreq > 0:
            stall = max(0.5, 20.0 / sfreq)
        lost = self.lost_after if self.lost_after is not None else max(3.0, 2.0 * (stall or 0.0))
        return stall, lost

    def _update_state(self, now: float, closed_detail: str = "") -> None:
        """Advance the state machine to what the silence since ``_t_ref`` implies (may pass several states)."""
        stall, lost = self._limits()
        silence = now - self._t_ref
        regular = self.info.regular
        if self.state is _S.CONNECTED:
            if self._inlet is None:
                self._set_state(_S.STALLED, now, closed_detail or "the outlet closed the connection")
            elif stall is not None and silence > stall:
                self._set_state(_S.STALLED, now, f"no samples for {silence:.2f} s (stall_after={stall:g} s)")
        if self.state is _S.STALLED and (regular or self._inlet is None) and silence > lost:
            self._close_inlet()
            self._set_state(_S.LOST, now, f"no samples for {silence:.2f} s (lost_after={lost:g} s); "
                            f"searching for {self._recovery_query()}")
        if self.state is _S.RECOVERING:
            if self._inlet is None or (regular and silence > lost):
                self._close_inlet()
                self._set_state(_S.LOST, now, f"reopened stream sent no samples for {silence:.2f} s; searching again")

    def _recovery_query(self) -> str:
        h = self.header
        return build_predicate(source_id=h.source_id) if h and h.source_id else self.query

    def _read_disconnected(self, timeout: float) -> list[Chunk]:
        """No inlet (outlet closed, or lost): look for the stream again and reopen it."""
        import pylsl

        self._update_state(self._now())
        if self._resolver is None:
            self._resolver = pylsl.ContinuousResolver(pred=self._recovery_query(), forget_after=2.0)
        found = self._resolver.results()
        if not found:
            time.sleep(max(0.0, min(timeout, RESOLVE_SLICE)))
            found = self._resolver.results()
        if not found:
            self._update_state(self._now())
            return []
        cand = parse_header(found[0].as_xml())
        h = self.header
        if (cand.n_channels, cand.channel_format) != (h.n_channels, h.channel_format) or abs(cand.sfreq - h.sfreq) > 1e-9:
            raise StreamError(f"LSL source: stream {h.name!r} (source_id {h.source_id!r}) came back as {cand.n_channels} "
                              f"{cand.channel_format} channels at {cand.sfreq:g} Hz; it was {h.n_channels} "
                              f"{h.channel_format} channels at {h.sfreq:g} Hz. Restart the pipeline for the new stream.")
        inlet = self._make_inlet(found[0])
        try:
            self._first_clock_offset(inlet, max(1.0, timeout))
            inlet.open_stream(max(0.1, min(timeout, RESOLVE_SLICE)))
        except Exception:  # not reachable yet: try again at the next read
            log.debug("reopening %r failed", h.name, exc_info=True)
            return []
        self._inlet = inlet
        self._resolver = None  # a fresh search next time: a remembered answer may be from the old outlet
        self._opened = True
        self._reopened = True
        self._pending_gap = True
        now = self._now()
        self._t_ref = now
        if self.state is _S.CONNECTED:  # outlet closed and came back within one read
            self._set_state(_S.STALLED, now, "the outlet closed the connection")
        self._set_state(_S.RECOVERING, now, f"found {cand.name!r} again on {cand.hostname or '?'} (uid {cand.uid}); "
                        "reopened, waiting for samples")
        return []
