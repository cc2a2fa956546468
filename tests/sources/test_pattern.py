"""The generated frame source `pattern`: layout, determinism, motion, pacing on a manual clock, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from edgestream.core.errors import ConfigError
from edgestream.core.io import SOURCES, ConnectionState
from edgestream.sources.camera import frames_from_chunk
from edgestream.sources.pattern import PATTERNS


def _all_frames(source) -> tuple[np.ndarray, np.ndarray]:
    """Read a finite, non-realtime source to its end: frames (n, C, H, W), timestamps (n,)."""
    chunks = []
    for _ in range(10_000):
        if source.finished:
            break
        chunks += source.read(0.0)
    return np.concatenate([frames_from_chunk(c) for c in chunks]), np.concatenate([c.timestamps for c in chunks])


def _frames(n: int = 12, **kw) -> np.ndarray:
    src = SOURCES.create("pattern", realtime=False, max_frames=n, **kw)
    src.start()
    frames, _ = _all_frames(src)
    src.stop()
    return frames


class ManualClock:
    """A clock the test moves by hand (seconds), so pacing is checked without sleeping."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_pattern_is_a_registered_source():
    assert "pattern" in SOURCES.names()


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("grey", [True, False])
def test_frames_have_the_frame_layout_size_and_timestamps(pattern, grey):
    src = SOURCES.create("pattern", pattern=pattern, size=[12, 20], grey=grey, fps=8.0, realtime=False, max_frames=10)
    info = src.start()
    frames, stamps = _all_frames(src)
    src.stop()
    c = 1 if grey else 3
    assert info.type == "Video" and info.sfreq == 8.0 and info.n_channels == 12 * 20 * c
    assert info.source_id == f"pattern:{pattern}:0"
    assert info.desc["frame"] == {"height": 12, "width": 20, "channels": c, "layout": "HWC", "range": [0.0, 1.0],
                                  "origin": f"pattern {pattern} (seed 0, cycle 100 frames)"}
    expected_names = tuple(f"y{y}_x{x}_c{k}" for y in range(12) for x in range(20) for k in range(c))
    assert info.ch_names == expected_names
    assert frames.shape == (10, c, 12, 20) and frames.dtype == np.float32
    assert frames.min() >= 0.0 and frames.max() <= 1.0 and frames.max() > 0.5  # something bright on black
    np.testing.assert_allclose(np.diff(stamps), 1 / 8.0, atol=1e-9)  # presentation times at fps on the LSL clock
    assert src.samples_in == 10 and src.state is ConnectionState.ENDED


@pytest.mark.parametrize("pattern", PATTERNS)
def test_same_seed_gives_the_same_frames_another_seed_other_frames(pattern):
    a = _frames(pattern=pattern, seed=3)
    np.testing.assert_array_equal(a, _frames(pattern=pattern, seed=3))
    assert not np.array_equal(a, _frames(pattern=pattern, seed=4))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_pattern_moves_every_frame_and_repeats_after_a_cycle(pattern):
    frames = _frames(n=25, pattern=pattern, cycle=10)  # (25, 1, 28, 28)
    change = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert (change > 1e-3).all(), change  # every frame differs from the one before it
    np.testing.assert_array_equal(frames[10:20], frames[:10])  # loop=True: the motion repeats every `cycle` frames
    if pattern == "bars":  # a grating sliding by at least one period per cycle: every pixel is lit, then dark
        assert (frames[:10, 0].max(axis=0) > 0.9).all() and (frames[:10, 0].min(axis=0) < 0.1).all()
    else:  # one bright shape: its centre of gravity travels over the frame
        ys, xs = np.mgrid[0:28, 0:28]
        centres = np.stack([((f[0] * xs).sum() / f[0].sum(), (f[0] * ys).sum() / f[0].sum()) for f in frames[:10]])
        assert np.ptp(centres, axis=0).max() > 3.0, centres


def test_without_loop_the_stream_ends_after_one_cycle():
    src = SOURCES.create("pattern", cycle=7, loop=False, realtime=False)
    src.start()
    frames, _ = _all_frames(src)
    src.stop()
    assert frames.shape[0] == 7 and src.samples_in == 7 and src.finished


def test_realtime_releases_each_frame_when_its_time_comes():
    clock = ManualClock()
    src = SOURCES.create("pattern", fps=4.0, realtime=True, max_frames=5, clock=clock)
    src.start()
    clock.now = 200.0  # frames are timed from the first read, not from start()
    first = src.read(0.0)
    assert [c.n_times for c in first] == [1] and first[0].timestamps[0] == 200.0
    assert src.read(0.0) == []  # the next frame is due at +0.25 s
    clock.now = 200.2
    assert src.read(0.0) == []
    clock.now = 200.25
    second = src.read(0.0)
    assert [c.n_times for c in second] == [1] and second[0].timestamps[0] == 200.25
    clock.now = 201.5  # late reader: everything due comes at once, stamped with its own time
    rest = src.read(0.0)
    np.testing.assert_array_equal(np.concatenate([c.timestamps for c in rest]), [200.5, 200.75, 201.0])
    assert src.samples_in == 5 and src.finished


def test_not_realtime_delivers_frames_as_fast_as_they_are_read():
    clock = ManualClock()
    src = SOURCES.create("pattern", fps=4.0, realtime=False, max_frames=5, clock=clock)
    src.start()
    chunks = src.read(0.0)  # no clock movement needed
    assert sum(c.n_times for c in chunks) == 5 and src.finished


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"pattern": "blobs"}, r"pattern must be one of 'digits', 'bars', 'blob'; got 'blobs'. Did you mean 'blob'"),
    ({"size": [28]}, r"size must be \[height, width\] in pixels, each at least 8; got \[28\]. Pass the model's input size"),
    ({"size": None}, r"size must be \[height, width\] in pixels, each at least 8; got None"),
    ({"size": [4, 28]}, r"size must lie in \[8, inf\]; got 4. Pass the model's input size, e.g. size=\[28, 28\]"),
    ({"size": [28.5, 28]}, r"size must be an integer; got 28.5"),
    ({"fps": 0}, r"fps must lie in \(0, inf\]; got 0. Pass a frame rate in Hz, e.g. fps=10"),
    ({"seed": -1}, r"seed must lie in \[0, inf\]; got -1. Pass a non-negative integer"),
    ({"cycle": 1}, r"cycle must lie in \[2, inf\]; got 1. Pass how many frames the motion takes to repeat"),
    ({"grey": "yes"}, r"grey must be of type bool \(not str\); got 'yes'. Pass grey=true"),
    ({"realtime": 1}, r"realtime must be of type bool \(not int\); got 1"),
    ({"max_frames": 0}, r"max_frames must lie in \[1, inf\]; got 0. Pass a frame count, or null for no limit"),
    ({"path": "clip.avi"}, r"source 'pattern': unknown key 'path'; allowed keys are clock, cycle, fps, grey, loop"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SOURCES.create("pattern", **kwargs)
