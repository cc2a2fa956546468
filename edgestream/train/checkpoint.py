"""Checkpoints: weights plus a manifest saying how they were made.

A checkpoint is one ``torch.save`` file holding ``{"manifest": {...}, "state_dict": {...},
"extra": {...}}``. The manifest records the registered model name and the overrides it was
created with, so :func:`load_checkpoint` rebuilds the exact model; plus data, metrics, the git
revision and library versions. ``extra`` holds non-weight state such as alignment matrices:
tensors and plain Python values only (checkpoints load with ``weights_only=True``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from edgestream.core.errors import ConfigError


def git_revision(path: Path | None = None) -> str:
    """Short git revision of the edgestream source tree, with ``-dirty`` when modified ("unknown" outside git)."""
    root = Path(path or Path(__file__).resolve().parents[2])
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars/arrays, paths and tuples in manifests."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


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
    """Write weights and manifest to ``path`` (parents created). Returns the path.

    ``data`` describes the training data; for classifiers include ``"classes"`` (list of class
    names, in output order) — runners read class names from ``manifest["data"]["classes"]``.
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
    manifest = json.loads(json.dumps(manifest, default=_plain))
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"manifest": manifest, "state_dict": state_dict, "extra": extra or {}}, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint under the real name
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load the raw checkpoint dict, with clear errors for missing or corrupted files."""
    import torch

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


def load_checkpoint(path: str | Path, **overrides: Any) -> tuple[Any, dict[str, Any]]:
    """Rebuild the registered model from the manifest, load weights; return ``(model, checkpoint)``."""
    blob = read_checkpoint(path)
    return model_from_checkpoint(blob, where=str(path), **overrides), blob


def model_from_checkpoint(blob: dict[str, Any], *, where: str = "checkpoint", **overrides: Any) -> Any:
    """Rebuild the registered model of an already-read checkpoint dict (e.g. one shipped to a remote worker)."""
    from edgestream.models import create_model

    manifest = blob["manifest"]
    model = create_model(manifest["model"], **(dict(manifest["config"]) | overrides))
    missing, unexpected = model.load_state_dict(blob["state_dict"], strict=False)
    if missing or unexpected:
        raise ConfigError(
            f"checkpoint {where!r} must match model {manifest['model']!r}; missing keys {missing[:5]}, "
            f"unexpected keys {unexpected[:5]}. Was it saved from a different configuration?"
        )
    model.eval()
    return model
