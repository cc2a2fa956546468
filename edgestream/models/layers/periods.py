"""MPTSNet's per-window period weights in torch: the DFT at each period's bin as two matmuls.

The period rule itself (amplitude spectrum, which bins, which periods) is numpy and lives in
:mod:`edgestream.dsp.periods`; this module computes, inside a model, the amplitude at the bin
nearest ``T/p`` (:func:`~edgestream.dsp.periods.nearest_bins`) of each window's channel mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from edgestream.core.checks import fail
from edgestream.dsp.periods import nearest_bins


def dft_basis(length: int, periods: Sequence[int], *, dtype: Any = None, device: Any = None) -> torch.Tensor:
    """Cosine and sine rows at each period's nearest bin: tensor (2, length, k), float64 by default.

    ``x @ basis[0]`` and ``x @ basis[1]`` are the real part and minus the imaginary part of the
    DFT at those bins; :func:`period_amplitudes` uses it so the computation is plain matmuls
    (exportable to ONNX, where FFT operators are not portable).
    """
    bins = torch.tensor(nearest_bins(length, periods), dtype=torch.float64)
    t = torch.arange(length, dtype=torch.float64)
    angle = 2.0 * torch.pi * t[:, None] * bins[None, :] / length  # (T, k)
    basis = torch.stack([torch.cos(angle), torch.sin(angle)])
    return basis.to(dtype=dtype or torch.float64, device=device)


def period_amplitudes(x: torch.Tensor, periods: Sequence[int] | None = None, *, basis: torch.Tensor | None = None) -> torch.Tensor:
    """Per-window weight of each period: amplitude at the bin nearest ``T/p`` of the channel mean.

    Parameters
    ----------
    x : Tensor (B, C, T)
    periods : the k periods (samples); or pass a precomputed ``basis`` from :func:`dft_basis`.

    Returns
    -------
    Tensor (B, k), detached, in the units of ``x`` — ``(2/T)|Y[f_p]|``.
    """
    if basis is None:
        if periods is None:
            fail("periods", "be given when basis is not", None)
        basis = dft_basis(x.shape[-1], periods, dtype=x.dtype, device=x.device)
    mean = x.detach().mean(dim=1)  # (B, T)
    re = mean @ basis[0]  # (B, k)
    im = mean @ basis[1]
    return (re * re + im * im).sqrt() * (2.0 / x.shape[-1])
