"""Pipeline stage ``edvit``: frames → split ViT (Ray or in process) → fused predictions + device status.

Input: a frame stream from a camera source (one frame per sample, layout in
``desc/frame``; see :mod:`edgestream.sources.camera`) whose size matches the plan's input.
Each chunk's frames go to the sub-models as one batch; what comes back by the deadline is fused.

Outputs (two streams; the stage returns chunks of both, told apart by ``chunk.info``):

* main output (``build``'s return value), type ``Predictions``: ``p_<class>`` … , ``class``,
  ``confidence``, ``warming`` — one sample per frame, stamped with the frame's timestamp. When
  every device is missing the probabilities are NaN, ``class`` -1 and ``confidence`` 0.
* ``extra_outputs["status"]``, type ``EDViTStatus`` (irregular rate): one sample per chunk,
  stamped with its newest frame: per device ``<dev>_state`` (index into
  ``desc/edvit/states``: ok, late, down, waiting) and ``<dev>_ms`` (round trip, NaN when
  missing), then ``n_present`` and ``fused_ms``. In a pipeline file the status stream is
  ``input: <node>.status``.

The runtime (backend connections, actor handles, per-device counters) is a resource held from
``build`` to ``stop``, like an inlet; the stage keeps no per-stream state (frames are independent).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgestream.core.checks import check_number, check_value
from edgestream.core.chunk import IRREGULAR, Chunk, StreamInfo
from edgestream.core.errors import ConfigError, ValidationError
from edgestream.core.stage import STAGES, Stage

BACKENDS = ("inprocess", "ray")


@STAGES.register("edvit")
class EDViTStage(Stage):
    """Classify camera frames with an ED-ViT split plan.

    Parameters
    ----------
    plan : str
        Plan file written by ``edgestream split plan``.
    backend : {"inprocess", "ray"}
        Run the sub-models here, or as actors on the Ray cluster's device nodes.
    address : str or None
        Ray cluster address (``HEAD_IP:6379``); ``None`` = ``RAY_ADDRESS`` or the local cluster.
    deadline_ms : float
        How long a chunk of frames waits for the devices before fusing without the late ones.
    startup_timeout_s : float
        How long ``build`` waits for the Ray actors to come up.
    """

    def __init__(self, plan: str | None = None, backend: str = "inprocess", address: str | None = None,
                 deadline_ms: float = 250.0, startup_timeout_s: float = 60.0, gap_policy: str = "keep") -> None:
        super().__init__(gap_policy=gap_policy)
        self.plan = plan
        self.backend = check_value(backend, BACKENDS, "backend")
        self.address = address
        self.deadline_ms = check_number(deadline_ms, "deadline_ms", low=0, low_inclusive=False)
        self.startup_timeout_s = check_number(startup_timeout_s, "startup_timeout_s", low=0)
        self.extra_outputs: dict[str, StreamInfo] = {}
        self._runtime: Any = None

    def _build(self, info: StreamInfo) -> StreamInfo:
        from edgestream.split.plan import load_plan
        from edgestream.split.runtime import InProcessBackend, SplitRuntime

        if not self.plan:
            raise ConfigError("plan must name a split plan file; got none. Create one with `edgestream split plan` and "
                              "pass --set <node>.plan=PATH.")
        plan = load_plan(self.plan)
        spec = info.desc.get("frame")
        if not spec:
            raise ValidationError(
                f"edvit needs a frame stream (desc/frame); stream {info.name!r} has none. Use a camera source "
                "(kind video, images, webcam or pattern) as its input."
            )
        got = (int(spec["channels"]), int(spec["height"]), int(spec["width"]))
        if got != tuple(plan.input_shape):
            c, h, w = plan.input_shape
            raise ValidationError(
                f"edvit plan {self.plan!r} needs frames (C, H, W) = {tuple(plan.input_shape)}; stream {info.name!r} carries "
                f"{got}. Set the camera source's size: [{h}, {w}] and grey: {str(c == 1).lower()}."
            )
        if self.backend == "ray":
            from edgestream.split.ray_backend import RayBackend

            backend = RayBackend(plan, self.address, deadline_s=self.deadline_ms / 1e3, startup_timeout_s=self.startup_timeout_s)
        else:
            backend = InProcessBackend(plan, threads=getattr(self.context.device, "threads", None))
        self.stop()
        self._runtime = SplitRuntime(plan, backend).start()
        pipeline, node = self.context.pipeline, self.context.node or "edvit"
        model_desc = {"name": "edvit", "base_model": plan.model, "plan": str(self.plan), "backend": self.backend,
                      "classes": list(plan.classes), "devices": [d.name for d in plan.devices]}
        pred_names = [f"p_{c}" for c in plan.classes] + ["class", "confidence", "warming"]
        predictions = StreamInfo(
            name=f"{pipeline}-{node}", type="Predictions", source_id=f"{pipeline}-{node}-{info.source_id}",
            sfreq=info.sfreq, ch_names=tuple(pred_names),
            ch_types=("probability",) * plan.n_classes + ("class", "confidence", "flag"),
            units=("a.u.",) * len(pred_names), desc={"model": model_desc},
        )
        from edgestream.split.runtime import DEVICE_STATES

        status_names = [f"{d.name}_{k}" for d in plan.devices for k in ("state", "ms")] + ["n_present", "fused_ms"]
        self.extra_outputs = {"status": StreamInfo(
            name=f"{pipeline}-{node}-status", type="EDViTStatus", source_id=f"{pipeline}-{node}-status-{info.source_id}",
            sfreq=IRREGULAR, ch_names=tuple(status_names),
            ch_types=tuple("state" if n.endswith("_state") else "latency" if n.endswith("ms") else "count" for n in status_names),
            units=tuple("ms" if n.endswith("ms") else "a.u." for n in status_names),
            desc={"model": model_desc, "edvit": {"devices": [d.name for d in plan.devices], "states": list(DEVICE_STATES)}},
        )}
        return predictions

    def step(self, chunk: Chunk, state: Any) -> tuple[list[Chunk], Any]:
        from edgestream.split.runtime import DEVICE_STATES
        from edgestream.sources.camera import frames_from_chunk

        if chunk.n_times == 0:
            return [], state
        if self._runtime is None:
            self.require_built()
        result = self._runtime.predict(frames_from_chunk(chunk))
        logits = result.logits.astype(np.float64)
        if np.isfinite(logits).all():
            z = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = z / z.sum(axis=1, keepdims=True)
            cls, conf = probs.argmax(axis=1).astype(np.float64), probs.max(axis=1)
        else:
            probs = np.full_like(logits, np.nan)
            cls, conf = np.full(len(logits), -1.0), np.zeros(len(logits))
        pred = np.column_stack([probs, cls, conf, np.zeros(len(logits))])
        row = []
        for dev in self._runtime.plan.devices:
            st = result.status[dev.name]
            row += [float(DEVICE_STATES.index(st.state)), st.latency_ms]
        row += [float(result.present.sum()), 1e3 * result.seconds]
        out = [
            Chunk.make(pred, chunk.timestamps, self.out_info, gap=chunk.gap),
            Chunk.make(np.asarray(row)[None, :], chunk.timestamps[-1:], self.extra_outputs["status"]),
        ]
        return out, state

    def stop(self) -> None:
        if self._runtime is not None:
            self._runtime.stop()
            self._runtime = None
