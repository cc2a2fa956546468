"""The model factory (timm-style): create a registered model by name, optionally from a checkpoint.

::

    model = create_model("lmuformer_scv2", n_classes=10)              # fresh weights
    model = create_model("lmuformer_scv2", checkpoint="lmu.pt")       # trained weights, eval mode
    model, blob = load_checkpoint("lmu.pt")                           # whatever the manifest names

The registry (:mod:`edgestream.models.registry`) knows the names; the checkpoint format
(:mod:`edgestream.models.checkpoint`) knows the files; this module joins the two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgestream.core.errors import ConfigError
from edgestream.models.checkpoint import load_weights, read_checkpoint
from edgestream.models.registry import MODELS


def create_model(
    name: str,
    /,
    *,
    checkpoint: str | Path | None = None,
    device: Any = None,
    dtype: Any = None,
    **overrides: Any,
) -> Any:
    """Create a registered model by name with keyword overrides of its configuration.

    Parameters
    ----------
    name : str
        Registered model name (see :func:`edgestream.models.list_models`). Unknown names raise
        with close-match suggestions.
    checkpoint : str or Path, optional
        A checkpoint written by :func:`edgestream.train.save_checkpoint`. The model is built
        with the configuration in its manifest (``overrides`` on top), its weights are loaded
        and it is returned in eval mode. The manifest must name ``name``.
    device, dtype : optional
        Move the module after construction (never ``.cuda()`` inside models).
    **overrides
        Configuration keys; unknown ones raise, listing the valid ones.

    Returns
    -------
    torch.nn.Module
        The model.

    Raises
    ------
    ConfigError
        Unknown name or keys, unreadable checkpoint, a checkpoint of another model, or weights
        that do not fit.
    """
    if checkpoint is None:
        model = MODELS.create(name, **overrides)
    else:
        blob = read_checkpoint(checkpoint)
        recorded = blob["manifest"].get("model")
        if recorded != name:
            raise ConfigError(
                f"checkpoint {str(checkpoint)!r} must hold model {name!r}; its manifest names {recorded!r}. "
                f"Pass {recorded!r} as the name, or use load_checkpoint({str(checkpoint)!r}) to build whatever it holds."
            )
        model = _from_blob(blob, where=str(checkpoint), overrides=overrides)
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model


def model_from_checkpoint(blob: dict[str, Any], *, where: str = "checkpoint", **overrides: Any) -> Any:
    """Rebuild the registered model of an already-read checkpoint dict (e.g. one shipped to a remote worker).

    Parameters
    ----------
    blob : dict
        What :func:`~edgestream.models.checkpoint.read_checkpoint` returned.
    where : str
        How to name the checkpoint in errors.
    **overrides
        Configuration keys on top of the manifest's.

    Returns
    -------
    torch.nn.Module
        The model its manifest names, weights loaded, in eval mode.
    """
    return _from_blob(blob, where=where, overrides=overrides)


def load_checkpoint(path: str | Path, **overrides: Any) -> tuple[Any, dict[str, Any]]:
    """Rebuild the registered model a checkpoint names and load its weights.

    Parameters
    ----------
    path : str or Path
        A checkpoint written by :func:`edgestream.train.save_checkpoint`.
    **overrides
        Configuration keys on top of the manifest's.

    Returns
    -------
    model : torch.nn.Module
        In eval mode.
    checkpoint : dict
        The raw checkpoint (``manifest``, ``state_dict``, ``extra``): runners read class names
        from ``checkpoint["manifest"]["data"]["classes"]``.
    """
    blob = read_checkpoint(path)
    return model_from_checkpoint(blob, where=str(path), **overrides), blob


def _from_blob(blob: dict[str, Any], *, where: str, overrides: dict[str, Any]) -> Any:
    manifest = blob["manifest"]
    model = MODELS.create(manifest["model"], **(dict(manifest["config"]) | overrides))
    return load_weights(model, blob, where=where)
