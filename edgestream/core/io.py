"""Sources and sinks: where chunks enter and leave a pipeline.

Source lifecycle: ``info = source.start()`` (resolve/open; the graph is validated against
``info`` before any sample is read) → ``source.read(timeout)`` repeatedly → ``source.stop()``.
Sink lifecycle: ``sink.build(info)`` → ``sink.start()`` → ``sink.write(chunk)`` → ``sink.stop()``.
Both are context managers. Tear-down order in a pipeline: sources (inlets) first, then sinks
(outlets), so no consumer is left reading from a vanished outlet.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
from collections.abc import Callable
from typing import Any

from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.registry import Registry

SOURCES: Registry[Source] = Registry("source", packages=("edgestream.sources",), group="edgestream.sources")
SINKS: Registry[Sink] = Registry("sink", packages=("edgestream.sinks",), group="edgestream.sinks")


class ConnectionState(str, enum.Enum):
    """Where a live stream is in its life: connected → stalled → lost → recovering → connected."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    STALLED = "stalled"  # no samples for longer than expected, inlet still open
    LOST = "lost"  # no samples for the loss timeout; trying to find the stream again
    RECOVERING = "recovering"  # stream found again / reopened, waiting for the first sample
    ENDED = "ended"  # finite source (file) finished, or stopped by the user

    @property
    def code(self) -> int:
        """Numeric code for publishing the state on a float LSL channel."""
        return list(ConnectionState).index(self)


@dataclasses.dataclass(frozen=True)
class StreamEvent:
    """A connection state change, timestamped on the LSL clock."""

    time: float  # LSL clock seconds
    stream: str  # stream name
    old: ConnectionState
    new: ConnectionState
    detail: str = ""  # e.g. "no samples for 1.0 s", "reconnected, 412 samples missing"


@dataclasses.dataclass
class DropCounts:
    """Samples lost, by cause. Never silently zero: every discarded sample lands in one field."""

    overflow: int = 0  # discarded because the consumer fell behind (reader kept at "now")
    counter_gap: int = 0  # missing values in the producer's sample-counter channel
    reconnect_gap: int = 0  # estimated samples missed while the stream was lost
    nonfinite: int = 0  # samples dropped by a NaN/inf policy
    queue: int = 0  # chunks' samples dropped at a full hand-off queue (drop-oldest/reject)

    @property
    def total(self) -> int:
        return self.overflow + self.counter_gap + self.reconnect_gap + self.nonfinite + self.queue

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self) | {"total": self.total}


class Source:
    """Base class of sources (LSL inlet, file player, simulators, camera)."""

    def __init__(self) -> None:
        self.info: StreamInfo | None = None
        self.state = ConnectionState.CONNECTING
        self.drops = DropCounts()
        self.samples_in = 0
        self.events: list[StreamEvent] = []
        self._listeners: list[Callable[[StreamEvent], None]] = []
        self._events_lock = threading.Lock()

    def start(self) -> StreamInfo:
        raise NotImplementedError

    def read(self, timeout: float) -> list[Chunk]:
        """Return the chunks available now, waiting up to ``timeout`` seconds for the first one."""
        raise NotImplementedError

    def stop(self) -> None:
        pass

    @property
    def finished(self) -> bool:
        """True once a finite source has delivered everything."""
        return self.state is ConnectionState.ENDED

    def subscribe(self, listener: Callable[[StreamEvent], None]) -> None:
        """Call ``listener(event)`` on every connection state change."""
        self._listeners.append(listener)

    def _set_state(self, new: ConnectionState, time: float, detail: str = "") -> None:
        if new is self.state:
            return
        event = StreamEvent(time, self.info.name if self.info else "?", self.state, new, detail)
        self.state = new
        with self._events_lock:
            self.events.append(event)
        for listener in list(self._listeners):
            listener(event)

    def _note(self, time: float, detail: str) -> None:
        """Record an event that is not a state change (e.g. a clock step), in ``events`` and to listeners."""
        event = StreamEvent(time, self.info.name if self.info else "?", self.state, self.state, detail)
        with self._events_lock:
            self.events.append(event)
        for listener in list(self._listeners):
            listener(event)

    def health(self) -> dict[str, Any]:
        return {"state": self.state.value, "samples_in": self.samples_in, "drops": self.drops.as_dict()}

    def __enter__(self) -> Source:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Sink:
    """Base class of sinks (LSL outlet, XDF recorder, metrics)."""

    def __init__(self) -> None:
        self.in_info: StreamInfo | None = None
        self.samples_out = 0

    def build(self, info: StreamInfo, context: dict[str, Any] | None = None) -> None:
        """Validate the stream this sink will receive. ``context`` carries pipeline metadata."""
        self.in_info = info

    def start(self) -> None:
        pass

    def write(self, chunk: Chunk) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        pass

    def __enter__(self) -> Sink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
