"""``edgestream replay``: re-run a recorded session's pipeline and compare its outputs with the recording."""

from __future__ import annotations

import json
import sys

import click


@click.command("replay")
@click.argument("session", type=click.Path(dir_okay=False))
@click.option("--pipeline", "-p", default=None, help="Pipeline file or bundled name (default: the one in the run "
              "manifest beside the XDF file).")
@click.option("--set", "overrides", multiple=True, metavar="NODE.PARAM=VALUE",
              help="Change a parameter for the replay, e.g. --set model.checkpoint=other.pt (repeatable).")
@click.option("--device", "-d", default=None, help="Device profile (default: the recorded run's).")
@click.option("--speed", type=float, default=None, help="Feed the inputs at this multiple of real time "
              "(timestamps stay the recorded ones).")
@click.option("--as-fast-as-possible", "fast", is_flag=True, help="Feed the inputs as fast as the pipeline takes them "
              "(the default).")
@click.option("--tolerance", type=float, default=1e-4, show_default=True,
              help="A value differs when |replayed - recorded| > tolerance x max(1, |recorded|).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write the comparison as JSON to this file.")
def command(session: str, pipeline: str | None, overrides: tuple[str, ...], device: str | None, speed: float | None,
            fast: bool, tolerance: float, json_out: str | None) -> None:
    """Replay SESSION (an XDF file recorded by edgestream) through its pipeline and compare outputs.

    \b
    Each recorded input is fed to the pipeline with its recorded timestamps, starting at the
    sample the live run started with; each output stream is compared with the recorded one,
    sample by sample (matched by timestamp). Exit code 0: every output reproduced within the
    tolerance; 1: some output differs; 2: the session or pipeline is unusable (e.g. a
    corrupted XDF file).

    \b
    Examples:
      edgestream replay recordings/sub-01/eeg/sub-01_task-mi_run-01_eeg.xdf
      edgestream replay session.xdf --set model.checkpoint=retrained.pt      # what would change?
      edgestream replay session.xdf --pipeline eeg_bandpower --speed 1        # session from `edgestream record`
    """
    from edgestream.core.errors import ConfigError
    from edgestream.record.compare import format_table
    from edgestream.record.replay import replay

    if fast and speed is not None:
        raise ConfigError(f"--speed and --as-fast-as-possible exclude each other; got --speed {speed:g} and "
                          "--as-fast-as-possible. Give one of them.")
    click.echo(f"edgestream replay: {session}", err=True)
    result = replay(session, pipeline, overrides, device, speed, tolerance)
    for warning in result.warnings:
        click.echo(f"  warning: {warning}", err=True)
    for sid, entry in result.inputs.items():
        click.echo(f"  input {sid}: {entry['stream']!r}, {entry['samples']} samples ({entry['seconds']:.1f} s)", err=True)
    click.echo(format_table(result.diffs))
    differ = [d for d in result.diffs if not d.ok]
    if result.ok:
        click.echo(f"replay reproduces all {len(result.diffs)} output streams of pipeline {result.pipeline!r} "
                   f"(tolerance {tolerance:g})")
    else:
        click.echo(f"replay DIFFERS: {len(differ)} of {len(result.diffs)} output streams of pipeline "
                   f"{result.pipeline!r} are not reproduced (tolerance {tolerance:g})")
    if json_out:
        with open(json_out, "w") as f:
            json.dump(result.to_dict(), f, indent=2, default=str)
    if not result.ok:
        sys.exit(1)
