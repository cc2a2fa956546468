"""LMUFormer (Liu et al., ICLR 2024): conv patch embedding, LMU token mixer, conv channel mixer.

The only model family here that is truly sequential: its recurrent state has a fixed size, so
a stream is decoded frame by frame (or chunk by chunk) at constant cost per new frame, and the
streamed output equals what the same model computes on the whole sequence.

Every model of the family is a :class:`~edgestream.models.base.StreamingModule`:

* ``forward(x, state=None, *, stats=None) -> (y, state)`` — ``x`` ``(B, n, C_in)`` frames;
  ``y`` ``(B, n, 2K)``: ``y[..., :K]`` the logits of each frame and ``y[..., K:]`` the running
  (cumulative-mean) logits since the state was created, so a prediction exists at every step
  (:meth:`LMUSequenceModel.split_outputs`). Chunked calls with carried state equal one call.
* ``parallel(x)`` — the whole-sequence (training) model: per-frame logits ``(B, T, K)``;
  ``classify(x)`` — their mean over frames ``(B, K)``, the paper's clip logits.
* ``mode="causal"`` (default): left-padded convs, zero look-ahead, ``delay = 0``.
  ``mode="delayed"``: the paper's centred convs; streamed outputs lag by ``delay`` frames (5 for
  the embedding stack) and equal ``parallel(x)`` exactly except the last ``delay`` frames, which
  need inputs that have not arrived. The first ``delay`` rows of a fresh stream are placeholders
  (zeros, not counted in the running mean).

Streaming equivalence holds in eval mode (BatchNorm uses running statistics); training uses
:meth:`parallel` / :meth:`classify` (``edgestream.train.fit`` calls ``training_logits`` = ``classify``).
The spiking variant lives in :mod:`edgestream.models.spiking_lmuformer`.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import nn

from edgestream.core.checks import check_keys, check_number, check_value, fail
from edgestream.core.errors import DataError, StateError
from edgestream.models.base import State, StreamingModule
from edgestream.models.layers.lmu import LMUMemory
from edgestream.models.layers.spiking import SpikeStats
from edgestream.models.layers.streaming import CONV_MODES, DelayLine, SequenceRun, StreamConv1d
from edgestream.models.registry import register_model

FAMILY = "lmuformer"


class LMUSequenceModel(StreamingModule):
    """Shared streaming plumbing of the family: state layout, delay handling, running logits.

    Subclasses build their layers, call :meth:`_finish`, and implement :meth:`_frames`
    (``(B, C_in, n)`` → per-frame logits ``(B, K, n_valid)`` through a :class:`SequenceRun`).
    """

    in_channels: int
    n_classes: int
    theta: float

    def _configure(self, in_channels: int, n_classes: int, theta: float, mode: str) -> None:
        """Check and store the settings every variant has."""
        self.in_channels = int(check_number(in_channels, "in_channels", low=1, integer=True))
        self.n_classes = int(check_number(n_classes, "n_classes", low=1, integer=True))
        self.theta = float(check_number(theta, "theta", low=0, low_inclusive=False))
        self.mode = check_value(mode, CONV_MODES, "mode")

    def _finish(self, device: torch.device | str | None, dtype: torch.dtype | None) -> None:
        """Name every stateful layer by its module path, compute the delay, move, and go to eval."""
        for name, module in self.named_modules():
            if hasattr(module, "state_key") and hasattr(module, "state_shape"):
                module.state_key = name
                if hasattr(module, "name"):
                    module.name = name
        self.delay = self._delay()
        # static structure, looked up on every call (a plain tuple: the modules stay registered where they are)
        self._state_modules = tuple(m for m in self.modules() if getattr(m, "state_key", "") and hasattr(m, "state_shape"))
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)
        # Streaming equivalence is defined in eval mode; training code calls .train() itself.
        self.eval()

    def _delay(self) -> int:
        return 0

    # --- state ---------------------------------------------------------------------------
    def state_shapes(self, batch: int = 1) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {"frames": (batch,), "logit_sum": (batch, self.n_classes)}
        for module in self._state_modules:
            shape = module.state_shape(batch)
            if shape is not None:
                shapes[module.state_key] = tuple(shape)
        return shapes

    def init_state(self, batch: int = 1, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> State:
        """Fresh state for ``batch`` streams. ``frames`` (int64) counts input frames consumed."""
        batch = check_number(batch, "batch", low=1, integer=True)
        state = super().init_state(batch, device=device, dtype=dtype)
        state["frames"] = torch.zeros(batch, dtype=torch.int64, device=state["logit_sum"].device)
        return state

    @property
    def warmup(self) -> int:
        """Frames after a (re)start before outputs reflect a full memory window: ⌈θ⌉ + delay."""
        return int(math.ceil(self.theta)) + self.delay

    @staticmethod
    def split_outputs(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``y`` ``(..., 2K)`` from :meth:`forward` → (frame logits, running logits), each ``(..., K)``."""
        k = y.shape[-1] // 2
        return y[..., :k], y[..., k:]

    # --- forward paths -------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            fail(
                "x", f"be a tensor (B, T, {self.in_channels}) (batch, frames, channels)", shape,
                f"{type(self).__name__} was built with in_channels={self.in_channels}.", DataError,
            )

    def parallel(self, x: torch.Tensor, *, stats: SpikeStats | None = None) -> torch.Tensor:
        """Whole-sequence model (training path): ``x`` ``(B, T, C_in)`` → frame logits ``(B, T, K)``."""
        self._check_input(x)
        if stats is not None:
            stats.samples += x.shape[0] * x.shape[1]
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[0], 0, self.n_classes)
        run = SequenceRun(None, 0, x.shape[0], stats)
        return self._frames(x.transpose(1, 2), run).transpose(1, 2)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Clip logits ``(B, K)``: per-frame logits averaged over frames (the paper's head)."""
        return self.parallel(x).mean(1)

    def training_logits(self, x: torch.Tensor) -> torch.Tensor:
        """What :func:`edgestream.train.fit` trains and evaluates: :meth:`classify` (the parallel path)."""
        return self.classify(x)

    def forward(
        self, x: torch.Tensor, state: State | None = None, *, stats: SpikeStats | None = None
    ) -> tuple[torch.Tensor, State]:
        """Continue the stream(s) over ``x`` ``(B, n, C_in)`` → ``(y (B, n, 2K), state)`` (see module doc)."""
        self._check_input(x)
        batch, n = x.shape[0], x.shape[1]
        if state is None:
            state = self.init_state(batch, device=x.device, dtype=x.dtype)
        self.check_state(state, batch)
        frames = state["frames"]
        t0 = int(frames.min()) if batch else 0
        if self.delay and t0 < self.delay and bool((frames != frames[0]).any()):
            raise StateError(
                f"state['frames'] must be equal across the batch while the delayed-mode stream warms up (first "
                f"{self.delay} frames); got {frames.tolist()}. Step streams of different ages separately until "
                "they are past the delay, or use mode='causal'."
            )
        if stats is not None:
            stats.samples += batch * n
        if n == 0:  # an empty chunk is harmless: nothing computed, state unchanged
            return x.new_zeros(batch, 0, 2 * self.n_classes), dict(state)
        run = SequenceRun(state, t0, batch, stats)
        logits = self._frames(x.transpose(1, 2), run).transpose(1, 2)  # (B, v, K), v valid frames
        v = logits.shape[1]
        before = (frames - self.delay).clamp_min(0).to(logits.dtype)  # valid frames already averaged
        count = before[:, None] + torch.arange(1, v + 1, device=x.device, dtype=logits.dtype)[None]  # (B, v)
        running = (state["logit_sum"][:, None] + logits.cumsum(1)) / count[..., None]
        y = torch.cat([logits, running], -1)  # (B, v, 2K)
        if v < n:  # delayed mode at the start of a stream: placeholder rows for frames before t = 0
            y = torch.cat([y.new_zeros(batch, n - v, 2 * self.n_classes), y], 1)
        new = run.state_out
        new["frames"] = frames + n
        new["logit_sum"] = state["logit_sum"] + logits.sum(1)
        return y, new

    def _frames(self, x: torch.Tensor, run: SequenceRun) -> torch.Tensor:  # (B, C_in, n) -> (B, K, v)
        raise NotImplementedError


def _init_linear(module: nn.Module) -> None:
    """Truncated-normal (std 0.02) Linear weights and zero biases, as in the reference training."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


# --- non-spiking LMUFormer --------------------------------------------------------------------
class ConvEmbedding(nn.Module):
    """``n_layers`` × [Conv1d(k3, no bias) → ReLU → BN], then ``x + Conv1d_k3(x)`` (positional residual)."""

    def __init__(self, in_channels: int, dim: int, n_layers: int, mode: str) -> None:
        super().__init__()
        chans = [in_channels] + [dim] * n_layers
        self.convs = nn.ModuleList(StreamConv1d(chans[i], chans[i + 1], 3, mode=mode) for i in range(n_layers))
        self.bns = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(n_layers))
        self.rpe = StreamConv1d(dim, dim, 3, mode=mode)
        self.skip = DelayLine(dim, self.rpe.lookahead)

    @property
    def lookahead(self) -> int:
        return sum(c.lookahead for c in self.convs) + self.rpe.lookahead

    def forward(self, x: torch.Tensor, run: SequenceRun) -> torch.Tensor:  # (B, C_in, n) -> (B, dim, v)
        delay = 0
        for conv, bn in zip(self.convs, self.bns):
            x = run.conv(conv, x, delay)
            delay += conv.lookahead
            if x.shape[-1] == 0:
                return x.new_zeros(x.shape[0], self.rpe.out_channels, 0)
            x = bn(torch.relu(x))
        return run.conv(self.skip, x, delay) + run.conv(self.rpe, x, delay)


class LMUTokenMixer(nn.Module):
    """``BN(Conv1x1(h))`` with ``u = ReLU(W_u x)``, ``m = LMU(u)``, ``h = ReLU(W_h [m; x])`` (all h kept)."""

    def __init__(self, dim: int, memory: int, theta: float, max_len: int) -> None:
        super().__init__()
        self.w_u = nn.Linear(dim, 1)
        self.memory = LMUMemory(memory, theta, max_len)
        self.w_h = nn.Linear(memory + dim, dim)
        self.proj = nn.Conv1d(dim, dim, 1)
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor, run: SequenceRun) -> torch.Tensor:  # (B, dim, n) -> (B, dim, n)
        xt = x.transpose(1, 2)  # (B, n, dim)
        u = torch.relu(self.w_u(xt))[..., 0]  # (B, n)
        m = run.memory(self.memory, u)  # (B, n, d)
        h = torch.relu(self.w_h(torch.cat([m, xt], -1)))  # (B, n, dim)
        return self.bn(self.proj(h.transpose(1, 2)))


class ConvMixer(nn.Module):
    """Channel mixer: Conv1x1(dim→hidden) → BN → GELU → Conv1x1(hidden→dim) → BN → ReLU."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv1d(dim, hidden, 1)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Conv1d(hidden, dim, 1)
        self.bn2 = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.fc2(nn.functional.gelu(self.bn1(self.fc1(x))))))


