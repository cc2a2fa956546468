"""Step 3 of ED-ViT: assign sub-models to devices under memory budgets, minimising the makespan.

A device runs its sub-models one after the other for each frame, so its time is the sum of
``compute (GFLOP / GFLOP/s) + transfer (bytes / link rate)`` of what it holds; the frame's
latency is the largest device time (the makespan) plus the fusion.

:func:`greedy_assign` is ED-ViT's rule — largest sub-model first, to the device that would
finish it soonest among those with memory left — followed by a local search (move one
sub-model, or swap two) that only accepts changes lowering the makespan. :func:`assign` also
evaluates the round-robin assignment and any ``candidates`` given, and returns the best
feasible one; it is never worse than round-robin when round-robin fits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from edgestream.core.errors import ConfigError

Assignment = list[int]  # device index of each sub-model


@dataclasses.dataclass(frozen=True)
class Job:
    """One sub-model as the assignment sees it."""

    name: str  # sub-model name
    size_mb: float  # parameter memory
    gflop: float  # work per frame (GFLOP)
    transfer_mb: float = 0.0  # bytes moved per frame (input frame + returned feature), MB


@dataclasses.dataclass(frozen=True)
class Machine:
    """One device as the assignment sees it."""

    name: str  # device instance name
    memory_mb: float  # memory budget for models
    gflops: float  # sustained GFLOP/s
    network_mbps: float = 1000.0  # link rate to the coordinating host, Mbit/s


def job_seconds(job: Job, machine: Machine) -> float:
    """Compute plus transfer time of one sub-model on one device, per frame."""
    return job.gflop / machine.gflops + job.transfer_mb * 8.0 / machine.network_mbps


def device_times(jobs: Sequence[Job], machines: Sequence[Machine], assignment: Assignment) -> list[float]:
    times = [0.0] * len(machines)
    for j, d in enumerate(assignment):
        times[d] += job_seconds(jobs[j], machines[d])
    return times


def makespan(jobs: Sequence[Job], machines: Sequence[Machine], assignment: Assignment) -> float:
    """Largest per-device time (seconds per frame) of an assignment."""
    return max(device_times(jobs, machines, assignment), default=0.0)


def feasible(jobs: Sequence[Job], machines: Sequence[Machine], assignment: Assignment) -> bool:
    """True when every device's sub-models fit its memory budget."""
    used = [0.0] * len(machines)
    for j, d in enumerate(assignment):
        used[d] += jobs[j].size_mb
    return all(u <= m.memory_mb + 1e-9 for u, m in zip(used, machines))


def round_robin(jobs: Sequence[Job], machines: Sequence[Machine]) -> Assignment:
    """Sub-model ``i`` to device ``i mod N`` (the baseline; ignores memory)."""
    return [i % len(machines) for i in range(len(jobs))]


def _improve(jobs: Sequence[Job], machines: Sequence[Machine], assignment: Assignment) -> Assignment:
    """Moves and swaps that lower the makespan while staying within memory (first improvement)."""
    current = list(assignment)
    best = makespan(jobs, machines, current)
    improved = True
    while improved:
        improved = False
        n_jobs, n_dev = len(jobs), len(machines)
        trials = [(j, d) for j in range(n_jobs) for d in range(n_dev) if d != current[j]]
        trials += [(-1 - a, b) for a in range(n_jobs) for b in range(a + 1, n_jobs) if current[a] != current[b]]
        for x, y in trials:
            trial = list(current)
            if x >= 0:
                trial[x] = y
            else:
                a = -1 - x
                trial[a], trial[y] = trial[y], trial[a]
            if feasible(jobs, machines, trial):
                span = makespan(jobs, machines, trial)
                if span < best - 1e-12:
                    current, best, improved = trial, span, True
                    break
    return current


def greedy_assign(jobs: Sequence[Job], machines: Sequence[Machine]) -> Assignment | None:
    """Largest first, each to the device finishing it soonest among those with memory left.

    Returns ``None`` when some sub-model fits no device's remaining memory.
    """
    order = sorted(range(len(jobs)), key=lambda j: (-jobs[j].gflop, -jobs[j].size_mb, j))
    free = [m.memory_mb for m in machines]
    load = [0.0] * len(machines)
    assignment = [-1] * len(jobs)
    for j in order:
        options = [d for d in range(len(machines)) if free[d] + 1e-9 >= jobs[j].size_mb]
        if not options:
            return None
        d = min(options, key=lambda d: (load[d] + job_seconds(jobs[j], machines[d]), d))
        assignment[j] = d
        free[d] -= jobs[j].size_mb
        load[d] += job_seconds(jobs[j], machines[d])
    return _improve(jobs, machines, assignment)


def assign(
    jobs: Sequence[Job], machines: Sequence[Machine], candidates: Sequence[Assignment] = ()
) -> Assignment:
    """Best feasible assignment among greedy + local search, round-robin and ``candidates``.

    Raises :class:`ConfigError` when none fits the memory budgets.
    """
    if not machines:
        raise ConfigError("devices must list at least one device; got none. Pass --device NAME (repeatable).")
    options = []
    greedy = greedy_assign(jobs, machines)
    if greedy is not None:
        options.append(greedy)
    for cand in [round_robin(jobs, machines), *candidates]:
        if feasible(jobs, machines, cand):
            options.append(_improve(jobs, machines, list(cand)))
    if not options:
        need = ", ".join(f"{j.name} {j.size_mb:.3f} MB" for j in jobs)
        have = ", ".join(f"{m.name} {m.memory_mb:.3f} MB" for m in machines)
        raise ConfigError(
            f"sub-models must fit the devices' memory budgets; got sub-models [{need}] for devices [{have}]. "
            "Add devices, raise memory_budget_mb, or plan smaller sub-models."
        )
    return min(options, key=lambda a: (makespan(jobs, machines, a), a))
