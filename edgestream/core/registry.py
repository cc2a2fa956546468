"""Create components by name.

One :class:`Registry` per kind of component (models, stages, sources, sinks). Entries are
registered with a decorator and created with keyword overrides::

    STAGES = Registry("stage")

    @STAGES.register("bandpass")
    class BandPass(Stage): ...

    STAGES.create("bandpass", l_freq=1.0, h_freq=40.0)

Unknown names raise :class:`~edgestream.core.errors.UnknownNameError` listing close matches.

A registry given an entry-point ``group`` also loads third-party components (plugins, see
:mod:`edgestream.core.plugins`) on first lookup, after its built-in packages; each entry records
the plugin that registered it (``entry.plugin``, None for built-ins).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from edgestream.core import plugins
from edgestream.core.checks import unknown_name
from edgestream.core.errors import ConfigError, UnknownNameError
from edgestream.core.plugins import Plugin

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
    name: str  # registered name, e.g. "lmuformer_scv2"
    factory: Callable[..., T]  # class or function returning the component
    tags: dict[str, Any]  # free metadata: family, kind, paper, ...
    plugin: Plugin | None = None  # the plugin (entry point) that registered it; None for built-ins

    @property
    def doc(self) -> str:
        return (inspect.getdoc(self.factory) or "").split("\n\n")[0]

    @property
    def origin(self) -> str:
        """Where the entry comes from: ``"built-in"`` or the plugin's ``"<distribution> <version>"``."""
        return "built-in" if self.plugin is None else f"{self.plugin.distribution} {self.plugin.version}"

    def describe(self, kind: str) -> str:
        """``the built-in stage 'bandpass' (edgestream.dsp.filters.BandPass)``, or the plugin's."""
        where = f"{getattr(self.factory, '__module__', '?')}.{getattr(self.factory, '__qualname__', '?')}"
        if self.plugin is not None:
            return f"{kind} {self.name!r} of {self.plugin.label}"
        builtin = where == plugins.BUILTIN_PACKAGE or where.startswith(plugins.BUILTIN_PACKAGE + ".")
        return f"the {'built-in ' if builtin else ''}{kind} {self.name!r} ({where})"


