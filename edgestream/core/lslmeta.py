"""LSL stream headers ↔ :class:`StreamInfo`: XDF-style metadata, units, and a counted outlet writer.

An LSL header is XML: ``<info><name/><type/><channel_count/><nominal_srate/><channel_format/>
<source_id/>…<desc>…</desc></info>``. By the XDF conventions, per-channel metadata sits in
``desc/channels/channel/{label,unit,type}``; edgestream adds ``desc/pipeline``, ``desc/model``
and ``desc/synchronization`` blocks. This module converts both ways:

* :func:`parse_header` reads the XML of a resolved stream into an :class:`LSLHeader`;
* :func:`desc_to_dict` / :func:`fill_desc` map nested ``desc`` elements to mappings and back
  (a list becomes repeated children named by the singular of its key: ``classes`` → ``class``);
* :class:`OutletWriter` publishes (n_times, n_channels) blocks with explicit per-sample
  timestamps, appending edgestream's monotonically increasing ``counter`` channel.
"""

from __future__ import annotations

import dataclasses
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgestream.core.checks import fail
from edgestream.core.chunk import StreamInfo
from edgestream.core.errors import ConfigError, StateError
from edgestream.core.units import canonical

# A float32 represents every integer up to 2**24 exactly; the counter channel wraps there so it
# never loses precision in a float32 stream (16.7 M samples = 4.6 h at 1 kHz between wraps).
COUNTER_MODULUS = 2**24
COUNTER_LABEL = "counter"
COUNTER_TYPE = "counter"

# LSL channel formats → numpy dtypes (None: strings)
FORMAT_DTYPES: dict[str, Any] = {
    "float32": np.float32, "double64": np.float64, "int8": np.int8, "int16": np.int16, "int32": np.int32,
    "int64": np.int64, "string": None,
}

# Channel types whose values are electrical potentials: MNE-LSL writes their unit as a bare
# power-of-ten exponent ("-6" for µV), which we accept too.
_ELECTRIC_TYPES = ("eeg", "eog", "ecg", "emg", "seeg", "ecog", "dbs", "bio", "exg")


def counter_values(start: int, n: int) -> np.ndarray:
    """Counter channel values for samples ``start .. start + n - 1`` (float32, wrapping at 2**24)."""
    return ((start + np.arange(n)) % COUNTER_MODULUS).astype(np.float32)


def with_counter(data: np.ndarray, start: int) -> np.ndarray:
    """``data`` (n, c) float32 with a counter column appended: (n, c + 1)."""
    return np.concatenate([data, counter_values(start, data.shape[0])[:, None]], axis=1)


@dataclasses.dataclass(frozen=True)
class LSLHeader:
    """What an LSL stream header says about a stream (all channels, as published)."""

    name: str
    type: str
    source_id: str
    sfreq: float  # nominal rate in Hz, 0.0 for irregular streams
    n_channels: int
    channel_format: str  # "float32", "double64", "int16", ..., "string"
    hostname: str = ""
    uid: str = ""
    created_at: float = 0.0
    labels: tuple[str, ...] = ()  # from desc/channels/channel/label ("" where missing)
    types: tuple[str, ...] = ()  # from desc/channels/channel/type, lower-case ("" where missing)
    units: tuple[str, ...] = ()  # raw unit text from desc/channels/channel/unit ("" where missing)
    desc: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # desc without the channels block

    def summary(self) -> dict[str, Any]:
        """Short description for listings and error messages."""
        return {"name": self.name, "type": self.type, "source_id": self.source_id, "sfreq": self.sfreq,
                "n_channels": self.n_channels, "channel_format": self.channel_format, "hostname": self.hostname}


def _text(el: ET.Element | None, tag: str, default: str = "") -> str:
    child = el.find(tag) if el is not None else None
    return (child.text or default).strip() if child is not None and child.text else default


