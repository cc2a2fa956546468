"""Plugins: stages, sources, sinks and models from packages installed beside edgestream.

A distribution declares entry points in one of four groups, one per registry:

======================  ===================================================
group                   registry
======================  ===================================================
``edgestream.stages``   :data:`edgestream.core.stage.STAGES`
``edgestream.sources``  :data:`edgestream.core.io.SOURCES`
``edgestream.sinks``    :data:`edgestream.core.io.SINKS`
``edgestream.models``   :data:`edgestream.models.registry.MODELS`
======================  ===================================================

**The convention: an entry point names a module.** Importing it registers the module's
components with the usual decorators (``@STAGES.register("gain")``, ``@SINKS.register(...)``,
``@register_model(family=..., kind=...)``), exactly as a built-in module does. The entry point's
name is the name of the component the module provides (its main one when it provides several);
edgestream quotes it in messages. An entry point naming an object (``es_gain.stages:Gain``) is
refused with the fix, because the decorators carry what an object alone cannot (a model's
``kind`` and ``family`` tags, several components per module)::

    [project.entry-points."edgestream.stages"]
    gain = "es_gain.stages"

Loading is lazy: a registry imports its plugins on its first lookup, after its built-in packages.
A plugin that fails to import is logged (distribution, entry point, exception, fix) and left out,
with everything it had registered; the built-ins and the other plugins still work, and looking up
a name the plugin would have provided says why it is missing. A plugin may not replace a built-in
component (or another plugin's): the clash fails the plugin with an error naming both.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import threading
from importlib import metadata
from typing import TYPE_CHECKING, Any

from edgestream.core.errors import ConfigError

if TYPE_CHECKING:
    from edgestream.core.registry import Registry

log = logging.getLogger("edgestream.plugins")

# Registry kind → entry-point group.
GROUPS: dict[str, str] = {
    "stage": "edgestream.stages",
    "source": "edgestream.sources",
    "sink": "edgestream.sinks",
    "model": "edgestream.models",
}

# Components defined in modules of this package are built-ins, never a plugin's.
BUILTIN_PACKAGE = "edgestream"

# Plugins being imported, innermost last: a plugin's import may trigger another registry's load.
_loading: list[Plugin] = []
_lock = threading.RLock()


class PluginError(ConfigError):
    """A plugin breaks the plugin convention or clashes with an existing component."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


@dataclasses.dataclass(eq=False)
class Plugin:
    """One entry point of an installed distribution, and what became of it when it was loaded."""

    group: str  # entry-point group, e.g. "edgestream.stages"
    name: str  # entry-point name: by convention the component it provides, e.g. "gain"
    value: str  # what the entry point names: a module, e.g. "es_gain.stages"
    distribution: str  # the installed distribution declaring it, e.g. "es-gain"
    version: str  # that distribution's version
    status: str = "not loaded"  # "not loaded", then "loaded" or "failed"
    error: str = ""  # why it failed, one line: "RuntimeError: boom", or the clash
    fix: str = ""  # what to do about the failure
    registered: list[tuple[Registry[Any], str]] = dataclasses.field(default_factory=list, repr=False)

    @property
    def label(self) -> str:
        """``plugin es-gain 0.1.0 (entry point 'gain' in edgestream.stages → es_gain.stages)``."""
        return f"plugin {self.distribution} {self.version} (entry point {self.name!r} in {self.group} → {self.value})"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_dict(self) -> dict[str, str]:
        """The plugin as plain data (``edgestream doctor --json``)."""
        return {"distribution": self.distribution, "version": self.version, "group": self.group, "name": self.name,
                "value": self.value, "status": self.status, "error": self.error, "fix": self.fix}


def discover(group: str) -> list[Plugin]:
    """The entry points installed in ``group``, sorted by distribution and name; nothing is imported.

    Parameters
    ----------
    group : str
        An entry-point group, e.g. ``"edgestream.stages"``.

    Returns
    -------
    list of Plugin
        One per entry point, status ``"not loaded"``.
    """
    try:
        found = metadata.entry_points(group=group)
    except Exception as exc:  # a damaged dist-info somewhere on the path must not stop edgestream
        log.error("could not read the installed entry points of group %s: %s: %s; plugins of this group are left out",
                  group, type(exc).__name__, exc)
        return []
    plugins = []
    for ep in found:
        dist = getattr(ep, "dist", None)
        name = (dist.metadata["Name"] if dist is not None else None) or "(unknown distribution)"
        version = (dist.version if dist is not None else None) or "?"
        plugins.append(Plugin(group, ep.name, ep.value, name, version))
    return sorted(plugins, key=lambda p: (p.distribution.lower(), p.name))


