"""Reading the metadata of the streams the dashboard shows (``desc/model/classes``, ``desc/csi``,
``desc/edvit``...), however the producer wrote it.

Headers are parsed by :mod:`edgestream.core.lslmeta` (through the LSL source); values arrive
as text, and lists as repeated child elements, which these helpers accept in every shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgestream.core.chunk import StreamInfo


def as_list(value: Any) -> list[Any]:
    """A value that may be one item or a list of them (repeated XML tags) → list."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def stream_key(name: str, source_id: str, hostname: str) -> str:
    """Identity of a stream across outlet restarts: its source_id, else name@host."""
    return source_id or f"{name}@{hostname}"


def desc_path(desc: Mapping[str, Any], *path: str, default: Any = None) -> Any:
    """``desc_path(info.desc, "model", "classes")`` → the nested value or ``default``."""
    value: Any = desc
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return default
        value = value[key]
    return value


def desc_list(desc: Mapping[str, Any], *path: str) -> list[str]:
    """A list stored in ``desc`` at ``path``, however it arrived.

    A list in a Python StreamInfo; repeated child elements after an LSL round trip
    (``<devices><device>a</device><device>b</device></devices>`` → ``{"device": [...]}``, or a
    plain string when there is one); or a comma-separated string.
    """
    raw = desc_path(desc, *path)
    if isinstance(raw, Mapping):
        return [str(v) for value in raw.values() for v in as_list(value)]
    if isinstance(raw, (list, tuple)):
        return [str(v) for v in raw]
    if isinstance(raw, str) and raw:
        return [s.strip() for s in raw.split(",") if s.strip()]
    return []


def class_names(info: StreamInfo) -> list[str]:
    """Class names of a Predictions stream: ``desc/model/classes`` or the ``p_<class>`` channels."""
    probs = [c[2:] for c in info.ch_names if c.startswith("p_")]
    names = desc_list(info.desc, "model", "classes")
    return names if names and len(names) == len(probs) else probs
