"""Acquisition: find streams, read them on background threads, keep the newest samples.

Daemon threads, never the GUI thread:

* the **discovery** thread follows the LSL network (a continuous resolver) and opens readers
  for selected streams (each reader finds its stream again by itself after a loss);
* one **reader** thread per open stream (as mne-lsl does) drains its reader at most every
  ``poll_interval`` seconds into a fixed-size :class:`~edgestream.core.ringbuffer.RingBuffer`;
  a stream that blocks (lost, reconnecting) never delays the others.

The GUI only takes snapshots (:meth:`Feed.last_seconds`, :meth:`Feed.since`). The dashboard
reads streams and never drives processing: nothing here writes to the network.
"""

from __future__ import annotations

import collections
import dataclasses
import fnmatch
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pylsl

from edgestream.core.checks import check_positive
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.io import Source
from edgestream.core.ringbuffer import RingBuffer
from edgestream.dashboard.inlet import open_reader
from edgestream.dashboard.lslinfo import stream_key
from edgestream.dashboard.views import ring_since

log = logging.getLogger(__name__)

BYTES_PER_STREAM = 32 * 2**20  # ring-buffer budget per stream (wide CSI streams keep fewer rows)
IRREGULAR_ROWS = 4096  # rows kept for streams without a nominal rate
MARKERS_KEPT = 1000
READ_TIMEOUT = 0.1  # s a read waits for the first sample (bounds how fast a reader thread stops)
FORGET_AFTER = 5.0  # s without an answer before a stream leaves the picker


@dataclasses.dataclass(frozen=True)
class Discovered:
    """A stream seen on the network (header only; nothing is read until it is selected)."""

    key: str  # source_id, else name@host
    name: str
    type: str
    n_channels: int
    sfreq: float
    source_id: str
    hostname: str
    uid: str


def matches(d: Discovered, patterns: Sequence[str]) -> bool:
    """True when a ``--stream`` pattern matches the stream's name, source_id or type (wildcards allowed)."""
    return any(fnmatch.fnmatchcase(value, p) for p in patterns for value in (d.name, d.source_id, d.type) if value)