def owner(factory: Any) -> Plugin | None:
    """The plugin being imported that ``factory``'s registration belongs to, or None (built-in, local).

    A plugin's import may import built-in modules (to subclass a stage, say); their registrations
    stay built-ins.
    """
    if not _loading:
        return None
    module = getattr(factory, "__module__", None) or ""
    if module == BUILTIN_PACKAGE or module.startswith(BUILTIN_PACKAGE + "."):
        return None
    return _loading[-1]


def load(plugin: Plugin, kind: str) -> None:
    """Import ``plugin``'s module; registrations made meanwhile are attributed to it.

    On failure the plugin's registrations are undone, it is marked ``failed`` and an error naming
    the distribution, the entry point, the exception and the fix is logged. Nothing is raised.

    Parameters
    ----------
    plugin : Plugin
        A discovered entry point.
    kind : str
        The kind of the registry loading it (``"stage"``), for messages.
    """
    with _lock:
        _loading.append(plugin)
        try:
            if ":" in plugin.value:
                raise PluginError(
                    f"the entry point names an object ({plugin.value}), but edgestream plugins name a module",
                    f"name the module only ({plugin.name} = \"{plugin.value.split(':')[0].strip()}\"); its import "
                    f"registers the components with the usual decorators ({decorator(kind, '...')})")
            importlib.import_module(plugin.value)
        except Exception as exc:  # any failure of third-party code: report it, keep the built-ins working
            reject(plugin, _reason(exc), _fix(plugin, exc), kind, exc)
            return
        finally:
            _loading.pop()
        if not plugin.failed:  # a clash seen while importing another module may have failed it already
            plugin.status = "loaded"


def reject(plugin: Plugin, error: str, fix: str, kind: str, exc: BaseException | None = None) -> None:
    """Mark ``plugin`` failed, undo everything it registered, and log why with the fix."""
    plugin.status, plugin.error, plugin.fix = "failed", error, fix
    for registry, name in plugin.registered:
        registry._forget(name, plugin)
    plugin.registered.clear()
    log.error("%s failed to load: %s. It is left out; the built-in %ss still work. Fix: %s.", plugin.label, error,
              kind, fix)
    if exc is not None:
        log.info("traceback of the %s failure", plugin.label, exc_info=exc)


def clash(plugin: Plugin, kind: str, name: str, existing: str) -> tuple[str, str]:
    """The error and fix for ``plugin`` registering ``name`` where ``existing`` already is."""
    stem = plugin.distribution.lower().replace("-", "_").replace(".", "_")
    error = (f"its {kind} {name!r} clashes with {existing}; a plugin cannot replace a component that is already "
             "registered")
    fix = (f"rename the plugin's {kind} (e.g. '{stem}_{name}') and its entry point, or uninstall the plugin "
           f"(pip uninstall {plugin.distribution})")
    return error, fix


def explain_unknown(kind: str, name: str, plugins: list[Plugin]) -> str:
    """What a failed lookup of ``name`` should add about this registry's plugins ('' if nothing).

    Parameters
    ----------
    kind : str
        Registry kind, e.g. ``"stage"``.
    name : str
        The name that was not found.
    plugins : list of Plugin
        The registry's plugins, after loading.
    """
    for p in plugins:
        if p.name == name and p.failed:
            return f"{p.label} would provide {kind} {name!r} but failed to load: {p.error}. Fix: {p.fix}."
        if p.name == name:
            return (f"{p.label} is installed but registered no {kind} {name!r}; its module must register it "
                    f"({decorator(kind, repr(name))}).")
    failed = [p for p in plugins if p.failed]
    if not failed:
        return ""
    listed = "; ".join(f"{p.label}: {p.error}" for p in failed)
    return f"Plugins that failed to load (one may provide it): {listed}. `edgestream doctor` lists every plugin and its fix."


def decorator(kind: str, args: str) -> str:
    """How a module registers a component of ``kind``, e.g. ``@STAGES.register('gain')``."""
    return "@register_model(...)" if kind == "model" else f"@{kind.upper()}S.register({args})"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, PluginError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fix(plugin: Plugin, exc: BaseException) -> str:
    if isinstance(exc, PluginError):
        return exc.fix
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        module = plugin.value.strip()
        if module == exc.name or module.startswith(exc.name + "."):
            return (f"the module {module!r} is not installed: reinstall the plugin "
                    f"(pip install --force-reinstall {plugin.distribution}) or correct its entry point")
        return (f"install the module {exc.name!r} the plugin needs, or uninstall the plugin "
                f"(pip uninstall {plugin.distribution})")
    return (f"correct the plugin (edgestream -v shows the traceback) or uninstall it "
            f"(pip uninstall {plugin.distribution})")
