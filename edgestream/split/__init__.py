"""ED-ViT: split a vision transformer across networked edge devices, and run it on Ray.

Four steps (Liu et al. 2024, "Splitting Vision Transformer for Distributed Inference on Edge
Devices"): :mod:`~edgestream.split.classes` (split the K classes into S subsets),
:mod:`~edgestream.split.prune` (class-wise pruning of heads and MLP neurons to each device's
memory budget), fine-tuning with distillation from the dense model (:func:`edgestream.train.fit`
with ``teacher=``), :mod:`~edgestream.split.fusion` (an MLP over the sub-models' CLS features,
trained with sub-models dropped at random) and :mod:`~edgestream.split.assign` (sub-models to
devices by makespan under memory budgets). :func:`edgestream.train.edvit.make_plan` runs them and
writes a :class:`~edgestream.split.plan.SplitPlan` file — it lives in ``train/`` because two
steps train, so this package (what a device needs to run a plan) never imports training.
:mod:`~edgestream.split.runtime` runs a plan in process, :mod:`~edgestream.split.ray_backend` on
a Ray cluster.

README section
--------------

ED-ViT: one vision transformer over several small edge boxes
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

When no single box can hold the model, ``edgestream split`` cuts a ViT into class-specialised,
pruned sub-models — one per device, each no larger than that device's ``memory_budget_mb`` — and
a small fusion MLP on the machine with the camera combines their features. If a device drops
out, predictions continue (less accurately) without it and it rejoins when it comes back.

1. Plan (on any machine; trains a dense ViT unless ``--checkpoint`` is given)::

       edgestream split plan --data /path/to/fashion-mnist \\
           --device box-a=edge-small --device box-b=edge-small --device box-c=rpi5 \\
           --out edvit_plan/
       # → edvit_plan/plan.yaml (sub-model ↔ classes ↔ device, sizes, expected latency),
       #   sub0.pt … subN.pt, fusion.pt, dense.pt

   ``--device NAME=PROFILE`` names a box and the profile in ``devices/`` that describes it
   (``memory_budget_mb``, ``compute_gflops``, ``network_mbps``); ``--memory-mb`` overrides
   every budget. The plan file is plain YAML: read it to see which classes run where.

2. Start the cluster with token authentication. Every machine — head, devices and the one
   running the pipeline — needs ``RAY_AUTH_MODE=token`` and the same token. On the head::

       export RAY_AUTH_MODE=token
       ray get-auth-token --generate            # writes ~/.ray/auth_token
       edgestream split serve --head --node-ip-address HEAD_IP     # port 6379; runs until Ctrl-C

   Copy ``~/.ray/auth_token`` to each device (``scp``; or set ``RAY_AUTH_TOKEN_PATH`` to a
   copy), then on each device, with the name it has in the plan::

       export RAY_AUTH_MODE=token
       edgestream split serve --address HEAD_IP:6379 --device box-a --node-ip-address BOX_A_IP

   ``serve`` runs ``ray start`` with the custom resource ``edgestream_device_<name>``, so the
   sub-model planned for ``box-a`` is placed on that machine only (``--dry-run`` prints the
   command). A client without the token is refused by the cluster ("Authentication token is
   missing or incorrect"). Ray ships the sub-model weights from the coordinating host; the
   devices need edgestream installed (``pip install edgestream[split]``) but no plan files.
   Open the head's port 6379 and Ray's node ports between the machines only on a trusted
   network: the token authenticates but does not encrypt.

3. Run the camera pipeline on the machine with the camera (it connects as a Ray driver)::

       export RAY_AUTH_MODE=token RAY_ADDRESS=HEAD_IP:6379
       edgestream run camera_edvit \\
           --set model.plan=edvit_plan/plan.yaml --set model.backend=ray

   Its camera is a generated moving pattern (source kind ``pattern``) until you point it at a
   real one: ``--set camera.kind=video --set camera.path=clip.avi``, or a webcam (see the file).

   It publishes ``Predictions`` (``p_<class>``…, ``class``, ``confidence``) and ``EDViTStatus``
   (per device: state ok/late/down/waiting and round-trip ms; ``n_present``). A device that
   misses a frame's deadline (``deadline_ms``) is masked for that frame; a device that dies is
   reported ``down``, its actor is restarted by Ray when the box is back, and it rejoins.
   Without a cluster, ``--set model.backend=inprocess`` runs every sub-model on this machine.

Library use::

    from edgestream.split import load_plan, SplitRuntime, InProcessBackend, RayBackend
    plan = load_plan("edvit_plan/plan.yaml")
    with SplitRuntime(plan, RayBackend(plan, address="HEAD_IP:6379", deadline_s=0.25)) as rt:
        result = rt.predict(frames)      # (B, C, H, W) float32 in [0, 1] → result.logits (B, K)
"""

from edgestream.split.assign import Job, Machine, assign, greedy_assign, makespan, round_robin
from edgestream.split.classes import CLASS_SPLITS, balanced_split, confusion_split, split_classes
from edgestream.split.fusion import FusionMLP, SubmodelDrop, fusion_input
from edgestream.split.plan import DeviceSpec, SplitPlan, SubModelSpec, device_specs, load_plan, resource_name
from edgestream.split.prune import SCORES, compute_scores, plan_pruning, prune_to_budget
from edgestream.split.runtime import Backend, InProcessBackend, Prediction, SplitRuntime


def __getattr__(name: str):
    # Ray is optional (edgestream[split]): import the Ray backend only when asked for.
    if name == "RayBackend":
        from edgestream.split.ray_backend import RayBackend

        return RayBackend
    if name == "LocalCluster":
        from edgestream.split.cluster import LocalCluster

        return LocalCluster
    raise AttributeError(name)


__all__ = [
    "CLASS_SPLITS", "SCORES", "Backend", "DeviceSpec", "FusionMLP", "InProcessBackend", "Job", "LocalCluster", "Machine",
    "Prediction", "RayBackend", "SplitPlan", "SplitRuntime", "SubModelSpec", "SubmodelDrop", "assign",
    "balanced_split", "compute_scores", "confusion_split", "device_specs", "fusion_input", "greedy_assign", "load_plan",
    "makespan", "plan_pruning", "prune_to_budget", "resource_name", "round_robin", "split_classes",
]
