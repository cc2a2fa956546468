"""A generated camera: a deterministic moving pattern as timestamped frames (no camera or file needed).

Source kind ``pattern``. Its frames have the layout of every frame source (see
:mod:`edgestream.sources.camera`): one frame is one sample of ``H·W·C`` channels, row-major
``(H, W, C)``, float32 in ``[0, 1]``, described in ``StreamInfo.desc["frame"]``. It stands in for
a camera wherever a bundled pipeline must run on any machine (an installed package has no
video files); swap it for ``video``, ``images`` or ``webcam`` to see real pictures.

Patterns (bright on black; ``grey=False`` tints them with a colour drawn from the seed):

* ``digits`` — seven-segment digits 0-9 (in an order drawn from the seed, each for a tenth of
  the cycle) drifting over the frame on a Lissajous path;
* ``bars`` — a square-wave grating at a seeded angle and bar width, sliding across the frame;
* ``blob`` — a Gaussian spot on a seeded Lissajous path.

Frame ``k`` depends only on ``(pattern, size, grey, seed, cycle, k mod cycle)``: the motion
repeats every ``cycle`` frames, and the same arguments give the same frames on every machine.
Edges are anti-aliased (pixel coverage), so sub-pixel motion still changes the frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from edgestream.core.checks import check_number, check_type, check_value, fail
from edgestream.core.io import SOURCES
from edgestream.sources.camera import FrameSource

PATTERNS = ("digits", "bars", "blob")
MIN_SIDE = 8  # pixels: below this a seven-segment digit no longer reads as one

# Seven-segment glyphs: segment → (x0, x1, y0, y1) as fractions of the glyph box, t = stroke.
_STROKE = 0.22
_SEGMENTS = {
    "a": (0.0, 1.0, 0.0, _STROKE / 2), "g": (0.0, 1.0, 0.5 - _STROKE / 4, 0.5 + _STROKE / 4),
    "d": (0.0, 1.0, 1.0 - _STROKE / 2, 1.0),
    "f": (0.0, _STROKE, 0.0, 0.5), "b": (1.0 - _STROKE, 1.0, 0.0, 0.5),
    "e": (0.0, _STROKE, 0.5, 1.0), "c": (1.0 - _STROKE, 1.0, 0.5, 1.0),
}
_DIGITS = ("abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc", "abcdefg", "abcdfg")


@dataclasses.dataclass(frozen=True)
class PatternMotion:
    """What the seed decides; drawn once, in a fixed order, so frames are reproducible."""

    freq: tuple[int, int]          # Lissajous cycles per pattern cycle along (x, y)
    phase: tuple[float, float]     # Lissajous phases (radians) along (x, y)
    digits: tuple[int, ...]        # the order the ten digits appear in
    angle: float                   # bars: direction of motion (radians from the x axis)
    wavelength: float              # bars: period as a fraction of the frame's shorter side
    turns: int                     # bars: periods travelled per pattern cycle (sign = direction)
    colour: tuple[float, float, float]  # RGB tint when grey is False

    @classmethod
    def from_seed(cls, seed: int) -> PatternMotion:
        rng = np.random.default_rng(seed)
        freq = tuple(int(f) for f in rng.integers(1, 4, size=2))
        phase = tuple(float(p) for p in rng.uniform(0, 2 * np.pi, size=2))
        digits = tuple(int(d) for d in rng.permutation(10))
        angle = float(rng.uniform(0, np.pi))
        wavelength = float(rng.uniform(0.3, 0.6))
        turns = int(rng.integers(1, 4)) * (1 if rng.random() < 0.5 else -1)
        colour = tuple(float(c) for c in rng.uniform(0.4, 1.0, size=3))
        return cls(freq, phase, digits, angle, wavelength, turns, colour)  # type: ignore[arg-type]


def _coverage(centres: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fraction of each unit pixel (centred at ``centres``) inside ``[lo, hi]``, all in pixels."""
    return np.clip(np.minimum(centres + 0.5, hi) - np.maximum(centres - 0.5, lo), 0.0, 1.0)


def _lissajous(motion: PatternMotion, phi: float, span_x: float, span_y: float) -> tuple[float, float]:
    """Offsets in ``[0, span_x] × [0, span_y]`` pixels at cycle phase ``phi`` in [0, 1)."""
    fx, fy = motion.freq
    px, py = motion.phase
    x = 0.5 * span_x * (1.0 + np.sin(2 * np.pi * fx * phi + px))
    y = 0.5 * span_y * (1.0 + np.sin(2 * np.pi * fy * phi + py))
    return float(x), float(y)


def _digits(motion: PatternMotion, phi: float, height: int, width: int) -> np.ndarray:
    gh = 0.6 * height
    gw = min(0.5 * gh, 0.8 * width)
    x0, y0 = _lissajous(motion, phi, width - gw, height - gh)
    digit = motion.digits[min(int(phi * len(motion.digits)), len(motion.digits) - 1)]
    xs, ys = np.arange(width) + 0.5, np.arange(height) + 0.5
    out = np.zeros((height, width))
    for segment in _DIGITS[digit]:
        sx0, sx1, sy0, sy1 = _SEGMENTS[segment]
        cover = np.outer(_coverage(ys, y0 + sy0 * gh, y0 + sy1 * gh), _coverage(xs, x0 + sx0 * gw, x0 + sx1 * gw))
        out = np.maximum(out, cover)
    return out


