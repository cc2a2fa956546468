"""The contract of CSI report predictors (``kind="predictor"``).

A predictor maps a history of reports to the next ones, per base-station antenna row:

* input ``x``: ``(B, T_hist, 2K)`` antenna rows, or ``(B, A, T_hist, 2K)`` samples of ``A``
  antennas; the last axis interleaves ``[Re0, Im0, Re1, Im1, ...]`` over ``K`` subcarriers
  (see :mod:`edgestream.csi.layout`);
* output: the same leading axes with ``T_pred`` steps: ``(B, T_pred, 2K)`` / ``(B, A, T_pred, 2K)``.

Values are in the units of the reports (no scaling by the caller): every predictor holds the
dataset z-score (separate mean/std for real and imaginary parts) as buffers, set from the
training set with :meth:`CSIPredictor.set_data_stats`, and applies it around its core. A
predictor is stateless between calls: the streaming runner owns the history.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgestream.core.errors import DataError


class CSIPredictor(nn.Module):
    """Base class: input checks, dataset z-score, and antenna-row flattening around :meth:`predict_rows`."""

    def __init__(self, hist_len: int = 16, pred_len: int = 4, n_subcarriers: int = 300) -> None:
        super().__init__()
        self.hist_len = hist_len
        self.pred_len = pred_len
        self.n_subcarriers = n_subcarriers
        self.register_buffer("data_mean", torch.zeros(2))  # (re, im) dataset means
        self.register_buffer("data_std", torch.ones(2))  # (re, im) dataset standard deviations

    @property
    def dim_data(self) -> int:
        return 2 * self.n_subcarriers

    def example_input(self, batch: int = 1, n_antennas: int = 32) -> torch.Tensor:
        """A zero input ``(batch, n_antennas, hist_len, 2K)`` (for export and shape checks)."""
        ref = self.data_mean
        return torch.zeros(batch, n_antennas, self.hist_len, self.dim_data, dtype=ref.dtype, device=ref.device)

    def set_data_stats(self, mean: Any, std: Any) -> None:
        """Set the dataset z-score: ``mean``/``std`` are (re, im) pairs."""
        self.data_mean.copy_(torch.as_tensor(mean, dtype=self.data_mean.dtype).reshape(2))
        self.data_std.copy_(torch.as_tensor(std, dtype=self.data_std.dtype).reshape(2).clamp_min(1e-12))

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim not in (3, 4) or x.shape[-1] != self.dim_data or x.shape[-2] != self.hist_len:
            raise DataError(
                f"{type(self).__name__} input must be (B, {self.hist_len}, {self.dim_data}) or "
                f"(B, A, {self.hist_len}, {self.dim_data}) (history × interleaved Re/Im of {self.n_subcarriers} "
                f"subcarriers); got shape {tuple(x.shape)}. Reshape reports with CSILayout.to_reports."
            )

    def forward(self, x: torch.Tensor, marks: torch.Tensor | None = None) -> torch.Tensor:
        """Predict ``(…, T_pred, 2K)`` from ``(…, T_hist, 2K)``; ``marks`` are optional per-step time features."""
        self._check(x)
        lead = x.shape[:-2]
        group = int(x.shape[1]) if x.ndim == 4 else 1  # rows per CSI sample (normalised together)
        rows = x.reshape(-1, self.hist_len, self.dim_data)  # (B·A, T, D)
        mean = self.data_mean.repeat(self.n_subcarriers)  # (D,) as [m_re, m_im, m_re, ...]
        std = self.data_std.repeat(self.n_subcarriers)
        if marks is not None:
            marks = marks.reshape(-1, *marks.shape[-2:]).repeat_interleave(group, dim=0)
        y = self.predict_rows((rows - mean) / std, group, marks)  # (B·A, T_pred, D)
        return (y * std + mean).reshape(*lead, self.pred_len, self.dim_data)

    def predict_rows(self, x: torch.Tensor, group: int, marks: torch.Tensor | None) -> torch.Tensor:
        """Core prediction on z-scored rows ``(N, T_hist, D)`` → ``(N, T_pred, D)``; ``group`` rows form one sample."""
        raise NotImplementedError


def data_stats(x: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(re, im) mean and std of interleaved CSI ``(..., 2K)`` (the dataset z-score)."""
    t = torch.as_tensor(x, dtype=torch.float64)
    re, im = t[..., 0::2], t[..., 1::2]
    mean = torch.stack([re.mean(), im.mean()]).float()
    std = torch.stack([re.std(), im.std()]).float()
    return mean, std


def sample_normalise(x: torch.Tensor, group: int, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalise rows ``(N, T, D)`` per CSI sample of ``group`` consecutive rows (never across samples).

    Returns ``(x_norm, mean, std)`` with ``mean``/``std`` shaped ``(N, 1, 1)`` to undo it.
    """
    n, t, d = x.shape
    per_sample = x.reshape(n // group, group * t * d)  # (samples, group·T·D)
    # Two passes (mean, then the centred second moment): torch's fused std_mean/var_mean over one
    # long row is ~14x slower on CPU (506 vs 37 us for one 32-antenna, 4-report sample).
    mean = per_sample.mean(dim=1, keepdim=True)  # (samples, 1)
    centred = per_sample - mean
    std = (centred * centred).mean(dim=1, keepdim=True).sqrt().clamp_min(eps)
    x_norm = (centred / std).reshape(n, t, d)
    return x_norm, mean.expand(-1, group).reshape(n, 1, 1), std.expand(-1, group).reshape(n, 1, 1)


def count_flops(model: nn.Module, n_antennas: int = 32) -> int:
    """FLOPs (2 × multiply-adds of matmuls/convolutions/attention) of one prediction of ``n_antennas`` rows.

    Counted by ``torch.utils.flop_counter`` on a forward pass in eval mode (on the "meta" device
    for a model built there: no memory, no arithmetic); element-wise operations and FFTs are not
    counted (they are a small fraction here).
    """
    from torch.utils.flop_counter import FlopCounterMode

    ref = next(model.buffers(), None)
    dtype = ref.dtype if ref is not None else torch.float32
    device = ref.device if ref is not None else "cpu"  # "meta" counts without computing
    x = torch.ones(1, n_antennas, model.hist_len, model.dim_data, dtype=dtype, device=device)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())
