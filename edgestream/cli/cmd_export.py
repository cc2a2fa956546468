"""``edgestream export``: build ONNX artefacts ahead of a session (verified, cached, warmed up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command("export")
@click.argument("model")
@click.option("--backend", type=click.Choice(["onnx"]), default="onnx", show_default=True,
              help="Export format (ONNX, run by ONNX Runtime with the profile's providers).")
@click.option("--fp16", "precision", flag_value="fp16", help="float16 graph (CUDA provider targets; with TensorRT first, profiles build fp16 engines from the fp32 graph).")
@click.option("--int8", "precision", flag_value="int8", help="int8 dynamic quantisation (CPU targets, e.g. rpi5).")
@click.option("--fp32", "precision", flag_value="fp32", help="float32 graph (default unless the profile says otherwise).")
@click.option("--chunk", "-n", type=int, default=None,
              help="Streaming models: time steps per call (a 1-step graph is exported too). Default: the profile's onnx_chunk.")
@click.option("--shape", default=None, metavar="CxT",
              help="Window models: input channels x samples, e.g. 64x1000 (default: from the model).")
@click.option("--device", "-d", default=None, help="Device profile whose precision, opset, engine cache and providers to use.")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None, help="Also copy the artefacts into this directory.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Model constructor override (repeatable).")
@click.option("--force", is_flag=True, help="Re-export even when a cached artefact exists.")
def command(model: str, backend: str, precision: str | None, chunk: int | None, shape: str | None, device: str | None,
            out: str | None, overrides: tuple[str, ...], force: bool) -> None:
    """Export MODEL (a registered name or a checkpoint file) to ONNX, verified against torch.

    \b
    Streaming models get their recurrent state as explicit inputs/outputs
    (state_in.<key> -> state_out.<key>), one chunk of steps per call.
    Artefacts are cached in the profile's engine cache by content hash.

    \b
    Examples:
      edgestream export gru_stream_s --int8 --device rpi5
      edgestream export reference_conv --shape 64x1000 --device jetson --out engines/
      edgestream export model.pt --chunk 16 --out engines/
    """
    import shutil

    from edgestream.core.device import load_profile
    from edgestream.models.inputs import example_input, is_streaming
    from edgestream.runners.backend import graph_precision, open_session, profile_for, warm_up
    from edgestream.runners.export import export_onnx, show_progress

    show_progress()
    net, name = _load_model(model, overrides)
    profile = profile_for(load_profile(device or "cpu"), name)
    if precision is None:
        precision = graph_precision(profile) if device else "fp32"
    streaming = is_streaming(net)
    from edgestream.core.checks import check_number

    chunk = check_number(chunk if chunk is not None else profile.onnx_chunk, "--chunk", low=1, integer=True,
                         fix="Pass the time steps per call, e.g. --chunk 16.")
    example = None if streaming else _example(net, shape)
    echo = lambda m: click.echo(f"  {m}", err=True)  # noqa: E731
    click.echo(f"edgestream export: {name} ({'streaming' if streaming else 'stateless'}, "
               f"{sum(p.numel() for p in net.parameters()):,} parameters) -> ONNX {precision}"
               + (f", {chunk} step(s) per call" if streaming else f", input {tuple(example.shape)}")
               + f"; profile {profile.name!r}", err=True)
    chunks = sorted({1, chunk}) if streaming else [None]
    artefacts = []
    for n in chunks:
        artefacts.append(export_onnx(net, name, chunk=n or 1, precision=precision, example=example,
                                     cache_root=profile.engine_cache_dir(), opset=profile.onnx_opset,
                                     force=force, progress=echo))
    if precision == "fp16" and not any("CUDA" in p or "Tensorrt" in p for p in profile.onnx_providers):
        echo("fp16: no CUDA/TensorRT provider here, so no ONNX Runtime session was opened (checked with ONNX's reference evaluator)")
    else:
        for a in artefacts:
            session = open_session(a, profile)
            x = example_input(net, 1, a.chunk) if a.streaming else example
            feeds = {"x": x.astype(a.manifest["inputs"][0]["dtype"])}
            for spec in a.manifest.get("state", {}).values():
                feeds[spec["input"]] = _zeros(spec)
            warm_up(lambda: session.run(None, feeds), max(profile.warmup_runs, 1), f"{name} ({a.path.parent.name})",
                    session.get_providers(), echo)
    click.echo(f"{'artefact':<72}{'size':>10}  vs torch (max |Δ|, relative, argmax agreement)")
    for a in artefacts:
        v = a.manifest.get("verification", {})
        e = v.get("vs_torch")
        check = (f"{e['max_abs']:.3g}, {e['max_rel']:.3g}" + (f", {e['argmax_agreement']:.1%}" if "argmax_agreement" in e else "")
                 if e else v.get("status", "not verified"))
        path = a.path
        if out:
            dest = Path(out) / a.path.parent.name
            shutil.copytree(a.path.parent, dest, dirs_exist_ok=True)
            path = dest / "model.onnx"
        click.echo(f"{str(path):<72}{path.stat().st_size / 1024:>8.0f}KB  {check}")


def _load_model(model: str, overrides: tuple[str, ...]) -> tuple[Any, str]:
    """MODEL as a checkpoint file when one exists at that path, else as a registered name (the model stages' loader)."""
    from edgestream.pipeline.config import parse_set
    from edgestream.runners.model_loader import load_model

    kwargs = {".".join(k): v for k, v in parse_set(overrides)}
    path = Path(model).expanduser()
    if path.is_file():
        loaded = load_model("export", None, str(path), kwargs)
    else:
        loaded = load_model("export", model, None, kwargs)
    return loaded.net.float().eval(), loaded.name


def _example(net, shape: str | None):
    import numpy as np

    from edgestream.core.errors import ConfigError
    from edgestream.models.inputs import example_input

    if shape is None:
        return example_input(net, 1)
    try:
        dims = [int(d) for d in shape.lower().split("x")]
    except ValueError:
        dims = []
    if len(dims) < 1 or min(dims) < 1:
        raise ConfigError(f"--shape must be positive sizes joined by 'x' (channels x samples), e.g. 64x1000; got {shape!r}.")
    return np.zeros([1] + dims, np.float32)


def _zeros(spec: dict):
    import numpy as np

    return np.zeros([1] + list(spec["shape"]), np.dtype(spec["dtype"]))
