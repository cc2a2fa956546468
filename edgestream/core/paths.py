"""Where data, caches and device profiles are found. Never relative to the working directory
unless the user asked for it."""

from __future__ import annotations

import os
from pathlib import Path

from edgestream.core.errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # .../edgestream
SOURCE_ROOT = PACKAGE_ROOT.parent  # the repository root in a source checkout


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Directory of recordings: ``explicit``, else ``$EDGESTREAM_DATA``, else ``../shared/data`` beside a checkout."""
    candidates = [explicit, os.environ.get("EDGESTREAM_DATA"), SOURCE_ROOT.parent / "shared" / "data"]
    for cand in candidates:
        if cand and Path(cand).is_dir():
            return Path(cand)
    if explicit:
        raise ConfigError(f"data directory must exist; got {str(explicit)!r}. Pass --data DIR pointing at your recordings.")
    raise ConfigError(
        "data directory must be given; got none (no $EDGESTREAM_DATA and no ../shared/data beside the checkout). "
        "Set EDGESTREAM_DATA=/path/to/data or pass --data DIR."
    )


def cache_dir(sub: str = "") -> Path:
    """Writable cache (generated datasets, exported engines): ``$EDGESTREAM_CACHE`` or ``~/.cache/edgestream``."""
    root = Path(os.environ.get("EDGESTREAM_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgestream")
    path = root / sub if sub else root
    path.mkdir(parents=True, exist_ok=True)
    return path
