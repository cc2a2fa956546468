"""``edgestream dashboard``: the live monitoring window."""

from __future__ import annotations

import click


@click.command("dashboard")
@click.option("--stream", "-s", "streams", multiple=True, metavar="NAME",
              help="Show only streams whose name, source_id or type matches NAME (shell wildcards allowed; "
                   "repeatable). Default: every stream found on the network.")
@click.option("--screenshot", type=click.Path(dir_okay=False), default=None,
              help="Save a screenshot of the window to this .png file after --after seconds, then exit.")
@click.option("--after", type=float, default=5.0, show_default=True, help="Seconds before the --screenshot is taken.")
@click.option("--duration", type=float, default=None, help="Close after this many seconds.")
@click.option("--fps", type=float, default=None, help="Frame-rate cap, 1-60 Hz (default: remembered, else 30).")
@click.option("--settings", "settings_file", type=click.Path(dir_okay=False), default=None,
              help="Keep settings in this INI file instead of the per-user settings store.")
@click.option("--reset-settings", is_flag=True, help="Forget the remembered layout, streams and panel choices.")
@click.option("--size", type=(int, int), default=None, metavar="W H", help="Window size in pixels.")
@click.option("--priority", type=click.Choice(["idle", "normal"]), default="idle", show_default=True,
              help="CPU priority. idle: the dashboard draws only when no pipeline (or other normal "
                   "program) wants the CPU; on a small machine also give the pipeline and its source "
                   "--priority realtime so that it cannot delay them. normal if it stutters on a desktop "
                   "busy with other work.")
@click.option("--stats-json", type=click.Path(dir_okay=False), default=None,
              help="At exit, write frame counters to this JSON file (used by benchmarks/dashboard.py).")
def command(streams: tuple[str, ...], screenshot: str | None, after: float, duration: float | None, fps: float | None,
            settings_file: str | None, reset_settings: bool, size: tuple[int, int] | None, priority: str,
            stats_json: str | None) -> None:
    """Open the live monitoring dashboard (PySide6 + pyqtgraph).

    \b
    Shows every LSL stream it finds (or the ones named with --stream): scrolling traces with
    per-channel scaling and display filters, spectrum/spectrogram with dominant periods, model
    predictions, CSI heat-maps and live NMSE, ED-ViT device status, and a health panel (rates,
    lag, clock offset, drops by cause, connection state, pipeline latency p50/p99). It runs in
    its own process, only reads streams, and by default runs at idle CPU priority so that a
    pipeline on the same machine gets the CPU first.

    \b
    Examples:
      edgestream dashboard
      edgestream dashboard --stream 'sim-eeg*' --stream Predictions
      QT_QPA_PLATFORM=offscreen edgestream dashboard --screenshot shot.png --after 10
    """
    import sys

    from edgestream.dashboard.app import DashboardOptions, run_dashboard

    options = DashboardOptions(streams=streams, screenshot=screenshot, after=after, duration=duration, fps=fps,
                               settings_file=settings_file, reset_settings=reset_settings, stats_json=stats_json,
                               size=size, priority=priority)
    code = run_dashboard(options)
    if code:
        sys.exit(code)
