"""The model-stage loader: a checkpoint must fit the pipeline it is put in, checked when the graph is built.

Each check is tested through the stages that use it (``model``, ``streaming_model``,
``csi_predict``, ``edgestream export``), asserting the message names both sides and the fix.
Checkpoints are tiny and written with the real :func:`edgestream.train.save_checkpoint`.
"""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgestream.core import STAGES, BuildContext, Chunk, ConfigError, StreamInfo, ValidationError, concat
from edgestream.dsp.filters import passband
from edgestream.pipeline import build, parse_pipeline
from edgestream.train.checkpoint import save_checkpoint

CHANNELS = ["C3", "Cz", "C4", "Pz"]
BAND_8_30 = [{"kind": "bandpass", "l_freq": 8.0, "h_freq": 30.0}]
LMU_SMALL = {"dim": 12, "memory": 16, "theta": 24.0, "n_classes": 2, "max_len": 64, "in_channels": 4}


def training_data(**changes: Any) -> dict[str, Any]:
    """What ``edgestream train`` records in ``manifest["data"]`` (the fields the loader checks)."""
    return {"classes": ["left", "right"], "sfreq": 250.0, "ch_names": list(CHANNELS), "units": ["uV"] * 4,
            "preprocessing": BAND_8_30} | changes


def window_checkpoint(path: Path, **data: Any) -> str:
    from edgestream.models import create_model

    net = create_model("reference_conv", in_channels=4)
    return str(save_checkpoint(path, net, "reference_conv", {"in_channels": 4}, data=training_data(**data)))


def streaming_checkpoint(path: Path, **data: Any) -> str:
    from edgestream.models import create_model

    net = create_model("lmuformer_eeg_s", **LMU_SMALL)
    return str(save_checkpoint(path, net, "lmuformer_eeg_s", LMU_SMALL, data=training_data(**data)))


def eeg(sfreq: float = 250.0, names: list[str] | None = None, units: str = "uV") -> StreamInfo:
    names = names or list(CHANNELS)
    return StreamInfo("eeg", "EEG", "sim", sfreq, names, units=(units,) * len(names))


def chain(info: StreamInfo, *specs: dict[str, Any]) -> StreamInfo:
    """Build stages one after another on ``info`` (as a pipeline would); return the last output."""
    for spec in specs:
        stage = STAGES.create(spec["kind"], **{k: v for k, v in spec.items() if k != "kind"})
        info = stage.build(info, BuildContext(pipeline="t", node=spec["kind"]))
    return info


def window_stage_on(info: StreamInfo, checkpoint: str, *, band: tuple[float, float] | None = (8.0, 30.0),
                    **params: Any) -> StreamInfo:
    """band-pass (if any) → 0.5-s window → model stage with ``checkpoint``."""
    filters = [{"kind": "bandpass", "l_freq": band[0], "h_freq": band[1]}] if band else []
    return chain(info, *filters, {"kind": "window", "size": 0.5, "hop": 0.1},
                 {"kind": "model", "checkpoint": checkpoint, "backend": "torch"} | params)


# ----------------------------------------------------------------------------------- model vs checkpoint


def test_model_and_checkpoint_that_disagree_are_refused(tmp_path):
    ckpt = window_checkpoint(tmp_path / "ref.pt")
    with pytest.raises(ValidationError) as err:
        window_stage_on(eeg(), ckpt, model="dbconformer")
    assert str(err.value) == (
        f"model stage: model must match its checkpoint; got model='dbconformer' but checkpoint {ckpt!r} holds "
        "'reference_conv'. Set model: reference_conv (or model: null to take the checkpoint's), or point checkpoint at "
        "a checkpoint of 'dbconformer'.")
    # agreeing names are fine, and so is model: null
    assert window_stage_on(eeg(), ckpt, model="reference_conv").desc["model"]["name"] == "reference_conv"
    assert window_stage_on(eeg(), ckpt, model=None).desc["model"]["classes"] == ["left", "right"]


