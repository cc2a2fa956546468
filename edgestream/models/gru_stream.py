"""A small streaming GRU classifier: per-step class logits from a multichannel stream.

The baseline stateful decoder of edgestream: x ``(B, T, C)`` → stacked GRU → Linear per step →
logits ``(B, T, n_classes)``. Its state is one tensor, ``h`` ``(B, layers, hidden)`` (batch first,
unlike ``nn.GRU``'s ``(layers, B, hidden)``, so every state tensor leads with the batch).
"""

from __future__ import annotations

import torch
from torch import nn

from edgestream.core.checks import check_number
from edgestream.models.base import State, StreamingModule
from edgestream.models.registry import register_model


class GRUStream(StreamingModule):
    """Stacked GRU with a per-step linear head.

    Parameters
    ----------
    in_channels : int
        Input channels C.
    hidden : int
        GRU hidden size.
    layers : int
        Stacked GRU layers.
    n_classes : int
        Outputs per step.
    seed : int or None
        Seeds the initialisation (reproducible untrained weights for benchmarks and tests).
    """

    def __init__(self, in_channels: int = 8, hidden: int = 64, layers: int = 2, n_classes: int = 2, seed: int | None = 0) -> None:
        super().__init__()
        self.in_channels = check_number(in_channels, "in_channels", low=1, integer=True)
        self.hidden = check_number(hidden, "hidden", low=1, integer=True)
        self.layers = check_number(layers, "layers", low=1, integer=True)
        self.n_classes = check_number(n_classes, "n_classes", low=1, integer=True)
        rng_state = torch.random.get_rng_state() if seed is not None else None
        if seed is not None:
            torch.manual_seed(seed)
        self.gru = nn.GRU(self.in_channels, self.hidden, self.layers, batch_first=True)
        self.head = nn.Linear(self.hidden, self.n_classes)
        if rng_state is not None:
            torch.random.set_rng_state(rng_state)
        self.eval()

    def state_shapes(self, batch: int = 1) -> dict[str, tuple[int, ...]]:
        return {"h": (batch, self.layers, self.hidden)}

    def example_input(self, batch: int = 1, steps: int = 1) -> torch.Tensor:
        ref = self.head.weight
        return torch.zeros(batch, steps, self.in_channels, device=ref.device, dtype=ref.dtype)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:  # (B, T, C)
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        elif not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            self.check_state(state, x.shape[0])
        y, h = self.gru(x, state["h"].transpose(0, 1).contiguous())  # h: (layers, B, hidden)
        return self.head(y), {"h": h.transpose(0, 1)}  # (B, T, n_classes)


@register_model(family="gru_stream", kind="streaming")
def gru_stream_s(in_channels: int = 8, hidden: int = 64, layers: int = 2, n_classes: int = 2, seed: int | None = 0) -> GRUStream:
    """Small streaming GRU classifier (2 × 64 hidden, ~40 k parameters): the baseline stateful decoder."""
    return GRUStream(in_channels, hidden, layers, n_classes, seed)
