"""`edgestream doctor` against a lock: drifted and missing packages, --json, --strict, no lock shipped."""

from __future__ import annotations

import json
from importlib import metadata

import pytest
from click.testing import CliRunner

from edgestream.cli.main import cli


@pytest.fixture
def drifted_lock(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"# a lock this environment does not match\nnumpy==0.0.1\nclick=={metadata.version('click')}\n"
                    "edgestream-no-such-package==1.0\n")
    return lock


def invoke(*args, env=None):
    return CliRunner().invoke(cli, ["doctor", *args], env=env, catch_exceptions=False)


def test_doctor_shows_a_drifted_and_a_missing_package_with_the_fix(drifted_lock):
    r = invoke("--lock", str(drifted_lock))
    assert r.exit_code == 0, r.output
    assert f"lock {drifted_lock}: 3 packages, 1 differ, 1 missing" in r.output
    assert f"DIFFERS  numpy                   locked 0.0.1               installed {metadata.version('numpy')}" in r.output
    assert "MISSING  edgestream-no-such-package" in r.output
    assert f"pip install -c {drifted_lock} 'numpy==0.0.1' 'edgestream-no-such-package==1.0'" in r.output


def test_doctor_json_and_strict_report_drift_from_the_env_var_lock(drifted_lock):
    r = invoke("--json", "--strict", env={"EDGESTREAM_LOCK": str(drifted_lock)})
    assert r.exit_code == 1
    lock = json.loads(r.stdout)["lock"]
    assert lock["path"] == str(drifted_lock) and lock["locked"] == 3 and lock["drift"]
    assert lock["differ"] == [{"package": "numpy", "locked": "0.0.1", "installed": metadata.version("numpy")}]
    assert lock["missing"] == [{"package": "edgestream-no-such-package", "locked": "1.0"}]
    assert "error: this environment does not match the lock (doctor --strict); fix:" in r.stderr


def test_doctor_strict_passes_on_a_matching_lock_and_lists_shipped_data(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"numpy=={metadata.version('numpy')}\ntorch=={metadata.version('torch')}\n")
    report = json.loads(invoke("--json", "--strict", "--lock", str(lock)).output)
    assert report["lock"] == {"path": str(lock), "locked": 2, "differ": [], "missing": [], "drift": False, "fix": ""}
    assert {"cpu", "jetson", "rpi5"} <= set(report["profiles"]) and "eeg_bandpower" in report["pipelines"]


def test_doctor_says_when_no_lock_is_shipped(monkeypatch):
    import edgestream.core.lock as lock

    monkeypatch.setattr(lock, "find_lock", lambda explicit=None: None)
    r = invoke()
    assert r.exit_code == 0 and "lock: no lock shipped" in r.output
    assert invoke("--strict").exit_code == 1


def test_doctor_rejects_a_lock_path_that_does_not_exist(tmp_path):
    r = invoke("--lock", str(tmp_path / "nope.lock"))
    assert r.exit_code == 2 and "lock must be an existing file" in r.output
