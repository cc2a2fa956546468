"""Exported ONNX artefacts on disk: what one is, how the engine cache keys it, and how it is checked.

An artefact is a directory ``<engine cache>/onnx/<name>-<precision>-<shape>-<digest>/`` holding
``model.onnx`` and ``manifest.json``. The digest (:func:`model_digest`) covers:

* the weights (the serialised ``state_dict``);
* the model's code (:func:`code_modules`): the source files of the modules that define the
  classes of the model and of every submodule, their base classes, and the functions and classes
  those modules import by name from their own top-level package (one level: ``mptsnet`` brings
  in ``edgestream.dsp.periods``). An approximation: code reached only through deeper imports is
  not covered, and ``edgestream.core`` (argument checks, errors, registries; no arithmetic) is
  left out so that editing a message does not re-export every model. torch is keyed by version;
* the torch, onnx and onnxruntime versions and :data:`EXPORT_VERSION`;
* what the caller adds: name, shape, precision, opset, int8 kernel family.

The manifest records ``sha256`` and ``size`` of ``model.onnx``; every use of a cached artefact
checks them (:func:`read_artefact`, :func:`check_file`), so a swapped, truncated or unreadable
file, or a missing or unparsable manifest, is found before ONNX Runtime opens it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgestream.core.errors import EdgestreamError

progress_log = logging.getLogger("edgestream.progress")  # CLIs raise this logger to INFO to show progress

EXPORT_VERSION = 4  # bump when the graph layout or the manifest changes (invalidates caches); 4: sha256, key, code
_CODE_SKIPPED = ("edgestream.core",)  # checks, errors, registries: validate arguments, compute nothing in forward

Progress = Callable[[str], None]


class ExportError(EdgestreamError, RuntimeError):
    """A model could not be exported to ONNX, or the exported graph does not match torch."""


class ArtefactError(ExportError):
    """An artefact on disk is damaged or stale (and no model was given to re-export it), or cannot be loaded."""

    def __init__(self, message: str, path: Path | None = None, problem: str = "", kind: str = "damaged") -> None:
        super().__init__(message)
        self.path = path  # .../model.onnx
        self.problem = problem  # what is wrong, e.g. "model.onnx has 120 bytes; the manifest recorded 5,304"
        self.kind = kind  # "damaged" or "stale"


def show_progress() -> None:
    """Let export/verification/warm-up progress reach the console (CLIs call this; the root level stays WARNING)."""
    progress_log.setLevel(logging.INFO)


def report(message: str, progress: Progress | None = None) -> None:
    """Surface a progress step (export, verification, quantisation, warm-up)."""
    (progress or progress_log.info)(message)


@dataclasses.dataclass(frozen=True)
class Artefact:
    """One exported ONNX model on disk and what is known about it."""

    path: Path  # .../model.onnx
    manifest: dict[str, Any]  # contents of manifest.json (inputs, outputs, state, verification, sha256)

    @property
    def digest(self) -> str:
        return str(self.manifest["digest"])

    @property
    def streaming(self) -> bool:
        return bool(self.manifest.get("state"))

    @property
    def chunk(self) -> int | None:
        return self.manifest.get("chunk")

    @property
    def precision(self) -> str:
        return str(self.manifest["precision"])

    @property
    def state_keys(self) -> list[str]:
        return list(self.manifest.get("state", {}))


# --- the cache key ---------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Versions an artefact depends on (part of its digest and of its manifest)."""
    import onnx
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "export_version": str(EXPORT_VERSION)}


def _keyed(module_name: str) -> bool:
    top = module_name.split(".")[0]
    return not (top in ("torch", "builtins", "__main__") or top in sys.stdlib_module_names
                or any(module_name == s or module_name.startswith(s + ".") for s in _CODE_SKIPPED))


def code_modules(model: Any) -> list[str]:
    """Names of the modules whose source defines ``model``'s computation (see the module docstring)."""
    names = {cls.__module__ for m in model.modules() for cls in type(m).__mro__}
    names |= {type(model).__module__}
    found = {n for n in names if _keyed(n)}
    for name in sorted(found):
        module = sys.modules.get(name)
        top = name.split(".")[0]
        for value in vars(module).values() if module else ():
            if isinstance(value, types.ModuleType):
                owner = value.__name__
            elif inspect.isfunction(value) or inspect.isclass(value):
                owner = getattr(value, "__module__", None) or ""
            else:
                continue
            if owner.split(".")[0] == top and _keyed(owner):
                found.add(owner)
    if type(model).__module__ == "__main__":  # a model written in a script: its class source stands in for the file
        found.add("__main__")
    return sorted(found)


