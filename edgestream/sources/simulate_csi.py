"""Simulated CSI reports: a real LSL outlet publisher (:class:`CSISimulator`, behind ``edgestream
simulate csi``) and an in-process source (kind ``"simulate_csi"``) that needs no LSL at all.

One simulated link: a 3GPP CDL channel (:mod:`edgestream.csi.channel`) evaluated at every report
time — one continuous, stationary channel for the whole run — with the report impairments of
:mod:`edgestream.csi.noise`. Each report is one sample of ``antennas × subcarriers × {re, im}``
channels (layout in ``desc/csi``, see :mod:`edgestream.csi.layout`) followed by a ``counter``
channel holding the *report index*. A lost report (``drop_prob``) is either published as zeros
(``drop_mode="zero"``, the training data's convention) or not published at all (``"skip"``): its
index is then missing from the counter, exactly like a report lost in transport.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np

from edgestream.core.checks import check_number, check_positive, check_value
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.clock import local_clock
from edgestream.core.io import SOURCES, ConnectionState, Source
from edgestream.csi.channel import CSIConfig
from edgestream.csi.layout import CSILayout, interleave
from edgestream.core.lslmeta import COUNTER_MODULUS, COUNTER_TYPE
from edgestream.csi.noise import NoiseConfig
from edgestream.sources.publisher import Publisher

log = logging.getLogger(__name__)

DROP_MODES = ("zero", "skip")
BLOCK_REPORTS = 20  # reports the publisher generates at a time


def csi_layout(config: CSIConfig, noise: NoiseConfig, seed: int, drop_mode: str) -> CSILayout:
    """The layout (and scenario metadata) of a simulated stream."""
    extra = config.describe() | {
        "generator": "edgestream.csi.channel (sionna-no-rt CDL)",
        "seed": seed,
        "noise": {k: ("none" if v is None else v) for k, v in dataclasses.asdict(noise).items()},
        "drop_mode": drop_mode,
    }
    return CSILayout(config.n_antennas, config.n_subcarriers, config.subcarrier_spacing, config.carrier_frequency,
                     config.report_rate, extra=extra)


def csi_stream_info(layout: CSILayout, name: str, source_id: str, counter: bool = True) -> StreamInfo:
    """StreamInfo of a CSI report stream: CSI channels (+ the report-index ``counter`` channel)."""
    names = layout.ch_names() + (["counter"] if counter else [])
    types = ["csi"] * layout.n_values + ([COUNTER_TYPE] if counter else [])
    return StreamInfo(name=name, type="CSI", source_id=source_id, sfreq=layout.report_rate, ch_names=names,
                      ch_types=types, units=["a.u."] * len(names), desc={"csi": layout.to_desc()})


class CSIReportGenerator:
    """The reports of one simulated link, block by block (no LSL, no clock).

    ``generate(n)`` returns the next ``n`` reports: data ``(n, n_values)`` float32 (dropped
    reports zeroed), report indices ``(n,)`` and the dropped mask ``(n,)``.
    """

    def __init__(self, config: CSIConfig, noise: NoiseConfig | None = None, seed: int = 0) -> None:
        from edgestream.csi.channel import CDLChannel
        from edgestream.csi.noise import ReportNoise

        self.config = config
        self.noise_config = noise or NoiseConfig()
        # float64 phases: a stream runs for hours (see CDLChannel)
        self.channel = CDLChannel(config, batch=1, seed=seed, double=True)
        self.noise = ReportNoise(self.noise_config, seed=[seed, 0x1D], signal_power=1.0)
        self.next_index = 0

    def clean(self, start: int, n: int) -> np.ndarray:
        """Noise-free reports ``start … start+n−1`` as complex ``(n, A, K)``."""
        return self.channel.reports(start, n)[0]

    def generate(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h = self.clean(self.next_index, n)
        noisy, dropped = self.noise.apply(h)
        indices = self.next_index + np.arange(n)
        self.next_index += n
        return interleave(noisy).reshape(n, -1), indices, dropped


def _with_counter(data: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return np.concatenate([data, (indices % COUNTER_MODULUS)[:, None].astype(np.float32)], axis=1)


class CSISimulator(Publisher):
    """Publish simulated CSI reports over LSL at the report rate (report ``i`` stamped ``t0 + i / rate``).

    Parameters
    ----------
    config : CSIConfig
    noise : NoiseConfig
    seed : int
    name, source_id : str
    drop_mode : str
        ``"zero"`` publishes lost reports as zeros; ``"skip"`` leaves them out (the counter skips).
    chunk_size : int
        Reports per push (1: each report leaves as soon as it is due).
    duration : float or None
        Seconds to publish; None runs until :meth:`stop`.
    wait_for_consumer : float
        Seconds to wait for a first consumer before report 0 (0: start at once). With it, a
        consumer that connects within that time receives every report.
    """

    def __init__(self, config: CSIConfig, noise: NoiseConfig | None = None, seed: int = 0, name: str = "edgestream-sim-csi",
                 source_id: str = "edgestream-sim-csi", drop_mode: str = "zero", chunk_size: int = 1,
                 duration: float | None = None, wait_for_consumer: float = 0.0) -> None:
        super().__init__()
        self.wait_for_consumer = check_number(wait_for_consumer, "wait_for_consumer", low=0.0)
        self.config = config
        self.noise = noise or NoiseConfig()
        self.seed = seed
        self.drop_mode = check_value(drop_mode, DROP_MODES, "drop_mode")
        self.chunk_size = check_positive(chunk_size, "chunk_size", integer=True)
        self.duration = None if duration is None else check_positive(duration, "duration")
        self.name, self.source_id = name, source_id
        self.layout = csi_layout(config, self.noise, seed, drop_mode)
        self.info = csi_stream_info(self.layout, name, source_id)
        self.generator = CSIReportGenerator(config, self.noise, seed)
        self.reports_pushed = 0  # samples published
        self.reports_dropped = 0  # reports lost (zeroed or skipped)
        self.t0 = float("nan")
        self._outlet: Any = None

    def _open(self) -> None:
        from edgestream.sinks.lsl_outlet import LSLOutlet

        context = {"pipeline": "simulate", "node": "csi", "input": "csi",
                   "pipeline_desc": {"generator": "edgestream.sources.simulate_csi", "chunk_size": self.chunk_size}}
        # The counter channel is ours (report indices, which skip lost reports), not the outlet's.
        outlet = LSLOutlet(name=self.name, source_id=self.source_id, counter=False, chunk_size=self.chunk_size)
        outlet.build(self.info, context)
        outlet.start()
        self._outlet = outlet

    def _publish(self) -> None:
        rate, chunk = self.config.report_rate, self.chunk_size
        total = None if self.duration is None else int(round(self.duration * rate))
        if self.wait_for_consumer > 0 and not self._outlet.wait_for_consumers(self.wait_for_consumer):
            log.warning("CSI simulator %r: no consumer after %.1f s; publishing anyway", self.name, self.wait_for_consumer)
        self.t0 = t0 = local_clock()
        k = 0
        ahead: list[np.ndarray] = []  # reports generated ahead of time: (data, indices, dropped)
        while not self._stop.is_set() and (total is None or k < total):
            n = chunk if total is None else min(chunk, total - k)
            if not ahead or len(ahead[1]) < n:
                # generate in blocks (one CDL evaluation per ~50 ms of reports is far cheaper than per report)
                block = max(n, BLOCK_REPORTS) if total is None else min(max(n, BLOCK_REPORTS), total - k)
                new = self.generator.generate(block - (len(ahead[1]) if ahead else 0))
                ahead = [np.concatenate([a, b]) for a, b in zip(ahead, new)] if ahead else list(new)
            data, indices, dropped = (a[:n] for a in ahead)
            ahead = [a[n:] for a in ahead]
            wait = t0 + (k + n - 1) / rate - local_clock()  # the chunk's newest report exists from then
            if wait > 0 and self._stop.wait(wait):
                break
            keep = ~dropped if self.drop_mode == "skip" else np.ones(n, bool)
            if keep.any():
                self._outlet.write(Chunk(_with_counter(data[keep], indices[keep]), t0 + indices[keep] / rate, self.info))
            self.reports_pushed += int(keep.sum())
            self.reports_dropped += int(dropped.sum())
            k += n

    def _close(self) -> None:
        if self._outlet is not None:
            self._outlet.stop()
            self._outlet = None


@SOURCES.register("simulate_csi")
class SimulatedCSISource(Source):
    """Simulated CSI generated in-process, chunk by chunk (no LSL): for benchmarks and tests.

    Parameters
    ----------
    model, delay_spread, speed, snr_db, phase_std, burst_prob, burst_length, burst_amplitude, drop_prob :
        Scenario and impairments (see :class:`CSIConfig` and :class:`NoiseConfig`).
    array_rows, array_cols, polarization, n_subcarriers, subcarrier_spacing, carrier_frequency :
        Array and numerology.
    seed : int
    drop_mode : str
        ``"zero"`` or ``"skip"`` (see module docstring).
    chunk_size : int
        Reports per chunk.
    realtime : bool
        Deliver each chunk when its newest report is due; False delivers as fast as read.
    duration : float or None
        Seconds of reports, then the source ends; None: endless.
    name : str
    """

    def __init__(self, model: str = "CDL-C", delay_spread: float = 100e-9, speed: float = 30.0, snr_db: float | None = None,
                 phase_std: float = 0.0, burst_prob: float = 0.0, burst_length: int = 10, burst_amplitude: float = 0.0,
                 drop_prob: float = 0.0, array_rows: int = 4, array_cols: int = 4, polarization: str = "dual",
                 n_subcarriers: int = 300, subcarrier_spacing: float = 30e3, carrier_frequency: float = 2.4e9,
                 seed: int = 0, drop_mode: str = "zero", chunk_size: int = 1, realtime: bool = True,
                 duration: float | None = None, name: str = "edgestream-sim-csi") -> None:
        super().__init__()
        self.config = CSIConfig(model=model, delay_spread=delay_spread, speed=speed, n_subcarriers=n_subcarriers,
                                subcarrier_spacing=subcarrier_spacing, carrier_frequency=carrier_frequency,
                                array_rows=array_rows, array_cols=array_cols, polarization=polarization)
        self.noise = NoiseConfig(snr_db=snr_db, phase_std=phase_std, burst_prob=burst_prob, burst_length=burst_length,
                                 burst_amplitude=burst_amplitude, drop_prob=drop_prob)
        self.seed = check_number(seed, "seed", low=0, integer=True)
        self.drop_mode = check_value(drop_mode, DROP_MODES, "drop_mode")
        self.chunk_size = check_positive(chunk_size, "chunk_size", integer=True)
        self.realtime = bool(realtime)
        self.duration = None if duration is None else check_positive(duration, "duration")
        self.name = name
        self.generator: CSIReportGenerator | None = None
        self._k = 0

    def start(self) -> StreamInfo:
        self.generator = CSIReportGenerator(self.config, self.noise, self.seed)
        layout = csi_layout(self.config, self.noise, self.seed, self.drop_mode)
        self.info = csi_stream_info(layout, self.name, f"simulate_csi-{self.seed}")
        self._t0 = local_clock()
        self._total = None if self.duration is None else int(round(self.duration * self.config.report_rate))
        self._set_state(ConnectionState.CONNECTED, self._t0, "simulating in-process")
        return self.info

    def read(self, timeout: float) -> list[Chunk]:
        if self._total is not None and self._k >= self._total:
            self._set_state(ConnectionState.ENDED, local_clock(), "simulated duration reached")
            return []
        rate = self.config.report_rate
        n = self.chunk_size if self._total is None else min(self.chunk_size, self._total - self._k)
        if self.realtime:
            wait = self._t0 + (self._k + n - 1) / rate - local_clock()
            if wait > timeout:
                time.sleep(max(0.0, timeout))
                return []
            if wait > 0:
                time.sleep(wait)
        data, indices, dropped = self.generator.generate(n)
        self._k += n
        keep = ~dropped if self.drop_mode == "skip" else np.ones(n, bool)
        self.samples_in += int(keep.sum())
        if not keep.any():
            return []
        return [Chunk(_with_counter(data[keep], indices[keep]), self._t0 + indices[keep] / rate, self.info)]
