"""Spectral features of windows: band power."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import signal

from edgestream.core.checks import check_value
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import ConfigError, ValidationError
from edgestream.core.stage import STAGES, Stage

DEFAULT_BANDS = {"delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0), "gamma": (30.0, 40.0)}


@STAGES.register("bandpower")
class BandPower(Stage):
    """Power per channel and frequency band of each window (Welch PSD integrated over the band).

    Input: windows (``info.window`` samples, C channels). Output: one sample per window with
    C × n_bands channels named ``<channel>_<band>``, stamped with the window's newest sample.

    Parameters
    ----------
    bands : mapping name → (low, high) in Hz
        Defaults to delta/theta/alpha/beta/gamma (1–40 Hz).
    nperseg : int or None
        Welch segment length in samples (default: min(window, 256)).
    relative : bool
        Divide by the total power within all bands.
    log : bool
        Return 10·log10 of the power (dB).
    """

    accepts_continuous = False
    accepts_windows = True

    def __init__(self, bands: Mapping[str, Sequence[float]] | None = None, nperseg: int | None = None,
                 relative: bool = False, log: bool = False, gap_policy: str = "keep") -> None:
        super().__init__(gap_policy=gap_policy)
        self.bands = {str(k): [float(v[0]), float(v[1])] for k, v in (bands or DEFAULT_BANDS).items()}
        for name, (lo, hi) in self.bands.items():
            if not 0 <= lo < hi:
                raise ConfigError(f"bands[{name!r}] must be [low, high] with 0 <= low < high Hz; got {[lo, hi]}.")
        self.nperseg = nperseg
        self.relative = check_value(relative, (True, False), "relative")
        self.log = check_value(log, (True, False), "log")

    def _build(self, info: StreamInfo) -> StreamInfo:
        n = info.window
        nyq = info.sfreq / 2
        for name, (lo, hi) in self.bands.items():
            if hi > nyq:
                raise ValidationError(
                    f"bandpower: bands[{name!r}] must end below Nyquist ({nyq:g} Hz for {info.sfreq:g} Hz); got {hi:g} Hz."
                )
        self._nperseg = min(int(self.nperseg or 256), n)
        freqs = np.fft.rfftfreq(self._nperseg, 1.0 / info.sfreq)
        self._masks = []
        for name, (lo, hi) in self.bands.items():
            mask = (freqs >= lo) & (freqs < hi)
            if not mask.any():
                raise ValidationError(
                    f"bandpower: bands[{name!r}] = {[lo, hi]} Hz must contain at least one frequency bin; resolution is "
                    f"{freqs[1]:g} Hz with nperseg={self._nperseg}. Widen the band or lengthen the window."
                )
            self._masks.append(mask)
        self._df = float(freqs[1] - freqs[0])
        hop = info.desc.get("window", {}).get("hop", n)
        names = [f"{ch}_{band}" for ch in info.ch_names for band in self.bands]
        unit = "dB" if self.log else ("a.u." if self.relative else f"{info.units[0]}^2")
        return info.replace(
            name=f"{info.name}-bandpower", type="BandPower", sfreq=info.sfreq / hop, ch_names=names,
            ch_types=("feature",) * len(names), units=(unit,) * len(names), window=None,
            desc={k: v for k, v in info.desc.items() if k != "window"} | {"bands": self.bands},
        )

    def step(self, chunk: Chunk, state: None) -> tuple[list[Chunk], None]:
        _, psd = signal.welch(chunk.data, fs=self.in_info.sfreq, nperseg=self._nperseg, axis=0, detrend="constant")  # (F, C)
        power = np.stack([psd[m].sum(axis=0) * self._df for m in self._masks], axis=1)  # (C, n_bands)
        if self.relative:
            power = power / np.maximum(power.sum(axis=1, keepdims=True), 1e-30)
        if self.log:
            power = 10.0 * np.log10(np.maximum(power, 1e-30))
        row = power.reshape(1, -1).astype(np.float32)
        return [Chunk(row, chunk.timestamps[-1:], self.out_info, chunk.gap, chunk.warming)], state
