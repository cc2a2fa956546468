"""Device profiles: what an edge box can run and how (``devices/*.yaml``).

``--device jetson`` resolves, in order: an explicit path to a YAML file, ``$EDGESTREAM_DEVICES``
(a directory), ``./devices`` in the working directory, and the profiles bundled with the
package. :meth:`DeviceProfile.resolve` then checks the profile against this machine and turns
every shortfall into an explicit, logged decision (``profile.decisions``) — a missing GPU falls
back to the CPU, missing ONNX Runtime providers are dropped, float16 on a CPU-only ONNX Runtime
becomes float32, a missing ONNX Runtime falls back to eager torch — unless the profile is
``strict``, where each of these is an error instead.

Per-model choices (measured by ``benchmarks/edge_backends.py``) go in ``model_overrides``::

    backend: onnxruntime
    model_overrides:
      lmuformer: {backend: torch}          # a model family or a registered model name
      gru_stream_s: {backend: onnxruntime, precision: int8}

:meth:`DeviceProfile.for_model` applies them (model name first, then family).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from edgestream.core.checks import check_keys, check_number, check_value
from edgestream.core.errors import ConfigError
from edgestream.core.paths import SOURCE_ROOT

log = logging.getLogger(__name__)

BACKENDS = ("torch", "torchscript", "onnxruntime")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
ORT_PRECISIONS = ("fp32", "fp16", "int8")  # what edgestream exports for ONNX Runtime
QUEUE_POLICIES = ("drop-oldest", "reject", "block", "fail")
OVERRIDE_KEYS = ("backend", "precision", "onnx_chunk")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
RESOLVED_FIELDS = ("fallback_reason", "decisions")  # set by resolve(), never read from YAML


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
    """How to run on one class of device. Loaded from YAML; unknown keys are errors."""

    name: str  # profile name, e.g. "jetson"
    description: str = ""  # one line for `edgestream doctor`
    torch_device: str = "cpu"  # "cpu", "cuda", "cuda:0"
    dtype: str = "float32"  # torch compute dtype: float32, float16, bfloat16 (torch backend)
    threads: int = 1  # torch intra-op threads (and ONNX Runtime intra-op threads)
    backend: str = "torch"  # "torch" (eager), "torchscript" (traced + frozen window models) or "onnxruntime"
    precision: str = "fp32"  # exported model precision (onnxruntime backend): fp32, fp16, int8
    onnx_providers: tuple[str, ...] = ("CPUExecutionProvider",)  # ONNX Runtime providers, in preference order
    onnx_chunk: int = 16  # time steps per ONNX Runtime call for streaming models (a remainder runs step by step)
    onnx_opset: int = 17  # ONNX opset used when exporting
    warmup_runs: int = 2  # dummy inferences at graph build (TensorRT builds its engine on the first), shown as progress
    chunk_size: int = 32  # samples pulled per read at most (keeps per-chunk latency bounded)
    queue_size: int = 64  # chunks held at a thread hand-off before the queue policy applies
    queue_policy: str = "drop-oldest"  # what a full hand-off queue does: drop-oldest, reject, block, fail
    latency_budget_ms: float = 50.0  # end-to-end p99 the device must meet (edgestream bench pass/fail)
    memory_budget_mb: float = 1024.0  # model memory available (used by the ED-ViT planner; reported by bench)
    compute_gflops: float = 10.0  # sustained GFLOP/s for planning (ED-ViT assignment)
    network_mbps: float = 1000.0  # link rate to the coordinating host in Mbit/s (ED-ViT transfer estimates)
    engine_cache: str = ""  # exported ONNX models and TensorRT engines; "" = $EDGESTREAM_CACHE/engines (~/.cache/edgestream/engines)
    model_overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # model/family -> {backend, precision, onnx_chunk}
    strict: bool = False  # True: any fallback (GPU, providers, precision, backend) is an error instead
    fallback_reason: str = ""  # set when the resolved profile fell back to CPU (empty otherwise)
    decisions: tuple[str, ...] = ()  # every fallback decision resolve() took on this machine, in order

    def __post_init__(self) -> None:
        where = f"device profile {self.name!r}"
        check_value(self.backend, BACKENDS, f"{where}: backend")
        check_value(self.precision, PRECISIONS, f"{where}: precision")
        check_value(self.dtype, ("float32", "float16", "bfloat16"), f"{where}: dtype")
        check_value(self.queue_policy, QUEUE_POLICIES, f"{where}: queue_policy")
        for key in ("threads", "chunk_size", "queue_size", "onnx_chunk"):
            check_number(getattr(self, key), f"{where}: {key}", low=1, integer=True)
        check_number(self.onnx_opset, f"{where}: onnx_opset", low=13, high=23, integer=True)
        check_number(self.warmup_runs, f"{where}: warmup_runs", low=0, integer=True)
        check_number(self.latency_budget_ms, f"{where}: latency_budget_ms", low=0, low_inclusive=False)
        check_number(self.memory_budget_mb, f"{where}: memory_budget_mb", low=0, low_inclusive=False)
        check_number(self.compute_gflops, f"{where}: compute_gflops", low=0, low_inclusive=False)
        check_number(self.network_mbps, f"{where}: network_mbps", low=0, low_inclusive=False)
        if not (self.torch_device == "cpu" or self.torch_device.startswith("cuda")):
            raise ConfigError(f"{where}: torch_device must be 'cpu' or 'cuda[:N]'; got {self.torch_device!r}.")
        if self.backend == "onnxruntime":
            check_value(self.precision, ORT_PRECISIONS, f"{where}: precision with backend onnxruntime",
                        fix="bf16 is a torch dtype; use dtype: bfloat16 with backend: torch.")
        if isinstance(self.onnx_providers, str) or not all(isinstance(p, str) for p in self.onnx_providers):
            raise ConfigError(f"{where}: onnx_providers must be a list of provider names; got {self.onnx_providers!r}. "
                              "E.g. [CUDAExecutionProvider, CPUExecutionProvider].")
        object.__setattr__(self, "onnx_providers", tuple(self.onnx_providers))
        object.__setattr__(self, "decisions", tuple(self.decisions))
        object.__setattr__(self, "model_overrides", _check_overrides(self.model_overrides, where))

    @property
    def accelerator(self) -> str | None:
        return "cuda" if self.torch_device.startswith("cuda") else None

    @property
    def torch_dtype(self):
        import torch

        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[self.dtype]

    def resolve(self) -> DeviceProfile:
        """Fit the profile to this machine; every change is logged and listed in ``decisions``.

        Raises :class:`ConfigError` instead of falling back when the profile is ``strict``.
        """
        decisions: list[str] = list(self.decisions)
        p = self
        if self.accelerator is not None:
            import torch

            if not torch.cuda.is_available():
                reason = f"CUDA not available (torch {torch.__version__} reports no GPU): falling back to CPU"
                p = dataclasses.replace(p, torch_device="cpu", dtype="float32", fallback_reason=reason)
                decisions.append(reason)
        cpus = os.cpu_count() or 1
        if p.threads > cpus:
            decisions.append(f"threads {p.threads} > {cpus} CPUs here: using {cpus} thread(s)")
            p = dataclasses.replace(p, threads=cpus)
        p = _resolve_runtime(p, decisions)
        return p._decided(decisions)

    def for_model(self, model: str, family: str | None = None) -> DeviceProfile:
        """This profile with ``model_overrides`` for ``model`` (else its ``family``) applied and re-resolved."""
        override = self.model_overrides.get(model)
        if override is None and family is not None:
            override = self.model_overrides.get(family)
        if not override:
            return self
        decisions = list(self.decisions)
        return _resolve_runtime(dataclasses.replace(self, **override), decisions)._decided(decisions)

    def _decided(self, decisions: list[str]) -> DeviceProfile:
        new = [d for d in decisions if d not in self.decisions]
        if new and self.strict:
            raise ConfigError(
                f"device profile {self.name!r} is strict and cannot run as written on this machine: {'; '.join(new)}. "
                "Use another profile (e.g. --device cpu), or set strict: false to allow these fallbacks."
            )
        for d in new:
            log.warning("device %r: %s", self.name, d)
        return dataclasses.replace(self, decisions=tuple(decisions), fallback_reason=self.fallback_reason)

    def engine_cache_dir(self) -> Path:
        """Where exported models and engine caches go (created on demand)."""
        if not self.engine_cache:
            from edgestream.core.paths import cache_dir

            return cache_dir("engines")
        path = Path(os.path.expandvars(self.engine_cache)).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["onnx_providers"] = list(self.onnx_providers)
        out["decisions"] = list(self.decisions)
        return out


def _check_overrides(value: Any, where: str) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: model_overrides must map a model or family name to settings, e.g. "
                          f"{{lmuformer: {{backend: torch}}}}; got {value!r}.")
    out: dict[str, dict[str, Any]] = {}
    for model, settings in value.items():
        at = f"{where}: model_overrides.{model}"
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{at} must be a mapping with keys {', '.join(OVERRIDE_KEYS)}; got {settings!r}.")
        check_keys(settings, OVERRIDE_KEYS, at)
        if "backend" in settings:
            check_value(settings["backend"], BACKENDS, f"{at}.backend")
        if "precision" in settings:
            check_value(settings["precision"], PRECISIONS, f"{at}.precision")
        if "onnx_chunk" in settings:
            check_number(settings["onnx_chunk"], f"{at}.onnx_chunk", low=1, integer=True)
        out[str(model)] = dict(settings)
    return out


def _resolve_runtime(p: DeviceProfile, decisions: list[str]) -> DeviceProfile:
    """Backend, providers and precision against what ONNX Runtime offers here."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        if p.backend != "onnxruntime":
            return p
        decisions.append(f"onnxruntime not importable ({exc}): falling back to the torch backend")
        return dataclasses.replace(p, backend="torch", precision="fp32")
    available = set(ort.get_available_providers())
    missing = [q for q in p.onnx_providers if q not in available]
    kept = tuple(q for q in p.onnx_providers if q in available) or ("CPUExecutionProvider",)
    if missing:
        decisions.append(f"ONNX Runtime providers {', '.join(missing)} not available here "
                         f"(have {', '.join(sorted(available))}): using {', '.join(kept)}")
        p = dataclasses.replace(p, onnx_providers=kept)
    if p.backend == "onnxruntime" and p.precision == "fp16" and not any(q in GPU_PROVIDERS for q in p.onnx_providers):
        # ORT's CPU provider lacks float16 kernels for many ops; for recurrent ones (GRU) onnxruntime
        # 1.32 even crashes while creating the session, so fp16 never runs on a CPU-only session.
        decisions.append("fp16 unsupported on CPUExecutionProvider (no float16 kernels for recurrent ops): using fp32")
        p = dataclasses.replace(p, precision="fp32")
    return p


