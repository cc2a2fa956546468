"""Test configuration: liblsl stays on this machine, Qt runs offscreen, seeds are fixed."""

from __future__ import annotations

import os
import uuid

# Before anything imports pylsl: liblsl reads its config once, at first use.
from edgestream.core.lslconf import loopback_config_path

os.environ["LSLAPICFG"] = str(loopback_config_path())
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from edgestream.core.paths import data_dir  # noqa: E402

try:  # one intra-op thread: CI has 2 cores and several test processes (simulators, players) share them
    import torch  # noqa: E402

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a hard dependency
    pass


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def uid(request) -> str:
    """A unique LSL source_id / stream-name suffix for this test."""
    return f"es-test-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def shared_data():
    return data_dir()
