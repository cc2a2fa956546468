"""LSLOutlet: metadata read back from a real inlet, names and source_ids, counter, stamps, markers."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from edgestream import __version__
from edgestream.core import SINKS, Chunk, StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.errors import StateError, ValidationError
from edgestream.sinks.lsl_outlet import LSLOutlet, default_source_id
from edgestream.sources.lsl import LSLSource

pytestmark = pytest.mark.timeout(60)


def predictions_info(uid: str) -> StreamInfo:
    return StreamInfo(f"{uid}-in", "Predictions", f"{uid}-src", 10.0, ("p_left", "p_right", "class", "confidence"),
                      ch_types=("probability", "probability", "class", "confidence"),
                      units=("a.u.", "a.u.", "a.u.", "a.u."),
                      desc={"model": {"name": "dbconformer_mi", "classes": ["left", "right"]},
                            "lsl": {"uid": "upstream-only"}})


def inlet_for(source_id: str):
    import pylsl

    found = pylsl.resolve_bypred(f"source_id='{source_id}'", 1, 5.0)
    assert found, source_id
    inlet = pylsl.StreamInlet(found[0], recover=False)
    inlet.open_stream(5.0)
    return inlet


def test_metadata_round_trip(uid):
    """Labels, units and types per channel (counter last), the pipeline block with the context's
    mapping, the model block and synchronization come back from a real inlet's header, and
    LSLSource turns them into the same StreamInfo."""
    sink = SINKS.create("lsl_outlet", source_id=uid)
    sink.build(predictions_info(uid), {"pipeline": "mi", "node": "predictions", "input": "model",
                                       "pipeline_desc": {"description": "motor imagery", "device": "cpu"}})
    sink.start()
    xml = ET.fromstring(inlet_for(uid).info(5.0).as_xml())
    assert xml.findtext("name") == "mi-model" and xml.findtext("type") == "Predictions"
    assert xml.findtext("channel_count") == "5" and float(xml.findtext("nominal_srate")) == 10.0
    chans = xml.findall("desc/channels/channel")
    assert [c.findtext("label") for c in chans] == ["p_left", "p_right", "class", "confidence", "counter"]
    assert [c.findtext("type") for c in chans] == ["probability", "probability", "class", "confidence", "counter"]
    assert [c.findtext("unit") for c in chans] == ["a.u."] * 5
    pipe = xml.find("desc/pipeline")
    assert pipe.findtext("name") == "mi" and pipe.findtext("node") == "predictions" and pipe.findtext("input") == "model"
    assert pipe.findtext("edgestream_version") == __version__
    assert pipe.findtext("description") == "motor imagery" and pipe.findtext("device") == "cpu"
    assert pipe.findtext("input_stream/source_id") == f"{uid}-src"
    assert [e.text for e in xml.findall("desc/model/classes/class")] == ["left", "right"]
    assert xml.findtext("desc/model/name") == "dbconformer_mi"
    assert xml.findtext("desc/synchronization/can_drop_samples") == "true"
    assert xml.find("desc/lsl") is None  # the input's own provenance block is not republished
    src = LSLSource(source_id=uid, timeout=5)
    info = src.start()
    assert info.ch_names[-1] == "counter" and info.ch_types[-1] == "counter"
    assert info.desc["model"]["classes"] == ["left", "right"] and info.desc["pipeline"]["node"] == "predictions"
    src.stop()
    sink.stop()


def test_samples_counter_and_stamps(uid):
    """Each sample is published with its chunk timestamp (the newest input it depends on) and a
    counter that increases by one per sample across writes."""
    sink = LSLOutlet(source_id=uid)
    info = predictions_info(uid)
    sink.build(info, None)
    sink.start()
    inlet = inlet_for(uid)
    t0 = local_clock()
    sent = []
    for k in range(5):
        data = np.random.default_rng(k).random((k + 1, 4)).astype(np.float32)
        chunk = Chunk.make(data, t0 - 0.5 + 0.1 * k + 0.01 * np.arange(k + 1), info)
        sink.write(chunk)
        sent.append(chunk)
    sink.write(Chunk.make(np.zeros((0, 4)), [], info))  # empty chunks publish nothing
    time.sleep(0.2)
    data, stamps = inlet.pull_chunk(1.0, 100, None, None, True)
    assert sink.samples_out == 15 and data.shape == (15, 5)
    np.testing.assert_array_equal(data[:, :4], np.concatenate([c.data for c in sent]))
    np.testing.assert_array_equal(data[:, 4], np.arange(15))
    np.testing.assert_array_equal(stamps, np.concatenate([c.timestamps for c in sent]))
    sink.stop()


def test_default_names_and_source_ids(uid):
    """Name defaults to "<pipeline>-<input node>" (the input's name outside a pipeline); the default
    source_id is stable for the same pipeline/node/input and differs between nodes."""
    info = predictions_info(uid)
    a, b, c = LSLOutlet(), LSLOutlet(), LSLOutlet()
    ctx = {"pipeline": "mi", "node": "out", "input": "model"}
    a.build(info, ctx)
    b.build(info, dict(ctx))
    c.build(info, ctx | {"node": "out2"})
    assert a.out_info.name == "mi-model" and a.out_info.type == "Predictions"
    assert a.resolved_source_id == b.resolved_source_id == default_source_id("mi", "out", f"{uid}-src")
    assert c.resolved_source_id != a.resolved_source_id
    d = LSLOutlet(type="Features")
    d.build(info)
    assert d.out_info.name == info.name and d.out_info.type == "Features"


def test_outlet_refuses_windows_and_misuse(uid):
    """Windowed streams (one window per chunk) are refused at build with a fix; write before
    start is a StateError."""
    info = predictions_info(uid)
    with pytest.raises(ValidationError, match=r"publishes continuous samples; stream .* carries windows of 100 "
                                              r"samples per chunk\. Connect it after a stage that reduces"):
        LSLOutlet().build(info.replace(window=100))
    sink = LSLOutlet(source_id=uid)
    sink.build(info)
    with pytest.raises(StateError, match="must be started before write"):
        sink.write(Chunk.make(np.zeros((1, 4)), [0.0], info))
    with pytest.raises(StateError, match="must be built before start"):
        LSLOutlet().start()


def test_marker_outlet(uid):
    """String streams are published as one string channel (no counter), stamps preserved."""
    info = StreamInfo(uid, "Markers", uid, 0.0, ("marker",), ch_types=("marker",), dtype="string")
    sink = LSLOutlet(source_id=uid)
    sink.build(info)
    sink.start()
    src = LSLSource(source_id=uid, timeout=5)
    assert src.start().n_channels == 1
    src.read(0.0)
    t0 = local_clock()
    sink.write(Chunk.make([["left"], ["rest"]], [t0 - 0.2, t0], info))
    # LSL may deliver the two markers in separate transfers: gather until both are here.
    rows, stamps = [], []
    deadline = time.monotonic() + 3
    while len(rows) < 2 and time.monotonic() < deadline:
        for chunk in src.read(0.1):
            rows += chunk.data.tolist()
            stamps += list(chunk.timestamps)
    assert rows == [["left"], ["rest"]]
    assert abs((stamps[1] - stamps[0]) - 0.2) < 1e-9
    src.stop()
    sink.stop()


def test_push_into_a_closed_outlet_names_the_stream(uid):
    """Pushing after close is a StateError naming the stream and the fix, not an AttributeError."""
    from edgestream.core.lslmeta import OutletWriter

    info = predictions_info(uid)
    writer = OutletWriter(info, f"{uid}-closed")
    writer.push(np.zeros((1, 4)), [local_clock()])
    writer.close()
    with pytest.raises(StateError, match=rf"outlet of stream '{uid}-in' was closed.*Create a new OutletWriter"):
        writer.push(np.zeros((1, 4)), [local_clock()])
    assert writer.count == 1
