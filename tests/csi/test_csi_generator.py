"""CSI generation: Sionna CDL reports, report noise statistics, cached datasets, in-process source."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from edgestream.core.errors import ConfigError
from edgestream.csi.channel import CDLChannel, CSIConfig
from edgestream.csi.dataset import CSIDatasetSpec, Scenario, build_csi_dataset, generate_scenario
from edgestream.csi.noise import NoiseConfig, ReportNoise

SMALL = CSIConfig(model="CDL-A", delay_spread=30e-9, speed=10.0, array_rows=1, array_cols=1)  # 2 antennas


def test_config_numerology_and_checks():
    cfg = CSIConfig()
    assert cfg.n_antennas == 32 and cfg.report_period == pytest.approx(2.5e-3) and cfg.report_rate == pytest.approx(400.0)
    up, down = cfg.band_frequencies("uplink"), cfg.band_frequencies("downlink")
    assert len(up) == len(down) == 300 and down[0] - up[-1] == pytest.approx(151 * 30e3)  # 150-subcarrier gap
    assert CSIConfig(model="cdl-e").model == "E"
    with pytest.raises(ConfigError, match=r"model \(CDL profile\) must be one of 'A', 'B', 'C', 'D', 'E'; got 'F'"):
        CSIConfig(model="CDL-F")
    with pytest.raises(ConfigError, match="delay_spread must lie in"):
        CSIConfig(delay_spread=100.0)


def test_reports_equal_sionnas_public_cdl_call_and_continue_block_by_block():
    from sionna.phy import config as sionna_config
    from sionna.phy.channel import cir_to_ofdm_channel
    from sionna.phy.channel.tr38901 import CDL, PanelArray

    channel = CDLChannel(SMALL, batch=2, seed=11)
    h = channel.reports(0, 20)  # (2, 20, A, K)
    blocks = np.concatenate([channel.reports(0, 3), channel.reports(3, 9), channel.reports(12, 8)], axis=1)
    np.testing.assert_allclose(blocks, h, atol=1e-5)
    # the same draw through Sionna's public API
    fc = SMALL.carrier_frequency
    bs = PanelArray(num_rows_per_panel=1, num_cols_per_panel=1, polarization="dual", polarization_type="cross",
                    antenna_pattern="38.901", carrier_frequency=fc, device="cpu")
    ut = PanelArray(num_rows_per_panel=1, num_cols_per_panel=1, polarization="single", polarization_type="V",
                    antenna_pattern="omni", carrier_frequency=fc, device="cpu")
    generator = sionna_config.torch_rng("cpu")
    saved = generator.get_state()
    generator.manual_seed(11)
    try:
        cdl = CDL("A", SMALL.delay_spread, fc, ut_array=ut, bs_array=bs, direction="uplink", min_speed=10.0,
                  max_speed=10.0, device="cpu")
        a, tau = cdl(2, 20, SMALL.report_rate)
    finally:
        generator.set_state(saved)
    public = cir_to_ofdm_channel(torch.as_tensor(SMALL.band_frequencies()), a, tau)[:, 0, :, 0, 0]  # (2, A, 20, K)
    np.testing.assert_allclose(h, public.permute(0, 2, 1, 3).numpy(), atol=1e-4)


def test_draws_are_seeded_and_leave_torchs_generator_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = CDLChannel(SMALL, seed=5).reports(0, 4)
    assert torch.equal(torch.rand(1), before)  # the global torch generator did not move
    np.testing.assert_array_equal(CDLChannel(SMALL, seed=5).reports(0, 4), a)
    assert not np.allclose(CDLChannel(SMALL, seed=6).reports(0, 4), a)


def test_doppler_decorrelates_faster_at_higher_speed():
    def lag1_corr(speed):
        h = CDLChannel(dataclasses.replace(SMALL, speed=speed), batch=8, seed=1).reports(0, 40)
        return abs(np.mean(h[:, 1:] * h[:, :-1].conj())) / np.mean(np.abs(h) ** 2)

    assert lag1_corr(1.0) > 0.99 > lag1_corr(30.0)


def _unit_reports(n, shape=(4, 64), seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal((n, *shape)) + 1j * rng.standard_normal((n, *shape))) / np.sqrt(2)).astype(np.complex64)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_awgn_is_at_the_requested_snr(snr_db):
    h = CDLChannel(SMALL, batch=1, seed=3).reports(0, 400)[0]
    power = float(np.mean(np.abs(h) ** 2))
    noisy, dropped = ReportNoise(NoiseConfig(snr_db=snr_db), seed=1, signal_power=power).apply(h)
    measured = 10 * np.log10(power / np.mean(np.abs(noisy - h) ** 2))
    assert measured == pytest.approx(snr_db, abs=0.05) and not dropped.any()


def test_phase_noise_magnitude_and_statistics():
    h = _unit_reports(500)
    sigma = 0.1
    noisy, _ = ReportNoise(NoiseConfig(phase_std=sigma), seed=2).apply(h)
    np.testing.assert_allclose(np.abs(noisy), np.abs(h), rtol=1e-5)  # only the phase moves
    expected = 2 * (1 - np.exp(-sigma**2 / 2))  # E|h e^{jφ} - h|² / E|h|²
    assert np.mean(np.abs(noisy - h) ** 2) / np.mean(np.abs(h) ** 2) == pytest.approx(expected, rel=0.03)


def test_packet_drop_rate_and_zeroed_reports():
    h = _unit_reports(20000, shape=(2, 4))
    noisy, dropped = ReportNoise(NoiseConfig(drop_prob=0.05), seed=4).apply(h)
    assert dropped.mean() == pytest.approx(0.05, abs=4 * np.sqrt(0.05 * 0.95 / 20000))
    assert not np.any(noisy[dropped]) and np.all(np.abs(noisy[~dropped]) > 0)


def test_bursts_cover_the_expected_fraction_of_reports():
    p, length = 0.02, 10
    h = _unit_reports(20000, shape=(2, 8))
    noisy, _ = ReportNoise(NoiseConfig(burst_prob=p, burst_length=length, burst_amplitude=1.0), seed=5).apply(h)
    busy = np.any(noisy != h, axis=(1, 2)).mean()
    assert busy == pytest.approx(length / (length + (1 - p) / p), abs=0.03)  # renewal: L / (L + E[idle])


def test_noise_block_by_block_equals_one_call():
    cfg = NoiseConfig(snr_db=5, phase_std=0.05, burst_prob=0.1, burst_length=4, burst_amplitude=1.0, drop_prob=0.1)
    h = _unit_reports(300)
    whole, dropped = ReportNoise(cfg, seed=9).apply(h)
    source = ReportNoise(cfg, seed=9)
    parts = [source.apply(h[a:b]) for a, b in [(0, 1), (1, 50), (50, 51), (51, 300)]]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), dropped)
    assert source.reports == 300 and source.dropped == int(dropped.sum())


def test_dataset_is_cached_by_spec_and_noises_only_the_history(tmp_path):
    spec = CSIDatasetSpec(scenarios=(Scenario("A", 30e-9, 10.0), Scenario("D", 100e-9, 1.0)), samples_per_scenario=3,
                          channel=SMALL, seed=2)
    data = build_csi_dataset(spec, NoiseConfig(snr_db=10.0), root=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].startswith("CDL-A_30ns_10mps_")
    assert data.history.shape == (6, 2, 16, 300) and data.future.shape == (6, 2, 4, 300)
    # normalised to unit power per sample; noise only on the history, at the requested SNR
    clean_power = np.mean(np.abs(np.concatenate([data.history_clean, data.future], axis=2)) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(clean_power, 1.0, rtol=1e-4)
    snr = 10 * np.log10(np.mean(np.abs(data.history_clean) ** 2) / np.mean(np.abs(data.history - data.history_clean) ** 2))
    assert snr == pytest.approx(10.0, abs=0.2)
    # a second build reads the cache (same numbers, no new files); a new seed is a new key
    again = build_csi_dataset(spec, NoiseConfig(snr_db=10.0), root=tmp_path)
    np.testing.assert_array_equal(again.history, data.history)
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    other = dataclasses.replace(spec, seed=3)
    assert other.scenario_key(spec.scenarios[0]) != spec.scenario_key(spec.scenarios[0])
    x, y = data.arrays()
    assert x.shape == (6, 2, 16, 600) and x.dtype == np.float32 and y.shape == (6, 2, 4, 600)
    assert len(data.for_scenario(spec.scenarios[1])) == 3


def test_fdd_targets_are_the_downlink_band(tmp_path):
    spec = CSIDatasetSpec(scenarios=(Scenario("C", 30e-9, 1.0),), samples_per_scenario=2, channel=SMALL, fdd=True, seed=1)
    fdd = build_csi_dataset(spec, root=tmp_path)
    raw = generate_scenario(spec, spec.scenarios[0], tmp_path)
    np.testing.assert_array_equal(fdd.future, raw["downlink"].transpose(0, 2, 1, 3)[:, :, 16:])
    assert not np.allclose(fdd.future, raw["uplink"].transpose(0, 2, 1, 3)[:, :, 16:])


def test_snr_range_draws_one_snr_per_sample(tmp_path):
    spec = CSIDatasetSpec(scenarios=(Scenario("A", 30e-9, 1.0),), samples_per_scenario=8, channel=SMALL, seed=1)
    data = build_csi_dataset(spec, snr_range=(0, 25), root=tmp_path)
    assert np.all((data.snr_db >= 0) & (data.snr_db <= 25)) and len(set(np.round(data.snr_db, 6))) == 8


def test_in_process_source_counts_reports_and_skips_lost_ones():
    from edgestream.core.io import SOURCES

    src = SOURCES.create("simulate_csi", model="CDL-B", speed=3.0, array_rows=1, array_cols=1, drop_prob=0.2,
                         drop_mode="skip", chunk_size=50, realtime=False, duration=0.5, seed=4)
    info = src.start()
    assert info.type == "CSI" and info.n_channels == 2 * 300 * 2 + 1 and info.ch_types[-1] == "counter"
    assert info.desc["csi"]["n_antennas"] == 2 and info.desc["csi"]["cdl_model"] == "CDL-B"
    chunks = []
    while not src.finished:
        chunks.extend(src.read(0.1))
    counters = np.concatenate([c.data[:, -1] for c in chunks])
    assert counters[-1] <= 199 and len(counters) < 200  # 0.5 s at 400 reports/s, some lost
    assert np.all(np.diff(counters) >= 1) and np.any(np.diff(counters) > 1)
    stamps = np.concatenate([c.timestamps for c in chunks])
    np.testing.assert_allclose(np.diff(stamps), np.diff(counters) / 400.0, atol=1e-9)
