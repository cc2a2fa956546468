"""The streaming_model stage: streaming equals offline, equals the model itself, gap policies, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgestream.core import STAGES, BuildContext, Chunk, ConfigError, StreamInfo, ValidationError, run_stage
from edgestream.core.device import load_profile
from edgestream.runners.window import softmax
from edgestream.testing import assert_streaming_equals_offline, make_chunk, randomize_norm_stats

SMALL = {"dim": 12, "memory": 16, "theta": 24.0, "n_classes": 3, "max_len": 64}


def eeg_info(n: int = 6, sfreq: float = 250.0) -> StreamInfo:
    return StreamInfo("eeg", "EEG", "sim", sfreq, [f"C{i}" for i in range(n)], units=("uV",) * n)


def signal(n_times: int = 240, n: int = 6, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n_times, n)) * 2).astype(np.float32)


def stage(model: str = "spiking_lmuformer_eeg_s", *, seed: int = 0, context: BuildContext | None = None,
          info: StreamInfo | None = None, **params):
    params.setdefault("backend", "torch")
    st = STAGES.create("streaming_model", model=model, overrides=dict(SMALL) | params.pop("overrides", {}), **params)
    torch.manual_seed(seed)
    st.build(info or eeg_info(), context or BuildContext(pipeline="t", node="model"))
    net = st._run.model  # the torch backend's model: give its BatchNorms real statistics so spikes flow
    randomize_norm_stats(net, seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(0.0, 0.5)
    return st, net


@pytest.mark.parametrize("model", ["spiking_lmuformer_eeg_s", "lmuformer_eeg_s"])
@pytest.mark.parametrize("decimate,average", [(1, "running"), (3, "frame"), (4, "running")])
def test_streaming_equals_offline(model, decimate, average, rng):
    st, _ = stage(model, emit="step", decimate=decimate, average=average)
    chunk = make_chunk(signal(), st.in_info)
    assert_streaming_equals_offline(st, chunk, rng, rtol=1e-5, atol=1e-5, max_chunk=37)


@pytest.mark.parametrize("mode", ["causal", "delayed"])
def test_rows_are_the_models_running_prediction_on_block_averaged_frames(mode):
    st, net = stage(emit="step", decimate=4, overrides={"mode": mode})
    x = signal()
    out, _ = run_stage(st, [make_chunk(x, st.in_info)])
    (out,) = out
    frames = x.reshape(-1, 4, 6).mean(1)  # (60, C): block means
    with torch.no_grad():
        y, _ = net(torch.from_numpy(frames)[None])
    _, running = net.split_outputs(y[0])
    probs = softmax(running.double().numpy())
    assert out.info.ch_names == ("p_0", "p_1", "p_2", "class", "confidence", "warming")
    np.testing.assert_allclose(out.data[:, :3], probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out.data[:, 3], probs.argmax(1))
    np.testing.assert_allclose(out.data[:, 4], probs.max(1), rtol=1e-5)
    stamps = make_chunk(x, st.in_info).timestamps
    np.testing.assert_array_equal(out.timestamps, stamps[3::4])  # the newest sample of each frame
    warm = st.warmup_frames
    assert warm == 24 + net.delay and net.delay == (5 if mode == "delayed" else 0)
    np.testing.assert_array_equal(out.data[:, 5], np.arange(60) < warm)
    assert out.info.sfreq == 250.0 / 4 and out.info.desc["model"]["decimate"] == 4


def test_emit_chunk_gives_the_newest_row_of_each_chunk():
    st, _ = stage(emit="step", decimate=2)
    chunk = make_chunk(signal(), st.in_info)
    steps, _ = run_stage(st, [chunk])
    per_chunk = STAGES.create("streaming_model", **(st.params() | {"emit": "chunk"}))
    per_chunk.build(st.in_info, BuildContext(pipeline="t", node="m2"))
    per_chunk._run = st._run  # same weights
    sizes = [6, 1, 29, 24, 60, 120]  # the 1-sample chunk completes no frame (decimate 2): no output
    parts, start = [], 0
    for n in sizes:
        parts.append(Chunk(chunk.data[start : start + n], chunk.timestamps[start : start + n], chunk.info))
        start += n
    outs, _ = run_stage(per_chunk, parts)
    ends = [6, 36, 60, 120, 240]  # chunks that complete at least one frame
    full = steps[0]
    assert len(outs) == len(ends)
    for o, end in zip(outs, ends):
        row = end // 2 - 1  # the newest complete frame
        assert o.n_times == 1
        np.testing.assert_allclose(o.data[0], full.data[row], rtol=1e-5, atol=1e-6)
        assert o.timestamps[0] == full.timestamps[row]


def test_gap_policies():
    x = signal(300)
    chunk = make_chunk(x, eeg_info())
    before, after = Chunk(chunk.data[:150], chunk.timestamps[:150], chunk.info), chunk.data[150:]
    after = Chunk(after, chunk.timestamps[150:], chunk.info, gap=True)
    results = {}
    for policy in ("reset", "keep", "rewarm"):
        st, _ = stage(emit="step", gap_policy=policy, warmup=10)
        _, state = run_stage(st, [before])
        state = st.on_gap(state)  # what the engine does on a gap-flagged chunk
        (out,), _ = st.step(after, state)
        results[policy] = out
        assert out.gap
    fresh, _ = stage(emit="step", warmup=10)
    (alone,), _ = run_stage(fresh, [Chunk(after.data, after.timestamps, after.info)])
    continued, _ = stage(emit="step", warmup=10)
    (whole,), _ = run_stage(continued, [chunk])
    np.testing.assert_allclose(results["reset"].data, alone.data, rtol=1e-5, atol=1e-6)  # a fresh stream from the gap on
    assert np.abs(results["reset"].data[:, :3] - results["keep"].data[:, :3]).max() > 1e-3
    np.testing.assert_allclose(results["keep"].data, whole.data[150:], rtol=1e-5, atol=1e-6)  # as if nothing was lost
    np.testing.assert_array_equal(results["rewarm"].data[:, :5], results["keep"].data[:, :5])
    for policy in ("reset", "rewarm"):
        np.testing.assert_array_equal(results[policy].data[:, 5], np.arange(150) < 10)
        assert results[policy].warming
    assert not results["keep"].data[:, 5].any()


def test_build_errors_are_clear():
    st = STAGES.create("streaming_model", model="lmuformer_eeg_s", overrides={"in_channels": 8})
    with pytest.raises(ValidationError, match=r"takes 8 channels per frame; stream 'eeg' has 6 \(C0, C1.*kind: pick"):
        st.build(eeg_info(), BuildContext())
    with pytest.raises(ConfigError, match=r"model must be a streaming model .*got 'reference_conv' \(kind 'window'\)"):
        STAGES.create("streaming_model", model="reference_conv").build(eeg_info(), BuildContext())
    with pytest.raises(ConfigError, match="Did you mean 'lmuformer_eeg_s'"):
        STAGES.create("streaming_model", model="lmuformer_eeg").build(eeg_info(), BuildContext())
    with pytest.raises(ConfigError, match="backend 'onnxruntime' cannot run 'lmuformer_eeg_s' in delayed mode"):
        STAGES.create("streaming_model", model="lmuformer_eeg_s", backend="onnxruntime",
                      overrides=SMALL | {"mode": "delayed"}).build(eeg_info(), BuildContext())
    with pytest.raises(ConfigError, match="emit must be one of 'step', 'chunk'; got 'frame'"):
        STAGES.create("streaming_model", model="lmuformer_eeg_s", emit="frame")
    with pytest.raises(ConfigError, match="needs model .* or checkpoint"):
        STAGES.create("streaming_model")


def test_checkpoint_and_class_names(tmp_path):
    from edgestream.train import save_checkpoint

    _, net = stage("lmuformer_eeg_s")
    path = save_checkpoint(tmp_path / "m.pt", net, "lmuformer_eeg_s", SMALL | {"in_channels": 6},
                           data={"classes": ["rest", "left", "right"]})
    st = STAGES.create("streaming_model", checkpoint=str(path), backend="torch", emit="step")
    info = st.build(eeg_info(), BuildContext(pipeline="p", node="model"))
    assert info.type == "Predictions" and info.name == "p-model"
    assert info.ch_names[:3] == ("p_rest", "p_left", "p_right") and info.desc["model"]["classes"] == ["rest", "left", "right"]
    ref, _ = stage("lmuformer_eeg_s", emit="step")
    x = make_chunk(signal(), st.in_info)
    np.testing.assert_array_equal(run_stage(st, [x])[0][0].data, run_stage(ref, [x])[0][0].data)


def test_device_profile_picks_onnx_runtime_and_matches_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESTREAM_CACHE", str(tmp_path))
    built = {}
    for name, ctx in (("onnx", BuildContext(pipeline="t", node="model", device=load_profile("cpu"))),
                      ("torch", BuildContext(pipeline="t", node="model"))):
        torch.manual_seed(0)  # same initial weights in both
        built[name] = STAGES.create("streaming_model", model="lmuformer_eeg_s", overrides=SMALL, emit="step")
        built[name].build(eeg_info(), ctx)
    assert built["onnx"].out_info.desc["model"]["backend"] == "onnxruntime"  # the cpu profile's choice
    assert built["torch"].out_info.desc["model"]["backend"] == "torch"
    x = make_chunk(signal(), eeg_info())
    got = run_stage(built["onnx"], [x])[0][0].data
    np.testing.assert_allclose(got, run_stage(built["torch"], [x])[0][0].data, rtol=1e-4, atol=1e-5)


def test_trained_with_the_lmuformer_recipe_runs_in_the_stage(tmp_path, shared_data):
    """`edgestream train lmuformer` (calibrate) on a real recording → checkpoint → streaming_model stage."""
    from edgestream.train.calibration import calibrate

    out = tmp_path / "lmu.pt"
    result = calibrate("lmuformer", shared_data / "eegmmidb" / "S001", "left,right", out, epochs=1,
                       include="*R04.edf", model_args={"spiking": False, "dim": 16, "memory": 16})
    assert result.model_name == "lmuformer_eeg_s" and out.is_file()
    assert 0.0 <= result.metrics["validation"]["accuracy"] <= 1.0
    st = STAGES.create("streaming_model", checkpoint=str(out), backend="torch", emit="step")
    info = st.build(StreamInfo("eeg", "EEG", "x", 160.0, result.epochs.ch_names), BuildContext(pipeline="p", node="m"))
    assert info.desc["model"]["classes"] == ["left", "right"]
    trial = result.epochs.X[0].T  # (T, C)
    (rows,), _ = run_stage(st, [make_chunk(trial, st.in_info)])
    with torch.no_grad():
        clip = torch.softmax(result.model.classify(torch.from_numpy(trial)[None]), -1)[0].numpy()
    np.testing.assert_allclose(rows.data[-1, :2], clip, rtol=1e-4, atol=1e-5)  # last running row = clip prediction
