"""Build a pipeline spec into a graph of live nodes, validated before the first sample."""

from __future__ import annotations

import logging
from typing import Any

from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.errors import ConfigError, EdgestreamError, ValidationError
from edgestream.core.io import SINKS, SOURCES, Sink, Source
from edgestream.core.latency import LatencyStats
from edgestream.core.stage import STAGES, BuildContext, Stage
from edgestream.pipeline.config import NodeSpec, PipelineSpec
from edgestream.pipeline.queues import HandoffQueue

log = logging.getLogger(__name__)


class Node:
    """A stage or sink in the running graph, with its state, statistics and children."""

    def __init__(self, spec: NodeSpec, component: Stage | Sink, clock: Any = local_clock) -> None:
        self.spec = spec
        self.component = component
        self.children: list[Node] = []
        self.port_children: dict[str, list[Node]] = {}  # extra output port → nodes reading "<id>.<port>"
        self.state: Any = None
        self.info: StreamInfo | None = None  # output info (stages) / input info (sinks)
        self.latency = LatencyStats()  # now - newest input timestamp, per output chunk
        self.compute = LatencyStats()  # seconds spent in step()/write()
        self.samples_in = 0
        self.samples_out = 0
        self.warm_left = 0
        self.queue: HandoffQueue | None = None
        self.clock = clock

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def is_sink(self) -> bool:
        return isinstance(self.component, Sink)

    def push(self, chunk: Chunk) -> None:
        if self.queue is not None:
            self.queue.put(chunk, chunk.n_times)
        else:
            self.process(chunk)

    def process(self, chunk: Chunk) -> None:
        self.samples_in += _count(chunk)
        t0 = self.clock()
        if self.is_sink:
            self.component.write(chunk)
            now = self.clock()
            self.compute.add(now - t0)
            if chunk.n_times:
                self.samples_out += _count(chunk)
                self.latency.add(now - chunk.newest)
            return
        stage: Stage = self.component
        if chunk.gap:
            self.state = stage.on_gap(self.state)
            if stage.gap_policy != "keep":
                self.warm_left = stage.warmup_samples
        outputs, self.state = stage.step(chunk, self.state)
        warming = self.warm_left > 0
        self.warm_left = max(0, self.warm_left - chunk.n_times)
        now = self.clock()
        self.compute.add(now - t0)
        extra = getattr(stage, "extra_outputs", None) or {}
        for out in outputs:
            if warming and not out.warming:
                out.warming = True
            if out.n_times:
                self.samples_out += _count(out)
                self.latency.add(now - out.newest)
            # Chunks of an extra output stream go only to the nodes reading that port.
            port = next((p for p, info in extra.items() if info is out.info), None) if extra else None
            for child in self.children if port is None else self.port_children.get(port, ()):
                child.push(out)


def _count(chunk: Chunk) -> int:
    """Samples of a continuous chunk; a window chunk counts as one (windows overlap)."""
    return 1 if chunk.info.window else chunk.n_times


class SourceNode:
    def __init__(self, spec: NodeSpec, source: Source) -> None:
        self.spec = spec
        self.source = source
        self.children: list[Node] = []
        self.info: StreamInfo | None = None
        self.first_ts: float | None = None  # LSL stamp of the first sample the engine read (s)
        self.last_ts: float | None = None  # ... and of the newest one

    @property
    def id(self) -> str:
        return self.spec.id


