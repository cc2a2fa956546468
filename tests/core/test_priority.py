"""Process CPU priority: every thread, those running and those started later; refusal is said, not hidden."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from edgestream.core.errors import ConfigError
from edgestream.core.priority import set_priority

pytestmark = pytest.mark.timeout(60)

# Runs in a child process: a real process's threads get the policy, and this test process keeps its own.
CHILD = """
import json, logging, os, sys, threading
from edgestream.core.priority import set_priority, thread_policies
logging.basicConfig(level=logging.WARNING, format="%(message)s")
stop = threading.Event()
before = threading.Thread(target=stop.wait, daemon=True)
before.start()
if len(sys.argv) > 2:
    os.setuid(int(sys.argv[2]))  # an unprivileged user
applied = set_priority(sys.argv[1])
after = threading.Thread(target=stop.wait, daemon=True)
after.start()
tids = sorted(int(t) for t in os.listdir("/proc/self/task"))
print(json.dumps({"applied": applied, "policies": thread_policies(),
                  "nice": [os.getpriority(os.PRIO_PROCESS, t) for t in tids]}))
stop.set()
"""


def child(*args: str) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="raising priority and dropping to another user need root")


@needs_root
def test_realtime_reaches_threads_started_before_and_after():
    got, _ = child("realtime")
    assert got["applied"] == "realtime (SCHED_FIFO 10)"
    assert len(got["policies"]) >= 3 and set(got["policies"]) == {"fifo"}, got


@needs_root
def test_high_is_nice_minus_10_on_every_thread():
    got, _ = child("high")
    assert got["applied"] == "high (nice -10)"
    assert len(got["nice"]) >= 3 and set(got["nice"]) == {-10} and set(got["policies"]) == {"other"}, got


def test_idle_and_normal():
    got, _ = child("idle")
    assert got["applied"] == "idle" and set(got["policies"]) == {"idle"}, got
    got, _ = child("normal")
    assert got["applied"] == "normal" and set(got["policies"]) == {"other"}, got


@needs_root
def test_refused_realtime_runs_on_at_normal_and_says_how_to_allow_it():
    got, err = child("realtime", "65534")  # nobody: no CAP_SYS_NICE, rtprio limit 0
    assert got["applied"].startswith("normal (realtime refused:"), got
    assert set(got["policies"]) == {"other"}
    assert "could not raise the CPU priority to realtime" in err and "CAP_SYS_NICE" in err and "rtprio" in err


def test_unknown_level_names_the_choices():
    with pytest.raises(ConfigError, match=r"--priority must be one of idle, normal, high, realtime; got 'fast'"):
        set_priority("fast")


def test_simulator_cli_applies_the_priority(uid):
    """`edgestream simulate eeg --priority realtime` says what it runs at before publishing."""
    proc = subprocess.run([sys.executable, "-m", "edgestream", "simulate", "eeg", "--channels", "4", "--sfreq", "250",
                           "--name", uid, "--source-id", uid, "--duration", "0.5", "--priority", "realtime"],
                          capture_output=True, text=True, timeout=40)
    assert proc.returncode == 0, proc.stderr
    want = "realtime (SCHED_FIFO 10)" if os.geteuid() == 0 else "normal (realtime refused"
    assert f"CPU priority: {want}" in proc.stderr and "samples" in proc.stderr, proc.stderr
    bad = subprocess.run([sys.executable, "-m", "edgestream", "simulate", "eeg", "--priority", "urgent"],
                         capture_output=True, text=True, timeout=40)
    assert bad.returncode == 2 and "'urgent' is not one of 'normal', 'high', 'realtime'" in bad.stderr, bad.stderr
