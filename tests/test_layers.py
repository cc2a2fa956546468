"""The layering contract: which edgestream packages may import which, checked on every run.

The checker reads every module under ``edgestream/`` with :mod:`ast` (nothing is imported, so a
broken or slow module cannot hide an edge) and collects every import: module-level ones, lazy
ones inside functions, ``if TYPE_CHECKING:`` ones and ``importlib.import_module("literal")``
calls. Rules:

* ``train-on-top`` — only ``edgestream.train`` and ``edgestream.cli`` import ``edgestream.train``:
  inference (runners, split runtime, dsp, record) must run without the training code.
* ``core-at-bottom`` — ``edgestream.core`` imports no other edgestream package.
* ``models-below-runtime`` — ``edgestream.models`` (registry, factory, checkpoint reading) imports
  only ``edgestream.core`` and ``edgestream.dsp``: a model and its checkpoint load without the
  pipeline, runners, sources or training. (``dsp`` because MPTSNet's layers take the period rule —
  ``nearest_bins``, ``default_periods`` — from ``dsp/periods.py``; its torch DFT helpers live in
  ``models/layers/periods.py``.)
* ``no-cycles`` — no import cycle between edgestream modules at import time (module level, outside
  ``TYPE_CHECKING``; a lazy import inside a function runs after both modules exist). Cycles that
  predate this contract are listed in :data:`KNOWN_CYCLES` so the debt stays visible; one that is
  fixed must be removed from the list (the contract fails on a stale entry).

Why a test of our own rather than import-linter (installable, and fine for the first three
rules): its cycle contract (``acyclic_siblings``) covers the sibling packages of one parent, not
any two modules, and it counts an import inside a function like a module-level one, so it cannot
say "no cycle at import time"; this file needs nothing beyond the standard library and pytest.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "edgestream"

# Module-level import cycles that predate the contract; each entry is the set of modules of one
# strongly connected component of the import-time graph. Debt, not design: remove an entry when
# its cycle is broken (the contract then insists).
KNOWN_CYCLES: tuple[frozenset[str], ...] = ()


@dataclasses.dataclass(frozen=True)
class Import:
    """One import statement (or ``importlib.import_module`` call) found in a module."""

    importer: str  # dotted name of the module that contains the statement
    imported: str  # dotted name of the edgestream module it reaches
    path: Path  # file of the importer
    line: int  # line of the statement
    lazy: bool  # inside a function or lambda: runs when called, not when the module is imported
    type_checking: bool  # inside ``if TYPE_CHECKING:``: never runs

    @property
    def at_import_time(self) -> bool:
        return not (self.lazy or self.type_checking)

    def where(self) -> str:
        how = "inside a function" if self.lazy else "under TYPE_CHECKING" if self.type_checking else "at module level"
        return f"{self.path.name}:{self.line}, {how}"


@dataclasses.dataclass(frozen=True)
class Rule:
    """A forbidden dependency: ``importer_matches(a) and imported_matches(b)`` must never hold."""

    name: str
    text: str  # the rule in words, quoted in every violation
    importer_matches: Callable[[str], bool]
    imported_matches: Callable[[str], bool]


def inside(module: str, package: str) -> bool:
    """Whether ``module`` is ``package`` or one of its submodules."""
    return module == package or module.startswith(package + ".")


def default_rules(package: str = PACKAGE) -> list[Rule]:
    """The contract's dependency rules for the package named ``package``."""
    train, cli, core, models, dsp = (f"{package}.{p}" for p in ("train", "cli", "core", "models", "dsp"))
    return [
        Rule(
            "train-on-top",
            f"only {train} and {cli} may import {train}; move what inference needs to {package}.models or {core}",
            lambda a: not (inside(a, train) or inside(a, cli)),
            lambda b: inside(b, train),
        ),
        Rule(
            "core-at-bottom",
            f"{core} imports no other {package} package; move the shared code into {core} or pass it in",
            lambda a: inside(a, core),
            lambda b: not inside(b, core),
        ),
        Rule(
            "models-below-runtime",
            f"{models} imports only {core} and {dsp}; what needs a pipeline, runner or trainer builds on models",
            lambda a: inside(a, models),
            lambda b: not (inside(b, models) or inside(b, core) or inside(b, dsp)),
        ),
    ]


