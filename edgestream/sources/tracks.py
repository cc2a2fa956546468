"""Recordings as replayable tracks: every stream of a file with its own relative timing.

* FIF / EDF / BDF / GDF (MNE): one signal track with every channel (EEG-like channels in µV,
  other channels in their SI unit from the file), plus a ``Markers`` track from the annotations
  (or, without annotations, from the events of the stim channels).
* XDF (pyxdf): one track per stream of the file, in its original channel format, with the
  original timestamps made relative to the earliest sample of the file.

Readers are chosen by file suffix from :data:`READERS`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgestream.core.checks import described, fail
from edgestream.core.chunk import StreamInfo
from edgestream.core.errors import ConfigError
from edgestream.core.lslmeta import FORMAT_DTYPES, resolve_unit
from edgestream.core.units import canonical, scale_factor

log = logging.getLogger(__name__)

# MNE channel types whose values are potentials and are published in µV
MICROVOLT_TYPES = ("eeg", "eog", "ecg", "emg", "seeg", "ecog", "dbs", "bio")


@dataclasses.dataclass
class Track:
    """One stream of a recording.

    Attributes
    ----------
    info : StreamInfo
        Name, type, nominal rate (Hz; 0 for event streams), channels, units, dtype.
    data : ndarray, shape (n_times, n_channels)
        Samples: numeric in ``channel_format``'s dtype, or an object array of str.
    times : ndarray, shape (n_times,)
        float64 seconds from the start of the recording.
    channel_format : str
        LSL format to republish with ("float32", "double64", "int16", ..., "string").
    """

    info: StreamInfo
    data: np.ndarray
    times: np.ndarray
    channel_format: str

    @property
    def end(self) -> float:
        """Seconds from the recording's start to just after the last sample."""
        if not self.times.size:
            return 0.0
        return float(self.times[-1]) + (1.0 / self.info.sfreq if self.info.sfreq > 0 else 0.0)


def _clean_label(name: str) -> str:
    # PhysioNet EDF labels pad names with dots ("Fc5.", "C3..")
    return str(name).strip().rstrip(".") or str(name)


def read_mne(path: Path, picks: Any = None) -> list[Track]:
    """FIF/EDF/BDF/GDF: the signal (all channels, or ``picks`` as MNE understands them) and its markers."""
    import mne

    try:
        raw = mne.io.read_raw(path, preload=True, verbose="error")
    except Exception as exc:  # MNE raises many exception types for unreadable files
        raise ConfigError(f"file {str(path)!r} must be readable by MNE; reading failed ({type(exc).__name__}: "
                          f"{str(exc)[:200]}). Check the file is complete and of the format its suffix says.") from None
    markers = _mne_markers(raw, mne)
    if picks is not None:
        try:
            raw.pick(picks)
        except Exception as exc:
            raise ConfigError(f"picks must select channels of {path.name!r} (MNE types such as 'eeg' or channel names); "
                              f"got {picks!r} ({exc}).") from None
    types = raw.get_channel_types()
    data = raw.get_data().T  # (n_times, n_channels), SI units
    units, factors = [], np.ones(len(types))
    for i, ch in enumerate(raw.info["chs"]):
        unit = canonical(int(ch["unit"]), int(ch.get("unit_mul", 0)))
        if types[i] in MICROVOLT_TYPES and unit.endswith("V"):
            factors[i] = scale_factor(unit, "uV")
            unit = "uV"
        units.append(unit)
    sfreq = float(raw.info["sfreq"])
    stype = "EEG" if "eeg" in types else (types[0].upper() if types else "EEG")
    info = StreamInfo(name=path.stem, type=stype, source_id="", sfreq=sfreq,
                      ch_names=tuple(_clean_label(c) for c in raw.ch_names), ch_types=tuple(types), units=tuple(units),
                      desc={"recording": {"file": path.name, "format": path.suffix.lstrip(".").lower()}})
    tracks = [Track(info, (data * factors).astype(np.float32), np.arange(data.shape[0]) / sfreq, "float32")]
    if markers:
        times = np.asarray([t for t, _ in markers])
        labels = np.asarray([[label] for _, label in markers], dtype=object)
        tracks.append(Track(StreamInfo(name=f"{path.stem}-markers", type="Markers", source_id="", sfreq=0.0,
                                       ch_names=("marker",), ch_types=("marker",), dtype="string"),
                            labels, times, "string"))
    return tracks


