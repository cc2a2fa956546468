"""Channel selection and re-referencing (stateless)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import ValidationError
from edgestream.core.stage import STAGES, Stage


def _resolve(names: Sequence[str], info: StreamInfo, what: str) -> list[int]:
    import difflib

    idx = []
    for name in names:
        if name not in info.ch_names:
            close = difflib.get_close_matches(name, info.ch_names, n=3)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ValidationError(
                f"{what}: channel {name!r} must be one of the stream's channels; stream {info.name!r} has "
                f"{info.n_channels} channels ({', '.join(info.ch_names[:8])}{', ...' if info.n_channels > 8 else ''}).{hint}"
            )
        idx.append(info.ch_names.index(name))
    return idx


@STAGES.register("pick")
class Pick(Stage):
    """Keep channels by name and/or type (e.g. drop the ``counter`` and ``misc`` channels).

    Parameters
    ----------
    channels : list of str or None
        Names to keep, in this order.
    types : list of str or None
        Channel types to keep (``info.ch_types``), e.g. ["eeg"].
    exclude : list of str
        Names to drop.
    """

    accepts_windows = True

    def __init__(self, channels: Sequence[str] | None = None, types: Sequence[str] | None = None,
                 exclude: Sequence[str] = (), gap_policy: str = "keep") -> None:
        super().__init__(gap_policy=gap_policy)
        self.channels = list(channels) if channels is not None else None
        self.types = list(types) if types is not None else None
        self.exclude = list(exclude)

    def _build(self, info: StreamInfo) -> StreamInfo:
        idx = _resolve(self.channels, info, "pick") if self.channels is not None else list(range(info.n_channels))
        if self.types is not None:
            idx = [i for i in idx if info.ch_types[i] in self.types]
        drop = set(_resolve(self.exclude, info, "pick.exclude"))
        idx = [i for i in idx if i not in drop]
        if not idx:
            raise ValidationError(
                f"pick must keep at least one channel; got none from channels={self.channels}, types={self.types}, "
                f"exclude={self.exclude} on stream {info.name!r} (types present: {sorted(set(info.ch_types))})."
            )
        self._idx = np.asarray(idx)
        return info.replace(ch_names=[info.ch_names[i] for i in idx], ch_types=[info.ch_types[i] for i in idx],
                            units=[info.units[i] for i in idx])

    def step(self, chunk: Chunk, state: None) -> tuple[list[Chunk], None]:
        return [Chunk(np.ascontiguousarray(chunk.data[:, self._idx]), chunk.timestamps, self.out_info, chunk.gap,
                      chunk.warming)], state


@STAGES.register("reref")
class Reref(Stage):
    """Re-reference EEG channels: subtract the average of all EEG channels or of named ones.

    Channels whose type is not ``eeg`` (counter, misc, stim) pass through unchanged.

    Parameters
    ----------
    ref : "average" or list of str
        Common average reference, or the channels whose mean becomes the reference
        (e.g. ["M1", "M2"] for linked mastoids).
    """

    accepts_windows = True

    def __init__(self, ref: str | Sequence[str] = "average", gap_policy: str = "keep") -> None:
        super().__init__(gap_policy=gap_policy)
        if isinstance(ref, str) and ref != "average":
            ref = [ref]
        self.ref = ref if isinstance(ref, str) else list(ref)

    def _build(self, info: StreamInfo) -> StreamInfo:
        eeg = [i for i, t in enumerate(info.ch_types) if t == "eeg"]
        if not eeg:
            raise ValidationError(
                f"reref needs EEG channels (ch_type 'eeg'); stream {info.name!r} has types {sorted(set(info.ch_types))}. "
                "Declare channel types in the stream metadata."
            )
        self._eeg = np.asarray(eeg)
        self._ref = self._eeg if self.ref == "average" else np.asarray(_resolve(self.ref, info, "reref"))
        return info

    def step(self, chunk: Chunk, state: None) -> tuple[list[Chunk], None]:
        y = chunk.data.copy()
        y[:, self._eeg] -= chunk.data[:, self._ref].mean(axis=1, keepdims=True)
        return [Chunk(y, chunk.timestamps, chunk.info, chunk.gap, chunk.warming)], state
