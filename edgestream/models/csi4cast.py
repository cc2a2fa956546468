"""CSI-4CAST (Cheng et al., 2025): CSI prediction from 16 past reports to the next 4.

::

    x (N, 16, 600)                        antenna rows, [Re0, Im0, ...] over 300 subcarriers
    x = x − Denoiser(x)                   conv encoder/decoder on (N, 2, 16, 300)
    x, μ, σ = normalise(x)                per CSI sample (the reference normalises the whole batch)
    x_delay, x_freq = ARL(x)              IFFT over subcarriers; MLP re-weighting over time
    e = ShuffleNet(x_delay) + ShuffleNet(x_freq)
    e = TimeLinear(TokenConv(e) + PE)     (N, 16, d_model)
    e = TransformerEncoder(e)             non-causal over the 16 history tokens
    y = TimeLinear(Linear(e)) · σ + μ     (N, 4, 600)

Registered variants: ``csi4cast_tdd`` / ``csi4cast_fdd`` (the paper's configurations, 21,913,750
and 38,636,286 parameters — their count includes the 4→d_model time-feature embedding the
paper's model carries, which is used only when time marks are passed), and the edge variants
``csi4cast_edge`` / ``csi4cast_edge_xs``, shrunk towards one report period (2.5 ms) for 32
antennas on one CPU core (measured in ``benchmarks/csi_predict.py``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgestream.models.layers.csi4cast import ARL, CSIEmbedding, Denoiser
from edgestream.models.csi_predictor import CSIPredictor, sample_normalise
from edgestream.models.registry import register_model


class CSI4CAST(CSIPredictor):
    """CSI-4CAST predictor; see the module docstring. All arguments are the configuration.

    Parameters
    ----------
    hist_len, pred_len : int
        History reports in, future reports out (16 → 4 in the paper).
    n_subcarriers : int
        Subcarriers per report (300); rows carry ``2 × n_subcarriers`` values.
    d_model : int
        Token width of the transformer.
    denoiser_levels : int
        Conv levels of the denoiser (widths 2, 4, …, 2^levels); ``< 2`` disables it.
    arl_depth, arl_hidden, arl_mode, arl_activation :
        The temporal re-weighting MLP (linear layers, hidden width, ``plain|multiply|add``, output activation).
    arl_subcarrier : bool
        Add a re-weighting MLP over the subcarrier values of each step (FDD configuration).
    arl_subcarrier_depth, arl_subcarrier_hidden, arl_subcarrier_mode, arl_subcarrier_activation :
        That MLP's settings.
    embed_width, embed_groups, embed_blocks : int
        ShuffleNet channels, groups of the 1×1 convs, blocks per stack.
    attention, attention_ratio :
        ``"se"`` or ``"cbam"`` (channel attention) and its reduction ratio.
    time_features : int
        Width of optional per-step time marks (0 = none).
    embed_dropout, layers, heads, ff, dropout :
        Embedding dropout; transformer encoder layers, heads, feed-forward width, dropout.
    grid_stride : int
        1 (the paper) runs the denoiser and ShuffleNet stacks on the full (16 × K) grid; ``s > 1``
        enters them with a (3, s) conv of stride (1, s) and leaves with its transpose, so their
        inner layers see K/s subcarrier groups (the edge variant's main saving).
    skip : bool
        Add a linear map over time (T_hist → T_pred, per value) from the normalised history to the
        output, initialised to "repeat the newest report" (and the output head and the denoiser's
        last batch norm to zero, so the untrained model *is* repeat-last). Not in the paper (its configurations keep ``False``);
        the edge variants use it so that a short CPU training budget starts from the
        no-prediction baseline instead of from zero.
    """

    def __init__(
        self,
        hist_len: int = 16,
        pred_len: int = 4,
        n_subcarriers: int = 300,
        d_model: int = 768,
        denoiser_levels: int = 3,
        arl_depth: int = 4,
        arl_hidden: int = 512,
        arl_mode: str = "plain",
        arl_activation: str = "none",
        arl_subcarrier: bool = False,
        arl_subcarrier_depth: int = 3,
        arl_subcarrier_hidden: int = 2048,
        arl_subcarrier_mode: str = "add",
        arl_subcarrier_activation: str = "relu",
        embed_width: int = 64,
        embed_groups: int = 4,
        embed_blocks: int = 4,
        attention: str = "se",
        attention_ratio: int = 2,
        time_features: int = 4,
        embed_dropout: float = 0.1,
        layers: int = 6,
        heads: int = 8,
        ff: int = 512,
        dropout: float = 0.1,
        grid_stride: int = 1,
        skip: bool = False,
    ) -> None:
        super().__init__(hist_len, pred_len, n_subcarriers)
        if n_subcarriers % grid_stride:
            from edgestream.core.checks import fail

            fail("grid_stride", f"divide n_subcarriers ({n_subcarriers})", grid_stride, "Pick a divisor, e.g. 5 or 10 for 300.")
        self.config: dict[str, Any] = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        d = self.dim_data
        self.denoiser = Denoiser(denoiser_levels, stride=grid_stride) if denoiser_levels >= 2 else None
        self.arl = ARL(
            hist_len,
            d,
            temporal={"depth": arl_depth, "hidden": arl_hidden, "mode": arl_mode, "out_activation": arl_activation},
            subcarrier=(
                {
                    "depth": arl_subcarrier_depth,
                    "hidden": arl_subcarrier_hidden,
                    "mode": arl_subcarrier_mode,
                    "out_activation": arl_subcarrier_activation,
                }
                if arl_subcarrier
                else None
            ),
        )
        self.embedding = CSIEmbedding(
            hist_len, d, d_model, embed_width, embed_groups, embed_blocks, attention, attention_ratio, time_features, embed_dropout,
            grid_stride,
        )
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, d)
        self.time_head = nn.Linear(hist_len, pred_len)
        self.skip = nn.Linear(hist_len, pred_len) if skip else None
        if self.skip is not None:
            with torch.no_grad():  # start exactly as repeat-last: skip = newest report, learned part = 0
                self.skip.weight.zero_()
                self.skip.weight[:, -1] = 1.0
                self.skip.bias.zero_()
                for p in (self.head.weight, self.head.bias, self.time_head.weight, self.time_head.bias):
                    p.zero_()
                if self.denoiser is not None:  # and no noise removed yet: its last batch norm outputs 0
                    last = self.denoiser.layers[-1]
                    norm = last.norm if hasattr(last, "norm") else last[-1]
                    norm.weight.zero_()
                    norm.bias.zero_()

    def predict_rows(self, x: torch.Tensor, group: int, marks: torch.Tensor | None) -> torch.Tensor:
        if self.denoiser is not None:
            x = x - self.denoiser(x)
        x, mean, std = sample_normalise(x, group)
        base = self.skip.weight @ x + self.skip.bias[:, None] if self.skip is not None else 0.0  # (N, T_pred, D)
        x_delay, x_freq = self.arl(x)
        e = self.embedding(x_delay, x_freq, marks)  # (N, T, d_model)
        e = self.encoder(e)
        # Linear(d_model→D) then Linear over time (T_hist→T_pred), contracted over time first
        # (4 instead of 16 rows through the wide head; the same affine map):
        # y[p] = Σ_t A[p,t] (W e[t] + b) + c[p] = W (A e)[p] + (Σ_t A[p,t]) b + c[p].
        a, c = self.time_head.weight, self.time_head.bias  # (T_pred, T_hist), (T_pred,)
        y = torch.nn.functional.linear(a @ e, self.head.weight)  # (N, T_pred, D)
        y = y + a.sum(dim=1)[:, None] * self.head.bias + c[:, None] + base
        return y * std + mean


TDD = dict(
    d_model=768, denoiser_levels=3, arl_depth=4, arl_hidden=512, arl_mode="plain", arl_activation="none",
    arl_subcarrier=False, embed_width=64, embed_groups=4, embed_blocks=4, attention="se", attention_ratio=2,
    time_features=4, layers=6, heads=8, ff=512, dropout=0.1,
)
FDD = dict(
    d_model=768, denoiser_levels=5, arl_depth=4, arl_hidden=512, arl_mode="plain", arl_activation="none",
    arl_subcarrier=True, arl_subcarrier_depth=3, arl_subcarrier_hidden=2048, arl_subcarrier_mode="add",
    arl_subcarrier_activation="relu", embed_width=128, embed_groups=8, embed_blocks=4, attention="cbam",
    attention_ratio=1, time_features=4, layers=4, heads=4, ff=2048, dropout=0.2,
)
# Edge: the same architecture shrunk towards one report period (2.5 ms) for 32 antenna rows on one
# CPU core (measured in benchmarks/csi_predict.py). Its cost is dominated by passes over the
# (rows, history, 600) tensors, so the history is the newest 8 reports (of the 16 the runner keeps).
EDGE = dict(
    hist_len=8, d_model=64, denoiser_levels=2, arl_depth=1, arl_hidden=16, arl_mode="plain", arl_activation="none",
    arl_subcarrier=False, embed_width=4, embed_groups=2, embed_blocks=1, attention="se", attention_ratio=2,
    time_features=0, layers=1, heads=4, ff=128, dropout=0.1, grid_stride=10, skip=True,
)
# Smallest: the one configuration measured inside 2.5 ms (32 antennas, one core): a 4-report history,
# no denoiser, ShuffleNet stacks without blocks on a 30x coarser grid, d_model 32.
EDGE_XS = dict(hist_len=4, denoiser_levels=0, embed_blocks=0, grid_stride=30, d_model=32, ff=64)


@register_model(family="csi4cast", kind="predictor", paper="Cheng et al. 2025", duplex="TDD")
def csi4cast_tdd(**overrides: Any) -> CSI4CAST:
    """CSI-4CAST, the paper's TDD configuration (21,913,750 parameters, ~72 GFLOPs per 32-antenna sample)."""
    return CSI4CAST(**(TDD | overrides))


@register_model(family="csi4cast", kind="predictor", paper="Cheng et al. 2025", duplex="FDD")
def csi4cast_fdd(**overrides: Any) -> CSI4CAST:
    """CSI-4CAST, the paper's FDD configuration (38,636,286 parameters, ~103 GFLOPs per 32-antenna sample)."""
    return CSI4CAST(**(FDD | overrides))


@register_model(family="csi4cast", kind="predictor", duplex="TDD", edge=True)
def csi4cast_edge(**overrides: Any) -> CSI4CAST:
    """CSI-4CAST edge variant: every block kept, small widths, 8-report history, 2-D parts on a 10× coarser grid."""
    return CSI4CAST(**(EDGE | overrides))


@register_model(family="csi4cast", kind="predictor", duplex="TDD", edge=True)
def csi4cast_edge_xs(**overrides: Any) -> CSI4CAST:
    """Smallest CSI-4CAST edge variant: 4-report history, no denoiser, block-free stacks on a 30× coarser grid, d_model 32."""
    return CSI4CAST(**(EDGE | EDGE_XS | overrides))
