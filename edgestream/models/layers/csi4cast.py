"""Building blocks of CSI-4CAST (Cheng et al., 2025): denoiser, adaptive re-weighting layers,
ShuffleNet blocks with channel attention, and the CSI embedding.

Tensor layout: antenna rows ``(N, T, D)`` with ``D = 2K`` interleaving ``[Re0, Im0, Re1, ...]``;
2-D convolutions see a row as an image ``(N, 2, T, K)`` with real/imaginary parts as channels.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgestream.core.checks import check_value

ACTIVATIONS = {"none": nn.Identity, "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[check_value(name, ACTIVATIONS, "activation")]()


def rows_to_image(x: torch.Tensor) -> torch.Tensor:
    """``(N, T, 2K)`` interleaved → ``(N, 2, T, K)`` (channel 0 real, 1 imaginary).

    A zero-copy view: the interleaved rows are exactly a channels-last image, which the
    convolutions consume as is.
    """
    n, t, d = x.shape
    return x.reshape(n, t, d // 2, 2).permute(0, 3, 1, 2)


def image_to_rows(x: torch.Tensor) -> torch.Tensor:
    """``(N, 2, T, K)`` → ``(N, T, 2K)`` interleaved (a view for channels-last images)."""
    n, _, t, k = x.shape
    return x.permute(0, 2, 3, 1).reshape(n, t, 2 * k)


def grid_conv(cin: int, cout: int, stride: int, role: str, bias: bool = True) -> nn.Module:
    """3×3 conv on the (time, subcarrier) grid; with ``stride > 1`` the grid is coarsened along subcarriers.

    ``role="down"``: kernel (3, stride), stride (1, stride) — groups of ``stride`` subcarriers become
    one pixel (:class:`GridDown`); ``role="up"``: back to full resolution (:class:`SubpixelUp`);
    ``role="same"``: 3×3. With ``stride == 1`` every role is the plain 3×3 conv (padding 1) of the
    paper's model.
    """
    if stride == 1 or role == "same":
        return nn.Conv2d(cin, cout, 3, padding=1, bias=bias)
    if role == "down":
        return GridDown(cin, cout, stride, bias)
    return SubpixelUp(cin, cout, stride, bias)


class GridDown(nn.Conv2d):
    """Conv2d with kernel (3, s), stride (1, s), padding (1, 0), computed as one matmul.

    A kernel column covers exactly one group of ``s`` subcarriers, which in a channels-last image
    is ``s · cin`` contiguous values; the three kernel rows become three output slices that are
    summed with a one-step shift in time (zero padding). Same parameters and result as the conv.
    """

    def __init__(self, cin: int, cout: int, stride: int, bias: bool = True) -> None:
        super().__init__(cin, cout, (3, stride), stride=(1, stride), padding=(1, 0), bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, cin, T, K) -> (N, cout, T, K/s)
        n, cin, t, k = x.shape
        s, cout = self.stride[1], self.out_channels
        groups = x.permute(0, 2, 3, 1).reshape(n, t, k // s, s * cin)  # a view for channels-last input
        w = self.weight.permute(3, 1, 2, 0).reshape(s * cin, 3 * cout)  # rows (r, ci), cols (kernel row, c)
        y = (groups @ w).reshape(n, t, k // s, 3, cout)
        out = y[:, :, :, 1] + (self.bias if self.bias is not None else 0)
        out = torch.cat([out[:, :1], out[:, 1:] + y[:, :-1, :, 0]], dim=1)  # row 0 sees t−1
        out = torch.cat([out[:, :-1] + y[:, 1:, :, 2], out[:, -1:]], dim=1)  # row 2 sees t+1
        return out.permute(0, 3, 1, 2)  # channels-last (N, cout, T, K/s)


class SubpixelUp(nn.Module):
    """3×3 conv to ``cout·stride`` channels on the coarse grid, then depth-to-space along subcarriers.

    Output channel ``c`` of fine subcarrier ``j·stride + r`` is coarse channel ``r·cout + c``;
    with channels-last tensors the rearrangement is a view. ``norm=True`` batch-normalises the
    ``cout·stride`` coarse channels (cheaper than normalising the fine grid).
    """

    def __init__(self, cin: int, cout: int, stride: int, bias: bool = True, norm: bool = False) -> None:
        super().__init__()
        self.cout, self.stride = cout, stride
        self.conv = nn.Conv2d(cin, cout * stride, 3, padding=1, bias=bias)
        self.norm = nn.BatchNorm2d(cout * stride) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, T, K/s) -> (N, cout, T, K)
        y = self.conv(x)
        if self.norm is not None:
            y = self.norm(y)
        y = y.permute(0, 2, 3, 1)  # (N, T, K/s, s·cout)
        n, t, k, _ = y.shape
        return y.reshape(n, t, k * self.stride, self.cout).permute(0, 3, 1, 2)


def conv_bn(cin: int, cout: int, stride: int, role: str) -> nn.Module:
    """A :func:`grid_conv` followed by batch norm (for ``role="up"`` with ``stride > 1`` the norm
    acts on the coarse channels, inside :class:`SubpixelUp`)."""
    if role == "up" and stride > 1:
        return SubpixelUp(cin, cout, stride, norm=True)
    return nn.Sequential(grid_conv(cin, cout, stride, role), nn.BatchNorm2d(cout))


class Denoiser(nn.Module):
    """Conv encoder/decoder on ``(N, 2, T, K)`` estimating the noise of a history (caller subtracts it).

    ``levels`` widths ``2, 4, …, 2^levels``: ``levels − 1`` conv+BN layers up, as many down.
    Every layer but the last is followed by ``activation``; the last stays linear so the noise
    estimate can take either sign. ``stride > 1`` runs the inner layers on a grid coarsened along
    subcarriers (first layer down, last layer up; see :func:`grid_conv`).
    """

    def __init__(self, levels: int = 3, activation_name: str = "relu", stride: int = 1) -> None:
        super().__init__()
        widths = [2 ** (i + 1) for i in range(levels)]
        pairs = list(zip(widths[:-1], widths[1:])) + [(b, a) for a, b in reversed(list(zip(widths[:-1], widths[1:])))]
        roles = ["down"] + ["same"] * (len(pairs) - 2) + ["up"]
        self.layers = nn.ModuleList(conv_bn(cin, cout, stride, role) for (cin, cout), role in zip(pairs, roles))
        self.act = activation(activation_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, D) -> noise estimate (N, T, D)
        y = rows_to_image(x)
        for i, layer in enumerate(self.layers):
            y = layer(y)
            if i < len(self.layers) - 1:
                y = self.act(y)
        return image_to_rows(y)


class MLP(nn.Sequential):
    """``depth`` linear layers (ReLU + dropout 0.1 between them), then ``out_activation``."""

    def __init__(self, in_dim: int, out_dim: int, depth: int, hidden: int, out_activation: str = "none") -> None:
        dims = [in_dim] + [hidden] * (depth - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < depth - 1:
                layers += [nn.ReLU(), nn.Dropout(0.1)]
        layers.append(activation(out_activation))
        super().__init__(*layers)

    def along(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """Apply the MLP along axis ``dim`` of ``x`` (not only the last) without transposing ``x``.

        Linear layers become ``weight @ x`` contractions over that axis; the other layers are
        element-wise. Same parameters, same result as ``self(x.movedim(dim, -1)).movedim(-1, dim)``.
        """
        if dim in (-1, x.ndim - 1):
            return self(x)
        for layer in self:
            if isinstance(layer, nn.Linear):
                shape = [1] * x.ndim
                shape[dim] = -1
                x = torch.tensordot(layer.weight, x, dims=([1], [dim])).movedim(0, dim) + layer.bias.reshape(shape)
            else:
                x = layer(x)
        return x


ARL_MODES = ("plain", "multiply", "add")


class ARLayer(nn.Module):
    """Adaptive re-weighting layer: ``Dropout0.1(LayerNorm(MLP(x) ⊙ x | MLP(x) + x | MLP(x)))`` along one axis.

    ``dim`` is the axis the MLP and the layer norm act on (-1: the values of a step; 1: the
    history steps of a value).
    """

    def __init__(self, dim: int, depth: int, hidden: int, mode: str = "plain", out_activation: str = "none", axis: int = -1) -> None:
        super().__init__()
        self.mode = check_value(mode, ARL_MODES, "ARL mode")
        self.axis = axis
        self.mlp = MLP(dim, dim, depth, hidden, out_activation)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "plain" and len(self.mlp) == 2 and self.axis == x.ndim - 2:
            return self.drop(self._linear_norm(x))
        out = self.mlp.along(x, self.axis)
        if self.mode == "multiply":
            out = out * x
        elif self.mode == "add":
            out = out + x
        if self.axis in (-1, x.ndim - 1):
            out = self.norm(out)
        else:  # layer norm along a middle axis, with the module's own affine parameters
            shape = [1] * x.ndim
            shape[self.axis] = -1
            # (torch.var_mean over a middle axis takes a slow path on CPU; two means do not)
            centred = out - out.mean(dim=self.axis, keepdim=True)
            var = centred.square().mean(dim=self.axis, keepdim=True)
            out = centred * torch.rsqrt(var + self.norm.eps) * self.norm.weight.reshape(shape) + self.norm.bias.reshape(shape)
        return self.drop(out)

    def _linear_norm(self, x: torch.Tensor) -> torch.Tensor:
        """One linear layer then the layer norm, both over axis -2, in few passes over ``x``.

        The norm's centring is folded into the linear map (``W − mean_rows(W)``, ``b − mean(b)``
        give the centred output directly), so only the variance needs a reduction. Equal to the
        general path (tested).
        """
        linear, act = self.mlp[0], self.mlp[1]
        if not isinstance(act, nn.Identity):
            centred = act(torch.matmul(linear.weight, x) + linear.bias[:, None])
            centred = centred - centred.mean(dim=-2, keepdim=True)
        else:
            w = linear.weight - linear.weight.mean(dim=0, keepdim=True)
            centred = torch.matmul(w, x) + (linear.bias - linear.bias.mean())[:, None]
        scale = torch.rsqrt(centred.square().mean(dim=-2, keepdim=True) + self.norm.eps)  # (..., 1, D)
        return torch.addcmul(self.norm.bias[:, None], centred * self.norm.weight[:, None], scale)


class ARL(nn.Module):
    """Splits a history into delay and frequency branches and re-weights each over time.

    Delay branch: inverse FFT over the subcarriers of each report. Both branches pass a
    temporal :class:`ARLayer` (an MLP along the ``T`` history steps of every value); with
    ``subcarrier`` settings (the FDD configuration) also one along the ``D`` values of every step.
    """

    def __init__(self, hist_len: int, dim_data: int, temporal: dict, subcarrier: dict | None = None) -> None:
        super().__init__()
        self.temporal_delay = ARLayer(hist_len, **temporal, axis=1)
        self.temporal_freq = ARLayer(hist_len, **temporal, axis=1)
        self.subcarrier_delay = ARLayer(dim_data, **subcarrier) if subcarrier else None
        self.subcarrier_freq = ARLayer(dim_data, **subcarrier) if subcarrier else None

    @staticmethod
    def to_delay(x: torch.Tensor) -> torch.Tensor:
        """Interleaved frequency response ``(N, T, 2K)`` → interleaved delay profile (IFFT over K)."""
        n, t, d = x.shape
        z = torch.fft.ifft(torch.view_as_complex(x.reshape(n, t, d // 2, 2).contiguous()), dim=-1)
        return torch.view_as_real(z).reshape(n, t, d)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (N, T, D) -> 2 × (N, T, D)
        x_delay = self.temporal_delay(self.to_delay(x))
        x_freq = self.temporal_freq(x)
        if self.subcarrier_delay is not None:
            x_delay, x_freq = self.subcarrier_delay(x_delay), self.subcarrier_freq(x_freq)
        return x_delay, x_freq


class SqueezeExcite(nn.Module):
    """SE channel attention: global average pool → 1×1 (C→C/r) → ReLU → 1×1 (C/r→C) → sigmoid."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Conv2d(channels, channels // ratio, 1, bias=False), nn.ReLU(), nn.Conv2d(channels // ratio, channels, 1, bias=False)
        )

    def mlp(self, pooled: torch.Tensor) -> torch.Tensor:
        """The two 1×1 convs applied to pooled ``(N, C)`` vectors as matmuls (same weights)."""
        hidden = torch.relu(torch.nn.functional.linear(pooled, self.fc[0].weight.flatten(1)))
        return torch.nn.functional.linear(hidden, self.fc[2].weight.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> weights (N, C, 1, 1)
        return torch.sigmoid(self.mlp(x.mean(dim=(2, 3))))[:, :, None, None]


class CBAMChannel(SqueezeExcite):
    """CBAM's channel attention: the shared SE MLP on average- and max-pooled maps, summed → sigmoid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean(dim=(2, 3)))
        peak = self.mlp(x.amax(dim=(2, 3)))
        return torch.sigmoid(avg + peak)[:, :, None, None]


ATTENTIONS = {"se": SqueezeExcite, "cbam": CBAMChannel}


def depthwise3x3(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Depthwise 3×3 conv (zero padding 1, no bias) as nine shifted multiply-adds.

    Equal to ``F.conv2d(x, weight, padding=1, groups=C)`` (``weight`` ``(C, 1, 3, 3)``); PyTorch's
    CPU depthwise kernel is several times slower on the small maps used here.
    """
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    k = weight.reshape(1, c, 3, 3)
    out = padded[:, :, 0:h, 0:w] * k[:, :, 0, 0, None, None]
    for i in range(3):
        for j in range(3):
            if i or j:
                out = out + padded[:, :, i : i + h, j : j + w] * k[:, :, i, j, None, None]
    return out


class ShuffleBlock(nn.Module):
    """ShuffleNet unit with channel attention (stride 1, residual).

    grouped 1×1 → BN → ReLU → channel shuffle → depthwise 3×3 → BN → grouped 1×1 → BN →
    × attention → + input → ReLU.
    """

    def __init__(self, channels: int, groups: int, attention: str = "se", ratio: int = 2) -> None:
        super().__init__()
        if channels % groups:
            from edgestream.core.checks import fail

            fail("embed_groups", f"divide embed_width ({channels})", groups, "Pick a divisor of the width.")
        self.groups = groups
        self.pw_in = nn.Conv2d(channels, channels, 1, groups=groups, bias=False)
        self.bn_in = nn.BatchNorm2d(channels)
        self.dw = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.bn_dw = nn.BatchNorm2d(channels)
        self.pw_out = nn.Conv2d(channels, channels, 1, groups=groups, bias=False)
        self.bn_out = nn.BatchNorm2d(channels)
        self.attention = ATTENTIONS[check_value(attention, ATTENTIONS, "attention")](channels, ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W)
        y = torch.relu(self.bn_in(self.pw_in(x)))
        n, c, h, w = y.shape
        y = y.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)  # shuffle
        y = self.bn_dw(depthwise3x3(y, self.dw.weight))
        y = self.bn_out(self.pw_out(y))
        return torch.relu(x + y * self.attention(y))


