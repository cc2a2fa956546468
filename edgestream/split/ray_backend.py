"""The Ray backend: one actor per device, frames broadcast, features gathered with a deadline.

Per frame batch: the frames go into the object store once (``ray.put``) and every device actor
that is free gets a ``features`` call on that reference. The backend waits at most
``deadline_s`` for the answers; a device that has not answered is *late* (its result, when it
arrives, is counted and dropped), a device whose actor died is *down*, and one whose actor is
being (re)started is *waiting* — all are masked in the fusion. Each device has at most one call
in flight, so a slow or dead device never builds a backlog. Actors restart without limit
(``max_restarts=-1``): when a device's node comes back (same custom resource), Ray recreates the
actor there from the weights held by this driver and the device rejoins on the next frame.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np

from edgestream.core.checks import check_number
from edgestream.core.errors import StateError
from edgestream.models.checkpoint import read_checkpoint
from edgestream.split.cluster import require_token_auth
from edgestream.split.plan import SplitPlan
from edgestream.split.runtime import Backend, Gathered

log = logging.getLogger(__name__)


class SubModelWorker:
    """Ray actor body: the sub-models of one device (created through :func:`_actor_class`)."""

    def __init__(self, blobs: list[dict[str, Any]], threads: int = 1) -> None:
        import torch

        from edgestream.models import model_from_checkpoint

        torch.set_num_threads(max(1, int(threads)))
        self.models = [model_from_checkpoint(b, where="shipped sub-model") for b in blobs]

    def features(self, frames: np.ndarray) -> tuple[list[np.ndarray], float]:
        """CLS features ``(B, D)`` of each sub-model on frames ``(B, C, H, W)``, and compute ms."""
        import torch

        t0 = time.perf_counter()
        with torch.no_grad():
            x = torch.from_numpy(np.asarray(frames, dtype=np.float32))
            out = [m.forward_features(x).numpy() for m in self.models]
        return out, 1e3 * (time.perf_counter() - t0)

    def ping(self) -> dict[str, Any]:
        import os

        import ray

        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}


def _actor_class() -> Any:
    import ray

    return ray.remote(max_restarts=-1, max_task_retries=0)(SubModelWorker)


@dataclasses.dataclass
class _InFlight:
    ref: Any  # ObjectRef of the features call
    frame: int  # frame batch number it was sent for
    sent: float  # perf_counter when sent


class RayBackend(Backend):
    """Sub-models as Ray actors on the device nodes of a running cluster.

    Parameters
    ----------
    plan : SplitPlan
    address : str or None
        Cluster address (``HEAD_IP:6379``); ``None`` uses an already-initialised connection or
        ``RAY_ADDRESS``.
    deadline_s : float
        How long one frame batch waits for the devices (seconds).
    startup_timeout_s : float
        How long :meth:`start` waits for every actor to answer once (devices that do not are
        reported as waiting and join when they come up).
    require_token : bool
        Refuse to connect unless ``RAY_AUTH_MODE=token`` and a token are set (the default).
    """

    def __init__(self, plan: SplitPlan, address: str | None = None, *, deadline_s: float = 0.5,
                 startup_timeout_s: float = 60.0, require_token: bool = True) -> None:
        super().__init__(plan)
        self.address = address
        self.deadline_s = check_number(deadline_s, "deadline_s", low=0, low_inclusive=False)
        self.startup_timeout_s = check_number(startup_timeout_s, "startup_timeout_s", low=0)
        self.require_token = require_token
        self.actors: dict[str, Any] = {}
        self.weights: dict[str, Any] = {}
        self.inflight: dict[str, _InFlight | None] = {}
        self.frame = 0
        self._failed_now: set[str] = set()
        self._connected_here = False

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        import ray

        if self.require_token:
            require_token_auth()
        if not ray.is_initialized():
            ray.init(address=self.address or "auto", logging_level=logging.WARNING, log_to_driver=False)
            self._connected_here = True
        known = set(ray.cluster_resources())
        actor_cls = _actor_class()
        for dev in self.plan.devices:
            subs = [s for s in self.plan.submodels if s.device == dev.name]
            if not subs:
                continue
            if dev.resource not in known:
                log.warning("device %r has no node in the cluster yet (resource %s); it joins when one starts", dev.name, dev.resource)
            # Held here for the backend's lifetime: a restarted actor re-reads its weights from this
            # object (Ray frees plain creation arguments once the first creation has finished).
            self.weights[dev.name] = ray.put([read_checkpoint(self.plan.path(s.checkpoint)) for s in subs])
            self.actors[dev.name] = actor_cls.options(resources={dev.resource: 1}, num_cpus=0).remote(
                self.weights[dev.name], dev.threads
            )
            self.inflight[dev.name] = None
        self._await_startup()

    def _await_startup(self) -> None:
        import ray

        pings = {name: actor.ping.remote() for name, actor in self.actors.items()}
        ready, _ = ray.wait(list(pings.values()), num_returns=len(pings), timeout=self.startup_timeout_s)
        for name, ref in pings.items():
            if ref in ready:
                try:
                    info = ray.get(ref)
                    log.info("device %r up: pid %s on node %s", name, info["pid"], info["node_id"][:12])
                    self.status[name].state = "ok"
                except Exception as exc:  # actor failed to start (e.g. bad weights): reported, masked
                    log.error("device %r failed to start: %s", name, exc)
                    self.status[name].state = "down"
            else:
                log.warning("device %r did not answer within %.0f s; masked until it does", name, self.startup_timeout_s)

    def stop(self) -> None:
        import ray

        if not ray.is_initialized():
            return
        for actor in self.actors.values():
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already gone with its node
                pass
        self.actors.clear()
        self.weights.clear()
        if self._connected_here:
            ray.shutdown()

    # --- per frame -----------------------------------------------------------------------
    def _collect(self, name: str, results: dict[str, list[np.ndarray]]) -> None:
        """Turn a finished in-flight call into a result (this frame) or a late/failed count."""
        import ray

        job = self.inflight[name]
        self.inflight[name] = None
        st = self.status[name]
        try:
            feats, _compute_ms = ray.get(job.ref)
        except Exception as exc:  # RayActorError, ActorDiedError, ActorUnavailableError, ...
            log.debug("device %r call failed: %s: %s", name, type(exc).__name__, str(exc)[-1500:])
            if st.state in ("down", "waiting"):
                st.state = "waiting"  # still restarting: already reported
            else:
                log.warning("device %r is down (%s); its sub-model is masked until it rejoins", name, type(exc).__name__)
                st.state = "down"
                self._failed_now.add(name)
            return
        if job.frame == self.frame:
            if st.state in ("down", "waiting") and st.frames_ok:
                st.restarts += 1
                log.info("device %r is back", name)
            st.state, st.latency_ms = "ok", 1e3 * (time.perf_counter() - job.sent)
            st.frames_ok += 1
            results[name] = feats
        else:
            st.late_results += 1  # answered after its frame was fused without it

    def gather(self, frames: np.ndarray) -> Gathered:
        import ray

        if not self.actors:
            raise StateError("RayBackend.start() must be called before gather().")
        self.frame += 1
        self._failed_now: set[str] = set()
        results: dict[str, list[np.ndarray]] = {}
        # Free devices whose previous call has finished meanwhile (late answers, failures).
        busy = {n: j.ref for n, j in self.inflight.items() if j is not None}
        if busy:
            done, _ = ray.wait(list(busy.values()), num_returns=len(busy), timeout=0)
            for name, ref in busy.items():
                if ref in done:
                    self._collect(name, results)
        ref = ray.put(frames)  # broadcast: one copy in the object store, fetched by each device
        now = time.perf_counter()
        for name, actor in self.actors.items():
            if self.inflight[name] is None:
                self.inflight[name] = _InFlight(actor.features.remote(ref), self.frame, now)
        current = {n: j.ref for n, j in self.inflight.items() if j is not None and j.frame == self.frame}
        deadline = now + self.deadline_s
        while current:
            done, _ = ray.wait(list(current.values()), num_returns=1, timeout=max(0.0, deadline - time.perf_counter()))
            if not done:
                break
            for name in [n for n, r in current.items() if r in done]:
                del current[name]
                self._collect(name, results)
        for name in self.actors:
            if name not in results:
                st = self.status[name]
                if st.state == "ok":
                    st.state = "late"
                elif st.state == "down" and name not in self._failed_now:
                    st.state = "waiting"  # reported down once; now a call waits for the restarted actor
                st.latency_ms = float("nan")
                st.frames_missed += 1
        features: list[np.ndarray | None] = []
        slot = {name: 0 for name in self.actors}
        for spec in self.plan.submodels:
            got = results.get(spec.device)
            features.append(None if got is None else got[slot[spec.device]])
            slot[spec.device] += 1
        return Gathered(features, self.status)