class LMUBlock(nn.Module):
    def __init__(self, dim: int, memory: int, theta: float, max_len: int, mlp_ratio: float) -> None:
        super().__init__()
        self.token = LMUTokenMixer(dim, memory, theta, max_len)
        self.mixer = ConvMixer(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, run: SequenceRun) -> torch.Tensor:
        x = x + self.token(x, run)
        return x + self.mixer(x)


class LMUFormer(LMUSequenceModel):
    """Non-spiking LMUFormer. Input frames ``(B, T, in_channels)`` (e.g. log-Mel bins or EEG channels).

    Parameters
    ----------
    in_channels : int
        Features per frame.
    n_classes : int
        Output classes ``K``.
    dim : int
        Embedding width.
    depth : int
        Number of LMU blocks (the paper uses 1).
    memory : int or None
        LMU memory order ``d`` (None = ``dim``).
    theta : float
        LMU window in frames.
    mlp_ratio : float
        Channel-mixer expansion.
    embed_layers : int
        Conv layers in the patch embedding (before the positional residual conv).
    mode : {"causal", "delayed"}
        Conv look-ahead handling (see module docstring).
    max_len : int
        Frames precomputed for the LMU impulse response (longer inputs are split, still exact).
    device, dtype
        Placement and precision of parameters and buffers.
    """

    def __init__(
        self,
        in_channels: int = 128,
        n_classes: int = 35,
        dim: int = 256,
        depth: int = 1,
        memory: int | None = None,
        theta: float = 128.0,
        mlp_ratio: float = 4.0,
        embed_layers: int = 4,
        mode: str = "causal",
        max_len: int = 1024,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self._configure(in_channels, n_classes, theta, mode)
        self.dim = int(check_number(dim, "dim", low=1, integer=True))
        self.depth = int(check_number(depth, "depth", low=1, integer=True))
        memory = memory if memory is not None else self.memory_per_dim * self.dim
        self.memory = int(check_number(memory, "memory", low=1, integer=True))
        embed_layers = check_number(embed_layers, "embed_layers", low=1, integer=True)
        self.embed = self._embedding(embed_layers)
        self.blocks = nn.ModuleList(self._block(max_len, mlp_ratio) for _ in range(self.depth))
        self._head()
        self.apply(_init_linear)
        self._finish(device, dtype)

    # Layer builders: the spiking variant overrides these four and nothing else.
    memory_per_dim = 1  # default memory order as a multiple of dim

    def _embedding(self, n_layers: int) -> nn.Module:
        return ConvEmbedding(self.in_channels, self.dim, n_layers, self.mode)

    def _block(self, max_len: int, mlp_ratio: float) -> nn.Module:
        return LMUBlock(self.dim, self.memory, self.theta, max_len, mlp_ratio)

    def _head(self) -> None:
        self.head = nn.Linear(self.dim, self.n_classes)

    def _head_logits(self, x: torch.Tensor, run: SequenceRun) -> torch.Tensor:  # (B, dim, v) -> (B, K, v)
        return self.head(x.transpose(1, 2)).transpose(1, 2)

    def _delay(self) -> int:
        return self.embed.lookahead

    def _frames(self, x: torch.Tensor, run: SequenceRun) -> torch.Tensor:
        x = self.embed(x, run)
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], self.n_classes, 0)
        for block in self.blocks:
            x = block(x, run)
        return self._head_logits(x, run)


