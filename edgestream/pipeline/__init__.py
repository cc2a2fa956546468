"""Pipelines: YAML files → validated graphs → a threaded engine.

``load_pipeline(path, overrides)`` reads and checks a file; ``build(spec, device)`` creates the
components; ``Engine(graph).run(duration)`` runs it and returns the summary.
"""

from edgestream.pipeline.config import NodeSpec, PipelineSpec, QueueSpec, available_pipelines, load_pipeline, parse_pipeline
from edgestream.pipeline.engine import Engine, format_summary
from edgestream.pipeline.graph import Graph


def build(spec: PipelineSpec, device: object = None) -> Graph:
    """Create every component of ``spec`` (unstarted). ``device`` is a DeviceProfile or None."""
    return Graph(spec, device)


__all__ = ["Engine", "Graph", "NodeSpec", "PipelineSpec", "QueueSpec", "available_pipelines", "build", "format_summary",
           "load_pipeline", "parse_pipeline"]
