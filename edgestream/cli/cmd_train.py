"""``edgestream train FAMILY``: train a model on calibration recordings and save a checkpoint."""

from __future__ import annotations

from typing import Any

import click


def _parse_model_args(values: tuple[str, ...]) -> dict[str, Any]:
    import yaml

    from edgestream.core.errors import ConfigError

    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--model-arg must be KEY=VALUE; got {item!r}. For example --model-arg depth=1.")
        out[key.strip()] = yaml.safe_load(raw)
    return out


def _format_confusion(cm: list[list[int]], classes: list[str]) -> str:
    width = max(6, *(len(c) for c in classes))
    lines = [" " * (width + 2) + " ".join(f"{c:>{width}}" for c in classes)]
    for name, row in zip(classes, cm):
        lines.append(f"  {name:>{width}}" + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


@click.command("train")
@click.argument("family")
@click.option("--data", "data", required=True, multiple=True, metavar="FILE|DIR",
              help="Calibration recording(s): XDF (EEG + marker stream), FIF/EDF/BDF/GDF, or directories of them. Repeatable.")
@click.option("--events", default=None, metavar="A,B[,...]",
              help="Classes, in label order: names (aliases: left=T1/769, right=T2/770, ...) or explicit 'left=T1|L,right=T2'. "
                   "Required for recordings; dataset families (mptsnet) take the classes from the data.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Checkpoint to write (e.g. model.pt).")
@click.option("--window", type=float, default=None, help="Trial / live window length in seconds [recipe default, 4].")
@click.option("--tmin", type=float, default=0.0, show_default=True, help="Trial start relative to the event, seconds.")
@click.option("--l-freq", type=float, default=None, help="Band-pass low edge, Hz (0 = none) [recipe default].")
@click.option("--h-freq", type=float, default=None, help="Band-pass high edge, Hz (0 = none) [recipe default].")
@click.option("--notch", type=float, multiple=True, help="Notch frequency in Hz (repeatable), e.g. --notch 50.")
@click.option("--align/--no-align", default=None, help="Euclidean alignment before the model [recipe default].")
@click.option("--epochs", type=int, default=None, help="Maximum training epochs [recipe default].")
@click.option("--lr", type=float, default=None, help="Adam learning rate [recipe default].")
@click.option("--batch-size", type=int, default=None, help="Batch size [recipe default].")
@click.option("--patience", type=int, default=None, help="Early-stopping patience in epochs [recipe default].")
@click.option("--val-fraction", type=float, default=0.2, show_default=True, help="Held-out validation fraction per class.")
@click.option("--split", type=click.Choice(["chronological", "random"]), default="chronological", show_default=True,
              help="Validation trials: the last of each class, or a seeded random draw.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for weights, batches and the random split.")
@click.option("--include", default=None, metavar="GLOB", help="Only files matching this pattern (e.g. '*R0[48].edf').")
@click.option("--stream", default=None, help="XDF: name of the signal stream (default: the EEG stream).")
@click.option("--marker-stream", default=None, help="XDF: name of the marker stream (default: every string stream).")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Override a model setting (repeatable).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when attached to a terminal).")
def command(family: str, data: tuple[str, ...], events: str, out: str, window: float | None, tmin: float,
            l_freq: float | None, h_freq: float | None, notch: tuple[float, ...], align: bool | None, epochs: int | None,
            lr: float | None, batch_size: int | None, patience: int | None, val_fraction: float, split: str, seed: int,
            include: str | None, stream: str | None, marker_stream: str | None, model_args: tuple[str, ...],
            progress: bool | None) -> None:
    """Train a FAMILY model (e.g. dbconformer) on calibration recordings, or on a labelled dataset.

    \b
    Examples:
      edgestream train dbconformer --data calib.xdf --events left,right --window 4 --out model.pt
      edgestream run assets/pipelines/mi_dbconformer.yaml --set model.checkpoint=model.pt
      edgestream train mptsnet --data DIR/JapaneseVowels --out jv.pt      # UEA .ts train/test files

    The model is selected on a held-out validation split of the calibration trials (early
    stopping); its accuracy, balanced accuracy, kappa and confusion matrix are printed and saved
    in the checkpoint manifest with the alignment state and the preprocessing.
    """
    from edgestream.core.errors import ConfigError
    from edgestream.train.calibration import calibrate
    from edgestream.train.recipes import get_recipe

    recipe = get_recipe(family)
    if recipe.train_dataset is not None:
        recording_only = {"--events": events, "--window": window, "--tmin": tmin or None, "--l-freq": l_freq,
                          "--h-freq": h_freq, "--notch": notch or None, "--align/--no-align": align,
                          "--split": None if split == "chronological" else split, "--include": include,
                          "--stream": stream, "--marker-stream": marker_stream}
        given = [name for name, value in recording_only.items() if value is not None]
        if given:
            raise ConfigError(f"options {', '.join(given)} must be left out for {family!r}, which trains on a labelled "
                              f"dataset directory, not recordings; got them set. Remove them.")
        report = recipe.train_dataset(
            data=list(data), out=out, epochs=epochs, lr=lr, batch_size=batch_size, patience=patience,
            val_fraction=val_fraction, seed=seed, model_args=_parse_model_args(model_args), progress=progress,
        )
        _echo_dataset_report(report)
        return
    if not events:
        raise ConfigError(f"--events must name the classes for {family!r}, which trains on event-locked recordings; got "
                          "none. For example --events left,right.")
    result = calibrate(
        family, list(data), events, out, window=window, tmin=tmin, l_freq=l_freq, h_freq=h_freq, notch=notch or None,
        align=align, val_fraction=val_fraction, split=split, seed=seed, epochs=epochs, lr=lr, batch_size=batch_size,
        patience=patience, include=include, stream=stream, marker_stream=marker_stream,
        model_args=_parse_model_args(model_args), progress=progress,
    )
    trials, m = result.epochs, result.metrics
    counts = ", ".join(f"{n} {c}" for c, n in trials.counts().items())
    click.echo(f"trials: {len(trials)} ({counts}) from {len(trials.sources)} recording(s), "
               f"{trials.n_times} samples x {len(trials.ch_names)} channels at {trials.sfreq:g} Hz"
               + (f"; {trials.dropped} event(s) dropped (window past the end)" if trials.dropped else ""))
    click.echo(f"model: {result.model_name} {result.config}")
    click.echo(f"training: best epoch {m['best_epoch']} of {m['epochs_run']}"
               f"{' (early stop)' if m['stopped_early'] else ''}, {m['seconds']:.1f} s")
    for split_name in ("train", "validation"):
        s = m[split_name]
        click.echo(f"{split_name:>10}: n={s['n']} accuracy={s['accuracy']:.3f} balanced_accuracy={s['balanced_accuracy']:.3f} "
                   f"kappa={s['kappa']:.3f} (chance {s['chance']:.3f})")
    click.echo("validation confusion matrix (rows true, columns predicted):")
    click.echo(_format_confusion(m["validation"]["confusion_matrix"], list(trials.classes)))
    click.echo(f"saved {result.path}")


def _echo_dataset_report(report) -> None:
    for line in report.summary:
        click.echo(line)
    click.echo(f"model: {report.model_name} {report.config}")
    click.echo(f"training: best epoch {report.best_epoch} of {report.epochs_run}"
               f"{' (early stop)' if report.stopped_early else ''}, {report.seconds:.1f} s (selected on validation)")
    for split_name, s in report.metrics.items():
        click.echo(f"{split_name:>10}: n={s['n']} accuracy={s['accuracy']:.3f} balanced_accuracy={s['balanced_accuracy']:.3f} "
                   f"kappa={s['kappa']:.3f}")
    last = list(report.metrics)[-1]
    click.echo(f"{last} confusion matrix (rows true, columns predicted):")
    click.echo(_format_confusion(report.metrics[last]["confusion_matrix"], list(report.classes)))
    if report.path is not None:
        click.echo(f"saved {report.path}")
