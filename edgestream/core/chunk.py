"""The one message type: :class:`Chunk`, and the stream description it carries, :class:`StreamInfo`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgestream.core.checks import check_number, check_type, fail
from edgestream.core.errors import DataError

IRREGULAR = 0.0  # LSL's nominal rate for irregular (event) streams


@dataclasses.dataclass(frozen=True)
class StreamInfo:
    """Static description of a stream, fixed for its lifetime.

    Parameters mirror an LSL stream header plus the per-channel metadata of XDF files.
    """

    name: str  # human-readable stream name, e.g. "edgestream-sim-eeg"
    type: str  # LSL content type, e.g. "EEG", "CSI", "Markers", "Latency"
    source_id: str  # unique, stable identifier of the producer; "" when unknown
    sfreq: float  # nominal rate in Hz; 0.0 (IRREGULAR) for event streams
    ch_names: tuple[str, ...]  # one label per channel
    ch_types: tuple[str, ...] = ()  # per channel, e.g. "eeg", "misc", "counter"; defaults to type.lower()
    units: tuple[str, ...] = ()  # per channel, canonical strings ("uV", "V", "a.u.", "dB", "s")
    dtype: str = "float32"  # sample format: "float32" for numeric streams, "string" for markers
    window: int | None = None  # when set, every chunk is one window of exactly this many samples
    desc: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # extra metadata (desc/ block)

    def __post_init__(self) -> None:
        check_type(self.name, str, "StreamInfo.name")
        check_number(self.sfreq, "StreamInfo.sfreq", low=0.0, fix="Use 0.0 for irregular streams.")
        names = tuple(str(c) for c in self.ch_names)
        if not names:
            fail("StreamInfo.ch_names", "name at least one channel", self.ch_names)
        object.__setattr__(self, "ch_names", names)
        n = len(names)
        types = tuple(self.ch_types) or (self.type.lower(),) * n
        units = tuple(self.units) or ("a.u.",) * n
        for field, values in (("ch_types", types), ("units", units)):
            if len(values) != n:
                fail(f"StreamInfo.{field}", f"have one entry per channel ({n})", len(values))
        object.__setattr__(self, "ch_types", types)
        object.__setattr__(self, "units", units)
        if self.window is not None:
            check_number(self.window, "StreamInfo.window", low=1, integer=True)

    @property
    def n_channels(self) -> int:
        return len(self.ch_names)

    @property
    def regular(self) -> bool:
        """True for streams with a nominal sampling rate (not event streams)."""
        return self.sfreq > 0

    def replace(self, **changes: Any) -> StreamInfo:
        """Return a copy with fields replaced (channel metadata re-defaulted if names change)."""
        if "ch_names" in changes:
            changes.setdefault("ch_types", ())
            changes.setdefault("units", ())
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["ch_names"] = list(self.ch_names)
        out["ch_types"] = list(self.ch_types)
        out["units"] = list(self.units)
        out["desc"] = dict(self.desc)
        return out


@dataclasses.dataclass(slots=True)
class Chunk:
    """A block of consecutive samples of one stream.

    Attributes
    ----------
    data : ndarray, shape (n_times, n_channels)
        float32 samples (object array of str for marker streams), in ``info.units``.
    timestamps : ndarray, shape (n_times,)
        float64 seconds on the LSL clock (``pylsl.local_clock()``). Derived chunks carry the
        timestamp of the newest input sample each output sample depends on, so latency is
        ``local_clock() - timestamps[-1]`` anywhere downstream.
    info : StreamInfo
    gap : bool
        Samples were lost immediately before this chunk (overflow, reconnect, counter gap);
        stateful stages apply their gap policy.
    warming : bool
        Outputs come from state that has not converged yet (after start or a reset).
    """

    data: np.ndarray
    timestamps: np.ndarray
    info: StreamInfo
    gap: bool = False
    warming: bool = False

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.timestamps.ndim != 1 or self.data.shape[0] != self.timestamps.shape[0]:
            raise DataError(
                "Chunk data must be (n_times, n_channels) with one timestamp per row; got data shape "
                f"{self.data.shape} and timestamps shape {self.timestamps.shape}. Reshape samples to "
                "(n_times, n_channels)."
            )
        if self.data.shape[1] != self.info.n_channels:
            raise DataError(
                f"Chunk data must have {self.info.n_channels} channels as its StreamInfo "
                f"{self.info.name!r} declares; got {self.data.shape[1]}. Check the stream's channel count."
            )

    @property
    def n_times(self) -> int:
        return int(self.data.shape[0])

    @property
    def newest(self) -> float:
        """Timestamp of the newest sample (NaN for an empty chunk)."""
        return float(self.timestamps[-1]) if self.timestamps.size else float("nan")

    @classmethod
    def make(
        cls,
        data: Any,
        timestamps: Sequence[float] | np.ndarray,
        info: StreamInfo,
        *,
        gap: bool = False,
        warming: bool = False,
    ) -> Chunk:
        """Build a chunk from array-likes, converting dtypes (float32 data, float64 stamps)."""
        if info.dtype == "string":
            arr = np.asarray(data, dtype=object).reshape(-1, info.n_channels)
        else:
            arr = np.ascontiguousarray(data, dtype=np.float32)
            if arr.ndim == 1:
                arr = arr.reshape(-1, info.n_channels)
        return cls(arr, np.asarray(timestamps, dtype=np.float64).reshape(-1), info, gap, warming)

    def empty_like(self) -> Chunk:
        return Chunk(self.data[:0], self.timestamps[:0], self.info)


def concat(chunks: Sequence[Chunk]) -> Chunk:
    """Concatenate chunks of one stream along time (flags OR-ed)."""
    if not chunks:
        raise DataError("concat needs at least one chunk; got an empty sequence.")
    info = chunks[0].info
    return Chunk(
        np.concatenate([c.data for c in chunks]),
        np.concatenate([c.timestamps for c in chunks]),
        info,
        any(c.gap for c in chunks),
        any(c.warming for c in chunks),
    )