def shuffle_stack(width: int, groups: int, blocks: int, attention: str, ratio: int, stride: int = 1) -> nn.Sequential:
    """3×3 conv (2→width), ``blocks`` ShuffleBlocks, 3×3 conv (width→2), on ``(N, 2, T, K)``.

    ``stride > 1`` runs the blocks on a grid coarsened along subcarriers (see :func:`grid_conv`).
    """
    return nn.Sequential(
        grid_conv(2, width, stride, "down"),
        *[ShuffleBlock(width, groups, attention, ratio) for _ in range(blocks)],
        grid_conv(width, 2, stride, "up"),
    )


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """Transformer sine/cosine position table ``(length, dim)`` (sin on even, cos on odd features)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


class CSIEmbedding(nn.Module):
    """Delay and frequency ShuffleNet stacks (summed) → token conv + position (+ time features) → linear over time.

    ``(N, T, D)`` × 2 → ``(N, T, d_model)``. The token conv is a circular 3-tap conv over the
    history steps mapping the ``D`` values of a step to ``d_model``. ``time_features > 0`` adds
    a bias-free linear embedding of optional per-step time marks ``(N, T, time_features)``.
    """

    def __init__(
        self,
        hist_len: int,
        dim_data: int,
        d_model: int,
        width: int,
        groups: int,
        blocks: int,
        attention: str,
        ratio: int,
        time_features: int,
        dropout: float,
        stride: int = 1,
    ) -> None:
        super().__init__()
        self.delay_stack = shuffle_stack(width, groups, blocks, attention, ratio, stride)
        self.freq_stack = shuffle_stack(width, groups, blocks, attention, ratio, stride)
        self.token = nn.Conv1d(dim_data, d_model, 3, padding=1, padding_mode="circular")
        nn.init.kaiming_normal_(self.token.weight, mode="fan_in", nonlinearity="leaky_relu")
        self.register_buffer("position", sinusoidal_table(hist_len, d_model), persistent=False)
        self.time_embed = nn.Linear(time_features, d_model, bias=False) if time_features else None
        self.drop = nn.Dropout(dropout)
        self.time_linear = nn.Linear(hist_len, hist_len)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The circular 3-tap token conv over time, as three matmuls on ``(N, T, D)`` (no transposes).

        Conv1d with circular padding: ``y[t] = W0 x[t−1] + W1 x[t] + W2 x[t+1] + b`` (indices mod T).
        """
        w = self.token.weight  # (d_model, D, 3)
        y = torch.nn.functional.linear(x, w.permute(2, 0, 1).reshape(-1, w.shape[1]))  # (N, T, 3·d_model)
        prev, mid, nxt = y.chunk(3, dim=-1)
        return torch.roll(prev, 1, dims=1) + mid + torch.roll(nxt, -1, dims=1) + self.token.bias

    def forward(self, x_delay: torch.Tensor, x_freq: torch.Tensor, marks: torch.Tensor | None = None) -> torch.Tensor:
        e = self.delay_stack(rows_to_image(x_delay)) + self.freq_stack(rows_to_image(x_freq))  # (N, 2, T, K)
        e = self.tokens(image_to_rows(e)) + self.position  # (N, T, d_model)
        if marks is not None:
            if self.time_embed is None:
                from edgestream.core.errors import DataError

                raise DataError("time marks were given but the model has time_features=0; drop them or rebuild the model.")
            e = e + self.time_embed(marks)
        e = self.drop(e)
        return self.time_linear.weight @ e + self.time_linear.bias[:, None]  # linear over T: (N, T, d_model)