def test_streaming_stage_and_export_use_the_same_loader(tmp_path):
    from edgestream.cli.cmd_export import _load_model

    ckpt = streaming_checkpoint(tmp_path / "lmu.pt")
    stage = STAGES.create("streaming_model", model="spiking_lmuformer_eeg_s", checkpoint=ckpt, backend="torch")
    with pytest.raises(ValidationError, match=re.escape(
            f"streaming_model stage: model must match its checkpoint; got model='spiking_lmuformer_eeg_s' but checkpoint "
            f"{ckpt!r} holds 'lmuformer_eeg_s'. Set model: lmuformer_eeg_s")):
        stage.build(chain(eeg(), *BAND_8_30), BuildContext())
    net, name = _load_model(ckpt, ())
    assert name == "lmuformer_eeg_s" and net.in_channels == 4
    with pytest.raises(ValidationError, match=r"streaming_model stage: model must be a streaming model \(kind 'streaming': "
                                              r".*\); got 'reference_conv' \(kind 'window'\) \(in checkpoint '.*ref.pt'\). "
                                              r"Models of kind 'window' run in a 'model' stage."):
        STAGES.create("streaming_model", checkpoint=window_checkpoint(tmp_path / "ref.pt")).build(eeg(), BuildContext())


# ----------------------------------------------------------------------------------------- stream checks


def test_rate_mismatch_names_both_rates_and_the_fix(tmp_path):
    ckpt = window_checkpoint(tmp_path / "m.pt")
    with pytest.raises(ValidationError) as err:
        window_stage_on(eeg(500.0), ckpt)
    assert str(err.value) == (
        f"model stage: the stream's sampling rate must be the checkpoint's; stream 'eeg' runs at 500 Hz, checkpoint "
        f"{ckpt!r} was trained at 250 Hz. Resample before this stage (and before any window stage): "
        "{kind: resample, sfreq: 250}, or use a checkpoint trained at 500 Hz. If the difference is intended, set "
        "allow_mismatch: [rate] on this stage.")
    # the streaming stage compares its frame rate, and suggests its own decimate
    lmu = streaming_checkpoint(tmp_path / "lmu.pt")
    stage = STAGES.create("streaming_model", checkpoint=lmu, backend="torch")
    with pytest.raises(ValidationError, match=re.escape(
            f"stream 'eeg' runs at 500 Hz, checkpoint {lmu!r} was trained at 250 Hz. Set decimate: 2 (500 Hz / 2 = "
            "250 Hz frames) on this stage, or use a checkpoint trained at 500 Hz.")):
        stage.build(chain(eeg(500.0), *BAND_8_30), BuildContext())
    stage = STAGES.create("streaming_model", checkpoint=lmu, backend="torch", decimate=2)
    assert stage.build(chain(eeg(500.0), *BAND_8_30), BuildContext()).sfreq == 250.0


def test_rate_mismatch_fails_the_pipeline_build_naming_the_node(tmp_path):
    ckpt = window_checkpoint(tmp_path / "m.pt")
    raw = {"pipeline": "t",
           "sources": {"eeg": {"kind": "array", "data": np.zeros((400, 4), np.float32), "sfreq": 500.0,
                               "ch_names": CHANNELS, "units": ["uV"] * 4}},
           "stages": {"bp": {"kind": "bandpass", "l_freq": 8.0, "h_freq": 30.0}, "win": {"kind": "window", "size": 0.5, "hop": 0.1},
                      "model": {"kind": "model", "checkpoint": ckpt}},
           "sinks": {"mem": {"kind": "memory", "input": "model"}}}
    graph = build(parse_pipeline(raw))
    with pytest.raises(ValidationError, match=r"pipeline 't', stages.model \(model\): model stage: the stream's sampling rate "
                                              r"must be the checkpoint's; stream 'array' runs at 500 Hz"):
        graph.start()


def test_channel_order_and_names_mismatch(tmp_path):
    ckpt = window_checkpoint(tmp_path / "m.pt")
    with pytest.raises(ValidationError) as err:
        window_stage_on(eeg(names=["C3", "C4", "Cz", "Pz"]), ckpt)
    assert str(err.value) == (
        f"model stage: the stream's channels must be the checkpoint's, in the same order; stream 'eeg' has 4 (C3, C4, Cz, "
        f"Pz), checkpoint {ckpt!r} was trained on 4 (C3, Cz, C4, Pz): the same channels in another order (position 1: "
        "'C4' on the stream, 'Cz' in the checkpoint). Pick them in the checkpoint's order before this stage: "
        "{kind: pick, channels: [C3, Cz, C4, Pz]}. If the difference is intended, set allow_mismatch: [channels] on "
        "this stage.")
    with pytest.raises(ValidationError, match=re.escape(
            "stream 'eeg' has 4 (Fp1, Fp2, C3, Cz), checkpoint ") + ".*" + re.escape(
            "was trained on 4 (C3, Cz, C4, Pz): missing from the stream: C4, Pz; not in the checkpoint: Fp1, Fp2. Use a "
            "checkpoint trained on this montage")):
        window_stage_on(eeg(names=["Fp1", "Fp2", "C3", "Cz"]), ckpt)
    # extra channels on the stream: a pick stage in the checkpoint's order is the fix, and it works
    wide = eeg(names=["Fz", "C3", "Cz", "C4", "Pz"])
    with pytest.raises(ValidationError, match=r"not in the checkpoint: Fz\. Pick them in the checkpoint's order"):
        window_stage_on(wide, ckpt)
    assert window_stage_on(chain(wide, {"kind": "pick", "channels": CHANNELS}), ckpt).type == "Predictions"


