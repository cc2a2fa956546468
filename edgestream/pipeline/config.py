"""Pipeline files: YAML → a validated :class:`PipelineSpec`.

::

    pipeline: eeg_bandpower
    description: Band-pass, notch and band power of a live EEG stream
    device: cpu
    sources:
      eeg: {kind: lsl, type: EEG}
    stages:
      bandpass: {kind: bandpass, l_freq: 1.0, h_freq: 40.0}
      window: {kind: window, size: 1.0, hop: 0.1}
      bandpower: {kind: bandpower}
    sinks:
      features: {kind: lsl_outlet, input: bandpower}

Every node is ``id: {kind: ..., <constructor arguments>}``; ``input`` defaults to the previous
stage (the only source for the first stage; the last stage for sinks). Engine-level node keys
(``kind``, ``input``, ``queue``) are not passed to constructors; everything else is, and
unknown arguments are errors. ``--set node.param=value`` overrides a parameter (the value is
parsed as YAML: numbers, lists, null). A parameter whose value is exactly ``"${node.param}"``
takes another node's parameter (after ``--set``), so one setting can feed several nodes::

    align: {kind: euclidean_align, checkpoint: "${model.checkpoint}"}
    model: {kind: model, model: dbconformer, checkpoint: null}   # --set model.checkpoint=model.pt sets both
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from edgestream.core.checks import check_keys, check_number, check_value
from edgestream.core.device import QUEUE_POLICIES
from edgestream.core.errors import ConfigError

TOP_KEYS = ("pipeline", "description", "device", "duration", "sources", "stages", "sinks", "latency_stream",
            "health_stream", "record")
SECTIONS = ("sources", "stages", "sinks")
ENGINE_KEYS = ("kind", "input", "queue")


@dataclasses.dataclass(frozen=True)
class QueueSpec:
    """A thread hand-off in front of a node: bounded, with an explicit policy when full."""

    size: int = 64  # chunks held
    policy: str = "drop-oldest"  # drop-oldest | reject | block | fail


@dataclasses.dataclass
class NodeSpec:
    id: str  # unique across the pipeline
    section: str  # "sources", "stages" or "sinks"
    kind: str  # registered component name
    params: dict[str, Any]  # constructor arguments, verbatim
    input: str | None = None  # id of the upstream node (None for sources)
    queue: QueueSpec | None = None  # run this node on its own thread behind a queue


@dataclasses.dataclass
class PipelineSpec:
    name: str
    description: str
    device: str | None
    duration: float | None
    sources: list[NodeSpec]
    stages: list[NodeSpec]
    sinks: list[NodeSpec]
    latency_stream: bool = True
    health_stream: bool = True
    record: dict[str, Any] | None = None
    path: str = ""

    @property
    def nodes(self) -> list[NodeSpec]:
        return self.sources + self.stages + self.sinks

    def node(self, node_id: str) -> NodeSpec:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise ConfigError(f"pipeline {self.name!r} has no node {node_id!r}; nodes are {', '.join(n.id for n in self.nodes)}.")

    def to_dict(self) -> dict[str, Any]:
        """Back to the YAML shape (for manifests and `desc/pipeline`)."""
        def section(nodes: list[NodeSpec]) -> dict[str, Any]:
            out = {}
            for n in nodes:
                entry = {"kind": n.kind} | ({"input": n.input} if n.input else {}) | dict(n.params)
                if n.queue:
                    entry["queue"] = dataclasses.asdict(n.queue)
                out[n.id] = entry
            return out

        return {"pipeline": self.name, "description": self.description, "device": self.device, "duration": self.duration,
                "sources": section(self.sources), "stages": section(self.stages), "sinks": section(self.sinks)}


def bundled_pipelines_dir() -> Path:
    from edgestream.core.paths import SOURCE_ROOT

    try:
        import edgestream._pipelines as bundled

        return Path(next(iter(bundled.__path__)))
    except ImportError:
        return SOURCE_ROOT / "assets" / "pipelines"


def available_pipelines() -> dict[str, Path]:
    d = bundled_pipelines_dir()
    return {p.stem: p for p in sorted(d.glob("*.yaml"))} if d.is_dir() else {}


def resolve_pipeline_path(name_or_path: str | Path) -> Path:
    """A path to a YAML file, or the name of a bundled pipeline (``eeg_bandpower``)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    bundled = available_pipelines()
    if str(name_or_path) in bundled:
        return bundled[str(name_or_path)]
    from edgestream.core.checks import unknown_name

    if str(name_or_path).endswith((".yaml", ".yml")) or "/" in str(name_or_path):
        raise ConfigError(f"pipeline must be an existing YAML file or a bundled pipeline name; got {str(name_or_path)!r} "
                          f"(no such file). Bundled: {', '.join(bundled) or '(none)'}.")
    raise unknown_name("pipeline", str(name_or_path), bundled)


