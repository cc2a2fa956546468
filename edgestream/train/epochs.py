"""Trials from recordings: event names → classes, live-pipeline preprocessing, fixed windows.

::

    classes = EventMap.parse("left,right")               # T1/T2 (eegmmidb), 769/770 (GDF) are aliases
    recs = [preprocess(r, [{"kind": "bandpass", "l_freq": 8.0, "h_freq": 30.0}]) for r in load_recordings(d)]
    epochs = make_epochs(recs, classes, window_s=4.0)    # EpochSet: X (N, C, T), y (N,)

Preprocessing runs the pipeline's own DSP stages (``edgestream.core.stage.STAGES``) over each
continuous recording, exactly as they run on the live stream, so a model is trained on the
signal it will see live — causal filters included (an offline zero-phase filter would not
match). Filter state starts fresh in every recording (they are separate sessions).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgestream.core.checks import check_number, check_value, described, fail
from edgestream.core.chunk import concat
from edgestream.core.errors import ConfigError, DataError
from edgestream.core.stage import STAGES, BuildContext, run_stage
from edgestream.train.recordings import Recording

log = logging.getLogger(__name__)

# Class name → marker names that mean it in common datasets (matched case-insensitively).
# eegmmidb runs 3/4/7/8/11/12: T1 = left fist, T2 = right fist (in runs 5/6/9/10/13/14 T1/T2 are
# both fists / both feet: name those explicitly, e.g. "fists=T1,feet=T2"). GDF codes 769–772 are
# the BCI-competition cues (BNCI2014001).
EVENT_ALIASES: dict[str, tuple[str, ...]] = {
    "left": ("T1", "left_hand", "left hand", "769"),
    "right": ("T2", "right_hand", "right hand", "770"),
    "feet": ("foot", "771"),
    "tongue": ("772",),
    "rest": ("T0",),
}


@dataclasses.dataclass(frozen=True)
class EventMap:
    """Ordered classes and the marker names that select each of them."""

    classes: tuple[str, ...]  # class names, index = label
    names: tuple[tuple[str, ...], ...]  # per class, accepted marker names (lower-case)

    @classmethod
    def parse(cls, spec: str | Sequence[str]) -> EventMap:
        """``"left,right"`` (names plus :data:`EVENT_ALIASES`) or ``"left=T1|L,right=T2"`` (explicit)."""
        items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if str(s).strip()]
        if len(items) < 2:
            fail("events", "name at least two classes, comma-separated", spec, "For example --events left,right.")
        classes, names = [], []
        for item in items:
            label, _, explicit = item.partition("=")
            label = label.strip()
            accepted = [n.strip() for n in explicit.split("|") if n.strip()] if explicit else [label, *EVENT_ALIASES.get(label.lower(), ())]
            classes.append(label)
            names.append(tuple(dict.fromkeys(n.lower() for n in accepted)))
        if len(set(classes)) != len(classes):
            fail("events", "name each class once", spec)
        seen: dict[str, str] = {}
        for label, accepted in zip(classes, names):
            for n in accepted:
                if n in seen:
                    fail("events", "map each marker name to one class", spec,
                         f"{n!r} selects both {seen[n]!r} and {label!r}; use explicit names, e.g. {label}={n}.")
                seen[n] = label
        return cls(tuple(classes), tuple(names))

    def label_of(self, marker: str) -> int | None:
        key = marker.strip().lower()
        for i, accepted in enumerate(self.names):
            if key in accepted:
                return i
        return None

    def describe(self) -> dict[str, list[str]]:
        return {c: list(n) for c, n in zip(self.classes, self.names)}


@dataclasses.dataclass
class EpochSet:
    """Labelled fixed-length trials.

    Attributes
    ----------
    X : ndarray, shape (N, C, T)
        float32 trials (channels first, as window models take them).
    y : ndarray, shape (N,)
        int64 class indices into ``classes``.
    groups : ndarray, shape (N,)
        Index of the recording each trial comes from (into ``sources``).
    onsets : ndarray, shape (N,)
        Event onset of each trial, seconds on its recording's clock (chronological order within a group).
    """

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    onsets: np.ndarray
    classes: tuple[str, ...]
    sfreq: float
    ch_names: tuple[str, ...]
    sources: list[str]
    tmin: float = 0.0
    dropped: int = 0  # events whose window ran past the end of the recording
    units: tuple[str, ...] = ()  # canonical unit per channel ("uV"), as the recordings declared them

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_times(self) -> int:
        return int(self.X.shape[-1])

    def subset(self, index: np.ndarray) -> EpochSet:
        index = np.asarray(index)
        return dataclasses.replace(self, X=self.X[index], y=self.y[index], groups=self.groups[index], onsets=self.onsets[index])

    def counts(self) -> dict[str, int]:
        return {c: int((self.y == i).sum()) for i, c in enumerate(self.classes)}


def build_stages(specs: Sequence[Mapping[str, Any]], recording: Recording) -> list[Any]:
    """Create and build pipeline stages (``{"kind": ..., **params}``) for a recording's stream."""
    stages, info = [], recording.stream_info()
    for i, spec in enumerate(specs):
        spec = dict(spec)
        kind = spec.pop("kind", None)
        if kind is None:
            fail(f"preprocessing[{i}]", "have a 'kind'", spec, "E.g. {'kind': 'bandpass', 'l_freq': 8, 'h_freq': 30}.")
        stage = STAGES.create(kind, **spec)
        info = stage.build(info, BuildContext(pipeline="train", node=kind))
        if info.window is not None:
            raise ConfigError(
                f"preprocessing stage {kind!r} must keep the stream continuous; it produces windows. Trials are cut "
                "from events by the training code; list only filters (bandpass, notch, ...) here."
            )
        stages.append(stage)
    return stages


