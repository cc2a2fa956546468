"""Dashboard pieces that need no window: header parsing, display filters, panel parsers."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import ConfigError
from edgestream.core.io import ConnectionState
from edgestream.core.stage import STAGES, run_stage
from edgestream.dashboard.acquisition import Discovered, Feed, matches
from edgestream.core.lslmeta import lsl_stream_info, parse_header
from synthetic_streams import csi_streams, health, predictions
from edgestream.dashboard.lslinfo import class_names
from edgestream.dashboard.views import FilteredView, FilterSettings
from edgestream.testing import random_splits


def _feed(info: StreamInfo, seconds: float = 30.0) -> Feed:
    return Feed("k", reader=None, info=info, buffer_seconds=seconds)  # reader unused by push/snapshots


def _eeg_info(n_ch: int = 4, sfreq: float = 250.0) -> StreamInfo:
    return StreamInfo("eeg", "EEG", "sid", sfreq, [f"C{i}" for i in range(n_ch)] + ["counter"],
                      ["eeg"] * n_ch + ["counter"], ["uV"] * n_ch + ["a.u."])


def round_trip(info: StreamInfo) -> StreamInfo:
    """``info`` with its desc as an LSL reader sees it (written to an LSL header and parsed back)."""
    header = parse_header(lsl_stream_info(info, "sid", counter=True, desc=info.desc).as_xml())
    return info.replace(desc=header.desc)


def test_class_names_survive_an_lsl_round_trip() -> None:
    info, _ = predictions("hdr", classes=("rest", "left", "right"))
    assert class_names(round_trip(info)) == ["rest", "left", "right"]
    one = info.replace(ch_names=["p_only", "class", "confidence", "warming"], desc={"model": {"classes": ["only"]}})
    assert class_names(round_trip(one)) == ["only"]


def test_class_names_fall_back_to_probability_channels() -> None:
    info = StreamInfo("p", "Predictions", "", 10.0, ["p_a", "p_b", "class", "confidence"], desc={"model": {"classes": "x"}})
    assert class_names(info) == ["a", "b"]  # one name for two classes: metadata ignored
    info = info.replace(desc={"model": {"classes": "up, down"}})
    assert class_names(info) == ["up", "down"]


@pytest.mark.parametrize("nperseg", [256, 255])
def test_display_psd_matches_scipy_welch(nperseg: int, rng: np.random.Generator) -> None:
    from scipy import signal

    from edgestream.dashboard.views import welch_psd

    x = rng.normal(size=(1500, 3)).astype(np.float32)
    freqs, psd = welch_psd(x, 250.0, nperseg)
    want_f, want = signal.welch(x, fs=250.0, nperseg=nperseg, axis=0, detrend=False)
    np.testing.assert_allclose(freqs, want_f)
    np.testing.assert_allclose(psd, want, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("settings", [FilterSettings(bandpass=True), FilterSettings(highpass=True, notch=True)])
def test_display_filter_streaming_equals_offline(settings: FilterSettings, rng: np.random.Generator) -> None:
    """Filtering as samples arrive (random chunk sizes, random frame times) equals one offline pass."""
    info = _eeg_info()
    n = 5000
    x = rng.normal(size=(n, 5)).astype(np.float32) * 10 + 3.0
    x[:, -1] = np.arange(n)
    stamps = 100.0 + np.arange(n) / info.sfreq
    feed = _feed(info)
    view = FilteredView(feed, settings, np.arange(4))
    start = 0
    for size in random_splits(n, rng, max_chunk=97):
        feed.push(Chunk(x[start: start + size], stamps[start: start + size], info))
        start += size
        if rng.random() < 0.5:
            view.update()
    view.update()
    got, got_t, _ = view.last_seconds(n / info.sfreq)
    chunk = Chunk(x[:, :4].copy(), stamps, info.replace(ch_names=info.ch_names[:4]))
    for stage in settings.stages(info.sfreq):
        stage.build(chunk.info)
        chunk = run_stage(stage, [chunk])[0][0]
    np.testing.assert_allclose(got, chunk.data, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(got_t, stamps)
    assert view.active and view.resets == 0


def test_display_filter_switched_on_later_refilters_the_history(rng: np.random.Generator) -> None:
    info = _eeg_info()
    x = rng.normal(size=(2000, 5)).astype(np.float32)
    stamps = np.arange(2000) / info.sfreq
    feed = _feed(info)
    feed.push(Chunk(x, stamps, info))
    view = FilteredView(feed, FilterSettings(bandpass=True), np.arange(4))  # toggled on after data arrived
    view.update()
    stage = STAGES.create("bandpass", l_freq=1.0, h_freq=40.0, order=4)
    stage.build(info.replace(ch_names=info.ch_names[:4]))
    want = run_stage(stage, [Chunk(x[:, :4].copy(), stamps, stage.in_info)])[0][0].data
    np.testing.assert_allclose(view.last_seconds(10.0)[0], want, rtol=1e-5, atol=1e-5)


def test_display_filter_restarts_when_it_fell_behind(rng: np.random.Generator) -> None:
    info = _eeg_info(sfreq=100.0)
    feed = _feed(info, seconds=1.0)  # 100-sample ring
    view = FilteredView(feed, FilterSettings(highpass=True), np.arange(4))
    feed.push(Chunk(rng.normal(size=(500, 5)).astype(np.float32), np.arange(500) / 100.0, info))
    view.update()
    assert view.resets == 1 and len(view.ring) == 100


def test_filter_above_nyquist_is_skipped_not_fatal() -> None:
    info = _eeg_info(sfreq=60.0)  # band-pass up to 40 Hz and a 50 Hz notch do not fit
    view = FilteredView(_feed(info), FilterSettings(bandpass=True, notch=True), np.arange(4))
    assert not view.active


def test_feed_snapshots_and_rates() -> None:
    info = _eeg_info(sfreq=100.0)
    feed = _feed(info, seconds=2.0)
    for i in range(5):
        feed.push(Chunk(np.full((50, 5), i, np.float32), 10 + (i * 50 + np.arange(50)) / 100.0, info))
    data, stamps, first = feed.last_seconds(0.5)
    assert len(stamps) == 51 and first == 250 - 51 and stamps[-1] == pytest.approx(12.49)
    new, _, cursor, skipped = feed.since(200)
    assert len(new) == 50 and cursor == 250 and not skipped
    _, _, _, skipped = feed.since(0)  # 250 written, 200 kept: the reader fell behind
    assert skipped


def test_stream_patterns_match_name_source_id_or_type() -> None:
    d = Discovered("sid-1", "lab-eeg", "EEG", 8, 250.0, "sid-1", "host", "uid")
    assert matches(d, ["lab-*"]) and matches(d, ["sid-1"]) and matches(d, ["EEG"])
    assert not matches(d, ["Predictions", "other*"])


def test_csi_layout_and_nmse() -> None:
    from edgestream.dashboard.panels.csi import csi_shape, magnitude, nmse_db

    (report, gen), (pred, _), _ = csi_streams("csi", n_a=3, n_k=5)
    assert csi_shape(report) == (3, 5)
    assert csi_shape(round_trip(report)) == (3, 5)
    assert csi_shape(report.replace(desc={})) == (3, 5)  # from the channel names
    row = gen(np.array([0.0]), 0)[0]
    assert magnitude(row, 3, 5).shape == (3, 5)
    assert nmse_db(row.reshape(3, -1), 1.1 * row.reshape(3, -1)) == pytest.approx(-20.0, abs=1e-3)


def test_pipeline_health_rows() -> None:
    from edgestream.dashboard.panels.health import pipeline_rows

    info, gen = health("pipe")
    info = info.replace(name="mi-health")
    feed = _feed(info)
    feed.push(Chunk(gen(np.array([1.0]), 0), np.array([1.0]), info))
    rows, queues = pipeline_rows(feed)
    assert [r["stream"] for r in rows] == ["source eeg"]
    assert rows[0]["state"] is ConnectionState.CONNECTED and rows[0]["seen by"] == "pipeline mi"
    assert rows[0]["drops"]["counter_gap"] == 3 and queues == {"model": 0.0}


def test_edvit_status_grouped_by_device() -> None:
    from synthetic_streams import edvit
    from edgestream.dashboard.panels.edvit import FUSION, device_fields, format_field

    info, _ = edvit("ed")
    groups = device_fields(round_trip(info))  # device names arrive as repeated <device> elements
    assert list(groups) == ["edge_0", "edge_1", "edge_2", FUSION]
    assert groups["edge_1"] == {"state": 2, "ms": 3} and set(groups[FUSION]) == {"n_present", "fused_ms"}
    assert format_field("state", 2.0, ["ok", "late", "down", "waiting"]) == ("down", "#e8615a")
    assert format_field("ms", float("nan"), []) == ("—", None)
    bare = StreamInfo("s", "EDViTStatus", "", 0.0, ["dev0_state", "dev0_ms", "fused_ms"])
    assert list(device_fields(bare)) == ["dev0", FUSION]


def test_bad_options_give_clear_errors() -> None:
    from edgestream.cli.main import cli
    from edgestream.dashboard.app import DashboardOptions

    with pytest.raises(ConfigError, match=r"--screenshot must name an image file ending in .png.*got 'shot.txt'"):
        DashboardOptions(screenshot="shot.txt")
    with pytest.raises(ConfigError, match=r"--fps must lie in \[1.0, 60.0\]; got 120.0. Rendering is capped"):
        DashboardOptions(fps=120.0)
    with pytest.raises(ConfigError, match=r"--priority must be one of idle, normal; got 'high'"):
        DashboardOptions(priority="high")
    result = CliRunner().invoke(cli, ["dashboard", "--after", "-1", "--screenshot", "x.png"])
    assert result.exit_code == 2 and "--after must lie in [0.0, inf]; got -1.0" in result.output


@pytest.mark.gui
def test_fast_curve_paths_are_identical() -> None:
    """The dashboard turns on pyqtgraph's direct QPainterPath writer; it must build the same path."""
    import pyqtgraph as pg
    from pyqtgraph.functions import arrayToQPath

    from edgestream.dashboard.app import application

    application()
    x, y = np.linspace(0, 1, 500), np.random.default_rng(0).normal(size=500)
    connect = np.ones(500, bool)
    connect[[99, 300]] = False  # lane breaks
    paths = []
    for experimental in (False, True):
        pg.setConfigOptions(enableExperimental=experimental)
        paths.append(arrayToQPath(x, y, connect=connect, finiteCheck=False))
    pg.setConfigOptions(enableExperimental=True)
    a, b = paths
    assert a.elementCount() == b.elementCount() == 500
    for i in range(500):
        ea, eb = a.elementAt(i), b.elementAt(i)
        assert (ea.x, ea.y, ea.type) == (eb.x, eb.y, eb.type)