def parse_set(assignments: Iterable[str]) -> list[tuple[list[str], Any]]:
    """Parse ``key.sub=value`` strings; values are YAML (``3``, ``[1, 2]``, ``null``, ``text``)."""
    out = []
    for item in assignments:
        if "=" not in item:
            raise ConfigError(f"--set must look like node.param=value; got {item!r}. E.g. --set model.checkpoint=model.pt.")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set needs a key before '='; got {item!r}.")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out.append((parts, value))
    return out


def apply_set(raw: dict[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides to the raw YAML mapping (node ids may omit their section)."""
    raw = copy.deepcopy(raw)
    for parts, value in parse_set(assignments):
        if parts[0] in TOP_KEYS and (len(parts) == 1 or parts[0] in SECTIONS + ("record",)):
            target, path = raw, parts
            if parts[0] == "record" and len(parts) > 1 and not isinstance(raw.get("record"), dict):
                raw["record"] = {}  # `--set record.subject=02` turns recording on
        else:
            owners = [s for s in SECTIONS if isinstance(raw.get(s), dict) and parts[0] in raw[s]]
            if not owners:
                ids = [i for s in SECTIONS for i in (raw.get(s) or {})]
                from edgestream.core.checks import unknown_name

                err = unknown_name("pipeline node", parts[0], ids)
                raise ConfigError(f"--set {'.'.join(parts)}: {err}")
            target, path = raw[owners[0]], parts
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {} if target.get(key) is None else target[key]
                if not isinstance(target[key], dict):
                    raise ConfigError(f"--set {'.'.join(parts)}: {key!r} is not a mapping (it is {target[key]!r}).")
            target = target[key]
        target[path[-1]] = value
    return raw


_REFERENCE = re.compile(r"^\$\{([^.{}\s]+)\.([^.{}\s]+)\}$")


def resolve_references(raw: dict[str, Any], source: str = "<pipeline>") -> dict[str, Any]:
    """Replace node parameters written ``"${node.param}"`` by that node's value (one level, no chains)."""
    nodes = {str(i): body for s in SECTIONS if isinstance(raw.get(s), dict)
             for i, body in raw[s].items() if isinstance(body, dict)}
    out = copy.deepcopy(raw)
    for section in SECTIONS:
        for node_id, body in (out.get(section) or {}).items() if isinstance(out.get(section), dict) else ():
            if not isinstance(body, dict):
                continue
            for key, value in body.items():
                match = _REFERENCE.match(value) if isinstance(value, str) else None
                if match is None:
                    continue
                where = f"{source}: {section}.{node_id}.{key}"
                target, param = match.group(1), match.group(2)
                if target not in nodes:
                    from edgestream.core.checks import unknown_name

                    raise ConfigError(f"{where} = {value!r}: {unknown_name('node', target, sorted(nodes))}")
                if param not in nodes[target]:
                    raise ConfigError(f"{where} = {value!r} must name a parameter set on node {target!r}; it sets "
                                      f"{', '.join(sorted(nodes[target]))}. Add {param} to {target} (null is fine).")
                resolved = nodes[target][param]
                if isinstance(resolved, str) and _REFERENCE.match(resolved):
                    raise ConfigError(f"{where} = {value!r} must point at a value, not another reference "
                                      f"({resolved!r}); refer to the original node instead.")
                body[key] = copy.deepcopy(resolved)
    return out


def _queue(value: Any, where: str) -> QueueSpec | None:
    if value is None or value is False:
        return None
    if value is True:
        return QueueSpec()
    if not isinstance(value, dict):
        raise ConfigError(f"{where}.queue must be a mapping like {{size: 64, policy: drop-oldest}}; got {value!r}.")
    check_keys(value, ("size", "policy"), f"{where}.queue")
    size = check_number(value.get("size", 64), f"{where}.queue.size", low=1, integer=True)
    policy = check_value(value.get("policy", "drop-oldest"), QUEUE_POLICIES, f"{where}.queue.policy")
    return QueueSpec(size, policy)


def parse_pipeline(raw: Any, source: str = "<pipeline>") -> PipelineSpec:
    """Validate the YAML mapping (structure only: components are checked when the graph is built)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a pipeline file must be a mapping with sources/stages/sinks; got {type(raw).__name__}.")
    check_keys(raw, TOP_KEYS, source)
    raw = resolve_references(raw, source)
    name = str(raw.get("pipeline") or Path(source).stem)
    sections: dict[str, list[NodeSpec]] = {}
    seen: set[str] = set()
    for section in SECTIONS:
        entries = raw.get(section) or {}
        if not isinstance(entries, dict):
            raise ConfigError(f"{source}: '{section}' must map node ids to settings, e.g. {section}: {{myid: {{kind: ...}}}}; "
                              f"got {type(entries).__name__}.")
        nodes = []
        for node_id, body in entries.items():
            where = f"{source}: {section}.{node_id}"
            if not isinstance(body, dict) or "kind" not in body:
                raise ConfigError(f"{where} must be a mapping with a 'kind' key; got {body!r}.")
            if node_id in seen:
                raise ConfigError(f"{where}: node id {node_id!r} is used twice; ids must be unique across the pipeline.")
            seen.add(str(node_id))
            params = {k: v for k, v in body.items() if k not in ENGINE_KEYS}
            inp = body.get("input")
            if section == "sources" and inp is not None:
                raise ConfigError(f"{where}: sources take no 'input'; got {inp!r}.")
            nodes.append(NodeSpec(str(node_id), section, str(body["kind"]), params, inp, _queue(body.get("queue"), where)))
        sections[section] = nodes
    if not sections["sources"]:
        raise ConfigError(f"{source}: a pipeline needs at least one source; got none. Add e.g. sources: {{eeg: {{kind: lsl, type: EEG}}}}.")
    # default wiring: first stage ← the only source; stage ← previous stage; sink ← last stage
    previous = sections["sources"][0].id if len(sections["sources"]) == 1 else None
    for node in sections["stages"]:
        if node.input is None:
            if previous is None:
                raise ConfigError(f"{source}: stages.{node.id} needs an 'input' (the pipeline has several sources).")
            node.input = previous
        previous = node.id
    for node in sections["sinks"]:
        if node.input is None:
            if previous is None:
                raise ConfigError(f"{source}: sinks.{node.id} needs an 'input'.")
            node.input = previous
    for node in sections["stages"] + sections["sinks"]:
        # "<node>.<port>" reads an extra output stream of a stage (e.g. an edvit stage's "status")
        if node.input not in seen and str(node.input).rsplit(".", 1)[0] not in seen:
            from edgestream.core.checks import unknown_name

            raise ConfigError(f"{source}: {node.section}.{node.id}.input: {unknown_name('node', str(node.input), sorted(seen))}")
    duration = raw.get("duration")
    if duration is not None:
        duration = check_number(duration, f"{source}: duration", low=0, low_inclusive=False)
    return PipelineSpec(
        name=name, description=str(raw.get("description") or ""), device=raw.get("device"), duration=duration,
        sources=sections["sources"], stages=sections["stages"], sinks=sections["sinks"],
        latency_stream=bool(raw.get("latency_stream", True)), health_stream=bool(raw.get("health_stream", True)),
        record=raw.get("record"), path=source,
    )


def load_pipeline(path: str | Path, overrides: Iterable[str] = ()) -> PipelineSpec:
    """Read a pipeline file (or bundled pipeline name), apply ``--set`` overrides, validate its structure."""
    file = resolve_pipeline_path(path)
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"pipeline file {str(file)!r} must be valid YAML; parsing failed{where}: {problem}. "
                          "Check indentation and that every 'key: value' pair has a space after the colon.") from None
    if isinstance(raw, dict):
        raw = apply_set(raw, overrides)
    return parse_pipeline(raw, str(file))
