"""Leaky integrate-and-fire neurons from ``snntorch`` with the membrane passed explicitly.

``snntorch.Leaky`` keeps the membrane on the module when asked to (``init_hidden=True``),
registers every neuron in a class-level list (``SpikingNeuron.instances``) and silently
re-initialises the membrane to zeros when its shape does not match the input. This adapter
removes all three: the membrane goes in and comes out as a value, the neuron is taken off the
class-level list as soon as it is built, and a shape mismatch raises :class:`StateError`.

Dynamics (τ = 2 by default; hard reset; the spike used for the reset is detached)::

    v ← v + (x − v)/τ            (= β v + x/τ with β = 1 − 1/τ; snntorch with input scaled by 1/τ)
    s = H(v − threshold)         (surrogate gradient: sigmoid with slope 4)
    v ← 0 where s = 1

snntorch applies the reset of step t at the start of step t+1, so the carried membrane is the
value *before* the reset; the spikes are the same as resetting immediately.

Spike counts and synaptic operations (SOPs) are accumulated in a :class:`SpikeStats` the caller
passes in — never kept on the module.
"""

from __future__ import annotations

import dataclasses

import snntorch
import torch
from snntorch import surrogate
from snntorch._neurons.neurons import SpikingNeuron
from torch import nn

from edgestream.core.checks import check_number
from edgestream.core.errors import StateError


@dataclasses.dataclass
class LayerSpikes:
    """Counts for one spiking layer, summed over every call that recorded into it."""

    neurons: int  # neurons in the layer (channels)
    fanout: int  # synapses driven by one spike of this layer (outputs each spike reaches)
    spikes: float = 0.0  # spikes emitted, summed over batch and steps
    neuron_steps: float = 0.0  # neurons × steps × batch evaluated

    @property
    def rate(self) -> float:
        """Spikes per neuron per step (0 when nothing was recorded)."""
        return self.spikes / self.neuron_steps if self.neuron_steps else 0.0

    @property
    def sops(self) -> float:
        """Synaptic operations: each spike costs one accumulate per synapse it drives."""
        return self.spikes * self.fanout


@dataclasses.dataclass
class SpikeStats:
    """Explicit recorder of per-layer spike rates and SOPs (pass it to a model's ``forward``)."""

    layers: dict[str, LayerSpikes] = dataclasses.field(default_factory=dict)
    samples: float = 0.0  # batch elements × steps recorded at the model input (for per-step figures)

    def add(self, name: str, spikes: torch.Tensor, fanout: int) -> None:
        """Count the spike tensor ``spikes`` ``(B, C, n)`` emitted by layer ``name``."""
        entry = self.layers.get(name)
        if entry is None:
            entry = self.layers[name] = LayerSpikes(neurons=int(spikes.shape[1]), fanout=int(fanout))
        entry.spikes += float(spikes.detach().sum())
        entry.neuron_steps += float(spikes.numel())

    @property
    def total_sops(self) -> float:
        return sum(layer.sops for layer in self.layers.values())

    @property
    def mean_rate(self) -> float:
        """Spikes per neuron-step over all layers (weighted by neuron-steps)."""
        steps = sum(layer.neuron_steps for layer in self.layers.values())
        return sum(layer.spikes for layer in self.layers.values()) / steps if steps else 0.0

    def report(self) -> list[dict[str, float | str | int]]:
        """One row per layer: name, neurons, spike rate, spikes, SOPs, and SOPs per input step."""
        per = self.samples or 1.0
        return [
            {
                "layer": name,
                "neurons": layer.neurons,
                "fanout": layer.fanout,
                "spike_rate": layer.rate,
                "spikes": layer.spikes,
                "sops": layer.sops,
                "sops_per_step": layer.sops / per,
            }
            for name, layer in self.layers.items()
        ]