def preprocess(recording: Recording, specs: Sequence[Mapping[str, Any]]) -> Recording:
    """Run the live pipeline's DSP stages over a whole recording (fresh state); return the result."""
    if not specs:
        return recording
    chunk = recording.as_chunk()
    for stage in build_stages(specs, recording):
        out, _ = run_stage(stage, [chunk])
        stage.stop()
        chunk = concat(out) if out else chunk.empty_like()
    return dataclasses.replace(
        recording, data=chunk.data, timestamps=chunk.timestamps, sfreq=chunk.info.sfreq, ch_names=chunk.info.ch_names,
        units=chunk.info.units,
    )


def window_samples(window_s: float, sfreq: float) -> int:
    """Samples in a window of ``window_s`` seconds; like the ``window`` stage, it must be whole."""
    window_s = check_number(window_s, "window", low=0, low_inclusive=False)
    n = window_s * sfreq
    if abs(n - round(n)) > 1e-6 or round(n) < 1:
        fail("window", f"be a whole number (>= 1) of samples at {sfreq:g} Hz", described(f"{window_s:g} s = {n:g} samples"),
             f"Choose a multiple of 1/{sfreq:g} s, e.g. {max(1, round(n)) / sfreq:g} s.")
    return int(round(n))


def make_epochs(
    recordings: Sequence[Recording],
    events: EventMap,
    window_s: float,
    *,
    tmin: float = 0.0,
    baseline: tuple[float, float] | None = None,
) -> EpochSet:
    """Cut ``[onset + tmin, onset + tmin + window)`` from every recording for each mapped event.

    Events whose window leaves the recording are dropped and counted (``EpochSet.dropped``);
    a class with no trial at all is an error that lists the event names found.
    ``baseline=(a, b)`` subtracts each channel's mean over ``[onset + a, onset + b)`` seconds.
    """
    if not recordings:
        fail("recordings", "hold at least one recording", recordings)
    first = recordings[0]
    for rec in recordings[1:]:
        if rec.ch_names != first.ch_names or abs(rec.sfreq - first.sfreq) > 1e-6 * first.sfreq:
            raise DataError(
                f"recordings must share channels and rate to be trained on together; {rec.path.name} has "
                f"{len(rec.ch_names)} channels at {rec.sfreq:g} Hz, {first.path.name} has {len(first.ch_names)} at "
                f"{first.sfreq:g} Hz. Train on one montage at a time (--include PATTERN)."
            )
    n_times = window_samples(window_s, first.sfreq)
    xs, ys, groups, onsets = [], [], [], []
    dropped = 0
    for g, rec in enumerate(recordings):
        for onset, name in rec.events:
            label = events.label_of(name)
            if label is None:
                continue
            # first sample at or after onset + tmin, on the recording's own (possibly irregular) clock
            start = int(np.searchsorted(rec.timestamps, onset + tmin - 0.5 / rec.sfreq))
            if start < 0 or start + n_times > rec.data.shape[0]:
                dropped += 1
                continue
            trial = rec.data[start : start + n_times]
            if baseline is not None:
                b0 = int(np.searchsorted(rec.timestamps, onset + baseline[0] - 0.5 / rec.sfreq))
                b1 = int(np.searchsorted(rec.timestamps, onset + baseline[1] - 0.5 / rec.sfreq))
                if b0 < 0 or b1 <= b0:
                    fail("baseline", "cover at least one sample inside the recording", baseline)
                trial = trial - rec.data[b0:b1].mean(axis=0)
            xs.append(trial.T)
            ys.append(label)
            groups.append(g)
            onsets.append(onset)
    y = np.asarray(ys, dtype=np.int64)
    missing = [c for i, c in enumerate(events.classes) if not (y == i).any()]
    if missing:
        found: dict[str, int] = {}
        for rec in recordings:
            for name, count in rec.event_names().items():
                found[name] = found.get(name, 0) + count
        fail("events", "select trials of every class", described(f"no trial for {missing}"),
             f"Event names in the data: {found or '(none)'}. Map them explicitly, e.g. --events left=T1,right=T2.")
    if dropped:
        log.warning("%d event(s) dropped: their %g-s window runs past the end of the recording", dropped, window_s)
    return EpochSet(
        X=np.stack(xs).astype(np.float32), y=y, groups=np.asarray(groups), onsets=np.asarray(onsets, dtype=np.float64),
        classes=events.classes, sfreq=first.sfreq, ch_names=first.ch_names, sources=[str(r.path) for r in recordings],
        tmin=tmin, dropped=dropped, units=tuple(first.units),
    )


def split_train_val(epochs: EpochSet, val_fraction: float, *, seed: int = 0, how: str = "chronological") -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation indices.

    ``how="chronological"``: the last ``val_fraction`` of each class's trials (recording order,
    then onset) — the validation trials come after the training trials, as live trials will.
    ``how="random"``: a seeded random stratified split.
    """
    check_number(val_fraction, "val_fraction", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    check_value(how, ("chronological", "random"), "how")
    rng = np.random.default_rng(seed)
    order = np.lexsort((epochs.onsets, epochs.groups))  # chronological
    train, val = [], []
    for label, name in enumerate(epochs.classes):
        idx = order[epochs.y[order] == label]
        if len(idx) < 2:
            fail("events", "give at least 2 trials per class to hold out a validation split",
                 described(f"{len(idx)} trial(s) of {name!r}"), "Record more trials.")
        if how == "random":
            idx = rng.permutation(idx)
        n_val = min(len(idx) - 1, max(1, int(round(val_fraction * len(idx)))))
        train.extend(idx[: len(idx) - n_val])
        val.extend(idx[len(idx) - n_val :])
    return np.sort(np.asarray(train)), np.sort(np.asarray(val))
