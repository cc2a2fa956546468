"""Read an LSL stream header (with its ``desc`` block) into a :class:`StreamInfo`.

The dashboard needs channel labels, units and the metadata blocks (``desc/model/classes``,
``desc/csi``, ``desc/periods``...) of every stream it shows, including raw LSL streams that
were not made by edgestream. Values arrive as XML text; nested elements become dicts and
repeated tags become lists (``desc/channels/channel`` → list of dicts).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from edgestream.core.chunk import StreamInfo
from edgestream.core.errors import ConfigError
from edgestream.core.units import canonical

log = logging.getLogger(__name__)

# LSL channel formats → StreamInfo.dtype ("string" for marker streams, float32 for all numbers,
# since Chunk data is float32).
_STRING_FORMATS = ("string",)


def element_to_value(elem: ET.Element) -> Any:
    """XML element → str (leaf) or dict (children; repeated tags become lists)."""
    children = list(elem)
    if not children:
        return (elem.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        value = element_to_value(child)
        if child.tag in out:
            if not isinstance(out[child.tag], list):
                out[child.tag] = [out[child.tag]]
            out[child.tag].append(value)
        else:
            out[child.tag] = value
    return out


def as_list(value: Any) -> list[Any]:
    """A value that may be one item or a list of them (repeated XML tags) → list."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def parse_header(xml_text: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Split an ``<info>`` document into its header fields and its ``desc`` block."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ConfigError(f"LSL stream header must be valid XML; got a parse error ({exc}).") from None
    header = {child.tag: (child.text or "").strip() for child in root if child.tag != "desc"}
    desc_elem = root.find("desc")
    desc = element_to_value(desc_elem) if desc_elem is not None else {}
    return header, desc if isinstance(desc, dict) else {}


def _unit(text: str) -> str:
    try:
        return canonical(text or "a.u.")
    except Exception:  # an unknown unit on someone else's stream: show it as given
        return text or "a.u."


def info_from_xml(xml_text: str) -> StreamInfo:
    """Build a :class:`StreamInfo` from an LSL ``<info>`` XML document.

    Channel labels, types and units come from ``desc/channels/channel``; channels without a
    label are named ``ch1..chN``. Everything else in ``desc`` is kept in ``StreamInfo.desc``
    (plus ``hostname`` and ``uid`` under ``desc["lsl"]``).
    """
    header, desc = parse_header(xml_text)
    n = int(float(header.get("channel_count", "1") or 1))
    channels = as_list(desc.get("channels", {}).get("channel")) if isinstance(desc.get("channels"), Mapping) else []
    names, types, units = [], [], []
    stream_type = header.get("type", "")
    for i in range(n):
        ch = channels[i] if i < len(channels) and isinstance(channels[i], Mapping) else {}
        names.append(str(ch.get("label") or f"ch{i + 1}"))
        types.append(str(ch.get("type") or stream_type.lower() or "misc").lower())
        units.append(_unit(str(ch.get("unit") or "")))
    if len(set(names)) != len(names):  # duplicate labels would break per-channel settings
        names = [f"{name}#{i + 1}" if names.count(name) > 1 else name for i, name in enumerate(names)]
    fmt = header.get("channel_format", "float32")
    extra = {k: v for k, v in desc.items() if k != "channels"}
    extra["lsl"] = {"hostname": header.get("hostname", ""), "uid": header.get("uid", ""),
                    "channel_format": fmt, "created_at": header.get("created_at", "")}
    return StreamInfo(
        name=header.get("name", "") or "(unnamed)",
        type=stream_type,
        source_id=header.get("source_id", ""),
        sfreq=max(0.0, float(header.get("nominal_srate", "0") or 0.0)),
        ch_names=tuple(names),
        ch_types=tuple(types),
        units=tuple(units),
        dtype="string" if fmt in _STRING_FORMATS else "float32",
        desc=extra,
    )


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
