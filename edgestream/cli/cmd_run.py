"""``edgestream run``: run a pipeline file on live streams."""

from __future__ import annotations

import json
import signal

import click

from edgestream.cli.foreground import apply_priority, priority_option


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
@click.option("--record", "record_out", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Record every input and output to XDF under DIR (BIDS names; the pipeline's `record:` section "
              "sets subject/task/run, change them with --set record.subject=02).")
@click.option("--no-record", is_flag=True, help="Ignore the pipeline's `record:` section.")
@priority_option
def command(pipeline: str, device: str | None, duration: float | None, overrides: tuple[str, ...],
            summary_json: str | None, no_monitor: bool, record_out: str | None, no_record: bool, priority: str) -> None:
    """Run PIPELINE (a YAML file or a bundled name; default: eeg_bandpower).

    \b
    Examples:
      edgestream run                                   # default EEG band-power pipeline
      edgestream run assets/pipelines/reference.yaml --device jetson --duration 30
      edgestream run mi_dbconformer --set model.checkpoint=model.pt
      edgestream run eeg_bandpower --record recordings --set record.subject=02 --duration 60
      edgestream run reference --priority realtime  # needs root or CAP_SYS_NICE; then a dashboard cannot delay it
    """
    applied_priority = apply_priority(priority)
    from edgestream.core.device import load_profile
    from edgestream.pipeline import Engine, build, format_summary, load_pipeline
    from edgestream.runners.export import show_progress

    if record_out and no_record:
        from edgestream.core.errors import ConfigError

        raise ConfigError(f"--record and --no-record exclude each other; got --record {record_out} and --no-record. "
                          "Give one of them.")
    spec = load_pipeline(pipeline, overrides)
    show_progress()
    profile = load_profile(device or spec.device or "cpu")  # logs each fallback decision
    recording = None
    if not no_record:
        from edgestream.record.pipeline_recording import PipelineRecording

        spec, recording = PipelineRecording.prepare(spec, list(overrides), profile, out=record_out,
                                                    on_problem=lambda m: click.echo(f"  warning: {m}", err=True))
    graph = build(spec, profile)
    click.echo(f"edgestream: starting pipeline {spec.name!r} on device {profile.name!r} "
               f"({profile.backend}, {profile.torch_device}, {profile.threads} thread(s)); resolving streams...", err=True)
    graph.start()
    for s in graph.sources:
        i = s.info
        click.echo(f"  source {s.id}: {i.name!r} type {i.type} {i.n_channels} ch @ {i.sfreq:g} Hz (source_id {i.source_id!r})", err=True)
    engine = Engine(graph, publish=not no_monitor, recording=recording)
    if recording is not None:
        click.echo(f"  recording to {recording.record.name.path(recording.record.out)} (starts with the run)", err=True)
    previous = {sig: signal.signal(sig, lambda *_: engine.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    limit = duration if duration is not None else spec.duration
    click.echo(f"  running {'for %.0f s' % limit if limit else 'until Ctrl-C'}...", err=True)
    try:
        summary = engine.run(limit, raise_errors=False)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary["priority"] = applied_priority
    click.echo(format_summary(summary))
    rec = summary.get("recording")
    if rec:
        click.echo(f"  recording {rec.get('status')}: {', '.join(rec.get('files', [])) or '(no file)'}")
        for old, new in rec.get("renamed", []):
            click.echo(f"  (an earlier recording {old} was renamed {new})")
        for problem in rec.get("problems", []):
            click.echo(f"  recording problem: {problem}")
    if summary_json:
        with open(summary_json, "w") as f:
            json.dump(summary, f, indent=2, default=str)
    if engine.errors:
        raise engine.errors[0]
