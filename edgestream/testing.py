"""Test helpers shipped with the package (used by edgestream's suite and by users' own stages).

The central check of the project: a stateful stage fed a signal in random chunk sizes gives
the same output as one offline pass over the whole signal.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from edgestream.core.chunk import Chunk, StreamInfo, concat
from edgestream.core.stage import Stage, run_stage


def random_splits(n: int, rng: np.random.Generator, max_chunk: int = 64, min_chunk: int = 1) -> list[int]:
    """Random chunk lengths (each in [min_chunk, max_chunk], zero-length allowed once) summing to ``n``."""
    sizes: list[int] = []
    total = 0
    while total < n:
        size = int(rng.integers(min_chunk, max_chunk + 1))
        size = min(size, n - total)
        sizes.append(size)
        total += size
    if n > 2:
        sizes.insert(int(rng.integers(0, len(sizes))), 0)  # an empty chunk must be harmless
    return sizes


def split_chunk(chunk: Chunk, sizes: list[int]) -> list[Chunk]:
    out, start = [], 0
    for size in sizes:
        out.append(Chunk(chunk.data[start : start + size], chunk.timestamps[start : start + size], chunk.info))
        start += size
    return out


def make_chunk(data: np.ndarray, info: StreamInfo, t0: float = 1000.0) -> Chunk:
    """Chunk with regular timestamps at ``info.sfreq`` starting at ``t0``."""
    n = data.shape[0]
    step = 1.0 / info.sfreq if info.sfreq > 0 else 0.01
    return Chunk.make(data, t0 + np.arange(n) * step, info)


def stream_vs_offline(
    stage: Stage, chunk: Chunk, rng: np.random.Generator, max_chunk: int = 64, min_chunk: int = 1
) -> tuple[Chunk | None, Chunk | None, Any]:
    """Run ``stage`` (built) once offline and once over random chunk sizes; return both outputs."""
    offline, _ = run_stage(stage, [chunk])
    streamed, state = run_stage(stage, split_chunk(chunk, random_splits(chunk.n_times, rng, max_chunk, min_chunk)))
    off = concat(offline) if offline else None
    on = concat([c for c in streamed if c.n_times]) if any(c.n_times for c in streamed) else None
    return off, on, state


def assert_streaming_equals_offline(
    stage: Stage,
    chunk: Chunk,
    rng: np.random.Generator,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    max_chunk: int = 64,
    min_chunk: int = 1,
    repeats: int = 3,
) -> None:
    """Assert equal data and timestamps between offline and chunked runs (several random splits)."""
    for _ in range(repeats):
        off, on, _ = stream_vs_offline(stage, chunk, rng, max_chunk, min_chunk)
        if off is None or on is None:
            assert off is None and on is None, "one run produced output and the other did not"
            continue
        assert off.data.shape == on.data.shape, f"shapes differ: offline {off.data.shape}, streamed {on.data.shape}"
        np.testing.assert_allclose(on.data, off.data, rtol=rtol, atol=atol)
        np.testing.assert_array_equal(on.timestamps, off.timestamps)


def randomize_norm_stats(module: Any, seed: int = 0, gain: tuple[float, float] = (1.0, 2.5), shift: tuple[float, float] = (0.2, 1.0)) -> Any:
    """Give every BatchNorm layer of ``module`` non-trivial running statistics and affine parameters.

    Freshly built models have identity BatchNorms (mean 0, var 1, weight 1, bias 0), so eval-mode
    tests would not exercise them, and spiking layers behind them rarely reach threshold. This
    sets them deterministically from ``seed``: running mean in [-0.3, 0.3], variance in [0.5, 2],
    weight in ``gain``, bias in ``shift``. Returns ``module``.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                def draw(t: Any, lo: float, hi: float) -> Any:
                    return (torch.rand(t.shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo).to(t)

                m.running_mean.copy_(draw(m.running_mean, -0.3, 0.3))
                m.running_var.copy_(draw(m.running_var, 0.5, 2.0))
                if m.affine:
                    m.weight.copy_(draw(m.weight, *gain))
                    m.bias.copy_(draw(m.bias, *shift))
    return module


def mend_traceback(exc: BaseException) -> bool:
    """Give every traceback entry of ``exc`` and of its causes a line number, in place.

    Python 3.11+ reports ``tb_lineno`` as None for a frame stopped at an instruction that has no
    source line, which is where a signal handler's exception lands when the signal arrives inside a
    C extension call (pytest-timeout's ``signal`` method during an ONNX export, for example).
    pytest's report then fails with an INTERNALERROR that ends the whole run. Such entries are
    rebuilt to point at their function's first line. Returns whether anything was mended.
    """
    mended, todo, seen = False, [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        entries = []
        tb = e.__traceback__
        while tb is not None:
            entries.append(tb)
            tb = tb.tb_next
        if any(t.tb_lineno is None for t in entries):
            rebuilt = None
            for t in reversed(entries):
                line = t.tb_lineno if t.tb_lineno is not None else t.tb_frame.f_code.co_firstlineno
                rebuilt = types.TracebackType(rebuilt, t.tb_frame, t.tb_lasti, line)
            e.__traceback__ = rebuilt
            mended = True
        todo += [e.__cause__, e.__context__]
    return mended
