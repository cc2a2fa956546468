"""The split plan: which sub-model holds which classes, runs on which device, at what cost.

A plan is a YAML (``.yaml``/``.yml``) or JSON (``.json``) file beside the sub-model and fusion
checkpoints it names (paths relative to the plan file), and round-trips exactly through
:meth:`SplitPlan.save` / :func:`load_plan`::

    version: 1
    model: vit_tiny_28                  # registered dense model the sub-models were cut from
    classes: [t-shirt, trouser, ...]    # K class names, index = class id
    input_shape: [1, 28, 28]            # (C, H, W), pixels in [0, 1]
    devices:
      - {name: box-a, profile: edge-small, memory_budget_mb: 0.14, compute_gflops: 2.0, network_mbps: 100.0}
    submodels:
      - {name: sub0, classes: [0, 3, 6], device: box-a, checkpoint: sub0.pt, size_mb: 0.13, ...}
    fusion: {checkpoint: fusion.pt, gflop: 1.0e-5}
    makespan_ms: 3.1                    # slowest device per frame (compute + transfer)
    expected_latency_ms: 3.2            # makespan + fusion on the coordinator
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import yaml

from edgestream.core.checks import check_keys, fail
from edgestream.core.device import load_profile
from edgestream.core.errors import ConfigError

PLAN_VERSION = 1


def resource_name(device: str) -> str:
    """Ray custom resource that marks the node standing for ``device`` (one unit per node)."""
    return "edgestream_device_" + re.sub(r"[^A-Za-z0-9_]", "_", device)


@dataclasses.dataclass(frozen=True)
class DeviceSpec:
    """A device instance taking part in the split."""

    name: str  # instance name, unique in the plan (e.g. "box-a"); also names its Ray resource
    profile: str  # device profile it was planned with (devices/<profile>.yaml)
    memory_budget_mb: float  # model memory available on it
    compute_gflops: float  # sustained GFLOP/s used for latency estimates
    network_mbps: float  # link rate to the coordinating host, Mbit/s
    threads: int = 1  # torch intra-op threads the worker uses

    @property
    def resource(self) -> str:
        return resource_name(self.name)


def device_specs(entries: Sequence[str]) -> list[DeviceSpec]:
    """Device instances from ``"NAME=PROFILE"`` or ``"PROFILE"`` entries (repeats get ``-2``, ``-3`` ...).

    Parameters
    ----------
    entries : sequence of str
        ``--device`` values: ``"box-a=edge-small"``, or a bare profile name used as the name too.

    Returns
    -------
    list of DeviceSpec
        One per entry, budgets and speeds read from the named device profile.
    """
    specs: list[DeviceSpec] = []
    seen: dict[str, int] = {}
    for entry in entries:
        name, _, profile_name = entry.partition("=") if "=" in entry else (entry, "", entry)
        if not name or not profile_name:
            fail("--device", "be NAME=PROFILE or PROFILE", entry, "e.g. --device box-a=edge-small")
        profile = load_profile(profile_name)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}-{seen[name]}"
        specs.append(DeviceSpec(name, profile.name, float(profile.memory_budget_mb), float(profile.compute_gflops),
                                float(profile.network_mbps), int(profile.threads)))
    return specs


@dataclasses.dataclass(frozen=True)
class SubModelSpec:
    """One pruned sub-model."""

    name: str  # e.g. "sub0"
    classes: tuple[int, ...]  # class ids (into SplitPlan.classes) this sub-model specialises in
    device: str  # DeviceSpec.name it runs on
    checkpoint: str  # edgestream checkpoint, relative to the plan file
    other: bool  # True: its head has an extra "other" output for classes outside its subset
    size_mb: float  # parameter memory (float32)
    gflop: float  # work per frame
    n_heads: tuple[int, ...]  # heads kept per block
    mlp_hidden: tuple[int, ...]  # MLP neurons kept per block
    expected_ms: float  # compute + transfer per frame on its device
    feature_dim: int  # length of the CLS feature it returns


@dataclasses.dataclass(frozen=True)
class SplitPlan:
    """Everything needed to run a split ViT, in process or on a Ray cluster."""

    model: str  # registered dense model name (sub-models share its architecture family)
    classes: tuple[str, ...]  # class names, index = class id
    input_shape: tuple[int, int, int]  # (C, H, W) the sub-models take, pixels in [0, 1]
    devices: tuple[DeviceSpec, ...]
    submodels: tuple[SubModelSpec, ...]
    fusion_checkpoint: str  # fusion MLP checkpoint, relative to the plan file
    fusion_gflop: float  # fusion work per frame
    makespan_ms: float  # slowest device per frame
    expected_latency_ms: float  # makespan + fusion
    dense_size_mb: float = 0.0  # the dense model's parameter memory, for comparison
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)  # how it was made: strategy, scores, metrics
    version: int = PLAN_VERSION
    root: Path | None = dataclasses.field(default=None, compare=False)  # directory the relative paths resolve against

    def __post_init__(self) -> None:
        object.__setattr__(self, "notes", json.loads(json.dumps(self.notes)))  # plain values, so a plan equals its reloaded copy
        names = [d.name for d in self.devices]
        if len(set(names)) != len(names):
            fail("plan devices", "have unique names", names)
        for sub in self.submodels:
            if sub.device not in names:
                fail(f"sub-model {sub.name!r} device", f"be one of the plan's devices {names}", sub.device)
            for c in sub.classes:
                if not 0 <= c < len(self.classes):
                    fail(f"sub-model {sub.name!r} classes", f"be class ids in [0, {len(self.classes)})", list(sub.classes))

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def device(self, name: str) -> DeviceSpec:
        for d in self.devices:
            if d.name == name:
                return d
        fail("device", f"be one of {[d.name for d in self.devices]}", name)

    def path(self, relative: str) -> Path:
        """Resolve a checkpoint path of the plan (relative to the plan file's directory)."""
        p = Path(relative)
        return p if p.is_absolute() or self.root is None else self.root / p

    def per_device_size_mb(self) -> dict[str, float]:
        sizes = {d.name: 0.0 for d in self.devices}
        for s in self.submodels:
            sizes[s.device] += s.size_mb
        return sizes

    # --- files ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("root")
        for sub in out["submodels"]:
            for key in ("classes", "n_heads", "mlp_hidden"):
                sub[key] = list(sub[key])
        out["classes"], out["input_shape"] = list(self.classes), list(self.input_shape)
        out["fusion"] = {"checkpoint": out.pop("fusion_checkpoint"), "gflop": out.pop("fusion_gflop")}
        return json.loads(json.dumps(out))  # plain lists/dicts only (tuples in notes would not dump as YAML)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the plan as YAML or JSON (by suffix); paths inside stay relative."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.to_dict()
        if path.suffix == ".json":
            text = json.dumps(data, indent=2)
        elif path.suffix in (".yaml", ".yml"):
            text = yaml.safe_dump(data, sort_keys=False)
        else:
            fail("plan path", "end in .yaml, .yml or .json", str(path))
        path.write_text(text)
        return path


def plan_from_dict(data: dict[str, Any], root: Path | None = None, where: str = "plan") -> SplitPlan:
    """Build a plan from its dict form, refusing unknown keys (typos must not pass)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping; got {type(data).__name__}.")
    data = dict(data)
    top = [f.name for f in dataclasses.fields(SplitPlan) if f.name not in ("root", "fusion_checkpoint", "fusion_gflop")] + ["fusion"]
    check_keys(data, top, where)
    if data.get("version", PLAN_VERSION) != PLAN_VERSION:
        fail(f"{where} version", f"be {PLAN_VERSION}", data.get("version"), "Re-create the plan with `edgestream split plan`.")
    for key in ("model", "classes", "input_shape", "devices", "submodels", "fusion", "makespan_ms", "expected_latency_ms"):
        if key not in data:
            fail(where, f"contain the key {key!r}", sorted(data), "Re-create the plan with `edgestream split plan`.")
    fusion = data.pop("fusion")
    check_keys(fusion, ["checkpoint", "gflop"], f"{where} fusion")
    device_fields = [f.name for f in dataclasses.fields(DeviceSpec)]
    sub_fields = [f.name for f in dataclasses.fields(SubModelSpec)]
    devices = []
    for d in data.pop("devices"):
        check_keys(d, device_fields, f"{where} device")
        devices.append(DeviceSpec(**d))
    subs = []
    for s in data.pop("submodels"):
        check_keys(s, sub_fields, f"{where} sub-model")
        s = dict(s)
        for key in ("classes", "n_heads", "mlp_hidden"):
            s[key] = tuple(int(v) for v in s[key])
        subs.append(SubModelSpec(**s))
    return SplitPlan(
        **data | {"classes": tuple(data["classes"]), "input_shape": tuple(int(v) for v in data["input_shape"])},
        devices=tuple(devices), submodels=tuple(subs), fusion_checkpoint=fusion["checkpoint"],
        fusion_gflop=float(fusion["gflop"]), root=root,
    )


def load_plan(path: str | os.PathLike[str]) -> SplitPlan:
    """Read a plan file written by :meth:`SplitPlan.save` (YAML or JSON)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"plan must be an existing file; got {str(path)!r}. Create one with `edgestream split plan`.")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"plan {str(path)!r} must be valid YAML/JSON; parsing failed: {exc}") from None
    return plan_from_dict(data, root=path.resolve().parent, where=f"plan {str(path)!r}")
