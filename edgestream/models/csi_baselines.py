"""Baselines of CSI prediction, registered beside CSI-4CAST (``kind="predictor"``).

* ``csi_repeat_last`` — "no prediction" (NP): every future report equals the newest history report.
* ``csi_gru`` — a recurrent predictor per antenna row: linear encoder → GRU over the history →
  linear decoder, rolled forward autoregressively for the future steps (each predicted report is
  fed back as the next input), on per-sample normalised inputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgestream.models.csi_predictor import CSIPredictor, sample_normalise
from edgestream.models.registry import register_model


class RepeatLast(CSIPredictor):
    """Predicts the newest report for every future step (no parameters)."""

    def predict_rows(self, x: torch.Tensor, group: int, marks: torch.Tensor | None) -> torch.Tensor:
        return x[:, -1:, :].expand(-1, self.pred_len, -1)


class GRUPredictor(CSIPredictor):
    """Encoder → GRU → decoder per antenna row, autoregressive over the ``pred_len`` future steps.

    Parameters
    ----------
    hist_len, pred_len, n_subcarriers : int
        As every predictor.
    embed : int
        Width of the linear encoder (2K → embed) feeding the GRU.
    hidden : int
        GRU hidden size.
    layers : int
        Stacked GRU layers.
    residual : bool
        Decode the *change* from the previous report (output = input + decoder(h)), which makes
        "repeat the last report" the starting point of training.
    """

    def __init__(
        self, hist_len: int = 16, pred_len: int = 4, n_subcarriers: int = 300, embed: int = 128, hidden: int = 128,
        layers: int = 1, residual: bool = True,
    ) -> None:
        super().__init__(hist_len, pred_len, n_subcarriers)
        self.residual = residual
        self.encoder = nn.Linear(self.dim_data, embed)
        self.gru = nn.GRU(embed, hidden, layers, batch_first=True)
        self.decoder = nn.Linear(hidden, self.dim_data)

    def _decode(self, h: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        y = self.decoder(h)
        return previous + y if self.residual else y

    def predict_rows(self, x: torch.Tensor, group: int, marks: torch.Tensor | None) -> torch.Tensor:
        x, mean, std = sample_normalise(x, group)
        out, state = self.gru(self.encoder(x))  # (N, T, H)
        step = self._decode(out[:, -1:], x[:, -1:])  # (N, 1, D): first future report
        preds = [step]
        for _ in range(self.pred_len - 1):
            out, state = self.gru(self.encoder(step), state)
            step = self._decode(out, step)
            preds.append(step)
        return torch.cat(preds, dim=1) * std + mean


@register_model(family="csi_baseline", kind="predictor")
def csi_repeat_last(**overrides: Any) -> RepeatLast:
    """No prediction (NP): repeat the newest report for all future steps."""
    return RepeatLast(**overrides)


@register_model(family="csi_baseline", kind="predictor")
def csi_gru(**overrides: Any) -> GRUPredictor:
    """GRU baseline: encoder 600→128, one GRU layer of 128, decoder 128→600, autoregressive, residual."""
    return GRUPredictor(**({"embed": 128, "hidden": 128, "layers": 1} | overrides))
