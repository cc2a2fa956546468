"""Multi-head self-attention written with plain matmuls (exports to ONNX, runs the same in ONNX Runtime).

Tokens ``(B, N, D)``. Shared by the transformer blocks of several model families.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgestream.core.checks import fail

ATTENTION_SCALES = ("embed", "head")  # 1/sqrt(D) as the reference does, or the usual 1/sqrt(D/heads)


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with separate Q/K/V/out projections; tokens ``(B, N, D)`` → ``(B, N, D)``.

    ``scale="embed"`` divides scores by √D (the reference's choice, kept for fidelity);
    ``scale="head"`` divides by √(D/heads), the usual transformer scaling.
    """

    def __init__(self, dim: int, heads: int, dropout: float, scale: str = "embed") -> None:
        super().__init__()
        if dim % heads:
            fail("heads", f"divide the embedding size {dim}", heads, "Pick heads so that dim/heads is an integer.")
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dim if scale == "embed" else dim // heads)
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D)
        b, n, d = x.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, h, N, D/h)
            return t.reshape(b, n, h, d // h).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        weights = torch.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1)  # (B, h, N, N)
        y = self.attn_drop(weights) @ v  # (B, h, N, D/h)
        return self.out(y.transpose(1, 2).reshape(b, n, d))
