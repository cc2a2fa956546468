"""``edgestream models``: the registered model variants."""

from __future__ import annotations

import click


@click.command("models")
@click.option("--kind", default=None, help="Only this kind: streaming, window, predictor, vision.")
@click.option("--family", default=None, help="Only this family (lmuformer, dbconformer, ...).")
@click.option("--params", "count_params", is_flag=True, help="Instantiate each model and count its parameters (slower).")
def command(kind: str | None, family: str | None, count_params: bool) -> None:
    """List registered models (create them by name: create_model(NAME, **overrides)); plugin models name their distribution."""
    from edgestream.models import MODELS, create_model

    tags = {k: v for k, v in (("kind", kind), ("family", family)) if v}
    names = MODELS.names(**tags)
    if not names:
        click.echo("no models match" + (f" {tags}" if tags else ""))
        return
    click.echo(f"{'name':<32}{'family':<14}{'kind':<11}{'params':>12}  description")
    for name in names:
        entry = MODELS.get(name)
        n = ""
        if count_params:
            n = f"{sum(p.numel() for p in create_model(name).parameters()):,}"
        doc = entry.doc if entry.plugin is None else f"[plugin {entry.origin}] {entry.doc}"
        click.echo(f"{name:<32}{entry.tags.get('family', ''):<14}{entry.tags.get('kind', ''):<11}{n:>12}  {doc}")
    for plugin in MODELS.plugins:
        if plugin.failed:
            click.echo(f"(not listed: {plugin.label} failed to load: {plugin.error}; fix: {plugin.fix})")
