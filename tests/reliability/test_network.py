"""Network faults between two processes: the producer runs in its own network namespace behind a
veth link; the pipeline (`edgestream run`, what a user runs) reads it across that link while the
link is throttled (tc tbf: queueing delay, then drops that TCP retransmits) and then taken down
and up again.

Needs root and iproute2 (`ip netns`, `tc`); the test skips with the reason otherwise. This
kernel has no `netem` qdisc, so random per-packet delay/loss is not emulated: the rate limiter
and the link flap are the impairments (both end in late data and, for the pipeline, counted
overflow or reconnect loss).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgestream.core.clock import local_clock

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
FS = 250


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


class Namespace:
    """A network namespace joined to this one by a veth pair: 10.231.N.1 here, 10.231.N.2 inside."""

    def __init__(self) -> None:
        n = os.getpid() % 250 + 1
        self.name, self.host_if, self.ns_if = f"es-rel-{os.getpid()}", f"esh{n}", f"esn{n}"
        self.host_ip, self.ns_ip = f"10.231.{n}.1", f"10.231.{n}.2"
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _ip("link", "set", self.ns_if, "netns", self.name)
            _ip("addr", "add", f"{self.host_ip}/24", "dev", self.host_if)
            _ip("link", "set", self.host_if, "up")
            self.exec("ip", "addr", "add", f"{self.ns_ip}/24", "dev", self.ns_if)
            self.exec("ip", "link", "set", self.ns_if, "up")
            self.exec("ip", "link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise

    def exec(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name, *cmd], capture_output=True, text=True, check=True,
                              timeout=20)

    def delete(self) -> None:
        _ip("link", "del", self.host_if, check=False)
        _ip("netns", "del", self.name, check=False)


def _namespace_or_skip() -> Namespace:
    if os.geteuid() != 0:
        pytest.skip(f"network namespaces need root (running as uid {os.geteuid()}); the network fault case did not run")
    if not (shutil.which("ip") and shutil.which("tc")):
        pytest.skip("network namespaces need iproute2 (`ip`, `tc`), which is not installed; the network fault case did not run")
    try:
        return Namespace()
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace here ({exc.stderr.strip() or exc}); the network fault case did not run")


def _lsl_config(path: Path, peer: str, local: bool) -> Path:
    scope = "[multicast]\nResolveScope = machine\n" if local else ""
    peers = f"{peer}, 127.0.0.1" if local else peer
    path.write_text(f"[ports]\nIPv6 = disable\n{scope}[lab]\nKnownPeers = {{{peers}}}\n[log]\nlevel = -2\n")
    return path


PIPELINE = """pipeline: netfault
sources:
  eeg: {{kind: lsl, source_id: "{uid}", timeout: 30.0}}
stages:
  pick: {{kind: pick, types: [eeg]}}
  bandpass: {{kind: bandpass, l_freq: 1.0, h_freq: 40.0, order: 4}}
sinks:
  passthrough: {{kind: lsl_outlet, input: eeg, source_id: "{uid}-through"}}
  filtered: {{kind: lsl_outlet, input: bandpass, source_id: "{uid}-filtered"}}