def test_units_mismatch(tmp_path):
    ckpt = window_checkpoint(tmp_path / "m.pt")
    with pytest.raises(ValidationError) as err:
        window_stage_on(eeg(units="V"), ckpt)
    assert str(err.value) == (
        f"model stage: the stream's units must be the checkpoint's; stream 'eeg' carries V where checkpoint {ckpt!r} was "
        "trained on uV (channels C3, Cz, C4, Pz). Convert at the source (to_units: uV on the lsl source), or declare "
        "the unit the producer really sends (units: uV) if its metadata is wrong. If the difference is intended, set "
        "allow_mismatch: [units] on this stage.")
    # a stream that declares no unit (a.u.) cannot be checked, and is not refused
    assert window_stage_on(eeg(units="a.u."), ckpt).type == "Predictions"


def test_band_mismatch_behind_a_wider_band_pass(tmp_path):
    ckpt = window_checkpoint(tmp_path / "m.pt")
    with pytest.raises(ValidationError) as err:
        window_stage_on(eeg(), ckpt, band=(4.0, 30.0))
    assert str(err.value) == (
        f"model stage: the stream's pass band must be the checkpoint's; stream 'eeg' is band-passed 4-30 Hz, checkpoint "
        f"{ckpt!r} was trained on data band-passed 8-30 Hz. Filter as in training before this stage ({{kind: bandpass, "
        "l_freq: 8.0, h_freq: 30.0}) instead of the current filter, or retrain on this band. If the difference is "
        "intended, set allow_mismatch: [band] on this stage.")
    # a high-pass plus a low-pass that leave 8-30 Hz are the same band; a notch does not change it
    cascade = chain(eeg(), {"kind": "highpass", "freq": 8.0}, {"kind": "notch", "freqs": [50.0]},
                    {"kind": "lowpass", "freq": 30.0})
    assert passband(cascade.desc["filters"]) == (8.0, 30.0)
    assert window_stage_on(cascade, ckpt, band=None).type == "Predictions"
    # only a notch: the stream is not band-limited
    with pytest.raises(ValidationError, match=r"stream 'eeg' is not band-limited, checkpoint .* was trained on data "
                                              r"band-passed 8-30 Hz"):
        window_stage_on(chain(eeg(), {"kind": "notch", "freqs": [50.0]}), ckpt, band=None)


def test_filter_stages_record_their_band_in_the_stream_description():
    info = chain(eeg(), {"kind": "bandpass", "l_freq": 4.0, "h_freq": 30.0}, {"kind": "notch", "freqs": [50, 100]})
    assert info.desc["filters"] == [{"kind": "bandpass", "l_freq": 4.0, "h_freq": 30.0},
                                    {"kind": "notch", "freqs": [50.0, 100.0]}]
    # as it comes back over LSL (desc parsed from XML): text values
    assert passband([{"kind": "bandpass", "l_freq": "4.0", "h_freq": "30.0"}]) == (4.0, 30.0)


def test_allow_mismatch_turns_a_check_into_a_warning(tmp_path, caplog):
    ckpt = window_checkpoint(tmp_path / "m.pt")
    with caplog.at_level(logging.WARNING, logger="edgestream.runners.model_loader"):
        out = window_stage_on(eeg(), ckpt, band=(4.0, 30.0), allow_mismatch=["band"])
    assert out.type == "Predictions"
    assert ("model stage: the stream's pass band must be the checkpoint's; stream 'eeg' is band-passed 4-30 Hz" in caplog.text
            and "Running anyway (allow_mismatch: [band])." in caplog.text)
    # only the named check is relaxed
    with pytest.raises(ValidationError, match=r"sampling rate must be the checkpoint's"):
        window_stage_on(eeg(500.0), ckpt, band=(4.0, 30.0), allow_mismatch=["band"])
    with pytest.raises(ConfigError, match=r"allow_mismatch must be one of 'rate', 'channels', 'units', 'band'; got "
                                          r"'bands'. Did you mean 'band'\?"):
        STAGES.create("model", checkpoint=ckpt, allow_mismatch=["bands"])
    for kind in ("streaming_model", "csi_predict"):
        assert STAGES.create(kind, checkpoint=ckpt, model=None, allow_mismatch="units").allow_mismatch == ["units"]