def _mne_markers(raw: Any, mne: Any) -> list[tuple[float, str]]:
    """(seconds from the first sample, label): annotations, else stim-channel events by code."""
    sfreq = raw.info["sfreq"]
    if len(raw.annotations):
        ann = raw.annotations
        idx = raw.time_as_index(ann.onset, use_rounding=True, origin=ann.orig_time)
        return [(float(i / sfreq), str(d)) for i, d in zip(idx, ann.description) if 0 <= i < raw.n_times]
    if len(mne.pick_types(raw.info, stim=True)) == 0:
        return []
    events = mne.find_events(raw, shortest_event=1, verbose="error")
    return [(float((s - raw.first_samp) / sfreq), str(int(c))) for s, _, c in events]


def _first(value: Any, default: str = "") -> str:
    """pyxdf wraps every header value in a one-element list."""
    while isinstance(value, list):
        value = value[0] if value else default
    return default if value is None else str(value)


def _plain(value: Any) -> Any:
    """pyxdf's desc (dicts of one-element lists) → plain nested dicts, lists and strings."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_plain(v) for v in value]
        return items[0] if len(items) == 1 else items
    return "" if value is None else value


def read_xdf(path: Path, picks: Any = None) -> list[Track]:
    """XDF: every stream with samples, original channel format, timing relative to the file's first sample."""
    import pyxdf

    if picks is not None:
        fail("picks", "be None for XDF files (every stream is replayed as recorded)", picks)
    try:
        streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=True, dejitter_timestamps=False, verbose=False)
    except Exception as exc:
        raise ConfigError(f"file {str(path)!r} must be a readable XDF file; pyxdf failed ({type(exc).__name__}: "
                          f"{str(exc)[:200]}).") from None
    streams = [s for s in streams if len(s["time_stamps"])]
    if not streams:
        fail(f"XDF file {str(path)!r}", "contain at least one stream with samples", described("no samples"))
    t_start = min(float(s["time_stamps"][0]) for s in streams)
    tracks = []
    for s in streams:
        hdr = s["info"]
        fmt = _first(hdr.get("channel_format"), "float32")
        n = int(_first(hdr.get("channel_count"), "1"))
        desc = _plain(hdr.get("desc") or {})
        desc = desc if isinstance(desc, dict) else {}
        chans = desc.pop("channels", {}) or {}
        chans = chans.get("channel", []) if isinstance(chans, dict) else []
        chans = [chans] if isinstance(chans, dict) else chans
        labels = [str(c.get("label", "")) or f"ch{i + 1}" for i, c in enumerate(chans)] if len(chans) == n else \
            [f"ch{i + 1}" for i in range(n)]
        stype = _first(hdr.get("type"))
        types = [str(c.get("type", "")).lower() or stype.lower() for c in chans] if len(chans) == n else [stype.lower()] * n
        units = [resolve_unit(str(c.get("unit", "")), t) for c, t in zip(chans, types)] if len(chans) == n else ["a.u."] * n
        if fmt == "string":
            data = np.asarray([[str(v) for v in row] for row in s["time_series"]], dtype=object).reshape(-1, n)
        else:
            data = np.asarray(s["time_series"], dtype=FORMAT_DTYPES.get(fmt, np.float32)).reshape(-1, n)
        info = StreamInfo(name=_first(hdr.get("name")) or path.stem, type=stype, source_id=_first(hdr.get("source_id")),
                          sfreq=float(_first(hdr.get("nominal_srate"), "0") or 0.0), ch_names=tuple(labels),
                          ch_types=tuple(types), units=tuple(units), dtype="string" if fmt == "string" else "float32",
                          desc=desc)
        times = np.asarray(s["time_stamps"], dtype=np.float64) - t_start
        tracks.append(Track(info, data, times, fmt))
    return tracks


# Readers by lower-case file suffix (longest match wins)
READERS: dict[str, Callable[..., list[Track]]] = {
    ".fif": read_mne, ".fif.gz": read_mne, ".edf": read_mne, ".bdf": read_mne, ".gdf": read_mne,
    ".xdf": read_xdf, ".xdfz": read_xdf,
}


def load_tracks(path: str | Path, picks: Any = None) -> list[Track]:
    """Every replayable stream of ``path`` (see :data:`READERS` for the formats)."""
    path = Path(path).expanduser()
    if not path.is_file():
        fail("file", "be an existing recording", str(path), "Check the path (FIF, EDF, BDF, GDF or XDF).")
    name = path.name.lower()
    reader = next((READERS[s] for s in sorted(READERS, key=len, reverse=True) if name.endswith(s)), None)
    if reader is None:
        fail("file", f"have a supported suffix ({', '.join(sorted(READERS))})", path.name,
             "Convert it with MNE (raw.save('x.fif')) or record XDF with LabRecorder.")
    return reader(path, picks=picks)
