"""CSI prediction metrics: NMSE (in dB) and spectral efficiency.

Definitions (stated here once; the benchmark and the live scorer use these functions):

* **NMSE** — for every (sample, antenna row, horizon step) the ratio
  ``‖h − ĥ‖² / ‖h‖²`` with the norm over the subcarriers (complex), then the *mean of the
  ratios* over everything else; reported in dB as ``10·log10(mean)``.
* **Spectral efficiency (SE)** — the rate a base station gets when it beamforms with the
  *predicted* channel and transmits over the *true* one: per (sample, step, subcarrier) a
  maximum-ratio beamformer ``w = ĥ / ‖ĥ‖`` over the antennas (unit transmit power), received
  SNR ``ρ |hᴴ w|²``, rate ``log2(1 + ρ |hᴴ w|²)``; SE is the mean over samples, steps and
  subcarriers, in bit/s/Hz. ``ρ`` is the transmit SNR (``snr_db``, 10 dB by default). With perfect
  prediction this reaches ``log2(1 + ρ ‖h‖²)`` (:func:`spectral_efficiency_bound`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgestream.core.errors import DataError

EPS = 1e-30  # guards an all-zero true channel (never happens for CDL channels)


def _as_complex(h: Any, interleaved: bool) -> np.ndarray:
    if interleaved:
        from edgestream.csi.layout import deinterleave

        return deinterleave(h)
    arr = np.asarray(h)
    return arr if np.iscomplexobj(arr) else arr.astype(np.complex64)


def _pair(h_true: Any, h_pred: Any, interleaved: bool) -> tuple[np.ndarray, np.ndarray]:
    t, p = _as_complex(h_true, interleaved), _as_complex(h_pred, interleaved)
    if t.shape != p.shape:
        raise DataError(
            f"h_true and h_pred must have the same shape; got {t.shape} and {p.shape}. Compare a prediction "
            "with the reports it predicts (same antennas, steps and subcarriers)."
        )
    return t, p


def nmse_ratios(h_true: Any, h_pred: Any, *, interleaved: bool = False) -> np.ndarray:
    """Per-vector ratios ``‖h − ĥ‖² / ‖h‖²`` over the last (subcarrier) axis; shape ``h.shape[:-1]``.

    ``interleaved=True`` takes real ``[Re0, Im0, ...]`` arrays instead of complex ones.
    """
    t, p = _pair(h_true, h_pred, interleaved)
    t64, p64 = t.astype(np.complex128), p.astype(np.complex128)
    err = np.sum(np.abs(t64 - p64) ** 2, axis=-1)
    ref = np.sum(np.abs(t64) ** 2, axis=-1)
    return err / np.maximum(ref, EPS)


def nmse(h_true: Any, h_pred: Any, *, interleaved: bool = False) -> float:
    """Linear NMSE: the mean of :func:`nmse_ratios` over all leading axes."""
    return float(np.mean(nmse_ratios(h_true, h_pred, interleaved=interleaved)))


def to_db(value: Any) -> Any:
    """``10·log10(value)``; 0 → -inf."""
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(np.asarray(value, dtype=np.float64))
    return float(out) if np.ndim(out) == 0 else out


def nmse_db(h_true: Any, h_pred: Any, *, interleaved: bool = False) -> float:
    """NMSE in dB (see module docstring)."""
    return to_db(nmse(h_true, h_pred, interleaved=interleaved))


def nmse_per_step(h_true: Any, h_pred: Any, *, step_axis: int = -2, interleaved: bool = False) -> np.ndarray:
    """Linear NMSE per horizon step: ratios averaged over every axis but ``step_axis``.

    ``step_axis`` counts in the complex array (``(..., steps, K)`` → -2 by default).
    """
    ratios = nmse_ratios(h_true, h_pred, interleaved=interleaved)  # (..., steps)
    axis = step_axis if step_axis >= 0 else step_axis + 1  # the subcarrier axis is gone
    ratios = np.moveaxis(ratios, axis, -1)
    return ratios.reshape(-1, ratios.shape[-1]).mean(axis=0)


def spectral_efficiency(
    h_true: Any, h_pred: Any, *, snr_db: float = 10.0, antenna_axis: int = -2, interleaved: bool = False
) -> float:
    """Mean SE in bit/s/Hz of maximum-ratio beamforming with ``h_pred`` over ``h_true``.

    Arrays are complex ``(..., n_antennas, n_subcarriers)`` (antennas on ``antenna_axis``),
    e.g. ``(samples, antennas, steps, subcarriers)`` with ``antenna_axis=1``.
    """
    t, p = _pair(h_true, h_pred, interleaved)
    t = np.moveaxis(t.astype(np.complex128), antenna_axis, -1)  # (..., K, A)
    p = np.moveaxis(p.astype(np.complex128), antenna_axis, -1)
    norm = np.sqrt(np.sum(np.abs(p) ** 2, axis=-1, keepdims=True))
    w = p / np.maximum(norm, EPS)  # unit-power beamformer per subcarrier
    gain = np.abs(np.sum(np.conj(t) * w, axis=-1)) ** 2  # |h^H w|^2
    rho = 10.0 ** (snr_db / 10.0)
    return float(np.mean(np.log2(1.0 + rho * gain)))


def spectral_efficiency_bound(h_true: Any, *, snr_db: float = 10.0, antenna_axis: int = -2, interleaved: bool = False) -> float:
    """SE with perfect CSI: ``mean log2(1 + ρ ‖h‖²)`` (the ceiling of :func:`spectral_efficiency`)."""
    t = np.moveaxis(_as_complex(h_true, interleaved).astype(np.complex128), antenna_axis, -1)
    rho = 10.0 ** (snr_db / 10.0)
    return float(np.mean(np.log2(1.0 + rho * np.sum(np.abs(t) ** 2, axis=-1))))
