"""Create components by name.

One :class:`Registry` per kind of component (models, stages, sources, sinks). Entries are
registered with a decorator and created with keyword overrides::

    STAGES = Registry("stage")

    @STAGES.register("bandpass")
    class BandPass(Stage): ...

    STAGES.create("bandpass", l_freq=1.0, h_freq=40.0)

Unknown names raise :class:`~edgestream.core.errors.UnknownNameError` listing close matches.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from edgestream.core.checks import unknown_name
from edgestream.core.errors import ConfigError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
    name: str  # registered name, e.g. "lmuformer_scv2"
    factory: Callable[..., T]  # class or function returning the component
    tags: dict[str, Any]  # free metadata: family, kind, paper, ...

    @property
    def doc(self) -> str:
        return (inspect.getdoc(self.factory) or "").split("\n\n")[0]


class Registry(Generic[T]):
    """A name → factory table for one kind of component."""

    def __init__(self, kind: str, packages: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        # Packages whose modules register entries; imported on first lookup so that adding a
        # component means adding a file, not editing a list.
        self._packages = packages
        self._loaded = not packages

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for package in self._packages:
            import_submodules(package)

    def register(self, name: str | None = None, **tags: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a class or factory function under ``name`` (default: its ``__name__``)."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            key = name or factory.__name__
            if key in self._entries and self._entries[key].factory is not factory:
                raise ConfigError(f"{self.kind} {key!r} is registered twice; rename one of them.")
            self._entries[key] = Entry(key, factory, dict(tags))
            return factory

        return decorate

    def get(self, name: str) -> Entry[T]:
        self._load()
        if not isinstance(name, str) or name not in self._entries:
            raise unknown_name(self.kind, str(name), self._entries)
        return self._entries[name]

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
