"""Incremental trace drawing: pixel columns of min/max, drawn a few columns per frame, must give
the same picture as drawing the whole window at once, and land at the right place on the plot."""

from __future__ import annotations

import numpy as np
import pytest

from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.dashboard.acquisition import Feed
from edgestream.dashboard.canvas import CanvasItem, ColumnStore, TraceCanvas
from edgestream.testing import random_splits

pytestmark = pytest.mark.gui
COLORS = ("#8ab4f8", "#c5d3e8")


def _info(n_ch: int, sfreq: float) -> StreamInfo:
    return StreamInfo("eeg", "EEG", "sid", sfreq, [f"C{i}" for i in range(n_ch)], ["eeg"] * n_ch, ["uV"] * n_ch)


def _signal(rng: np.random.Generator, n: int, n_ch: int, sfreq: float) -> tuple[np.ndarray, np.ndarray]:
    stamps = 1000.0 + np.arange(n) / sfreq
    x = 0.3 * rng.standard_normal((n, n_ch)) + np.sin(2 * np.pi * 3.0 * stamps)[:, None]
    x[n // 3: n // 3 + 50, 1] = np.nan  # a burst of missing values
    return x.astype(np.float32), stamps


def _lanes(n_ch: int):
    offsets = np.arange(n_ch - 1, -1, -1, dtype=np.float32)

    def to_lanes(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.nan_to_num(0.4 * lo, nan=0.0) + offsets, np.nan_to_num(0.4 * hi, nan=0.0) + offsets

    return to_lanes


def test_columns_hold_each_pixels_extremes(rng: np.random.Generator) -> None:
    """Column c holds the min and max of the samples stamped in [c, c + 1) / px_per_s; a column
    without samples is empty; bins are absolute, whatever the chunking."""
    x, stamps = _signal(rng, 3000, 3, 250.0)
    store = ColumnStore(px_per_s=40.0, n_columns=1000, n_channels=3)
    store.add(x, stamps)
    cols = np.floor(stamps * 40.0).astype(np.int64)
    got = store.filled_between(cols[0], cols[-1])
    np.testing.assert_array_equal(got, np.unique(cols)[-1000:])
    lo, hi = store.extrema(got)
    for k in (0, 17, len(got) - 1):
        rows = x[cols == got[k]]
        np.testing.assert_array_equal(lo[k], np.nanmin(rows, axis=0))
        np.testing.assert_array_equal(hi[k], np.nanmax(rows, axis=0))
    sparse = ColumnStore(px_per_s=1000.0, n_columns=5000, n_channels=3)  # more columns than samples
    sparse.add(x[:100], stamps[:100])
    assert len(sparse.filled_between(0, 10**9)) == 100 and sparse.newest - sparse.filled_between(0, 10**9)[0] == 396


def test_store_updated_per_frame_equals_one_pass(rng: np.random.Generator) -> None:
    """Samples pushed in random chunks and read at random frames fill the same columns as all at once."""
    info = _info(4, 100.0)
    feed = Feed("k", reader=None, info=info, buffer_seconds=100.0)
    x, stamps = _signal(rng, 3000, 4, 100.0)
    store = ColumnStore(px_per_s=37.0, n_columns=2000, n_channels=3, columns=np.arange(3))
    start = 0
    for size in random_splits(len(x), rng, max_chunk=40):
        feed.push(Chunk(x[start: start + size], stamps[start: start + size], info))
        start += size
        if rng.random() < 0.3:
            store.update(feed.since)
    store.update(feed.since)
    whole = ColumnStore(px_per_s=37.0, n_columns=2000, n_channels=3)
    whole.add(x[:, :3], stamps)
    assert store.newest == whole.newest and store.restarts == 0
    np.testing.assert_array_equal(store.filled, whole.filled)
    np.testing.assert_array_equal(store.lo, whole.lo)
    np.testing.assert_array_equal(store.hi, whole.hi)


def test_store_restarts_when_it_falls_behind_or_time_jumps_back(rng: np.random.Generator) -> None:
    info = _info(3, 100.0)
    feed = Feed("k", reader=None, info=info, buffer_seconds=1.0)  # 100 rows kept
    store = ColumnStore(px_per_s=10.0, n_columns=50, n_channels=3)
    feed.push(Chunk(rng.normal(size=(50, 3)).astype(np.float32), np.arange(50) / 100.0, info))
    store.update(feed.since)
    feed.push(Chunk(rng.normal(size=(300, 3)).astype(np.float32), (50 + np.arange(300)) / 100.0, info))
    store.update(feed.since)  # 250 rows were overwritten unread: start over from what is buffered
    assert store.restarts == 1 and store.filled_between(0, 100).tolist() == list(range(25, 35))
    jitter = np.array([3.495, 3.489, 3.51])  # a stamp a little before the newest column joins it
    store.add(np.ones((3, 3), np.float32) * 9, jitter)
    assert store.restarts == 1 and store.newest == 35 and store.hi[34 % 50].max() == 9
    store.add(np.zeros((1, 3), np.float32), np.array([-100.0]))  # the stream restarted: clock far back
    assert store.restarts == 2 and store.newest == -1000 and store.filled_between(-2000, 0).tolist() == [-1000]


@pytest.mark.parametrize(("sfreq", "max_chunk"), [(1000.0, 300), (1000.0, 4), (100.0, 5), (333.0, 40)])
def test_incremental_drawing_equals_drawing_the_whole_window(qapp, rng: np.random.Generator, sfreq: float,
                                                              max_chunk: int) -> None:
    """Streaming equals offline for the picture: drawing after every chunk (scrolling, wrapping
    round the ring, columns still filling) gives exactly the pixels of one draw at the end."""
    n_ch, width, height, window = 12, 300, 200, 2.0
    x, stamps = _signal(rng, int(8 * sfreq), n_ch, sfreq)
    live_store, live = ColumnStore(width / window, width + 2, n_ch), TraceCanvas(width, height, n_ch - 0.3, -0.8, COLORS)
    frames, start = 0, 0
    for size in random_splits(len(x), rng, max_chunk=max_chunk):
        live_store.add(x[start: start + size], stamps[start: start + size])
        start += size
        live.draw(live_store, _lanes(n_ch))
        frames += 1
    whole_store, whole = ColumnStore(width / window, width + 2, n_ch), TraceCanvas(width, height, n_ch - 0.3, -0.8, COLORS)
    whole_store.add(x, stamps)
    whole.draw(whole_store, _lanes(n_ch))
    assert live.right == whole.right and live.full_draws == 1  # only the first frame drew everything
    picture = whole.unwrapped()
    assert (picture != whole.blank).sum() > 3 * width  # something was drawn
    np.testing.assert_array_equal(live.unwrapped(), picture)
    # each frame redrew only its new columns (and the few before them whose lines changed)
    assert live.columns_drawn <= whole_store.newest - int(stamps[0] * width / window) + 3 * frames + width


def test_canvas_item_puts_each_column_at_its_time(qapp) -> None:
    """On a plot of time-to-now, a spike stamped 1 s ago shows 1 s left of the right edge, and
    nothing is drawn left of the clip line."""
    import pyqtgraph as pg
    from PySide6 import QtGui

    plot = pg.PlotWidget(background="#000000")
    plot.resize(500, 300)
    plot.setXRange(-2.0, 0.0, padding=0.0)
    plot.setYRange(-1.0, 1.0, padding=0.0)
    plot.show()
    qapp.processEvents()
    box = plot.getPlotItem().getViewBox()
    width, height = int(round(box.width())), int(round(box.height()))
    sfreq, now = 1000.0, 5000.0
    stamps = now - 1.5 + np.arange(1500) / sfreq  # the last 1.5 s
    x = np.zeros((1500, 1), np.float32)
    x[500] = 0.9  # stamped now - 1.0 s
    store = ColumnStore(width / 2.0, width + 2, 1)
    store.add(x, stamps)
    canvas = TraceCanvas(width, height, 1.0, -1.0, ("#ffffff",), "#000000")
    canvas.draw(store, lambda lo, hi: (lo, hi))
    item = CanvasItem()
    item.clip_left = -1.2
    plot.addItem(item)
    item.place(canvas, canvas.left / store.px_per_s - now, width / store.px_per_s)
    qapp.processEvents()
    shot = plot.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB32)
    pixels = np.frombuffer(shot.constBits(), np.uint32).reshape(shot.height(), shot.bytesPerLine() // 4)
    lit = (pixels & 0xFFFFFF) == 0xFFFFFF
    top = box.mapViewToDevice(pg.QtCore.QPointF(-2.0, 0.85)).toPoint()
    spike_columns = np.flatnonzero(lit[: top.y()].any(axis=0))  # only the spike reaches this high
    want = box.mapViewToDevice(pg.QtCore.QPointF(-1.0, 0.0)).x()
    assert len(spike_columns) and np.abs(spike_columns - want).max() <= 1.5, (spike_columns, want)
    baseline_row = round(box.mapViewToDevice(pg.QtCore.QPointF(0.0, 0.0)).y())
    drawn = np.flatnonzero(lit[baseline_row - 1: baseline_row + 2].any(axis=0))
    clip = box.mapViewToDevice(pg.QtCore.QPointF(-1.2, 0.0)).x()
    start = box.mapViewToDevice(pg.QtCore.QPointF(-1.5, 0.0)).x()
    assert start < clip and abs(drawn.min() - clip) <= 1.5, (drawn.min(), clip)  # data from -1.5 s, cut at -1.2 s
    assert abs(drawn.max() - box.mapViewToDevice(pg.QtCore.QPointF(0.0, 0.0)).x()) <= 2.0
    plot.close()
