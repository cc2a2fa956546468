"""Ray cluster plumbing for ED-ViT: token authentication, device nodes, a local test cluster.

Token authentication (Ray ≥ 2.52): every process of the cluster — head, workers, and any driver
such as ``edgestream run`` — runs with ``RAY_AUTH_MODE=token`` and the same shared-secret token,
found in this order: ``RAY_AUTH_TOKEN`` (the token itself), ``RAY_AUTH_TOKEN_PATH`` (a file
holding it), ``~/.ray/auth_token``. A client without it is refused by the cluster's GCS
("InvalidAuthToken: Authentication token is missing or incorrect"). ``ray get-auth-token
--generate`` creates ``~/.ray/auth_token`` on the head; copy that file to every device.

A device joins as a Ray node that advertises one unit of the custom resource
:func:`~edgestream.split.plan.resource_name` (``edgestream_device_<name>``); the sub-model actor
for that device asks for it, so Ray places it there and nowhere else.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgestream.core.errors import ConfigError
from edgestream.split.plan import resource_name

log = logging.getLogger(__name__)

AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def token_available(env: Mapping[str, str] | None = None) -> bool:
    """True when a Ray token is reachable the way Ray looks for one (env, env path, default file)."""
    env = os.environ if env is None else env
    if env.get("RAY_AUTH_TOKEN"):
        return True
    path = env.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return Path(path).expanduser().is_file() and bool(Path(path).expanduser().read_text().strip())
    default = Path(env.get("HOME", str(Path.home()))) / ".ray" / "auth_token"
    return default.is_file() and bool(default.read_text().strip())


def require_token_auth(env: Mapping[str, str] | None = None) -> None:
    """Raise :class:`ConfigError` unless token authentication is on and a token is reachable."""
    env = os.environ if env is None else env
    mode = env.get("RAY_AUTH_MODE", "")
    if mode.lower() != "token":
        raise ConfigError(
            f"RAY_AUTH_MODE must be 'token' so the cluster refuses clients without the token; got {mode or '(unset)'!r}. "
            "Run `export RAY_AUTH_MODE=token` on the head, every device and the coordinating host."
        )
    if not token_available(env):
        raise ConfigError(
            "Ray token authentication must have a token; got none in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token. "
            "On the head run `ray get-auth-token --generate`, then copy ~/.ray/auth_token to each device "
            "(or point RAY_AUTH_TOKEN_PATH at a copy)."
        )


def use_token(token: str) -> None:
    """Turn token authentication on for this process (and the processes it starts) with ``token``."""
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = token
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    _refresh_ray_auth()


def _refresh_ray_auth() -> None:
    # Ray caches its configuration and the token per process; if ray was imported before the
    # environment changed (e.g. by another test), both must be reloaded to see the new mode.
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:  # ray not installed: the caller fails later with a clear error
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _loopback_only(enabled: bool = True) -> None:
    # Ray replaces 127.0.0.1 by the host's LAN address when it canonicalises a cluster address
    # (so that remote nodes could reach it). A single-machine cluster for tests must stay on
    # loopback; Ray's own switch for that is RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which it reads
    # at import — so the already-imported constant is updated too (and restored afterwards).
    import ray._private.ray_constants as constants

    if enabled:
        os.environ[LOOPBACK_ENV] = "0"
    constants.ENABLE_RAY_CLUSTER = not enabled


class LocalCluster:
    """A multi-node Ray cluster on this machine, one node per device, token auth on, loopback only.

    For tests and benchmarks (``ray.cluster_utils.Cluster`` underneath): the head has no CPUs
    (nothing runs there but the GCS); each device node gets ``cpus_per_node`` CPUs and its
    device resource. The driver (this process) is connected on :meth:`start`.
    """

    def __init__(self, devices: Sequence[str], *, cpus_per_node: int = 1, token: str | None = None,
                 object_store_mb: int = 80, system_config: dict[str, Any] | None = None) -> None:
        self.devices = list(devices)
        self.cpus_per_node = cpus_per_node
        self.token = token or secrets.token_hex(24)
        self.object_store_mb = object_store_mb
        # Detect dead nodes within ~1.5 s instead of Ray's default tens of seconds.
        self.system_config = {"health_check_period_ms": 500, "health_check_failure_threshold": 3} | dict(system_config or {})
        self.cluster: Any = None
        self.nodes: dict[str, Any] = {}
        self._saved_env: dict[str, str | None] = {}

    @property
    def address(self) -> str:
        return self.cluster.address

    def start(self) -> LocalCluster:
        from ray.cluster_utils import Cluster

        self._saved_env = {k: os.environ.get(k) for k in (*AUTH_ENV, LOOPBACK_ENV)}
        use_token(self.token)
        _loopback_only()
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 0, "include_dashboard": False, "node_ip_address": "127.0.0.1",
                            "object_store_memory": self.object_store_mb * 2**20, "_system_config": self.system_config},
        )
        for name in self.devices:
            self.add_device(name)
        self.connect()
        return self

    def add_device(self, name: str) -> Any:
        """Start (or restart) the node standing for device ``name``."""
        node = self.cluster.add_node(
            num_cpus=self.cpus_per_node, resources={resource_name(name): 1}, node_ip_address="127.0.0.1",
            object_store_memory=self.object_store_mb * 2**20,
        )
        self.nodes[name] = node
        return node

    def remove_device(self, name: str) -> None:
        """Kill the node of device ``name`` (all its processes), as if the box lost power."""
        self.cluster.remove_node(self.nodes.pop(name), allow_graceful=False)

    def connect(self) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)

    def stop(self) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        if self.cluster is not None:
            self.cluster.shutdown()
            self.cluster = None
        if self._saved_env:  # this process's Ray settings back to what they were before start()
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            self._saved_env = {}
            _loopback_only(False)
            _refresh_ray_auth()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_command(
    *, device: str | None, address: str | None, head: bool = False, port: int = 6379, num_cpus: int | None = None,
    node_ip_address: str | None = None, block: bool = True,
) -> list[str]:
    """The ``ray start`` command that joins this machine to the cluster as device ``device`` (or starts the head)."""
    ray_bin = shutil.which("ray") or "ray"
    cmd = [ray_bin, "start"]
    if head:
        cmd += ["--head", f"--port={port}", "--include-dashboard=false"]
        if device is None:
            cmd += ["--num-cpus=0"]  # a pure coordinator: sub-models never land here
    elif not address:
        raise ConfigError("--address must be given to join a cluster; got none. Pass --address HEAD_IP:6379, or --head to start one.")
    else:
        cmd += [f"--address={address}"]
    if device is not None:
        cmd += [f"--resources={json.dumps({resource_name(device): 1})}"]
    if num_cpus is not None:
        cmd += [f"--num-cpus={num_cpus}"]
    if node_ip_address:
        cmd += [f"--node-ip-address={node_ip_address}"]
    if block:
        cmd += ["--block"]
    return cmd
