"""Post-LN transformer encoder with a CLS token whose output is joined back to every token.

Layout: tokens ``(B, N, D)``; attention is :class:`~edgestream.models.layers.attention.MultiHeadSelfAttention`
(plain matmuls, so modules export to ONNX).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgestream.models.layers.attention import MultiHeadSelfAttention


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """(length, dim) table: ``sin(t·ω_i)`` at even, ``cos(t·ω_i)`` at odd features, ``ω_i = 10000^(−2i/dim)``."""
    position = torch.arange(length, dtype=torch.float64)[:, None]
    omega = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * omega)
    table[:, 1::2] = torch.cos(position * omega)[:, : dim // 2]
    return table.float()


class PostLNBlock(nn.Module):
    """``x = LN(x + Attn(x)); x = LN(x + FFN(x))`` with FFN = Linear → ReLU → Linear."""

    def __init__(self, dim: int, n_heads: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.attn = MultiHeadSelfAttention(dim, n_heads, dropout, scale="head")
        self.ffn = nn.Sequential(nn.Linear(dim, d_ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_ff, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D)
        x = self.norm1(x + self.drop(self.attn(x)))
        return self.norm2(x + self.drop(self.ffn(x)))


class ClsTransformer(nn.Module):
    """Transformer over ``length`` tokens plus a learned CLS token; output token i = Linear([h_i; h_CLS]).

    Parameters
    ----------
    in_dim : int
        Token features in and out.
    dim : int | None
        Model width; ``None`` = ``in_dim`` without an input projection, otherwise tokens are
        projected ``in_dim → dim`` first.
    length : int
        Tokens per sequence (the sinusoidal table covers ``length + 1`` with the CLS token first).
    n_heads, d_ff, n_layers, dropout : encoder settings (post-LN blocks).
    """

    def __init__(
        self,
        in_dim: int,
        dim: int | None,
        length: int,
        n_heads: int = 4,
        d_ff: int = 256,
        n_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        width = in_dim if dim is None else dim
        self.proj = nn.Identity() if dim is None else nn.Linear(in_dim, dim)
        self.cls = nn.Parameter(torch.randn(1, 1, width))
        self.register_buffer("pos", sinusoidal_table(length + 1, width), persistent=False)
        self.blocks = nn.ModuleList(PostLNBlock(width, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.out = nn.Linear(2 * width, in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, in_dim) -> (B, N, in_dim)
        b, n, _ = x.shape
        h = self.proj(x)
        h = torch.cat([self.cls.expand(b, -1, -1), h], dim=1) + self.pos[: n + 1]  # (B, N+1, W)
        for block in self.blocks:
            h = block(h)
        cls = h[:, :1].expand(-1, n, -1)
        return self.out(torch.cat([h[:, 1:], cls], dim=-1))
