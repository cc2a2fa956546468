"""Simulated EEG: a real LSL outlet publisher (:class:`EEGSimulator`, behind ``edgestream simulate
eeg``) and an in-process source (kind ``"simulate_eeg"``) that needs no LSL at all.

The signal model lives in :mod:`edgestream.sources.eeg_model`. Cues that drive the mu/beta
desynchronisation are published as a ``Markers`` stream (``"left"``, ``"right"``, ``"rest"``),
stamped at the sample where the cue starts.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np

from edgestream.core.checks import check_number, check_positive
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.io import SOURCES, ConnectionState, Source
from edgestream.core.lslmeta import COUNTER_TYPE, with_counter
from edgestream.sources.eeg_model import EEGGenerator, EEGParams
from edgestream.sources.publisher import Publisher


def eeg_stream_info(gen: EEGGenerator, name: str, source_id: str) -> StreamInfo:
    """The :class:`StreamInfo` of a simulated EEG stream (µV, 10-10 labels)."""
    return StreamInfo(name=name, type="EEG", source_id=source_id, sfreq=gen.sfreq, ch_names=gen.ch_names,
                      ch_types=("eeg",) * gen.n_channels, units=("uV",) * gen.n_channels,
                      desc={"manufacturer": "edgestream simulator", "cap": {"name": "10-10", "size": gen.n_channels}})


def markers_stream_info(name: str, source_id: str) -> StreamInfo:
    return StreamInfo(name=name, type="Markers", source_id=source_id, sfreq=0.0, ch_names=("cue",),
                      ch_types=("marker",), units=("a.u.",), dtype="string")


class EEGSimulator(Publisher):
    """Publish simulated EEG (and its cue markers) over LSL on a real-time schedule.

    Sample ``i`` is stamped ``t0 + i / sfreq`` on the LSL clock and pushed as soon as its chunk
    is complete, so the stream looks like an amplifier with no transmission delay.

    Parameters
    ----------
    n_channels : int
        1–64 electrodes of a 10-10 montage.
    sfreq : float
        Hz.
    chunk_size : int
        Samples per push.
    name, source_id : str
        EEG stream name and source_id; the marker stream gets ``"-markers"`` appended to both.
    seed : int
    line_freq : float or None
        50/60 Hz line noise; None for none.
    markers : bool
        Schedule cues (mu/beta desynchronisation) and publish them.
    blinks : bool
    counter : bool
        Append a ``counter`` channel (0, 1, 2, … per sample).
    duration : float or None
        Seconds of signal to publish; None runs until :meth:`stop`.
    params : EEGParams or None
        Amplitudes and timing of the signal model (defaults: :class:`EEGParams`).
    """

    def __init__(self, n_channels: int = 64, sfreq: float = 1000.0, chunk_size: int = 10,
                 name: str = "edgestream-sim-eeg", source_id: str = "edgestream-sim-eeg", seed: int = 0,
                 line_freq: float | None = 50.0, markers: bool = True, blinks: bool = True, counter: bool = False,
                 duration: float | None = None, params: EEGParams | None = None) -> None:
        super().__init__()
        self.generator = EEGGenerator(n_channels, sfreq, seed=seed, line_freq=line_freq, cues=markers, blinks=blinks,
                                      params=params)
        self.sfreq = self.generator.sfreq
        self.chunk_size = check_positive(chunk_size, "chunk_size", integer=True)
        self.name, self.source_id = name, source_id
        self.markers, self.counter = bool(markers), bool(counter)
        self.duration = None if duration is None else check_positive(duration, "duration")
        self.info = eeg_stream_info(self.generator, name, source_id)
        self.markers_info = markers_stream_info(f"{name}-markers", f"{source_id}-markers")
        self.samples_pushed = 0
        self.markers_pushed: list[tuple[float, str]] = []
        self.t0 = float("nan")
        self._outlets: list[Any] = []

    def generate(self, n: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """The next ``n`` samples (n, n_channels) µV and cues ``[(sample index, label)]`` — no LSL, no clock."""
        return self.generator.generate(n)

    def _open(self) -> None:
        from edgestream.sinks.lsl_outlet import LSLOutlet

        context = {"pipeline": "simulate", "node": "eeg", "input": "eeg",
                   "pipeline_desc": {"generator": "edgestream.sources.eeg_model", "chunk_size": self.chunk_size}}
        eeg = LSLOutlet(name=self.name, source_id=self.source_id, counter=self.counter, chunk_size=self.chunk_size)
        eeg.build(self.info, context)
        eeg.start()
        self._outlets = [eeg]
        if self.markers:
            mk = LSLOutlet(name=self.markers_info.name, source_id=self.markers_info.source_id, counter=False)
            mk.build(self.markers_info, context | {"node": "markers"})
            mk.start()
            self._outlets.append(mk)

    def _publish(self) -> None:
        eeg = self._outlets[0]
        mk = self._outlets[1] if len(self._outlets) > 1 else None
        fs, chunk = self.sfreq, self.chunk_size
        total = None if self.duration is None else int(round(self.duration * fs))
        self.t0 = t0 = local_clock()
        k = 0
        while not self._stop.is_set() and (total is None or k < total):
            n = chunk if total is None else min(chunk, total - k)
            due = t0 + (k + n - 1) / fs  # the chunk's newest sample exists from this moment
            wait = due - local_clock()
            if wait > 0 and self._stop.wait(wait):
                break
            data, cues = self.generator.generate(n)
            stamps = t0 + (k + np.arange(n)) / fs
            eeg.write(Chunk(data, stamps, self.info))
            if mk is not None and cues:
                times = [t0 + i / fs for i, _ in cues]
                mk.write(Chunk(np.asarray([[label] for _, label in cues], dtype=object), np.asarray(times),
                               self.markers_info))
                self.markers_pushed += [(t, label) for t, (_, label) in zip(times, cues)]
            k += n
            self.samples_pushed = k

    def _close(self) -> None:
        for outlet in self._outlets:
            outlet.stop()
        self._outlets = []


@SOURCES.register("simulate_eeg")
class SimulatedEEGSource(Source):
    """Simulated EEG generated in-process, chunk by chunk (no LSL): for benchmarks and tests.

    Parameters
    ----------
    n_channels, sfreq, chunk_size, seed, line_freq, markers, blinks, counter
        As for :class:`EEGSimulator`.
    realtime : bool
        Deliver each chunk when its newest sample is due (stamps on the LSL clock from the
        start); False delivers as fast as they are read (stamps still ``t0 + i / sfreq``).
    duration : float or None
        Seconds of signal, then the source ends; None: endless.
    name : str
    """

    def __init__(self, n_channels: int = 64, sfreq: float = 1000.0, chunk_size: int = 10, seed: int = 0,
                 line_freq: float | None = 50.0, markers: bool = True, blinks: bool = True, counter: bool = False,
                 realtime: bool = True, duration: float | None = None, name: str = "edgestream-sim-eeg") -> None:
        super().__init__()
        self.n_channels, self.sfreq, self.seed, self.line_freq = n_channels, sfreq, seed, line_freq
        self.chunk_size = check_positive(chunk_size, "chunk_size", integer=True)
        self.markers, self.blinks, self.counter, self.realtime = bool(markers), bool(blinks), bool(counter), bool(realtime)
        self.duration = None if duration is None else check_number(duration, "duration", low=0, low_inclusive=False)
        self.name = name
        self.generator = EEGGenerator(n_channels, sfreq, seed=seed, line_freq=line_freq, cues=markers, blinks=blinks)
        # cues delivered so far: (LSL time, label); bounded so an endless run does not grow
        self.cues: collections.deque[tuple[float, str]] = collections.deque(maxlen=10_000)
        self._k = 0

    def start(self) -> StreamInfo:
        gen = self.generator
        info = eeg_stream_info(gen, self.name, f"simulate_eeg-{self.seed}")
        if self.counter:
            info = info.replace(ch_names=gen.ch_names + ("counter",), ch_types=("eeg",) * gen.n_channels + (COUNTER_TYPE,),
                                units=("uV",) * gen.n_channels + ("a.u.",))
        self.info = info
        self._t0 = local_clock()
        self._total = None if self.duration is None else int(round(self.duration * gen.sfreq))
        self._set_state(ConnectionState.CONNECTED, self._t0, "simulating in-process")
        return info

    def read(self, timeout: float) -> list[Chunk]:
        if self._total is not None and self._k >= self._total:
            self._set_state(ConnectionState.ENDED, local_clock(), "simulated duration reached")
            return []
        n = self.chunk_size if self._total is None else min(self.chunk_size, self._total - self._k)
        fs = self.generator.sfreq
        if self.realtime:
            wait = self._t0 + (self._k + n - 1) / fs - local_clock()
            if wait > timeout:
                time.sleep(max(0.0, timeout))
                return []
            if wait > 0:
                time.sleep(wait)
        data, cues = self.generator.generate(n)
        if self.counter:
            data = with_counter(data, self._k)
        stamps = self._t0 + (self._k + np.arange(n)) / fs
        self.cues.extend((self._t0 + i / fs, label) for i, label in cues)
        self._k += n
        self.samples_in += n
        return [Chunk(data, stamps, self.info)]
