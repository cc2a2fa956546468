"""Deterministic replay: run a pipeline again on a session's recorded inputs and compare outputs.

The pipeline comes from the run manifest beside the XDF file (the resolved spec of the recorded
run) or from ``pipeline=``; ``overrides`` change it (``model.checkpoint=other.pt``). It runs
in-process through the engine:

* each source is replaced by one that delivers the recorded input samples with their recorded
  timestamps — an LSL input goes through the same read plan as the live
  :class:`~edgestream.sources.lsl.LSLSource` (channel picks, units, counter checks,
  NaN policy), an in-process input comes from the stream recorded behind it; starting at the
  first sample the live run consumed (from the manifest), paced at ``speed`` × real time or as
  fast as possible;
* every sink is replaced by a capture (LSL outlets still resolve their names, nothing is
  published), hand-off queues are dropped (everything runs inline, nothing can be dropped);
* each captured output is compared with the recorded output stream
  (:mod:`edgestream.record.compare`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.errors import ConfigError
from edgestream.core.io import ConnectionState, Sink, Source
from edgestream.record.compare import StreamDiff, compare_stream
from edgestream.record.manifest import read_manifest, referenced_files
from edgestream.record.naming import manifest_path
from edgestream.record.xdf import RecordedStream, Session, load_session
from edgestream.sources.lsl import LSLSource
from edgestream.sources.lsl_plan import plan_reading

log = logging.getLogger(__name__)

CHUNK = 32  # samples per replayed chunk (streaming equals offline: the size does not change outputs)


class _Pacer:
    """Deliver samples stamped ``t`` at ``t0_wall + (t - t_first) / speed`` (None: as fast as possible)."""

    def __init__(self, speed: float | None) -> None:
        self.speed = speed
        self._origin: tuple[float, float] | None = None

    def wait(self, newest: float, oldest: float, timeout: float) -> bool:
        """True when the chunk may go now; False after sleeping ``timeout`` (call again)."""
        if self.speed is None:
            return True
        if self._origin is None:
            self._origin = (time.monotonic(), oldest)
        due = self._origin[0] + (newest - self._origin[1]) / self.speed - time.monotonic()
        if due > timeout:
            time.sleep(max(0.0, timeout))
            return False
        if due > 0:
            time.sleep(due)
        return True


class RecordedLSLSource(LSLSource):
    """An LSL source whose samples come from a recorded stream instead of an inlet.

    Takes the live source's parameters, so the recorded header goes through the same read plan
    (picks, units, counter channel, nonfinite policy) and delivers the same chunks.
    """

    def __init__(self, recorded: RecordedStream, *, index: tuple[int, int], speed: float | None = None,
                 chunk_size: int = CHUNK, **params: Any) -> None:
        super().__init__(**params)
        self.recorded, self.index, self.chunk_size = recorded, index, int(chunk_size)
        self.max_lag = None  # nothing is "late" in a replay
        self._pacer = _Pacer(speed)

    def start(self) -> StreamInfo:
        h = self.recorded.header
        self._reset_runtime()
        self.header = h
        self.plan = plan_reading(h, units=self.units, unit_mul=self.unit_mul, to_units=self.to_units,
                                 channels=self.channels, counter_channel=self.counter_channel)
        self.info = self.plan.info
        self._validate(h)
        self._pos, self._end = self.index
        self._t_ref = self._now()
        self._set_state(ConnectionState.CONNECTED, self._t_ref, f"replaying {h.name!r} from the recording")
        return self.info

    def read(self, timeout: float) -> list[Chunk]:
        if self._pos >= self._end:
            if self.state is not ConnectionState.ENDED:
                self._set_state(ConnectionState.ENDED, self._now(), "end of the recorded input")
            return []
        j = min(self._pos + self.chunk_size, self._end)
        ts = self.recorded.stamps[self._pos:j]
        if not self._pacer.wait(float(ts[-1]), float(ts[0]), timeout):
            return []
        raw = self.recorded.data[self._pos:j]
        self._pos = j
        return self._deliver(raw, ts.copy())

    def stop(self) -> None:
        self._set_state(ConnectionState.ENDED, self._now(), "stopped")


class RecordedTapSource(Source):
    """An in-process source (simulator, file, camera) replayed from the outlet recorded behind it."""

    def __init__(self, recorded: RecordedStream, *, index: tuple[int, int], speed: float | None = None,
                 chunk_size: int = CHUNK) -> None:
        super().__init__()
        self.recorded, self.index, self.chunk_size = recorded, index, int(chunk_size)
        self._pacer = _Pacer(speed)

    def start(self) -> StreamInfo:
        h = self.recorded.header
        n = h.n_channels - 1  # the recording outlet appended its counter channel
        desc = {k: v for k, v in h.desc.items() if k not in ("pipeline", "synchronization")}
        origin = h.desc.get("pipeline", {}).get("input_stream", {}) if isinstance(h.desc.get("pipeline"), dict) else {}
        string = h.channel_format == "string"
        if string:
            n = h.n_channels
        labels = [lab or f"ch{i + 1}" for i, lab in enumerate(h.labels[:n])]
        self.info = StreamInfo(name=origin.get("name") or h.name, type=origin.get("type") or h.type,
                               source_id=origin.get("source_id") or h.source_id, sfreq=h.sfreq, ch_names=labels,
                               ch_types=h.types[:n], units=[u or "a.u." for u in h.units[:n]],
                               dtype="string" if string else "float32", desc=desc)
        self._n = n
        self._pos, self._end = self.index
        self._set_state(ConnectionState.CONNECTED, local_clock(), f"replaying {h.name!r} from the recording")
        return self.info

    def read(self, timeout: float) -> list[Chunk]:
        if self._pos >= self._end:
            self._set_state(ConnectionState.ENDED, local_clock(), "end of the recorded input")
            return []
        j = min(self._pos + self.chunk_size, self._end)
        ts = self.recorded.stamps[self._pos:j]
        if not self._pacer.wait(float(ts[-1]), float(ts[0]), timeout):
            return []
        data = self.recorded.data[self._pos:j, : self._n]
        self._pos = j
        self.samples_in += len(ts)
        return [Chunk.make(data, ts, self.info)]


class CaptureSink(Sink):
    """Stands in for a sink during a replay: keeps every chunk; an LSL outlet still resolves its name."""

    def __init__(self, original: Sink) -> None:
        super().__init__()
        self.original = original
        self.chunks: list[Chunk] = []
        self.out_info: StreamInfo | None = None
        self.source_id = ""

    def build(self, info: StreamInfo, context: Any = None) -> None:
        self.in_info = info
        from edgestream.sinks.lsl_outlet import LSLOutlet

        if isinstance(self.original, LSLOutlet):
            self.original.build(info, context)  # names only; never started
            self.out_info, self.source_id = self.original.out_info, self.original.resolved_source_id
        else:
            self.out_info = info

    def write(self, chunk: Chunk) -> None:
        if chunk.n_times:
            self.chunks.append(chunk)
            self.samples_out += chunk.n_times


# --- the replay ------------------------------------------------------------------------------
@dataclasses.dataclass
class ReplayResult:
    """Outcome of :func:`replay`: one :class:`StreamDiff` per output stream, and what to know about it."""

    session: Path
    pipeline: str
    diffs: list[StreamDiff]
    warnings: list[str]
    summary: dict[str, Any]  # the replay engine's run summary
    inputs: dict[str, dict[str, Any]]  # per source node: recorded stream, samples replayed, span (s)

    @property
    def ok(self) -> bool:
        """Every output stream was compared and reproduced within the tolerance."""
        return bool(self.diffs) and all(d.ok for d in self.diffs)

    def to_dict(self) -> dict[str, Any]:
        return {"session": str(self.session), "pipeline": self.pipeline, "ok": self.ok, "warnings": self.warnings,
                "inputs": self.inputs, "streams": [dataclasses.asdict(d) | {"status": d.status} for d in self.diffs]}


def replay(session: str | Path, pipeline: str | Path | None = None, overrides: Sequence[str] = (), device: str | None = None,
           speed: float | None = None, tolerance: float = 1e-4) -> ReplayResult:
    """Re-run the recorded pipeline on the recorded inputs and compare every output stream.

    Parameters
    ----------
    session : str or Path
        XDF file written by ``edgestream run`` with recording (or ``edgestream record``; then
        ``pipeline`` is required).
    pipeline : str, Path or None
        Pipeline file or bundled name; default the resolved spec in the run manifest.
    overrides : sequence of str
        ``node.param=value`` changes applied on top (e.g. another checkpoint).
    device : str or None
        Device profile; default the recorded run's.
    speed : float or None
        Pace the inputs at ``speed`` × real time; None: as fast as possible.
    tolerance : float
        A value differs when ``|replayed - recorded| > tolerance * max(1, |recorded|)``.
    """
    from edgestream.core.checks import check_number, check_positive
    from edgestream.pipeline.engine import Engine
    from edgestream.pipeline.graph import Graph

    tolerance = check_number(tolerance, "tolerance", low=0)
    speed = None if speed is None else check_positive(speed, "speed", fix="Use 1 for real time, or omit it for as fast as possible.")
    data = load_session(session)
    warnings: list[str] = []
    if data.scan.truncated or data.scan.unfinished:
        warnings.append(data.scan.describe())
    mpath = manifest_path(data.path)
    manifest = read_manifest(mpath) if mpath.is_file() else None
    if manifest is not None and manifest.get("status") == "recording":
        warnings.append(f"{mpath.name} says the recording never finished (status 'recording'): the recording process "
                        "was killed; replaying what the file holds")
    spec = _replay_spec(data, manifest, mpath, pipeline, overrides, warnings)
    profile = _profile(device, manifest, spec, warnings)
    for node in spec.stages + spec.sinks:
        node.queue = None  # inline: nothing dropped, outputs in order
    graph = Graph(spec, profile)
    inputs: dict[str, dict[str, Any]] = {}
    span = [-np.inf, np.inf]
    max_rate = 0.0
    for s in graph.sources:
        rec = _input_stream(data, manifest, s)
        index, note = _input_slice(rec, manifest, s.id)
        if note:
            warnings.append(note)
        if isinstance(s.source, LSLSource):
            s.source = RecordedLSLSource(rec, index=index, speed=speed, **s.spec.params)
        else:
            s.source = RecordedTapSource(rec, index=index, speed=speed)
        stamps = rec.stamps[index[0]:index[1]]
        if len(stamps):
            span = [max(span[0], float(stamps[0])), min(span[1], float(stamps[-1]))]
        max_rate = max(max_rate, rec.header.sfreq)
        inputs[s.id] = {"stream": rec.name, "samples": int(index[1] - index[0]),
                        "seconds": float(stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0}
    if not any(entry["samples"] for entry in inputs.values()):
        raise ConfigError(f"session {data.path.name} must hold input samples to replay; its inputs "
                          f"({', '.join(e['stream'] for e in inputs.values())}) have none in the span the run consumed. "
                          f"{data.scan.describe()}.")
    for node in graph.nodes:
        if node.is_sink:
            node.component = CaptureSink(node.component)
    summary = Engine(graph, publish=False).run(None)
    time_tol = min(1e-3, 0.25 / max_rate) if max_rate > 0 else 1e-3
    diffs = _compare_outputs(data, manifest, graph, tolerance, time_tol, (span[0], span[1]))
    return ReplayResult(data.path, spec.name, diffs, warnings, summary, inputs)


def _replay_spec(data: Session, manifest: dict[str, Any] | None, mpath: Path, pipeline: str | Path | None,
                 overrides: Sequence[str], warnings: list[str]) -> Any:
    from edgestream.pipeline.config import apply_set, load_pipeline, parse_pipeline

    if pipeline is not None:
        spec = load_pipeline(pipeline, overrides)
    elif manifest is None or not manifest.get("pipeline"):
        why = "has no pipeline (it was written by `edgestream record`)" if manifest else f"is missing (expected {mpath.name})"
        raise ConfigError(f"replay needs the pipeline that ran; the run manifest beside {data.path.name} {why}. Pass "
                          "it with --pipeline FILE.")
    else:
        raw = dict(manifest["pipeline"]["spec"])
        raw.pop("record", None)
        for entry in manifest.get("referenced_files", []):
            node, _, param = entry["param"].partition(".")
            if "[" in param or "." in param:
                continue
            for section in ("sources", "stages", "sinks"):
                body = (raw.get(section) or {}).get(node)
                if isinstance(body, dict) and body.get(param) == entry["path"] and not Path(entry["path"]).exists():
                    body[param] = entry["abs_path"]  # the run's cwd was elsewhere
        spec = parse_pipeline(apply_set(raw, overrides), f"manifest {mpath.name}")
    spec.record = None
    if manifest is not None:
        now = {e["param"]: e for e in referenced_files(spec.to_dict())}
        for then in manifest.get("referenced_files", []):
            cur = now.get(then["param"])
            if cur is None:
                warnings.append(f"{then['param']}: the recorded run used {then['path']} (sha256 {then['sha256'][:12]}); "
                                "the replayed pipeline names no such file")
            elif cur["sha256"] != then["sha256"]:
                warnings.append(f"{then['param']}: {cur['path']} (sha256 {cur['sha256'][:12]}) is not the file the "
                                f"recorded run used ({then['path']}, sha256 {then['sha256'][:12]}); outputs may differ")
    return spec


def _profile(device: str | None, manifest: dict[str, Any] | None, spec: Any, warnings: list[str]) -> Any:
    from edgestream.core.device import load_profile

    recorded = (manifest or {}).get("device") or {}
    name = device or recorded.get("name") or spec.device or "cpu"
    try:
        return load_profile(name)
    except ConfigError as exc:
        if device:
            raise
        warnings.append(f"the recorded device profile {name!r} is not available here ({exc}); replaying on 'cpu'")
        return load_profile("cpu")


def _input_stream(data: Session, manifest: dict[str, Any] | None, s: Any) -> RecordedStream:
    listing = f"Streams in the file: {data.listing()}."
    for ref in (manifest or {}).get("streams", []):
        if ref.get("role") == "input" and ref.get("node") == s.id:
            found = data.by_source_id(ref["source_id"])
            if found:
                return found[0]
            raise ConfigError(f"source {s.id!r}: its recorded stream {ref['name']!r} (source_id {ref['source_id']!r}) is "
                              f"not in {data.path.name}; the recording lost it. {listing}")
    if isinstance(s.source, LSLSource):
        query = s.source.query
        found = [r for r in data.streams if r.matches(query)]
        if len(found) == 1:
            return found[0]
        what = "no recorded stream matches" if not found else f"{len(found)} recorded streams match"
        raise ConfigError(f"source {s.id!r} must select exactly one recorded stream; {what} {query}. {listing} "
                          f"Narrow it with --set {s.id}.source_id=....")
    raise ConfigError(f"source {s.id!r} ({s.spec.kind}) is not an LSL stream, and without a run manifest the replay cannot "
                      f"tell which recorded stream fed it. {listing}")


def _input_slice(rec: RecordedStream, manifest: dict[str, Any] | None, node: str) -> tuple[tuple[int, int], str]:
    """Indices of the samples the live run consumed (whole stream without a run summary)."""
    n = len(rec.stamps)
    src = (((manifest or {}).get("summary") or {}).get("sources") or {}).get(node) or {}
    first, last = src.get("first_timestamp"), src.get("last_timestamp")
    if first is None or last is None:
        note = "" if manifest is None else (f"the run summary has no first/last sample for source {node!r}: replaying "
                                            "its whole recorded stream; early outputs may differ until state converges")
        return (0, n), note
    half = 0.5 / rec.header.sfreq if rec.header.sfreq > 0 else 1e-3
    lo = int(np.searchsorted(rec.stamps, first - half, side="left"))
    hi = int(np.searchsorted(rec.stamps, last + half, side="right"))
    return (lo, hi), ""


def _compare_outputs(data: Session, manifest: dict[str, Any] | None, graph: Any, tolerance: float, time_tol: float,
                     span: tuple[float, float]) -> list[StreamDiff]:
    from edgestream.core.chunk import concat
    from edgestream.sinks.lsl_outlet import LSLOutlet

    refs = {r["node"]: r for r in (manifest or {}).get("streams", []) if r.get("role") == "output"}
    diffs = []
    for node in graph.nodes:
        cap = node.component
        if not node.is_sink or not isinstance(cap, CaptureSink) or not isinstance(cap.original, LSLOutlet):
            continue
        ref = refs.pop(node.id, None)
        found = data.by_source_id(ref["source_id"]) if ref else data.by_source_id(cap.source_id)
        if not found and cap.out_info is not None:
            found = [r for r in data.streams if r.name == cap.out_info.name]
        name = found[0].name if found else (cap.out_info.name if cap.out_info else node.id)
        if not found:
            diffs.append(StreamDiff(name, node.id, compared=False, note="this output is not in the recording"))
            continue
        rec = found[0]
        info = cap.in_info
        got = concat(cap.chunks) if cap.chunks else None
        rep_data = got.data if got is not None else np.zeros((0, info.n_channels), np.float32)
        rep_stamps = got.timestamps if got is not None else np.zeros(0)
        h = rec.header
        diffs.append(compare_stream(name, node.id, rec.data, rec.stamps, h.labels, h.types, rep_data, rep_stamps,
                                    info.ch_names, tolerance=tolerance, time_tol=time_tol, span=span))
    for node_id, ref in refs.items():
        diffs.append(StreamDiff(ref["name"], node_id, compared=False,
                                note=f"recorded, but the replayed pipeline has no sink {node_id!r}"))
    return diffs
