"""How the samples of a resolved LSL stream become chunks: channel picks, units and scaling, the
counter channel, and the :class:`StreamInfo` the pipeline is validated against.

Decided once, from the stream header, when the source starts — never at the first sample.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgestream.core.checks import fail
from edgestream.core.chunk import StreamInfo
from edgestream.core.errors import ConfigError
from edgestream.core.lslmeta import COUNTER_TYPE, FORMAT_DTYPES, LSLHeader, resolve_unit
from edgestream.core.units import parse_unit, scale_factor

UnitSpec = str | int | Sequence[str | int] | Mapping[str, str | int] | None


@dataclasses.dataclass(frozen=True)
class ReadPlan:
    """What a reader does with each pulled block (n, n_channels of the stream)."""

    info: StreamInfo  # the stream as delivered (picked channels, converted units)
    dtype: Any  # numpy dtype liblsl writes for this channel format (None for strings)
    string: bool  # marker stream: values are strings
    picks: np.ndarray | None  # channel indices delivered, None = all in order
    scale: np.ndarray | None  # per delivered channel multiplier, None = no scaling
    counter_idx: int | None  # index (in the stream) of the sample-counter channel


def plan_reading(h: LSLHeader, *, units: UnitSpec = None, unit_mul: int = 0, to_units: str | None = None,
                 channels: Sequence[str] | None = None, counter_channel: str | int | bool | None = None) -> ReadPlan:
    """Build the :class:`ReadPlan` for header ``h`` and the source's options (see ``LSLSource``)."""
    n = h.n_channels
    labels = [lab or f"ch{i + 1}" for i, lab in enumerate(h.labels)] or [f"ch{i + 1}" for i in range(n)]
    types = [t or h.type.lower() or "misc" for t in h.types] or [h.type.lower() or "misc"] * n
    string = h.channel_format == "string"
    raw_units = _declared_units(units, labels, types, h.units or ("",) * n)
    # unit_mul qualifies FIFF codes given as integers (MNE's convention), never unit text
    canon = [resolve_unit(u, t, unit_mul if isinstance(u, int) else 0) for u, t in zip(raw_units, types)]
    picks = list(range(n)) if channels is None else [_channel_index(ch, labels, h.name) for ch in channels]
    out_units = [canon[i] for i in picks]
    scale = np.ones(len(picks))
    if to_units is not None:
        target = parse_unit(to_units)[0]
        matched = [j for j, u in enumerate(out_units) if u != "a.u." and parse_unit(u)[0] == target]
        if not matched:
            raise ConfigError(f"to_units={to_units!r} must match the quantity of at least one channel of stream "
                              f"{h.name!r}; its units are {sorted(set(out_units))}. Declare the stream's units "
                              "with units=... (e.g. units='V'), or drop to_units.")
        for j in matched:
            scale[j] = scale_factor(out_units[j], to_units)
            out_units[j] = to_units
    desc = dict(h.desc) | {"lsl": {"hostname": h.hostname, "uid": h.uid, "channel_format": h.channel_format,
                                   "created_at": h.created_at}}
    info = StreamInfo(name=h.name, type=h.type, source_id=h.source_id, sfreq=h.sfreq,
                      ch_names=tuple(labels[i] for i in picks), ch_types=tuple(types[i] for i in picks),
                      units=tuple(out_units), dtype="string" if string else "float32", desc=desc)
    return ReadPlan(info=info, dtype=FORMAT_DTYPES.get(h.channel_format, np.float32), string=string,
                    picks=None if picks == list(range(n)) else np.asarray(picks),
                    scale=None if np.all(scale == 1.0) else scale,
                    counter_idx=None if string else _counter_index(counter_channel, labels, types))


def _channel_index(ch: str, labels: list[str], stream: str) -> int:
    if ch in labels:
        return labels.index(ch)
    close = difflib.get_close_matches(ch, labels, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ConfigError(f"channels must name channels of stream {stream!r}; got {ch!r}, which it does not have.{hint} "
                      f"Its channels: {', '.join(labels[:70])}.")


def _declared_units(given: UnitSpec, labels: list[str], types: list[str], declared: Sequence[str]) -> list[Any]:
    units: list[Any] = list(declared)
    if given is None:
        return units
    if isinstance(given, (str, int)) and not isinstance(given, bool):
        return [given if t != COUNTER_TYPE else u for u, t in zip(units, types)]  # counters keep theirs
    if isinstance(given, Mapping):
        for ch, u in given.items():
            if ch not in labels:
                raise ConfigError(f"units must map channels of the stream; got channel {ch!r}, which it does not "
                                  f"have. Its channels: {', '.join(labels[:70])}.")
            units[labels.index(ch)] = u
        return units
    if isinstance(given, Sequence) and len(given) == len(labels):
        return list(given)
    fail("units", f"be one unit, a list of {len(labels)} units (one per channel) or a {{channel: unit}} mapping", given)


def _counter_index(spec: str | int | bool | None, labels: list[str], types: list[str]) -> int | None:
    if spec is False:
        return None
    if spec is None:  # edgestream's convention: the channel of type "counter"
        return types.index(COUNTER_TYPE) if COUNTER_TYPE in types else None
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 0 <= spec < len(labels):
            fail("counter_channel", f"be a channel index in [0, {len(labels) - 1}]", spec)
        return spec
    if spec not in labels:
        fail("counter_channel", "name a channel of the stream", spec, f"Its channels: {', '.join(labels[:70])}.")
    return labels.index(spec)
