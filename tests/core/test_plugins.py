"""Plugins: components from packages installed beside edgestream, found through entry points.

Two layers. In-process tests put a hand-written ``*.dist-info`` on ``sys.path`` and load it into a
fresh registry of a private group (the global registries are never touched): lazy loading, a
broken plugin, clashes, the module-only convention. The integration tests install real plugin
packages with pip into directories of ``tmp_path`` and run ``edgestream`` in subprocesses with
them on ``PYTHONPATH``: a pipeline YAML uses the plugin's stage and sink (with ``--set``), doctor
and the listings show the plugin, and a broken and a clashing plugin leave the built-ins working.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgestream.core import Chunk, StreamInfo, UnknownNameError, concat, run_stage
from edgestream.core.plugins import Plugin
from edgestream.core.registry import Registry
from edgestream.core.stage import STAGES

ROOT = Path(__file__).resolve().parents[2]
GROUP = "edgestream_test.widgets"  # private group: no installed package can declare it


# --- in-process: a dist-info on sys.path, a fresh registry --------------------------------------


@pytest.fixture
def widgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """A fresh registry of GROUP with one built-in entry; plugin modules import it as ``es_widgets``."""
    from edgestream.dsp.filters import BandPass

    registry: Registry = Registry("widget", group=GROUP)
    registry.register("bandpass")(BandPass)  # a built-in: its module is under edgestream
    shim = types.ModuleType("es_widgets")
    shim.WIDGETS = registry  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "es_widgets", shim)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield registry
    for name in set(sys.modules) - before:  # the plugin modules of this test
        if name.startswith("es_"):
            del sys.modules[name]


def fake_distribution(root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Write ``modules`` and a dist-info declaring ``entry_points`` (name → value) in GROUP under ``root``."""
    info = root / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    for module, code in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(code))
    importlib.invalidate_caches()  # the import system and importlib.metadata cache directory listings


GAIN = """
    from es_widgets import WIDGETS

    @WIDGETS.register("gain")
    def gain(factor: float = 1.0) -> float:
        \"\"\"A widget from a plugin.\"\"\"
        return factor
"""


def test_plugins_load_lazily_on_first_lookup_and_name_their_distribution(widgets, tmp_path):
    fake_distribution(tmp_path, "es-fake", {"gain": "es_fake_gain"}, {"es_fake_gain": GAIN})
    assert "es_fake_gain" not in sys.modules  # creating the registry imported nothing
    entry = widgets.get("gain")
    assert "es_fake_gain" in sys.modules and widgets.create("gain", factor=2.0) == 2.0
    assert entry.origin == "es-fake 0.1.0" and widgets.get("bandpass").origin == "built-in"
    (plugin,) = widgets.plugins
    assert (plugin.distribution, plugin.version, plugin.group, plugin.name, plugin.status) == (
        "es-fake", "0.1.0", GROUP, "gain", "loaded")
    assert widgets.components_of(plugin) == ["gain"] and widgets.names() == ["bandpass", "gain"]


def test_a_broken_plugin_is_logged_undone_and_explained_while_the_rest_works(widgets, tmp_path, caplog):
    broken = """
        from es_widgets import WIDGETS

        WIDGETS.register("half")(lambda: 0.5)
        raise RuntimeError("boom")
    """
    fake_distribution(tmp_path, "es-broken", {"shout": "es_broken_shout"}, {"es_broken_shout": broken})
    fake_distribution(tmp_path, "es-fake", {"gain": "es_fake_gain"}, {"es_fake_gain": GAIN})
    with caplog.at_level(logging.ERROR, logger="edgestream.plugins"):
        assert "bandpass" in widgets and "gain" in widgets
    label = "plugin es-broken 0.1.0 (entry point 'shout' in edgestream_test.widgets → es_broken_shout)"
    assert f"{label} failed to load: RuntimeError: boom. It is left out; the built-in widgets still work. " \
           "Fix: correct the plugin (edgestream -v shows the traceback) or uninstall it (pip uninstall es-broken)." \
           in caplog.text
    assert "half" not in widgets  # what it registered before failing is undone
    with pytest.raises(UnknownNameError) as err:
        widgets.get("shout")
    assert str(err.value).startswith("unknown widget 'shout'.")
    assert f"{label} would provide widget 'shout' but failed to load: RuntimeError: boom. Fix: correct the plugin" \
        in str(err.value)
    with pytest.raises(UnknownNameError, match=r"Plugins that failed to load \(one may provide it\): plugin es-broken"):
        widgets.get("nothing_like_it")