class LMUClassifier(LMUSequenceModel):
    """The paper's psMNIST model: Conv1x1(C→proj)+BN → one LMU cell → dropout → Linear per step, averaged.

    ``u = ReLU(W_u x)``, ``m = LMU(u)``, ``h = ReLU(W_h [m; x])``; the classifier is linear, so the
    mean of per-step logits equals the classifier applied to the mean hidden state. No conv
    looks ahead, so ``causal`` and ``delayed`` modes are the same model (``delay = 0``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 10,
        proj: int = 3,
        hidden: int = 346,
        memory: int = 468,
        theta: float = 784.0,
        dropout: float = 0.4,
        mode: str = "causal",
        max_len: int = 1024,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self._configure(in_channels, n_classes, theta, mode)
        self.proj = nn.Conv1d(self.in_channels, proj, 1)
        self.bn = nn.BatchNorm1d(proj)
        self.w_u = nn.Linear(proj, 1)
        self.memory = LMUMemory(memory, self.theta, max_len)
        self.w_h = nn.Linear(memory + proj, hidden)
        self.dropout = nn.Dropout(check_number(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False))
        self.head = nn.Linear(hidden, self.n_classes)
        self._finish(device, dtype)

    def _frames(self, x: torch.Tensor, run: SequenceRun) -> torch.Tensor:
        xt = self.bn(self.proj(x)).transpose(1, 2)  # (B, n, proj)
        u = torch.relu(self.w_u(xt))[..., 0]  # (B, n)
        m = run.memory(self.memory, u)  # (B, n, d)
        h = torch.relu(self.w_h(torch.cat([m, xt], -1)))
        return self.head(self.dropout(h)).transpose(1, 2)


# --- registry ------------------------------------------------------------------------------------
def build(cls: type[nn.Module], defaults: dict[str, Any], overrides: dict[str, Any], name: str) -> Any:
    """Instantiate ``cls`` with a variant's defaults updated by ``overrides`` (unknown keys refused)."""
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    check_keys(overrides, accepted, f"model {name!r}")
    return cls(**(defaults | overrides))


