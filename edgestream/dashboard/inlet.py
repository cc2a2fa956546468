"""The dashboard's stream reader: the project's LSL source, configured for display.

:func:`open_reader` is the one place the dashboard creates readers. It uses
:class:`~edgestream.sources.lsl.LSLSource`, which owns the connection state machine
(connected → stalled → lost → recovering), loss counting by cause and drain-to-now, so the
health panel shows exactly what a pipeline reading the same stream would see.
"""

from __future__ import annotations

from typing import Any

from edgestream.core.io import Source
from edgestream.sources.lsl import LSLSource

OPEN_TIMEOUT = 5.0  # s to find the stream again when opening it
MAX_LAG = 0.5  # s: older samples are dropped (and counted as overflow) if the dashboard falls behind


def _literal(value: str) -> str:
    return f"'{value}'" if "'" not in value else f'"{value}"'


def open_reader(lsl_info: Any) -> Source:
    """Create (not start) the reader for a resolved stream (a ``pylsl.StreamInfo``).

    Streams are selected by source_id, or by name and host when they have none. Non-finite
    values are shown as gaps (NaN), not dropped: a device that missed a frame reports NaN.
    """
    if lsl_info.source_id():
        select: dict[str, Any] = {"source_id": lsl_info.source_id()}
    else:
        select = {"predicate": f"name={_literal(lsl_info.name())} and hostname={_literal(lsl_info.hostname())}"}
    return LSLSource(**select, timeout=OPEN_TIMEOUT, max_lag=MAX_LAG, nonfinite="keep")
