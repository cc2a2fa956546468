"""Camera sources on real files: the shared video (PyAV) and a directory of generated images (Pillow)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgestream.core.errors import ConfigError, StreamError
from edgestream.core.io import SOURCES, ConnectionState
from edgestream.sources.camera import frames_from_chunk


def _drain(source, timeout: float = 0.5) -> list:
    chunks = []
    deadline = time.monotonic() + 60
    while not source.finished and time.monotonic() < deadline:
        chunks += source.read(timeout)
    return chunks


def test_video_file_gives_every_frame_resized_grey_with_frame_timestamps(shared_data):
    av = pytest.importorskip("av")
    path = shared_data / "video" / "vtest.avi"
    src = SOURCES.create("video", path=str(path), size=[28, 28], grey=True, realtime=False)
    info = src.start()
    chunks = _drain(src)
    src.stop()
    assert info.type == "Video" and info.n_channels == 28 * 28 and info.sfreq == pytest.approx(10.0)
    assert info.desc["frame"] == {"height": 28, "width": 28, "channels": 1, "layout": "HWC", "range": [0.0, 1.0],
                                  "origin": "video vtest.avi"}
    frames = np.concatenate([frames_from_chunk(c) for c in chunks])
    stamps = np.concatenate([c.timestamps for c in chunks])
    assert frames.shape == (795, 1, 28, 28) and src.samples_in == 795
    np.testing.assert_allclose(np.diff(stamps), 0.1, atol=1e-9)  # 10 fps presentation times on the LSL clock
    with av.open(str(path)) as container:  # the first frame, decoded independently
        first = next(container.decode(video=0)).reformat(width=28, height=28, format="gray").to_ndarray()
    np.testing.assert_array_equal(frames[0, 0], first.astype(np.float32) / 255.0)
    assert src.state is ConnectionState.ENDED


def test_realtime_video_releases_frames_at_their_time(shared_data):
    pytest.importorskip("av")
    src = SOURCES.create("video", path=str(shared_data / "video" / "vtest.avi"), size=[8, 8], grey=False,
                         realtime=True, max_frames=4)
    info = src.start()
    t0 = time.monotonic()
    chunks = _drain(src, timeout=1.0)
    elapsed = time.monotonic() - t0
    assert info.n_channels == 8 * 8 * 3 and info.ch_names[:4] == ("y0_x0_c0", "y0_x0_c1", "y0_x0_c2", "y0_x1_c0")
    assert sum(c.n_times for c in chunks) == 4
    assert elapsed >= 0.25  # frames 1..3 are due at +0.1, +0.2, +0.3 s


def test_image_directory_in_name_order_and_looping(tmp_path):
    from PIL import Image

    for i, value in enumerate([10, 128, 250]):
        Image.fromarray(np.full((40, 30), value, np.uint8)).save(tmp_path / f"img{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    src = SOURCES.create("images", path=str(tmp_path), size=[4, 3], grey=True, fps=5.0, realtime=False, loop=True, max_frames=7)
    src.start()
    frames = np.concatenate([frames_from_chunk(c) for c in _drain(src)])
    assert frames.shape == (7, 1, 4, 3)
    np.testing.assert_allclose(frames[:, 0, 0, 0], np.array([10, 128, 250, 10, 128, 250, 10]) / 255.0, atol=1e-6)


def test_missing_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="path must be an existing video file; got 'nope.avi'"):
        SOURCES.create("video", path="nope.avi").start()
    with pytest.raises(ConfigError, match="path must contain images"):
        SOURCES.create("images", path=str(tmp_path)).start()
    with pytest.raises(StreamError, match="device must be an existing webcam; got '/dev/video-none'"):
        SOURCES.create("webcam", device="/dev/video-none").start()
    with pytest.raises(ConfigError, match=r"size must be \[height, width\] in pixels"):
        SOURCES.create("images", path=str(tmp_path), size=[28])
