"""Background LSL publishers (simulators, file players): a thread with start / wait / stop."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class Publisher:
    """Run :meth:`_publish` on a background thread between :meth:`_open` and :meth:`_close`.

    Subclasses create their outlets in ``_open``, push until ``self._stop`` is set (or they are
    done) in ``_publish``, and destroy the outlets in ``_close``. An exception raised while
    publishing is re-raised by :meth:`wait`.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _open(self) -> None:
        raise NotImplementedError

    def _publish(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def start(self) -> Publisher:
        """Create the outlets and start publishing in the background."""
        self._open()
        self._thread = threading.Thread(target=self._run, name=f"publish-{type(self).__name__}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._publish()
        except BaseException as exc:  # surfaced by wait()
            self._error = exc
            log.exception("%s failed", type(self).__name__)
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until publishing ended (or ``timeout`` s passed); True if it has ended."""
        done = self._done.wait(timeout)
        if self._error is not None:
            raise self._error
        return done

    def stop(self) -> None:
        """Stop publishing and destroy the outlets (consumers see the streams vanish)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._close()

    def __enter__(self) -> Publisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
