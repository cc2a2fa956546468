"""Sliding windows: turn a continuous stream into one chunk per window."""

from __future__ import annotations

import dataclasses

import numpy as np

from edgestream.core.checks import check_number
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import ValidationError
from edgestream.core.stage import STAGES, Stage


@dataclasses.dataclass
class WindowState:
    data: np.ndarray  # (size, C) ring of the newest samples
    times: np.ndarray  # (size,)
    filled: int = 0  # samples received so far, capped at size
    head: int = 0  # ring index where the next sample goes
    since_emit: int = 0  # samples since the last emitted window (counts towards hop)
    emitted: int = 0  # windows emitted


@STAGES.register("window")
class Window(Stage):
    """Emit the newest ``size`` samples every ``hop`` samples, as one chunk per window.

    The first window is emitted as soon as ``size`` samples have arrived; then one every
    ``hop`` samples. Each window chunk keeps its samples' timestamps, so its newest timestamp
    is the newest input sample it depends on. Downstream stages see ``info.window == size``
    and ``info.desc["window"] == {"size": samples, "hop": samples}``.

    Parameters
    ----------
    size, hop : float
        Window length and hop in seconds (``unit="s"``) or samples (``unit="samples"``).
    unit : {"s", "samples"}
    """

    def __init__(self, size: float, hop: float, unit: str = "s", gap_policy: str = "reset") -> None:
        super().__init__(gap_policy=gap_policy)
        self.size = check_number(size, "size", low=0, low_inclusive=False)
        self.hop = check_number(hop, "hop", low=0, low_inclusive=False)
        if unit not in ("s", "samples"):
            raise ValidationError(f"unit must be 's' or 'samples'; got {unit!r}.")
        self.unit = unit

    def _samples(self, value: float, name: str, sfreq: float) -> int:
        n = value * sfreq if self.unit == "s" else value
        if abs(n - round(n)) > 1e-6 or round(n) < 1:
            raise ValidationError(
                f"window {name} must be a whole number (>= 1) of samples; got {value} {self.unit} = {n:g} samples at "
                f"{sfreq:g} Hz. Choose a {name} that is a multiple of 1/{sfreq:g} s."
            )
        return int(round(n))

    def _build(self, info: StreamInfo) -> StreamInfo:
        if not info.regular:
            raise ValidationError(f"window needs a regular stream; {info.name!r} is irregular. Window signal streams only.")
        self.n_size = self._samples(self.size, "size", info.sfreq)
        self.n_hop = self._samples(self.hop, "hop", info.sfreq)
        self.warmup_samples = 0  # the first window is only emitted once it is full
        return info.replace(window=self.n_size, desc=dict(info.desc) | {"window": {"size": self.n_size, "hop": self.n_hop}})

    def init_state(self) -> WindowState:
        info = self.require_built()
        return WindowState(np.zeros((self.n_size, info.n_channels), np.float32), np.zeros(self.n_size))

    def step(self, chunk: Chunk, state: WindowState) -> tuple[list[Chunk], WindowState]:
        out: list[Chunk] = []
        x, t = chunk.data, chunk.timestamps
        size, hop = self.n_size, self.n_hop
        pos = 0
        gap = chunk.gap
        while pos < x.shape[0]:
            # Samples to take before the next window is due (first: fill; then: hop).
            due = size - state.filled if state.filled < size else hop - state.since_emit
            take = min(due, x.shape[0] - pos)
            self._write(state, x[pos : pos + take], t[pos : pos + take])
            pos += take
            if state.filled >= size and (state.emitted == 0 or state.since_emit >= hop):
                idx = (np.arange(state.head, state.head + size)) % size
                out.append(Chunk(state.data[idx], state.times[idx], self.out_info, gap, chunk.warming))
                gap = False
                state.since_emit = 0
                state.emitted += 1
        return out, state

    @staticmethod
    def _write(state: WindowState, x: np.ndarray, t: np.ndarray) -> None:
        n = x.shape[0]
        size = state.data.shape[0]
        if n == 0:
            return
        idx = (np.arange(state.head, state.head + n)) % size
        state.data[idx] = x
        state.times[idx] = t
        state.head = (state.head + n) % size
        state.filled = min(size, state.filled + n)
        if state.emitted or state.filled >= size:
            state.since_emit += n
