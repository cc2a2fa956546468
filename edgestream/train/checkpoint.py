"""Writing checkpoints: weights plus a manifest saying how they were made.

The format (``{"manifest": {...}, "state_dict": {...}, "extra": {...}}``) is described in
:mod:`edgestream.models.checkpoint`, which reads it: inference loads checkpoints from
``edgestream.models`` and never imports training. Reading, loading and the provenance helpers are
re-exported here so ``edgestream.train.load_checkpoint`` and friends keep working.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from edgestream.core.provenance import file_sha256, git_revision, to_plain
from edgestream.models.checkpoint import read_checkpoint
from edgestream.models.factory import load_checkpoint, model_from_checkpoint

__all__ = ["file_sha256", "git_revision", "load_checkpoint", "model_from_checkpoint", "read_checkpoint", "save_checkpoint"]


def save_checkpoint(
    path: str | Path,
    model: Any,
    model_name: str,
    config: dict[str, Any],
    *,
    data: Any = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    notes: str = "",
) -> Path:
    """Write weights and manifest to ``path`` (parents created), atomically.

    Parameters
    ----------
    path : str or Path
        Where to write (an existing file is replaced).
    model : torch.nn.Module
        Its ``state_dict`` is saved, moved to CPU.
    model_name, config : str, dict
        Registered model name and the overrides it was created with: what
        :func:`edgestream.models.load_checkpoint` rebuilds.
    data : Any, optional
        Describes the training data; for classifiers include ``"classes"`` (list of class
        names, in output order) — runners read class names from ``manifest["data"]["classes"]``.
    metrics, extra, notes : optional
        Metrics to record, non-weight state (tensors and plain values only), free text.

    Returns
    -------
    Path
        ``path``.
    """
    import torch

    import edgestream

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "model": model_name,
        "config": dict(config),
        "data": data,
        "metrics": metrics or {},
        "git_revision": git_revision(),
        "edgestream_version": edgestream.__version__,
        "torch_version": str(torch.__version__),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "notes": notes,
    }
    # JSON round trip: the manifest must hold plain values only (weights_only loading, readable by tools)
    manifest = json.loads(json.dumps(manifest, default=to_plain))
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"manifest": manifest, "state_dict": state_dict, "extra": extra or {}}, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint under the real name
    return path
