"""Latency statistics on the LSL clock.

Latency is ``receipt/processing time - timestamp of the newest input sample`` in seconds.
:class:`LatencyStats` keeps a whole-run log-spaced histogram (constant memory, ~1 %
resolution) for p50/p99 at exit, the exact maximum, and a rolling window of recent values
for the live latency stream.
"""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np

_LO, _HI, _BINS = 1e-6, 1e3, 2000  # 1 µs .. 1000 s, ratio 10**(9/2000) ≈ 1.0104 per bin
_EDGES = np.logspace(math.log10(_LO), math.log10(_HI), _BINS + 1)


class LatencyStats:
    """Accumulate latencies (seconds) and report percentiles in milliseconds.

    Parameters
    ----------
    window : int
        Number of recent values used by :meth:`recent`.
    """

    def __init__(self, window: int = 2048) -> None:
        self._hist = np.zeros(_BINS + 2, dtype=np.int64)  # + underflow and overflow bins
        self._recent: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()
        self.count = 0
        self.max = float("nan")
        self._sum = 0.0

    def add(self, seconds: float) -> None:
        with self._lock:
            self._recent.append(seconds)
            self._hist[int(np.searchsorted(_EDGES, seconds, side="right"))] += 1
            self.count += 1
            self._sum += seconds
            self.max = seconds if not self.max >= seconds else self.max

    def merge(self, other: LatencyStats) -> None:
        with self._lock:
            self._hist += other._hist
            self.count += other.count
            self._sum += other._sum
            if other.count:
                self.max = other.max if not self.max >= other.max else self.max
            self._recent.extend(other._recent)

    def _quantile_from_hist(self, q: float) -> float:
        if self.count == 0:
            return float("nan")
        target = q * self.count
        cum = np.cumsum(self._hist)
        i = int(np.searchsorted(cum, target, side="left"))
        if i == 0:
            return _LO
        if i > _BINS:
            return self.max
        return min(float(math.sqrt(_EDGES[i - 1] * _EDGES[i])), self.max)  # geometric bin centre, never above the max

    def summary(self) -> dict[str, float]:
        """Whole-run statistics in milliseconds: p50, p99, max, mean, and the count."""
        with self._lock:
            return {
                "count": self.count,
                "p50_ms": self._quantile_from_hist(0.50) * 1e3,
                "p99_ms": self._quantile_from_hist(0.99) * 1e3,
                "max_ms": self.max * 1e3,
                "mean_ms": (self._sum / self.count) * 1e3 if self.count else float("nan"),
            }

    def recent_values(self) -> np.ndarray:
        """The most recent latencies in seconds, oldest first."""
        with self._lock:
            return np.fromiter(self._recent, dtype=np.float64)

    def recent(self) -> dict[str, float]:
        """Exact p50/p99/max (ms) over the most recent values."""
        out = percentiles_ms(self.recent_values())
        out.pop("count")
        return out


def percentiles_ms(seconds: np.ndarray) -> dict[str, float]:
    """Exact p50/p99/max in ms of an array of latencies in seconds (for benchmarks)."""
    seconds = np.asarray(seconds, dtype=np.float64)
    if seconds.size == 0:
        nan = float("nan")
        return {"p50_ms": nan, "p99_ms": nan, "max_ms": nan, "count": 0}
    p50, p99 = np.percentile(seconds, [50, 99])
    return {"p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3, "max_ms": float(seconds.max()) * 1e3, "count": int(seconds.size)}