SCV2 = {"in_channels": 128, "n_classes": 35, "dim": 256, "depth": 1, "theta": 128.0, "mlp_ratio": 4.0}
EEG_S = {"in_channels": 64, "n_classes": 3, "dim": 64, "depth": 1, "theta": 128.0, "mlp_ratio": 2.0, "max_len": 256}


@register_model(family=FAMILY, kind="streaming", spiking=False, paper="Liu et al. ICLR 2024")
def lmuformer_scv2(**overrides: Any) -> LMUFormer:
    """LMUFormer, Speech Commands v2 configuration: 128 log-Mel in, 35 classes (1,621,796 parameters)."""
    return build(LMUFormer, SCV2 | {"memory": 256}, overrides, "lmuformer_scv2")


@register_model(family=FAMILY, kind="streaming", spiking=False)
def lmuformer_eeg_s(**overrides: Any) -> LMUFormer:
    """Compact LMUFormer for EEG: 64 channels in, 3 classes, width 64, memory 64 over θ = 128 frames."""
    return build(LMUFormer, EEG_S | {"memory": 64}, overrides, "lmuformer_eeg_s")


@register_model(family=FAMILY, kind="streaming", spiking=False, paper="Liu et al. ICLR 2024 (psMNIST)")
def lmuformer_psmnist(**overrides: Any) -> LMUClassifier:
    """The paper's psMNIST LMU: one pixel per step, memory 468, hidden 346, θ = 784 (166,798 parameters)."""
    return build(LMUClassifier, {}, overrides, "lmuformer_psmnist")
