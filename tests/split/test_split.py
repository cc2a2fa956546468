"""ED-ViT steps without Ray: class split, pruning, assignment, fusion, plan files, in-process runtime."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from edgestream.core.errors import ConfigError, DataError
from edgestream.models import create_model
from edgestream.split.assign import Job, Machine, assign, feasible, greedy_assign, makespan, round_robin
from edgestream.split.classes import balanced_split, confusion_split, split_classes
from edgestream.split.fusion import FusionMLP, SubmodelDrop, fusion_input
from edgestream.split.plan import load_plan, plan_from_dict
from edgestream.split.prune import compute_scores, plan_pruning, prune_to_budget, pruned_size_bytes
from edgestream.split.runtime import InProcessBackend, SplitRuntime
from edgestream.train import TrainConfig, distillation_loss, fit


# --- class split ----------------------------------------------------------------------------
def test_balanced_split_covers_every_class_once_with_even_sizes():
    parts = balanced_split(10, 3, seed=1)
    assert sorted(c for p in parts for c in p) == list(range(10))
    assert sorted(len(p) for p in parts) == [3, 3, 4]


def test_confusion_split_groups_the_classes_a_model_confuses():
    cm = np.eye(6) * 100
    for a, b in [(0, 3), (1, 4), (2, 5)]:  # three confusable pairs
        cm[a, b] = cm[b, a] = 30
    parts = confusion_split(6, 3, confusion=cm)
    assert parts == [[0, 3], [1, 4], [2, 5]]
    with pytest.raises(ConfigError, match=r"n_parts must lie in \[1, 6\]; got 7"):
        split_classes("balanced", 6, 7)
    with pytest.raises(ConfigError, match="unknown class split 'confusoin'. Did you mean 'confusion'"):
        split_classes("confusoin", 6, 2)


# --- pruning --------------------------------------------------------------------------------
def test_pruning_plan_fits_the_budget_and_reports_the_real_size():
    torch.manual_seed(0)
    model = create_model("vit_tiny_28")
    scores = compute_scores("magnitude", model)
    budget = model.size_bytes() / 3
    result = plan_pruning(model, scores, budget)
    pruned = model.prune(result.keep_heads, result.keep_neurons)
    assert pruned.size_bytes() == result.size_bytes == pruned_size_bytes(model, result.keep_heads, result.keep_neurons)
    assert result.size_bytes <= budget
    assert all(len(k) >= 1 for k in result.keep_heads + result.keep_neurons)
    # Smallest fraction: one more unit kept would break the budget, so the cut is not wasteful.
    assert result.size_bytes > budget - 4 * (4 * model.dim * model.config["head_dim"] + 3 * model.config["head_dim"])


def test_taylor_scores_rank_a_dead_head_last_and_pruning_removes_it_first(fashion):
    torch.manual_seed(0)
    model = create_model("vit_tiny_28", dim=32, depth=2, n_heads=4, mlp_hidden=32, patch_size=7)
    with torch.no_grad():  # head 2 of block 0 writes nothing: its out-projection columns are zero
        hd = model.config["head_dim"]
        model.blocks[0].attn.proj.weight[:, 2 * hd : 3 * hd] = 0
    x, y = fashion[0]
    taylor_heads, _ = compute_scores("taylor", model, [(x[:64], y[:64])])
    assert taylor_heads[0][2] == 0.0 and (np.delete(taylor_heads[0], 2) > 0).all()
    head_bytes = 4 * (4 * model.dim * hd + 3 * hd)  # one head's weights: Q/K/V rows + biases, proj columns
    pruned, result = prune_to_budget(model, model.size_bytes() - head_bytes, "taylor", [(x[:64], y[:64])])
    assert result.keep_heads == [[0, 1, 3], [0, 1, 2, 3]]
    assert pruned.size_bytes() <= model.size_bytes() - head_bytes


def test_a_budget_below_the_smallest_submodel_is_a_clear_error():
    model = create_model("vit_tiny_28")
    with pytest.raises(ConfigError, match=r"memory budget must fit the smallest prunable sub-model .* got 0.010 MB"):
        plan_pruning(model, compute_scores("magnitude", model), 0.01 * 2**20)


# --- assignment -----------------------------------------------------------------------------
def _instance(rng: np.random.Generator) -> tuple[list[Job], list[Machine]]:
    n_dev = int(rng.integers(2, 6))
    n_job = int(rng.integers(n_dev, 2 * n_dev + 1))
    jobs = [Job(f"s{i}", float(rng.uniform(0.5, 3)), float(rng.uniform(0.1, 5)), float(rng.uniform(0, 1))) for i in range(n_job)]
    total = sum(j.size_mb for j in jobs)
    machines = [Machine(f"d{i}", float(rng.uniform(0.6, 1.6)) * total / n_dev + 3, float(rng.uniform(1, 20)), float(rng.uniform(10, 1000)))
                for i in range(n_dev)]
    return jobs, machines


def test_assignment_respects_budgets_and_is_never_worse_than_round_robin():
    rng = np.random.default_rng(2024)
    compared = 0
    for _ in range(300):
        jobs, machines = _instance(rng)
        placement = assign(jobs, machines)
        assert feasible(jobs, machines, placement)
        rr = round_robin(jobs, machines)
        if feasible(jobs, machines, rr):
            compared += 1
            assert makespan(jobs, machines, placement) <= makespan(jobs, machines, rr) + 1e-12
    assert compared > 100  # the comparison really ran on many instances


def test_greedy_puts_the_largest_first_on_the_device_that_finishes_it_soonest():
    jobs = [Job("small", 1, 1.0), Job("big", 1, 8.0), Job("mid", 1, 4.0)]
    machines = [Machine("slow", 10, 1.0), Machine("fast", 10, 4.0)]
    # big → fast (2 s vs 8 s); mid → fast (2+1=3 s vs 4 s); small → slow (1 s vs 3.25 s)
    assert greedy_assign(jobs, machines) == [0, 1, 1]
    tight = [Machine("slow", 10, 1.0), Machine("fast", 1.5, 4.0)]  # fast holds only one sub-model
    placement = greedy_assign(jobs, tight)
    assert feasible(jobs, tight, placement) and placement[1] == 1


def test_infeasible_budgets_are_a_clear_error():
    with pytest.raises(ConfigError, match=r"sub-models must fit the devices' memory budgets; got sub-models \[a 5.000 MB\]"):
        assign([Job("a", 5.0, 1.0)], [Machine("d", 1.0, 1.0)])


# --- fusion and distillation ---------------------------------------------------------------
def test_submodel_drop_never_removes_every_submodel_and_is_off_in_eval():
    drop = SubmodelDrop(0.9).train()
    torch.manual_seed(0)
    x = torch.ones(500, 3, 5)
    kept = drop(x)[..., -1]  # presence flags after the drop
    assert (kept.sum(1) >= 1).all() and (kept == 0).any()
    assert torch.equal(drop.eval()(x), x)


def test_fusion_input_marks_missing_submodels_with_zero_rows():
    a, b = np.ones((2, 4), np.float32), np.full((2, 4), 2.0, np.float32)
    x = fusion_input([a, None, b])
    assert x.shape == (2, 3, 5)
    assert torch.equal(x[:, 1], torch.zeros(2, 5)) and torch.equal(x[:, 0, -1], torch.ones(2))
    with pytest.raises(DataError, match=r"fusion input must have shape \(B, 3, 5\)"):
        FusionMLP(3, 4, 10)(torch.zeros(2, 3, 4))


def test_distillation_term_needs_a_teacher_and_vanishes_when_student_equals_teacher():
    logits = torch.randn(4, 5)
    assert float(distillation_loss(logits, logits, 2.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(logits, -logits, 2.0)) > 0
    with pytest.raises(ConfigError, match="distill_alpha must be 0 when no teacher is given; got 0.5"):
        fit(torch.nn.Linear(3, 2), (torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)), None,
            TrainConfig(epochs=1, distill_alpha=0.5, progress=False))


# --- plan files and the in-process runtime ---------------------------------------------------
def test_plan_fits_budgets_and_round_trips_through_yaml_and_json(tiny_plan, tmp_path):
    sizes = tiny_plan.per_device_size_mb()
    for dev in tiny_plan.devices:
        assert sizes[dev.name] <= dev.memory_budget_mb
        assert sizes[dev.name] <= tiny_plan.dense_size_mb / len(tiny_plan.devices)
    assert sorted(c for s in tiny_plan.submodels for c in s.classes) == list(range(10))
    for suffix in (".yaml", ".json"):
        path = tiny_plan.save(tmp_path / f"copy{suffix}")
        again = load_plan(path)
        assert again == tiny_plan
        assert again.to_dict() == tiny_plan.to_dict()
    data = json.loads((tmp_path / "copy.json").read_text())
    data["submodels"][0]["clases"] = data["submodels"][0].pop("classes")
    with pytest.raises(ConfigError, match="unknown key 'clases'.*Did you mean 'classes'"):
        plan_from_dict(data)


def test_in_process_runtime_fuses_and_masks_a_missing_device(tiny_plan, fashion, dense):
    x, y = fashion[2]
    frames = x.numpy()
    with SplitRuntime(tiny_plan, InProcessBackend(tiny_plan)) as rt:
        full = rt.predict(frames)
        # The same logits straight from the sub-models and the fusion (no backend in between).
        feats = [m.forward_features(x).detach().numpy() for m in rt.backend.models]
        np.testing.assert_allclose(full.logits, rt.fuse(feats), rtol=1e-6, atol=1e-6)
        masked = rt.fuse([feats[0], None])
    assert full.present.all() and full.logits.shape == (len(x), 10)
    missing = tiny_plan.submodels[1].device
    with SplitRuntime(tiny_plan, InProcessBackend(tiny_plan, disabled=[missing])) as rt:
        part = rt.predict(frames)
    assert list(part.present) == [True, False] and part.status[missing].state == "down"
    np.testing.assert_allclose(part.logits, masked, rtol=1e-6, atol=1e-6)
    with pytest.raises(DataError, match=r"frames must have shape \(B, 1, 28, 28\)"):
        with SplitRuntime(tiny_plan, InProcessBackend(tiny_plan)) as rt:
            rt.predict(np.zeros((1, 28, 28)))


def test_plan_devices_come_from_profiles_with_name_prefixes():
    from edgestream.split.plan import device_specs

    specs = device_specs(["edge-small", "edge-small", "cam=rpi5"])
    assert [s.name for s in specs] == ["edge-small", "edge-small-2", "cam"]
    assert specs[2].memory_budget_mb == 512 and specs[0].network_mbps == 100
    assert dataclasses.replace(specs[0]).resource == "edgestream_device_edge_small"