class Registry(Generic[T]):
    """A name → factory table for one kind of component."""

    def __init__(self, kind: str, packages: tuple[str, ...] = (), group: str | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        # Packages whose modules register entries; imported on first lookup so that adding a
        # component means adding a file, not editing a list.
        self._packages = packages
        # Entry-point group of third-party components (e.g. "edgestream.stages"), loaded after the packages.
        self.group = group
        self._plugins: list[Plugin] = []
        self._loaded = not packages and group is None

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for package in self._packages:
            import_submodules(package)
        if self.group is not None:
            self._plugins = plugins.discover(self.group)
            for plugin in self._plugins:
                self._load_plugin(plugin)

    def _load_plugin(self, plugin: Plugin) -> None:
        plugins.load(plugin, self.kind)
        if plugin.failed:
            return
        # Entries its package registered before this load (imported directly, say) are its too.
        top = plugin.value.split(".")[0].strip()
        for key, entry in list(self._entries.items()):
            module = getattr(entry.factory, "__module__", None) or ""
            if entry.plugin is None and top != plugins.BUILTIN_PACKAGE and module.split(".")[0] == top:
                self._entries[key] = dataclasses.replace(entry, plugin=plugin)
                plugin.registered.append((self, key))
        if not self.components_of(plugin):
            plugins.log.warning("%s loaded but registered no %s; register its components with %s.", plugin.label,
                                self.kind, plugins.decorator(self.kind, repr(plugin.name)))

    def register(self, name: str | None = None, **tags: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a class or factory function under ``name`` (default: its ``__name__``).

        A name is registered once: a plugin taking a name already registered fails with an error
        naming both (:mod:`edgestream.core.plugins`), and a built-in arriving after a plugin took
        its name wins, failing the plugin.
        """

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            key = name or factory.__name__
            plugin = plugins.owner(factory)
            existing = self._entries.get(key)
            if existing is not None and existing.factory is not factory:
                if plugin is not None:
                    error, fix = plugins.clash(plugin, self.kind, key, existing.describe(self.kind))
                    raise plugins.PluginError(error, fix)
                if existing.plugin is None:
                    raise ConfigError(f"{self.kind} {key!r} is registered twice; rename one of them.")
                loser = existing.plugin
                new = Entry(key, factory, dict(tags)).describe(self.kind)
                plugins.reject(loser, *plugins.clash(loser, self.kind, key, new), self.kind)
            if existing is not None and existing.factory is factory:
                self._entries[key] = Entry(key, factory, dict(tags), existing.plugin)  # same object again: same owner
                return factory
            self._entries[key] = Entry(key, factory, dict(tags), plugin)
            if plugin is not None:
                plugin.registered.append((self, key))
            return factory

        return decorate

    def _forget(self, name: str, plugin: Plugin) -> None:
        """Remove ``name`` if ``plugin`` registered it (the plugin failed)."""
        entry = self._entries.get(name)
        if entry is not None and entry.plugin is plugin:
            del self._entries[name]

    def get(self, name: str) -> Entry[T]:
        self._load()
        if not isinstance(name, str) or name not in self._entries:
            error = unknown_name(self.kind, str(name), self._entries)
            note = plugins.explain_unknown(self.kind, str(name), self._plugins)
            raise UnknownNameError(f"{error} {note}".rstrip()) if note else error
        return self._entries[name]

    @property
    def plugins(self) -> list[Plugin]:
        """The installed entry points of this registry's group, after loading them (empty without a group)."""
        self._load()
        return list(self._plugins)

    def components_of(self, plugin: Plugin) -> list[str]:
        """Names in this registry registered by ``plugin``'s distribution, sorted."""
        return sorted(n for n, e in self._entries.items()
                      if e.plugin is not None and e.plugin.distribution == plugin.distribution)

    def create(self, name: str, /, **overrides: Any) -> T:
        """Instantiate ``name``; unknown keyword arguments are a ConfigError naming the valid ones.

        ``name`` is positional-only, so a component may itself take a ``name`` argument (an
        outlet's stream name, say).
        """
        entry = self.get(name)
        check_kwargs(entry.factory, overrides, f"{self.kind} {name!r}")
        return entry.factory(**overrides)

    def names(self, **tag_filter: Any) -> list[str]:
        """Registered names, sorted, optionally filtered by tag values."""
        self._load()
        return sorted(
            n for n, e in self._entries.items() if all(e.tags.get(k) == v for k, v in tag_filter.items())
        )

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        self._load()
        return iter(self._entries[n] for n in sorted(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)


def import_submodules(package: str) -> None:
    """Import every module below ``package`` (so their ``@register`` decorators run).

    Modules whose name starts with an underscore are skipped. Import errors propagate: a
    broken component must fail loudly, not vanish from the registry.
    """
    import importlib
    import pkgutil

    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        importlib.import_module(info.name)


def accepted_kwargs(factory: Callable[..., Any]) -> list[str] | None:
    """Keyword arguments ``factory`` accepts, or None when they cannot be known.

    A factory written ``def variant(**overrides) -> SomeModel`` forwards to ``SomeModel``: its
    return annotation names the class whose constructor defines the valid keys.
    """
    import typing

    def params(fn: Callable[..., Any]) -> tuple[list[str], bool]:
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return [], True
        names = [n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n != "self"]
        return names, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())

    names, open_ended = params(factory)
    if not open_ended:
        return names
    try:
        target = typing.get_type_hints(factory).get("return")
    except Exception:  # unresolvable annotations: the keys cannot be known
        return None
    if not inspect.isclass(target):
        return None
    inner, inner_open = params(target.__init__)
    return None if inner_open else sorted(set(names) | set(inner))


def check_kwargs(factory: Callable[..., Any], kwargs: dict[str, Any], where: str) -> None:
    """Refuse keyword arguments that ``factory`` does not accept, listing the ones it does."""
    accepted = accepted_kwargs(factory)
    if accepted is None:
        return
    from edgestream.core.checks import check_keys

    check_keys(kwargs, accepted, where)
