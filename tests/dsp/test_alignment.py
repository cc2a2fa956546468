"""Euclidean alignment: online equals batch, identity mean covariance, checkpoint round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgestream.core import STAGES, ConfigError, StreamInfo, ValidationError, concat, run_stage
from edgestream.dsp import alignment
from edgestream.testing import make_chunk, random_splits, split_chunk
from edgestream.train.checkpoint import save_checkpoint


def eeg_info(n=6, sfreq=100.0, window=None):
    return StreamInfo("eeg", "EEG", "sid", sfreq, [f"E{i}" for i in range(n)], units=("uV",) * n, window=window)


def correlated_signal(rng, n_times=3000, n_channels=6):
    mixing = rng.standard_normal((n_channels, n_channels))
    return (rng.standard_normal((n_times, n_channels)) @ mixing.T * 10.0).astype(np.float32)


def windows_of(signal, info, rng, size=1.0, hop=0.25):
    window = STAGES.create("window", size=size, hop=hop)
    out_info = window.build(info)
    chunk = make_chunk(signal, info)
    return run_stage(window, split_chunk(chunk, random_splits(chunk.n_times, rng, 97)))[0], out_info


def test_online_alignment_equals_batch_fit_on_the_windows_seen(rng):
    info = eeg_info()
    windows, win_info = windows_of(correlated_signal(rng), info, rng)
    stage = STAGES.create("euclidean_align", min_windows=3)
    stage.build(win_info)
    outputs, state = run_stage(stage, windows)
    assert len(outputs) == len(windows) > 20
    data = np.stack([w.data for w in windows])  # (N, T, C)
    for k in (0, 1, 5, len(windows) - 1):
        batch = alignment.fit(data[: k + 1])
        np.testing.assert_allclose(outputs[k].data, alignment.transform(data[k], batch), rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(outputs[k].timestamps, windows[k].timestamps)
    full = alignment.fit(data)
    assert state.n == len(windows)
    np.testing.assert_allclose(state.mean, full.mean, rtol=1e-10)
    assert [o.warming for o in outputs[:4]] == [True, True, False, False]


def test_batch_alignment_gives_identity_mean_covariance(rng):
    data = np.stack([correlated_signal(rng, 200) for _ in range(30)])  # (N, T, C)
    aligned = alignment.transform(data, alignment.fit(data))
    mean_cov = np.mean([alignment.covariance(w) for w in aligned], axis=0)
    np.testing.assert_allclose(mean_cov, np.eye(6), atol=1e-4)


def test_rank_deficient_data_stays_finite(rng):
    data = np.stack([correlated_signal(rng, 200) for _ in range(5)])
    data -= data.mean(axis=2, keepdims=True)  # average reference: rank C-1
    aligned = alignment.transform(data, alignment.fit(data))
    assert np.isfinite(aligned).all() and np.abs(aligned).max() < 1e3


def test_streaming_equals_offline_through_window_and_alignment(rng):
    info = eeg_info()
    signal = correlated_signal(rng)
    offline_windows, win_info = windows_of(signal, info, rng)
    stage = STAGES.create("euclidean_align")
    stage.build(win_info)
    offline = concat(run_stage(stage, offline_windows)[0])
    for _ in range(3):
        streamed_windows, _ = windows_of(signal, info, rng)  # different random chunking each time
        streamed = concat(run_stage(stage, streamed_windows)[0])
        np.testing.assert_allclose(streamed.data, offline.data, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(streamed.timestamps, offline.timestamps)


def test_state_saved_with_checkpoint_is_restored_and_keeps_adapting(rng, tmp_path):
    info = eeg_info()
    windows, win_info = windows_of(correlated_signal(rng, 4000), info, rng)
    calib, live = windows[:20], windows[20:]
    calibration = alignment.fit(np.stack([w.data for w in calib]))
    path = save_checkpoint(tmp_path / "m.pt", torch.nn.Linear(1, 1), "reference_conv", {},
                           extra={"alignment": alignment.alignment_to_extra(calibration, info.ch_names)})
    restored = STAGES.create("euclidean_align", checkpoint=str(path))
    out_info = restored.build(win_info)
    assert out_info.desc["alignment"] == {"kind": "euclidean", "calibrated": True, "adapt": True}
    state = restored.init_state()
    assert state.n == 20
    np.testing.assert_array_equal(state.mean, calibration.mean)
    # continuing from the restored state == one online pass over calibration + live windows
    from_checkpoint, _ = run_stage(restored, live, state)
    fresh = STAGES.create("euclidean_align")
    fresh.build(win_info)
    everything, _ = run_stage(fresh, windows)
    np.testing.assert_allclose(concat(from_checkpoint).data, concat(everything[20:]).data, rtol=1e-4, atol=1e-4)
    assert not any(c.warming for c in from_checkpoint)
    # frozen: the calibration is applied unchanged
    frozen = STAGES.create("euclidean_align", checkpoint=str(path), adapt=False)
    frozen.build(win_info)
    out, state = run_stage(frozen, live)
    assert state.n == 20
    np.testing.assert_allclose(out[-1].data, alignment.transform(live[-1].data, calibration), rtol=1e-5, atol=1e-5)


def test_alignment_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="adapt must be True when no checkpoint is given"):
        STAGES.create("euclidean_align", adapt=False)
    stage = STAGES.create("euclidean_align")
    with pytest.raises(ValidationError, match="needs windowed input .* Put a 'window' stage before it"):
        stage.build(eeg_info())
    plain = save_checkpoint(tmp_path / "plain.pt", torch.nn.Linear(1, 1), "reference_conv", {})
    with pytest.raises(ConfigError, match=r"must hold Euclidean-alignment state \(extra\['alignment'\]\)"):
        STAGES.create("euclidean_align", checkpoint=str(plain)).build(eeg_info(window=100))
    other = alignment.make_state(3, np.eye(4))
    path = save_checkpoint(tmp_path / "four.pt", torch.nn.Linear(1, 1), "reference_conv", {},
                           extra={"alignment": alignment.alignment_to_extra(other, ["a", "b", "c", "d"])})
    with pytest.raises(ValidationError, match=r"must match the stream's channels; it was fitted on 4 channels"):
        STAGES.create("euclidean_align", checkpoint=str(path)).build(eeg_info(window=100))
