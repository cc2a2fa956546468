"""NMSE and spectral efficiency against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgestream.core.errors import DataError
from edgestream.csi import deinterleave, interleave, nmse, nmse_db, nmse_per_step, spectral_efficiency, to_db
from edgestream.csi.metrics import nmse_ratios, spectral_efficiency_bound


def _example():
    # one antenna, two steps, two subcarriers
    h = np.array([[[1 + 0j, 1j], [2, 0]]])  # (A=1, steps=2, K=2)
    p = np.array([[[1 + 0j, 0], [2, 1j]]])
    return h, p


def test_nmse_is_a_mean_of_per_vector_ratios():
    h, p = _example()
    # step 0: |1j|^2 / (1 + 1) = 0.5 ; step 1: |1j|^2 / 4 = 0.25  -> mean 0.375 (the ratio of sums would be 1/3)
    np.testing.assert_allclose(nmse_ratios(h, p), [[0.5, 0.25]])
    assert nmse(h, p) == pytest.approx(0.375)
    assert nmse_db(h, p) == pytest.approx(10 * math.log10(0.375))  # -4.2597 dB
    np.testing.assert_allclose(nmse_per_step(h, p), [0.5, 0.25])
    assert to_db(0.1) == pytest.approx(-10.0)


def test_nmse_accepts_interleaved_real_arrays():
    h, p = _example()
    assert nmse(interleave(h), interleave(p), interleaved=True) == pytest.approx(0.375)
    x = interleave(h)
    np.testing.assert_array_equal(x[0, 0], [1, 0, 0, 1])  # [Re0, Im0, Re1, Im1]
    np.testing.assert_array_equal(deinterleave(x), h.astype(np.complex64))


def test_nmse_perfect_and_zero_prediction():
    rng = np.random.default_rng(0)
    h = rng.standard_normal((3, 4, 8)) + 1j * rng.standard_normal((3, 4, 8))
    assert nmse(h, h) == 0.0
    assert nmse_db(h, np.zeros_like(h)) == pytest.approx(0.0)  # predicting nothing is 0 dB


def test_nmse_shape_mismatch_is_a_clear_error():
    with pytest.raises(DataError, match=r"h_true and h_pred must have the same shape; got \(2, 3\) and \(2, 4\)"):
        nmse(np.ones((2, 3)), np.ones((2, 4)))


def test_spectral_efficiency_by_hand():
    h = np.array([[1 + 0j], [1j]])  # (A=2, K=1)
    # beamforming with [1, 0]: |h^H w|^2 = 1 -> log2(1 + 10 * 1) at 10 dB
    assert spectral_efficiency(h, np.array([[1 + 0j], [0]]), snr_db=10) == pytest.approx(math.log2(11))
    # perfect CSI: w = h/|h|, |h^H w|^2 = |h|^2 = 2 -> log2(21), the bound
    assert spectral_efficiency(h, h, snr_db=10) == pytest.approx(math.log2(21))
    assert spectral_efficiency_bound(h, snr_db=10) == pytest.approx(math.log2(21))
    # a prediction off by a common phase beamforms just as well
    assert spectral_efficiency(h, h * np.exp(0.7j), snr_db=0) == pytest.approx(math.log2(3))
    # orthogonal prediction: no gain
    assert spectral_efficiency(h, np.array([[1 + 0j], [1j]]).conj(), snr_db=10) == pytest.approx(0.0, abs=1e-12)


def test_spectral_efficiency_antenna_axis_and_mean():
    h = np.zeros((2, 2, 1), complex)  # (samples, A, K)
    h[0, :, 0] = [1, 0]
    h[1, :, 0] = [0, 2]
    p = h.copy()
    expected = (math.log2(1 + 1) + math.log2(1 + 4)) / 2  # snr 0 dB
    assert spectral_efficiency(h, p, snr_db=0, antenna_axis=1) == pytest.approx(expected)