class Feed:
    """One selected stream: its reader, the newest samples, and receive statistics.

    Thread-safety: the reader thread calls :meth:`push`; the GUI calls the snapshot methods;
    both hold ``self.lock`` briefly.
    """

    def __init__(self, key: str, reader: Source, info: StreamInfo, buffer_seconds: float) -> None:
        self.key = key
        self.reader = reader
        self.info = info
        self.lock = threading.Lock()
        n_ch = info.n_channels
        budget_rows = max(16, BYTES_PER_STREAM // (4 * n_ch))
        wanted = int(np.ceil(buffer_seconds * info.sfreq)) if info.sfreq > 0 else IRREGULAR_ROWS
        self.numeric = info.dtype != "string"
        self.ring = RingBuffer(max(16, min(wanted, budget_rows)), n_ch) if self.numeric else None
        self.markers: collections.deque[tuple[float, str]] = collections.deque(maxlen=MARKERS_KEPT)
        self.samples_in = 0
        self.version = 0  # incremented on every push: panels redraw only when it moved
        self.gaps = 0  # chunks flagged as following lost samples
        self.read_errors = 0
        self._arrivals: collections.deque[tuple[float, int]] = collections.deque()
        self.opened_at = local_clock()
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def run(self, poll_interval: float) -> None:
        """Reader-thread body: read until :attr:`stop_event` is set, then stop the reader."""
        while not self.stop_event.is_set():
            try:
                chunks = self.reader.read(READ_TIMEOUT)
            except Exception as exc:  # one broken stream must not stop the dashboard
                self.read_errors += 1
                if self.read_errors in (1, 10, 100):
                    log.warning("reading %s failed (%d times): %s", self.key, self.read_errors, exc)
                self.stop_event.wait(READ_TIMEOUT)
                continue
            for chunk in chunks:
                self.push(chunk)
            if chunks:  # let samples gather: at most 1/poll_interval reads per second
                self.stop_event.wait(poll_interval)
        _stop_quietly(self.reader)

    def push(self, chunk: Chunk) -> None:
        now = local_clock()
        with self.lock:
            if self.numeric:
                self.ring.push(chunk.data, chunk.timestamps)
            else:
                for t, row in zip(chunk.timestamps, chunk.data):
                    self.markers.append((float(t), " | ".join(str(v) for v in row)))
            self.samples_in += chunk.n_times
            self.gaps += int(chunk.gap)
            self.version += 1
            self._arrivals.append((now, chunk.n_times))

    # --- snapshots (GUI thread) ------------------------------------------------------------
    def last(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the newest ``n`` rows (fewer if fewer are buffered): (n, C) data, (n,) stamps."""
        with self.lock:
            return self.ring.last(min(n, len(self.ring)))

    def last_seconds(self, seconds: float) -> tuple[np.ndarray, np.ndarray, int]:
        """Rows stamped within ``seconds`` of the newest one, and the absolute index of the first row."""
        with self.lock:
            n = len(self.ring)
            if self.info.sfreq > 0:
                n = min(n, int(np.ceil(seconds * self.info.sfreq)) + 1)
            data, stamps = self.ring.last(n)
            first = self.ring.total_written - n
        if self.info.sfreq <= 0 and len(stamps):
            keep = stamps >= stamps[-1] - seconds
            first += int(np.argmax(keep)) if keep.any() else len(stamps)
            data, stamps = data[keep], stamps[keep]
        return data, stamps, first

    def since(self, cursor: int) -> tuple[np.ndarray, np.ndarray, int, bool]:
        """Rows written after absolute index ``cursor``: data, stamps, new cursor, and whether
        rows between were overwritten before they were read (the consumer fell behind)."""
        with self.lock:
            return ring_since(self.ring, cursor)

    def newest_stamp(self) -> float:
        with self.lock:
            if self.numeric:
                return float(self.ring.last(1)[1][0]) if len(self.ring) else float("nan")
            return self.markers[-1][0] if self.markers else float("nan")

    def effective_rate(self, horizon: float = 2.0) -> float:
        """Samples per second received over the last ``horizon`` seconds (longer for slow streams)."""
        now = local_clock()
        # at least ~5 samples in the window; event streams have no nominal rate, use 10 s
        horizon = max(horizon, 5.0 / self.info.sfreq) if self.info.sfreq > 0 else max(horizon, 10.0)
        with self.lock:
            while self._arrivals and self._arrivals[0][0] < now - horizon:
                self._arrivals.popleft()
            n = sum(k for _, k in self._arrivals)
        span = min(horizon, now - self.opened_at)
        return n / span if span > 0.2 else float("nan")

    def health(self) -> dict[str, Any]:
        """What the health panel shows for this stream (computed on the GUI thread)."""
        r = self.reader
        # Lag: how old the newest sample was when it arrived (the reader measures it on receipt);
        # readers that do not measure it fall back to its age now.
        lag = getattr(r, "lag", float("nan"))
        if not np.isfinite(lag):
            newest = self.newest_stamp()
            lag = local_clock() - newest if np.isfinite(newest) else float("nan")
        return {
            "key": self.key,
            "name": self.info.name,
            "type": self.info.type,
            "state": r.state,
            "nominal_hz": self.info.sfreq,
            "effective_hz": self.effective_rate(),
            "lag_ms": lag * 1e3,
            "clock_offset_ms": getattr(r, "clock_offset", float("nan")) * 1e3,
            "drops": r.drops.as_dict(),
            "samples_in": self.samples_in,
        }


class Acquisition:
    """Discover LSL streams and keep the selected ones flowing into :class:`Feed` buffers.

    Parameters
    ----------
    patterns : sequence of str
        ``--stream`` patterns; when given, only matching streams are selected automatically.
    deselected : iterable of str
        Stream keys the user unticked earlier (not selected automatically again).
    buffer_seconds : float
        Seconds of each regular stream kept in memory.
    poll_interval, resolve_interval : float
        Reader-thread period and network-resolve period, in seconds.
    open_reader : callable
        ``pylsl.StreamInfo -> Source`` (the default prefers the project's LSL source).
    """

    def __init__(self, patterns: Sequence[str] = (), deselected: Iterable[str] = (), buffer_seconds: float = 30.0,
                 poll_interval: float = 0.01, resolve_interval: float = 1.0,
                 open_reader: Callable[[Any], Source] = open_reader) -> None:
        self.patterns = list(patterns)
        self.buffer_seconds = check_positive(buffer_seconds, "buffer_seconds")
        self.poll_interval = check_positive(poll_interval, "poll_interval")
        self.resolve_interval = check_positive(resolve_interval, "resolve_interval")
        self._open_reader = open_reader
        self._lock = threading.Lock()
        self._discovered: dict[str, Discovered] = {}
        self._feeds: dict[str, Feed] = {}
        self._selected: set[str] = set()
        self._deselected: set[str] = set(deselected)
        self._failed: dict[str, str] = {}  # key → why it could not be opened
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.resolve_rounds = 0

    # --- control -----------------------------------------------------------------------------
    def start(self) -> None:
        t = threading.Thread(target=self._discovery_loop, name="dashboard-discovery", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=5.0)
        with self._lock:
            feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            feed.stop_event.set()
        for feed in feeds:
            if feed.thread is not None:
                feed.thread.join(timeout=5.0)

    def select(self, key: str, selected: bool) -> None:
        """Tick or untick a stream in the picker (opened/closed by the discovery thread)."""
        with self._lock:
            if selected:
                self._selected.add(key)
                self._deselected.discard(key)
                self._failed.pop(key, None)
            else:
                self._selected.discard(key)
                self._deselected.add(key)
        self._wake.set()

    # --- snapshots (GUI thread) --------------------------------------------------------------
    def discovered(self) -> list[Discovered]:
        with self._lock:
            return sorted(self._discovered.values(), key=lambda d: (d.type, d.name))

    def feeds(self) -> list[Feed]:
        with self._lock:
            return list(self._feeds.values())

    def is_selected(self, key: str) -> bool:
        with self._lock:
            return key in self._selected

    @property
    def deselected(self) -> set[str]:
        with self._lock:
            return set(self._deselected)

    def failures(self) -> dict[str, str]:
        with self._lock:
            return dict(self._failed)

    # --- threads -----------------------------------------------------------------------------
    def _discovery_loop(self) -> None:
        # liblsl's continuous resolver keeps querying in the background and forgets a stream only
        # after it missed answering for FORGET_AFTER seconds; one-shot resolves miss streams on a
        # busy machine.
        resolver = pylsl.ContinuousResolver(forget_after=FORGET_AFTER)
        self._stop.wait(0.3)  # let the first queries come back
        while not self._stop.is_set():
            try:
                self._discover_once(resolver.results())
            except Exception:  # a resolve hiccup must not end discovery
                log.exception("stream discovery failed; retrying")
            self._wake.wait(self.resolve_interval)
            self._wake.clear()
        del resolver

    def _discover_once(self, infos: Sequence[Any]) -> None:
        seen: dict[str, tuple[Discovered, Any]] = {}
        for info in infos:
            d = Discovered(stream_key(info.name(), info.source_id(), info.hostname()), info.name(), info.type(),
                           info.channel_count(), info.nominal_srate(), info.source_id(), info.hostname(), info.uid())
            seen[d.key] = (d, info)
        with self._lock:
            self.resolve_rounds += 1
            for key, (d, _) in seen.items():
                if key not in self._discovered and key not in self._feeds:
                    auto = matches(d, self.patterns) if self.patterns else key not in self._deselected
                    if auto:
                        self._selected.add(key)
                self._discovered[key] = d
            # Keep lost streams listed (greyed by the picker via their feed state); forget the rest.
            for key in list(self._discovered):
                if key not in seen and key not in self._feeds:
                    del self._discovered[key]
            to_open = [k for k in self._selected if k not in self._feeds and k in seen and k not in self._failed]
            to_close = [k for k in self._feeds if k not in self._selected]
        for key in to_close:
            with self._lock:
                feed = self._feeds.pop(key, None)
            if feed is not None:
                feed.stop_event.set()  # its thread stops the reader
        for key in to_open:
            self._open(key, seen[key][1])

    def _open(self, key: str, lsl_info: Any) -> None:
        reader = self._open_reader(lsl_info)
        try:
            info = reader.start()
        except Exception as exc:
            log.warning("could not open stream %s: %s", key, exc)
            with self._lock:
                self._failed[key] = str(exc)
            return
        feed = Feed(key, reader, info, self.buffer_seconds)
        with self._lock:
            if key not in self._selected or self._stop.is_set():  # unticked (or stopping) while it was opening
                _stop_quietly(reader)
                return
            self._feeds[key] = feed
        feed.thread = threading.Thread(target=feed.run, args=(self.poll_interval,), name=f"dashboard-read-{info.name}",
                                       daemon=True)
        feed.thread.start()


def _stop_quietly(reader: Source) -> None:
    try:
        reader.stop()
    except Exception:  # tearing down a lost inlet may fail; nothing more to release
        log.debug("error while stopping a reader", exc_info=True)
