"""FFT period extraction (MPTSNet's rule), per-window period weights, and the streaming tracker."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgestream.core import STAGES, Chunk, ConfigError, DataError, StreamInfo, ValidationError, run_stage
from edgestream.dsp.periods import (
    amplitude_spectrum,
    default_periods,
    extract_periods,
    nearest_bins,
    top_periods,
    top_periods_many,
    top_periods_ref,
)
from edgestream.models.layers.periods import dft_basis, period_amplitudes
from edgestream.testing import assert_streaming_equals_offline, make_chunk, split_chunk


def planted(n_samples=8, n_channels=6, length=120, noise=0.0, seed=0):
    """sin(2πt/20) + 0.5·sin(2πt/7) on every channel, plus optional white noise: (N, C, T)."""
    t = np.arange(length)
    x = np.sin(2 * np.pi * t / 20) + 0.5 * np.sin(2 * np.pi * t / 7)
    data = np.broadcast_to(x, (n_samples, n_channels, length)).copy()
    return data + noise * np.random.default_rng(seed).standard_normal(data.shape)


@pytest.mark.parametrize("noise", [0.0, 0.1, 0.5])
def test_planted_periods_come_first(noise):
    found = extract_periods(planted(noise=noise), k=5)
    assert found.periods[:2] == (20, 7)
    assert len(found.periods) == 5 and len(set(found.periods)) == 5
    assert found.bins[0] == 6  # 120 / 20
    assert found.amplitudes[0] == pytest.approx(1.0, abs=0.05)  # (2/T)|Y| recovers the sine's amplitude
    assert list(found.amplitudes) == sorted(found.amplitudes, reverse=True)


def test_average_over_samples_and_channels_before_the_fft():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4, 64))
    x[:, 0] += 3 * np.sin(2 * np.pi * np.arange(64) / 8)  # only channel 0 carries period 8
    found = extract_periods(x, k=4)
    expected = top_periods(amplitude_spectrum(x.mean(axis=(0, 1))), 64, 4)
    assert found == expected and found.periods[0] == 8


def test_amplitude_spectrum_scale_and_bins():
    t = np.arange(100)
    spec = amplitude_spectrum(2.5 * np.cos(2 * np.pi * 5 * t / 100))
    assert spec.shape == (50,)  # bins 0 .. T/2 - 1
    assert spec[5] == pytest.approx(2.5) and np.delete(spec, 5).max() < 1e-9
    assert amplitude_spectrum(np.zeros(29)).shape == (14,)  # odd T: bins 0 .. T//2 - 1


def test_bins_zero_and_one_are_never_chosen():
    length = 40
    spec = np.linspace(1.0, 0.1, length // 2)  # bins 0 and 1 are the strongest
    spec[0], spec[1] = 100.0, 50.0
    found = top_periods(spec, length, k=5)
    assert 0 not in found.bins and 1 not in found.bins
    assert found.bins == (2, 3, 4, 5, 6) and found.periods == (20, 13, 10, 8, 7)


def test_duplicate_periods_are_skipped_until_k():
    length = 120
    spec = np.zeros(length // 2)
    # bins 17 and 18 both give round(120/f) = 7; bin 18 is stronger, so 17 must be skipped
    spec[[18, 17, 6, 24, 30, 40]] = [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    found = top_periods(spec, length, k=5)
    assert found.bins == (18, 6, 24, 30, 40)
    assert found.periods == (7, 20, 5, 4, 3)


@pytest.mark.parametrize("length", [12, 29, 120, 1000])
def test_vectorised_rule_equals_the_literal_walk(length):
    rng = np.random.default_rng(length)
    spectra = rng.random((length // 2, 40))
    spectra[:, :10] = np.round(spectra[:, :10], 1)  # many ties
    k = min(5, len(set(np.round(length / np.arange(2, length // 2)).astype(int))))
    periods, amps, bins = top_periods_many(spectra, length, k)
    for j in range(spectra.shape[1]):
        ref = top_periods_ref(spectra[:, j], length, k)
        assert ref == top_periods(spectra[:, j], length, k)
        assert tuple(periods[:, j]) == ref.periods and tuple(bins[:, j]) == ref.bins
        np.testing.assert_array_equal(amps[:, j], ref.amplitudes)


def test_rounding_is_half_to_even():
    spec = np.zeros(14)
    spec[2] = 1.0  # 29 / 2 = 14.5 -> 14 (numpy rounding)
    assert top_periods(spec, 29, k=1).periods == (14,)


def test_exactly_k_results_or_a_clear_error():
    for k in (1, 3, 8):
        assert len(extract_periods(planted(length=120), k=k).periods) == k
    # T = 12: bins 2..5 -> periods 6, 4, 3, 2 (2.4 -> 2): only 4 distinct
    with pytest.raises(ConfigError, match=r"k must be at most the number of distinct periods a length-12 window offers \(4\); got 5"):
        extract_periods(np.random.default_rng(0).standard_normal((3, 2, 12)), k=5)


def test_extract_rejects_bad_input():
    with pytest.raises(DataError, match="x must contain only finite values"):
        extract_periods(np.full((2, 3, 40), np.nan))
    with pytest.raises(DataError, match=r"x must have at least 6 time samples"):
        extract_periods(np.zeros((2, 3, 5)))
    with pytest.raises(ConfigError, match="k must lie in"):
        extract_periods(planted(), k=0)


def test_default_periods_are_the_flat_spectrum_choice():
    assert default_periods(120, 5) == (60, 40, 30, 24, 20)
    assert default_periods(29, 5) == (14, 10, 7, 6, 5)


def test_period_amplitudes_match_numpy_fft_and_are_detached():
    x = torch.tensor(planted(n_samples=3, length=29, noise=0.3), dtype=torch.float64, requires_grad=True)
    periods = [14, 10, 7, 5, 3]
    got = period_amplitudes(x, periods)
    assert got.shape == (3, 5) and not got.requires_grad
    spec = amplitude_spectrum(x.detach().numpy().mean(axis=1), axis=-1)  # (3, 14)
    bins = nearest_bins(29, periods)
    assert bins == [2, 3, 4, 6, 10]
    np.testing.assert_allclose(got.numpy(), spec[:, bins], rtol=1e-10, atol=1e-12)
    basis = dft_basis(29, periods, dtype=torch.float32)
    np.testing.assert_allclose(period_amplitudes(x.float(), basis=basis).numpy(), spec[:, bins], rtol=1e-4, atol=1e-6)


# --- streaming tracker ---------------------------------------------------------------------


def sensor_info(n=3, sfreq=100.0):
    return StreamInfo("sensor", "EEG", "sid", sfreq, [f"c{i}" for i in range(n)], units=("uV",) * n)


def sensor_chunk(rng, n=3, length=1500, sfreq=100.0):
    t = np.arange(length)
    x = 2.0 * np.sin(2 * np.pi * t / 25)[:, None] + 0.7 * np.sin(2 * np.pi * t / 8)[:, None]
    return make_chunk(x + 0.2 * rng.standard_normal((length, n)), sensor_info(n, sfreq))


@pytest.mark.parametrize(
    "params",
    [
        {"size": 2.0, "hop": 0.25},
        {"size": 1.2, "hop": 0.1, "k": 3, "mode": "per_channel"},
        {"size": 200, "hop": 37, "unit": "samples", "period_unit": "samples"},
        {"size": 0.5, "hop": 1.0},  # hop longer than the window: windows skip samples
    ],
)
def test_tracker_streaming_equals_offline(rng, params):
    stage = STAGES.create("periods", **params)
    chunk = sensor_chunk(rng)
    stage.build(chunk.info)
    assert_streaming_equals_offline(stage, chunk, rng, max_chunk=90)


def test_tracker_finds_planted_periods_every_hop(rng):
    stage = STAGES.create("periods", size=2.0, hop=0.25, k=3)
    chunk = sensor_chunk(rng)
    info = stage.build(chunk.info)
    assert info.type == "Periods" and info.sfreq == pytest.approx(4.0)
    assert info.ch_names == ("period_1", "period_2", "period_3", "amp_1", "amp_2", "amp_3")
    assert info.units == ("s", "s", "s", "uV", "uV", "uV")
    (out,), _ = run_stage(stage, [chunk])
    assert out.n_times == 1 + (1500 - 200) // 25
    np.testing.assert_allclose(out.data[:, :2], np.tile([0.25, 0.08], (out.n_times, 1)), atol=1e-6)  # seconds
    assert np.all(out.data[:, 3] > 1.5) and np.all(out.data[:, 4] > 0.4)  # amplitudes ≈ 2.0 and 0.7 (leakage)
    # stamped with the newest sample of each window: samples 199, 224, 249, ...
    np.testing.assert_array_equal(out.timestamps, chunk.timestamps[199::25])


def test_tracker_per_channel_and_sample_units(rng):
    info = sensor_info(2)
    t = np.arange(400)
    x = np.stack([np.sin(2 * np.pi * t / 20), np.sin(2 * np.pi * t / 10)], axis=1)
    stage = STAGES.create("periods", size=200, hop=200, unit="samples", k=2, mode="per_channel", period_unit="samples")
    out_info = stage.build(info)
    assert out_info.ch_names[:4] == ("c0/period_1", "c0/period_2", "c0/amp_1", "c0/amp_2")
    assert out_info.units[:4] == ("samples", "samples", "uV", "uV")
    (out,), _ = run_stage(stage, [make_chunk(x, info)])
    assert out.n_times == 2
    np.testing.assert_array_equal(out.data[:, 0], [20, 20])  # c0/period_1
    np.testing.assert_array_equal(out.data[:, 4], [10, 10])  # c1/period_1


def test_tracker_on_windowed_input_equals_continuous(rng):
    chunk = sensor_chunk(rng)
    continuous = STAGES.create("periods", size=1.0, hop=0.2, k=4)
    continuous.build(chunk.info)
    window = STAGES.create("window", size=1.0, hop=0.2)
    on_windows = STAGES.create("periods", k=4)
    windowed_info = on_windows.build(window.build(chunk.info))
    assert windowed_info.sfreq == pytest.approx(5.0)
    windows, _ = run_stage(window, [chunk])
    per_window, _ = run_stage(on_windows, windows)
    (whole,), _ = run_stage(continuous, [chunk])
    np.testing.assert_array_equal(np.concatenate([c.data for c in per_window]), whole.data)
    np.testing.assert_array_equal(np.concatenate([c.timestamps for c in per_window]), whole.timestamps)


def test_tracker_gap_resets_the_window(rng):
    chunk = sensor_chunk(rng, length=600)
    stage = STAGES.create("periods", size=2.0, hop=0.5)
    stage.build(chunk.info)
    first, second = split_chunk(chunk, [300, 300])
    state = stage.init_state()
    out1, state = stage.step(first, state)
    state = stage.on_gap(state)  # what the engine does when second.gap is set
    out2, _ = stage.step(Chunk(second.data, second.timestamps, second.info, gap=True), state)
    assert out1[0].n_times == 3  # windows ending at samples 199, 249, 299
    assert out2[0].n_times == 3 and out2[0].timestamps[0] == second.timestamps[199]  # refilled after the gap


def test_tracker_build_errors():
    info = sensor_info()
    with pytest.raises(ValidationError, match="size and hop must be given for continuous stream 'sensor'"):
        STAGES.create("periods", k=3).build(info)
    windowed = info.replace(window=100)
    with pytest.raises(ValidationError, match="size and hop must be unset for windowed input"):
        STAGES.create("periods", size=1.0, hop=0.5).build(windowed)
    with pytest.raises(ValidationError, match=r"k must be at most 4 for a 12-sample window; got 5"):
        STAGES.create("periods", size=12, hop=1, unit="samples", k=5).build(info)
    with pytest.raises(ValidationError, match="the window must hold at least 6 samples; got 4"):
        STAGES.create("periods", size=4, hop=1, unit="samples").build(info)
    with pytest.raises(ConfigError, match="mode must be one of 'average', 'per_channel'; got 'avg'"):
        STAGES.create("periods", size=1.0, hop=0.5, mode="avg")
    with pytest.raises(DataError, match="chunk must hold exactly one window of 100 samples; got 50 samples"):
        stage = STAGES.create("periods")
        stage.build(windowed)
        stage.step(make_chunk(np.zeros((50, 3)), windowed), stage.init_state())
