"""``edgestream components``: the registered stages, sources and sinks, built-in and from plugins."""

from __future__ import annotations

import click

KINDS = ("stage", "source", "sink")


@click.command("components")
@click.option("--kind", "kinds", type=click.Choice(KINDS), multiple=True,
              help="Only this kind (repeatable; default: all three).")
def command(kinds: tuple[str, ...]) -> None:
    """List the stages, sources and sinks a pipeline's `kind:` can name; plugin entries name their distribution."""
    from edgestream.core.io import SINKS, SOURCES
    from edgestream.core.stage import STAGES

    registries = {"stage": STAGES, "source": SOURCES, "sink": SINKS}
    for kind in kinds or KINDS:
        registry = registries[kind]
        entries = list(registry)
        click.echo(f"{kind}s ({len(entries)}):")
        width = max((len(e.name) for e in entries), default=0) + 2
        origin_width = max((len(e.origin) for e in entries), default=0) + 2
        for entry in entries:
            click.echo(f"  {entry.name:<{width}}{entry.origin:<{origin_width}}{entry.doc}".rstrip())
        for plugin in registry.plugins:
            if plugin.failed:
                click.echo(f"  (not listed: {plugin.label} failed to load: {plugin.error}; fix: {plugin.fix})")