def parse_header(xml: str) -> LSLHeader:
    """Parse the XML of a stream header (``pylsl.StreamInfo.as_xml()``)."""
    root = ET.fromstring(xml)
    n = int(_text(root, "channel_count", "0") or 0)
    labels, types, units = [""] * n, [""] * n, [""] * n
    desc_el = root.find("desc")
    desc: dict[str, Any] = {}
    if desc_el is not None:
        chans = desc_el.find("channels")
        if chans is not None:
            for i, ch in enumerate(chans.findall("channel")[:n]):
                labels[i] = _text(ch, "label")
                types[i] = _text(ch, "type").lower()
                units[i] = _text(ch, "unit")
        desc = {k: v for k, v in desc_to_dict(desc_el).items() if k != "channels"}
    return LSLHeader(
        name=_text(root, "name"), type=_text(root, "type"), source_id=_text(root, "source_id"),
        sfreq=float(_text(root, "nominal_srate", "0") or 0.0), n_channels=n,
        channel_format=_text(root, "channel_format", "float32"), hostname=_text(root, "hostname"),
        uid=_text(root, "uid"), created_at=float(_text(root, "created_at", "0") or 0.0),
        labels=tuple(labels), types=tuple(types), units=tuple(units), desc=desc,
    )


def _singular(key: str) -> str:
    """Element name of one list item under ``key``: ``classes`` → ``class``, ``channels`` → ``channel``."""
    if key.endswith(("sses", "xes", "ches", "shes")):
        return key[:-2]
    if key.endswith("s") and len(key) > 1:
        return key[:-1]
    return "item"


def desc_to_dict(el: ET.Element) -> dict[str, Any]:
    """Nested ``desc`` elements → a mapping of strings, lists and mappings.

    An element whose children all share one tag, and either are several or are named by the
    singular of the element's tag, becomes a list (the inverse of :func:`fill_desc`).
    """
    out: dict[str, Any] = {}
    for child in el:
        value = _element_value(child)
        if child.tag in out:  # repeated tag at mapping level: collect
            prev = out[child.tag]
            out[child.tag] = (prev if isinstance(prev, list) else [prev]) + [value]
        else:
            out[child.tag] = value
    return out


def _element_value(el: ET.Element) -> Any:
    children = list(el)
    if not children:
        return (el.text or "").strip()
    tags = {c.tag for c in children}
    if len(tags) == 1 and (len(children) > 1 or children[0].tag == _singular(el.tag)):
        return [_element_value(c) for c in children]
    return desc_to_dict(el)


_TAG_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _tag(key: Any) -> str:
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", str(key))
    return tag if _TAG_OK.match(tag) else "_" + tag


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


def fill_desc(element: Any, mapping: Mapping[str, Any]) -> None:
    """Append ``mapping`` below a pylsl ``XMLElement`` (nested mappings and lists allowed)."""
    for key, value in mapping.items():
        _append(element, _tag(key), value)


def _append(element: Any, tag: str, value: Any) -> None:
    if isinstance(value, Mapping):
        fill_desc(element.append_child(tag), value)
    elif isinstance(value, (list, tuple)):
        child = element.append_child(tag)
        item = _singular(tag)
        for v in value:
            _append(child, item, v)
    else:
        element.append_child_value(tag, _value_text(value))


