"""Publish a pipeline's stream as an LSL outlet with XDF-style metadata (kind ``"lsl_outlet"``).

Every numeric outlet ends with a ``counter`` channel (0, 1, 2, … per sample) so any consumer
can prove continuity, and every sample is stamped with the timestamp of the newest input sample
it depends on (the chunk's timestamps), so ``receipt time - stamp`` is end-to-end latency.

Metadata written into ``desc``::

    channels/channel/{label,unit,type}     one per channel, the counter last
    pipeline/{name,node,input,edgestream_version,...}   plus the mapping the engine passes
    model/...                              when the stream's StreamInfo.desc has "model"
    <other StreamInfo.desc entries>        as nested elements
    synchronization/{can_drop_samples,timestamps,clock}
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from edgestream import __version__
from edgestream.core.checks import check_number, check_type
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import StateError, ValidationError
from edgestream.core.io import SINKS, Sink
from edgestream.core.lslmeta import OutletWriter

# StreamInfo.desc entries describing where an upstream stream came from; not republished
_UPSTREAM_ONLY = ("lsl",)


def _context_get(context: Any, key: str, default: Any = None) -> Any:
    """Read ``key`` from a mapping or an attribute of a context object (e.g. ``BuildContext``)."""
    if context is None:
        return default
    if isinstance(context, Mapping):
        return context.get(key, default)
    return getattr(context, key, default)


def default_source_id(pipeline: str, node: str, upstream: str) -> str:
    """Stable, unique ``source_id`` for an output: readable prefix + a short hash of its identity.

    Same pipeline, node and input stream → same id across runs, so consumers (and liblsl's
    own recovery) find the stream again after a restart.
    """
    digest = hashlib.sha1(f"{pipeline}\x1f{node}\x1f{upstream}".encode()).hexdigest()[:10]
    return f"edgestream-{pipeline}-{node}-{digest}"


@SINKS.register("lsl_outlet")
class LSLOutlet(Sink):
    """Publish chunks as an LSL stream.

    Parameters
    ----------
    name : str or None
        Stream name; default ``"<pipeline>-<input node>"`` from the build context (or the input
        stream's name outside a pipeline).
    type : str or None
        LSL content type; default the input stream's type (``Predictions``, ``EEG``, ...).
    source_id : str or None
        Default: stable and unique, derived from pipeline, node and the input's source_id.
    chunk_size : int
        liblsl transmission chunk (0: each write goes out at once).
    max_buffered : int
        Seconds of data the outlet keeps for slow consumers.
    counter : bool
        Append the ``counter`` channel (numeric streams; marker streams stay one string channel).
    """

    def __init__(self, name: str | None = None, type: str | None = None, source_id: str | None = None,
                 chunk_size: int = 0, max_buffered: int = 360, counter: bool = True) -> None:
        super().__init__()
        for arg, value in (("name", name), ("type", type), ("source_id", source_id)):
            if value is not None:
                check_type(value, str, arg)
        self.name, self.type, self.source_id = name, type, source_id
        self.chunk_size = check_number(chunk_size, "chunk_size", low=0, integer=True)
        self.max_buffered = check_number(max_buffered, "max_buffered", low=1, integer=True)
        self.counter = check_type(counter, bool, "counter")
        self.out_info: StreamInfo | None = None
        self.resolved_source_id = ""
        self._desc: dict[str, Any] = {}
        self._writer: OutletWriter | None = None

    def build(self, info: StreamInfo, context: Mapping[str, Any] | Any | None = None) -> None:
        """Fix the published name, type, source_id and metadata for input stream ``info``.

        ``context`` is None or a mapping (or object) with ``pipeline`` (name), ``node`` (this
        sink's id), ``input`` (the node feeding it) and ``pipeline_desc`` (a mapping copied
        into ``desc/pipeline``).
        """
        if info.window is not None:
            raise ValidationError(f"lsl_outlet publishes continuous samples; stream {info.name!r} carries windows of "
                                  f"{info.window} samples per chunk. Connect it after a stage that reduces each window "
                                  "(a model or 'bandpower').")
        self.in_info = info
        pipeline = str(_context_get(context, "pipeline") or "edgestream")
        node = str(_context_get(context, "node") or "")
        upstream = str(_context_get(context, "input") or node or "")
        name = self.name or (f"{pipeline}-{upstream}" if context is not None and upstream else info.name)
        node_id = node or upstream or name
        self.resolved_source_id = self.source_id or default_source_id(pipeline, node_id, info.source_id or info.name)
        self.out_info = info.replace(name=name, type=self.type or info.type, source_id=self.resolved_source_id)
        block: dict[str, Any] = {"name": pipeline, "node": node_id, "input": upstream,
                                 "input_stream": {"name": info.name, "type": info.type, "source_id": info.source_id},
                                 "edgestream_version": __version__}
        extra = _context_get(context, "pipeline_desc")
        if isinstance(extra, Mapping):
            block.update({k: v for k, v in extra.items() if k not in block})
        desc: dict[str, Any] = {}
        for key, value in info.desc.items():
            if key in _UPSTREAM_ONLY:
                continue
            if key == "pipeline" and isinstance(value, Mapping):  # an upstream pipeline block: keep as provenance
                block.setdefault("upstream", dict(value))
                continue
            desc[key] = value
        desc["pipeline"] = block
        desc["synchronization"] = {"can_drop_samples": True,
                                   "timestamps": "newest input sample each output sample depends on",
                                   "clock": "LSL local_clock of the producing machine"}
        self._desc = desc

    def start(self) -> None:
        if self.out_info is None:
            raise StateError("lsl_outlet must be built before start(); call build(info, context) first.")
        if self._writer is None:
            self._writer = OutletWriter(self.out_info, self.resolved_source_id, counter=self.counter, desc=self._desc,
                                        chunk_size=self.chunk_size, max_buffered=self.max_buffered)

    def write(self, chunk: Chunk) -> None:
        writer = self._writer
        if writer is None:
            raise StateError("lsl_outlet must be started before write(); call start() first.")
        if chunk.data.shape[0]:
            writer.push(chunk.data, chunk.timestamps)
            self.samples_out += chunk.data.shape[0]

    @property
    def desc(self) -> dict[str, Any]:
        """The ``desc`` blocks published (after :meth:`build`)."""
        return dict(self._desc)

    def have_consumers(self) -> bool:
        return self._writer is not None and self._writer.have_consumers()

    def wait_for_consumers(self, timeout: float) -> bool:
        return self._writer is not None and self._writer.wait_for_consumers(timeout)

    def stop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
