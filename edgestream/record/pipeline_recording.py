"""The ``record:`` section of a pipeline file: record every input and output of a run on one clock.

::

    record:
      out: recordings            # root of the BIDS tree (default ./recordings)
      subject: "01"              # BIDS labels: letters and digits
      session: "01"              # optional
      task: mi                   # default: the pipeline name without punctuation
      run: 1
      extra: ["type='Markers'"]  # more streams to record (LSL predicates), e.g. the session's cues
      grace: 1.5                 # s the recorder keeps going after the last output (samples in flight)
      restarts: 3                # if the recorder dies, continue in _split-NN files this many times

What is recorded: each LSL input as its producer publishes it; each in-process input (simulator,
file, camera) through an extra outlet ``<pipeline>-<source>-input`` added for the recording;
every ``lsl_outlet`` output; the latency and health streams; the ``extra`` streams. The
recorder starts after every outlet exists and before the first sample is read, and stops
``grace`` seconds after the last output, so the file holds every sample the run consumed and
produced. The manifest also keeps each source's first and last consumed timestamp, which
``edgestream replay`` uses to start the pipeline on the same sample.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgestream.core.checks import check_keys, check_number, check_type
from edgestream.core.errors import ConfigError
from edgestream.pipeline.config import NodeSpec, PipelineSpec
from edgestream.record.manifest import pipeline_record
from edgestream.record.naming import BidsName
from edgestream.record.session import Recording, StreamRef, resolve_predicates

log = logging.getLogger(__name__)

RECORD_KEYS = ("out", "subject", "session", "task", "run", "acquisition", "extra", "grace", "restarts", "timeout")
TAP_SUFFIX = "__record_input"  # id of the outlet node added behind an in-process source
LSL_SOURCE_KINDS = ("lsl",)  # sources that read a stream the recorder can record directly


@dataclasses.dataclass(frozen=True)
class RecordSpec:
    """The ``record:`` section, validated."""

    name: BidsName  # subject, session, task, run, acquisition
    out: str = "recordings"  # root directory of the BIDS tree
    extra: tuple[str, ...] = ()  # predicates of more streams to record
    grace: float = 1.5  # s between the last output and stopping the recorder
    restarts: int = 3  # recorder restarts (into split files) if it dies
    timeout: float = 15.0  # s LabRecorderCLI gets to start collecting


def parse_record(raw: Any, pipeline: str, where: str = "record") -> RecordSpec | None:
    """Validate a ``record:`` value: ``true`` (defaults), ``false``/``null`` (off), or a mapping."""
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be true, false or a mapping like {{out: recordings, subject: '01'}}; got {raw!r}.")
    check_keys(raw, RECORD_KEYS, where)
    task = raw.get("task") or re.sub(r"[^A-Za-z0-9]", "", pipeline) or "edgestream"
    session = raw.get("session")
    name = BidsName(subject=_label(raw.get("subject", "01")), task=_label(task), run=raw.get("run", 1),
                    session=None if session is None else _label(session),
                    acquisition=None if raw.get("acquisition") is None else _label(raw["acquisition"]))
    extra = raw.get("extra") or []
    if isinstance(extra, str):
        extra = [extra]
    if not isinstance(extra, (list, tuple)) or not all(isinstance(p, str) and p.strip() for p in extra):
        raise ConfigError(f"{where}.extra must be a list of LSL predicates like [\"type='Markers'\"]; got {extra!r}.")
    return RecordSpec(name=name, out=str(check_type(raw.get("out", "recordings"), str, f"{where}.out")), extra=tuple(extra),
                      grace=check_number(raw.get("grace", 1.5), f"{where}.grace", low=0),
                      restarts=check_number(raw.get("restarts", 3), f"{where}.restarts", low=0, integer=True),
                      timeout=check_number(raw.get("timeout", 15.0), f"{where}.timeout", low=0, low_inclusive=False))


def _label(value: Any) -> Any:
    # YAML reads `subject: 01` as the integer 1; BIDS labels are text, so keep what was meant
    return f"{value:02d}" if isinstance(value, int) and not isinstance(value, bool) else value


class PipelineRecording:
    """Engine hook recording a pipeline run. Build with :meth:`prepare`, pass to ``Engine(recording=...)``.

    Parameters
    ----------
    spec : PipelineSpec
        The pipeline as the user wrote it (after ``--set``); goes into the manifest.
    record : RecordSpec
    overrides : list of str
        The ``--set`` assignments (manifest).
    device : DeviceProfile or None
    on_problem : callable or None
        Called with a message if the recorder dies during the run.
    """

    def __init__(self, spec: PipelineSpec, record: RecordSpec, overrides: list[str] | None = None, device: Any = None,
                 on_problem: Callable[[str], None] | None = None) -> None:
        self.spec, self.record = spec, record
        self.overrides = list(overrides or [])
        self.device = device
        self.on_problem = on_problem
        self.recording: Recording | None = None
        self.taps = [s.id for s in spec.sources if s.kind not in LSL_SOURCE_KINDS]

    @classmethod
    def prepare(cls, spec: PipelineSpec, overrides: list[str] | None = None, device: Any = None,
                out: str | None = None, on_problem: Callable[[str], None] | None = None
                ) -> tuple[PipelineSpec, PipelineRecording | None]:
        """``(spec to build, hook)``: the hook is None when the spec has no ``record`` section and no ``out``.

        The spec to build has an outlet added behind every in-process source, so those inputs
        reach the recorder too.
        """
        raw = spec.record if spec.record is not None else ({} if out else None)
        if raw is not None and out:
            raw = (dict(raw) if isinstance(raw, Mapping) else {}) | {"out": out}
        record = parse_record(raw, spec.name, f"{spec.path or 'pipeline'}: record")
        if record is None:
            return spec, None
        from edgestream.record.labrecorder import find_labrecorder

        find_labrecorder()  # a missing recorder is a setup error, reported before any stream is opened
        hook = cls(spec, record, overrides, device, on_problem)
        built = copy.deepcopy(spec)
        for src in hook.taps:
            built.sinks.append(NodeSpec(f"{src}{TAP_SUFFIX}", "sinks", "lsl_outlet",
                                        {"name": f"{spec.name}-{src}-input"}, input=src))
        return built, hook

    def streams(self, engine: Any) -> list[StreamRef]:
        """Every stream of the running graph the recording covers."""
        from edgestream.sinks.lsl_outlet import LSLOutlet

        refs: list[StreamRef] = []
        for s in engine.graph.sources:
            header = getattr(s.source, "header", None)
            if s.id not in self.taps and header is not None:
                refs.append(StreamRef.from_header(header, "input", s.id))
        for node in engine.graph.nodes:
            if node.is_sink and isinstance(node.component, LSLOutlet):
                tap = node.id.removesuffix(TAP_SUFFIX) if node.id.endswith(TAP_SUFFIX) else None
                refs.append(_outlet_ref(node.component, "input" if tap else "output", tap or node.id))
        for kind, sink in engine.monitor_outlets:
            refs.append(_outlet_ref(sink, kind, None))
        if self.record.extra:
            known = {r.source_id for r in refs if r.source_id} | {r.uid for r in refs if r.uid}
            for ref in resolve_predicates(self.record.extra, role="extra", required=False):
                if ref.source_id not in known and ref.uid not in known:
                    refs.append(ref)
        return refs

    def start(self, engine: Any) -> None:
        """Called by the engine once every outlet exists, before any source is read."""
        recording = Recording(self.record.name, self.record.out, self.streams(engine),
                              pipeline=pipeline_record(self.spec, self.overrides), device=self.device,
                              restarts=self.record.restarts, timeout=self.record.timeout, on_problem=self.on_problem)
        path = recording.start()
        self.recording = recording
        log.info("recording %d streams to %s", len(recording.streams), path)

    def stop(self, engine: Any, summary: dict[str, Any]) -> dict[str, Any]:
        """Called by the engine after the last output, before any outlet closes."""
        if self.recording is None:
            return {}
        return self.recording.stop(summary, grace=self.record.grace)

    @property
    def path(self) -> Path | None:
        return self.recording.path if self.recording is not None else None


def _outlet_ref(sink: Any, role: str, node: str | None) -> StreamRef:
    info = sink.out_info
    sid = sink.resolved_source_id
    return StreamRef(f"source_id='{sid}'", info.name, info.type, sid, role, node, info.sfreq,
                     info.n_channels + int(sink.counter and info.dtype != "string"))
