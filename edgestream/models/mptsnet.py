"""MPTSNet: multiscale periodic local patterns + global dependencies for multivariate window
classification (Mu et al., AAAI 2025; ``specs/MODELS.md`` §4).

Input windows ``(B, C, T)`` (channels, time steps) → logits ``(B, n_classes)``. ``T`` is fixed
per model (the head is ``Linear(d·T → classes)``); pad shorter windows with zeros.

::

    embedding   Conv1d(C→d, k3, circular, no bias) + sinusoidal PE + dropout      (B, d, T)
    2 × PeriodicBlock, each followed by the one shared LayerNorm(d)
        global  CLS transformer over the T tokens; token_i = Linear([h_i; h_CLS])
        per period p (the k periods stored with the model):
                pad to L = ⌈T/p⌉·p, cut into L/p segments of p steps,
                shared local CNN (Inception k=1..11 averaged + CBAM, d→hidden→d, GELU) + residual,
                window transformer over the segments (d·p → d_t, CLS, → d·p), back to (B, d, T)
        out = Σ_i softmax_i(amplitude of p_i in this window) · branch_i + global + x
    GELU → dropout → flatten (B, d·T) → Linear → logits

Segments are contiguous by default (``[0..p−1], [p..2p−1], …`` as the paper draws them); the
reference code's reshape yields strided segments (``layout="strided"``: segment j holds steps
``j, j+L/p, j+2L/p, …``). The period weights are the FFT amplitudes at each period's bin of the
block input's channel mean, detached (:func:`edgestream.models.layers.periods.period_amplitudes`), computed
with a cosine/sine basis so the whole forward pass is torch matmuls and exports to ONNX.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgestream.core.checks import check_number, check_value, described, fail
from edgestream.core.errors import DataError, StateError
from edgestream.core.registry import check_kwargs
from edgestream.dsp.periods import default_periods
from edgestream.models.layers.periods import dft_basis, period_amplitudes
from edgestream.models.layers.cls_transformer import ClsTransformer, sinusoidal_table
from edgestream.models.layers.inception import InceptionCNN
from edgestream.models.registry import register_model

SEGMENT_LAYOUTS = ("contiguous", "strided")


def segment_index(length: int, period: int, layout: str = "contiguous") -> torch.Tensor:
    """Positions (in the zero-padded sequence of ``⌈length/period⌉·period`` steps) of each segment.

    Returns a long tensor ``(n_segments, period)``; row j lists segment j's steps in order.
    """
    n = math.ceil(length / period)
    pos = torch.arange(n * period)
    return pos.reshape(n, period) if layout == "contiguous" else pos.reshape(period, n).T.contiguous()


def to_segments(x: torch.Tensor, period: int, layout: str = "contiguous") -> torch.Tensor:
    """(B, D, T) → (B, n, D, p): zero-pad T to n·p and cut into n segments of p steps."""
    b, d, t = x.shape
    n = (t + period - 1) // period  # integer ceil: stays exact when traced for export
    x = F.pad(x, (0, n * period - t))
    if layout == "contiguous":
        return x.reshape(b, d, n, period).permute(0, 2, 1, 3)
    return x.reshape(b, d, period, n).permute(0, 3, 1, 2)


def from_segments(seg: torch.Tensor, length: int, layout: str = "contiguous") -> torch.Tensor:
    """Inverse of :func:`to_segments`: (B, n, D, p) → (B, D, length) (padding dropped)."""
    b, n, d, p = seg.shape
    if layout == "contiguous":
        x = seg.permute(0, 2, 1, 3).reshape(b, d, n * p)
    else:
        x = seg.permute(0, 2, 3, 1).reshape(b, d, p * n)
    return x[:, :, :length]


class PeriodicBlock(nn.Module):
    """One MPTSNet block on embedded windows (B, d, T) → (B, d, T); see the module docstring."""

    def __init__(
        self,
        dim: int,
        seq_len: int,
        periods: Sequence[int],
        *,
        d_window: int,
        n_heads: int = 4,
        d_ff: int = 256,
        n_layers: int = 1,
        cnn_hidden: int = 1024,
        n_kernels: int = 6,
        reduction: int = 16,
        attn_dropout: float = 0.0,
        layout: str = "contiguous",
    ) -> None:
        super().__init__()
        self.periods = tuple(int(p) for p in periods)
        self.seq_len = seq_len
        self.layout = layout
        self.glob = ClsTransformer(dim, None, seq_len, n_heads, d_ff, n_layers, attn_dropout)
        self.cnn = InceptionCNN(dim, cnn_hidden, n_kernels, reduction)
        self.windows = nn.ModuleList(
            ClsTransformer(dim * p, d_window, math.ceil(seq_len / p), n_heads, d_ff, n_layers, attn_dropout)
            for p in self.periods
        )
        # cos/sin rows at each period's bin: (2, T, k); derived from the periods, so not saved
        self.register_buffer("basis", dft_basis(seq_len, self.periods, dtype=torch.float32), persistent=False)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax over the k period amplitudes of each window (B, d, T) → (B, k), no gradient."""
        return period_amplitudes(x, basis=self.basis).softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, d, T)
        b, d, t = x.shape
        weights = self.weights(x)  # (B, k)
        out = x + self.glob(x.transpose(1, 2)).transpose(1, 2)
        fused = self.cnn.fused()  # the CNN's combined Inception kernels, shared by every period
        for i, period in enumerate(self.periods):
            seg = to_segments(x, period, self.layout)  # (B, n, d, p)
            n = seg.shape[1]
            local = seg + self.cnn(seg.reshape(b * n, d, period), fused).reshape(b, n, d, period)
            mixed = self.windows[i](local.reshape(b, n, d * period)).reshape(b, n, d, period)
            out = out + weights[:, i, None, None] * from_segments(mixed, t, self.layout)
        return out