def test_checkpoints_without_the_fields_load_as_before(tmp_path):
    from edgestream.models import create_model

    net = create_model("reference_conv", in_channels=4)
    old = str(save_checkpoint(tmp_path / "old.pt", net, "reference_conv", {"in_channels": 4}, data={"classes": ["a", "b"]}))
    # another rate, other names, volts, another band: nothing recorded, nothing to check
    assert window_stage_on(eeg(500.0, names=["x1", "x2", "x3", "x4"], units="V"), old, band=(1.0, 40.0)).type == "Predictions"
    # a stream no filter stage describes (filtered outside edgestream, or not at all) is not checked for band
    assert window_stage_on(eeg(), window_checkpoint(tmp_path / "new.pt"), band=None).type == "Predictions"


def test_trials_keep_the_recordings_units(tmp_path):
    """``edgestream train`` records ``data.units`` from its trials (tests/train checks the manifest)."""
    from edgestream.train.epochs import EventMap, make_epochs
    from edgestream.train.recordings import Recording

    rng = np.random.default_rng(0)
    rec = Recording(rng.standard_normal((2000, 4)).astype(np.float32), np.arange(2000) / 250.0, 250.0, tuple(CHANNELS),
                    [(1.0 + 2 * i, ("left", "right")[i % 2]) for i in range(6)], tmp_path / "r.xdf", ("uV",) * 4)
    epochs = make_epochs([rec], EventMap.parse("left,right"), 1.0)
    assert epochs.units == ("uV",) * 4


# -------------------------------------------------------------------------------- warm-up in the state


def _graph(raw_stage: dict[str, Any], data: np.ndarray, sfreq: float) -> Any:
    raw = {"pipeline": "t",
           "sources": {"eeg": {"kind": "array", "data": data, "sfreq": sfreq, "ch_names": CHANNELS}},
           "stages": {"model": raw_stage}, "sinks": {"mem": {"kind": "memory", "input": "model"}}}
    graph = build(parse_pipeline(raw))
    graph.start()
    return graph


def test_warm_up_countdown_survives_state_save_and_restore():
    """A state saved mid warm-up and restored into a fresh graph flags exactly what one unbroken run flags."""
    data = np.random.default_rng(0).standard_normal((200, 4)).astype(np.float32)
    spec = {"kind": "streaming_model", "model": "lmuformer_eeg_s", "overrides": LMU_SMALL, "backend": "torch",
            "warmup": 60, "emit": "chunk"}
    whole = _graph(spec, data, 250.0)
    info = whole.node("model").component.in_info
    chunks = [Chunk.make(data[i : i + 20], 1000.0 + np.arange(i, i + 20) / 250.0, info) for i in range(0, 200, 20)]
    for c in chunks:
        whole.node("model").process(c)
    first = _graph(spec, data, 250.0)
    for c in chunks[:2]:  # 40 of the 60 warm-up frames
        first.node("model").process(c)
    saved = copy.deepcopy(first.node("model").state)
    assert saved["warm_left"] == 20
    resumed = _graph(spec, data, 250.0)
    resumed.node("model").state = saved
    for c in chunks[2:]:
        resumed.node("model").process(c)
    expected = list(whole.node("mem").component.chunks)[2:]
    got = list(resumed.node("mem").component.chunks)
    assert [c.warming for c in got] == [c.warming for c in expected] == [True] + [False] * 7
    np.testing.assert_array_equal(concat(got).data, concat(expected).data)


def test_csi_warm_up_is_state_only():
    """csi_predict counts its warm-up in reports since the last reset (state "fresh"), not on the graph node."""
    from edgestream.csi.channel import CSIConfig
    from edgestream.csi.noise import NoiseConfig
    from edgestream.sources.simulate_csi import csi_layout, csi_stream_info

    cfg = CSIConfig(model="CDL-C", delay_spread=100e-9, speed=10.0, array_rows=1, array_cols=1)
    info = csi_stream_info(csi_layout(cfg, NoiseConfig(snr_db=20.0), 0, "zero"), "sim", "sim-0", counter=True)
    stage = STAGES.create("csi_predict", model="csi_repeat_last")
    stage.build(info)
    assert stage.warmup_samples == 0 and stage.init_state()["fresh"] == 0
