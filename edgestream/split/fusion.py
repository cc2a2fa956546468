"""Step 4 of ED-ViT: fuse the sub-models' CLS features into K-class logits.

Input layout ``(B, S, D + 1)``: for each of the S sub-models its feature ``(D,)`` followed by a
presence flag (1 present, 0 missing). A missing sub-model (device down or late) is an all-zero
row, so the MLP knows which parts it lacks. During training, :class:`SubmodelDrop` zeroes whole
rows at random (never all of a sample's rows), so the fusion learns to degrade gracefully when
a device drops out; backbones are frozen and their features are computed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from edgestream.core.checks import check_number
from edgestream.core.errors import DataError


class SubmodelDrop(nn.Module):
    """Training-time drop of whole sub-models: rows of ``(B, S, D+1)`` zeroed with probability ``p``."""

    def __init__(self, p: float = 0.25) -> None:
        super().__init__()
        self.p = check_number(p, "drop_p", low=0.0, high=1.0, high_inclusive=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[:2], device=x.device) >= self.p  # (B, S)
        # Never drop everything: a sample with no row kept gets one random row back.
        none = ~keep.any(dim=1)
        if none.any():
            pick = torch.randint(0, x.shape[1], (int(none.sum()),), device=x.device)
            keep[none.nonzero().flatten(), pick] = True
        return x * keep.unsqueeze(-1).to(x.dtype)


class FusionMLP(nn.Module):
    """``(B, S, D+1)`` features with presence flags → ``(B, K)`` logits (LayerNorm, 2-layer GELU MLP)."""

    def __init__(
        self, n_submodels: int, feature_dim: int, n_classes: int, hidden: int = 128, drop_p: float = 0.25,
        *, device: Any = None, dtype: Any = None,
    ) -> None:
        super().__init__()
        self.config = {"n_submodels": n_submodels, "feature_dim": feature_dim, "n_classes": n_classes, "hidden": hidden, "drop_p": drop_p}
        self.n_submodels, self.feature_dim = n_submodels, feature_dim
        width = n_submodels * (feature_dim + 1)
        self.drop = SubmodelDrop(drop_p)
        self.net = nn.Sequential(
            nn.Linear(width, hidden, device=device, dtype=dtype),
            nn.GELU(),
            nn.Linear(hidden, n_classes, device=device, dtype=dtype),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or tuple(x.shape[1:]) != (self.n_submodels, self.feature_dim + 1):
            raise DataError(
                f"fusion input must have shape (B, {self.n_submodels}, {self.feature_dim + 1}) (features + presence flag per "
                f"sub-model); got {tuple(x.shape)}. Build it with fusion_input()."
            )
        return self.net(self.drop(x).flatten(1))

    def flops(self) -> int:
        lin = [m for m in self.net if isinstance(m, nn.Linear)]
        return sum(2 * m.in_features * m.out_features for m in lin)


def fusion_input(features: Sequence[torch.Tensor | np.ndarray | None], present: Sequence[bool] | None = None) -> torch.Tensor:
    """Stack per-sub-model features ``(B, D)`` (``None`` = missing) into ``(B, S, D+1)`` with flags."""
    ref = next((f for f in features if f is not None), None)
    if ref is None:
        raise DataError("fusion needs at least one sub-model's features; got none (every device missing).")
    b, d = ref.shape
    rows = []
    for i, f in enumerate(features):
        ok = f is not None and (present is None or bool(present[i]))
        if ok:
            t = torch.tensor(np.asarray(f, dtype=np.float32)) if not isinstance(f, torch.Tensor) else f.float()
            rows.append(torch.cat([t, torch.ones(b, 1)], dim=1))
        else:
            rows.append(torch.zeros(b, d + 1))
    return torch.stack(rows, dim=1)  # (B, S, D+1)
