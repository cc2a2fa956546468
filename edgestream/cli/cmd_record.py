"""``edgestream record``: record LSL streams to a BIDS-named XDF file with a run manifest."""

from __future__ import annotations

from typing import Any

import click


@click.command("record")
@click.option("--predicate", "-p", "predicates", multiple=True, metavar="XPATH",
              help="Record streams matching this LSL predicate, e.g. \"type='EEG'\" or \"source_id='amp1'\" "
                   "(repeatable; case-sensitive).")
@click.option("--all", "record_all", is_flag=True, help="Record every stream visible now.")
@click.option("--out", "-o", type=click.Path(file_okay=False), default="recordings", show_default=True,
              help="Root of the BIDS tree (sub-<id>/[ses-<id>/]eeg/ is created below it).")
@click.option("--subject", "-s", required=True, help="BIDS subject label (letters and digits), e.g. 01.")
@click.option("--session", default=None, help="BIDS session label (optional).")
@click.option("--task", "-t", required=True, help="BIDS task label, e.g. motorimagery.")
@click.option("--run", "-r", type=int, default=1, show_default=True, help="Run number (file name run-NN).")
@click.option("--acq", default=None, help="BIDS acquisition label (optional).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: until Ctrl-C).")
@click.option("--wait", type=float, default=1.0, show_default=True, help="Seconds to listen for matching streams.")
@click.option("--restarts", type=int, default=3, show_default=True,
              help="If the recorder dies, continue in _split-NN files this many times.")
def command(predicates: tuple[str, ...], record_all: bool, out: str, subject: str, session: str | None, task: str,
            run: int, acq: str | None, duration: float | None, wait: float, restarts: int) -> None:
    """Record LSL streams (all of them on one clock) into an XDF file, with a run manifest beside it.

    \b
    The file is OUT/sub-<subject>/[ses-<session>/]eeg/sub-<subject>[_ses-<session>]_task-<task>_run-<NN>_eeg.xdf;
    an existing file of that name is renamed (.old-<time>.xdf), never overwritten. Streams
    must be visible when recording starts. Ctrl-C (or --duration) stops the recording cleanly.

    \b
    Examples:
      edgestream record --all --subject 01 --task rest --duration 60
      edgestream record -p "type='EEG'" -p "type='Markers'" --subject 01 --session 02 --task mi --run 3
    """
    from edgestream.cli.foreground import serve
    from edgestream.core.errors import ConfigError, StreamError
    from edgestream.record.naming import BidsName
    from edgestream.record.session import Recording, resolve_predicates

    if record_all and predicates:
        raise ConfigError("--all and --predicate exclude each other; got both. Use --all for every visible stream, or "
                          "list the streams with --predicate.")
    if not record_all and not predicates:
        raise ConfigError("record needs --predicate XPATH (repeatable) or --all; got neither. "
                          "E.g. --predicate \"type='EEG'\" (see `edgestream streams`).")
    name = BidsName(subject=subject, task=task, run=run, session=session, acquisition=acq)
    streams = resolve_predicates(["true()"] if record_all else list(predicates), wait=wait, role="recorded",
                                 required=not record_all)
    if not streams:
        raise StreamError(f"no LSL stream is visible (listened {wait:g} s); start the producers first, or raise --wait.")
    recording = Recording(name, out, streams, restarts=restarts,
                          on_problem=lambda m: click.echo(f"warning: {m}", err=True))
    path = recording.start()
    for old, new in recording.renamed:
        click.echo(f"an earlier recording {old.name} was renamed {new.name}", err=True)
    click.echo(f"recording {len(streams)} stream(s) to {path}:", err=True)
    for s in streams:
        click.echo(f"  {s.name!r} type {s.type} {s.n_channels} ch @ {s.sfreq:g} Hz (source_id {s.source_id!r}, "
                   f"host {s.hostname!r})", err=True)
    click.echo(f"  {'for %g s' % duration if duration else 'until Ctrl-C'}...", err=True)
    try:
        reason = serve(lambda timeout: _wait_dead(recording, timeout), lambda: None, duration)
    finally:
        report = recording.stop()
    for entry in report["per_file"]:
        samples = ", ".join(f"{k} {v}" for k, v in sorted(entry.get("samples", {}).items()))
        click.echo(f"{entry['name']}: {entry['status']}; samples: {samples or 'none'}")
    if reason == "finished":  # the recorder died and could not be restarted
        raise StreamError(f"recording stopped early: {'; '.join(report['problems'])}")


def _wait_dead(recording: Any, timeout: float) -> bool:
    """For serve(): True once no recorder is running any more (it died with no restarts left)."""
    import time

    time.sleep(timeout)
    return not recording.active
