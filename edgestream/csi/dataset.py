"""Generated CSI datasets, cached on disk and reproducible from their specification.

A dataset is a set of *scenarios* (CDL profile × delay spread × UE speed), each with
``samples_per_scenario`` independent links; a sample is ``hist_len + pred_len`` consecutive
reports (16 + 4). Clean channels are generated once per scenario and cached under
``edgestream.core.paths.cache_dir("csi")`` in a file named by a hash of everything that
determines them (the spec, the scenario, the Sionna version and a format version), so the same
spec always loads the same numbers and a changed spec never reads a stale file. Report noise is
applied at load time (cheap, seeded), so trying other noise levels never regenerates channels.

::

    spec = CSIDatasetSpec(scenarios=grid(["A", "C"], [100e-9], [10, 30]), samples_per_scenario=32, seed=1)
    data = build_csi_dataset(spec, NoiseConfig(snr_db=20))
    x, y = data.arrays()          # (N, 32, 16, 600), (N, 32, 4, 600) float32, interleaved Re/Im
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgestream.core.checks import check_number, fail
from edgestream.core.paths import cache_dir
from edgestream.csi.channel import CSIConfig, cdl_letter
from edgestream.csi.layout import interleave
from edgestream.csi.noise import NoiseConfig, ReportNoise

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the generated content changes for the same spec


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One propagation condition."""

    model: str  # CDL profile letter ("CDL-C" accepted)
    delay_spread: float  # s
    speed: float  # m/s

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", cdl_letter(self.model))
        object.__setattr__(self, "delay_spread", float(self.delay_spread))
        object.__setattr__(self, "speed", float(self.speed))

    @property
    def name(self) -> str:
        return f"CDL-{self.model}_{round(self.delay_spread * 1e9)}ns_{self.speed:g}mps"


def grid(models: Iterable[str], delay_spreads: Iterable[float], speeds: Iterable[float]) -> tuple[Scenario, ...]:
    """All combinations, models slowest."""
    return tuple(Scenario(m, d, s) for m, d, s in itertools.product(models, delay_spreads, speeds))


# The paper's regular set: CDL-A/C/D × {30, 100, 300} ns × {1, 10, 30} m/s (27 scenarios).
REGULAR = grid("ACD", (30e-9, 100e-9, 300e-9), (1.0, 10.0, 30.0))


@dataclasses.dataclass(frozen=True)
class CSIDatasetSpec:
    """Everything that determines the clean channels of a dataset."""

    scenarios: tuple[Scenario, ...] = REGULAR
    samples_per_scenario: int = 64  # independent links per scenario
    hist_len: int = 16  # reports the predictor sees
    pred_len: int = 4  # reports it predicts
    channel: CSIConfig = CSIConfig()  # carrier, numerology, array; model/delay spread/speed come from each scenario
    fdd: bool = False  # also generate the downlink band (targets of FDD prediction)
    normalize: bool = True  # scale each sample to unit mean power over its reports (and bands)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "scenarios", tuple(self.scenarios))
        if not self.scenarios:
            fail("scenarios", "name at least one scenario", self.scenarios, "Use csi.dataset.grid(...) or REGULAR.")
        check_number(self.samples_per_scenario, "samples_per_scenario", low=1, integer=True)
        check_number(self.hist_len, "hist_len", low=1, integer=True)
        check_number(self.pred_len, "pred_len", low=1, integer=True)
        check_number(self.seed, "seed", low=0, integer=True)

    def scenario_key(self, scenario: Scenario) -> str:
        """Cache key of one scenario's clean channels."""
        import sionna

        payload = {
            "format": FORMAT_VERSION,
            "sionna": getattr(sionna, "__version__", "?"),
            "scenario": dataclasses.asdict(scenario),
            "samples": self.samples_per_scenario,
            "reports": self.hist_len + self.pred_len,
            "channel": dataclasses.asdict(self.channel) | {"model": "", "delay_spread": 0.0, "speed": 0.0},
            "fdd": self.fdd,
            "normalize": self.normalize,
            "seed": self.seed,
        }
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]
        return f"{scenario.name}_{digest}"

    def scenario_seed(self, scenario: Scenario) -> int:
        return int.from_bytes(hashlib.sha256(f"{self.seed}:{scenario.name}".encode()).digest()[:7], "little")


