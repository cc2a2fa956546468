"""Camera-like sources: a video file, a directory of images, or a webcam, as timestamped frames.

A generated moving pattern with the same layout and pacing (kind ``pattern``, no camera or file
needed) is in :mod:`edgestream.sources.pattern`.

Frame layout: one frame is one sample. Its ``H·W·C`` channels hold the pixels flattened in
row-major ``(H, W, C)`` order (channel fastest), float32 in ``[0, 1]``; channel names are
``y{row}_x{col}_c{channel}``. ``StreamInfo.desc["frame"]`` records ``height``, ``width``,
``channels``, ``layout: "HWC"`` and ``range: [0, 1]``, so a consumer reshapes with
``chunk.data.reshape(-1, H, W, C)``. Frames are resized (bilinear) and optionally greyscaled
to ``size``/``grey`` at the source, so the stream already matches the model's input.

Timestamps are on the LSL clock: ``t0 + presentation time`` of each frame (the webcam: capture
time). ``realtime=True`` releases frames when their time comes (a player); ``False`` delivers
them as fast as they are read. Decoding uses PyAV (FFmpeg), images use Pillow.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgestream.core.checks import check_number, fail
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.errors import ConfigError, StreamError
from edgestream.core.io import SOURCES, ConnectionState, Source

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def frame_info(name: str, source_id: str, fps: float, height: int, width: int, channels: int, origin: str) -> StreamInfo:
    """StreamInfo of a frame stream (layout documented in the module docstring)."""
    names = tuple(f"y{y}_x{x}_c{c}" for y in range(height) for x in range(width) for c in range(channels))
    return StreamInfo(
        name=name, type="Video", source_id=source_id, sfreq=float(fps), ch_names=names,
        ch_types=("video",) * len(names), units=("a.u.",) * len(names),
        desc={"frame": {"height": height, "width": width, "channels": channels, "layout": "HWC", "range": [0.0, 1.0],
                        "origin": origin}},
    )


def frames_from_chunk(chunk: Chunk) -> np.ndarray:
    """Frames ``(n, C, H, W)`` float32 from a frame-stream chunk (the layout models take)."""
    spec = chunk.info.desc.get("frame")
    if not spec:
        raise StreamError(
            f"stream {chunk.info.name!r} must carry frames (desc/frame with height, width, channels); got desc keys "
            f"{sorted(chunk.info.desc)}. Connect a camera source (kind video/images/webcam/pattern)."
        )
    h, w, c = int(spec["height"]), int(spec["width"]), int(spec["channels"])
    return np.ascontiguousarray(chunk.data.reshape(-1, h, w, c).transpose(0, 3, 1, 2))


class FrameSource(Source):
    """Base of frame sources: conversion, pacing, chunks. Subclasses yield ``(seconds, frame)`` pairs."""

    def __init__(self, size: Sequence[int] | None, grey: bool, fps: float | None, realtime: bool, loop: bool,
                 max_frames: int | None, name: str, source_id: str, clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        if size is not None:
            if len(size) != 2:
                fail("size", "be [height, width] in pixels", size)
            for v in size:
                check_number(v, "size", low=1, integer=True)
        if fps is not None:
            check_number(fps, "fps", low=0, low_inclusive=False)
        if max_frames is not None:
            check_number(max_frames, "max_frames", low=1, integer=True)
        self.size, self.grey, self.fps, self.realtime, self.loop = size, grey, fps, realtime, loop
        self.max_frames, self.name, self.source_id = max_frames, name, source_id
        self._clock = clock or local_clock
        self._iter: Iterator[tuple[float, np.ndarray]] | None = None
        self._next: tuple[float, np.ndarray] | None = None
        self._t0: float | None = None
        self._count = 0

    # --- for subclasses ------------------------------------------------------------------
    def _open(self) -> tuple[float, str]:
        """Open the input; return (native fps, origin description)."""
        raise NotImplementedError

    def _frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """``(presentation seconds from the start, frame (H, W, C) float32 in [0, 1])``, forever if looping."""
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def _convert(self, image: Any) -> np.ndarray:
        """PIL image or PyAV frame → ``(H, W, C)`` float32 in [0, 1] at ``size``/``grey``."""
        if hasattr(image, "reformat"):  # av.VideoFrame: FFmpeg's swscale does resize + colour conversion
            kw = {"format": "gray" if self.grey else "rgb24"}
            if self.size is not None:
                kw |= {"height": int(self.size[0]), "width": int(self.size[1])}
            arr = image.reformat(**kw).to_ndarray()
        else:
            from PIL import Image

            img = image.convert("L" if self.grey else "RGB")
            if self.size is not None:
                img = img.resize((int(self.size[1]), int(self.size[0])), Image.BILINEAR)
            arr = np.asarray(img)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return arr.astype(np.float32) / 255.0

    # --- Source contract -----------------------------------------------------------------
    def start(self) -> StreamInfo:
        native_fps, origin = self._open()
        fps = float(self.fps or native_fps)
        self._iter = self._frames()
        first = next(self._iter, None)
        if first is None:
            raise StreamError(f"{origin} must hold at least one frame; got none.")
        h, w, c = first[1].shape
        self.info = frame_info(self.name, self.source_id, fps, h, w, c, origin)
        self._next = first
        self._t0 = None  # set at the first read: frames are timed from when the pipeline starts pulling
        self._set_state(ConnectionState.CONNECTED, self._clock(), origin)
        return self.info

    def read(self, timeout: float = 0.0) -> list[Chunk]:
        if self.info is None:
            raise StreamError(f"{type(self).__name__}.start() must be called before read().")
        if self._next is None:
            return []
        if self._t0 is None:  # a slow graph build must not turn into a burst of stale frames
            self._t0 = self._clock() - self._next[0]
        if self.realtime:
            wait = self._t0 + self._next[0] - self._clock()
            if wait > timeout:
                time.sleep(max(0.0, timeout))
                return []
            if wait > 0:
                time.sleep(wait)
        now = self._clock()
        frames, stamps = [], []
        while self._next is not None and (not self.realtime or self._t0 + self._next[0] <= now):
            seconds, frame = self._next
            frames.append(frame.reshape(-1))
            stamps.append(self._t0 + seconds)
            self._count += 1
            self._next = None if self.max_frames is not None and self._count >= self.max_frames else next(self._iter, None)
            if not self.realtime and len(frames) >= 8:  # bounded chunks when reading as fast as possible
                break
        if self._next is None:
            self._set_state(ConnectionState.ENDED, self._clock(), f"{self._count} frames")
        if not frames:
            return []
        self.samples_in += len(frames)
        return [Chunk.make(np.stack(frames), stamps, self.info)]

    def stop(self) -> None:
        self._close()
        self._iter = None
        if self.state is not ConnectionState.ENDED:
            self._set_state(ConnectionState.ENDED, self._clock(), "stopped")


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise ConfigError(
            "video decoding must have PyAV installed; got no 'av' module. Install it with `pip install av` "
            "(or `pip install edgestream[camera]`)."
        ) from None
    return av


@SOURCES.register("video")
class VideoSource(FrameSource):
    """Frames of a video file (any format FFmpeg reads), paced at its frame rate when ``realtime``."""

    def __init__(self, path: str, size: Sequence[int] | None = (28, 28), grey: bool = True, fps: float | None = None,
                 realtime: bool = True, loop: bool = False, max_frames: int | None = None, name: str = "edgestream-camera",
                 source_id: str = "", clock: Callable[[], float] | None = None) -> None:
        super().__init__(size, grey, fps, realtime, loop, max_frames, name, source_id or f"video:{Path(path).name}", clock)
        self.path = path
        self._container: Any = None

    def _open(self) -> tuple[float, str]:
        path = Path(os.path.expanduser(self.path))
        if not path.is_file():
            raise ConfigError(f"path must be an existing video file; got {self.path!r}. Pass the video's path, e.g. path=clip.avi.")
        av = _import_av()
        try:
            self._container = av.open(str(path))
            stream = self._container.streams.video[0]
        except (av.FFmpegError, IndexError) as exc:
            raise StreamError(f"video {self.path!r} must be a readable video with a video track; opening failed: {exc}") from None
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        return rate, f"video {path.name}"

    def _frames(self) -> Iterator[tuple[float, np.ndarray]]:
        offset, period = 0.0, 1.0 / float(self.fps) if self.fps else None
        while True:
            last, index = 0.0, 0
            for frame in self._container.decode(video=0):
                t = index * period if period else float(frame.time if frame.time is not None else index / 25.0)
                last = t
                index += 1
                yield offset + t, self._convert(frame)
            if not self.loop or index == 0:
                return
            offset += last + (period or 1.0 / float(self.info.sfreq if self.info else 25.0))
            self._container.seek(0)

    def _close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


@SOURCES.register("images")
class ImageDirectorySource(FrameSource):
    """The images of a directory (sorted by name) as frames at ``fps``."""

    def __init__(self, path: str, size: Sequence[int] | None = (28, 28), grey: bool = True, fps: float = 10.0,
                 realtime: bool = True, loop: bool = False, max_frames: int | None = None, name: str = "edgestream-camera",
                 source_id: str = "", clock: Callable[[], float] | None = None) -> None:
        super().__init__(size, grey, fps, realtime, loop, max_frames, name, source_id or f"images:{Path(path).name}", clock)
        self.path = path
        self._files: list[Path] = []

    def _open(self) -> tuple[float, str]:
        root = Path(os.path.expanduser(self.path))
        if not root.is_dir():
            raise ConfigError(f"path must be an existing directory of images; got {self.path!r}.")
        self._files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise ConfigError(f"path must contain images ({', '.join(IMAGE_SUFFIXES)}); got none in {self.path!r}.")
        return float(self.fps), f"images {root.name} ({len(self._files)} files)"

    def _frames(self) -> Iterator[tuple[float, np.ndarray]]:
        from PIL import Image

        period, index = 1.0 / float(self.fps), 0
        while True:
            for path in self._files:
                with Image.open(path) as img:
                    yield index * period, self._convert(img)
                index += 1
            if not self.loop:
                return


@SOURCES.register("webcam")
class WebcamSource(FrameSource):
    """A V4L2 webcam (``/dev/videoN``) through PyAV; frames stamped at capture."""

    def __init__(self, device: str = "/dev/video0", size: Sequence[int] | None = (28, 28), grey: bool = True,
                 fps: float | None = None, max_frames: int | None = None, name: str = "edgestream-camera",
                 source_id: str = "", clock: Callable[[], float] | None = None) -> None:
        super().__init__(size, grey, fps, False, False, max_frames, name, source_id or f"webcam:{device}", clock)
        self.device = device
        self._container: Any = None

    def _open(self) -> tuple[float, str]:
        if not Path(self.device).exists():
            raise StreamError(
                f"device must be an existing webcam; got {self.device!r} (no such device). Plug a camera in, check "
                "`ls /dev/video*`, or use kind video/images with a file."
            )
        av = _import_av()
        options = {"framerate": str(int(self.fps))} if self.fps else {}
        try:
            self._container = av.open(self.device, format="v4l2", options=options)
        except av.FFmpegError as exc:
            raise StreamError(f"webcam {self.device!r} must open for capture; got {exc}. Is it in use by another program?") from None
        stream = self._container.streams.video[0]
        return float(stream.average_rate or self.fps or 30), f"webcam {self.device}"

    def _frames(self) -> Iterator[tuple[float, np.ndarray]]:
        start = None
        for frame in self._container.decode(video=0):
            now = self._clock()
            start = now if start is None else start
            yield now - start, self._convert(frame)

    def _close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
