"""Provenance: where a file or result came from — git revision, file hashes, JSON-safe values.

Checkpoint manifests (``edgestream.train``), run manifests (``edgestream.record``) and the
dataset hashes training records all need the same facts; they live here, at the bottom of the
stack, so inference code can write or check them without importing training code.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

from edgestream.core.paths import SOURCE_ROOT


def git_revision(path: str | Path | None = None) -> str:
    """Short git revision of a source tree, with ``-dirty`` when tracked files are modified.

    Parameters
    ----------
    path : str or Path, optional
        A directory inside the git work tree; default: the edgestream checkout.

    Returns
    -------
    str
        e.g. ``"c0829df"`` or ``"c0829df-dirty"``; ``"unknown"`` outside git or without a
        ``git`` executable (an installed wheel), so callers never fail on provenance.
    """
    root = Path(path or SOURCE_ROOT)
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        # untracked files do not make a build dirty: scratch outputs sit beside the sources
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1-MiB blocks (checkpoints can be large).

    Parameters
    ----------
    path : str or Path
        An existing file.

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def to_plain(value: Any) -> Any:
    """JSON ``default=`` fallback for manifests: numpy scalars/arrays to lists, anything else to ``str``.

    Use as ``json.dumps(manifest, default=to_plain)``: paths, tuples of odd types and numpy
    values then serialise instead of raising, so a manifest is always written.

    Parameters
    ----------
    value : Any
        A value :mod:`json` cannot encode by itself.

    Returns
    -------
    Any
        ``value.tolist()`` for anything array-like (numpy, torch), else ``str(value)``.
    """
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