class LIF(nn.Module):
    """A layer of leaky integrate-and-fire neurons over the time axis of ``(B, C, n)`` inputs.

    Parameters
    ----------
    channels : int
        Number of neurons ``C`` (the membrane has shape ``(B, C)``).
    threshold : float
        Firing threshold (1.0, or 0.5 where the spec says so).
    tau : float
        Membrane time constant in steps (β = 1 − 1/τ, input scaled by 1/τ).
    slope : float
        Slope of the sigmoid surrogate gradient.
    name : str
        Layer name used in :class:`SpikeStats`.
    fanout : int
        Synapses one spike of this layer drives downstream (for SOP accounting).
    """

    def __init__(
        self,
        channels: int,
        threshold: float = 1.0,
        tau: float = 2.0,
        slope: float = 4.0,
        *,
        name: str = "lif",
        fanout: int = 0,
    ) -> None:
        super().__init__()
        self.channels = int(check_number(channels, "channels", low=1, integer=True))
        self.threshold = float(check_number(threshold, "threshold", low=0, low_inclusive=False))
        self.tau = float(check_number(tau, "tau", low=1.0, low_inclusive=False, fix="tau is in steps and must exceed 1."))
        self.slope = float(slope)
        self.name = name
        self.fanout = int(fanout)
        self.state_key = name  # where the membrane lives in the model's state dict
        self.neuron = snntorch.Leaky(
            beta=1.0 - 1.0 / self.tau,
            threshold=self.threshold,
            spike_grad=surrogate.sigmoid(slope=self.slope),
            init_hidden=False,
            reset_mechanism="zero",
        )
        _forget(self.neuron)

    def extra_repr(self) -> str:
        return f"{self.channels}, threshold={self.threshold:g}, tau={self.tau:g}, name={self.name!r}"

    def state_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, self.channels)

    def init_state(self, batch: int = 1, device=None, dtype=None) -> torch.Tensor:
        return torch.zeros(batch, self.channels, device=device, dtype=dtype)

    def forward(
        self, x: torch.Tensor, mem: torch.Tensor, stats: SpikeStats | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run ``n`` steps. ``x`` ``(B, C, n)``, ``mem`` ``(B, C)`` → spikes ``(B, C, n)``, membrane ``(B, C)``."""
        if x.ndim != 3 or x.shape[1] != self.channels or mem.shape != (x.shape[0], self.channels):
            raise StateError(
                f"LIF layer {self.name!r} needs input (B, {self.channels}, n) and membrane (B, {self.channels}); got "
                f"input {tuple(x.shape)} and membrane {tuple(mem.shape)}. The state belongs to another model or batch "
                "size: create it with model.init_state(batch)."
            )
        drive = x / self.tau
        if torch.is_grad_enabled() and (x.requires_grad or mem.requires_grad):
            spikes, mem = self._run_snntorch(drive, mem)
        else:
            spikes, mem = self._run_fast(drive, mem)
        if stats is not None:
            stats.add(self.name, spikes, self.fanout)
        return spikes, mem

    def _run_snntorch(self, drive: torch.Tensor, mem: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training path: snntorch's Leaky step by step (surrogate gradients, detached reset)."""
        out = []
        try:
            for t in range(drive.shape[-1]):
                spk, mem = self.neuron(drive[..., t], mem)
                out.append(spk.to(drive.dtype))  # snntorch's surrogate emits float32 spikes whatever the input dtype
        finally:
            # Leaky.forward parks the last membrane on the module; drop it so nothing persists.
            self.neuron.mem = torch.zeros(0, device=mem.device, dtype=mem.dtype)
            self.neuron.__dict__.pop("reset", None)
        return (torch.stack(out, -1) if out else drive.new_zeros(drive.shape)), mem

    def _run_fast(self, drive: torch.Tensor, mem: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference path: the same arithmetic as snntorch's Leaky, without its per-call overhead.

        Tested bit-for-bit against :meth:`_run_snntorch`.
        """
        beta = 1.0 - 1.0 / self.tau
        th = self.threshold
        out = torch.empty_like(drive)
        for t in range(drive.shape[-1]):
            keep = mem <= th  # reset (to zero) what fired at the previous step
            mem = torch.addcmul(drive[..., t], mem, keep.to(mem.dtype), value=beta)
            out[..., t] = mem > th
        return out, mem


def _forget(neuron: SpikingNeuron) -> None:
    """Take ``neuron`` off snntorch's class-level instance list (no global registry of our layers)."""
    SpikingNeuron.instances[:] = [n for n in SpikingNeuron.instances if n is not neuron]
