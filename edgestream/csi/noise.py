"""Impairments of reported CSI: AWGN at an SNR, phase noise, interference bursts, lost reports.

Applied to the *history* a predictor sees (targets stay clean), report by report, in time order.
:class:`ReportNoise` keeps its random generators and the state of a running burst, so a stream
noised block by block gets exactly the noise one call over the whole stream would give.

* **AWGN** — complex Gaussian noise of power ``P / 10^(snr_db/10)`` per element, ``P`` the
  reference signal power (mean ``|h|²``; 1.0 for CDL channels, whose power profile is normalised).
* **Phase noise** — every element rotated by ``exp(jφ)``, ``φ ~ N(0, phase_std²)`` (radians).
* **Bursts** — with probability ``burst_prob`` per report a burst starts (unless one is running)
  and lasts ``burst_length`` reports; during it complex Gaussian noise with a bell-shaped RMS
  envelope ``burst_amplitude · √P · exp(−u²/2)``, ``u`` from −1 to 1 over the burst, is added.
* **Packet drop** — with probability ``drop_prob`` a whole report is lost; it is zeroed and flagged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from edgestream.core.checks import check_number


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
    """Which impairments to apply. The default applies none."""

    snr_db: float | None = None  # AWGN SNR in dB; None = no AWGN
    phase_std: float = 0.0  # phase-noise standard deviation, rad
    burst_prob: float = 0.0  # probability per report that a burst starts
    burst_length: int = 10  # reports per burst
    burst_amplitude: float = 0.0  # burst noise RMS at the burst peak, relative to the signal RMS
    drop_prob: float = 0.0  # probability per report that it is lost (zeroed)

    def __post_init__(self) -> None:
        if self.snr_db is not None:
            check_number(self.snr_db, "snr_db", low=-30.0, high=100.0, fix="Give the SNR in dB, e.g. 20.")
        check_number(self.phase_std, "phase_std", low=0.0, high=float(np.pi), fix="Give radians, e.g. 0.05.")
        check_number(self.burst_prob, "burst_prob", low=0.0, high=1.0)
        check_number(self.burst_length, "burst_length", low=1, integer=True)
        check_number(self.burst_amplitude, "burst_amplitude", low=0.0)
        check_number(self.drop_prob, "drop_prob", low=0.0, high=1.0, fix="Give a probability, e.g. 0.05.")

    @property
    def active(self) -> bool:
        return (
            self.snr_db is not None or self.phase_std > 0 or (self.burst_prob > 0 and self.burst_amplitude > 0)
            or self.drop_prob > 0
        )


class ReportNoise:
    """Stateful noise source for one report sequence (see module docstring).

    Parameters
    ----------
    config : NoiseConfig
    seed : int or sequence of ints
        Seeds independent generators for AWGN, phase, burst starts, burst noise and drops (so a
        block-by-block run draws exactly the numbers of one call over the whole sequence).
    signal_power : float
        Reference power ``P`` (mean ``|h|²``) the SNR and burst amplitude refer to.
    """

    def __init__(self, config: NoiseConfig, seed: Any = 0, signal_power: float = 1.0) -> None:
        self.config = config
        self.signal_power = check_number(signal_power, "signal_power", low=0.0, low_inclusive=False)
        root = np.random.SeedSequence(seed)
        self._awgn, self._phase, self._burst_start, self._burst, self._drop = (
            np.random.default_rng(s) for s in root.spawn(5)
        )
        self._burst_pos = -1  # position inside the running burst; -1 = none
        self.dropped = 0  # reports zeroed so far
        self.reports = 0  # reports processed so far

    def apply(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Noise the reports ``h`` complex ``(n, ...)`` (time first). Returns ``(noisy, dropped (n,) bool)``."""
        cfg = self.config
        h = np.asarray(h)
        n = h.shape[0]
        out = h.astype(np.complex64, copy=True)
        if cfg.phase_std > 0:
            out *= np.exp(1j * self._phase.normal(0.0, cfg.phase_std, size=h.shape)).astype(np.complex64)
        if cfg.snr_db is not None:
            sigma = np.sqrt(self.signal_power / 10.0 ** (cfg.snr_db / 10.0) / 2.0)  # per real dimension
            out += (sigma * self._awgn.standard_normal(h.shape + (2,))).view(np.complex128).reshape(h.shape).astype(np.complex64)
        if cfg.burst_prob > 0 and cfg.burst_amplitude > 0:
            envelope = cfg.burst_amplitude * np.sqrt(self.signal_power) * np.exp(-0.5 * np.linspace(-1, 1, cfg.burst_length) ** 2)
            starts = self._burst_start.random(n)  # one draw per report, burst or not
            for i in range(n):
                if self._burst_pos < 0 and starts[i] < cfg.burst_prob:
                    self._burst_pos = 0
                if self._burst_pos >= 0:
                    scale = envelope[self._burst_pos] / np.sqrt(2.0)
                    out[i] += (scale * self._burst.standard_normal(h.shape[1:] + (2,))).view(np.complex128)[..., 0].astype(np.complex64)
                    self._burst_pos += 1
                    if self._burst_pos >= cfg.burst_length:
                        self._burst_pos = -1
        dropped = self._drop.random(n) < cfg.drop_prob if cfg.drop_prob > 0 else np.zeros(n, dtype=bool)
        out[dropped] = 0
        self.dropped += int(dropped.sum())
        self.reports += n
        return out, dropped