def _source_hash(module_name: str, model: Any) -> str:
    module = sys.modules.get(module_name)
    try:
        path = inspect.getsourcefile(module) if module else None
        if path:
            return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except (TypeError, OSError):
        pass
    try:  # no source file (an interactive session, a frozen module): the classes' source, else their names
        classes = [cls for m in model.modules() for cls in type(m).__mro__ if cls.__module__ == module_name]
        text = "".join(inspect.getsource(cls) for cls in dict.fromkeys(classes))
    except (TypeError, OSError):
        text = module_name
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def code_digest(model: Any) -> dict[str, str]:
    """Source hash of each module in :func:`code_modules`, by module name."""
    return {name: _source_hash(name, model) for name in code_modules(model)}


def weights_digest(model: Any) -> str:
    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()[:16]


def cache_key(model: Any) -> dict[str, Any]:
    """What an artefact of ``model`` depends on besides the call's own options (recorded in the manifest)."""
    code = code_digest(model)
    combined = hashlib.sha256(json.dumps(code, sort_keys=True).encode()).hexdigest()[:16]
    return {"class": f"{type(model).__module__}.{type(model).__qualname__}", "weights": weights_digest(model),
            "code": combined, "modules": code, "versions": versions()}


def model_digest(model: Any, *extra: Any, key: dict[str, Any] | None = None) -> str:
    """Hash of the weights, the model's class and code, the versions (:func:`cache_key`) and ``extra``."""
    key = key or cache_key(model)
    parts = (key["class"], key["weights"], key["code"], sorted(key["versions"].items())) + extra
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


# --- integrity -------------------------------------------------------------------------------

_SHA_MEMO: dict[tuple, str] = {}  # (device, inode, size, mtime, ctime) -> sha256: any write changes ctime


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered for as long as the file is not written to."""
    st = path.stat()
    memo = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if memo in _SHA_MEMO:
        return _SHA_MEMO[memo]
    settled = time.time_ns() - st.st_ctime_ns > 1_000_000_000
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    # ctime ticks coarsely (milliseconds): only a file last written over a second ago is remembered, so
    # a later write cannot share its ctime
    if settled:
        if len(_SHA_MEMO) > 256:
            _SHA_MEMO.clear()
        _SHA_MEMO[memo] = h.hexdigest()
    return h.hexdigest()


def seal(directory: Path, manifest: dict[str, Any]) -> None:
    """Record ``model.onnx``'s sha256 and size in ``manifest`` and write ``manifest.json``."""
    model = directory / "model.onnx"
    manifest.update(sha256=file_sha256(model), size=model.stat().st_size)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))


def file_problem(path: Path, manifest: dict[str, Any]) -> str | None:
    """What is wrong with ``model.onnx`` against ``manifest``'s record of it, or None when it matches."""
    if "sha256" not in manifest:
        written_by = (manifest.get("versions") or {}).get("export_version", "< 4")
        return f"its manifest.json records no sha256 (written by export version {written_by})"
    try:
        size = path.stat().st_size
        recorded = manifest.get("size", size)
        if size != recorded:
            written = f"{recorded:,}" if isinstance(recorded, int) else repr(recorded)
            return f"model.onnx has {size:,} bytes where {written} were written (truncated or replaced)"
        sha = file_sha256(path)
    except FileNotFoundError:
        return "model.onnx is missing"
    except OSError as exc:
        return f"model.onnx cannot be read ({type(exc).__name__}: {exc.strerror or exc})"
    if sha != manifest["sha256"]:
        return (f"model.onnx's sha256 {sha[:12]}... differs from the {str(manifest['sha256'])[:12]}... recorded at export "
                "(the file was swapped or modified)")
    return None


def _fix(directory: Path, name: str) -> str:
    return (f"Re-export it: edgestream export {name} --force, or delete {directory} (edgestream then exports the model "
            "again on its next use).")


def artefact_error(directory: Path, name: str, problem: str, kind: str = "damaged") -> ArtefactError:
    """The error for an artefact that cannot be used and cannot be re-exported here."""
    path = directory / "model.onnx"
    return ArtefactError(f"ONNX artefact {path} must match the manifest.json written with it at export; got a {kind} "
                         f"artefact: {problem}. {_fix(directory, name)}", path, problem, kind)


