"""``edgestream simulate``: synthetic streams over LSL for when there is no hardware."""

from __future__ import annotations

import click

from edgestream.cli.foreground import apply_priority, priority_option


@click.group("simulate")
def command() -> None:
    """Publish simulated signals as real LSL streams (Ctrl-C to stop)."""


@command.command("eeg")
@click.option("--channels", "-c", type=int, default=64, show_default=True, help="Electrodes (1-64, 10-10 montage).")
@click.option("--sfreq", "-s", type=float, default=1000.0, show_default=True, help="Sampling rate (Hz).")
@click.option("--chunk", type=int, default=10, show_default=True, help="Samples per push.")
@click.option("--name", default="edgestream-sim-eeg", show_default=True, help="EEG stream name (markers: NAME-markers).")
@click.option("--source-id", default=None, help="EEG stream source_id (default: the name).")
@click.option("--duration", "-t", type=float, default=None, help="Seconds to publish (default: until Ctrl-C).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same signal).")
@click.option("--line-freq", type=float, default=50.0, show_default=True, help="Power-line noise (Hz); 0 for none.")
@click.option("--no-markers", is_flag=True, help="No cues: no mu/beta desynchronisation, no marker stream.")
@click.option("--no-blinks", is_flag=True, help="No eye blinks on the frontal channels.")
@click.option("--counter", is_flag=True, help="Append a 'counter' channel (0, 1, 2, ... per sample).")
@priority_option
def eeg(channels: int, sfreq: float, chunk: int, name: str, source_id: str | None, duration: float | None, seed: int,
        line_freq: float, no_markers: bool, no_blinks: bool, counter: bool, priority: str) -> None:
    """Realistic EEG: 1/f background, posterior alpha, lateralised mu/beta desynchronisation after
    "left"/"right" cues (published as a Markers stream), line noise and blinks, in µV.

    \b
    Example:
      edgestream simulate eeg --channels 32 --sfreq 500 --counter --duration 60
    """
    from edgestream.cli.foreground import serve
    from edgestream.sources.simulate_eeg import EEGSimulator

    apply_priority(priority)
    sim = EEGSimulator(n_channels=channels, sfreq=sfreq, chunk_size=chunk, name=name, source_id=source_id or name,
                       seed=seed, line_freq=line_freq or None, markers=not no_markers, blinks=not no_blinks,
                       counter=counter, duration=duration)
    sim.start()
    extra = "" if no_markers else f" and markers {sim.markers_info.name!r}"
    click.echo(f"simulating {sim.info.n_channels}-channel EEG at {sfreq:g} Hz as {name!r} (source_id "
               f"{sim.source_id!r}){extra}; Ctrl-C to stop", err=True)
    reason = serve(sim.wait, sim.stop)
    click.echo(f"stopped ({reason}) after {sim.samples_pushed} samples", err=True)


def _panel(antennas: int, polarization: str) -> tuple[int, int]:
    """Rows × columns of the most square panel with ``antennas`` ports (2 per element when dual-polarised)."""
    from edgestream.core.errors import ConfigError

    per = 2 if polarization == "dual" else 1
    if antennas < per or antennas % per:
        raise ConfigError(f"--antennas must be a positive multiple of {per} for a {polarization}-polarised panel; got "
                          f"{antennas}. E.g. --antennas 32 (4x4 dual) or --polarization single.")
    elements = antennas // per
    rows = max(r for r in range(1, int(elements**0.5) + 1) if elements % r == 0)
    return rows, elements // rows


@command.command("csi")
@click.option("--model", "-m", default="CDL-C", show_default=True, help="3GPP TR 38.901 CDL profile: CDL-A ... CDL-E.")
@click.option("--speed", type=float, default=30.0, show_default=True, help="UE speed (m/s).")
@click.option("--delay-spread", type=float, default=100.0, show_default=True, help="RMS delay spread (ns).")
@click.option("--snr", type=float, default=None, help="AWGN on the reports, SNR in dB (default: none).")
@click.option("--phase-noise", type=float, default=0.0, show_default=True, help="Phase-noise std (rad).")
@click.option("--burst-prob", type=float, default=0.0, show_default=True, help="Probability per report that an interference burst starts.")
@click.option("--burst-length", type=int, default=10, show_default=True, help="Reports per burst.")
@click.option("--burst-amplitude", type=float, default=1.0, show_default=True, help="Burst RMS at its peak / signal RMS.")
@click.option("--drop-prob", type=float, default=0.0, show_default=True, help="Probability a report is lost.")
@click.option("--drop-mode", type=click.Choice(["zero", "skip"]), default="zero", show_default=True,
              help="Lost reports: published as zeros, or not published (the counter skips).")
