"""How a CSI report is laid out: in memory, on an LSL stream, and in the stream's metadata.

A report is the channel of every base-station antenna on every subcarrier: complex
``(n_antennas, n_subcarriers)``. On a stream (and at the model input) it is real, antenna-major,
with real and imaginary parts interleaved per subcarrier::

    [a0 Re k0, a0 Im k0, a0 Re k1, a0 Im k1, ..., a0 Im k(K-1), a1 Re k0, ...]

so one antenna row is ``2 K`` consecutive values, exactly the model's per-row input
(``[Re0, Im0, Re1, Im1, ...]``). The layout travels in the stream description under
``desc["csi"]`` (XDF ``desc/csi``) so a consumer never guesses it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgestream.core.checks import check_number
from edgestream.core.chunk import StreamInfo
from edgestream.core.errors import ValidationError

LAYOUT = "antenna,subcarrier,reim"  # axis order of the flattened report, slowest first


def interleave(h: Any) -> np.ndarray:
    """Complex ``(..., K)`` → real float32 ``(..., 2K)`` as ``[Re0, Im0, Re1, Im1, ...]``."""
    h = np.asarray(h)
    out = np.empty(h.shape[:-1] + (2 * h.shape[-1],), dtype=np.float32)
    out[..., 0::2] = h.real
    out[..., 1::2] = h.imag
    return out


def deinterleave(x: Any) -> np.ndarray:
    """Real ``(..., 2K)`` ``[Re0, Im0, ...]`` → complex64 ``(..., K)``."""
    x = np.asarray(x, dtype=np.float32)
    if x.shape[-1] % 2:
        raise ValidationError(
            f"interleaved CSI must have an even last axis (Re/Im pairs); got shape {x.shape}. "
            "Pass values laid out as [Re0, Im0, Re1, Im1, ...]."
        )
    return (x[..., 0::2] + 1j * x[..., 1::2]).astype(np.complex64)


@dataclasses.dataclass(frozen=True)
class CSILayout:
    """Shape and physical meaning of the reports of one CSI stream."""

    n_antennas: int  # base-station antennas (rows of a report)
    n_subcarriers: int  # subcarriers per antenna
    subcarrier_spacing: float = 30e3  # Hz
    carrier_frequency: float = 2.4e9  # Hz
    report_rate: float = 400.0  # reports per second (one every 5 slots at 30 kHz SCS)
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # scenario metadata (CDL model, speed, ...)

    def __post_init__(self) -> None:
        check_number(self.n_antennas, "n_antennas", low=1, integer=True)
        check_number(self.n_subcarriers, "n_subcarriers", low=1, integer=True)

    @property
    def row_size(self) -> int:
        """Real values per antenna row (2 × subcarriers)."""
        return 2 * self.n_subcarriers

    @property
    def n_values(self) -> int:
        """Real values per report (antennas × subcarriers × {re, im})."""
        return self.n_antennas * self.row_size

    def ch_names(self, prefix: str = "") -> list[str]:
        """Channel labels in stream order, e.g. ``a00_k000_re``."""
        aw = max(2, len(str(self.n_antennas - 1)))
        kw = max(3, len(str(self.n_subcarriers - 1)))
        return [
            f"{prefix}a{a:0{aw}d}_k{k:0{kw}d}_{part}"
            for a in range(self.n_antennas)
            for k in range(self.n_subcarriers)
            for part in ("re", "im")
        ]

    def to_desc(self) -> dict[str, Any]:
        """The ``desc/csi`` block of a stream carrying these reports."""
        return {
            "layout": LAYOUT,
            "n_antennas": self.n_antennas,
            "n_subcarriers": self.n_subcarriers,
            "subcarrier_spacing": self.subcarrier_spacing,
            "carrier_frequency": self.carrier_frequency,
            "report_rate": self.report_rate,
            **dict(self.extra),
        }

    @classmethod
    def from_desc(cls, desc: Mapping[str, Any]) -> CSILayout:
        """Parse a ``desc/csi`` block (values may be strings when it came through LSL's XML)."""
        try:
            return cls(
                n_antennas=int(float(desc["n_antennas"])),
                n_subcarriers=int(float(desc["n_subcarriers"])),
                subcarrier_spacing=float(desc.get("subcarrier_spacing", 30e3)),
                carrier_frequency=float(desc.get("carrier_frequency", 2.4e9)),
                report_rate=float(desc.get("report_rate", 400.0)),
                extra={k: v for k, v in desc.items() if k not in _CORE_KEYS},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(
                f"desc/csi must give integer n_antennas and n_subcarriers; got {dict(desc)!r} ({exc}). "
                "Publish the stream with edgestream's CSI layout metadata, or pass n_antennas/n_subcarriers."
            ) from None

    def to_reports(self, data: np.ndarray) -> np.ndarray:
        """Stream rows ``(n, n_values)`` → ``(n, n_antennas, 2 K)`` (a view when possible)."""
        return np.asarray(data).reshape(-1, self.n_antennas, self.row_size)


_CORE_KEYS = ("layout", "n_antennas", "n_subcarriers", "subcarrier_spacing", "carrier_frequency", "report_rate")


@dataclasses.dataclass(frozen=True)
class CSIColumns:
    """Where the CSI values and the optional sample counter sit among a stream's channels."""

    layout: CSILayout
    start: int  # first CSI channel (the block is contiguous)
    counter: int | None  # index of the 'counter' channel, if the producer sends one


def locate_csi(info: StreamInfo, n_antennas: int | None = None, n_subcarriers: int | None = None) -> CSIColumns:
    """Find the CSI block of ``info`` from its ``desc['csi']`` (or the explicit sizes).

    Raises :class:`ValidationError` when the channel count does not match the layout.
    """
    desc = info.desc.get("csi") if isinstance(info.desc, Mapping) else None
    if n_antennas is not None and n_subcarriers is not None:
        base = CSILayout.from_desc(desc) if isinstance(desc, Mapping) and "n_antennas" in desc else None
        layout = CSILayout(
            n_antennas, n_subcarriers,
            **({} if base is None else {
                "subcarrier_spacing": base.subcarrier_spacing, "carrier_frequency": base.carrier_frequency,
                "report_rate": base.report_rate, "extra": base.extra,
            }),
        )
    elif isinstance(desc, Mapping):
        layout = CSILayout.from_desc(desc)
    else:
        raise ValidationError(
            f"stream {info.name!r} must describe its CSI layout in desc['csi'] (n_antennas, n_subcarriers); got "
            f"desc keys {sorted(info.desc) if isinstance(info.desc, Mapping) else info.desc!r}. Publish it with "
            "`edgestream simulate csi`'s metadata, or set n_antennas and n_subcarriers on the stage."
        )
    from edgestream.core.lslmeta import COUNTER_TYPE

    counters = [i for i, t in enumerate(info.ch_types) if t == COUNTER_TYPE]
    counter = counters[-1] if counters else None
    n_csi = info.n_channels - len(counters)
    if n_csi != layout.n_values:
        raise ValidationError(
            f"stream {info.name!r} must carry {layout.n_values} CSI channels ({layout.n_antennas} antennas × "
            f"{layout.n_subcarriers} subcarriers × re/im) besides its counter; got {n_csi}. Check n_antennas and "
            "n_subcarriers against the producer."
        )
    start = 0 if counter != 0 else 1
    return CSIColumns(layout, start, counter)
