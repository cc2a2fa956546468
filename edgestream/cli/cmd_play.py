"""``edgestream play FILE``: replay a recording over LSL."""

from __future__ import annotations

import click

from edgestream.cli.foreground import apply_priority, priority_option


@click.command("play")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--speed", type=float, default=1.0, show_default=True, help="Playback speed (2 = twice real time).")
@click.option("--loop", is_flag=True, help="Start again at the end of the file.")
@click.option("--name", default=None, help="Stream name (XDF: prefix of the original names). Default: the file name.")
@click.option("--source-id", default=None, help="Base source_id (default: stable per file).")
@click.option("--duration", "-t", type=float, default=None, help="Stop after this many seconds.")
@click.option("--counter", is_flag=True, help="Append a 'counter' channel to numeric streams.")
@click.option("--no-markers", is_flag=True, help="Do not publish annotations/events or XDF marker streams.")
@click.option("--picks", default=None, help="FIF/EDF/BDF channels to publish: MNE types or names, comma-separated "
                                            "(e.g. 'eeg' or 'eeg,eog'). Default: all channels.")
@click.option("--chunk", type=int, default=10, show_default=True, help="Samples per push at the highest rate.")
@click.option("--wait", "wait_s", type=float, default=0.0, show_default=True,
              help="Seconds to wait for a consumer on every stream before playback starts.")
@priority_option
def command(file: str, speed: float, loop: bool, name: str | None, source_id: str | None, duration: float | None,
            counter: bool, no_markers: bool, picks: str | None, chunk: int, wait_s: float, priority: str) -> None:
    """Replay FILE (FIF, EDF, BDF, GDF or XDF) as LSL streams with its original timing.

    EEG channels are published in µV with their units in the stream metadata; annotations
    (or stim-channel events) become a Markers stream. Every stream of an XDF file is replayed.

    \b
    Examples:
      edgestream play ../shared/data/eeg/mne_sample_audvis_raw.fif --picks eeg --loop
      edgestream play session.xdf --speed 4
    """
    from edgestream.cli.foreground import serve
    from edgestream.sources.player import FilePlayer

    apply_priority(priority)
    pick = [p.strip() for p in picks.split(",") if p.strip()] if picks else None
    player = FilePlayer(file, speed=speed, loop=loop, name=name, source_id=source_id, chunk_size=chunk,
                        counter=counter, markers=not no_markers, picks=pick, wait_for_consumers=wait_s)
    player.start()
    for info in player.infos:
        rate = "irregular" if info.sfreq == 0 else f"{info.sfreq:g} Hz"
        click.echo(f"playing {info.name!r} ({info.type}, {info.n_channels} ch, {rate}, source_id {info.source_id!r})",
                   err=True)
    click.echo(f"{player.span:.1f} s of recording at {speed:g}x{', looping' if loop else ''}; Ctrl-C to stop", err=True)
    reason = serve(player.wait, player.stop, duration)
    click.echo(f"stopped ({reason}) after {sum(player.samples_pushed)} samples", err=True)
