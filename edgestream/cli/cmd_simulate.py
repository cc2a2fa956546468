"""``edgestream simulate``: synthetic streams over LSL for when there is no hardware."""

from __future__ import annotations

import click


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
def eeg(channels: int, sfreq: float, chunk: int, name: str, source_id: str | None, duration: float | None, seed: int,
        line_freq: float, no_markers: bool, no_blinks: bool, counter: bool) -> None:
    """Realistic EEG: 1/f background, posterior alpha, lateralised mu/beta desynchronisation after
    "left"/"right" cues (published as a Markers stream), line noise and blinks, in µV.

    \b
    Example:
      edgestream simulate eeg --channels 32 --sfreq 500 --counter --duration 60
    """
    from edgestream.cli._serve import serve
    from edgestream.sources.simulate_eeg import EEGSimulator

    sim = EEGSimulator(n_channels=channels, sfreq=sfreq, chunk_size=chunk, name=name, source_id=source_id or name,
                       seed=seed, line_freq=line_freq or None, markers=not no_markers, blinks=not no_blinks,
                       counter=counter, duration=duration)
    sim.start()
    extra = "" if no_markers else f" and markers {sim.markers_info.name!r}"
    click.echo(f"simulating {sim.info.n_channels}-channel EEG at {sfreq:g} Hz as {name!r} (source_id "
               f"{sim.source_id!r}){extra}; Ctrl-C to stop", err=True)
    reason = serve(sim.wait, sim.stop)
    click.echo(f"stopped ({reason}) after {sim.samples_pushed} samples", err=True)
