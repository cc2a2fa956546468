"""Running a split plan: sub-model backends (in process, or on Ray) and the fusion on the host.

A backend takes a batch of frames and returns each sub-model's CLS features, or ``None`` for a
sub-model whose device is missing or late, with a status per device. :class:`SplitRuntime`
fuses what came back (missing sub-models masked) into K-class logits::

    plan = load_plan("out/plan.yaml")
    with SplitRuntime(plan, InProcessBackend(plan)) as rt:
        result = rt.predict(frames)            # frames (B, C, H, W) float32 in [0, 1]
        result.logits, result.present, result.status
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from edgestream.core.errors import DataError, StateError
from edgestream.models import load_checkpoint, read_checkpoint
from edgestream.models.vit import VisionTransformer
from edgestream.split.fusion import FusionMLP, fusion_input
from edgestream.split.plan import SplitPlan, SubModelSpec

# Device states reported per frame (and on the EDViTStatus stream, as their index).
DEVICE_STATES = ("ok", "late", "down", "waiting")


@dataclasses.dataclass
class DeviceStatus:
    """What one device did for one frame, plus running counters."""

    name: str  # device instance name
    state: str = "waiting"  # ok | late (missed the deadline) | down (actor failed) | waiting (not yet placed/restarting)
    latency_ms: float = float("nan")  # round trip of its sub-model(s) for this frame (NaN unless ok)
    frames_ok: int = 0  # frames it contributed to
    frames_missed: int = 0  # frames fused without it (late, down or waiting)
    late_results: int = 0  # results that arrived after their frame's deadline (discarded)
    restarts: int = 0  # times it came back after being down


@dataclasses.dataclass
class Gathered:
    features: list[np.ndarray | None]  # per sub-model (plan order): (B, D) float32, or None when missing
    status: dict[str, DeviceStatus]  # per device


@dataclasses.dataclass
class Prediction:
    logits: np.ndarray  # (B, K) fused logits
    present: np.ndarray  # (S,) bool, sub-models that contributed
    status: dict[str, DeviceStatus]  # per device (copies)
    seconds: float  # wall-clock from frames in to fused logits out


def load_submodel(plan: SplitPlan, spec: SubModelSpec) -> VisionTransformer:
    model, _ = load_checkpoint(plan.path(spec.checkpoint))
    return model


def load_fusion(path: Any) -> FusionMLP:
    blob = read_checkpoint(path)
    fusion = FusionMLP(**blob["manifest"]["config"])
    fusion.load_state_dict(blob["state_dict"])
    return fusion.eval()


def check_frames(frames: Any, plan: SplitPlan) -> np.ndarray:
    arr = np.asarray(frames, dtype=np.float32)
    if arr.ndim != 4 or tuple(arr.shape[1:]) != tuple(plan.input_shape):
        c, h, w = plan.input_shape
        raise DataError(
            f"frames must have shape (B, {c}, {h}, {w}) for plan model {plan.model!r}; got {arr.shape}. "
            "Resize/greyscale the camera frames to the plan's input (camera source size=/grey=)."
        )
    return arr


class Backend:
    """Where the sub-models run. ``start()`` → ``gather(frames)`` per batch → ``stop()``."""

    def __init__(self, plan: SplitPlan) -> None:
        self.plan = plan
        self.status = {d.name: DeviceStatus(d.name) for d in plan.devices}

    def start(self) -> None:
        pass

    def gather(self, frames: np.ndarray) -> Gathered:
        raise NotImplementedError

    def stop(self) -> None:
        pass

    def _mark(self, device: str, ok: bool, latency_ms: float = float("nan"), state: str | None = None) -> None:
        st = self.status[device]
        if ok:
            if st.state in ("down",) and st.frames_ok:
                st.restarts += 1
            st.state, st.latency_ms = "ok", latency_ms
            st.frames_ok += 1
        else:
            st.state, st.latency_ms = state or "down", float("nan")
            st.frames_missed += 1


class InProcessBackend(Backend):
    """Runs every sub-model in this process, one after the other (one machine, no Ray).

    ``disabled`` names devices to treat as missing (to measure or test degraded operation).
    """

    def __init__(self, plan: SplitPlan, disabled: Iterable[str] = (), threads: int | None = None) -> None:
        super().__init__(plan)
        self.disabled = set(disabled)
        unknown = self.disabled - {d.name for d in plan.devices}
        if unknown:
            raise DataError(f"disabled must name plan devices {[d.name for d in plan.devices]}; got {sorted(unknown)}.")
        self.threads = threads
        self.models: list[VisionTransformer] = []

    def start(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        self.models = [load_submodel(self.plan, s) for s in self.plan.submodels]

    @torch.no_grad()
    def gather(self, frames: np.ndarray) -> Gathered:
        if not self.models:
            raise StateError("InProcessBackend.start() must be called before gather().")
        x = torch.from_numpy(frames)
        feats: list[np.ndarray | None] = []
        per_device: dict[str, float] = {}
        for spec, model in zip(self.plan.submodels, self.models):
            if spec.device in self.disabled:
                feats.append(None)
                continue
            t0 = time.perf_counter()
            feats.append(model.forward_features(x).numpy())
            per_device[spec.device] = per_device.get(spec.device, 0.0) + 1e3 * (time.perf_counter() - t0)
        for d in self.plan.devices:
            if d.name in self.disabled:
                self._mark(d.name, False, state="down")
            else:
                self._mark(d.name, True, per_device.get(d.name, 0.0))
        return Gathered(feats, self.status)


class SplitRuntime:
    """Fuses a backend's sub-model features into K-class predictions (fusion runs here)."""

    def __init__(self, plan: SplitPlan, backend: Backend) -> None:
        self.plan, self.backend = plan, backend
        self.fusion: FusionMLP | None = None

    def start(self) -> SplitRuntime:
        self.fusion = load_fusion(self.plan.path(self.plan.fusion_checkpoint))
        self.backend.start()
        return self

    def stop(self) -> None:
        self.backend.stop()

    def __enter__(self) -> SplitRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @torch.no_grad()
    def fuse(self, features: list[np.ndarray | None]) -> np.ndarray:
        """Logits ``(B, K)`` from per-sub-model features (``None`` = masked)."""
        if self.fusion is None:
            raise StateError("SplitRuntime.start() must be called before predict()/fuse().")
        return self.fusion(fusion_input(features)).numpy()

    def predict(self, frames: Any) -> Prediction:
        """Fused logits for frames ``(B, C, H, W)``; missing sub-models are masked, never waited for past the deadline."""
        t0 = time.perf_counter()
        x = check_frames(frames, self.plan)
        got = self.backend.gather(x)
        present = np.array([f is not None for f in got.features])
        if not present.any():
            logits = np.full((len(x), self.plan.n_classes), np.nan, dtype=np.float32)
        else:
            logits = self.fuse(got.features)
        status = {k: dataclasses.replace(v) for k, v in got.status.items()}
        return Prediction(logits, present, status, time.perf_counter() - t0)
