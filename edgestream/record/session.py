"""A recording: LabRecorderCLI + run manifest, kept alive for the whole run.

:class:`Recording` records a fixed list of streams into a BIDS-named XDF file with its manifest.
If the recorder process dies while recording (killed, crashed), a watchdog logs it, marks the
file, and continues into ``..._split-02_eeg.xdf`` (up to ``restarts`` times), so a long session
loses seconds, not the rest of the run. ``edgestream record`` uses it directly; pipeline runs
use it through :class:`~edgestream.record.pipeline_recording.PipelineRecording`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgestream.core.errors import ConfigError, StreamError
from edgestream.record.labrecorder import LabRecorderCLI
from edgestream.record.manifest import PipelineRecord, new_manifest, now_iso, write_manifest
from edgestream.record.naming import BidsName, manifest_path, reserve

log = logging.getLogger(__name__)

WATCH_PERIOD = 0.25  # s between checks that the recorder is still alive


@dataclasses.dataclass(frozen=True)
class StreamRef:
    """One stream to record: how to select it, and what it is in the run."""

    predicate: str  # LSL predicate LabRecorderCLI gets (source_id='...' or uid='...')
    name: str
    type: str
    source_id: str
    role: str  # input | output | latency | health | extra
    node: str | None = None  # pipeline node (source id for inputs, sink id for outputs)
    sfreq: float = 0.0
    n_channels: int = 0
    hostname: str = ""
    uid: str = ""

    @classmethod
    def from_header(cls, header: Any, role: str, node: str | None = None) -> StreamRef:
        """From an :class:`~edgestream.core.lslmeta.LSLHeader` of a resolved stream."""
        pred = f"source_id='{header.source_id}'" if header.source_id and "'" not in header.source_id else f"uid='{header.uid}'"
        return cls(pred, header.name, header.type, header.source_id, role, node, header.sfreq, header.n_channels,
                   header.hostname, header.uid)


def resolve_predicates(predicates: Sequence[str], wait: float = 1.0, role: str = "extra",
                       required: bool = True) -> list[StreamRef]:
    """The streams visible now that match any of ``predicates`` (each once).

    ``required``: a predicate matching nothing is a :class:`StreamError` naming the visible
    streams; otherwise it is logged and skipped.
    """
    import pylsl

    from edgestream.core.lslmeta import parse_header
    from edgestream.sources.lsl_resolve import describe_visible

    refs: dict[str, StreamRef] = {}
    for pred in predicates:
        try:
            found = pylsl.resolve_bypred(pred, 0, wait)
        except Exception as exc:  # liblsl raises for malformed XPath
            raise ConfigError(f"predicate must be an LSL/XPath predicate such as \"type='EEG'\"; got {pred!r} ({exc}).") from None
        if not found:
            message = f"predicate {pred!r} matched no stream within {wait:g} s; {describe_visible()}"
            if required:
                raise StreamError(message + ". Start the producers first, or fix the predicate (case-sensitive XPath).")
            log.warning("%s; it is not recorded", message)
            continue
        for info in found:
            header = parse_header(info.as_xml())
            refs.setdefault(header.uid, StreamRef.from_header(header, role))
    return list(refs.values())


class Recording:
    """Record ``streams`` into ``name.path(out)`` with a run manifest beside it.

    Parameters
    ----------
    name : BidsName
    out : str or Path
        Root directory of the BIDS tree.
    streams : sequence of StreamRef
    pipeline : PipelineRecord or None
        For the manifest.
    device : DeviceProfile or None
        For the manifest.
    restarts : int
        Times the recorder is restarted (into ``_split-NN`` files) if it dies while recording.
    timeout : float
        Seconds LabRecorderCLI gets to start collecting every stream.
    on_problem : callable or None
        Called with a message when the recorder dies (the CLI prints it).
    """

    def __init__(self, name: BidsName, out: str | Path, streams: Sequence[StreamRef], *,
                 pipeline: PipelineRecord | None = None, device: Any = None, restarts: int = 3, timeout: float = 15.0,
                 on_problem: Callable[[str], None] | None = None) -> None:
        if not streams:
            raise ConfigError("a recording needs at least one stream; got none. Give --predicate/--all, or a pipeline "
                              "with LSL inputs or outputs.")
        self.name, self.out = name, Path(out).expanduser()
        self.streams = list(streams)
        self.pipeline, self.device = pipeline, device
        self.restarts, self.timeout = int(restarts), float(timeout)
        self.on_problem = on_problem
        self.paths: list[Path] = []  # every XDF file of this run, in order
        self.renamed: list[tuple[Path, Path]] = []  # older files moved aside
        self.problems: list[str] = []
        self.manifest: dict[str, Any] = {}
        self.recorder: LabRecorderCLI | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """A recorder is running (False once it died with no restarts left, or after stop())."""
        with self._lock:
            return self.recorder is not None

    @property
    def path(self) -> Path:
        """The first XDF file (the one the run is known by)."""
        return self.paths[0] if self.paths else self.name.path(self.out)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Path:
        """Move old files aside, write the manifest, start the recorder; return the XDF path."""
        path = self.name.path(self.out)
        self.manifest = new_manifest(bids=dataclasses.asdict(self.name), files=[], pipeline=self.pipeline,
                                     device=self.device, streams=[dataclasses.asdict(s) for s in self.streams])
        self._open(path)
        self._watchdog = threading.Thread(target=self._watch, name="recording-watchdog", daemon=True)
        self._watchdog.start()
        return path

    def _open(self, path: Path) -> None:
        self.renamed += reserve(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.paths.append(path)
        self.manifest["files"].append({"name": path.name, "status": "recording", "started": now_iso()})
        self._write_manifests()
        recorder = LabRecorderCLI(path, [s.predicate for s in self.streams])
        try:
            recorder.start(self.timeout)
        except BaseException as exc:
            self.manifest["files"][-1]["status"] = f"failed to start: {exc}"
            self.manifest["status"] = "failed"
            self._write_manifests()
            raise
        self.recorder = recorder

    def stop(self, summary: dict[str, Any] | None = None, grace: float = 0.0) -> dict[str, Any]:
        """Wait ``grace`` s (samples in flight reach the recorder), stop it, complete the manifest.

        Returns the recording part of a run summary: files, status, samples per stream.
        """
        if grace > 0 and self.recorder is not None and self.recorder.alive:
            time.sleep(grace)
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=self.timeout + 10)
        with self._lock:
            recorder, self.recorder = self.recorder, None
            if recorder is not None:
                code = recorder.stop()
                self._finish_file(code, died=False)
            status = "complete" if not self.problems else "complete with problems"
            self.manifest.update(status=status, finished=now_iso(), summary=summary, problems=self.problems)
            self._write_manifests()
        return self.report()

    def report(self) -> dict[str, Any]:
        return {"files": [str(p) for p in self.paths], "status": self.manifest.get("status"),
                "problems": list(self.problems), "per_file": self.manifest.get("files", []),
                "renamed": [(str(a), str(b)) for a, b in self.renamed]}

    def _finish_file(self, code: int | None, died: bool) -> None:
        """Record how the current file ended, with the samples it holds."""
        from edgestream.record.xdf import scan_xdf

        entry = self.manifest["files"][-1]
        entry["returncode"] = code
        entry["stopped"] = now_iso()
        try:
            scan = scan_xdf(self.paths[-1])
            entry["samples"] = {s.header.name: s.samples for s in scan.streams.values()}
            entry["truncated"] = scan.truncated
            entry["bytes"] = scan.size
            readable = "truncated" if scan.truncated else "complete"
        except ConfigError as exc:
            entry["samples"], readable = {}, f"unreadable ({exc})"
        entry["status"] = (f"recorder died (exit code {code}); file {readable}" if died
                           else ("complete" if code == 0 else f"recorder exited with code {code}; file {readable}"))

    def _write_manifests(self) -> None:
        for p in self.paths:
            write_manifest(manifest_path(p), self.manifest)

    # --- watchdog ----------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_PERIOD):
            with self._lock:
                rec = self.recorder
                if rec is None or rec.alive or self._stopping.is_set():
                    continue
                code = rec.stop()  # reaps it; returns the code it died with
                self.recorder = None
                self._finish_file(code, died=True)
                message = (f"recorder of {self.paths[-1].name} died (exit code {code}); the file keeps what was "
                           "written before")
                if len(self.paths) <= self.restarts:
                    split = len(self.paths) + 1
                    nxt = self.name.path(self.out, split=split)
                    try:
                        self._open(nxt)
                        message += f"; recording continues in {nxt.name}"
                    except Exception as exc:  # the run itself goes on without a recorder
                        message += f"; restarting the recorder failed ({exc})"
                else:
                    message += f"; no restarts left (restarts={self.restarts}), the rest of the run is not recorded"
                self.problems.append(message)
                self.manifest["problems"] = self.problems
                self._write_manifests()
            log.error("%s", message)
            if self.on_problem is not None:
                self.on_problem(message)
