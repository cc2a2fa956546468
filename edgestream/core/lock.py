"""The committed lock (``lock/requirements.lock``) and how this environment differs from it.

The lock is a pip constraints file of exact versions, ``name==version`` per line, written by
``make lock``. It is shipped as package data (``edgestream._lock``), so an installed edgestream
can still say which versions it was tested with. Names compare after PEP 503 normalisation and
versions without their local label, so ``torch==2.13.0`` matches an installed ``2.13.0+cpu``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from edgestream.core.errors import ConfigError
from edgestream.core.paths import SOURCE_ROOT

LOCK_NAME = "requirements.lock"
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;]+)\s*(?:;(.*))?$")


def normalize_name(name: str) -> str:
    """PEP 503 normalised project name (``PySide6_Essentials`` → ``pyside6-essentials``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def public_version(version: str) -> str:
    """``version`` without its local label (``2.13.0+cpu`` → ``2.13.0``), normalised where possible."""
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:  # packaging comes with most installs, but edgestream does not require it
        return version.split("+", 1)[0]
    try:
        return Version(version).public
    except InvalidVersion:
        return version.split("+", 1)[0]


def _marker_applies(marker: str | None) -> bool:
    if not marker or not marker.strip():
        return True
    try:
        from packaging.markers import Marker
    except ImportError:  # cannot evaluate: keep the pin rather than hide it
        return True
    return Marker(marker).evaluate()


def find_lock(explicit: str | Path | None = None) -> Path | None:
    """The lock to compare against: ``explicit``, else the shipped one, else ``lock/`` in a checkout; None if absent."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"lock must be an existing file; got {str(explicit)!r}. "
                              f"Pass --lock PATH (or EDGESTREAM_LOCK) naming a pip constraints file such as lock/{LOCK_NAME}.")
        return path
    candidates = []
    try:
        import edgestream._lock as shipped  # an installed wheel

        candidates += [Path(p) / LOCK_NAME for p in shipped.__path__]
    except ImportError:
        pass
    candidates.append(SOURCE_ROOT / "lock" / LOCK_NAME)  # a checkout (editable installs import edgestream from it)
    return next((p for p in candidates if p.is_file()), None)


def read_lock(path: str | Path) -> dict[str, str]:
    """Normalised name → locked version (local label stripped) for every pin that applies here.

    Comments, blank lines and pip options (``-c``, ``--index-url``) are skipped; any other line
    must be ``name==version`` with an optional ``; marker``.
    """
    pins: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text().splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line or line.startswith("-"):
            continue
        match = _REQUIREMENT.match(line)
        if match is None:
            raise ConfigError(f"each line of the lock must be 'name==version'; got {raw.strip()!r} at {path}:{number}. "
                              "Regenerate it with: make lock")
        name, version, marker = match.groups()
        if _marker_applies(marker):
            pins[normalize_name(name)] = public_version(version)
    return pins


def installed_versions() -> dict[str, str]:
    """Normalised name → version of every distribution on ``sys.path`` (the first one found wins, as for imports)."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(normalize_name(name), dist.version)
    return found


@dataclass
class LockReport:
    """How the installed packages compare with a lock."""

    path: Path | None  # the lock compared against; None when no lock was found
    locked: int = 0  # number of pins in the lock
    differ: list[dict[str, str]] = field(default_factory=list)  # {"package", "locked", "installed"}
    missing: list[dict[str, str]] = field(default_factory=list)  # {"package", "locked"}: pinned, not installed

    @property
    def drift(self) -> bool:
        """True when the environment does not match the lock (or there is no lock to match)."""
        return self.path is None or bool(self.differ or self.missing)

    def fix(self) -> str:
        """One command that brings the listed packages back to the lock ("" when nothing drifted)."""
        if self.path is None or not (self.differ or self.missing):
            return ""
        pins = " ".join(f"'{p['package']}=={p['locked']}'" for p in self.differ + self.missing)
        command = f"{sys.executable} -m pip install -c {self.path} {pins}"
        in_checkout = self.path.resolve().parent.parent == SOURCE_ROOT and (SOURCE_ROOT / "Makefile").is_file()
        return f"make -B install (in {SOURCE_ROOT}), or {command}" if in_checkout else command

    def to_dict(self) -> dict:
        return {"path": str(self.path) if self.path else None, "locked": self.locked, "differ": self.differ,
                "missing": self.missing, "drift": self.drift, "fix": self.fix()}


def compare(path: Path | None, installed: dict[str, str] | None = None) -> LockReport:
    """Compare ``installed`` (default: this environment) with the lock at ``path``."""
    if path is None:
        return LockReport(None)
    pins = read_lock(path)
    installed = {normalize_name(k): v for k, v in (installed_versions() if installed is None else installed).items()}
    report = LockReport(Path(path), locked=len(pins))
    for name, locked in sorted(pins.items()):
        if name not in installed:
            report.missing.append({"package": name, "locked": locked})
        elif public_version(installed[name]) != locked:
            report.differ.append({"package": name, "locked": locked, "installed": installed[name]})
    return report