class Graph:
    """Sources, stages and sinks wired together; ``start()`` validates everything before data flows."""

    def __init__(self, spec: PipelineSpec, device: Any = None, clock: Any = local_clock) -> None:
        self.spec = spec
        self.device = device
        self.clock = clock
        self.sources: list[SourceNode] = []
        self.nodes: list[Node] = []
        self.started = False
        for n in spec.sources:
            self.sources.append(SourceNode(n, _create(SOURCES, n)))
        for n in spec.stages:
            self.nodes.append(Node(n, _create(STAGES, n), clock))
        for n in spec.sinks:
            self.nodes.append(Node(n, _create(SINKS, n), clock))
        by_id: dict[str, Any] = {s.id: s for s in self.sources} | {n.id: n for n in self.nodes}
        for node in self.nodes:
            parent_id, port = node.spec.input, None
            if parent_id not in by_id:  # "<stage>.<port>": an extra output of that stage
                parent_id, port = parent_id.rsplit(".", 1)
            parent = by_id[parent_id]
            if isinstance(parent, Node) and parent.is_sink:
                raise ConfigError(f"{node.spec.section}.{node.id}.input: {parent.id!r} is a sink and has no output.")
            if port is None:
                parent.children.append(node)
            elif isinstance(parent, SourceNode):
                raise ConfigError(f"{node.spec.section}.{node.id}.input: source {parent.id!r} has no output port {port!r}.")
            else:
                parent.port_children.setdefault(port, []).append(node)
        self._by_id = by_id

    def node(self, node_id: str) -> Any:
        return self._by_id[node_id]

    def start(self) -> None:
        """Open sources, then build every stage and sink against its input's StreamInfo."""
        opened: list[SourceNode] = []
        try:
            for s in self.sources:
                s.info = s.source.start()
                opened.append(s)
            for s in self.sources:
                self._build_children(s.children, s.info)
            for node in self.nodes:
                if node.is_sink:
                    node.component.start()
                if node.spec.queue is not None:
                    node.queue = HandoffQueue(node.spec.queue.size, node.spec.queue.policy, node.id)
        except BaseException:
            for s in opened:
                s.source.stop()
            for node in self.nodes:
                _safe_stop(node.component)
            raise
        self.started = True

    def _build_children(self, children: list[Node], info: StreamInfo) -> None:
        for node in children:
            where = f"{node.spec.section}.{node.id} ({node.spec.kind})"
            try:
                if node.is_sink:
                    node.component.build(info, {"pipeline": self.spec.name, "node": node.id,
                                                "input": node.spec.input, "pipeline_desc": self.spec.to_dict()})
                    node.info = info
                else:
                    ctx = BuildContext(pipeline=self.spec.name, node=node.id, device=self.device)
                    node.info = node.component.build(info, ctx)
                    node.state = node.component.init_state()
                    node.warm_left = node.component.warmup_samples
            except EdgestreamError as exc:
                raise type(exc)(f"pipeline {self.spec.name!r}, {where}: {exc}") from None
            if not node.is_sink:
                self._build_children(node.children, node.info)
                extra = getattr(node.component, "extra_outputs", None) or {}
                for port, kids in node.port_children.items():
                    if port not in extra:
                        raise ValidationError(
                            f"pipeline {self.spec.name!r}, {where}: has no output port {port!r}; its extra outputs are "
                            f"{sorted(extra) or '(none)'}. Read the main output with input: {node.id}."
                        )
                    self._build_children(kids, extra[port])

    def stop(self) -> None:
        """Tear down: sources (inlets) first, then stages, then sinks (outlets)."""
        for s in self.sources:
            _safe_stop(s.source)
        for node in self.nodes:
            if node.queue is not None:
                node.queue.close()
        for node in self.nodes:
            if not node.is_sink:
                _safe_stop(node.component)
        for node in self.nodes:
            if node.is_sink:
                _safe_stop(node.component)


def _create(registry: Any, spec: NodeSpec) -> Any:
    try:
        return registry.create(spec.kind, **spec.params)
    except EdgestreamError as exc:
        raise type(exc)(f"{spec.section}.{spec.id}: {exc}") from None
    except TypeError as exc:
        raise ValidationError(f"{spec.section}.{spec.id} ({spec.kind}): invalid arguments: {exc}") from None


def _safe_stop(component: Any) -> None:
    try:
        component.stop()
    except Exception:  # teardown must reach every component
        log.exception("error while stopping %r", component)