"""


def test_network_delay_loss_and_link_flap(uid, tmp_path, case, raw_inlet):
    """What the user sees: `edgestream run` keeps running; its summary shows the source stalled
    (throttled link), then lost while the link is down for 4 s, found again across the link and
    reconnected; the samples that arrived too late or never are counted by cause (overflow,
    reconnect_gap); every producer counter value is delivered or counted; output resumes."""
    ns = _namespace_or_skip()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    producer = consumer = None
    try:
        cfg_in = _lsl_config(tmp_path / "producer.cfg", ns.host_ip, local=False)
        cfg_out = _lsl_config(tmp_path / "consumer.cfg", ns.ns_ip, local=True)
        producer = subprocess.Popen(
            ["ip", "netns", "exec", ns.name, "env", f"LSLAPICFG={cfg_in}", sys.executable, "-m", "edgestream", "simulate",
             "eeg", "--channels", "4", "--sfreq", str(FS), "--chunk", "5", "--counter", "--no-markers", "--duration", "120",
             "--name", uid, "--source-id", uid], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        pipe = tmp_path / "net.yaml"
        pipe.write_text(PIPELINE.format(uid=uid))
        summary_file = tmp_path / "summary.json"
        consumer = subprocess.Popen(
            [sys.executable, "-m", "edgestream", "run", str(pipe), "--duration", "120", "--no-monitor", "--summary-json",
             str(summary_file)], env=env | {"LSLAPICFG": str(cfg_out)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        through = raw_inlet(f"{uid}-through", 60.0)
        filtered = raw_inlet(f"{uid}-filtered", 60.0)
        received: list[tuple[np.ndarray, np.ndarray, float]] = []

        def pull(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                d, t = through.pull_chunk(0.1, 10_000, None, None, True)
                if len(t):
                    received.append((np.asarray(d), np.asarray(t), local_clock()))

        pull(3.0)
        assert received, "no samples crossed the link before the faults"
        ns.exec("tc", "qdisc", "add", "dev", ns.ns_if, "root", "tbf", "rate", "24kbit", "burst", "2kb", "latency", "400ms")
        pull(3.0)
        ns.exec("tc", "qdisc", "del", "dev", ns.ns_if, "root")
        _ip("link", "set", ns.host_if, "down")
        pull(4.0)  # longer than lost_after (3 s): the source closes its inlet and searches across the link
        _ip("link", "set", ns.host_if, "up")
        up_at = local_clock()
        deadline = time.monotonic() + 40  # TCP retransmission backs off while the link is down
        while time.monotonic() < deadline and sum(int(np.sum(t >= up_at)) for _, t, _ in received) < 2 * FS:
            pull(0.5)
        f_data, f_ts = filtered.pull_chunk(1.0, 100_000, None, None, True)
        consumer.send_signal(signal.SIGTERM)  # like Ctrl-C: the run stops cleanly and prints its summary
        out, err = consumer.communicate(timeout=60)
        assert consumer.returncode == 0, err[-2000:]
        summary = json.loads(summary_file.read_text())
    finally:
        for proc in (consumer, producer):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
        ns.delete()
    src = summary["sources"]["eeg"]
    drops = src["drops"]
    assert not summary["errors"]
    counter = np.concatenate([d[:, -2] for d, _, _ in received]).astype(np.int64)  # the producer's counter
    assert np.all(np.diff(counter) >= 1)  # in order, never repeated
    missing = int(counter[-1] - counter[0] + 1 - len(counter))
    lost = drops["overflow"] + drops["counter_gap"] + drops["reconnect_gap"]
    # every value is delivered or counted (a reconnect gap is estimated from stamps: ±1 per reconnect)
    reconnects = sum("recovering->connected" in e for e in src["events"])
    assert abs(missing - lost) <= reconnects
    stamps = np.concatenate([t for _, t, _ in received])
    arrivals = np.concatenate([np.full(len(t), a) for _, t, a in received])
    after = np.flatnonzero(stamps >= up_at)
    assert len(after) > FS, (src["events"], drops)  # output flows again after the link came back
    assert len(f_ts) > FS  # and the processed output too
    recovery = float(arrivals[after[0]] - up_at)
    states = [e.split(" ")[0] for e in src["events"]]
    # found again through the consumer's KnownPeers (unicast discovery across the link) and reopened
    assert "stalled->lost" in states and "lost->recovering" in states and states[-1] == "recovering->connected"
    case.update(case="network_throttle_and_link_flap", samples_lost=missing, lost_by_cause=drops,
                recovery_s=round(recovery, 3),
                user_sees=f"run summary: overflow {drops['overflow']}, counter_gap {drops['counter_gap']}, reconnect_gap "
                          f"{drops['reconnect_gap']}; state changes {states}",
                details={"impairments": "tbf 24 kbit/s for 3 s (queueing delay up to 400 ms, then drops; TCP "
                                        "retransmits), then link down 4 s; no netem in this kernel",
                         "delivered": int(len(counter)), "events": src["events"],
                         "summary_tail": out.strip().splitlines()[-6:]})
