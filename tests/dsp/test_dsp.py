"""DSP stages: streaming equals offline, correctness against scipy, clear build errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from edgestream.core import STAGES, ConfigError, StreamInfo, ValidationError, concat, run_stage
from edgestream.testing import assert_streaming_equals_offline, make_chunk


def eeg_info(n=8, sfreq=250.0, **kw):
    return StreamInfo("eeg", "EEG", "sid", sfreq, [f"E{i}" for i in range(n)], units=("uV",) * n, **kw)


@pytest.fixture
def eeg(rng):
    info = eeg_info()
    t = np.arange(2000) / info.sfreq
    data = 20 * np.sin(2 * np.pi * 10 * t)[:, None] + 5 * rng.standard_normal((2000, 8)) + 100.0  # DC offset
    return make_chunk(data, info)


STREAMING_CASES = [
    ("bandpass", {"l_freq": 1.0, "h_freq": 40.0}),
    ("bandpass", {"l_freq": 8.0, "h_freq": 30.0, "order": 2, "ftype": "cheby1"}),
    ("highpass", {"freq": 0.5}),
    ("lowpass", {"freq": 30.0}),
    ("notch", {"freqs": [50.0, 100.0]}),
    ("resample", {"sfreq": 100.0}),
    ("resample", {"sfreq": 500.0}),
    ("resample", {"sfreq": 160.0}),
    ("reref", {}),
    ("pick", {"channels": ["E3", "E1"]}),
    ("window", {"size": 1.0, "hop": 0.1}),
    ("window", {"size": 64, "hop": 100, "unit": "samples"}),
]


@pytest.mark.parametrize("kind,params", STREAMING_CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(STREAMING_CASES)])
def test_streaming_equals_offline(kind, params, eeg, rng):
    stage = STAGES.create(kind, **params)
    stage.build(eeg.info)
    assert_streaming_equals_offline(stage, eeg, rng, rtol=1e-5, atol=1e-4, max_chunk=97)


def test_bandpower_streaming_equals_offline(eeg, rng):
    window = STAGES.create("window", size=1.0, hop=0.2)
    power = STAGES.create("bandpower")
    power.build(window.build(eeg.info))
    windows, _ = run_stage(window, [eeg])
    offline, _ = run_stage(power, windows)
    streamed, _ = run_stage(power, windows[::-1])  # stateless: order-independent per window
    assert len(offline) == len(windows) == 1 + (2000 - 250) // 50
    np.testing.assert_allclose(concat(offline).data, concat(streamed[::-1]).data)


def test_bandpass_matches_scipy_with_steady_state_start(eeg):
    stage = STAGES.create("bandpass", l_freq=1.0, h_freq=40.0, order=4)
    stage.build(eeg.info)
    out, _ = run_stage(stage, [eeg])
    sos = signal.butter(4, [1.0, 40.0], btype="bandpass", fs=250.0, output="sos")
    zi = signal.sosfilt_zi(sos)[:, :, None] * eeg.data[0][None, None, :].astype(np.float64)
    ref, _ = signal.sosfilt(sos, eeg.data.astype(np.float64), axis=0, zi=zi)
    np.testing.assert_allclose(out[0].data, ref, rtol=1e-4, atol=1e-3)
    assert np.array_equal(out[0].timestamps, eeg.timestamps)
    # DC offset of 100 µV removed without a start-up ring larger than the signal itself
    assert np.abs(out[0].data[:50]).max() < 60


def test_notch_removes_line_noise():
    info = eeg_info(1, 1000.0)
    t = np.arange(5000) / 1000.0
    x = np.sin(2 * np.pi * 50 * t) + np.sin(2 * np.pi * 10 * t)
    stage = STAGES.create("notch", freqs=50.0)
    stage.build(info)
    y = run_stage(stage, [make_chunk(x[:, None], info)])[0][0].data[2000:, 0]
    f, p = signal.welch(y, fs=1000.0, nperseg=1000)
    assert p[f == 50][0] < 1e-3 * p[f == 10][0]


def test_resample_preserves_a_sine_and_sets_rate():
    info = eeg_info(1, 1000.0)
    t = np.arange(4000) / 1000.0
    x = np.sin(2 * np.pi * 7 * t)[:, None]
    stage = STAGES.create("resample", sfreq=250.0)
    assert stage.build(info).sfreq == 250.0
    y = run_stage(stage, [make_chunk(x, info)])[0][0]
    assert y.n_times == 1000
    delay = stage.half_width * 4 // 1  # input samples of group delay
    expected = np.sin(2 * np.pi * 7 * (np.arange(1000) * 4 - delay) / 1000.0)
    np.testing.assert_allclose(y.data[100:, 0], expected[100:], atol=5e-3)


def test_bandpower_finds_alpha():
    info = eeg_info(2, 250.0)
    t = np.arange(500) / 250.0
    x = np.stack([np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 20 * t)], axis=1)
    window = STAGES.create("window", size=2.0, hop=2.0)
    power = STAGES.create("bandpower", bands={"alpha": [8, 13], "beta": [13, 30]})
    out_info = power.build(window.build(info))
    assert out_info.ch_names == ("E0_alpha", "E0_beta", "E1_alpha", "E1_beta") and out_info.sfreq == 0.5
    windows, _ = run_stage(window, [make_chunk(x, info)])
    row = run_stage(power, windows)[0][0]
    assert row.data.shape == (1, 4) and row.timestamps[0] == windows[0].timestamps[-1]
    # a unit sine has power 0.5 (mean square)
    np.testing.assert_allclose(row.data[0, [0, 3]], 0.5, rtol=0.05)
    assert row.data[0, 1] < 0.01 and row.data[0, 2] < 0.01


def test_window_count_and_stamps(eeg):
    window = STAGES.create("window", size=1.0, hop=0.5)
    info = window.build(eeg.info)
    assert info.window == 250 and info.desc["window"] == {"size": 250, "hop": 125}
    out, _ = run_stage(window, [eeg])
    assert len(out) == 1 + (2000 - 250) // 125
    assert out[1].timestamps[-1] == eeg.timestamps[250 + 125 - 1]


@pytest.mark.parametrize(
    "kind,params,info,message",
    [
        ("bandpass", {"l_freq": 1.0, "h_freq": 200.0}, eeg_info(), r"h_freq must lie in \(0, 125\) Hz"),
        ("lowpass", {"freq": 30.0}, eeg_info(sfreq=0.0), "needs a regularly sampled stream"),
        ("window", {"size": 0.0041, "hop": 0.1}, eeg_info(), "whole number"),
        ("pick", {"channels": ["E99"]}, eeg_info(), "channel 'E99' must be one of"),
        ("bandpower", {}, eeg_info(), "needs windowed input"),
        ("bandpass", {"l_freq": 1.0, "h_freq": 40.0}, eeg_info(window=250), "works on continuous samples"),
    ],
)
def test_build_errors_are_clear(kind, params, info, message):
    stage = STAGES.create(kind, **params)
    with pytest.raises(ValidationError, match=message):
        stage.build(info)


def test_constructor_errors_are_clear():
    with pytest.raises(ConfigError, match="h_freq must be greater than l_freq"):
        STAGES.create("bandpass", l_freq=40.0, h_freq=1.0)
    with pytest.raises(ConfigError, match="unknown key 'lfreq'"):
        STAGES.create("bandpass", lfreq=1.0, h_freq=4.0)
    with pytest.raises(ConfigError, match="Did you mean 'bandpass'"):
        STAGES.create("bandpas")


def test_gap_reset_reinitialises_state(eeg):
    stage = STAGES.create("bandpass", l_freq=1.0, h_freq=40.0)
    stage.build(eeg.info)
    _, state = run_stage(stage, [eeg])
    assert state is not None and stage.on_gap(state) is None
    keep = STAGES.create("bandpass", l_freq=1.0, h_freq=40.0, gap_policy="keep")
    keep.build(eeg.info)
    assert keep.on_gap(state) is state


def test_params_clone_and_repr():
    stage = STAGES.create("notch", freqs=[50, 100], quality=20)
    assert stage.params() == {"freqs": [50.0, 100.0], "quality": 20.0, "gap_policy": "reset"}
    assert repr(stage.clone()) == repr(stage) == "Notch(freqs=[50.0, 100.0], quality=20.0, gap_policy='reset')"