def _search_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("EDGESTREAM_DEVICES"):
        dirs.append(Path(os.environ["EDGESTREAM_DEVICES"]))
    dirs.append(Path.cwd() / "devices")
    dirs.append(bundled_dir())
    return dirs


def bundled_dir() -> Path:
    """Profiles shipped with the package (``edgestream._devices``; ``devices/`` in a checkout)."""
    try:
        import edgestream._devices as bundled  # installed wheel, or editable install mapping devices/

        return Path(next(iter(bundled.__path__)))
    except ImportError:
        return SOURCE_ROOT / "devices"


def available_profiles() -> dict[str, Path]:
    """Profile name → file, earlier search directories shadowing later ones."""
    found: dict[str, Path] = {}
    for d in reversed(_search_dirs()):
        if d.is_dir():
            for f in sorted(d.glob("*.yaml")):
                found[f.stem] = f
    return dict(sorted(found.items()))


def load_profile_file(path: str | Path) -> DeviceProfile:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"device profile {str(path)!r} must be valid YAML; parsing failed: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"device profile {str(path)!r} must be a mapping of settings; got {type(raw).__name__}.")
    raw.setdefault("name", path.stem)
    fields = [f.name for f in dataclasses.fields(DeviceProfile) if f.name not in RESOLVED_FIELDS]
    check_keys(raw, fields, f"device profile {str(path)!r}")
    return DeviceProfile(**raw)


def load_profile(name_or_path: str | os.PathLike[str] | None = "cpu", *, resolve: bool = True) -> DeviceProfile:
    """Load a profile by name or path; ``resolve`` applies the accelerator check/fallback."""
    key = str(name_or_path or "cpu")
    path = Path(key).expanduser()
    if key.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise ConfigError(f"device must be a profile name or an existing YAML file; got {key!r} (no such file).")
        profile = load_profile_file(path)
    else:
        known = available_profiles()
        if key not in known:
            from edgestream.core.checks import unknown_name

            raise unknown_name("device profile", key, known)
        profile = load_profile_file(known[key])
    return profile.resolve() if resolve else profile