@dataclasses.dataclass
class CSIDataset:
    """Samples of a :class:`CSIDatasetSpec` with noise applied to the history.

    Arrays are complex64 with antennas before time, matching the predictors' input layout.
    """

    spec: CSIDatasetSpec
    history: np.ndarray  # (N, A, hist_len, K) noisy history (what a predictor sees)
    history_clean: np.ndarray  # (N, A, hist_len, K)
    future: np.ndarray  # (N, A, pred_len, K) clean targets (uplink band; downlink with fdd=True)
    scenario_index: np.ndarray  # (N,) index into spec.scenarios
    dropped: np.ndarray  # (N, hist_len) bool: history reports lost (zeroed)
    snr_db: np.ndarray  # (N,) AWGN SNR applied per sample (NaN: none)

    def __len__(self) -> int:
        return int(self.history.shape[0])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` float32 interleaved: ``(N, A, hist_len, 2K)`` and ``(N, A, pred_len, 2K)``."""
        return interleave(self.history), interleave(self.future)

    def subset(self, index: Any) -> CSIDataset:
        """Samples selected by ``index`` (mask, slice or integer array)."""
        return CSIDataset(
            self.spec, self.history[index], self.history_clean[index], self.future[index],
            self.scenario_index[index], self.dropped[index], self.snr_db[index],
        )

    def for_scenario(self, scenario: Scenario) -> CSIDataset:
        return self.subset(self.scenario_index == self.spec.scenarios.index(scenario))


def generate_scenario(spec: CSIDatasetSpec, scenario: Scenario, root: Path | None = None) -> dict[str, np.ndarray]:
    """Clean reports of one scenario, from the cache or generated (then cached).

    Returns ``{"uplink": (S, T, A, K)}`` (+ ``"downlink"`` with ``spec.fdd``), complex64,
    ``S = samples_per_scenario``, ``T = hist_len + pred_len``.
    """
    from edgestream.csi.channel import CDLChannel

    root = Path(root) if root is not None else cache_dir("csi")
    path = root / f"{spec.scenario_key(scenario)}.npz"
    if path.is_file():
        with np.load(path) as blob:
            return {k: blob[k] for k in blob.files}
    config = dataclasses.replace(spec.channel, model=scenario.model, delay_spread=scenario.delay_spread, speed=scenario.speed)
    n_reports = spec.hist_len + spec.pred_len
    seed = spec.scenario_seed(scenario)
    parts: dict[str, list[np.ndarray]] = {"uplink": [], "downlink": []}
    batch = 32  # links per Sionna call (bounded memory)
    for b, first in enumerate(range(0, spec.samples_per_scenario, batch)):
        count = min(batch, spec.samples_per_scenario - first)
        channel = CDLChannel(config, batch=count, seed=(seed + b) % 2**63)
        up = channel.reports(0, n_reports, "uplink")
        down = channel.reports(0, n_reports, "downlink") if spec.fdd else None
        if spec.normalize:
            power = np.mean(np.abs(up) ** 2, axis=(1, 2, 3))
            if down is not None:
                power = (power + np.mean(np.abs(down) ** 2, axis=(1, 2, 3))) / 2
            scale = (1.0 / np.sqrt(power)).astype(np.float32)[:, None, None, None]
            up = up * scale
            down = down * scale if down is not None else None
        parts["uplink"].append(up)
        if down is not None:
            parts["downlink"].append(down)
    out = {k: np.concatenate(v) for k, v in parts.items() if v}
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(path)  # atomic: a concurrent reader never sees a partial file
    log.info("cached %s (%d samples) at %s", scenario.name, spec.samples_per_scenario, path)
    return out


def build_csi_dataset(
    spec: CSIDatasetSpec,
    noise: NoiseConfig | None = None,
    *,
    snr_range: Sequence[float] | None = None,
    noise_seed: int = 0,
    root: str | os.PathLike[str] | None = None,
) -> CSIDataset:
    """Load (generating if needed) every scenario of ``spec`` and noise the histories.

    Parameters
    ----------
    noise : NoiseConfig, optional
        Impairments of the history (none by default).
    snr_range : (low, high) dB, optional
        Draw each sample's AWGN SNR uniformly from this range (the paper trains on 0–25 dB);
        overrides ``noise.snr_db``.
    noise_seed : int
        Seed of the noise (independent of the channel seed).
    root : path, optional
        Cache directory (default ``cache_dir("csi")``).
    """
    noise = noise or NoiseConfig()
    if snr_range is not None:
        lo, hi = (float(v) for v in snr_range)
        if not lo <= hi:
            fail("snr_range", "be (low, high) with low <= high", snr_range)
    hist, fut, idx = [], [], []
    for i, scenario in enumerate(spec.scenarios):
        data = generate_scenario(spec, scenario, Path(root) if root else None)
        up = data["uplink"].transpose(0, 2, 1, 3)  # (S, A, T, K)
        target = data["downlink"].transpose(0, 2, 1, 3) if spec.fdd else up
        hist.append(up[:, :, : spec.hist_len])
        fut.append(target[:, :, spec.hist_len :])
        idx.append(np.full(up.shape[0], i))
    clean = np.concatenate(hist)
    rng = np.random.default_rng(np.random.SeedSequence([noise_seed, 0x5EED]))
    snrs = rng.uniform(*snr_range, size=len(clean)) if snr_range is not None else np.full(len(clean), noise.snr_db if noise.snr_db is not None else np.nan)
    noisy = np.empty_like(clean)
    dropped = np.zeros(clean.shape[:1] + clean.shape[2:3], dtype=bool)
    for n in range(len(clean)):
        cfg = dataclasses.replace(noise, snr_db=None if np.isnan(snrs[n]) else float(snrs[n]))
        if not cfg.active:
            noisy[n] = clean[n]
            continue
        sample = clean[n].transpose(1, 0, 2)  # (T, A, K): noise runs over time
        source = ReportNoise(cfg, seed=[noise_seed, n], signal_power=float(np.mean(np.abs(sample) ** 2)))
        out, drop = source.apply(sample)
        noisy[n] = out.transpose(1, 0, 2)
        dropped[n] = drop
    return CSIDataset(spec, noisy, clean, np.concatenate(fut), np.concatenate(idx), dropped, snrs)
