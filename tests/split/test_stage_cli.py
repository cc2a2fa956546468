"""The `edvit` pipeline stage on the real video, and the `edgestream split` CLI."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from edgestream.cli.main import cli
from edgestream.core import STAGES, BuildContext, ValidationError, run_stage
from edgestream.core.chunk import Chunk
from edgestream.core.io import SOURCES
from edgestream.split.plan import load_plan
from edgestream.testing import random_splits


@pytest.fixture(scope="module")
def video_chunk(shared_data):
    pytest.importorskip("av")
    src = SOURCES.create("video", path=str(shared_data / "video" / "vtest.avi"), size=[28, 28], grey=True,
                         realtime=False, max_frames=40)
    src.start()
    chunks = []
    while not src.finished:
        chunks += src.read(0.5)
    src.stop()
    return Chunk(np.concatenate([c.data for c in chunks]), np.concatenate([c.timestamps for c in chunks]), chunks[0].info)


def _built(plan, info):
    stage = STAGES.create("edvit", plan=str(plan.root / "plan.yaml"), backend="inprocess")
    stage.build(info, BuildContext(pipeline="camera_edvit", node="model"))
    return stage


def test_stage_streams_predictions_and_status_equal_to_one_offline_pass(tiny_plan, video_chunk, rng):
    stage = _built(tiny_plan, video_chunk.info)
    try:
        assert stage.out_info.type == "Predictions" and stage.extra_outputs["status"].type == "EDViTStatus"
        assert stage.out_info.ch_names[:2] == ("p_t-shirt", "p_trouser")
        assert stage.out_info.ch_names[-3:] == ("class", "confidence", "warming")
        assert stage.out_info.desc["model"]["classes"][9] == "ankle-boot"
        offline, _ = run_stage(stage, [video_chunk])
        pieces, start = [], 0
        for size in random_splits(video_chunk.n_times, rng, max_chunk=9):
            pieces.append(Chunk(video_chunk.data[start : start + size], video_chunk.timestamps[start : start + size], video_chunk.info))
            start += size
        streamed, _ = run_stage(stage, pieces)
    finally:
        stage.stop()
    preds_off = [c for c in offline if c.info.type == "Predictions"]
    preds_on = [c for c in streamed if c.info.type == "Predictions"]
    status_on = [c for c in streamed if c.info.type == "EDViTStatus"]
    off = np.concatenate([c.data for c in preds_off])
    on = np.concatenate([c.data for c in preds_on])
    np.testing.assert_allclose(on, off, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate([c.timestamps for c in preds_on]), video_chunk.timestamps)
    probs = on[:, :10]
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(on[:, 10], probs.argmax(1))
    assert len(status_on) == len(preds_on)  # one status sample per chunk of frames
    status = np.concatenate([c.data for c in status_on])
    assert (status[:, 0] == 0).all() and (status[:, 2] == 0).all()  # both devices "ok"
    assert (status[:, -2] == 2).all()  # n_present


def test_stage_refuses_frames_of_the_wrong_size(tiny_plan, shared_data):
    pytest.importorskip("av")
    src = SOURCES.create("video", path=str(shared_data / "video" / "vtest.avi"), size=[32, 32], grey=False, max_frames=1)
    info = src.start()
    src.stop()
    stage = STAGES.create("edvit", plan=str(tiny_plan.root / "plan.yaml"))
    with pytest.raises(ValidationError, match=r"needs frames \(C, H, W\) = \(1, 28, 28\); .* carries \(3, 32, 32\). "
                                              r"Set the camera source's size: \[28, 28\] and grey: true"):
        stage.build(info)


def test_cli_plan_writes_a_loadable_plan_within_budgets(tmp_path, shared_data):
    out = tmp_path / "split"
    result = CliRunner().invoke(cli, [
        "split", "plan", "--data", str(shared_data), "--limit", "600", "--dense-epochs", "1", "--epochs", "1",
        "--device", "box-a=edge-small", "--device", "box-b=edge-small", "--memory-mb", "0.3", "--class-split", "balanced",
        "--score", "magnitude", "--out", str(out), "--threads", "1",
    ])
    assert result.exit_code == 0, result.output
    assert f"plan: {out / 'plan.yaml'}" in result.output
    plan = load_plan(out / "plan.yaml")
    assert [d.name for d in plan.devices] == ["box-a", "box-b"]
    assert all(size <= 0.3 for size in plan.per_device_size_mb().values())
    assert (out / "dense.pt").is_file() and all((out / s.checkpoint).is_file() for s in plan.submodels)


def test_cli_errors_exit_2_with_the_rule():
    runner = CliRunner()
    result = runner.invoke(cli, ["split", "plan", "--device", "nosuch", "--out", "x"])
    assert result.exit_code == 2 and "unknown device profile 'nosuch'" in result.output
    result = runner.invoke(cli, ["split", "serve", "--device", "box-a", "--address", "10.1.2.3:6379", "--dry-run"])
    assert result.exit_code == 0
    assert "start --address=10.1.2.3:6379 '--resources={\"edgestream_device_box_a\": 1}' --block" in result.output
    result = runner.invoke(cli, ["split", "serve", "--device", "box-a"])
    assert result.exit_code == 2 and "--address must be given to join a cluster" in result.output


def test_camera_edvit_pipeline_file_routes_predictions_and_status(tiny_plan, shared_data):
    pytest.importorskip("av")
    from edgestream.pipeline import Engine, build, load_pipeline
    from edgestream.pipeline.config import resolve_pipeline_path

    path = resolve_pipeline_path("camera_edvit")
    # the override the pipeline file documents: a video file instead of the generated pattern
    overrides = ["camera.kind=video", f"camera.path={shared_data / 'video' / 'vtest.avi'}", "camera.realtime=false",
                 "camera.loop=false",
                 "camera.max_frames=24", f"model.plan={tiny_plan.root / 'plan.yaml'}"]
    spec = load_pipeline(path, overrides)
    for sink in spec.sinks:  # keep the wiring, collect in memory instead of LSL outlets
        sink.kind, sink.params = "memory", {}
    graph = build(spec)
    Engine(graph, publish=False).run(duration=60)
    preds = graph.node("predictions").component.result()
    status = graph.node("status").component.result()
    assert preds.info.type == "Predictions" and preds.n_times == 24
    assert status.info.type == "EDViTStatus" and status.n_times >= 1
    assert status.info.ch_names[-2:] == ("n_present", "fused_ms") and (status.data[:, -2] == 2).all()
    assert np.isfinite(preds.data).all() and ((preds.data[:, 10] >= 0) & (preds.data[:, 10] < 10)).all()


def test_reading_a_port_the_stage_does_not_have_is_a_clear_error(tiny_plan):
    from edgestream.pipeline import build, load_pipeline
    from edgestream.pipeline.config import resolve_pipeline_path

    spec = load_pipeline(resolve_pipeline_path("camera_edvit"), [
        f"model.plan={tiny_plan.root / 'plan.yaml'}", "status.input=model.stats"])
    for sink in spec.sinks:
        sink.kind, sink.params = "memory", {}
    graph = build(spec)
    with pytest.raises(ValidationError, match=r"has no output port 'stats'; its extra outputs are \['status'\]"):
        graph.start()


def test_camera_edvit_runs_on_its_default_pattern_outside_the_checkout(tiny_plan, tmp_path, monkeypatch):
    """An installed package has no video files: the bundled pipeline's defaults need nothing but a plan."""
    from edgestream.pipeline import Engine, build, load_pipeline

    monkeypatch.chdir(tmp_path)  # no ../shared, no repository next to the working directory
    spec = load_pipeline("camera_edvit", [f"model.plan={tiny_plan.root / 'plan.yaml'}"])
    assert [s.kind for s in spec.sources] == ["pattern"]
    for sink in spec.sinks:
        sink.kind, sink.params = "memory", {}
    graph = build(spec)
    graph.start()  # opens the source and builds the stages against it
    camera = graph.sources[0].source
    assert camera.info.desc["frame"]["origin"].startswith("pattern digits") and camera.info.sfreq == 10.0
    Engine(graph, publish=False).run(duration=1.5)  # realtime and endless by default: a live camera's pace
    preds = graph.node("predictions").component.result()
    status = graph.node("status").component.result()
    assert preds.info.type == "Predictions" and preds.n_times >= 3
    assert status.info.type == "EDViTStatus" and status.n_times >= 1
    steps = np.diff(preds.timestamps) * 10.0  # frames are stamped k / fps after the first
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)
    assert (np.round(steps) >= 1).all()
    assert np.isfinite(preds.data).all() and ((preds.data[:, 10] >= 0) & (preds.data[:, 10] < 10)).all()


def test_camera_edvit_without_a_plan_names_the_command_that_makes_one(tmp_path, monkeypatch):
    from edgestream.core.errors import ConfigError
    from edgestream.pipeline import build, load_pipeline

    monkeypatch.chdir(tmp_path)
    spec = load_pipeline("camera_edvit")
    for sink in spec.sinks:
        sink.kind, sink.params = "memory", {}
    graph = build(spec)
    with pytest.raises(ConfigError, match=r"stages.model \(edvit\): plan must be an existing file; got "
                                          r"'edvit_plan/plan.yaml'. Create one with `edgestream split plan`"):
        graph.start()  # the graph's build step, before any frame is read
