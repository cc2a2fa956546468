"""Finding LSL streams: XPath predicates, the list of visible streams, and how to describe them in errors."""

from __future__ import annotations

from typing import Any

from edgestream.core.lslmeta import parse_header


def _xpath_literal(value: str) -> str:
    return f"'{value}'" if "'" not in value else f'"{value}"'


def build_predicate(name: str | None = None, type: str | None = None, source_id: str | None = None,
                    predicate: str | None = None) -> str:
    """XPath predicate (as LabRecorder writes them) selecting streams by name/type/source_id."""
    parts = [f"{k}={_xpath_literal(v)}" for k, v in (("name", name), ("type", type), ("source_id", source_id)) if v]
    if predicate:
        parts.append(f"({predicate})" if parts else predicate)
    return " and ".join(parts)


def list_streams(timeout: float = 1.0) -> list[dict[str, Any]]:
    """Streams visible now: name, type, source_id, sfreq (Hz), n_channels, channel_format, hostname.

    Waits ``timeout`` seconds for answers (loopback answers in milliseconds, a LAN may need ~1 s).
    """
    import pylsl

    found = pylsl.resolve_streams(wait_time=float(timeout))
    rows = [parse_header(s.as_xml()).summary() for s in found]
    return sorted(rows, key=lambda r: (r["name"], r["source_id"]))


def describe_visible(timeout: float = 0.5) -> str:
    rows = list_streams(timeout)
    if not rows:
        return "no LSL streams are visible"
    shown = [f"{r['name']!r} (type {r['type']!r}, source_id {r['source_id']!r}, {r['n_channels']} ch @ {r['sfreq']:g} Hz)"
             for r in rows[:12]]
    more = f" and {len(rows) - 12} more" if len(rows) > 12 else ""
    return "visible streams: " + "; ".join(shown) + more
