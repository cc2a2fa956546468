"""Reading edgestream checkpoints: weights plus a manifest saying how they were made.

A checkpoint is one ``torch.save`` file holding ``{"manifest": {...}, "state_dict": {...},
"extra": {...}}``. The manifest records the registered model name (``"model"``) and the
overrides it was created with (``"config"``), so the factory rebuilds the exact model; plus
data (``"data"``, with ``"classes"`` for classifiers), metrics, the git revision and library
versions. ``extra`` holds non-weight state such as alignment matrices: tensors and plain Python
values only (checkpoints load with ``weights_only=True``).

This module reads the format and puts weights into a model; building the model by name is the
factory's job (:func:`edgestream.models.create_model` with ``checkpoint=``,
:func:`edgestream.models.load_checkpoint`). Writing checkpoints is training's job
(:func:`edgestream.train.save_checkpoint`). Inference code reads checkpoints from here, so it
never imports the training package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgestream.core.errors import ConfigError


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load the raw checkpoint dict, with clear errors for missing or corrupted files.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`edgestream.train.save_checkpoint`.

    Returns
    -------
    dict
        ``{"manifest": dict, "state_dict": dict of CPU tensors, "extra": dict}`` (``extra`` may
        be missing from checkpoints written by other tools).

    Raises
    ------
    ConfigError
        The file is missing, unreadable or not an edgestream checkpoint.
    """
    import torch  # lazy: reading run manifests and the CLI's help must not pay for torch

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint must be an existing file; got {str(path)!r}. Train one with `edgestream train`.")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise ConfigError(
            f"checkpoint {str(path)!r} must be a readable edgestream checkpoint; loading failed ({type(exc).__name__}: "
            f"{str(exc)[:200]}). The file may be truncated or corrupted; re-create it with `edgestream train`."
        ) from None
    if not isinstance(blob, dict) or "manifest" not in blob or "state_dict" not in blob:
        raise ConfigError(
            f"checkpoint {str(path)!r} must contain 'manifest' and 'state_dict'; got keys "
            f"{sorted(blob) if isinstance(blob, dict) else type(blob).__name__}. It was not written by edgestream."
        )
    return blob


def load_weights(model: Any, blob: dict[str, Any], *, where: str = "checkpoint") -> Any:
    """Copy a read checkpoint's weights into ``model`` and put it in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        A model built from the checkpoint's manifest (same name and configuration).
    blob : dict
        What :func:`read_checkpoint` returned (or the same dict shipped to a remote worker).
    where : str
        How to name the checkpoint in errors (its path, usually).

    Returns
    -------
    torch.nn.Module
        ``model`` itself, weights loaded, in eval mode.

    Raises
    ------
    ConfigError
        The weights do not fit the model (missing or unexpected keys).
    """
    # strict=False, then our own check: torch's error lists every key, ours names the fix
    missing, unexpected = model.load_state_dict(blob["state_dict"], strict=False)
    if missing or unexpected:
        raise ConfigError(
            f"checkpoint {where!r} must match model {blob['manifest'].get('model')!r}; missing keys {missing[:5]}, "
            f"unexpected keys {unexpected[:5]}. Was it saved from a different configuration?"
        )
    model.eval()
    return model
