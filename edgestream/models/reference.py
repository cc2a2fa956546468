"""The reference model of the latency benchmark, shared with other frameworks running the same work.

Conv1d(64→16, k=7, stride 4) → ReLU → Conv1d(16→8, k=7, stride 4) → ReLU → global average pool
→ Linear(8→2). Input (B, C, T) float32, e.g. (1, 64, 1000) = one 1-s window at 1000 Hz.
"""

from __future__ import annotations

import torch
from torch import nn

from edgestream.models.registry import register_model


class ReferenceConv(nn.Module):
    """Small strided conv classifier over a multichannel window; input (B, C, T), output logits (B, n_classes)."""

    def __init__(self, in_channels: int = 64, n_classes: int = 2, seed: int | None = 0) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.n_classes = n_classes
        # Seeded so that every framework benchmarking this model runs identical weights.
        generator_state = torch.random.get_rng_state() if seed is not None else None
        if seed is not None:
            torch.manual_seed(seed)
        self.conv1 = nn.Conv1d(in_channels, 16, kernel_size=7, stride=4)
        self.conv2 = nn.Conv1d(16, 8, kernel_size=7, stride=4)
        self.head = nn.Linear(8, n_classes)
        if generator_state is not None:
            torch.random.set_rng_state(generator_state)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, n_classes)
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.head(x.mean(dim=-1))


@register_model(family="reference", kind="window")
def reference_conv(in_channels: int = 64, n_classes: int = 2, seed: int | None = 0) -> ReferenceConv:
    """The cross-framework latency benchmark model (seed 0, 64 channels, 2 classes)."""
    return ReferenceConv(in_channels=in_channels, n_classes=n_classes, seed=seed)
