"""ED-ViT on a real local multi-node Ray cluster (one node per device, token auth, loopback only)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from edgestream.core.errors import ConfigError
from edgestream.split.cluster import LocalCluster, require_token_auth
from edgestream.split.runtime import InProcessBackend, SplitRuntime

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def cluster(tiny_plan):
    lc = LocalCluster([d.name for d in tiny_plan.devices])
    try:
        yield lc.start()
    finally:
        lc.stop()  # also restores this process's RAY_AUTH_* / loopback settings
    assert "RAY_AUTH_TOKEN" not in os.environ or os.environ["RAY_AUTH_TOKEN"] != lc.token


@pytest.fixture(scope="module")
def reference(tiny_plan, fashion):
    frames = fashion[2][0].numpy()[:16]
    with SplitRuntime(tiny_plan, InProcessBackend(tiny_plan)) as rt:
        full = rt.predict(frames).logits
        missing = {}
        for dev in tiny_plan.devices:
            rt.backend.disabled = {dev.name}
            missing[dev.name] = rt.predict(frames).logits
    return frames, full, missing


def test_distributed_prediction_equals_in_process(cluster, tiny_plan, reference):
    from edgestream.split.ray_backend import RayBackend

    frames, full, _ = reference
    with SplitRuntime(tiny_plan, RayBackend(tiny_plan, deadline_s=20.0)) as rt:
        got = rt.predict(frames)
        n_actors = len(rt.backend.actors)
    assert got.present.all()
    assert all(s.state == "ok" for s in got.status.values())
    np.testing.assert_allclose(got.logits, full, rtol=1e-5, atol=1e-5)
    assert n_actors == len(tiny_plan.devices)


def test_a_device_dropping_out_is_masked_and_rejoins_after_restart(cluster, tiny_plan, reference):
    from edgestream.split.ray_backend import RayBackend

    frames, full, missing = reference
    victim = tiny_plan.devices[1].name
    with SplitRuntime(tiny_plan, RayBackend(tiny_plan, deadline_s=1.0, startup_timeout_s=60)) as rt:
        before = rt.predict(frames)
        assert before.present.all()
        cluster.remove_device(victim)  # the box loses power mid-stream
        degraded = []
        for _ in range(6):  # predictions keep coming, one per deadline at worst, with the sub-model masked
            got = rt.predict(frames)
            assert not got.present[1] and got.present[0]
            assert got.status[victim].state in ("late", "down", "waiting")
            np.testing.assert_allclose(got.logits, missing[victim], rtol=1e-5, atol=1e-5)
            degraded.append(got.status[victim].state)
        assert "down" in degraded or "late" in degraded
        cluster.add_device(victim)  # the box comes back; Ray restarts the actor there
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            got = rt.predict(frames)
            if got.present.all():
                break
            assert got.present[0]
        assert got.present.all(), f"device {victim} did not rejoin: {got.status[victim]}"
        np.testing.assert_allclose(got.logits, full, rtol=1e-5, atol=1e-5)
        assert got.status[victim].restarts == 1 and got.status[victim].frames_missed >= 6


def _client(address: str, env_changes: dict[str, str | None]) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    code = f"import ray; ray.init(address={address!r}, log_to_driver=False); print('CONNECTED', flush=True)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_a_client_without_the_cluster_token_is_refused(cluster):
    no_token = _client(cluster.address, {"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": None, "RAY_AUTH_TOKEN_PATH": None})
    assert no_token.returncode != 0 and "CONNECTED" not in no_token.stdout
    assert "Authentication token is missing or incorrect" in no_token.stderr
    wrong = _client(cluster.address, {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-cluster-token"})
    assert wrong.returncode != 0 and "CONNECTED" not in wrong.stdout
    assert "Authentication token is missing or incorrect" in wrong.stderr
    # The positive control is this test process itself: it is connected with RAY_AUTH_MODE=token and the token.
    import ray

    assert ray.is_initialized() and ray.cluster_resources().get("CPU", 0) >= 1


def test_the_ray_backend_refuses_to_run_without_token_auth(monkeypatch, tmp_path):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    with pytest.raises(ConfigError, match=r"RAY_AUTH_MODE must be 'token' .* got '\(unset\)'"):
        require_token_auth()
    env = {"RAY_AUTH_MODE": "token", "HOME": str(tmp_path)}
    with pytest.raises(ConfigError, match="Ray token authentication must have a token; got none"):
        require_token_auth(env)
    require_token_auth(env | {"RAY_AUTH_TOKEN": "abc"})