def resolve_unit(raw: str | int | None, ch_type: str = "", unit_mul: int = 0) -> str:
    """Canonical unit of one channel from what a header or the user declares.

    Accepts unit text (``"microvolts"``, ``"uV"``, ``"V"``), MNE FIFF unit codes (``107`` = volt,
    combined with ``unit_mul``, e.g. -6), and MNE-LSL's bare exponents for electrical channels
    (``"-6"`` on an EEG channel = µV). Empty or missing → ``"a.u."``.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return "a.u."
    if isinstance(raw, str):
        text = raw.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            raw = int(text)
        else:
            return canonical(text, unit_mul)
    if isinstance(raw, (int, np.integer)) and not isinstance(raw, bool):
        code = int(raw)
        try:
            return canonical(code, unit_mul)
        except ConfigError:
            if ch_type.lower() in _ELECTRIC_TYPES and code in (-15, -12, -9, -6, -3, 0, 3):
                return canonical("V", code + unit_mul)
            raise
    fail("unit", "be a unit string or an MNE FIFF unit code", raw, "Use e.g. 'uV', 'microvolts' or 107 (volt).")


def lsl_stream_info(info: StreamInfo, source_id: str, *, counter: bool, channel_format: str | None = None,
                    desc: Mapping[str, Any] | None = None) -> Any:
    """A ``pylsl.StreamInfo`` for ``info`` with XDF-style channel metadata and ``desc`` blocks.

    With ``counter`` a channel ``counter`` (type ``counter``, unit ``a.u.``) is appended.
    """
    import pylsl

    fmt = channel_format or ("string" if info.dtype == "string" else "float32")
    if fmt not in FORMAT_DTYPES:
        fail("channel_format", "be one of " + ", ".join(FORMAT_DTYPES), fmt)
    labels, types, units = list(info.ch_names), list(info.ch_types), list(info.units)
    if counter:
        labels.append(COUNTER_LABEL)
        types.append(COUNTER_TYPE)
        units.append("a.u.")
    out = pylsl.StreamInfo(info.name, info.type, len(labels), info.sfreq, fmt, source_id)
    root = out.desc()
    channels = root.append_child("channels")
    for label, ctype, unit in zip(labels, types, units):
        ch = channels.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", unit)
        ch.append_child_value("type", ctype)
    if desc:
        fill_desc(root, desc)
    return out


class OutletWriter:
    """An LSL outlet that pushes blocks with explicit per-sample timestamps and a counter channel.

    Parameters
    ----------
    info : StreamInfo
        Describes the data columns (the counter is added here, not in ``info``).
    source_id : str
    counter : bool
        Append a ``counter`` channel: 0, 1, 2, … per sample pushed (wrapping at 2**24).
    channel_format : str or None
        LSL format; default float32 for numeric streams, string for ``info.dtype == "string"``.
    desc : mapping or None
        Extra ``desc`` blocks (``pipeline``, ``model``, ``synchronization``, ...).
    chunk_size, max_buffered : int
        Passed to ``pylsl.StreamOutlet`` (0 = push each block through at once; seconds of
        data kept for slow inlets).
    """

    def __init__(self, info: StreamInfo, source_id: str, *, counter: bool = True, channel_format: str | None = None,
                 desc: Mapping[str, Any] | None = None, chunk_size: int = 0, max_buffered: int = 360) -> None:
        import pylsl

        self.info = info
        self.counter = bool(counter) and info.dtype != "string"  # marker streams stay one string channel
        self.string = info.dtype == "string"
        self.lsl_info = lsl_stream_info(info, source_id, counter=self.counter, channel_format=channel_format, desc=desc)
        fmt = self.lsl_info.channel_format()
        self.dtype = np.dtype(FORMAT_DTYPES[_FORMAT_NAMES[fmt]]) if not self.string else None
        self.n_channels = info.n_channels + int(self.counter)
        self.count = 0  # samples pushed so far
        self._outlet = pylsl.StreamOutlet(self.lsl_info, chunk_size, max_buffered)

    def push(self, data: np.ndarray | Sequence[Sequence[Any]], timestamps: np.ndarray | Sequence[float]) -> None:
        """Push ``data`` (n_times, n_channels) stamped ``timestamps`` (n_times,), seconds on the LSL clock."""
        if self._outlet is None:
            raise StateError(f"OutletWriter.push: the outlet of stream {self.info.name!r} was closed; "
                             "no sample can be pushed into it. Create a new OutletWriter to publish again.")
        stamps = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        n = stamps.shape[0]
        if n == 0:
            return
        if self.string:
            rows = [[str(v) for v in row] for row in data]
            self._outlet.push_chunk(rows, stamps.tolist())
            self.count += n
            return
        arr = np.asarray(data)
        if self.counter:
            block = np.empty((n, self.n_channels), dtype=self.dtype)
            block[:, :-1] = arr
            block[:, -1] = counter_values(self.count, n)
        else:
            block = np.ascontiguousarray(arr, dtype=self.dtype)
        # a float stamp per sample (pylsl's per-sample path); one C call for the block
        self._outlet.push_chunk(block, stamps.tolist())
        self.count += n

    def have_consumers(self) -> bool:
        return bool(self._outlet.have_consumers())

    def wait_for_consumers(self, timeout: float) -> bool:
        return bool(self._outlet.wait_for_consumers(timeout))

    def close(self) -> None:
        """Destroy the outlet now (consumers see the stream vanish)."""
        outlet, self._outlet = self._outlet, None
        if outlet is not None:
            del outlet


# pylsl reports channel_format() as liblsl's integer code
_FORMAT_NAMES = {1: "float32", 2: "double64", 3: "string", 4: "int32", 5: "int16", 6: "int8", 7: "int64"}


def format_name(code_or_name: int | str) -> str:
    """LSL channel format name from pylsl's integer code (or pass a name through)."""
    if isinstance(code_or_name, str):
        return code_or_name
    return _FORMAT_NAMES.get(int(code_or_name), "float32")
