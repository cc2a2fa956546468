"""Fixed-capacity ring buffer of multichannel samples with their timestamps."""

from __future__ import annotations

import numpy as np

from edgestream.core.checks import check_positive
from edgestream.core.errors import DataError


class RingBuffer:
    """Keep the newest ``capacity`` samples of an (n_times, n_channels) stream.

    Writes never block and never grow memory: when full, the oldest samples are overwritten
    and counted in :attr:`overwritten`. Not thread-safe by itself; owners that share it across
    threads hold a lock (see the LSL source).

    Parameters
    ----------
    capacity : int
        Samples kept.
    n_channels : int
    dtype : numpy dtype of the samples (float32 by default).
    """

    def __init__(self, capacity: int, n_channels: int, dtype: np.dtype | type = np.float32) -> None:
        self.capacity = check_positive(capacity, "capacity", integer=True)
        self.n_channels = check_positive(n_channels, "n_channels", integer=True)
        self._data = np.zeros((self.capacity, self.n_channels), dtype=dtype)
        self._times = np.zeros(self.capacity, dtype=np.float64)
        self._end = 0  # total samples ever written
        self.overwritten = 0  # samples pushed out by newer ones since construction

    def __len__(self) -> int:
        return min(self._end, self.capacity)

    @property
    def total_written(self) -> int:
        return self._end

    def push(self, data: np.ndarray, timestamps: np.ndarray) -> None:
        """Append samples (n, n_channels) with timestamps (n,)."""
        n = data.shape[0]
        if data.ndim != 2 or data.shape[1] != self.n_channels or timestamps.shape != (n,):
            raise DataError(
                f"RingBuffer.push needs data (n, {self.n_channels}) and timestamps (n,); got "
                f"{data.shape} and {timestamps.shape}."
            )
        if n == 0:
            return
        if n >= self.capacity:
            self.overwritten += max(0, len(self) + n - self.capacity)
            # Only the newest `capacity` rows are kept, but all n count as written, so that
            # readers tracking total_written see that rows went by unread.
            self._end += n - self.capacity
            data, timestamps = data[-self.capacity :], timestamps[-self.capacity :]
            n = self.capacity
        else:
            self.overwritten += max(0, len(self) + n - self.capacity)
        start = self._end % self.capacity
        first = min(n, self.capacity - start)
        self._data[start : start + first] = data[:first]
        self._times[start : start + first] = timestamps[:first]
        if first < n:
            self._data[: n - first] = data[first:]
            self._times[: n - first] = timestamps[first:]
        self._end += n

    def last(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Return copies of the newest ``n`` samples, oldest first: (n, C) data and (n,) stamps."""
        if n > len(self):
            raise DataError(f"RingBuffer.last(n) needs n <= {len(self)} buffered samples; got n={n}.")
        idx = (np.arange(self._end - n, self._end) % self.capacity) if n else np.zeros(0, dtype=int)
        return self._data[idx], self._times[idx]

    def clear(self) -> None:
        self._end = 0