def test_a_plugin_cannot_replace_a_builtin(widgets, tmp_path, caplog):
    clash = """
        from es_widgets import WIDGETS

        @WIDGETS.register("bandpass")
        def bandpass() -> str:
            return "impostor"
    """
    fake_distribution(tmp_path, "es-clash", {"bandpass": "es_clash_bp"}, {"es_clash_bp": clash})
    with caplog.at_level(logging.ERROR, logger="edgestream.plugins"):
        entry = widgets.get("bandpass")
    assert entry.plugin is None and entry.factory.__module__ == "edgestream.dsp.filters"
    (plugin,) = widgets.plugins
    assert plugin.status == "failed"
    assert plugin.error == ("its widget 'bandpass' clashes with the built-in widget 'bandpass' "
                            "(edgestream.dsp.filters.BandPass); a plugin cannot replace a component that is already "
                            "registered")
    assert plugin.fix.startswith("rename the plugin's widget (e.g. 'es_clash_bandpass') and its entry point")
    assert "plugin es-clash 0.1.0 (entry point 'bandpass' in edgestream_test.widgets → es_clash_bp) failed to load: " \
           "its widget 'bandpass' clashes with the built-in widget 'bandpass'" in caplog.text


def test_a_builtin_registered_after_a_plugin_took_its_name_wins(widgets, tmp_path):
    fake_distribution(tmp_path, "es-fake", {"gain": "es_fake_gain"}, {"es_fake_gain": GAIN})
    widgets.get("gain")
    from edgestream.dsp.filters import HighPass

    widgets.register("gain")(HighPass)  # e.g. a built-in package imported after the plugin
    assert widgets.get("gain").factory is HighPass
    (plugin,) = widgets.plugins
    assert plugin.status == "failed" and "clashes with the built-in widget 'gain' (edgestream.dsp.filters.HighPass)" \
        in plugin.error


@pytest.mark.parametrize("value, error, fix", [
    ("es_fake_gain:gain", "the entry point names an object (es_fake_gain:gain), but edgestream plugins name a module",
     'name the module only (gain = "es_fake_gain")'),
    ("es_not_there", "ModuleNotFoundError: No module named 'es_not_there'",
     "the module 'es_not_there' is not installed: reinstall the plugin (pip install --force-reinstall es-fake)"),
])
def test_entry_points_that_break_the_convention_say_how_to_fix_them(widgets, tmp_path, value, error, fix):
    fake_distribution(tmp_path, "es-fake", {"gain": value}, {"es_fake_gain": GAIN})
    assert "gain" not in widgets and "bandpass" in widgets
    (plugin,) = widgets.plugins
    assert plugin.status == "failed" and plugin.error == error and plugin.fix.startswith(fix)


def test_a_plugin_that_registers_nothing_is_reported(widgets, tmp_path, caplog):
    fake_distribution(tmp_path, "es-empty", {"gain": "es_empty"}, {"es_empty": "X = 1\n"})
    with caplog.at_level(logging.WARNING, logger="edgestream.plugins"):
        assert len(widgets) == 1
    assert "loaded but registered no widget; register its components with @WIDGETS.register('gain')" in caplog.text
    with pytest.raises(UnknownNameError, match=r"is installed but registered no widget 'gain'"):
        widgets.get("gain")


def test_registries_without_a_group_have_no_plugins():
    assert Registry("thing").plugins == [] and isinstance(Plugin("g", "n", "m", "d", "1").label, str)


# --- integration: real packages installed with pip, used from the command line ------------------

