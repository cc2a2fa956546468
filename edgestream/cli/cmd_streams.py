"""``edgestream streams``: what LSL streams are visible."""

from __future__ import annotations

import click


@click.command("streams")
@click.option("--timeout", "-t", type=float, default=1.0, show_default=True, help="Seconds to wait for answers.")
def command(timeout: float) -> None:
    """List the LSL streams visible from this machine (name, type, rate, channels, source_id, host)."""
    from edgestream.core.checks import check_positive
    from edgestream.sources.lsl import list_streams

    check_positive(timeout, "--timeout")
    rows = list_streams(timeout)
    if not rows:
        click.echo(f"no LSL streams visible (waited {timeout:g} s)")
        return
    header = ("name", "type", "rate (Hz)", "channels", "format", "source_id", "host")
    table = [(r["name"], r["type"], "irregular" if r["sfreq"] == 0 else f"{r['sfreq']:g}", str(r["n_channels"]),
              r["channel_format"], r["source_id"], r["hostname"]) for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for row in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