def module_files(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` file below ``root/package``."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    """Walks one module's AST, tracking whether each import sits in a function or a TYPE_CHECKING block."""

    def __init__(self, module: str, path: Path, is_package: bool, modules: dict[str, Path]) -> None:
        self.module, self.path, self.modules = module, path, modules
        # relative imports resolve against the package: the module itself for an __init__.py
        self.base = module if is_package else module.rpartition(".")[0]
        self.lazy = 0
        self.type_checking = 0
        self.found: list[Import] = []
        self.seen: set[Import] = set()

    def _add(self, target: str, node: ast.AST) -> None:
        # Only source modules count: a name outside the package, or one with no .py file here (the
        # data packages setup.py maps in, edgestream._devices / _lock / _pipelines), is no code edge.
        if target not in self.modules or target == self.module:  # a package naming itself is no edge either
            return
        imp = Import(self.module, target, self.path, node.lineno, self.lazy > 0, self.type_checking > 0)
        if imp not in self.seen:  # `from m import a, b` is one edge, not two
            self.seen.add(imp)
            self.found.append(imp)

    def _function(self, node: ast.AST) -> None:
        self.lazy += 1
        self.generic_visit(node)
        self.lazy -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.type_checking += 1
        for child in node.body:
            self.visit(child)
        self.type_checking -= 1
        for child in node.orelse:  # the else branch of `if TYPE_CHECKING:` does run
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            anchor = self.base.split(".")[: len(self.base.split(".")) - (node.level - 1)]
            base = ".".join(anchor + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            # `from pkg import sub` reaches the submodule when there is one, else pkg itself
            sub = f"{base}.{alias.name}"
            self._add(sub if alias.name != "*" and sub in self.modules else base, node)

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("edgestream.x") / __import__("edgestream.x") with a literal name
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and not first.value.startswith("."):
                self._add(first.value, node)
        self.generic_visit(node)


def collect_imports(root: Path, package: str = PACKAGE) -> list[Import]:
    """Every import of a ``package`` module made by a ``package`` module, as found in the source."""
    modules = module_files(root, package)
    found: list[Import] = []
    for module, path in modules.items():
        collector = _Collector(module, path, path.name == "__init__.py", modules)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found.extend(collector.found)
    return found


def rule_violations(imports: Iterable[Import], rules: Iterable[Rule]) -> list[str]:
    """One message per import that breaks a rule, naming importer, imported module and rule."""
    out = []
    for rule in rules:
        for imp in imports:
            if rule.importer_matches(imp.importer) and rule.imported_matches(imp.imported):
                out.append(f"{imp.importer} imports {imp.imported} ({imp.where()}): breaks rule "
                           f"'{rule.name}': {rule.text}.")
    return out


def import_cycles(imports: Iterable[Import]) -> list[tuple[frozenset[str], list[str]]]:
    """Strongly connected components (2+ modules) of the import-time graph, each with one closed cycle.

    Tarjan's algorithm finds the components; within each, a breadth-first search from its
    smallest module back to itself gives a shortest cycle to show in the message.
    """
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.at_import_time:
            graph.setdefault(imp.importer, set()).add(imp.imported)
            graph.setdefault(imp.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:  # recursion depth is bounded by the module count (a few hundred)
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [(frozenset(comp), _shortest_cycle(graph, comp)) for comp in sorted(components, key=min)]


def _shortest_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    start = min(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if nxt not in previous:
                    previous[nxt] = node
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError(f"component {sorted(component)} has no cycle through {start}")  # pragma: no cover


def cycle_violations(imports: list[Import], known: Iterable[frozenset[str]] = ()) -> list[str]:
    """Messages for import-time cycles not in ``known``, and for ``known`` entries that are no cycle any more."""
    known = set(known)
    cycles = import_cycles(imports)
    out = []
    found_sets = set()
    for members, cycle in cycles:
        found_sets.add(members)
        if members in known:
            continue
        # name each edge's import line so the fix is one look away
        edges = []
        for a, b in zip(cycle, cycle[1:]):
            imp = next(i for i in imports if i.importer == a and i.imported == b and i.at_import_time)
            edges.append(f"{a} imports {b} ({imp.where()})")
        rest = sorted(members - set(cycle))  # a knot of several cycles: show one, name the others' modules
        more = f" (and {len(rest)} more modules in the same knot: {rest})" if rest else ""
        out.append(f"import cycle {' -> '.join(cycle)}{more}: {'; '.join(edges)}: breaks rule 'no-cycles': modules must "
                   "not import each other at import time; move the shared names into a module both import, or "
                   "import lazily inside the function that needs them.")
    for members in sorted(known - found_sets, key=sorted):
        out.append(f"KNOWN_CYCLES lists {sorted(members)}, which is no longer an import cycle (or has grown or "
                   "shrunk): rule 'no-cycles' exceptions must be current; remove or update the entry in tests/test_layers.py.")
    return out


def check_contract(root: Path, package: str = PACKAGE, known_cycles: Iterable[frozenset[str]] = ()) -> list[str]:
    """Every violation of the layering contract in the source tree ``root/package``."""
    imports = collect_imports(root, package)
    return rule_violations(imports, default_rules(package)) + cycle_violations(imports, known_cycles)


# ----------------------------------------------------------------------------------------------- the contract


def test_layering_contract() -> None:
    violations = check_contract(ROOT, PACKAGE, KNOWN_CYCLES)
    assert not violations, "layering contract broken:\n" + "\n".join(violations)


def test_contract_sees_the_whole_package() -> None:
    # guards the checker itself: a walk that found nothing would pass every rule
    imports = collect_imports(ROOT)
    importers = {i.importer for i in imports}
    assert {"edgestream.core.io", "edgestream.runners.window", "edgestream.train.loop", "edgestream.cli.main"} <= importers
    assert any(i.lazy for i in imports) and any(i.at_import_time for i in imports)


# --------------------------------------------------------------------------- the checker catches what it should


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    """A tiny package named like ours, holding one break of each rule."""
    return _tree(tmp_path, {
        "edgestream/__init__.py": "",
        "edgestream/core/__init__.py": "",
        "edgestream/core/a.py": "from edgestream.dsp import f\n",  # core-at-bottom
        "edgestream/train/__init__.py": "def fit():\n    pass\n",
        "edgestream/train/ckpt.py": "from edgestream.core import a\n",  # allowed: train imports core
        "edgestream/cli/__init__.py": "import edgestream.train.ckpt\n",  # allowed: cli imports train
        "edgestream/dsp/__init__.py": "def f():\n    pass\n",
        "edgestream/models/__init__.py": "from edgestream.dsp import f\n",  # allowed: models import dsp
        "edgestream/models/factory.py": "from edgestream.runners import window\n",  # models-below-runtime
        # train-on-top, lazily, through a relative import
        "edgestream/runners/__init__.py": "",
        "edgestream/runners/window.py": "def build():\n    from ..train import ckpt\n    return ckpt\n",
        # train-on-top through importlib, under TYPE_CHECKING: still a dependency
        "edgestream/runners/stream.py": (
            "import importlib\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from edgestream.train import fit\nM = importlib.import_module('edgestream.train')\n"
        ),
        # a module-level cycle, and a lazy back edge that is not one
        "edgestream/split/__init__.py": "",
        "edgestream/split/plan.py": "from edgestream.split import runtime\n",
        "edgestream/split/runtime.py": "import edgestream.split.plan\n",
        "edgestream/split/lazy.py": "from edgestream.split import plan\n\ndef g():\n    from edgestream.split import lazy\n",
    })


def test_checker_reports_each_rule_naming_both_modules(fake: Path) -> None:
    violations = check_contract(fake)
    text = "\n".join(violations)
    assert "edgestream.core.a imports edgestream.dsp (a.py:1, at module level): breaks rule 'core-at-bottom'" in text
    assert "edgestream.runners.window imports edgestream.train.ckpt (window.py:2, inside a function): breaks rule 'train-on-top'" in text
    assert "edgestream.runners.stream imports edgestream.train (stream.py:4, under TYPE_CHECKING): breaks rule 'train-on-top'" in text
    assert "edgestream.runners.stream imports edgestream.train (stream.py:5, at module level): breaks rule 'train-on-top'" in text
    assert ("edgestream.models.factory imports edgestream.runners.window (factory.py:1, at module level): breaks rule "
            "'models-below-runtime'") in text
    assert ("import cycle edgestream.split.plan -> edgestream.split.runtime -> edgestream.split.plan: "
            "edgestream.split.plan imports edgestream.split.runtime (plan.py:1, at module level); "
            "edgestream.split.runtime imports edgestream.split.plan (runtime.py:1, at module level): "
            "breaks rule 'no-cycles'") in text
    # allowed edges (cli and train up top, models on dsp) and the lazy back edge stay quiet
    importers = {v.split(" imports ")[0] for v in violations}
    assert not importers & {"edgestream.cli", "edgestream.train.ckpt", "edgestream.models", "edgestream.split.lazy"}
    assert "split.lazy" not in text
    assert len(violations) == 6


def test_known_cycles_are_excused_and_must_stay_current(fake: Path) -> None:
    cycle = frozenset({"edgestream.split.plan", "edgestream.split.runtime"})
    assert not [v for v in check_contract(fake, known_cycles=[cycle]) if "no-cycles" in v]
    (fake / "edgestream/split/runtime.py").write_text("def later():\n    import edgestream.split.plan\n")
    stale = [v for v in check_contract(fake, known_cycles=[cycle]) if "no-cycles" in v]
    assert len(stale) == 1 and "KNOWN_CYCLES lists ['edgestream.split.plan', 'edgestream.split.runtime']" in stale[0]


def test_clean_tree_passes(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "edgestream/__init__.py": "",
        "edgestream/core/__init__.py": "from edgestream.core.checks import check\n",
        "edgestream/core/checks.py": "def check():\n    pass\n",
        "edgestream/models/__init__.py": "from edgestream.core import check\n",
        "edgestream/train/__init__.py": "from edgestream.models import check\n",
    })
    assert check_contract(root) == []


def test_a_knot_of_cycles_is_one_violation_naming_every_module(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "edgestream/__init__.py": "",
        "edgestream/a.py": "import edgestream.b\n",
        "edgestream/b.py": "import edgestream.a\nimport edgestream.c\n",
        "edgestream/c.py": "import edgestream.b\n",
    })
    (violation,) = check_contract(root)
    assert violation.startswith("import cycle edgestream.a -> edgestream.b -> edgestream.a (and 1 more modules in the "
                                "same knot: ['edgestream.c'])")
    knot = frozenset({"edgestream.a", "edgestream.b", "edgestream.c"})
    assert check_contract(root, known_cycles=[knot]) == []