GAIN_PLUGIN = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "es-gain"
        version = "0.1.0"
        dependencies = ["edgestream"]

        [project.entry-points."edgestream.stages"]
        gain = "es_gain.components"

        [project.entry-points."edgestream.sinks"]
        npy = "es_gain.components"

        [project.entry-points."edgestream.models"]
        tiny_linear = "es_gain.models"

        [tool.setuptools]
        packages = ["es_gain"]
    """,
    "es_gain/__init__.py": '"""A plugin adding a gain stage, an .npy sink and a tiny model to edgestream."""\n',
    "es_gain/components.py": '''
        """A stage and a sink, registered as every built-in one is."""

        from __future__ import annotations

        import numpy as np

        from edgestream.core import SINKS, STAGES, Chunk, Sink, Stage


        @STAGES.register("gain")
        class Gain(Stage):
            """Multiply every sample by ``factor``."""

            def __init__(self, factor: float = 1.0, gap_policy: str = "keep") -> None:
                super().__init__(gap_policy=gap_policy)
                self.factor = factor

            def init_state(self) -> None:
                return None

            def step(self, chunk: Chunk, state: None) -> tuple[list[Chunk], None]:
                data = chunk.data * np.float32(self.factor)
                return [Chunk(data, chunk.timestamps, self.out_info, chunk.gap, chunk.warming)], state


        @SINKS.register("npy")
        class NpySink(Sink):
            """Save every sample received to ``path`` (.npy) when the pipeline stops."""

            def __init__(self, path: str) -> None:
                super().__init__()
                self.path = path
                self._blocks: list[np.ndarray] = []

            def write(self, chunk: Chunk) -> None:
                self._blocks.append(chunk.data.copy())
                self.samples_out += chunk.n_times

            def stop(self) -> None:
                np.save(self.path, np.concatenate(self._blocks) if self._blocks else np.zeros((0, 0), np.float32))
    ''',
    "es_gain/models.py": '''
        """A model, registered as every built-in one is."""

        from __future__ import annotations

        import torch

        from edgestream.models import register_model


        @register_model(family="plugin", kind="window")
        def tiny_linear(n_channels: int = 2, n_times: int = 10, n_classes: int = 2) -> torch.nn.Module:
            """One linear layer over a flattened window (B, C, T)."""
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(n_channels * n_times, n_classes))
    ''',
}


def _plugin(name: str, group: str, entry: str, module: str, code: str) -> dict[str, str]:
    return {
        "pyproject.toml": f"""
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{name}"
            version = "0.1.0"

            [project.entry-points."{group}"]
            {entry} = "{module}"

            [tool.setuptools]
            py-modules = ["{module}"]
        """,
        f"{module}.py": code,
    }


PLUGINS = {
    "es-gain": GAIN_PLUGIN,
    "es-broken": _plugin("es-broken", "edgestream.stages", "shout", "es_broken", 'raise RuntimeError("boom")\n'),
    "es-clash": _plugin("es-clash", "edgestream.stages", "bandpass", "es_clash", """
        from edgestream.core import STAGES, Stage


        @STAGES.register("bandpass")
        class Impostor(Stage):
            \"\"\"A plugin trying to take a built-in's name.\"\"\"
    """),
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each plugin package of PLUGINS built and installed by pip into its own directory (offline)."""
    root = tmp_path_factory.mktemp("plugins")
    sites = {}
    for dist, files in PLUGINS.items():
        src = root / "src" / dist
        for rel, text in files.items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_text(textwrap.dedent(text).lstrip())
        sites[dist] = root / "site" / dist
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                        "--disable-pip-version-check", "--quiet", "--target", str(sites[dist]), str(src)],
                       check=True, capture_output=True, timeout=120)
    return sites


