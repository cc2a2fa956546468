"""Spiking LMUFormer (reference variant ``slmu_rnn_ms_conv1d``): LIF neurons over the frame axis.

Same streaming contract as :mod:`edgestream.models.lmuformer` (``forward(x, state)``,
``parallel``, ``classify``, causal/delayed modes); every LIF membrane is part of the state.
Pass a :class:`~edgestream.models.layers.spiking.SpikeStats` as ``stats=`` to ``forward`` or
``parallel`` to collect per-layer spike rates and synaptic operations (SOPs).

Layout (``dim`` = 256, memory 2·dim = 512 in the paper; τ = 2, thresholds 1.0 unless noted)::

    embed:  3 × [conv_k3 → BN → LIF], conv_k3 = y;  y + conv_k3(LIF(BN(y)))      (real-valued out)
    block:  x_s = LIF_0.5(BN(x));  u = LIF(BN(W_u x_s));  m = LMU(u);  m_s = LIF(BN(m))
            h = LIF(BN(W_h [m_s; x_s]));  x = x + BN(Conv1x1(h))
            x = x + fc2(LIF(BN(fc1(LIF(BN(x))))))
    head:   BN → LIF → Linear per frame, averaged over frames
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgestream.models.layers.lmu import LMUMemory
from edgestream.models.layers.spiking import LIF
from edgestream.models.layers.streaming import DelayLine, SequenceRun, StreamConv1d
from edgestream.models.lmuformer import EEG_S, FAMILY, SCV2, LMUFormer, build
from edgestream.models.registry import register_model

TAU = 2.0  # membrane time constant of every LIF layer, in frames


class SpikingEmbedding(nn.Module):
    """conv(k3) → BN → LIF, ``n_layers - 1`` times, then conv(k3) = y; output ``y + conv_k3(LIF(BN(y)))``."""

    def __init__(self, in_channels: int, dim: int, n_layers: int, mode: str) -> None:
        super().__init__()
        chans = [in_channels] + [dim] * n_layers
        self.convs = nn.ModuleList(StreamConv1d(chans[i], chans[i + 1], 3, mode=mode) for i in range(n_layers))
        # BN + LIF after every conv; the last pair feeds the positional conv (fan-out: 3 taps × dim)
        self.bns = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(n_layers))
        self.lifs = nn.ModuleList(LIF(dim, tau=TAU, fanout=3 * dim) for _ in range(n_layers))
        self.rpe = StreamConv1d(dim, dim, 3, mode=mode)
        self.skip = DelayLine(dim, self.rpe.lookahead)

    @property
    def lookahead(self) -> int:
        return sum(c.lookahead for c in self.convs) + self.rpe.lookahead

    def forward(self, x: torch.Tensor, run: SequenceRun) -> torch.Tensor:  # (B, C_in, n) -> (B, dim, v)
        delay = 0
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x = run.conv(conv, x, delay)
            delay += conv.lookahead
            if x.shape[-1] == 0:
                return x.new_zeros(x.shape[0], self.rpe.out_channels, 0)
            if i < last:
                x = run.lif(self.lifs[i], self.bns[i](x))
        spikes = run.lif(self.lifs[last], self.bns[last](x))
        return run.conv(self.skip, x, delay) + run.conv(self.rpe, spikes, delay)


class SpikingLMUMixer(nn.Module):
    """Spiking LMU token mixer; returns ``BN(Conv1x1(h))`` for a real-valued residual add."""

    def __init__(self, dim: int, memory: int, theta: float, max_len: int) -> None:
        super().__init__()
        self.bn_x = nn.BatchNorm1d(dim)
        self.lif_x = LIF(dim, threshold=0.5, tau=TAU, fanout=dim + 1)  # feeds W_u (1) and W_h (dim)
        self.w_u = nn.Linear(dim, 1)
        self.bn_u = nn.BatchNorm1d(1)
        self.lif_u = LIF(1, tau=TAU, fanout=memory)  # one spike adds B̄ to all d memory coefficients
        self.memory = LMUMemory(memory, theta, max_len)
        self.bn_m = nn.BatchNorm1d(memory)
        self.lif_m = LIF(memory, tau=TAU, fanout=dim)
        self.w_h = nn.Linear(memory + dim, dim)
        self.bn_h = nn.BatchNorm1d(dim)
        self.lif_h = LIF(dim, tau=TAU, fanout=dim)
        self.proj = nn.Conv1d(dim, dim, 1)
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor, run: SequenceRun) -> torch.Tensor:  # (B, dim, n) -> (B, dim, n)
        xs = run.lif(self.lif_x, self.bn_x(x))  # (B, dim, n) spikes
        u = run.lif(self.lif_u, self.bn_u(self.w_u(xs.transpose(1, 2)).transpose(1, 2)))  # (B, 1, n)
        m = run.memory(self.memory, u[:, 0])  # (B, n, d)
        ms = run.lif(self.lif_m, self.bn_m(m.transpose(1, 2)))  # (B, d, n)
        h = self.w_h(torch.cat([ms, xs], 1).transpose(1, 2)).transpose(1, 2)  # (B, dim, n)
        h = run.lif(self.lif_h, self.bn_h(h))
        return self.bn(self.proj(h))


class SpikingConvMixer(nn.Module):
    """BN → LIF → Conv1x1(dim→hidden) → BN → LIF → Conv1x1(hidden→dim)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm1d(dim)
        self.lif1 = LIF(dim, tau=TAU, fanout=hidden)
        self.fc1 = nn.Conv1d(dim, hidden, 1)
        self.bn2 = nn.BatchNorm1d(hidden)
        self.lif2 = LIF(hidden, tau=TAU, fanout=dim)
        self.fc2 = nn.Conv1d(hidden, dim, 1)

    def forward(self, x: torch.Tensor, run: SequenceRun) -> torch.Tensor:
        x = self.fc1(run.lif(self.lif1, self.bn1(x)))
        return self.fc2(run.lif(self.lif2, self.bn2(x)))


