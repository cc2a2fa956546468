"""Step 2 of ED-ViT: class-wise structured pruning of heads and MLP neurons to a memory budget.

Importance scores (registered in :data:`SCORES`), one array per block for heads ``(H_b,)`` and
one for neurons ``(M_b,)``:

* ``"magnitude"`` — L2 norm of every weight the unit owns (a head: its Q/K/V rows with biases
  and its out-projection columns; a neuron: its fc1 row with bias and its fc2 column).
* ``"taylor"`` — first-order estimate of the loss change when the unit is removed,
  ``mean |∂L/∂m|`` over the sub-model's own data, with ``m`` the all-ones mask (Michel et al.
  2019, for heads; the same for neurons). This is what makes pruning *class-wise*.

Scores are normalised per block (L2) so blocks compare, then the lowest fraction ``r`` of heads
and the lowest ``r`` of neurons are removed, with ``r`` found by bisection as the smallest that
fits the budget (parameter memory, float32).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from edgestream.core.errors import ConfigError
from edgestream.core.registry import Registry
from edgestream.models.vit import VisionTransformer

Scores = tuple[list[np.ndarray], list[np.ndarray]]  # (head scores per block, neuron scores per block)
SCORES: Registry[Callable[..., Scores]] = Registry("pruning score")


@SCORES.register("magnitude")
def magnitude_scores(model: VisionTransformer, batches: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None, **_: Any) -> Scores:
    """L2 norm of each head's and neuron's weights (data-free)."""
    hd = model.config["head_dim"]
    heads, neurons = [], []
    with torch.no_grad():
        for block in model.blocks:
            a, m = block.attn, block.mlp
            h = a.n_heads
            qkv_w = a.qkv.weight.reshape(3, h, hd, -1).permute(1, 0, 2, 3).reshape(h, -1)  # (H, 3·hd·D)
            qkv_b = a.qkv.bias.reshape(3, h, hd).permute(1, 0, 2).reshape(h, -1)
            proj = a.proj.weight.reshape(-1, h, hd).permute(1, 0, 2).reshape(h, -1)  # (H, D·hd)
            heads.append(torch.cat([qkv_w, qkv_b, proj], dim=1).norm(dim=1).cpu().numpy())
            unit = torch.cat([m.fc1.weight, m.fc1.bias[:, None], m.fc2.weight.T], dim=1)  # (M, 2D+1)
            neurons.append(unit.norm(dim=1).cpu().numpy())
    return heads, neurons


@SCORES.register("taylor")
def taylor_scores(
    model: VisionTransformer,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    *,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    **_: Any,
) -> Scores:
    """Mean ``|∂loss/∂mask|`` over ``batches`` of ``(images, labels)`` (labels index the model's outputs)."""
    if batches is None:
        raise ConfigError("batches must be given for Taylor scores; got None. Pass the sub-model's (images, labels) batches.")
    loss = loss or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    hm, nm = model.ones_masks(requires_grad=True)
    head_acc = [torch.zeros_like(m) for m in hm]
    neuron_acc = [torch.zeros_like(m) for m in nm]
    count = 0
    for xb, yb in batches:
        model.zero_grad(set_to_none=True)
        value = loss(model(xb, hm, nm), yb)
        grads = torch.autograd.grad(value, hm + nm, allow_unused=True)
        for acc, g in zip(head_acc + neuron_acc, grads):
            if g is not None:
                acc += g.abs().detach() * len(xb)  # |dL/dm| of the batch-mean loss, weighted by batch size
        count += len(xb)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    if count == 0:
        raise ConfigError("batches must hold at least one image for Taylor scores; got none. Check the class subset has data.")
    return [a.cpu().numpy() / count for a in head_acc], [a.cpu().numpy() / count for a in neuron_acc]


def compute_scores(method: str, model: VisionTransformer, batches: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None, **kw: Any) -> Scores:
    """Importance scores by method name (``"magnitude"``, ``"taylor"``)."""
    return SCORES.get(method).factory(model, batches, **kw)


@dataclasses.dataclass(frozen=True)
class PruneResult:
    keep_heads: list[list[int]]  # kept head indices per block (into the unpruned block)
    keep_neurons: list[list[int]]  # kept MLP neuron indices per block
    fraction: float  # share r of heads and of neurons removed
    size_bytes: int  # parameter memory of the pruned model (float32)


def _normalise(per_block: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    for s in per_block:
        s = np.asarray(s, dtype=np.float64)
        norm = np.linalg.norm(s)
        out.append(s / norm if norm > 0 else s)
    return out


def _lowest(per_block: list[np.ndarray], n_remove: int, minimum: int) -> list[list[int]]:
    """Kept indices per block after removing the ``n_remove`` globally lowest units (≥ ``minimum`` per block)."""
    ranked = sorted((float(s), b, i) for b, scores in enumerate(per_block) for i, s in enumerate(scores))
    keep = [set(range(len(s))) for s in per_block]
    removed = 0
    for _, b, i in ranked:
        if removed >= n_remove:
            break
        if len(keep[b]) > minimum:
            keep[b].discard(i)
            removed += 1
    return [sorted(k) for k in keep]


def pruned_size_bytes(model: VisionTransformer, keep_heads: list[list[int]], keep_neurons: list[list[int]], bytes_per_param: int = 4) -> int:
    """Parameter memory the model would have after :meth:`VisionTransformer.prune` (computed, not built)."""
    d, hd = model.dim, model.config["head_dim"]
    removed = 0
    for b, (kh, kn) in enumerate(zip(keep_heads, keep_neurons)):
        removed += (model.n_heads[b] - len(kh)) * (3 * hd * d + 3 * hd + hd * d)
        removed += (model.mlp_hidden[b] - len(kn)) * (2 * d + 1)
    return (model.n_params() - removed) * bytes_per_param


def plan_pruning(
    model: VisionTransformer, scores: Scores, budget_bytes: float, *, min_heads: int = 1, min_neurons: int = 1
) -> PruneResult:
    """Smallest removal fraction whose pruned model fits ``budget_bytes`` (bisection on r).

    Raises :class:`ConfigError` when even the most pruned model (``min_heads``/``min_neurons``
    per block) does not fit.
    """
    head_scores, neuron_scores = _normalise(scores[0]), _normalise(scores[1])
    n_h, n_m = sum(map(len, head_scores)), sum(map(len, neuron_scores))

    def at(r: float) -> tuple[list[list[int]], list[list[int]], int]:
        kh = _lowest(head_scores, int(np.floor(r * n_h)), min_heads)
        kn = _lowest(neuron_scores, int(np.floor(r * n_m)), min_neurons)
        return kh, kn, pruned_size_bytes(model, kh, kn)

    kh, kn, size = at(0.0)
    if size <= budget_bytes:
        return PruneResult(kh, kn, 0.0, size)
    kh, kn, size = at(1.0)
    if size > budget_bytes:
        raise ConfigError(
            f"memory budget must fit the smallest prunable sub-model ({size / 2**20:.3f} MB with {min_heads} head(s) and "
            f"{min_neurons} neuron(s) per block); got {budget_bytes / 2**20:.3f} MB. Give the device more memory_budget_mb, "
            "use more devices, or start from a smaller ViT."
        )
    lo, hi = 0.0, 1.0
    for _ in range(40):  # 2^-40 resolution: finer than one unit for any model here
        mid = (lo + hi) / 2
        if at(mid)[2] <= budget_bytes:
            hi = mid
        else:
            lo = mid
    kh, kn, size = at(hi)
    return PruneResult(kh, kn, hi, size)


def prune_to_budget(
    model: VisionTransformer,
    budget_bytes: float,
    method: str = "taylor",
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    **kw: Any,
) -> tuple[VisionTransformer, PruneResult]:
    """Score, choose units, and physically prune ``model`` to fit ``budget_bytes``."""
    scores = compute_scores(method, model, batches, **{k: v for k, v in kw.items() if k == "loss"})
    result = plan_pruning(model, scores, budget_bytes, **{k: v for k, v in kw.items() if k in ("min_heads", "min_neurons")})
    return model.prune(result.keep_heads, result.keep_neurons), result
