"""Replay recordings: over LSL (:class:`FilePlayer`, behind ``edgestream play``) or in-process
(source kind ``"file"``).

Timing: a sample recorded ``t`` seconds after the start of the file is stamped
``t0 + (loop_index * span + t) / speed`` on the LSL clock and published when that moment comes,
so relative timing between streams and samples is preserved (compressed by ``speed``). The
nominal rate in the header stays the recording's: the content is sampled at that rate.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgestream import __version__
from edgestream.core.checks import check_positive, check_type, fail
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.io import SOURCES, ConnectionState, Source
from edgestream.core.lslmeta import COUNTER_TYPE, OutletWriter, with_counter
from edgestream.sources.publisher import Publisher
from edgestream.sources.tracks import Track, load_tracks


def default_source_id(path: Path) -> str:
    """Stable per file: a replay restarted with the same file is found again by source_id."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    return f"edgestream-play-{path.stem}-{digest}"


class FilePlayer(Publisher):
    """Publish every stream of a recording over LSL with its original relative timing.

    Parameters
    ----------
    path : str or Path
        FIF, EDF, BDF, GDF or XDF file.
    speed : float
        Playback speed (2.0: twice real time).
    loop : bool
        Start again at the end (timestamps and counters keep increasing).
    name : str or None
        FIF/EDF/BDF: the signal stream's name (markers: ``NAME-markers``); default the file
        stem. XDF: a prefix, ``NAME-<original name>``; default the original names.
    source_id : str or None
        Base source_id (default stable per file); markers and XDF streams append a suffix.
    chunk_size : int
        Target samples per push at the highest rate (pushes happen every
        ``chunk_size / (sfreq * speed)`` seconds, between 1 and 50 ms).
    counter : bool
        Append a ``counter`` channel to numeric streams.
    markers : bool
        Publish annotations/events (FIF/EDF/BDF) or the marker streams of an XDF file.
    picks : str, list or None
        MNE channel selection for FIF/EDF/BDF (e.g. ``"eeg"``); None keeps every channel.
    linger : float
        Seconds the outlets stay open after the last sample (so consumers can drain).
    wait_for_consumers : float
        Seconds to wait, after creating the outlets, until every stream has a consumer before
        the clock starts (0: start at once). Lets a recorder or test receive the whole file.
    """

    def __init__(self, path: str | Path, speed: float = 1.0, loop: bool = False, name: str | None = None,
                 source_id: str | None = None, chunk_size: int = 10, counter: bool = False, markers: bool = True,
                 picks: Any = None, linger: float = 1.0, wait_for_consumers: float = 0.0) -> None:
        super().__init__()
        self.path = Path(path)
        self.speed = check_positive(speed, "speed", fix="Use 1.0 for real time, 10 for ten times faster.")
        self.loop = check_type(loop, bool, "loop")
        self.chunk_size = check_positive(chunk_size, "chunk_size", integer=True)
        self.counter, self.markers = bool(counter), bool(markers)
        self.linger = float(linger)
        self.wait_for_consumers = float(wait_for_consumers)
        tracks = load_tracks(self.path, picks=picks)
        if not markers:
            tracks = [t for t in tracks if t.info.dtype != "string"]
        if not tracks:
            fail("file", "contain a stream to play", str(self.path), "It holds only markers; drop --no-markers.")
        base = source_id or default_source_id(self.path)
        xdf = self.path.name.lower().endswith((".xdf", ".xdfz"))
        self.tracks: list[Track] = []
        for i, tr in enumerate(tracks):
            if xdf:
                tname = f"{name}-{tr.info.name}" if name else tr.info.name
                sid = f"{base}-{tr.info.source_id or i}"
            else:
                is_markers = tr.info.dtype == "string"
                stem = name or self.path.stem
                tname = f"{stem}-markers" if is_markers else stem
                sid = f"{base}-markers" if is_markers else base
            self.tracks.append(Track(tr.info.replace(name=tname, source_id=sid), tr.data, tr.times, tr.channel_format))
        self.span = max(t.end for t in self.tracks)  # seconds of file per loop
        if self.loop and self.span <= 0:
            fail("loop", "only be used with a recording that lasts longer than 0 s", self.loop,
                 f"{self.path.name} holds a single instant; play it without --loop.")
        rates = [t.info.sfreq for t in self.tracks if t.info.sfreq > 0]
        self.tick = min(0.05, max(0.001, self.chunk_size / (max(rates) * self.speed))) if rates else 0.01
        self.samples_pushed = [0] * len(self.tracks)
        self.loops = 0
        self.t0 = float("nan")
        self._writers: list[OutletWriter] = []

    @property
    def infos(self) -> list[StreamInfo]:
        return [t.info for t in self.tracks]

    def _open(self) -> None:
        for tr in self.tracks:
            desc = dict(tr.info.desc) | {
                "pipeline": {"name": "play", "node": tr.info.name, "edgestream_version": __version__},
                "player": {"file": self.path.name, "speed": self.speed, "loop": self.loop},
                "synchronization": {"can_drop_samples": False, "timestamps": "recording time / speed, from start"},
            }
            self._writers.append(OutletWriter(tr.info, tr.info.source_id, counter=self.counter,
                                              channel_format=tr.channel_format, desc=desc))

    def _publish(self) -> None:
        self._play()
        self._stop.wait(self.linger)  # consumers drain what is in flight before the outlets go

    def _play(self) -> None:
        deadline = time.monotonic() + self.wait_for_consumers
        while time.monotonic() < deadline and not all(w.have_consumers() for w in self._writers):
            if self._stop.wait(0.01):
                return
        self.t0 = t0 = local_clock()
        pos = [0] * len(self.tracks)
        while not self._stop.is_set():
            rel = (local_clock() - t0) * self.speed - self.loops * self.span  # file seconds reached in this loop
            for j, (tr, writer) in enumerate(zip(self.tracks, self._writers)):
                hi = int(np.searchsorted(tr.times, rel, side="right"))
                if hi > pos[j]:
                    stamps = t0 + (self.loops * self.span + tr.times[pos[j]:hi]) / self.speed
                    writer.push(tr.data[pos[j]:hi], stamps)
                    self.samples_pushed[j] += hi - pos[j]
                    pos[j] = hi
            if all(p >= len(tr.times) for p, tr in zip(pos, self.tracks)):
                if not self.loop:
                    return
                self.loops += 1
                pos = [0] * len(self.tracks)
                continue
            self._stop.wait(self.tick)

    def _close(self) -> None:
        for w in self._writers:
            w.close()
        self._writers = []


