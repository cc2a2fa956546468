"""CPU scheduling priority of a whole process: the threads it runs now and every thread they start.

Levels, lowest first:

* ``"idle"`` — Linux ``SCHED_IDLE`` (elsewhere ``nice 19``): runs only on CPU time nothing else
  wants. The dashboard's default. ``SCHED_IDLE`` ranks threads within one scheduling group: a
  process started from another terminal session (its own autogroup) or in its own cgroup
  competes with the others' group as an equal (README: ``systemd-run ... -p CPUWeight=idle``).
* ``"normal"`` — leave the process as it was started.
* ``"high"`` — ``nice -10``: a larger CPU share, still time-shared with everything else.
* ``"realtime"`` — ``SCHED_FIFO`` at priority :data:`REALTIME_PRIORITY`: a waking thread takes a
  CPU from any normal, niced or idle thread at once. For the data path of a live session
  (source, pipeline) on a machine that also runs other work, e.g. a dashboard: on a 2-core
  machine even an idle-priority dashboard raises a normal-priority pipeline's p99 latency, a
  real-time one's not (``benchmarks/dashboard.py``, README). The kernel still keeps 5 % of each second
  for other threads (``/proc/sys/kernel/sched_rt_runtime_us``), but a pipeline whose model keeps
  every core busy would leave the rest of the machine that little: use it for pipelines that
  keep up with their input.

Raising priority needs privilege (root, ``CAP_SYS_NICE``, or an ``rtprio``/``nice`` limit in
``/etc/security/limits.d``). When it is refused the process runs on at the level it had, and
:func:`set_priority` says so in what it returns and in a logged warning with the fix.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from edgestream.core.errors import ConfigError

log = logging.getLogger(__name__)

LEVELS = ("idle", "normal", "high", "realtime")
REALTIME_PRIORITY = 10  # SCHED_FIFO 1–99: above every time-shared thread, below the kernel's interrupt threads (50)
HIGH_NICE = -10
PRIVILEGE_FIX = ("run as root, give the interpreter CAP_SYS_NICE (sudo setcap cap_sys_nice+ep $(readlink -f "
                 "$(which python))), or allow it in /etc/security/limits.d (e.g. '@audio - rtprio 20' and "
                 "'@audio - nice -10' for a group you are in)")


def _threads() -> list[int]:
    """Thread ids of this process (Linux); ``[0]`` (the calling thread) elsewhere."""
    try:
        return sorted(int(t) for t in os.listdir("/proc/self/task"))
    except OSError:
        return [0]


def check_level(level: str, arg: str = "--priority", allowed: tuple[str, ...] = LEVELS) -> str:
    if level not in allowed:
        raise ConfigError(f"{arg} must be one of {', '.join(allowed)}; got {level!r}. Use normal unless the "
                          "machine runs other work beside this process.")
    return level


def _each_thread(apply: Callable[[int], None]) -> None:
    for tid in _threads():
        try:
            apply(tid)
        except ProcessLookupError:  # the thread ended meanwhile
            continue


def set_priority(level: str) -> str:
    """Run this process's threads, and every thread they start later, at ``level`` (see :data:`LEVELS`).

    Call it first thing: threads inherit their creator's policy, so threads started afterwards
    (liblsl's, the pipeline's) get it too; threads that exist already are changed one by one.

    Returns what was applied: ``"idle"``, ``"nice 19"``, ``"normal"``, ``"high (nice -10)"``,
    ``"realtime (SCHED_FIFO 10)"``, or ``"normal (realtime refused: …)"`` when the system does
    not allow it.
    """
    check_level(level)
    if level == "normal":
        return "normal"
    if level == "idle":
        return _set_idle()
    if level == "realtime":
        if not hasattr(os, "SCHED_FIFO"):
            return _refused(level, "this system has no SCHED_FIFO")
        try:
            _each_thread(lambda tid: os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY)))
            return f"realtime (SCHED_FIFO {REALTIME_PRIORITY})"
        except OSError as exc:
            return _refused(level, str(exc))
    try:  # high
        _each_thread(lambda tid: os.setpriority(os.PRIO_PROCESS, tid, HIGH_NICE))
        return f"high (nice {HIGH_NICE})"
    except (AttributeError, OSError) as exc:
        return _refused(level, str(exc))


def _refused(level: str, why: str) -> str:
    log.warning("could not raise the CPU priority to %s (%s); running at normal priority. To allow it, %s.",
                level, why, PRIVILEGE_FIX)
    return f"normal ({level} refused: {why})"


def _set_idle() -> str:
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            _each_thread(lambda tid: os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0)))
            return "idle"
        except OSError as exc:  # e.g. a sandbox that forbids it: fall back to nice
            log.info("could not set SCHED_IDLE (%s); using nice 19", exc)
    try:
        os.nice(19)
        return "nice 19"
    except (AttributeError, OSError) as exc:
        log.warning("could not lower the CPU priority (%s); running at normal priority", exc)
        return "normal"


def thread_policies() -> list[str]:
    """Scheduling policy of each thread of this process (Linux; empty elsewhere)."""
    if not hasattr(os, "sched_getscheduler"):
        return []
    names = {getattr(os, n): n[6:].lower() for n in ("SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE", "SCHED_FIFO", "SCHED_RR")
             if hasattr(os, n)}
    out = []
    for tid in _threads():
        try:
            out.append(names.get(os.sched_getscheduler(tid), "other"))
        except OSError:
            continue
    return out
