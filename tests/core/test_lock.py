"""The committed lock: parsing, comparison with an environment, and agreement with this one."""

from __future__ import annotations

import os
from importlib import metadata

import pytest

from edgestream.core.errors import ConfigError
from edgestream.core.lock import compare, find_lock, normalize_name, public_version, read_lock


def test_read_lock_normalises_names_strips_local_labels_and_skips_comments(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# header\n\n--index-url https://example.invalid/simple\nPySide6_Essentials==6.11.3\n"
                    "torch==2.13.0+cpu  # local label dropped\nruamel.yaml == 0.18.6\n"
                    "never-here==1.0 ; python_version < '3'\n")
    assert read_lock(lock) == {"pyside6-essentials": "6.11.3", "torch": "2.13.0", "ruamel-yaml": "0.18.6"}


@pytest.mark.parametrize("line", ["numpy>=1.24", "numpy", "edgestream @ file:///tmp/x"])
def test_read_lock_rejects_anything_but_exact_pins(tmp_path, line):
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"scipy==1.17.1\n{line}\n")
    with pytest.raises(ConfigError, match=rf"each line of the lock must be 'name==version'; got .* at .*requirements.lock:2\. "
                                          r"Regenerate it with: make lock"):
        read_lock(lock)


def test_compare_lists_differing_and_missing_packages_ignoring_labels_and_name_spelling(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("numpy==2.4.6\ntorch==2.13.0\nPySide6-Essentials==6.11.3\nray==2.60.0\n")
    report = compare(lock, {"numpy": "2.4.5", "torch": "2.13.0+cpu", "pyside6_essentials": "6.11.3"})
    assert report.locked == 4 and report.drift
    assert report.differ == [{"package": "numpy", "locked": "2.4.6", "installed": "2.4.5"}]
    assert report.missing == [{"package": "ray", "locked": "2.60.0"}]
    assert f"-c {lock} 'numpy==2.4.6' 'ray==2.60.0'" in report.fix()
    clean = compare(lock, {"numpy": "2.4.6", "torch": "2.13.0", "PySide6_Essentials": "6.11.3", "Ray": "2.60.0"})
    assert not clean.drift and clean.fix() == "" and clean.to_dict()["differ"] == []


def test_names_and_versions_compare_as_pip_does():
    assert normalize_name("PySide6_Essentials") == normalize_name("pyside6-essentials") == "pyside6-essentials"
    assert normalize_name("ruamel.yaml") == "ruamel-yaml"
    assert public_version("2.13.0+cpu") == public_version("2.13.0") == "2.13.0"


def test_no_lock_is_drift_and_a_wrong_explicit_path_is_an_error(tmp_path):
    assert compare(None).drift and compare(None).to_dict()["path"] is None
    with pytest.raises(ConfigError, match=r"lock must be an existing file; got '.*nope.lock'\. Pass --lock PATH"):
        find_lock(tmp_path / "nope.lock")


@pytest.mark.skipif(bool(os.environ.get("EDGESTREAM_TEST_UNLOCKED")), reason="make test-latest installs without the lock")
def test_committed_lock_matches_this_environment():
    """make install (and CI) install from the lock, so the core packages here are the locked versions."""
    path = find_lock()
    assert path is not None and path.name == "requirements.lock"
    pins = read_lock(path)
    assert len(pins) > 50  # every transitive dependency, not only the direct ones
    for name in ("numpy", "torch", "onnxruntime", "scipy", "pylsl"):
        assert pins[name] == public_version(metadata.version(name)), name
    assert not {"edgestream", "pip", "setuptools", "wheel"} & set(pins)
