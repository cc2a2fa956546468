"""Load continuous recordings with their events: XDF (pyxdf), FIF/EDF/BDF/GDF (MNE).

A :class:`Recording` is one continuous multichannel signal with named events on its own
clock, ready to be run through the same DSP stages as a live stream
(:func:`edgestream.train.epochs.preprocess`) and cut into trials::

    recs = load_recordings("calib.xdf")            # or a directory, searched recursively
    recs = load_recordings("data/eegmmidb/S001", include="*R0[48].edf")

EEG channels are converted to microvolts (the unit live EEG streams carry); channel names
lose the trailing dots of PhysioNet's EDF files (``"C3.."`` → ``"C3"``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgestream.core.checks import described, fail
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import ConfigError, DataError
from edgestream.core.units import canonical, scale_factor

log = logging.getLogger(__name__)

EEG_UNIT = "uV"
# Channel types that are bookkeeping, never signal (edgestream outlets end with a counter channel).
NON_SIGNAL_TYPES = ("counter", "marker", "markers", "stim", "trigger")


@dataclasses.dataclass
class Recording:
    """One continuous recording and its events.

    Attributes
    ----------
    data : ndarray, shape (n_times, n_channels)
        float32 samples; EEG in µV.
    timestamps : ndarray, shape (n_times,)
        float64 seconds (the LSL clock for XDF; seconds from the start for files).
    sfreq : float
        Nominal sampling rate in Hz.
    ch_names : tuple of str
    events : list of (float, str)
        Event onsets (seconds, same clock as ``timestamps``) and their names.
    path : Path
    units : tuple of str
        Canonical unit per channel.
    """

    data: np.ndarray
    timestamps: np.ndarray
    sfreq: float
    ch_names: tuple[str, ...]
    events: list[tuple[float, str]]
    path: Path
    units: tuple[str, ...] = ()
    stream_name: str = ""

    def stream_info(self) -> StreamInfo:
        """The :class:`StreamInfo` a live stream of this recording would carry."""
        return StreamInfo(
            name=self.stream_name or self.path.stem, type="EEG", source_id=f"file:{self.path.name}", sfreq=self.sfreq,
            ch_names=self.ch_names, ch_types=("eeg",) * len(self.ch_names), units=self.units or (),
        )

    def as_chunk(self) -> Chunk:
        return Chunk.make(self.data, self.timestamps, self.stream_info())

    def event_names(self) -> dict[str, int]:
        """Event name → count."""
        counts: dict[str, int] = {}
        for _, name in self.events:
            counts[name] = counts.get(name, 0) + 1
        return counts


def clean_channel_name(name: str) -> str:
    """PhysioNet EDF labels pad names with dots (``"Fc5."``, ``"C3.."``); strip them."""
    return str(name).strip().rstrip(".") or str(name)


# --- MNE formats -------------------------------------------------------------------------------
def load_mne(path: Path) -> Recording:
    """FIF/EDF/BDF/GDF via MNE (EEG channels, bad ones excluded); events from annotations, else the stim channel.

    Stim-channel events are named by their integer code (``"1"``, ``"32"``).
    """
    import mne

    try:
        raw = mne.io.read_raw(path, preload=True, verbose="error")
    except Exception as exc:  # MNE raises many types for unreadable files
        raise ConfigError(f"recording {str(path)!r} must be readable by MNE; reading failed ({type(exc).__name__}: "
                          f"{str(exc)[:200]}).") from None
    events = _mne_events(raw, mne)
    pick_idx = mne.pick_types(raw.info, eeg=True, exclude="bads")
    if len(pick_idx) == 0:
        fail(f"recording {str(path)!r}", "contain EEG channels", described(f"channel types {sorted(set(raw.get_channel_types()))}"),
             "Set the channel types in the file (e.g. raw.set_channel_types) before training.", DataError)
    data = raw.get_data(picks=pick_idx).T  # (n_times, C) in SI units (V)
    units = []
    for i in pick_idx:
        ch = raw.info["chs"][i]
        unit = canonical(int(ch["unit"]), int(ch.get("unit_mul", 0)))
        units.append(unit)
    factors = np.array([scale_factor(u, EEG_UNIT) if u.endswith("V") else 1.0 for u in units])
    out_units = tuple(EEG_UNIT if u.endswith("V") else u for u in units)
    return Recording(
        data=(data * factors).astype(np.float32),
        timestamps=raw.times.astype(np.float64),
        sfreq=float(raw.info["sfreq"]),
        ch_names=tuple(clean_channel_name(raw.ch_names[i]) for i in pick_idx),
        events=events,
        path=path,
        units=out_units,
    )


def _mne_events(raw: Any, mne: Any) -> list[tuple[float, str]]:
    if len(raw.annotations):
        samples, mapping = mne.events_from_annotations(raw, verbose="error")
        names = {code: name for name, code in mapping.items()}
        return [(float((s - raw.first_samp) / raw.info["sfreq"]), names[c]) for s, _, c in samples]
    stim = mne.pick_types(raw.info, stim=True)
    if len(stim) == 0:
        return []
    found = mne.find_events(raw, shortest_event=1, verbose="error")
    return [(float((s - raw.first_samp) / raw.info["sfreq"]), str(int(c))) for s, _, c in found]


# --- XDF -----------------------------------------------------------------------------------------
def _xdf_field(info: dict[str, Any], key: str, default: str = "") -> str:
    value = info.get(key, [default])
    return str(value[0] if isinstance(value, list) and value else value) if value is not None else default


def _xdf_channels(stream: dict[str, Any]) -> list[dict[str, str]]:
    """Per-channel ``label``/``unit``/``type`` from ``desc/channels/channel`` (may be missing)."""
    try:
        chans = stream["info"]["desc"][0]["channels"][0]["channel"]
    except (KeyError, IndexError, TypeError):
        return []
    return [{k: (c.get(k) or [""])[0] or "" for k in ("label", "unit", "type")} for c in chans]


def load_xdf(path: Path, stream: str | None = None, marker_stream: str | None = None) -> Recording:
    """XDF: one numeric signal stream plus one or more string marker streams.

    ``stream`` / ``marker_stream`` select streams by name; by default the signal stream is the
    one of type EEG and markers come from every string-valued stream.
    """
    import pyxdf

    try:
        streams, _ = pyxdf.load_xdf(str(path))
    except Exception as exc:
        raise ConfigError(f"recording {str(path)!r} must be a readable XDF file; pyxdf failed ({type(exc).__name__}: "
                          f"{str(exc)[:200]}).") from None
    described_streams = [f"{_xdf_field(s['info'], 'name')!r} ({_xdf_field(s['info'], 'type')}, "
                         f"{_xdf_field(s['info'], 'channel_format')})" for s in streams]
    numeric = [s for s in streams if _xdf_field(s["info"], "channel_format") != "string"]
    strings = [s for s in streams if _xdf_field(s["info"], "channel_format") == "string"]
    if stream is not None:
        signal = [s for s in numeric if _xdf_field(s["info"], "name") == stream]
    else:
        signal = [s for s in numeric if _xdf_field(s["info"], "type").lower() == "eeg"] or numeric
    if len(signal) != 1:
        fail("stream", f"select exactly one numeric stream of {str(path)!r}", stream or described("(type EEG)"),
             f"Streams in the file: {', '.join(described_streams)}. Pass --stream NAME.")
    if marker_stream is not None:
        strings = [s for s in strings if _xdf_field(s["info"], "name") == marker_stream]
    if not strings:
        fail("marker_stream", f"name a string marker stream of {str(path)!r}", marker_stream or described("(any)"),
             f"Streams in the file: {', '.join(described_streams)}. Record the marker stream together with the EEG.")
    sig = signal[0]
    values = np.asarray(sig["time_series"], dtype=np.float64)
    stamps = np.asarray(sig["time_stamps"], dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 2:
        fail("stream", f"hold samples in {str(path)!r}", described(f"shape {values.shape}"), "The EEG stream is empty.",
             DataError)
    chans = _xdf_channels(sig)
    n = values.shape[1]
    labels = [c["label"] or f"ch{i + 1}" for i, c in enumerate(chans)] if len(chans) == n else [f"ch{i + 1}" for i in range(n)]
    types = [c["type"].lower() for c in chans] if len(chans) == n else ["eeg"] * n
    units = [c["unit"] for c in chans] if len(chans) == n else [""] * n
    keep = [i for i, t in enumerate(types) if t not in NON_SIGNAL_TYPES]
    if any(t == "eeg" for t in types):
        keep = [i for i in keep if types[i] == "eeg"]
    factors, out_units = [], []
    for i in keep:
        try:
            unit = canonical(units[i]) if units[i] else EEG_UNIT  # undeclared EEG units are taken as µV
        except ConfigError:
            unit = units[i]
        factors.append(scale_factor(unit, EEG_UNIT) if unit.endswith("V") and unit != "a.u." else 1.0)
        out_units.append(EEG_UNIT if unit.endswith("V") and unit != "a.u." else unit)
    events: list[tuple[float, str]] = []
    for s in strings:
        for t, row in zip(np.asarray(s["time_stamps"], dtype=np.float64), s["time_series"]):
            events.append((float(t), str(row[0] if isinstance(row, (list, tuple, np.ndarray)) else row)))
    events.sort(key=lambda e: e[0])
    sfreq = float(_xdf_field(sig["info"], "nominal_srate", "0") or 0)
    if sfreq <= 0:
        sfreq = float((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return Recording(
        data=(values[:, keep] * np.asarray(factors)).astype(np.float32),
        timestamps=stamps,
        sfreq=sfreq,
        ch_names=tuple(clean_channel_name(labels[i]) for i in keep),
        events=events,
        path=path,
        units=tuple(out_units),
        stream_name=_xdf_field(sig["info"], "name"),
    )


# Loaders by file suffix (lower-case; longest match wins).
LOADERS: dict[str, Callable[..., Recording]] = {
    ".xdf": load_xdf, ".xdfz": load_xdf,
    ".fif": load_mne, ".fif.gz": load_mne, ".edf": load_mne, ".bdf": load_mne, ".gdf": load_mne,
}


def _loader(path: Path) -> Callable[..., Recording] | None:
    name = path.name.lower()
    for suffix in sorted(LOADERS, key=len, reverse=True):
        if name.endswith(suffix):
            return LOADERS[suffix]
    return None


def find_recordings(data: str | Path, include: str | None = None) -> list[Path]:
    """``data`` itself if it is a file, else every supported file below it (sorted), filtered by ``include``."""
    path = Path(data).expanduser()
    if path.is_file():
        if _loader(path) is None:
            fail("data", f"be a recording of a supported format ({', '.join(sorted(LOADERS))})", str(path))
        return [path]
    if not path.is_dir():
        fail("data", "be an existing recording file or directory", str(path), "Pass --data FILE|DIR.")
    found = sorted(p for p in path.rglob("*") if p.is_file() and _loader(p) is not None)
    if include:
        found = [p for p in found if fnmatch.fnmatch(p.name, include) or fnmatch.fnmatch(str(p.relative_to(path)), include)]
    if not found:
        fail("data", f"contain recordings ({', '.join(sorted(LOADERS))})", str(path),
             f"No file matched{f' include={include!r}' if include else ''}; check the directory and pattern.")
    return found


def load_recording(path: str | Path, **options: Any) -> Recording:
    """Load one file with the loader for its suffix (``options`` go to that loader)."""
    path = Path(path)
    loader = _loader(path)
    if loader is None:
        fail("data", f"be a recording of a supported format ({', '.join(sorted(LOADERS))})", str(path))
    import inspect

    accepted = inspect.signature(loader).parameters
    return loader(path, **{k: v for k, v in options.items() if k in accepted and v is not None})


def load_recordings(data: str | Path | Sequence[str | Path], include: str | None = None, **options: Any) -> list[Recording]:
    """Every recording under ``data`` (a file, a directory, or a list of either)."""
    items = [data] if isinstance(data, (str, Path)) else list(data)
    paths = [p for item in items for p in find_recordings(item, include)]
    recordings = [load_recording(p, **options) for p in paths]
    log.info("loaded %d recording(s): %s", len(recordings), ", ".join(p.name for p in paths))
    return recordings
