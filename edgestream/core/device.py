"""Device profiles: what an edge box can run and how (``devices/*.yaml``).

``--device jetson`` resolves, in order: an explicit path to a YAML file, ``$EDGESTREAM_DEVICES``
(a directory), ``./devices`` in the working directory, and the profiles bundled with the
package. A profile whose accelerator is missing falls back to the CPU with a logged warning,
unless it is ``strict``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import yaml

from edgestream.core.checks import check_keys, check_number, check_value
from edgestream.core.errors import ConfigError
from edgestream.core.paths import SOURCE_ROOT

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
QUEUE_POLICIES = ("drop-oldest", "reject", "block", "fail")


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
    """How to run on one class of device. Loaded from YAML; unknown keys are errors."""

    name: str  # profile name, e.g. "jetson"
    description: str = ""  # one line for `edgestream doctor`
    torch_device: str = "cpu"  # "cpu", "cuda", "cuda:0"
    dtype: str = "float32"  # torch compute dtype: float32, float16, bfloat16
    threads: int = 1  # torch intra-op threads (and ONNX Runtime intra-op threads)
    backend: str = "torch"  # "torch" (eager) or "onnxruntime"
    precision: str = "fp32"  # exported model precision: fp32, fp16, bf16, int8
    onnx_providers: tuple[str, ...] = ("CPUExecutionProvider",)  # ONNX Runtime providers, in preference order
    chunk_size: int = 32  # samples pulled per read at most (keeps per-chunk latency bounded)
    queue_size: int = 64  # chunks held at a thread hand-off before the queue policy applies
    queue_policy: str = "drop-oldest"  # what a full hand-off queue does: drop-oldest, reject, block, fail
    latency_budget_ms: float = 50.0  # end-to-end p99 the device must meet (edgestream bench pass/fail)
    memory_budget_mb: float = 1024.0  # model memory available (used by the ED-ViT planner)
    compute_gflops: float = 10.0  # sustained GFLOP/s for planning (ED-ViT assignment)
    network_mbps: float = 1000.0  # link rate to the coordinating host in Mbit/s (ED-ViT transfer estimates)
    engine_cache: str = "~/.cache/edgestream/engines"  # where exported ONNX/TensorRT engines are cached
    strict: bool = False  # True: a missing accelerator is an error instead of a CPU fallback
    fallback_reason: str = ""  # set when the resolved profile fell back to CPU (empty otherwise)

    def __post_init__(self) -> None:
        check_value(self.backend, BACKENDS, f"device profile {self.name!r}: backend")
        check_value(self.precision, PRECISIONS, f"device profile {self.name!r}: precision")
        check_value(self.dtype, ("float32", "float16", "bfloat16"), f"device profile {self.name!r}: dtype")
        check_value(self.queue_policy, QUEUE_POLICIES, f"device profile {self.name!r}: queue_policy")
        check_number(self.threads, f"device profile {self.name!r}: threads", low=1, integer=True)
        check_number(self.chunk_size, f"device profile {self.name!r}: chunk_size", low=1, integer=True)
        check_number(self.queue_size, f"device profile {self.name!r}: queue_size", low=1, integer=True)
        check_number(self.latency_budget_ms, f"device profile {self.name!r}: latency_budget_ms", low=0, low_inclusive=False)
        check_number(self.memory_budget_mb, f"device profile {self.name!r}: memory_budget_mb", low=0, low_inclusive=False)
        check_number(self.compute_gflops, f"device profile {self.name!r}: compute_gflops", low=0, low_inclusive=False)
        check_number(self.network_mbps, f"device profile {self.name!r}: network_mbps", low=0, low_inclusive=False)
        if not (self.torch_device == "cpu" or self.torch_device.startswith("cuda")):
            raise ConfigError(
                f"device profile {self.name!r}: torch_device must be 'cpu' or 'cuda[:N]'; got {self.torch_device!r}."
            )
        object.__setattr__(self, "onnx_providers", tuple(self.onnx_providers))

    @property
    def accelerator(self) -> str | None:
        return "cuda" if self.torch_device.startswith("cuda") else None

    @property
    def torch_dtype(self):
        import torch

        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[self.dtype]

    def resolve(self) -> DeviceProfile:
        """Check the accelerator is present; fall back to CPU (logged) or raise if ``strict``."""
        if self.accelerator is None:
            return self
        import torch

        if torch.cuda.is_available():
            return self
        reason = f"CUDA not available (torch {torch.__version__} reports no GPU): falling back to CPU"
        if self.strict:
            raise ConfigError(
                f"device profile {self.name!r} is strict and needs CUDA; got a machine without it ({reason}). "
                "Use --device cpu, or set strict: false in the profile to allow the fallback."
            )
        log.warning("device %r: %s", self.name, reason)
        providers = tuple(p for p in self.onnx_providers if p == "CPUExecutionProvider") or ("CPUExecutionProvider",)
        return dataclasses.replace(
            self, torch_device="cpu", dtype="float32", precision="fp32" if self.precision != "int8" else "int8",
            onnx_providers=providers, fallback_reason=reason,
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["onnx_providers"] = list(self.onnx_providers)
        return out


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
    fields = [f.name for f in dataclasses.fields(DeviceProfile) if f.name != "fallback_reason"]
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