def _name_of(directory: Path) -> str:
    parts = directory.name.rsplit("-", 3)
    return parts[0] if len(parts) == 4 else directory.name


def read_artefact(directory: str | os.PathLike[str], digest: str | None = None) -> Artefact:
    """The artefact in ``directory``, checked against its manifest; :class:`ArtefactError` if damaged or stale.

    ``digest``: the digest the caller expects (a manifest written for another model is an error).
    """
    directory = Path(directory)
    name = _name_of(directory)
    if not directory.is_dir():
        raise artefact_error(directory, name, f"the directory {directory} does not exist", "missing")
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        if not isinstance(manifest, dict):
            raise ValueError(f"a JSON {type(manifest).__name__} instead of an object")
    except FileNotFoundError:
        raise artefact_error(directory, name, "manifest.json is missing") from None
    except (OSError, ValueError) as exc:
        raise artefact_error(directory, name, f"manifest.json cannot be parsed ({type(exc).__name__}: "
                                              f"{str(exc).splitlines()[0][:120]})") from None
    name = str(manifest.get("name") or name)
    if digest is not None and manifest.get("digest") != digest:
        raise artefact_error(directory, name, f"manifest.json belongs to another artefact (digest "
                                              f"{manifest.get('digest')!r}, expected {digest!r})")
    try:
        problem = file_problem(directory / "model.onnx", manifest)
    except (AttributeError, TypeError, ValueError) as exc:  # parses, but not as a manifest
        raise artefact_error(directory, name, f"manifest.json is malformed ({type(exc).__name__}: {exc})") from None
    if problem:
        raise artefact_error(directory, name, problem, "stale" if "sha256" not in manifest else "damaged")
    return Artefact(directory / "model.onnx", manifest)


def check_file(artefact: Artefact) -> None:
    """Raise :class:`ArtefactError` if ``artefact``'s file differs from the sha256 its manifest recorded.

    A manifest without a sha256 (an :class:`Artefact` built by hand) is not checked.
    """
    if "sha256" in artefact.manifest:
        problem = file_problem(artefact.path, artefact.manifest)
        if problem:
            raise artefact_error(artefact.path.parent, str(artefact.manifest.get("name") or _name_of(artefact.path.parent)),
                                 problem)


def stale_siblings(target: Path, key: dict[str, Any]) -> list[tuple[Path, str]]:
    """Artefacts of the same model, weights, precision and shape as ``target`` made by other code or versions.

    Each with what changed (module sources, versions). An artefact with other weights is not stale:
    another checkpoint of the same model may still use it.
    """
    prefix = target.name.rsplit("-", 1)[0] + "-"
    out = []
    try:
        siblings = [p for p in target.parent.iterdir() if p.name.startswith(prefix) and p != target
                    and len(p.name) == len(target.name)]
    except OSError:
        return []
    for old in sorted(siblings):
        try:
            before = json.loads((old / "manifest.json").read_text()).get("key") or {}
        except (OSError, ValueError, AttributeError):
            continue
        if before.get("weights") != key["weights"] or before.get("class") != key["class"]:
            continue
        changes = [f"code of {m} changed" for m, h in key["modules"].items() if before.get("modules", {}).get(m, h) != h]
        changes += [f"{m} added to the model's code" for m in key["modules"] if m not in before.get("modules", {})]
        changes += [f"{k} {v} -> {key['versions'][k]}" for k, v in before.get("versions", {}).items()
                    if key["versions"].get(k) != v]
        out.append((old, "; ".join(changes) or "the cache key changed"))
    return out


class staging:
    """Write into a temporary sibling directory, then move it into place (safe with concurrent exports)."""

    def __init__(self, target: Path, replace: bool = False) -> None:
        self.target = target
        self.replace = replace  # force=True or a damaged artefact: the new export replaces an existing one

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}-", dir=self.target.parent))
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self.target.exists():
            if not self.replace:  # another process finished the identical export first: keep theirs
                shutil.rmtree(self.tmp, ignore_errors=True)
                return
            shutil.rmtree(self.target, ignore_errors=True)
        try:
            os.replace(self.tmp, self.target)
        except OSError:  # lost a race to an identical export: keep theirs
            shutil.rmtree(self.tmp, ignore_errors=True)
