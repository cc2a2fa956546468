"""DBConformer: dual-branch convolutional transformer for EEG windows (Wang et al., IEEE JBHI 2025).

Written from the description in ``MODELS.md`` §2 (the reference code carries a noncommercial
licence and is not used). Input windows ``(B, C, T)`` with ``T = n_tokens · patch`` samples
exactly; output ``(features (B, 2·D), logits (B, n_classes))``.

* temporal branch: 1×1 spatial filter + BN → depthwise temporal conv (k=63) + BN → GELU →
  average pool over patches → ``n_tokens`` tokens + positional embedding → transformer → mean;
* spatial branch: every channel alone through a small strided conv → one token per channel +
  channel embedding → transformer → channel attention pooling;
* head: MLP on the concatenated branch features.

Variants: ``dbconformer`` (the class itself; every size is a keyword), :func:`dbconformer_bnci2014001`
(22 ch, 250 Hz, P=125, 8 tokens → 93,747 parameters for 2 classes) and
:func:`dbconformer_eegmmidb` (PhysioNet MI: 64 ch, 160 Hz, P=80, 8 tokens). :func:`dbconformer_for`
sizes a model from a stream's channel count, rate and window length.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgestream.core.checks import check_number, check_value, described, fail
from edgestream.core.errors import ValidationError
from edgestream.models.factory import create_model
from edgestream.models.layers.attention import ATTENTION_SCALES, MultiHeadSelfAttention
from edgestream.models.registry import MODELS, register_model

class TransformerBlock(nn.Module):
    """Pre-LN block: ``x += Drop(MHA(LN x))``; ``x += Drop(FFN(LN x))``."""

    def __init__(self, dim: int, heads: int, ff_mult: int, dropout: float, scale: str) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads, dropout, scale)
        self.drop1 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_mult * dim, dim)
        )
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D)
        x = x + self.drop1(self.attn(self.norm1(x)))
        return x + self.drop2(self.ffn(self.norm2(x)))


class ChannelAttentionPool(nn.Module):
    """``score_c = w2ᵀ tanh(W1 s_c + b1) + b2``; ``α = softmax_c(score)``; output ``Σ_c α_c s_c``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(dim, dim)
        self.score = nn.Linear(dim, 1)

    def forward(self, s: torch.Tensor) -> torch.Tensor:  # (B, C, D) -> (B, D)
        alpha = torch.softmax(self.score(torch.tanh(self.hidden(s))), dim=1)  # (B, C, 1)
        return (alpha * s).sum(dim=1)


