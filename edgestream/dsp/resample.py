"""Causal rational resampling (polyphase FIR) with state carried across chunks."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
from scipy import signal

from edgestream.core.checks import check_number
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import ValidationError
from edgestream.core.stage import STAGES, Stage


@dataclasses.dataclass
class ResampleState:
    history: np.ndarray | None  # (K - 1, C) newest past inputs; None until the first sample
    n_in: int = 0  # input samples consumed so far
    n_out: int = 0  # output samples produced so far
    last_time: float = float("nan")  # timestamp of the newest input


@STAGES.register("resample")
class Resample(Stage):
    """Resample by the rational factor ``sfreq / input rate`` = up/down.

    Upsample by ``up``, low-pass with a causal windowed-sinc FIR (cut-off at the lower of the
    two Nyquist rates, ``half_width``·max(up, down) taps each side), keep every ``down``-th
    sample. Output sample k sits at upsampled index k·down and depends on input samples up to
    i = floor(k·down / up); it carries that input's timestamp. The FIR's group delay,
    ``half_width``·max(up, down)/up input samples, is the price of causality.

    Parameters
    ----------
    sfreq : float
        Target rate in Hz.
    half_width : int
        Taps per side of the FIR in units of max(up, down) (10 like scipy's resample_poly).
    """

    def __init__(self, sfreq: float, half_width: int = 10, gap_policy: str = "reset") -> None:
        super().__init__(gap_policy=gap_policy)
        self.sfreq = check_number(sfreq, "sfreq", low=0, low_inclusive=False)
        self.half_width = check_number(half_width, "half_width", low=1, integer=True)

    def _build(self, info: StreamInfo) -> StreamInfo:
        if not info.regular:
            raise ValidationError(f"resample needs a regular stream; {info.name!r} is irregular.")
        ratio = Fraction(self.sfreq / info.sfreq).limit_denominator(1000)
        if abs(float(ratio) * info.sfreq - self.sfreq) > 1e-6 * self.sfreq:
            raise ValidationError(
                f"resample: sfreq / input rate must be a ratio of integers up to 1000; got {self.sfreq:g} / {info.sfreq:g}. "
                "Pick a target rate with a simpler ratio."
            )
        self.up, self.down = ratio.numerator, ratio.denominator
        span = max(self.up, self.down)
        n_taps = 2 * self.half_width * span + 1
        h = signal.firwin(n_taps, 1.0 / span, window=("kaiser", 5.0)) * self.up
        self.n_hist = -(-n_taps // self.up)  # K input samples cover the FIR support
        # polyphase[p, q] = h[p + q·up]: output at phase p weights input i_max - q
        poly = np.zeros((self.up, self.n_hist))
        for p in range(self.up):
            taps = h[p :: self.up]
            poly[p, : taps.size] = taps
        self._poly = poly.astype(np.float32)
        self.warmup_samples = self.n_hist
        return info.replace(sfreq=self.sfreq)

    def init_state(self) -> ResampleState:
        self.require_built()
        return ResampleState(None)

    def step(self, chunk: Chunk, state: ResampleState) -> tuple[list[Chunk], ResampleState]:
        x, t = chunk.data, chunk.timestamps
        n = x.shape[0]
        if n == 0:
            return [], state
        if state.history is None:  # start as if the first sample had always been there (no transient)
            state.history = np.repeat(x[:1], self.n_hist - 1, axis=0)
        xx = np.concatenate([state.history, x])  # xx[j] is input index state.n_in - (K-1) + j
        total_in = state.n_in + n
        # outputs k with floor(k·down/up) < total_in
        k_end = -(-total_in * self.up // self.down)
        ks = np.arange(state.n_out, k_end)
        i_max = ks * self.down // self.up
        phase = ks * self.down - i_max * self.up
        local = i_max - state.n_in + (self.n_hist - 1)  # index of i_max in xx
        windows = np.lib.stride_tricks.sliding_window_view(xx, self.n_hist, axis=0)  # (len-K+1, C, K), oldest first
        seg = windows[local - (self.n_hist - 1)][:, :, ::-1]  # (n_out, C, K): q = 0 is i_max
        y = np.einsum("ock,ok->oc", seg, self._poly[phase]).astype(np.float32)
        times = t[i_max - state.n_in]
        state.history = xx[-(self.n_hist - 1):].copy() if self.n_hist > 1 else xx[:0].copy()
        state.n_in, state.n_out = total_in, k_end
        return [Chunk(y, times, self.out_info, chunk.gap, chunk.warming)], state