class SpikingLMUBlock(nn.Module):
    def __init__(self, dim: int, memory: int, theta: float, max_len: int, mlp_ratio: float) -> None:
        super().__init__()
        self.token = SpikingLMUMixer(dim, memory, theta, max_len)
        self.mixer = SpikingConvMixer(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, run: SequenceRun) -> torch.Tensor:
        x = x + self.token(x, run)
        return x + self.mixer(x, run)


class SpikingLMUFormer(LMUFormer):
    """Spiking LMUFormer; parameters as :class:`~edgestream.models.lmuformer.LMUFormer` (``memory``
    defaults to ``2·dim``). Input frames ``(B, T, in_channels)``.
    """

    memory_per_dim = 2

    def _embedding(self, n_layers: int) -> nn.Module:
        return SpikingEmbedding(self.in_channels, self.dim, n_layers, self.mode)

    def _block(self, max_len: int, mlp_ratio: float) -> nn.Module:
        return SpikingLMUBlock(self.dim, self.memory, self.theta, max_len, mlp_ratio)

    def _head(self) -> None:
        self.head_bn = nn.BatchNorm1d(self.dim)
        self.head_lif = LIF(self.dim, tau=TAU, fanout=self.n_classes)
        self.head = nn.Linear(self.dim, self.n_classes)

    def _head_logits(self, x: torch.Tensor, run: SequenceRun) -> torch.Tensor:
        x = run.lif(self.head_lif, self.head_bn(x))
        return self.head(x.transpose(1, 2)).transpose(1, 2)


@register_model(family=FAMILY, kind="streaming", spiking=True, paper="Liu et al. ICLR 2024")
def spiking_lmuformer_scv2(**overrides: Any) -> SpikingLMUFormer:
    """Spiking LMUFormer, Speech Commands v2 configuration: 128 log-Mel in, 35 classes (1,689,894 parameters)."""
    return build(SpikingLMUFormer, SCV2 | {"memory": 512}, overrides, "spiking_lmuformer_scv2")


@register_model(family=FAMILY, kind="streaming", spiking=True)
def spiking_lmuformer_eeg_s(**overrides: Any) -> SpikingLMUFormer:
    """Compact spiking LMUFormer for EEG: 64 channels in, 3 classes, width 64, memory 128 over θ = 128 frames."""
    return build(SpikingLMUFormer, EEG_S | {"memory": 128}, overrides, "spiking_lmuformer_eeg_s")


def spike_report(model: SpikingLMUFormer, frames: torch.Tensor) -> dict[str, Any]:
    """Spike rates and synaptic operations of ``model`` over ``frames`` ``(B, T, C)`` (whole-sequence pass).

    Returns ``layers`` (one row per LIF layer: rate, spikes, SOPs, SOPs per frame), ``sops_per_frame``
    (all layers), ``dense_ops_per_frame`` (the accumulates the same synapses cost if every neuron
    fired at every frame — the MACs of those layers with real-valued activations), their ratio,
    and the mean spike rate.
    """
    from edgestream.models.layers.spiking import SpikeStats

    stats = SpikeStats()
    with torch.no_grad():
        model.parallel(frames, stats=stats)
    per = float(frames.shape[0] * frames.shape[1])
    sops = stats.total_sops / per
    dense = float(sum(layer.neurons * layer.fanout for layer in stats.layers.values()))
    return {"layers": stats.report(), "sops_per_frame": sops, "dense_ops_per_frame": dense,
            "sops_fraction_of_dense": sops / dense if dense else 0.0, "mean_rate": stats.mean_rate}
