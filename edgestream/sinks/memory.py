"""In-process sink keeping the chunks it receives (notebooks, offline runs, tests of pipelines)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from edgestream.core.checks import check_number
from edgestream.core.chunk import Chunk, StreamInfo, concat
from edgestream.core.io import SINKS, Sink


@SINKS.register("memory")
class MemorySink(Sink):
    """Keep the newest ``max_chunks`` chunks; ``result()`` concatenates them.

    Parameters
    ----------
    max_chunks : int
        Older chunks are discarded (counted in ``discarded``) beyond this many.
    """

    def __init__(self, max_chunks: int = 100_000) -> None:
        super().__init__()
        self.max_chunks = check_number(max_chunks, "max_chunks", low=1, integer=True)
        self.chunks: deque[Chunk] = deque(maxlen=self.max_chunks)
        self.discarded = 0
        self._lock = threading.Lock()

    def build(self, info: StreamInfo, context: dict[str, Any] | None = None) -> None:
        self.in_info = info

    def write(self, chunk: Chunk) -> None:
        with self._lock:
            if len(self.chunks) == self.max_chunks:
                self.discarded += 1
            self.chunks.append(chunk)
            self.samples_out += chunk.n_times

    def result(self) -> Chunk | None:
        with self._lock:
            nonempty = [c for c in self.chunks if c.n_times]
        return concat(nonempty) if nonempty else None