class DBConformer(nn.Module):
    """Dual-branch conformer on EEG windows ``(B, n_channels, n_tokens·patch)``.

    Parameters
    ----------
    n_channels : int
        EEG channels C.
    n_classes : int
    n_tokens : int
        Temporal tokens n_t (patches per window).
    patch : int
        Samples per temporal token P (the average-pool length). The window is ``n_tokens·patch``
        samples exactly.
    dim : int
        Embedding size D (40 in the paper).
    depth : int
        Transformer blocks per branch.
    heads : int
        Attention heads (10 in the paper: head dim 4).
    attention_scale : {"embed", "head"}
        Score scaling 1/√D (reference, default) or 1/√(D/heads).
    temporal_kernel : int
        Depthwise temporal conv length (63; odd so the "same" padding is symmetric).
    spatial_filters, spatial_kernel, spatial_stride : int
        Per-channel conv of the spatial branch (16 filters, k=25, stride 5).
    dropout : float
        Dropout in the temporal branch, transformer blocks and first head layer (0.5).
    head_dropout : float
        Dropout before the last head layer (0.3).
    """

    def __init__(
        self,
        n_channels: int = 22,
        n_classes: int = 2,
        n_tokens: int = 8,
        patch: int = 125,
        dim: int = 40,
        depth: int = 2,
        heads: int = 10,
        attention_scale: str = "embed",
        temporal_kernel: int = 63,
        spatial_filters: int = 16,
        spatial_kernel: int = 25,
        spatial_stride: int = 5,
        dropout: float = 0.5,
        head_dropout: float = 0.3,
    ) -> None:
        super().__init__()
        for name, value in (("n_channels", n_channels), ("n_classes", n_classes), ("n_tokens", n_tokens), ("patch", patch),
                            ("dim", dim), ("depth", depth), ("heads", heads), ("spatial_filters", spatial_filters),
                            ("spatial_kernel", spatial_kernel), ("spatial_stride", spatial_stride)):
            check_number(value, name, low=1, integer=True)
        check_number(n_classes, "n_classes", low=2, integer=True, fix="A classifier needs at least two classes.")
        check_number(temporal_kernel, "temporal_kernel", low=1, integer=True)
        if temporal_kernel % 2 == 0:
            fail("temporal_kernel", "be odd (symmetric 'same' padding keeps T samples)", temporal_kernel, "Use e.g. 63.")
        check_value(attention_scale, ATTENTION_SCALES, "attention_scale")
        check_number(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
        check_number(head_dropout, "head_dropout", low=0.0, high=1.0, high_inclusive=False)
        self.config: dict[str, Any] = {
            "n_channels": n_channels, "n_classes": n_classes, "n_tokens": n_tokens, "patch": patch, "dim": dim,
            "depth": depth, "heads": heads, "attention_scale": attention_scale, "temporal_kernel": temporal_kernel,
            "spatial_filters": spatial_filters, "spatial_kernel": spatial_kernel, "spatial_stride": spatial_stride,
            "dropout": dropout, "head_dropout": head_dropout,
        }
        self.n_channels, self.n_classes, self.n_tokens, self.patch = n_channels, n_classes, n_tokens, patch
        self.n_times = n_tokens * patch

        def blocks() -> nn.Sequential:
            return nn.Sequential(*(TransformerBlock(dim, heads, 4, dropout, attention_scale) for _ in range(depth)))

        # Temporal branch: a learned spatial filter bank, then one temporal filter per feature map.
        self.temporal_embed = nn.Sequential(
            nn.Conv1d(n_channels, dim, kernel_size=1, bias=False),
            nn.BatchNorm1d(dim),
            nn.Conv1d(dim, dim, kernel_size=temporal_kernel, padding=temporal_kernel // 2, groups=dim, bias=False),
            nn.BatchNorm1d(dim),
            nn.GELU(),
            nn.AvgPool1d(patch, stride=patch),
            nn.Dropout(dropout),
        )
        self.position = nn.Parameter(torch.zeros(1, n_tokens, dim))
        self.temporal_blocks = blocks()

        # Spatial branch: the same small conv runs on every channel alone -> one token per channel.
        self.spatial_embed = nn.Sequential(
            nn.Conv1d(1, spatial_filters, kernel_size=spatial_kernel, stride=spatial_stride, padding=spatial_kernel // 2),
            nn.ELU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(spatial_filters, dim),
        )
        self.channel_embedding = nn.Parameter(torch.zeros(1, n_channels, dim))
        self.spatial_blocks = blocks()
        self.channel_pool = ChannelAttentionPool(dim)

        self.head = nn.Sequential(
            nn.Linear(2 * dim, 64), nn.ELU(), nn.Dropout(dropout),
            nn.Linear(64, 32), nn.ELU(), nn.Dropout(head_dropout),
            nn.Linear(32, n_classes),
        )
        nn.init.trunc_normal_(self.position, std=0.02)
        nn.init.trunc_normal_(self.channel_embedding, std=0.02)

    def valid_window_lengths(self) -> str:
        """Human-readable description of the window lengths this model accepts."""
        return f"exactly {self.n_times} samples ({self.n_tokens} tokens x patch {self.patch})"

    def check_input(self, shape: tuple[int, ...]) -> None:
        """Raise :class:`ValidationError` unless ``shape`` is ``(B, n_channels, n_tokens·patch)``."""
        if len(shape) != 3:
            raise ValidationError(
                f"DBConformer input must be a batch of windows (B, C, T); got shape {tuple(shape)}. "
                "Add a batch dimension, e.g. x[None]."
            )
        if shape[1] != self.n_channels:
            raise ValidationError(
                f"DBConformer input must have {self.n_channels} channels (axis 1 of (B, C, T)); got {shape[1]} "
                f"(shape {tuple(shape)}). Build the model for this stream, e.g. dbconformer_for(n_channels={shape[1]}, ...)."
            )
        if shape[2] != self.n_times:
            t = shape[2]
            if t % self.patch == 0:
                hint = f"{t} samples are {t // self.patch} patches: build the model with n_tokens={t // self.patch}."
            else:
                hint = (f"Crop or pad windows to {self.n_times} samples, or size the model for the stream with "
                        "dbconformer_for(n_channels, sfreq, window_s).")
            raise ValidationError(
                f"DBConformer window length must be {self.valid_window_lengths()}; got {t} samples. {hint}"
            )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (B, C, T)
        """Return ``(features (B, 2·dim), logits (B, n_classes))``."""
        self.check_input(tuple(x.shape))
        b, c, t = x.shape
        # Temporal branch.
        tokens = self.temporal_embed(x).transpose(1, 2) + self.position  # (B, n_t, D)
        x_t = self.temporal_blocks(tokens).mean(dim=1)  # (B, D)
        # Spatial branch: channels become the batch of a 1-channel conv.
        per_channel = self.spatial_embed(x.reshape(b * c, 1, t)).reshape(b, c, -1)  # (B, C, D)
        s = self.spatial_blocks(per_channel + self.channel_embedding)  # (B, C, D)
        x_s = self.channel_pool(s)  # (B, D)
        features = torch.cat([x_t, x_s], dim=1)  # (B, 2D)
        return features, self.head(features)

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """A zero window of the accepted shape ``(batch, n_channels, n_times)``."""
        ref = next(self.parameters())
        return torch.zeros(batch, self.n_channels, self.n_times, device=ref.device, dtype=ref.dtype)


def window_config(sfreq: float, window_s: float, patch_s: float = 0.5) -> dict[str, int]:
    """Tokens and patch (samples) for a window of ``window_s`` seconds at ``sfreq`` Hz.

    The patch is ``round(patch_s·sfreq)`` samples and the window ``round(window_s·sfreq)``
    samples; the window must be a whole number of patches, otherwise a :class:`ConfigError`
    lists the nearest valid window lengths.
    """
    sfreq = check_number(sfreq, "sfreq", low=0, low_inclusive=False)
    window_s = check_number(window_s, "window", low=0, low_inclusive=False)
    patch_s = check_number(patch_s, "patch_s", low=0, low_inclusive=False)
    patch = max(1, round(patch_s * sfreq))
    n_times = round(window_s * sfreq)
    if n_times < patch or n_times % patch:
        below, above = max(1, n_times // patch) * patch, (n_times // patch + 1) * patch
        fail(
            "window",
            f"be a whole number of {patch}-sample patches ({patch_s:g} s at {sfreq:g} Hz) for DBConformer",
            described(f"{window_s:g} s = {n_times} samples"),
            f"Valid windows near it: {below} samples ({below / sfreq:g} s) or {above} samples ({above / sfreq:g} s); "
            "change the window or patch_s.",
        )
    return {"n_tokens": n_times // patch, "patch": patch}


# The generic variant is the class itself: every size is a keyword (defaults: the BNCI2014001 setup).
MODELS.register("dbconformer", family="dbconformer", kind="window", paper="Wang et al., IEEE JBHI 2025")(DBConformer)


@register_model(family="dbconformer", kind="window", sfreq=250.0, window_s=4.0)
def dbconformer_bnci2014001(n_channels: int = 22, n_classes: int = 2, **overrides: Any) -> DBConformer:
    """BNCI2014001 motor imagery: 22 ch at 250 Hz, 4-s windows, P=125, 8 tokens (93,747 parameters, 2 classes)."""
    return create_model("dbconformer", **({"n_channels": n_channels, "n_classes": n_classes, "n_tokens": 8, "patch": 125} | overrides))


@register_model(family="dbconformer", kind="window", sfreq=160.0, window_s=4.0)
def dbconformer_eegmmidb(n_channels: int = 64, n_classes: int = 2, **overrides: Any) -> DBConformer:
    """PhysioNet EEG motor imagery (eegmmidb): 64 ch at 160 Hz, 4-s windows, P=80 (0.5 s), 8 tokens."""
    return create_model("dbconformer", **({"n_channels": n_channels, "n_classes": n_classes, "n_tokens": 8, "patch": 80} | overrides))


def dbconformer_config(
    n_channels: int, sfreq: float, window_s: float, n_classes: int = 2, *, patch_s: float = 0.5, **overrides: Any
) -> dict[str, Any]:
    """Configuration of the generic ``dbconformer`` variant for a stream (see :func:`dbconformer_for`)."""
    check_number(n_channels, "n_channels", low=1, integer=True)
    return {"n_channels": n_channels, "n_classes": n_classes} | window_config(sfreq, window_s, patch_s) | overrides


def dbconformer_for(
    n_channels: int,
    sfreq: float,
    window_s: float,
    n_classes: int = 2,
    *,
    patch_s: float = 0.5,
    device: Any = None,
    dtype: Any = None,
    **overrides: Any,
) -> DBConformer:
    """A DBConformer sized for a stream: ``n_channels`` at ``sfreq`` Hz, windows of ``window_s`` s.

    Tokens are ``patch_s``-second patches (0.5 s as in the paper's 250-Hz setup: P=125); the
    window must hold a whole number of them. The model is the registered ``dbconformer``
    variant, so a checkpoint made from it rebuilds with ``load_checkpoint``; ``model.config``
    holds the overrides to save.
    """
    config = dbconformer_config(n_channels, sfreq, window_s, n_classes, patch_s=patch_s, **overrides)
    return create_model("dbconformer", device=device, dtype=dtype, **config)
