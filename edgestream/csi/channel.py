"""3GPP TR 38.901 CDL channels as CSI reports, built on ``sionna-no-rt`` (PyTorch).

A :class:`CDLChannel` draws one random realisation per link (CDL profile A…E scaled to a delay
spread, a UE moving at a fixed speed in a random direction, random ray coupling and phases) and
evaluates its frequency response at any report times: ``reports(start, n)`` returns reports
``start … start+n−1``, so a long stream can be produced block by block and stays one continuous,
stationary channel (a block equals the same slice of one long evaluation).

Setup (the CSI-4CAST paper's): carrier 2.4 GHz, 30 kHz subcarrier spacing, a base station with a
4×4 dual-polarised (±45°) panel = 32 antennas using the 38.901 element pattern, a single-antenna
UE (vertical, omni), uplink; one report every 5 slots (2.5 ms at 30 kHz). The uplink band is the
lower ``n_subcarriers`` of a grid of ``2·n_subcarriers + gap`` subcarriers centred on the carrier;
the downlink band (for FDD prediction) the upper ones.

Reproducibility: every draw seeds Sionna's CPU generator from ``seed`` and restores the
generator's previous state afterwards (the global torch generator is never touched).

Sionna's CDL class draws all random quantities and evaluates every time step in one call; to
continue a realisation over time we call its internal steps (``_get_velocity``, ``_create_topology``,
``_create_rays``, ``_get_k_factor``, ``_cir_gen._step_10`` / ``_step_11``) in the same order as
``CDL.__call__`` does. The test suite checks that this equals the public call, so a Sionna update
that changes the internals fails loudly instead of silently changing the data.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np

from edgestream.core.checks import check_number, check_value, fail

CDL_MODELS = ("A", "B", "C", "D", "E")
_RNG_LOCK = threading.Lock()  # Sionna's generators are process-global


def cdl_letter(model: str) -> str:
    """``"CDL-C"``, ``"cdl_c"`` or ``"C"`` → ``"C"`` (clear error otherwise)."""
    if not isinstance(model, str):
        fail("model", "be a CDL model name like 'CDL-C'", model)
    letter = model.upper().replace("CDL", "").strip("-_ ")
    return check_value(letter, CDL_MODELS, "model (CDL profile)", fix="Use one of CDL-A, CDL-B, CDL-C, CDL-D, CDL-E.")


@dataclasses.dataclass(frozen=True)
class CSIConfig:
    """Physical setup of generated CSI. Every field is a plain value (hashable, JSON-able)."""

    model: str = "C"  # CDL profile letter A…E ("CDL-C" accepted)
    delay_spread: float = 100e-9  # RMS delay spread, s
    speed: float = 30.0  # UE speed, m/s (direction drawn at random per link)
    carrier_frequency: float = 2.4e9  # Hz
    subcarrier_spacing: float = 30e3  # Hz
    n_subcarriers: int = 300  # per band
    gap_subcarriers: int = 150  # between the uplink and downlink bands (FDD)
    array_rows: int = 4  # BS panel rows
    array_cols: int = 4  # BS panel columns
    polarization: str = "dual"  # "dual" (±45°, 2 antennas per element) or "single" (vertical)
    report_period_slots: int = 5  # slots between CSI reports

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", cdl_letter(self.model))
        check_number(self.delay_spread, "delay_spread", low=1e-9, high=5e-6, fix="Give seconds, e.g. 100e-9 for 100 ns.")
        check_number(self.speed, "speed", low=0.0, high=150.0, fix="Give m/s, e.g. 30.")
        check_number(self.carrier_frequency, "carrier_frequency", low=0.5e9, high=100e9, fix="TR 38.901 covers 0.5–100 GHz.")
        check_number(self.subcarrier_spacing, "subcarrier_spacing", low=15e3, high=480e3)
        if self.subcarrier_spacing / 15e3 not in (1, 2, 4, 8, 16, 32):
            fail("subcarrier_spacing", "be 15 kHz × 2^μ (15, 30, 60, 120, 240, 480 kHz)", self.subcarrier_spacing)
        check_number(self.n_subcarriers, "n_subcarriers", low=1, high=3300, integer=True)
        check_number(self.gap_subcarriers, "gap_subcarriers", low=0, integer=True)
        check_number(self.array_rows, "array_rows", low=1, high=32, integer=True)
        check_number(self.array_cols, "array_cols", low=1, high=32, integer=True)
        check_value(self.polarization, ("dual", "single"), "polarization")
        check_number(self.report_period_slots, "report_period_slots", low=1, integer=True)

    @property
    def n_antennas(self) -> int:
        return self.array_rows * self.array_cols * (2 if self.polarization == "dual" else 1)

    @property
    def slot_duration(self) -> float:
        """Seconds per slot: 1 ms / 2^μ (0.5 ms at 30 kHz)."""
        return 1e-3 * 15e3 / self.subcarrier_spacing

    @property
    def report_period(self) -> float:
        """Seconds between reports (2.5 ms for 5 slots at 30 kHz)."""
        return self.report_period_slots * self.slot_duration

    @property
    def report_rate(self) -> float:
        """Reports per second (400 for 5 slots at 30 kHz)."""
        return 1.0 / self.report_period

    def band_frequencies(self, band: str = "uplink") -> np.ndarray:
        """Baseband frequencies (Hz) of the ``n_subcarriers`` of ``band`` ("uplink" or "downlink")."""
        check_value(band, ("uplink", "downlink"), "band")
        k = self.n_subcarriers
        total = 2 * k + self.gap_subcarriers
        index = np.arange(total) - total // 2  # centred grid, as sionna.phy.channel.subcarrier_frequencies
        index = index[:k] if band == "uplink" else index[k + self.gap_subcarriers :]
        return index * self.subcarrier_spacing

    def describe(self) -> dict[str, Any]:
        """Scenario metadata for ``desc/csi``."""
        return {
            "cdl_model": f"CDL-{self.model}",
            "delay_spread": self.delay_spread,
            "speed": self.speed,
            "array": f"{self.array_rows}x{self.array_cols} {self.polarization}-polarised",
            "report_period_slots": self.report_period_slots,
        }


class CDLChannel:
    """``batch`` independent CDL links drawn once; evaluate their reports at any time indices.

    Parameters
    ----------
    config : CSIConfig
    batch : int
        Independent links (random UE direction, ray coupling and phases each).
    seed : int
        Seed of the draw (same seed → same links).
    double : bool
        Compute phases in float64. Needed for long streams: in float32 a Doppler phase
        ``2π f_D t`` loses ~0.1 rad of precision after minutes.
    """

    def __init__(self, config: CSIConfig, batch: int = 1, seed: int = 0, double: bool = False) -> None:
        import torch
        from sionna.phy import config as sionna_config
        from sionna.phy.channel.tr38901 import CDL, PanelArray

        self.config = config
        self.batch = check_number(batch, "batch", low=1, integer=True)
        self.seed = check_number(seed, "seed", low=0, integer=True)
        precision = "double" if double else "single"
        fc = config.carrier_frequency
        bs = PanelArray(
            num_rows_per_panel=config.array_rows,
            num_cols_per_panel=config.array_cols,
            polarization=config.polarization,
            polarization_type="cross" if config.polarization == "dual" else "V",
            antenna_pattern="38.901",
            carrier_frequency=fc,
            precision=precision,
            device="cpu",
        )
        ut = PanelArray(
            num_rows_per_panel=1, num_cols_per_panel=1, polarization="single", polarization_type="V",
            antenna_pattern="omni", carrier_frequency=fc, precision=precision, device="cpu",
        )
        with _RNG_LOCK:
            generator = sionna_config.torch_rng("cpu")
            saved = generator.get_state()
            generator.manual_seed(self.seed)
            try:
                self._cdl = CDL(
                    config.model, config.delay_spread, fc, ut_array=ut, bs_array=bs, direction="uplink",
                    min_speed=config.speed, max_speed=config.speed, precision=precision, device="cpu",
                )
                cdl = self._cdl
                # The draws of CDL.__call__, in its order (see the module docstring).
                velocity = cdl._get_velocity(self.batch)
                self._topology = cdl._create_topology(self.batch, velocity)
                self._rays = cdl._create_rays(self.batch)
                self._k_factor = cdl._get_k_factor(self.batch)
                self._phases = cdl._cir_gen._step_10(self._rays.aoa.shape)
            finally:
                generator.set_state(saved)
        self._dtype = torch.float64 if double else torch.float32
        self.n_antennas = bs.num_ant

    def coefficients(self, start: int, n: int) -> tuple[Any, Any]:
        """Path coefficients ``(batch, A, paths, n)`` complex and delays ``(batch, paths)`` s, at reports ``start…``."""
        import torch

        times = torch.arange(start, start + n, dtype=self._dtype) * self.config.report_period
        h, delays = self._cdl._cir_gen._step_11(self._phases, self._topology, self._k_factor, self._rays, times, None)
        # (batch, tx=1, rx=1, paths, rx_ant, tx_ant=1, time) → (batch, rx_ant, paths, time)
        a = h[:, 0, 0, :, :, 0, :].permute(0, 2, 1, 3)
        return a, delays[:, 0, 0, :]

    def reports(self, start: int, n: int, band: str = "uplink") -> np.ndarray:
        """Complex64 reports ``(batch, n, A, K)`` at report indices ``start … start+n−1``."""
        import torch

        check_number(start, "start", low=0, integer=True)
        check_number(n, "n", low=0, integer=True)
        a, tau = self.coefficients(start, n)
        freqs = torch.as_tensor(self.config.band_frequencies(band), dtype=tau.dtype)
        # H(f) = Σ_paths a · exp(−j 2π f τ)   (as sionna.phy.channel.cir_to_ofdm_channel)
        steering = torch.polar(torch.ones((), dtype=tau.dtype), -2 * np.pi * tau[:, :, None] * freqs[None, None, :])
        h = torch.einsum("bapt,bpk->btak", a, steering)
        return h.to(torch.complex64).numpy()
