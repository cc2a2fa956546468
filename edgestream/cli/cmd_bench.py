"""``edgestream bench``: does this device meet its latency budget on this pipeline? A table and a JSON report."""

from __future__ import annotations

import click


@click.command("bench")
@click.argument("pipeline", required=False, default="reference")
@click.option("--device", "-d", default=None, help="Device profile (cpu, desktop-cuda, jetson, rpi5) or YAML path. "
              "Default: the pipeline's `device`, else cpu.")
@click.option("--duration", "-t", type=float, default=10.0, show_default=True, help="Seconds measured.")
@click.option("--warmup", type=float, default=2.0, show_default=True,
              help="Seconds run before measuring (the backlog from building the graph drains).")
@click.option("--source", "-s", default="simulate", show_default=True, metavar="simulate|live|FILE",
              help="Input: the in-process EEG simulator, the pipeline's own sources, or a recording replayed in real time.")
@click.option("--channels", type=int, default=None, help="Simulator channels (default: the simulator's).")
@click.option("--sfreq", type=float, default=None, help="Simulator sampling rate in Hz (default: the simulator's).")
@click.option("--set", "overrides", multiple=True, metavar="NODE.PARAM=VALUE", help="Override a pipeline parameter (repeatable).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the shareable report as JSON to this file ('-' for stdout).")
@click.option("--check", is_flag=True, help="Exit with status 1 when the verdict is FAIL.")
def command(pipeline: str, device: str | None, duration: float, warmup: float, source: str, channels: int | None, sfreq: float | None,
            overrides: tuple[str, ...], json_path: str | None, check: bool) -> None:
    """Run PIPELINE on a simulated or replayed stream and report latency against the device budget.

    \b
    Reports per-stage and end-to-end latency (p50/p99/max), throughput, CPU, memory,
    drops, and pass/fail against the profile's latency_budget_ms and memory_budget_mb.

    \b
    Examples:
      edgestream bench reference --device rpi5 --duration 30 --channels 64 --sfreq 1000
      edgestream bench eeg_bandpower --source recording.fif --json report.json
      edgestream bench mi_dbconformer --device jetson --set model.checkpoint=model.pt
    """
    import json

    from edgestream.pipeline.bench import format_report, run_bench
    from edgestream.runners.export import show_progress

    show_progress()
    click.echo(f"edgestream bench: {pipeline} on {source} input, {warmup:g} s warm-up + {duration:g} s measured...", err=True)
    report = run_bench(pipeline, device, duration, source, channels, sfreq, overrides, warmup)
    text = json.dumps(report, indent=2, default=str)
    if json_path == "-":
        click.echo(text)
        click.echo(format_report(report), err=True)
    else:
        click.echo(format_report(report))
        if json_path:
            with open(json_path, "w") as f:
                f.write(text + "\n")
            click.echo(f"report written to {json_path}", err=True)
    if check and report["verdict"] != "PASS":
        raise SystemExit(1)