@SOURCES.register("file")
class FileSource(Source):
    """Replay one stream of a recording in-process (no LSL).

    Parameters
    ----------
    path : str
        FIF, EDF, BDF, GDF or XDF file.
    stream : str or None
        Which stream (by name or type) of an XDF file; default the first numeric one.
    speed : float or None
        Pace chunks at ``speed`` × real time; None delivers them as fast as they are read.
    loop : bool
    chunk_size : int
        Samples per chunk.
    picks : str, list or None
        MNE channel selection for FIF/EDF/BDF.
    counter : bool
        Append a ``counter`` channel.
    """

    def __init__(self, path: str, stream: str | None = None, speed: float | None = 1.0, loop: bool = False,
                 chunk_size: int = 32, picks: Any = None, counter: bool = False) -> None:
        super().__init__()
        self.path, self.stream, self.loop, self.picks, self.counter = path, stream, bool(loop), picks, bool(counter)
        self.speed = None if speed is None else check_positive(speed, "speed")
        self.chunk_size = check_positive(chunk_size, "chunk_size", integer=True)

    def start(self) -> StreamInfo:
        path = Path(self.path)
        tracks = load_tracks(path, picks=self.picks)
        numeric = [t for t in tracks if t.info.dtype != "string"]
        chosen = [t for t in numeric if self.stream in (t.info.name, t.info.type)] if self.stream else numeric[:1]
        if not chosen:
            fail("stream", f"name a numeric stream of {path.name!r}", self.stream,
                 "Streams: " + ", ".join(f"{t.info.name!r} ({t.info.type})" for t in tracks) + ".")
        tr = chosen[0]
        info = tr.info.replace(source_id=tr.info.source_id or default_source_id(path))
        data = tr.data.astype(np.float32)
        if self.counter:
            info = info.replace(ch_names=info.ch_names + ("counter",), ch_types=info.ch_types + (COUNTER_TYPE,),
                                units=info.units + ("a.u.",))
        self._data, self._times, self._span = data, tr.times, tr.end
        self.info = info
        self._pos, self._loops, self._k = 0, 0, 0
        self._t0 = local_clock()
        self._set_state(ConnectionState.CONNECTED, self._t0, f"replaying {path.name}")
        return info

    def read(self, timeout: float) -> list[Chunk]:
        if self._pos >= len(self._times):
            if not self.loop or not len(self._times):
                self._set_state(ConnectionState.ENDED, local_clock(), "end of file")
                return []
            self._pos, self._loops = 0, self._loops + 1
        end = min(self._pos + self.chunk_size, len(self._times))
        rel = self._loops * self._span + self._times[self._pos:end]
        scale = self.speed or 1.0
        stamps = self._t0 + rel / scale
        if self.speed is not None:
            wait = stamps[-1] - local_clock()
            if wait > timeout:
                time.sleep(max(0.0, timeout))
                return []
            if wait > 0:
                time.sleep(wait)
        data = self._data[self._pos:end]
        n = end - self._pos
        if self.counter:
            data = with_counter(data, self._k)
        self._pos, self._k = end, self._k + n
        self.samples_in += n
        return [Chunk(np.ascontiguousarray(data), stamps, self.info)]
