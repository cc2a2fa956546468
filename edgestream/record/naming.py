"""BIDS-style names for recordings, and the rule that a recording never overwrites another.

Layout (as LabRecorder's BIDS template)::

    OUT/sub-<subject>/[ses-<session>/]eeg/sub-<subject>[_ses-<session>]_task-<task>[_acq-<acq>]_run-<nn>_eeg.xdf
    ...                                                                                      _eeg.manifest.json

A file already at that path is renamed ``<name>.old-<YYYYmmddTHHMMSS>.xdf`` (its modification
time), with its manifest, before a new recording starts.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from pathlib import Path

from edgestream.core.checks import check_number, fail

_LABEL = re.compile(r"^[A-Za-z0-9]+$")
XDF_SUFFIX = ".xdf"
MANIFEST_SUFFIX = ".manifest.json"


def bids_label(value: object, name: str) -> str:
    """A BIDS label: letters and digits only (``"01"``, ``"motorimagery"``)."""
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text is None or not _LABEL.match(text):
        suggestion = re.sub(r"[^A-Za-z0-9]", "", str(value)) or "01"
        fail(name, "be a BIDS label (letters and digits only)", value, f"E.g. {name}={suggestion!r}.")
    return text


@dataclasses.dataclass(frozen=True)
class BidsName:
    """The entities naming one recording."""

    subject: str
    task: str
    run: int = 1
    session: str | None = None
    acquisition: str | None = None

    def __post_init__(self) -> None:
        bids_label(self.subject, "subject")
        bids_label(self.task, "task")
        check_number(self.run, "run", low=1, integer=True)
        if self.session is not None:
            bids_label(self.session, "session")
        if self.acquisition is not None:
            bids_label(self.acquisition, "acquisition")

    def stem(self, split: int | None = None) -> str:
        """``sub-01_ses-02_task-mi_run-01_eeg`` (``_split-02`` before ``_eeg`` for continuation files)."""
        parts = [f"sub-{self.subject}"]
        if self.session:
            parts.append(f"ses-{self.session}")
        parts.append(f"task-{self.task}")
        if self.acquisition:
            parts.append(f"acq-{self.acquisition}")
        parts.append(f"run-{self.run:02d}")
        if split is not None:
            parts.append(f"split-{split:02d}")
        return "_".join(parts) + "_eeg"

    def path(self, out: str | Path, split: int | None = None) -> Path:
        """Where the XDF file goes under the root directory ``out``."""
        folder = Path(out).expanduser() / f"sub-{self.subject}"
        if self.session:
            folder /= f"ses-{self.session}"
        return folder / "eeg" / (self.stem(split) + XDF_SUFFIX)


def manifest_path(xdf: str | Path) -> Path:
    """The run manifest beside an XDF file: ``x_eeg.xdf`` → ``x_eeg.manifest.json``."""
    xdf = Path(xdf)
    base = xdf.name[: -len(XDF_SUFFIX)] if xdf.name.lower().endswith(XDF_SUFFIX) else xdf.name
    return xdf.with_name(base + MANIFEST_SUFFIX)


def reserve(xdf: str | Path) -> list[tuple[Path, Path]]:
    """Make ``xdf`` (and its manifest) free by renaming what is there; return the ``(old, new)`` renames.

    The new name carries the old file's modification time: ``x_eeg.old-20250102T030405.xdf``
    (``-2``, ``-3``, … appended if that exists too). Nothing is ever deleted.
    """
    xdf = Path(xdf)
    existing = [p for p in (xdf, manifest_path(xdf)) if p.exists()]
    if not existing:
        return []
    stamp = _dt.datetime.fromtimestamp(max(p.stat().st_mtime for p in existing)).strftime("%Y%m%dT%H%M%S")
    base = xdf.name[: -len(XDF_SUFFIX)] if xdf.name.lower().endswith(XDF_SUFFIX) else xdf.name
    tag, k = f"old-{stamp}", 1
    while (xdf.with_name(f"{base}.{tag}{XDF_SUFFIX}").exists()
           or xdf.with_name(f"{base}.{tag}{MANIFEST_SUFFIX}").exists()):
        k += 1
        tag = f"old-{stamp}-{k}"
    renames = []
    for p in existing:
        suffix = MANIFEST_SUFFIX if p.name.endswith(MANIFEST_SUFFIX) else XDF_SUFFIX
        target = p.with_name(f"{base}.{tag}{suffix}")
        p.rename(target)
        renames.append((p, target))
    return renames
