"""``edgestream run``: run a pipeline file on live streams."""

from __future__ import annotations

import json
import signal

import click


@click.command("run")
@click.argument("pipeline", required=False, default="eeg_bandpower")
@click.option("--device", "-d", default=None, help="Device profile name (cpu, desktop-cuda, jetson, rpi5) or YAML path. "
              "Default: the pipeline's `device`, else cpu.")
@click.option("--duration", "-t", type=float, default=None, help="Stop after this many seconds (default: the pipeline's "
              "`duration`, else run until Ctrl-C).")
@click.option("--set", "overrides", multiple=True, metavar="NODE.PARAM=VALUE",
              help="Override a parameter, e.g. --set model.checkpoint=model.pt (repeatable).")
@click.option("--summary-json", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write the summary as JSON to this file.")
@click.option("--no-monitor", is_flag=True, help="Do not publish the latency and health LSL streams.")
def command(pipeline: str, device: str | None, duration: float | None, overrides: tuple[str, ...],
            summary_json: str | None, no_monitor: bool) -> None:
    """Run PIPELINE (a YAML file or a bundled name; default: eeg_bandpower).

    \b
    Examples:
      edgestream run                                   # default EEG band-power pipeline
      edgestream run assets/pipelines/reference.yaml --device jetson --duration 30
      edgestream run mi_dbconformer --set model.checkpoint=model.pt
    """
    from edgestream.core.device import load_profile
    from edgestream.pipeline import Engine, build, format_summary, load_pipeline
    from edgestream.runners.export import show_progress

    spec = load_pipeline(pipeline, overrides)
    show_progress()
    profile = load_profile(device or spec.device or "cpu")  # logs each fallback decision
    graph = build(spec, profile)
    click.echo(f"edgestream: starting pipeline {spec.name!r} on device {profile.name!r} "
               f"({profile.backend}, {profile.torch_device}, {profile.threads} thread(s)); resolving streams...", err=True)
    graph.start()
    for s in graph.sources:
        i = s.info
        click.echo(f"  source {s.id}: {i.name!r} type {i.type} {i.n_channels} ch @ {i.sfreq:g} Hz (source_id {i.source_id!r})", err=True)
    engine = Engine(graph, publish=not no_monitor)
    previous = {sig: signal.signal(sig, lambda *_: engine.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    limit = duration if duration is not None else spec.duration
    click.echo(f"  running {'for %.0f s' % limit if limit else 'until Ctrl-C'}...", err=True)
    try:
        summary = engine.run(limit, raise_errors=False)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(format_summary(summary))
    if summary_json:
        with open(summary_json, "w") as f:
            json.dump(summary, f, indent=2, default=str)
    if engine.errors:
        raise engine.errors[0]
