"""1-D Inception convolution (averaged odd kernels) and CBAM attention, as used by MPTSNet's local CNN.

Layout everywhere: ``(B, C, T)`` — batch, channels, time steps.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class InceptionConv1d(nn.Module):
    """Mean of ``n_kernels`` same-padded convolutions with kernel sizes 1, 3, …, 2·n_kernels − 1.

    Because the mean of convolutions is one convolution with the mean of the (centred,
    zero-padded) kernels, :meth:`forward` runs a single convolution of the largest size: the same
    function of the same parameters (gradients included), ~3× fewer multiply-adds for six kernels.
    :meth:`forward_ref` is the literal six-convolution form, kept to test the fast path.
    """

    def __init__(self, in_channels: int, out_channels: int, n_kernels: int = 6) -> None:
        super().__init__()
        self.n_kernels = n_kernels
        self.kernels = nn.ModuleList(
            nn.Conv1d(in_channels, out_channels, kernel_size=2 * i + 1, padding=i) for i in range(n_kernels)
        )
        for conv in self.kernels:
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    def fused_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(out, in, 2n−1) mean kernel and (out,) mean bias."""
        half = self.n_kernels - 1
        widest = self.kernels[-1].weight
        weight = widest
        for i, conv in enumerate(self.kernels[:-1]):
            # zeros concatenated on both sides (not F.pad) keep the kernel shape static for ONNX export
            edge = widest.new_zeros(widest.shape[0], widest.shape[1], half - i)
            weight = weight + torch.cat([edge, conv.weight, edge], dim=-1)
        bias = torch.stack([conv.bias for conv in self.kernels]).sum(dim=0)
        return weight / self.n_kernels, bias / self.n_kernels

    def forward(self, x: torch.Tensor, fused: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, C_in, T) → (B, C_out, T); ``fused`` = :meth:`fused_weight` computed once for several calls."""
        weight, bias = fused if fused is not None else self.fused_weight()
        half = self.n_kernels - 1
        # Taps further out than T - 1 only ever see zero padding: crop them (same result, less work).
        # Not while tracing for export, where a data-dependent kernel width has no static shape.
        reach = half if torch.jit.is_tracing() else min(half, x.shape[-1] - 1)
        if reach < half:
            weight = weight[:, :, half - reach : half + reach + 1]
        return F.conv1d(x, weight, bias, padding=reach)

    def forward_ref(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([conv(x) for conv in self.kernels], dim=-1).mean(dim=-1)


class ChannelAttention(nn.Module):
    """CBAM channel gate: sigmoid(MLP(avg-pool) + MLP(max-pool)) per channel, MLP = 1×1 convs C→C/r→C."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv1d(channels, hidden, 1, bias=False), nn.ReLU(), nn.Conv1d(hidden, channels, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> gate (B, C, 1)
        avg = x.mean(dim=-1, keepdim=True)
        peak = x.max(dim=-1, keepdim=True).values  # max-with-indices: cheaper backward than amax
        return torch.sigmoid(self.mlp(avg) + self.mlp(peak))


class SpatialAttention(nn.Module):
    """CBAM spatial (here: temporal) gate: sigmoid(conv_k([mean_c x; max_c x]))."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> gate (B, 1, T)
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.max(dim=1, keepdim=True).values], dim=1)  # (B, 2, T)
        return torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    """Convolutional block attention: channel gate, then time gate (Woo et al., 2018)."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        x = x * self.channel(x)
        return x * self.spatial(x)


class InceptionCBAM(nn.Module):
    """:class:`InceptionConv1d` followed by :class:`CBAM` on its output."""

    def __init__(self, in_channels: int, out_channels: int, n_kernels: int = 6, reduction: int = 16) -> None:
        super().__init__()
        self.conv = InceptionConv1d(in_channels, out_channels, n_kernels)
        self.cbam = CBAM(out_channels, reduction)

    def forward(self, x: torch.Tensor, fused: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        return self.cbam(self.conv(x, fused))  # (B, C_in, T) -> (B, C_out, T)

    def forward_ref(self, x: torch.Tensor) -> torch.Tensor:
        return self.cbam(self.conv.forward_ref(x))


class InceptionCNN(nn.Module):
    """MPTSNet's local CNN: InceptionCBAM(C→hidden) → GELU → InceptionCBAM(hidden→C).

    When one forward pass runs it on several inputs (one per period), compute :meth:`fused`
    once and pass it to each call.
    """

    def __init__(self, channels: int, hidden: int, n_kernels: int = 6, reduction: int = 16) -> None:
        super().__init__()
        self.expand = InceptionCBAM(channels, hidden, n_kernels, reduction)
        self.reduce = InceptionCBAM(hidden, channels, n_kernels, reduction)

    def fused(self) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        return self.expand.conv.fused_weight(), self.reduce.conv.fused_weight()

    def forward(self, x: torch.Tensor, fused: Any = None) -> torch.Tensor:  # (B, C, T) -> (B, C, T)
        first, second = fused if fused is not None else self.fused()
        return self.reduce(F.gelu(self.expand(x, first)), second)

    def forward_ref(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduce.forward_ref(F.gelu(self.expand.forward_ref(x)))