def _bars(motion: PatternMotion, phi: float, height: int, width: int) -> np.ndarray:
    wavelength = motion.wavelength * min(height, width)
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    along = xs * np.cos(motion.angle) + ys * np.sin(motion.angle)
    wave = np.sin(2 * np.pi * (along / wavelength - motion.turns * phi))
    # a square wave with edges about one pixel wide: the slope of the sine at a crossing is 2π/λ per pixel
    return np.clip(0.5 + wave * wavelength / (2 * np.pi), 0.0, 1.0)


def _blob(motion: PatternMotion, phi: float, height: int, width: int) -> np.ndarray:
    sigma = 0.12 * min(height, width)
    cx, cy = _lissajous(motion, phi, width - 4 * sigma, height - 4 * sigma)
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    r2 = (xs - 2 * sigma - cx) ** 2 + (ys - 2 * sigma - cy) ** 2
    return np.exp(-r2 / (2 * sigma**2))


_RENDER: dict[str, Callable[[PatternMotion, float, int, int], np.ndarray]] = {
    "digits": _digits, "bars": _bars, "blob": _blob,
}


def pattern_frame(pattern: str, index: int, height: int, width: int, grey: bool, cycle: int,
                  motion: PatternMotion) -> np.ndarray:
    """Frame ``index`` of a pattern: ``(height, width, 1 if grey else 3)`` float32 in [0, 1]."""
    level = _RENDER[pattern](motion, (index % cycle) / cycle, height, width)  # (H, W)
    if grey:
        return level[:, :, None].astype(np.float32)
    return (level[:, :, None] * np.asarray(motion.colour)[None, None, :]).astype(np.float32)


@SOURCES.register("pattern")
class PatternSource(FrameSource):
    """A deterministic moving pattern at ``fps``, paced like a camera when ``realtime``.

    Parameters
    ----------
    pattern : {"digits", "bars", "blob"}
        What moves (see the module docstring).
    size : [height, width]
        Frame size in pixels, each at least 8.
    grey : bool
        One channel (brightness) if true, else three (RGB, tinted by the seed).
    fps : float
        Frame rate in Hz; frame ``k`` is presented ``k / fps`` seconds after the first.
    seed : int
        Chooses the path, the digit order, the bars' angle and width, and the tint.
    cycle : int
        Frames before the motion repeats (at least 2, so consecutive frames differ).
    realtime : bool
        Release each frame when its time comes (a live camera); ``False`` delivers frames as
        fast as they are read (tests, benchmarks).
    loop : bool
        Repeat the cycle forever (default); ``False`` ends the stream after one cycle.
    max_frames : int or None
        End after this many frames.
    name, source_id : str
        Stream name; source id (default ``pattern:<pattern>:<seed>``).
    clock : callable or None
        LSL-clock replacement for tests (seconds).
    """

    def __init__(self, pattern: str = "digits", size: Sequence[int] = (28, 28), grey: bool = True, fps: float = 10.0,
                 seed: int = 0, cycle: int = 100, realtime: bool = True, loop: bool = True,
                 max_frames: int | None = None, name: str = "edgestream-camera", source_id: str = "",
                 clock: Callable[[], float] | None = None) -> None:
        check_value(pattern, PATTERNS, "pattern")
        fix_size = "Pass the model's input size, e.g. size=[28, 28]."
        if not isinstance(size, (list, tuple)) or len(size) != 2:
            fail("size", f"be [height, width] in pixels, each at least {MIN_SIDE}", size, fix_size)
        for side in size:
            check_number(side, "size", low=MIN_SIDE, integer=True, fix=fix_size)
        check_type(grey, bool, "grey", "Pass grey=true for one channel or grey=false for RGB.")
        check_number(fps, "fps", low=0, low_inclusive=False, fix="Pass a frame rate in Hz, e.g. fps=10.")
        check_number(seed, "seed", low=0, integer=True, fix="Pass a non-negative integer, e.g. seed=0.")
        check_number(cycle, "cycle", low=2, integer=True,
                     fix="Pass how many frames the motion takes to repeat, e.g. cycle=100.")
        check_type(realtime, bool, "realtime", "Pass realtime=true (paced like a camera) or false (as fast as read).")
        check_type(loop, bool, "loop", "Pass loop=true (endless) or false (one cycle).")
        if max_frames is not None:
            check_number(max_frames, "max_frames", low=1, integer=True, fix="Pass a frame count, or null for no limit.")
        super().__init__([int(s) for s in size], grey, float(fps), realtime, loop, max_frames, name,
                         source_id or f"pattern:{pattern}:{int(seed)}", clock)
        self.pattern, self.seed, self.cycle = pattern, int(seed), int(cycle)
        self.motion = PatternMotion.from_seed(self.seed)

    def _open(self) -> tuple[float, str]:
        return float(self.fps), f"pattern {self.pattern} (seed {self.seed}, cycle {self.cycle} frames)"

    def _frames(self) -> Iterator[tuple[float, np.ndarray]]:
        height, width = self.size
        period, index = 1.0 / float(self.fps), 0
        while self.loop or index < self.cycle:
            yield index * period, pattern_frame(self.pattern, index, height, width, self.grey, self.cycle, self.motion)
            index += 1
