"""The csi_predict / csi_score stages: streaming equals offline, scoring, gaps, late and lost reports."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgestream.core.chunk import Chunk
from edgestream.core.errors import ValidationError
from edgestream.core.stage import STAGES, run_stage
from edgestream.core.chunk import concat
from edgestream.csi.channel import CSIConfig
from edgestream.csi.layout import deinterleave
from edgestream.csi.metrics import nmse_db
from edgestream.csi.noise import NoiseConfig
from edgestream.sources.simulate_csi import CSIReportGenerator, _with_counter, csi_layout, csi_stream_info
from edgestream.testing import assert_streaming_equals_offline

CFG = CSIConfig(model="CDL-C", delay_spread=100e-9, speed=10.0, array_rows=1, array_cols=1)  # 2 antennas × 300
A, D = 2, 600


def stream(n=60, counter=True, seed=0, noise=None):
    """A CSI chunk of ``n`` reports (t = 1000 + i / 400) and its StreamInfo."""
    noise = noise or NoiseConfig(snr_db=20.0)
    gen = CSIReportGenerator(CFG, noise, seed=seed)
    data, idx, _ = gen.generate(n)
    info = csi_stream_info(csi_layout(CFG, noise, seed, "zero"), "sim", f"sim-{seed}", counter=counter)
    rows = _with_counter(data, idx) if counter else data
    return Chunk.make(rows, 1000.0 + idx / 400.0, info), data.reshape(n, A, D)


def built(stage_kwargs, info):
    stage = STAGES.create("csi_predict", **stage_kwargs)
    stage.build(info)
    return stage


def split(out, a=A, steps=4):
    """Output rows → predictions (rows, steps, A, D), report index, model scores, repeat-last scores (NaN: not scored)."""
    n = steps * a * D
    scored = out.data[:, n + 1 + 2 * steps :] > 0.5
    scores = np.where(scored, out.data[:, n + 1 : n + 1 + steps], np.nan)
    np_scores = np.where(scored, out.data[:, n + 1 + steps : n + 1 + 2 * steps], np.nan)
    assert np.isfinite(out.data).all()
    return out.data[:, :n].reshape(-1, steps, a, D), out.data[:, n], scores, np_scores


def test_output_stream_description():
    chunk, _ = stream(4)
    stage = built({"model": "csi_repeat_last"}, chunk.info)
    info = stage.out_info
    assert info.type == "CSIPrediction" and info.sfreq == 400.0
    assert info.n_channels == 4 * A * D + 1 + 12
    assert info.ch_names[0] == "p1_a00_k000_re" and info.ch_names[4 * A * D] == "report_index"
    assert info.ch_names[-5] == "np_nmse_db_h4" and info.units[-5] == "dB" and info.ch_names[-1] == "scored_h4"
    assert info.desc["csi"]["steps"] == 4 and info.desc["model"]["name"] == "csi_repeat_last"


def test_streaming_equals_offline_with_a_network(rng):
    torch.manual_seed(0)
    chunk, _ = stream(28)
    stage = built({"model": "csi4cast_edge"}, chunk.info)
    assert_streaming_equals_offline(stage, chunk, rng, rtol=1e-4, atol=1e-4, max_chunk=9, repeats=2)


def test_predictions_and_scores_equal_the_offline_computation():
    torch.manual_seed(0)
    chunk, reports = stream(40)
    stage = built({"model": "csi_gru"}, chunk.info)
    outputs, state = run_stage(stage, [chunk])
    out = concat(outputs)
    preds, index, scores, np_scores = split(out)
    np.testing.assert_array_equal(index, np.arange(40))
    assert [c.warming for c in outputs] == [True, False] and outputs[0].n_times == 15
    net = stage._net
    with torch.no_grad():
        for n in (15, 27, 39):
            window = torch.as_tensor(reports[n - 15 : n + 1].transpose(1, 0, 2))[None]  # (1, A, 16, D)
            expected = net(window)[0].numpy().transpose(1, 0, 2)  # (4, A, D)
            np.testing.assert_allclose(preds[n], expected, rtol=1e-4, atol=1e-5)
    # the score at arrival n for horizon h compares report n with the prediction made at n - h
    for n, h in [(20, 1), (20, 4), (33, 2)]:
        expected = nmse_db(deinterleave(reports[n]), deinterleave(preds[n - h, h - 1]))
        assert scores[n, h - 1] == pytest.approx(expected, abs=1e-3)
        assert np_scores[n, h - 1] == pytest.approx(nmse_db(deinterleave(reports[n]), deinterleave(reports[n - h])), abs=1e-3)
    assert np.isnan(scores[0]).all() and np.isnan(scores[2, 2:]).all() and not np.isnan(scores[2, :2]).any()
    assert state["counts"] | {} == state["counts"] and state["counts"]["predictions"] == 40
    assert state["counts"]["scored"] == 4 * 40 - (1 + 2 + 3 + 4)


def test_warm_up_pads_with_the_oldest_report():
    chunk, reports = stream(3)
    stage = built({"model": "csi_repeat_last"}, chunk.info)
    out = concat(run_stage(stage, [chunk])[0])
    preds, *_ = split(out)
    np.testing.assert_allclose(preds[2, 0], reports[2], atol=1e-6)  # repeat-last of the newest
    assert all(c.warming for c in run_stage(stage, [chunk])[0])


def test_short_gap_is_filled_by_holding_and_counted():
    chunk, reports = stream(40)
    keep = np.setdiff1d(np.arange(40), [30, 31])
    gappy = Chunk(chunk.data[keep], chunk.timestamps[keep], chunk.info)
    stage = built({"model": "csi4cast_edge", "max_fill": 4}, chunk.info)
    torch.manual_seed(0)
    outputs, state = run_stage(stage, [gappy])
    out = concat(outputs)
    preds, index, _, _ = split(out)
    assert state["counts"]["imputed"] == 2 and state["counts"]["resets"] == 0
    held = reports.copy()
    held[30] = held[31] = reports[29]
    with torch.no_grad():
        window = torch.as_tensor(held[25:33].transpose(1, 0, 2))[None]  # the edge variant reads 8 reports
        expected = stage._net(window)[0].numpy().transpose(1, 0, 2)
    row = int(np.flatnonzero(index == 32)[0])
    np.testing.assert_allclose(preds[row], expected, rtol=1e-4, atol=1e-5)
    assert not any(c.warming for c in outputs[1:])


@pytest.mark.parametrize("counter", [True, False])
def test_long_gap_resets_and_rewarms(counter):
    chunk, _ = stream(60, counter=counter)
    keep = np.r_[0:20, 30:60]  # 10 lost reports > max_fill
    gappy = Chunk(chunk.data[keep], chunk.timestamps[keep], chunk.info)
    stage = built({"model": "csi_repeat_last", "max_fill": 4}, chunk.info)
    outputs, state = run_stage(stage, [gappy])
    assert state["counts"]["resets"] == 1
    flags = [(c.warming, c.n_times, c.gap) for c in outputs]
    assert flags == [(True, 15, False), (False, 5, False), (True, 15, True), (False, 15, False)]


def test_zeroed_report_is_held_and_not_scored():
    chunk, reports = stream(30)
    data = chunk.data.copy()
    data[20, :-1] = 0.0  # a lost packet published as zeros
    zeroed = Chunk(data, chunk.timestamps, chunk.info)
    stage = built({"model": "csi_repeat_last"}, chunk.info)
    outputs, state = run_stage(stage, [zeroed])
    preds, index, scores, _ = split(concat(outputs))
    assert state["counts"]["zeroed"] == 1 and np.isnan(scores[20]).all() and index[20] == 20
    np.testing.assert_allclose(preds[20, 0], reports[19], atol=1e-6)  # held, not zeros


def test_late_report_replaces_the_held_value():
    chunk, reports = stream(40)
    order = np.r_[0:31, 32, 31, 33:40]  # report 31 arrives after 32
    late = Chunk(chunk.data[order], chunk.timestamps[order], chunk.info)
    stage = built({"model": "csi4cast_edge"}, chunk.info)
    torch.manual_seed(0)
    outputs, state = run_stage(stage, [late])
    preds, index, _, _ = split(concat(outputs))
    assert state["counts"]["late"] == 1 and len(index) == 39 and 31 not in index.astype(int)
    # the prediction at 33 sees the real report 31 (not the held copy)
    with torch.no_grad():
        expected = stage._net(torch.as_tensor(reports[26:34].transpose(1, 0, 2))[None])[0].numpy().transpose(1, 0, 2)
    np.testing.assert_allclose(preds[int(np.flatnonzero(index == 33)[0])], expected, rtol=1e-4, atol=1e-5)


def test_duplicates_are_ignored_and_counter_wrap_continues():
    chunk, _ = stream(24)
    data = chunk.data.copy()
    data[:, -1] = (2**24 - 10 + np.arange(24)) % 2**24  # the producer's counter wraps mid-stream
    wrapped = Chunk(np.concatenate([data[:5], data[4:5], data[5:]]), np.r_[chunk.timestamps[:5], chunk.timestamps[4:]], chunk.info)
    stage = built({"model": "csi_repeat_last"}, chunk.info)
    outputs, state = run_stage(stage, [wrapped])
    assert state["counts"]["duplicate"] == 1 and state["counts"]["resets"] == 0 and state["counts"]["predictions"] == 24


def test_build_errors_name_the_problem():
    chunk, _ = stream(2)
    with pytest.raises(ValidationError, match="must be a CSI predictor"):
        built({"model": "reference_conv"}, chunk.info)
    with pytest.raises(ValidationError, match=r"predicts 300 subcarriers; stream 'sim' carries 150"):
        built({"model": "csi_repeat_last", "n_antennas": 4, "n_subcarriers": 150}, chunk.info)
    with pytest.raises(ValidationError, match=r"history must be at least the model's input length \(16 reports\); got 8"):
        built({"model": "csi_gru", "history": 8}, chunk.info)
    bare = chunk.info.replace(desc={})
    with pytest.raises(ValidationError, match=r"must describe its CSI layout in desc\['csi'\]"):
        built({"model": "csi_repeat_last"}, bare)
    with pytest.raises(ValidationError, match=r"must carry 2400 CSI channels \(4 antennas"):
        built({"model": "csi_repeat_last", "n_antennas": 4, "n_subcarriers": 300}, chunk.info)


def test_checkpoint_weights_are_used(tmp_path):
    from edgestream.train.checkpoint import save_checkpoint

    from edgestream.models import create_model

    torch.manual_seed(1)
    model = create_model("csi_gru")
    model.set_data_stats([0.01, -0.02], [0.7, 0.8])
    path = save_checkpoint(tmp_path / "gru.pt", model, "csi_gru", {})
    chunk, reports = stream(20)
    stage = built({"model": None, "checkpoint": str(path)}, chunk.info)
    preds, *_ = split(concat(run_stage(stage, [chunk])[0]))
    with torch.no_grad():
        expected = model.eval()(torch.as_tensor(reports[4:20].transpose(1, 0, 2))[None])[0].numpy().transpose(1, 0, 2)
    np.testing.assert_allclose(preds[19], expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValidationError, match="must match its checkpoint"):
        built({"model": "csi4cast_edge", "checkpoint": str(path)}, chunk.info)


def test_score_stage_running_means_and_streaming_equals_offline(rng):
    chunk, _ = stream(80)
    predict = built({"model": "csi_repeat_last"}, chunk.info)
    pred = concat(run_stage(predict, [chunk])[0])
    score = STAGES.create("csi_score", window=10)
    info = score.build(pred.info)
    assert info.type == "CSIMetrics" and info.ch_names[:2] == ("nmse_db_h1", "nmse_db_h2")
    out = concat(run_stage(score, [pred])[0])
    _, index, scores, np_scores = split(pred)
    # rows only where every horizon was scored (from the 5th report on), all finite
    assert out.n_times == 80 - 4 and np.isfinite(out.data).all()
    np.testing.assert_array_equal(out.timestamps, pred.timestamps[4:])
    np.testing.assert_allclose(out.data[:, 0], scores[4:, 0], rtol=1e-6)
    # mean over the last 10 reports of the linear NMSE, in dB (report 70 is output row 66)
    expected = 10 * np.log10(np.mean(10 ** (scores[61:71, 0].astype(np.float64) / 10)))
    assert out.data[66, 4] == pytest.approx(expected, abs=1e-4)
    # horizon 4 in the first window: only the reports scored so far count
    assert out.data[0, 7] == pytest.approx(scores[4, 3], abs=1e-4)
    # repeat-last predicting itself: model and NP agree, gain 0
    np.testing.assert_allclose(out.data[:, 12:], 0.0, atol=1e-4)
    assert_streaming_equals_offline(score, pred, rng, rtol=1e-5, atol=1e-5, max_chunk=13)


def test_score_needs_a_prediction_stream():
    chunk, _ = stream(2)
    with pytest.raises(ValidationError, match="csi_score needs a CSIPrediction stream"):
        STAGES.create("csi_score").build(chunk.info)