class MPTSNet(nn.Module):
    """MPTSNet window classifier; input (B, in_channels, seq_len) float, output logits (B, n_classes).

    Parameters
    ----------
    in_channels, n_classes, seq_len : int
        Input channels C, classes, and window length T in samples.
    periods : sequence of int | None
        The k periods (samples) the blocks are built on, e.g.
        ``edgestream.dsp.periods.extract_periods(X_train).periods``; stored in the state dict.
        ``None`` = :func:`~edgestream.dsp.periods.default_periods` (``n_periods`` of them), a
        data-free placeholder.
    d_model : int | None
        Embedding width d; ``None`` = clamp(4·C, 64, 256) (the paper's rule).
    d_window : int | None
        Window-transformer width d_t; ``None`` = clamp(4·d, 256, 512).
    n_heads, d_ff, n_layers : transformer heads, feed-forward width and layers (4, 256, 1).
    cnn_hidden : int
        Hidden channels of the local CNN (d → cnn_hidden → d; 1024 in the paper).
    n_kernels : int
        Inception kernels 1, 3, …, 2·n_kernels − 1 (6 → up to 11).
    n_blocks : int
        PeriodicBlocks (2).
    dropout : float
        After the embedding and before the head (0.1).
    attn_dropout : float
        Inside the transformers (0.0, as in the reference).
    layout : ``"contiguous"`` | ``"strided"``
        Segment layout (see module docstring).
    """

    def __init__(
        self,
        in_channels: int = 12,
        n_classes: int = 9,
        seq_len: int = 29,
        periods: Sequence[int] | None = None,
        *,
        n_periods: int = 5,
        d_model: int | None = None,
        d_window: int | None = None,
        n_heads: int = 4,
        d_ff: int = 256,
        n_layers: int = 1,
        cnn_hidden: int = 1024,
        n_kernels: int = 6,
        n_blocks: int = 2,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        layout: str = "contiguous",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_number(in_channels, "in_channels", low=1, integer=True)
        self.n_classes = check_number(n_classes, "n_classes", low=1, integer=True)
        self.seq_len = check_number(seq_len, "seq_len", low=6, integer=True,
                                    fix="MPTSNet needs windows of at least 6 samples for periods above bin 1.")
        if periods is None:
            periods = default_periods(self.seq_len, check_number(n_periods, "n_periods", low=1, integer=True))
        self.periods = _check_periods(periods, self.seq_len)
        self.layout = check_value(layout, SEGMENT_LAYOUTS, "layout")
        d = d_model if d_model is not None else min(max(4 * self.in_channels, 64), 256)
        d_t = d_window if d_window is not None else min(max(4 * d, 256), 512)
        self.d_model = check_number(d, "d_model", low=1, integer=True)
        self.d_window = check_number(d_t, "d_window", low=1, integer=True)
        check_number(n_blocks, "n_blocks", low=1, integer=True)
        self.hparams: dict[str, Any] = {
            "n_heads": n_heads, "d_ff": d_ff, "n_layers": n_layers, "cnn_hidden": cnn_hidden,
            "n_kernels": n_kernels, "n_blocks": n_blocks, "dropout": dropout, "attn_dropout": attn_dropout,
        }

        self.embed = nn.Conv1d(self.in_channels, self.d_model, kernel_size=3, bias=False)
        nn.init.kaiming_normal_(self.embed.weight, mode="fan_in", nonlinearity="leaky_relu")
        self.register_buffer("pos", sinusoidal_table(self.seq_len, self.d_model).T.contiguous(), persistent=False)
        self.drop_in = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            PeriodicBlock(
                self.d_model, self.seq_len, self.periods, d_window=self.d_window, n_heads=n_heads, d_ff=d_ff,
                n_layers=n_layers, cnn_hidden=cnn_hidden, n_kernels=n_kernels, attn_dropout=attn_dropout,
                layout=self.layout,
            )
            for _ in range(n_blocks)
        )
        self.norm = nn.LayerNorm(self.d_model)  # shared by all blocks, as in the paper
        self.drop_out = nn.Dropout(dropout)
        self.head = nn.Linear(self.d_model * self.seq_len, self.n_classes)
        # saved with the weights so a checkpoint cannot be loaded into a model built on other periods
        self.register_buffer("period_table", torch.tensor(self.periods, dtype=torch.long))
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this model (for checkpoint manifests)."""
        return {
            "in_channels": self.in_channels, "n_classes": self.n_classes, "seq_len": self.seq_len,
            "periods": list(self.periods), "d_model": self.d_model, "d_window": self.d_window,
            "layout": self.layout, **self.hparams,
        }

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """Zeros (batch, in_channels, seq_len) on the model's device and dtype (for export and warm-up)."""
        ref = self.head.weight
        return torch.zeros(batch, self.in_channels, self.seq_len, device=ref.device, dtype=ref.dtype)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, d, T)
        # circular padding by hand (one step each side): identical to padding_mode="circular", portable to ONNX
        x = torch.cat([x[:, :, -1:], x, x[:, :, :1]], dim=-1)
        return self.drop_in(self.embed(x) + self.pos)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) → (B, d·T): the flattened representation the head classifies."""
        self._check_input(x)
        h = self.embedding(x)
        for block in self.blocks:
            h = self.norm(block(h).transpose(1, 2)).transpose(1, 2)
        return self.drop_out(F.gelu(h)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, n_classes)
        return self.head(self.features(x))

    def _check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_tracing():  # shapes are fixed by the example input during export
            return
        if x.dim() != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.seq_len:
            fail(
                "x", f"have shape (batch, {self.in_channels}, {self.seq_len}) (channels, time steps)",
                described(f"shape {tuple(x.shape)}"),
                "Pad or crop windows to seq_len samples (zeros for missing steps), channels first.", DataError,
            )

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        key = prefix + "period_table"
        if key in state_dict and state_dict[key].tolist() != list(self.periods):
            raise StateError(
                f"checkpoint periods must match the model's periods {list(self.periods)}; got "
                f"{state_dict[key].tolist()}. Build the model with periods={state_dict[key].tolist()}."
            )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)


def _check_periods(periods: Sequence[int], seq_len: int) -> tuple[int, ...]:
    try:
        values = tuple(int(p) for p in periods)
    except (TypeError, ValueError):
        fail("periods", "be a sequence of integers (samples)", periods)
    if not values or any(p < 1 or p > seq_len or p != q for p, q in zip(values, periods)) or len(set(values)) != len(values):
        fail("periods", f"be distinct integers in [1, seq_len={seq_len}]", periods,
             "Use edgestream.dsp.periods.extract_periods(X_train).periods.")
    return values


def _make(defaults: dict[str, Any], overrides: dict[str, Any], name: str) -> MPTSNet:
    check_kwargs(MPTSNet, overrides, f"model {name!r}")
    return MPTSNet(**(defaults | overrides))


@register_model(family="mptsnet", kind="window", n_periods=5)
def mptsnet(**overrides: Any) -> MPTSNet:
    """MPTSNet as in the paper (d = clamp(4C, 64, 256), d_t = clamp(4d, 256, 512), CNN hidden 1024), contiguous segments."""
    return _make({}, overrides, "mptsnet")


@register_model(family="mptsnet", kind="window", n_periods=5)
def mptsnet_strided(**overrides: Any) -> MPTSNet:
    """The reference code's variant: as ``mptsnet`` but with strided period segments."""
    return _make({"layout": "strided"}, overrides, "mptsnet_strided")


@register_model(family="mptsnet", kind="window", n_periods=3)
def mptsnet_compact(**overrides: Any) -> MPTSNet:
    """Edge-CPU variant: d = 32, d_t = 64, CNN hidden 64, FF 64, 3 periods; same structure."""
    defaults = {"d_model": 32, "d_window": 64, "cnn_hidden": 64, "d_ff": 64, "n_periods": 3}
    return _make(defaults, overrides, "mptsnet_compact")