def edgestream(sites: list[Path], *args: str) -> subprocess.CompletedProcess:
    """``python -m edgestream ARGS`` with the plugin install directories ``sites`` on its path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, sites), str(ROOT)])
    return subprocess.run([sys.executable, "-m", "edgestream", *args], env=env, capture_output=True, text=True,
                          timeout=180)


def pipeline_file(path: Path, data: np.ndarray, stages: dict, out: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "pipeline": "plugged",
        "sources": {"eeg": {"kind": "array", "data": data.tolist(), "sfreq": 100.0, "chunk_size": 16}},
        "stages": stages,
        "sinks": {"save": {"kind": "npy", "path": str(out)}},
    }, sort_keys=False))
    return path


@pytest.fixture
def data(rng: np.random.Generator) -> np.ndarray:
    return (rng.standard_normal((400, 3)) * 10).astype(np.float32)


def test_an_installed_plugin_stage_and_sink_run_from_pipeline_yaml_with_set(installed, tmp_path, data):
    out = tmp_path / "out.npy"
    pipe = pipeline_file(tmp_path / "p.yaml", data, {"gain": {"kind": "gain", "factor": 2.0}}, out)
    r = edgestream([installed["es-gain"]], "run", str(pipe), "--set", "gain.factor=3", "--no-monitor", "--no-record",
                   "--duration", "60")
    assert r.returncode == 0, r.stderr
    assert "ERROR" not in r.stderr and "WARNING" not in r.stderr, r.stderr
    np.testing.assert_allclose(np.load(out), data * 3, rtol=1e-6)


def test_doctor_and_the_listings_show_the_plugin_and_its_distribution(installed):
    site = [installed["es-gain"]]
    rows = json.loads(edgestream(site, "doctor", "--json").stdout)["plugins"]
    assert [(r["distribution"], r["version"], r["group"], r["name"], r["value"], r["status"], r["components"])
            for r in rows] == [
        ("es-gain", "0.1.0", "edgestream.stages", "gain", "es_gain.components", "loaded", ["gain"]),
        ("es-gain", "0.1.0", "edgestream.sinks", "npy", "es_gain.components", "loaded", ["npy"]),
        ("es-gain", "0.1.0", "edgestream.models", "tiny_linear", "es_gain.models", "loaded", ["tiny_linear"]),
    ]
    text = edgestream(site, "doctor").stdout
    assert "plugins: 3 entry point(s) from 1 distribution(s)" in text
    assert "ok       es-gain 0.1.0           edgestream.stages   gain → es_gain.components: gain" in text
    listed = edgestream(site, "components", "--kind", "stage", "--kind", "sink").stdout
    assert any(line.split()[:3] == ["gain", "es-gain", "0.1.0"] for line in listed.splitlines())
    assert any(line.split()[:3] == ["npy", "es-gain", "0.1.0"] for line in listed.splitlines())
    assert any(line.split()[:2] == ["bandpass", "built-in"] for line in listed.splitlines())
    models = edgestream(site, "models", "--family", "plugin").stdout
    assert "[plugin es-gain 0.1.0] One linear layer over a flattened window (B, C, T)." in models


def test_broken_and_clashing_plugins_are_reported_and_the_builtins_still_work(installed, tmp_path, data):
    sites = [installed["es-gain"], installed["es-broken"], installed["es-clash"]]
    out = tmp_path / "out.npy"
    bandpass = {"kind": "bandpass", "l_freq": 1.0, "h_freq": 20.0}
    pipe = pipeline_file(tmp_path / "p.yaml", data, {"bp": bandpass, "gain": {"kind": "gain", "factor": 2.0}}, out)
    r = edgestream(sites, "run", str(pipe), "--no-monitor", "--no-record", "--duration", "60")
    assert r.returncode == 0, r.stderr
    assert ("ERROR edgestream.plugins: plugin es-broken 0.1.0 (entry point 'shout' in edgestream.stages → es_broken) "
            "failed to load: RuntimeError: boom. It is left out; the built-in stages still work.") in r.stderr
    assert ("ERROR edgestream.plugins: plugin es-clash 0.1.0 (entry point 'bandpass' in edgestream.stages → es_clash) "
            "failed to load: its stage 'bandpass' clashes with the built-in stage 'bandpass' "
            "(edgestream.dsp.filters.BandPass)") in r.stderr
    # the built-in band-pass ran (not the impostor), then the plugin's gain: equal to the offline chain
    stage = STAGES.create("bandpass", **{k: v for k, v in bandpass.items() if k != "kind"})
    stage.build(StreamInfo("array", "EEG", "x", 100.0, ["ch0", "ch1", "ch2"]))
    chunks, _ = run_stage(stage, [Chunk.make(data, np.arange(len(data)) / 100.0, stage.in_info)])
    np.testing.assert_allclose(np.load(out), concat(chunks).data * 2, rtol=1e-5, atol=1e-5)

    pipe = pipeline_file(tmp_path / "shout.yaml", data, {"s": {"kind": "shout"}}, out)
    r = edgestream(sites, "run", str(pipe), "--no-monitor", "--no-record")
    assert r.returncode == 2
    assert "error: stages.s: unknown stage 'shout'." in r.stderr, r.stderr
    assert ("plugin es-broken 0.1.0 (entry point 'shout' in edgestream.stages → es_broken) would provide stage 'shout' "
            "but failed to load: RuntimeError: boom. Fix: correct the plugin (edgestream -v shows the traceback) or "
            "uninstall it (pip uninstall es-broken).") in r.stderr

    rows = {r["distribution"]: r for r in json.loads(edgestream(sites, "doctor", "--json").stdout)["plugins"]}
    assert rows["es-gain"]["status"] == "loaded"
    assert rows["es-broken"]["status"] == "failed" and rows["es-broken"]["error"] == "RuntimeError: boom"
    assert rows["es-clash"]["status"] == "failed" and "rename the plugin's stage (e.g. 'es_clash_bandpass')" \
        in rows["es-clash"]["fix"]
