"""In-process source replaying an array: run a pipeline offline or from a notebook."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgestream.core.checks import check_array, check_number
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.io import SOURCES, ConnectionState, Source


@SOURCES.register("array")
class ArraySource(Source):
    """Replay ``data`` (n_times, n_channels) in chunks of ``chunk_size`` samples.

    Timestamps are ``t0 + i / sfreq`` (``t0`` defaults to the LSL clock at start). With
    ``realtime=False`` (default) chunks are delivered as fast as the pipeline takes them;
    with ``realtime=True`` each chunk waits until its newest sample is due.

    Parameters
    ----------
    data : array-like (n_times, n_channels)
    sfreq : float
        Sampling rate in Hz.
    ch_names, ch_types, units : list of str or None
    name, type : str
        Stream name and type reported downstream.
    chunk_size : int
    realtime : bool
    t0 : float or None
    """

    def __init__(self, data: Sequence | np.ndarray, sfreq: float, ch_names: Sequence[str] | None = None,
                 ch_types: Sequence[str] | None = None, units: Sequence[str] | None = None, name: str = "array",
                 type: str = "EEG", chunk_size: int = 32, realtime: bool = False, t0: float | None = None) -> None:
        super().__init__()
        self.data = check_array(data, "data", ndim=2)
        self.sfreq = check_number(sfreq, "sfreq", low=0, low_inclusive=False)
        n = self.data.shape[1]
        self.ch_names = list(ch_names) if ch_names is not None else [f"ch{i}" for i in range(n)]
        self.ch_types, self.units = ch_types, units
        self.name, self.type = name, type
        self.chunk_size = check_number(chunk_size, "chunk_size", low=1, integer=True)
        self.realtime, self.t0 = realtime, t0
        self._pos = 0

    def start(self) -> StreamInfo:
        self.info = StreamInfo(self.name, self.type, f"array-{id(self):x}", self.sfreq, self.ch_names,
                               tuple(self.ch_types or ()), tuple(self.units or ()))
        self._t0 = local_clock() if self.t0 is None else float(self.t0)
        self._times = self._t0 + np.arange(self.data.shape[0]) / self.sfreq
        self._pos = 0
        self._set_state(ConnectionState.CONNECTED, self._t0)
        return self.info

    def read(self, timeout: float) -> list[Chunk]:
        if self._pos >= self.data.shape[0]:
            self._set_state(ConnectionState.ENDED, local_clock(), "end of array")
            return []
        end = min(self._pos + self.chunk_size, self.data.shape[0])
        if self.realtime:
            import time

            wait = self._times[end - 1] - local_clock()
            if wait > timeout:
                time.sleep(timeout)
                return []
            if wait > 0:
                time.sleep(wait)
        chunk = Chunk(self.data[self._pos : end], self._times[self._pos : end], self.info)
        self._pos = end
        self.samples_in += chunk.n_times
        return [chunk]
