"""Bounded hand-off queues with an explicit policy for when they are full."""

from __future__ import annotations

import collections
import threading
from typing import Any

from edgestream.core.errors import StreamError


class QueueFullError(StreamError):
    """A queue with policy 'fail' overflowed."""


class HandoffQueue:
    """Bounded FIFO between two threads.

    Policies when full: ``drop-oldest`` (discard the oldest item, counted), ``reject``
    (discard the new item, counted), ``block`` (wait for room), ``fail`` (raise).
    ``dropped_items`` and ``dropped_samples`` count what was discarded.
    """

    def __init__(self, size: int, policy: str, name: str = "queue") -> None:
        self.size, self.policy, self.name = size, policy, name
        self._items: collections.deque[Any] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped_items = 0
        self.dropped_samples = 0
        self.high_water = 0

    def put(self, item: Any, n_samples: int = 0) -> None:
        with self._cond:
            if len(self._items) >= self.size:
                if self.policy == "drop-oldest":
                    old = self._items.popleft()
                    self.dropped_items += 1
                    self.dropped_samples += getattr(old, "n_times", 0)
                elif self.policy == "reject":
                    self.dropped_items += 1
                    self.dropped_samples += n_samples
                    return
                elif self.policy == "block":
                    while len(self._items) >= self.size and not self._closed:
                        self._cond.wait(0.1)
                else:
                    raise QueueFullError(
                        f"queue in front of {self.name!r} overflowed ({self.size} chunks) and its policy is 'fail'. "
                        "The stage is slower than its input: use a faster device profile, a larger hop, or policy drop-oldest."
                    )
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify()

    def get(self, timeout: float) -> Any | None:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)
