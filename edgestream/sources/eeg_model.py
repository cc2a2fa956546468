"""A generative model of scalp EEG, produced chunk by chunk with carried state.

Components (all in µV, per channel of a standard 10-10 montage):

* background: 1/f ("pink") noise, one source per electrode, mixed so that neighbouring
  electrodes correlate (correlation ``exp(-distance / 5 cm)``), plus white amplifier noise;
* posterior alpha (~10 Hz): two narrow-band sources near O1/O2, waxing and waning;
* sensorimotor mu (~11 Hz) and beta (~22 Hz) over C3 and C4 whose amplitude drops
  (event-related desynchronisation) over the hemisphere contralateral to an imagined hand
  movement: a ``"left"`` cue lowers the right-hemisphere (C4) rhythms, ``"right"`` the
  left-hemisphere (C3) ones, ``"rest"`` leaves both;
* line noise at ``line_freq`` with a per-channel amplitude and phase;
* blinks: ~0.3 s positive deflections of 80–200 µV on the frontal pole, decaying backwards.

Every random process draws from its own generator (spawned from ``seed``), and events (cues,
blinks) are scheduled event by event, so the output does not depend on how the samples are
split into chunks: ``generate(300)`` then ``generate(700)`` equals ``generate(1000)``.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
from scipy import signal

from edgestream.core.checks import check_number, fail

# The 64 electrodes of the PhysioNet EEG Motor Movement/Imagery recordings (BCI2000 cap), in
# that order, so models trained on that data can run on simulated streams.
MONTAGE_64 = (
    "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP5", "CP3", "CP1",
    "CPz", "CP2", "CP4", "CP6", "Fp1", "Fpz", "Fp2", "AF7", "AF3", "AFz", "AF4", "AF8", "F7", "F5", "F3", "F1", "Fz",
    "F2", "F4", "F6", "F8", "FT7", "FT8", "T7", "T8", "T9", "T10", "TP7", "TP8", "P7", "P5", "P3", "P1", "Pz", "P2",
    "P4", "P6", "P8", "PO7", "PO3", "POz", "PO4", "PO8", "O1", "Oz", "O2", "Iz",
)
# Which electrodes a smaller cap keeps first (motor, occipital, then spread over the head).
PRIORITY = (
    "C3", "C4", "Cz", "Oz", "O1", "O2", "Pz", "Fz", "Fp1", "Fp2", "POz", "P3", "P4", "F3", "F4", "T7", "T8", "CP3",
    "CP4", "FC3", "FC4", "C1", "C2", "C5", "C6", "FCz", "CPz", "AFz", "PO3", "PO4", "F7", "F8", "P7", "P8",
)
HEAD_RADIUS = 0.09  # m

# Rows of the 10-10 system: position along the nasion→inion arc (fraction), the column of the
# electrode where the row meets the circumferential ring (Fpz-T7-Oz-T8, 72° from the vertex),
# and that electrode's azimuth on the ring (degrees from the front; the ring has 18° steps).
_ROWS = {"FP": (0.1, 1, 18), "AF": (0.2, 7, 36), "F": (0.3, 7, 54), "FC": (0.4, 7, 72), "C": (0.5, 7, 90),
         "CP": (0.6, 7, 108), "P": (0.7, 7, 126), "PO": (0.8, 7, 144), "O": (0.9, 1, 162), "I": (1.0, 1, 180)}
_ALIAS = {"FT": "FC", "T": "C", "TP": "CP"}


def electrode_position(name: str) -> np.ndarray:
    """Approximate 3-D position (m, x right, y front, z up) of a 10-10 electrode from its name.

    Azimuthal-equidistant construction: rows are arcs from the midline electrode to the ring
    through Fpz/T7/Oz/T8 (72° from the vertex), columns split each arc evenly.
    """
    m = re.fullmatch(r"([A-Za-z]+?)(z|\d+)", name.strip(), flags=re.IGNORECASE)
    if not m:
        fail("channel name", "be a 10-10 electrode name such as 'C3' or 'POz'", name)
    prefix, col = m.group(1).upper(), m.group(2).lower()
    prefix = _ALIAS.get(prefix, prefix)
    if prefix not in _ROWS:
        fail("channel name", "start with a 10-10 row (Fp, AF, F, FC, FT, C, T, CP, TP, P, PO, O, I)", name)
    s, ring_col, ring_az = _ROWS[prefix]
    polar_mid = (0.5 - s) * 180.0  # degrees from the vertex along the midline (+ front)
    mid = np.array([0.0, polar_mid])
    if col == "z":
        p2 = mid
    else:
        k = int(col)
        side = -1.0 if k % 2 else 1.0  # odd numbers on the left
        az = math.radians(ring_az)
        ring = np.array([side * 72.0 * math.sin(az), 72.0 * math.cos(az)])
        frac = math.ceil(k / 2) / math.ceil(ring_col / 2)
        p2 = mid + frac * (ring - mid)
    polar = math.radians(float(np.hypot(*p2)))
    azim = math.atan2(p2[0], p2[1])
    return HEAD_RADIUS * np.array([math.sin(polar) * math.sin(azim), math.sin(polar) * math.cos(azim), math.cos(polar)])


def montage(n_channels: int) -> tuple[str, ...]:
    """Names of ``n_channels`` electrodes (≤ 64), in the order of :data:`MONTAGE_64`."""
    check_number(n_channels, "n_channels", low=1, high=len(MONTAGE_64), integer=True,
                 fix=f"The simulator has a {len(MONTAGE_64)}-electrode 10-10 montage; ask for at most that many.")
    chosen = list(PRIORITY[:n_channels])
    for name in MONTAGE_64:
        if len(chosen) >= n_channels:
            break
        if name not in chosen:
            chosen.append(name)
    return tuple(name for name in MONTAGE_64 if name in chosen)


def _resonator(freq: float, bandwidth: float, sfreq: float) -> tuple[np.ndarray, np.ndarray]:
    """AR(2) narrow-band filter at ``freq`` Hz with unit output variance for unit white input."""
    r = math.exp(-math.pi * bandwidth / sfreq)
    a1, a2 = 2.0 * r * math.cos(2.0 * math.pi * freq / sfreq), -r * r
    var = (1.0 - a2) / ((1.0 + a2) * ((1.0 - a2) ** 2 - a1 * a1))
    return np.array([1.0 / math.sqrt(var)]), np.array([1.0, -a1, -a2])


def _pink_sos(sfreq: float, f_lo: float = 0.2) -> np.ndarray:
    """SOS filter turning white noise into unit-variance 1/f noise from ``f_lo`` up to ~Nyquist.

    A cascade of first-order sections with poles every two octaves and a zero one octave above
    each pole: the magnitude alternates between -20 and 0 dB/decade, averaging -10 dB/decade
    (power ∝ 1/f) within about ±0.5 dB.
    """
    poles_hz = f_lo * 4.0 ** np.arange(int(math.log(0.5 * sfreq / f_lo, 4)) + 1)
    a = np.exp(-2.0 * math.pi * poles_hz / sfreq)
    b = np.exp(-2.0 * math.pi * np.minimum(2.0 * poles_hz, 0.49 * sfreq) / sfreq)
    if len(a) % 2:  # pair first-order sections into second-order rows
        a, b = np.append(a, 0.0), np.append(b, 0.0)
    sos = np.array([np.concatenate((np.convolve([1, -b[i]], [1, -b[i + 1]]), np.convolve([1, -a[i]], [1, -a[i + 1]])))
                    for i in range(0, len(a), 2)])
    impulse = np.zeros(int(20 * sfreq / f_lo))
    impulse[0] = 1.0
    h = signal.sosfilt(sos, impulse)
    sos[0, :3] /= math.sqrt(float(np.sum(h * h)))
    return sos


def _pattern(pos: np.ndarray, centre: np.ndarray, width: float) -> np.ndarray:
    d = np.linalg.norm(pos - centre, axis=1)
    return np.exp(-0.5 * (d / width) ** 2)


CUES = ("left", "right", "rest")


@dataclasses.dataclass
class EEGParams:
    """Amplitudes (µV RMS unless noted) and timing of the generative model."""

    background: float = 10.0  # pink background per channel
    white: float = 0.5  # amplifier noise
    alpha: float = 8.0  # posterior alpha source amplitude
    alpha_freq: float = 10.0  # Hz
    mu: float = 6.0  # mu source amplitude over C3/C4
    mu_freq: float = 11.0  # Hz
    beta: float = 2.5  # beta source amplitude over C3/C4
    beta_freq: float = 22.0  # Hz
    erd_depth: float = 0.25  # rhythm gain during contralateral imagery (1 = no change)
    erd_tau: float = 0.3  # s, time constant of the gain change
    line: float = 5.0  # line-noise amplitude (peak, mean over channels)
    blink_rate: float = 0.15  # blinks per second (Poisson)
    blink_amp: tuple[float, float] = (80.0, 200.0)  # µV at the frontal pole
    blink_len: float = 0.3  # s
    cue_len: float = 4.0  # s of imagery after a cue
    iti: tuple[float, float] = (2.0, 3.5)  # s between the end of one cue and the next cue


class EEGGenerator:
    """Generate EEG (n, n_channels) in µV, chunk after chunk, deterministic for a ``seed``.

    Parameters
    ----------
    n_channels : int
        1–64 electrodes of the 10-10 montage (see :func:`montage`).
    sfreq : float
        Hz.
    seed : int
    line_freq : float or None
        Power-line frequency (50 or 60 Hz); None for none.
    cues : bool
        Schedule left/right/rest cues that modulate mu/beta (see module docstring).
    blinks : bool
    params : EEGParams or None
    """

    def __init__(self, n_channels: int = 64, sfreq: float = 1000.0, seed: int = 0, line_freq: float | None = 50.0,
                 cues: bool = True, blinks: bool = True, params: EEGParams | None = None) -> None:
        self.ch_names = montage(n_channels)
        self.sfreq = float(check_number(sfreq, "sfreq", low=20.0, fix="Simulate at 20 Hz or more (e.g. 250 or 1000)."))
        if line_freq is not None:
            check_number(line_freq, "line_freq", low=1.0, high=self.sfreq / 2, low_inclusive=True, high_inclusive=False,
                         fix=f"Use 50 or 60 Hz (below Nyquist, {self.sfreq / 2:g} Hz), or None for no line noise.")
        self.line_freq = line_freq
        self.cues, self.blinks = bool(cues), bool(blinks)
        self.p = params or EEGParams()
        p, fs, n = self.p, self.sfreq, len(self.ch_names)
        self.rng_noise, self.rng_osc, self.rng_cue, self.rng_blink, rng_fixed = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5))
        pos = np.stack([electrode_position(c) for c in self.ch_names])
        self.positions = pos
        # background: pink sources mixed by the Cholesky factor of an exponential spatial correlation
        dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=2)
        self._mix = np.linalg.cholesky(np.exp(-dist / 0.05) + 1e-6 * np.eye(n)).T  # (n_src, n_ch)
        self._pink_sos = _pink_sos(fs)
        self._pink_zi = np.zeros((self._pink_sos.shape[0], 2, n))
        # oscillatory sources: 0/1 alpha (O1/O2 area), 2/3 mu (C3/C4), 4/5 beta (C3/C4)
        occ_l, occ_r = electrode_position("O1"), electrode_position("O2")
        c3, c4 = electrode_position("C3"), electrode_position("C4")
        self._patterns = np.stack([
            p.alpha * _pattern(pos, occ_l + [0, 0.01, 0.01], 0.045), p.alpha * _pattern(pos, occ_r + [0, 0.01, 0.01], 0.045),
            p.mu * _pattern(pos, c3, 0.03), p.mu * _pattern(pos, c4, 0.03),
            p.beta * _pattern(pos, c3, 0.03), p.beta * _pattern(pos, c4, 0.03)])  # (6, n_ch)
        # one resonator per rhythm, each driving a left/right pair of sources with independent noise
        self._osc = [_resonator(min(f, 0.45 * fs), bw, fs)
                     for f, bw in ((p.alpha_freq, 1.5), (p.mu_freq, 1.5), (p.beta_freq, 3.0))]
        self._osc_zi = [np.zeros((2, 2)) for _ in self._osc]
        # mu/beta gain (C3 side, C4 side): first-order smoothing towards the cue's target
        self._gain_a = math.exp(-1.0 / (p.erd_tau * fs))
        self._gain_zi = np.full((1, 2), 1.0 * self._gain_a)  # steady state at gain 1
        self._target = np.ones(2)
        self._line_amp = p.line * rng_fixed.uniform(0.5, 1.5, n)
        self._line_phase = rng_fixed.uniform(0, 2 * math.pi, n)
        eye = electrode_position("Fpz") + [0.0, 0.02, -0.02]  # the eyes sit in front of and below Fpz
        fpz_weight = math.exp(-float(np.linalg.norm(electrode_position("Fpz") - eye)) / 0.045)
        self._blink_pattern = np.exp(-np.linalg.norm(pos - eye, axis=1) / 0.045) / fpz_weight  # 1 at Fpz
        self._blink_len = max(2, int(round(p.blink_len * fs)))
        self._blink_shape = np.hanning(self._blink_len + 2)[1:-1] ** 1.5
        self._blinks: list[tuple[int, float]] = []  # (onset sample, amplitude) still in progress
        self._next_blink = self._draw_blink(0) if self.blinks else None
        self._next_cue: int | None = int(round(rng_fixed.uniform(*p.iti) * fs)) if self.cues else None
        self._cue_end: int | None = None
        self.sample = 0  # samples generated so far

    def _draw_blink(self, after: int) -> int:
        return after + max(1, int(round(self.rng_blink.exponential(1.0 / self.p.blink_rate) * self.sfreq)))

    @property
    def n_channels(self) -> int:
        return len(self.ch_names)

    def generate(self, n: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """The next ``n`` samples, float32 (n, n_channels) in µV, and cues ``[(sample index, label)]``.

        Sample indices count from the first sample ever generated.
        """
        n = int(n)
        nch = self.n_channels
        start = self.sample
        if n <= 0:
            return np.zeros((0, nch), np.float32), []
        p, fs = self.p, self.sfreq
        # background: (n, n_src) pink → mixed (n, n_ch)
        # one row of draws per sample (pink drive | amplifier noise) keeps the output chunking-invariant
        z = self.rng_noise.standard_normal((n, 2 * nch))
        pink, self._pink_zi = signal.sosfilt(self._pink_sos, z[:, :nch], axis=0, zi=self._pink_zi)
        out = p.background * (pink @ self._mix)
        out += p.white * z[:, nch:]
        # cue schedule → per-sample gain targets (C3 side, C4 side)
        targets = np.empty((n, 2))
        markers: list[tuple[int, str]] = []
        pos = 0
        while pos < n:
            nxt = n
            for event in (self._next_cue, self._cue_end):
                if event is not None and start + pos <= event < start + n:
                    nxt = min(nxt, event - start)
            targets[pos:nxt] = self._target
            if nxt >= n:
                break
            pos = nxt
            if self._cue_end is not None and start + pos == self._cue_end:
                self._target = np.ones(2)
                self._cue_end = None
                self._next_cue = start + pos + int(round(self.rng_cue.uniform(*p.iti) * fs))
            if self._next_cue is not None and start + pos == self._next_cue:
                label = CUES[int(self.rng_cue.integers(len(CUES)))]
                markers.append((start + pos, label))
                # contralateral ERD: left-hand imagery lowers the right hemisphere (C4), and vice versa
                self._target = {"left": np.array([1.0, p.erd_depth]), "right": np.array([p.erd_depth, 1.0]),
                                "rest": np.ones(2)}[label]
                self._next_cue = None
                self._cue_end = start + pos + int(round(p.cue_len * fs))
        gains, self._gain_zi = signal.lfilter([1.0 - self._gain_a], [1.0, -self._gain_a], targets, axis=0,
                                              zi=self._gain_zi)
        # oscillations: (n, 6) sources, mu/beta scaled by the hemisphere gains
        src = np.empty((n, 6))
        drive = self.rng_osc.standard_normal((n, 6))
        for k, (b, a) in enumerate(self._osc):
            src[:, 2 * k: 2 * k + 2], self._osc_zi[k] = signal.lfilter(b, a, drive[:, 2 * k: 2 * k + 2], axis=0,
                                                                       zi=self._osc_zi[k])
        src[:, 2:4] *= gains
        src[:, 4:6] *= gains
        out += src @ self._patterns
        if self.line_freq:
            t = (start + np.arange(n))[:, None] / fs
            out += self._line_amp * np.sin(2.0 * math.pi * self.line_freq * t + self._line_phase)
        if self.blinks:
            self._add_blinks(out, start, n)
        self.sample = start + n
        return out.astype(np.float32), markers

    def _add_blinks(self, out: np.ndarray, start: int, n: int) -> None:
        end = start + n
        while self._next_blink is not None and self._next_blink < end:
            amp = self.rng_blink.uniform(*self.p.blink_amp)
            self._blinks.append((self._next_blink, amp))
            self._next_blink = self._draw_blink(self._next_blink + self._blink_len)
        keep = []
        for onset, amp in self._blinks:
            lo, hi = max(onset, start), min(onset + self._blink_len, end)
            if lo < hi:
                wave = amp * self._blink_shape[lo - onset: hi - onset]
                out[lo - start: hi - start] += wave[:, None] * self._blink_pattern[None, :]
            if onset + self._blink_len > end:
                keep.append((onset, amp))
        self._blinks = keep