@click.option("--antennas", type=int, default=32, show_default=True, help="Base-station antennas (32 = 4x4 dual-polarised).")
@click.option("--polarization", type=click.Choice(["dual", "single"]), default="dual", show_default=True)
@click.option("--subcarriers", type=int, default=300, show_default=True, help="Subcarriers per report.")
@click.option("--scs", type=float, default=30.0, show_default=True, help="Subcarrier spacing (kHz).")
@click.option("--carrier", type=float, default=2.4, show_default=True, help="Carrier frequency (GHz).")
@click.option("--rate", type=float, default=400.0, show_default=True,
              help="Reports per second (a whole number of slots apart: 400 = every 5 slots at 30 kHz).")
@click.option("--chunk", type=int, default=1, show_default=True, help="Reports per push.")
@click.option("--name", default="edgestream-sim-csi", show_default=True, help="Stream name.")
@click.option("--source-id", default=None, help="Stream source_id (default: the name).")
@click.option("--duration", "-t", type=float, default=None, help="Seconds to publish (default: until Ctrl-C).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same channel and noise).")
@click.option("--wait", type=float, default=0.0, show_default=True,
              help="Seconds to wait for a consumer before the first report (it then receives every report).")
@priority_option
def csi(model: str, speed: float, delay_spread: float, snr: float | None, phase_noise: float, burst_prob: float,
        burst_length: int, burst_amplitude: float, drop_prob: float, drop_mode: str, antennas: int, polarization: str,
        subcarriers: int, scs: float, carrier: float, rate: float, chunk: int, name: str, source_id: str | None,
        duration: float | None, seed: int, wait: float, priority: str) -> None:
    """CSI reports of a 3GPP CDL channel (sionna-no-rt): antennas x subcarriers x {re, im} per report
    plus a counter channel holding the report index; layout and scenario in desc/csi, type "CSI".

    \b
    Example:
      edgestream simulate csi --model CDL-C --speed 30 --snr 20 --drop-prob 0.02
      edgestream run csi_predict          # in another terminal
    """
    from edgestream.cli.foreground import serve
    from edgestream.core.errors import ConfigError
    from edgestream.csi.channel import CSIConfig
    from edgestream.csi.noise import NoiseConfig
    from edgestream.sources.simulate_csi import CSISimulator

    rows, cols = _panel(antennas, polarization)
    slots_per_second = 1000.0 * scs / 15.0
    period = slots_per_second / rate if rate > 0 else float("nan")
    if not (period >= 1 and abs(period - round(period)) < 1e-9):
        raise ConfigError(f"--rate must be {slots_per_second:g} Hz divided by a whole number of slots at {scs:g} kHz SCS; "
                          f"got {rate:g}. E.g. --rate {slots_per_second / 5:g} (every 5 slots).")
    config = CSIConfig(model=model, delay_spread=delay_spread * 1e-9, speed=speed, carrier_frequency=carrier * 1e9,
                       subcarrier_spacing=scs * 1e3, n_subcarriers=subcarriers, array_rows=rows, array_cols=cols,
                       polarization=polarization, report_period_slots=int(round(period)))
    noise = NoiseConfig(snr_db=snr, phase_std=phase_noise, burst_prob=burst_prob, burst_length=burst_length,
                        burst_amplitude=burst_amplitude, drop_prob=drop_prob)
    apply_priority(priority)
    sim = CSISimulator(config, noise, seed=seed, name=name, source_id=source_id or name, drop_mode=drop_mode,
                       chunk_size=chunk, duration=duration, wait_for_consumer=wait)
    sim.start()
    click.echo(f"simulating CDL-{config.model} CSI ({config.n_antennas} antennas x {subcarriers} subcarriers, "
               f"{config.report_rate:g} reports/s, {speed:g} m/s, {delay_spread:g} ns) as {name!r} (source_id "
               f"{sim.source_id!r}); Ctrl-C to stop", err=True)
    reason = serve(sim.wait, sim.stop)
    click.echo(f"stopped ({reason}) after {sim.reports_pushed} reports ({sim.reports_dropped} lost)", err=True)
