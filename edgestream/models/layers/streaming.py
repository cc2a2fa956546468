"""Building blocks for sequence models that run whole-sequence or chunk by chunk with carried state.

Layout inside these layers is ``(B, C, n)`` (batch, channels, time), the layout of ``Conv1d``.

Two conv modes give the two ways of streaming a model whose convolutions look ahead:

* ``"causal"`` — left-padded convolutions: output ``t`` depends on inputs ``≤ t``; zero delay.
* ``"delayed"`` — the usual centred (non-causal) convolution. Streaming, output ``t`` can only be
  computed once input ``t + lookahead`` has arrived, so every layer emits its outputs
  ``lookahead`` frames late. The first ``lookahead`` outputs of a stream would need inputs before
  the start (the zero padding of the whole-sequence model), so they are dropped, not invented:
  stateful layers downstream only ever see valid frames, which is what makes the delayed stream
  equal the whole-sequence (parallel) model exactly.

:class:`SequenceRun` is the per-call view of the model state: in parallel mode (no state) each
layer runs on the whole sequence with the model's own padding; in streaming mode it reads each
layer's carried state by key and collects the new state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from edgestream.core.checks import check_number, check_value, fail

if TYPE_CHECKING:
    from edgestream.models.layers.lmu import LMUMemory
    from edgestream.models.layers.spiking import LIF, SpikeStats

CONV_MODES = ("causal", "delayed")


class StreamConv1d(nn.Conv1d):
    """Stride-1 convolution over time with an odd kernel, for whole sequences or chunks.

    State: ``buf`` ``(B, C_in, k-1)``, the last ``k-1`` input frames (zeros = the zero padding
    before the start of the stream).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        mode: str = "causal",
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        kernel_size = check_number(kernel_size, "kernel_size", low=1, integer=True)
        if kernel_size % 2 == 0:
            fail("kernel_size", "be odd", kernel_size, "Centred (delayed-mode) convolutions need an odd kernel, e.g. 3.")
        super().__init__(in_channels, out_channels, kernel_size, bias=bias, device=device, dtype=dtype)
        self.mode = check_value(mode, CONV_MODES, "mode")
        self.lookahead = (kernel_size - 1) // 2 if mode == "delayed" else 0
        self.state_key = ""  # set by the owning model: where this layer's buffer lives in the state dict

    def state_shape(self, batch: int) -> tuple[int, ...] | None:
        k = self.kernel_size[0]
        return (batch, self.in_channels, k - 1) if k > 1 else None

    def parallel(self, x: torch.Tensor) -> torch.Tensor:
        """Whole sequence ``(B, C_in, T)`` → ``(B, C_out, T)`` with zero padding (left only if causal)."""
        k = self.kernel_size[0]
        pad = (k - 1, 0) if self.mode == "causal" else (self.lookahead, self.lookahead)
        return super().forward(nn.functional.pad(x, pad))

    def stream(self, x: torch.Tensor, buf: torch.Tensor | None, seen: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Continue over a chunk ``(B, C_in, n)``; ``seen`` = input frames consumed before it.

        Returns the outputs that became computable, ``(B, C_out, n - dropped)``, and the new buffer.
        """
        if buf is None:  # k == 1: pointwise
            return super().forward(x) if x.shape[-1] else x.new_zeros(x.shape[0], self.out_channels, 0), None
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], self.out_channels, 0), buf
        full = torch.cat([buf, x], -1)
        y = super().forward(full)  # (B, C_out, n): output i is centred on frame seen + i - lookahead
        drop = min(x.shape[-1], max(0, self.lookahead - seen))
        return y[..., drop:], full[..., -(self.kernel_size[0] - 1) :]


class DelayLine(nn.Module):
    """Delays a ``(B, C, n)`` stream by ``lookahead`` frames (aligns a residual with a delayed conv).

    Identity on whole sequences. State: ``buf`` ``(B, C, lookahead)``.
    """

    def __init__(self, channels: int, lookahead: int) -> None:
        super().__init__()
        self.channels = int(channels)
        self.lookahead = int(lookahead)
        self.state_key = ""

    def state_shape(self, batch: int) -> tuple[int, ...] | None:
        return (batch, self.channels, self.lookahead) if self.lookahead else None

    def parallel(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def stream(self, x: torch.Tensor, buf: torch.Tensor | None, seen: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if buf is None:
            return x, None
        n = x.shape[-1]
        full = torch.cat([buf, x], -1)
        drop = min(n, max(0, self.lookahead - seen))
        return full[..., drop:n], full[..., -self.lookahead :]


class SequenceRun:
    """One forward call's view of the state (see module docstring).

    Parameters
    ----------
    state : dict or None
        Carried state (streaming) or None (parallel, whole sequence from a fresh state).
    frames : int
        Input frames the stream consumed before this call (streaming only).
    batch : int
        Batch size (used to create fresh LIF membranes in parallel mode).
    stats : SpikeStats or None
        Recorder for spike counts, passed to every LIF layer.
    """

    def __init__(self, state: dict[str, torch.Tensor] | None, frames: int, batch: int, stats: SpikeStats | None) -> None:
        self.state_in = state
        self.state_out: dict[str, torch.Tensor] = dict(state) if state is not None else {}
        self.frames = frames
        self.batch = batch
        self.stats = stats

    @property
    def streaming(self) -> bool:
        return self.state_in is not None

    def seen(self, delay: int) -> int:
        """Frames already consumed by a layer whose input lags the model input by ``delay``."""
        return max(0, self.frames - delay)

    def conv(self, layer: StreamConv1d | DelayLine, x: torch.Tensor, delay: int) -> torch.Tensor:
        """Apply a conv (or delay line) whose input lags the model input by ``delay`` frames."""
        if not self.streaming:
            return layer.parallel(x)
        key = layer.state_key
        y, buf = layer.stream(x, self.state_in.get(key), self.seen(delay))
        if buf is not None:
            self.state_out[key] = buf
        return y

    def lif(self, layer: LIF, x: torch.Tensor) -> torch.Tensor:
        if self.streaming:
            mem = self.state_in[layer.state_key]
        else:
            mem = layer.init_state(x.shape[0], device=x.device, dtype=x.dtype)
        spikes, mem = layer(x, mem, self.stats)
        if self.streaming:
            self.state_out[layer.state_key] = mem
        return spikes

    def memory(self, layer: LMUMemory, u: torch.Tensor) -> torch.Tensor:
        """LMU memory over ``u`` ``(B, n)`` → ``(B, n, d)`` (FFT in parallel mode, chunk form streaming)."""
        if not self.streaming:
            return layer.parallel(u)
        m = layer.chunk(u, self.state_in[layer.state_key])
        if m.shape[1]:
            self.state_out[layer.state_key] = m[:, -1]
        return m
