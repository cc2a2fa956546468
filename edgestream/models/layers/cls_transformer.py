"""Post-LN transformer encoder with a CLS token whose output is joined back to every token.

Layout: tokens ``(B, N, D)``. Attention is written with plain matmuls (no fused kernels), so
modules export to ONNX and run the same under ONNX Runtime.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgestream.core.checks import fail


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """(length, dim) table: ``sin(t·ω_i)`` at even, ``cos(t·ω_i)`` at odd features, ``ω_i = 10000^(−2i/dim)``."""
    position = torch.arange(length, dtype=torch.float64)[:, None]
    omega = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * omega)
    table[:, 1::2] = torch.cos(position * omega)[:, : dim // 2]
    return table.float()


class SelfAttention(nn.Module):
    """Multi-head self-attention, scores scaled by 1/√(head dim); tokens (B, N, D) → (B, N, D)."""

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if n_heads < 1 or dim % n_heads:
            fail("n_heads", f"be a positive divisor of the attention width {dim}", n_heads,
                 "Choose widths that are multiples of n_heads.")
        self.n_heads = n_heads
        self.scale = 1.0 / math.sqrt(dim // n_heads)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(x).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, N, Dh)
        scores = (q @ k.transpose(-2, -1)) * self.scale  # (B, H, N, N)
        attn = self.drop(scores.softmax(dim=-1))
        return self.out((attn @ v).transpose(1, 2).reshape(b, n, d))


class PostLNBlock(nn.Module):
    """``x = LN(x + Attn(x)); x = LN(x + FFN(x))`` with FFN = Linear → ReLU → Linear."""

    def __init__(self, dim: int, n_heads: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.attn = SelfAttention(dim, n_heads, dropout)
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
