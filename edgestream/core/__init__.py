"""Core types and helpers: Chunk, StreamInfo, registries, errors, input checks, latency stats."""

from edgestream.core.checks import check_array, check_keys, check_number, check_positive, check_type, check_value
from edgestream.core.chunk import IRREGULAR, Chunk, StreamInfo, concat
from edgestream.core.clock import ManualClock, local_clock
from edgestream.core.errors import (
    ConfigError,
    DataError,
    EdgestreamError,
    StateError,
    StreamError,
    UnknownNameError,
    ValidationError,
)
from edgestream.core.io import SINKS, SOURCES, ConnectionState, DropCounts, Sink, Source, StreamEvent
from edgestream.core.latency import LatencyStats
from edgestream.core.registry import Registry
from edgestream.core.ringbuffer import RingBuffer
from edgestream.core.stage import GAP_POLICIES, STAGES, BuildContext, Stage, run_stage

__all__ = [
    "BuildContext", "IRREGULAR", "SINKS", "SOURCES", "STAGES", "GAP_POLICIES", "Chunk", "ConfigError", "ConnectionState",
    "DataError", "DropCounts", "EdgestreamError", "LatencyStats", "ManualClock", "Registry", "RingBuffer",
    "Sink", "Source", "Stage", "StateError", "StreamError", "StreamEvent", "StreamInfo", "UnknownNameError",
    "ValidationError", "check_array", "check_keys", "check_number", "check_positive", "check_type",
    "check_value", "concat", "local_clock", "run_stage",
]
