"""Pipeline files: structure checks, --set overrides, clear errors for malformed input."""

from __future__ import annotations

import pytest

from edgestream.core import ConfigError
from edgestream.pipeline import available_pipelines, load_pipeline, parse_pipeline

BASE = {
    "pipeline": "p",
    "sources": {"eeg": {"kind": "lsl", "type": "EEG"}},
    "stages": {"bp": {"kind": "bandpass", "l_freq": 1.0, "h_freq": 40.0}, "win": {"kind": "window", "size": 1, "hop": 0.1}},
    "sinks": {"out": {"kind": "lsl_outlet"}},
}


def test_default_wiring_and_engine_keys():
    spec = parse_pipeline(BASE)
    assert [n.input for n in spec.stages] == ["eeg", "bp"]
    assert spec.sinks[0].input == "win"
    assert spec.stages[0].params == {"l_freq": 1.0, "h_freq": 40.0}


def test_unknown_top_level_key_is_an_error():
    with pytest.raises(ConfigError, match="unknown key 'stagse'.*Did you mean 'stages'"):
        parse_pipeline(BASE | {"stagse": {}})


def test_unknown_input_lists_close_matches():
    bad = BASE | {"sinks": {"out": {"kind": "lsl_outlet", "input": "wim"}}}
    with pytest.raises(ConfigError, match="unknown node 'wim'. Did you mean 'win'"):
        parse_pipeline(bad)


def test_node_without_kind():
    with pytest.raises(ConfigError, match=r"stages.bp must be a mapping with a 'kind' key"):
        parse_pipeline(BASE | {"stages": {"bp": {"l_freq": 1}}})


def test_queue_policy_is_checked():
    bad = BASE | {"stages": {"bp": {"kind": "bandpass", "l_freq": 1, "h_freq": 4, "queue": {"size": 4, "policy": "drop"}}}}
    with pytest.raises(ConfigError, match="queue.policy must be one of"):
        parse_pipeline(bad)


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("pipeline: x\nsources:\n  eeg: {kind: lsl\nstages: {}\n")
    with pytest.raises(ConfigError, match=r"must be valid YAML; parsing failed at line \d+"):
        load_pipeline(path)


def test_set_overrides_node_params_and_top_level(tmp_path):
    import yaml

    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(BASE))
    spec = load_pipeline(path, ["bp.l_freq=2.5", "win.hop=0.2", "duration=3", "out.name=feat"])
    assert spec.stages[0].params["l_freq"] == 2.5 and spec.stages[1].params["hop"] == 0.2
    assert spec.duration == 3 and spec.sinks[0].params["name"] == "feat"
    with pytest.raises(ConfigError, match="unknown pipeline node 'bpp'"):
        load_pipeline(path, ["bpp.l_freq=1"])
    with pytest.raises(ConfigError, match="--set must look like node.param=value"):
        load_pipeline(path, ["bp.l_freq"])


def test_bundled_pipelines_parse():
    bundled = available_pipelines()
    assert {"eeg_bandpower", "reference"} <= set(bundled)
    for name in bundled:
        spec = load_pipeline(name)
        assert spec.sources and spec.sinks, name


def test_unknown_pipeline_name():
    with pytest.raises(ConfigError, match="unknown pipeline 'eeg_bandpowr'. Did you mean 'eeg_bandpower'"):
        load_pipeline("eeg_bandpowr")
