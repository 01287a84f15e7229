"""The code's shape, read statically with `ast` (nothing here imports featviz): no import cycles, arrows
that only point down the package order, short modules and functions, the dashboard using featviz_core's
public names only, and no environment read at import time. docs/architecture.md explains the rules.

Every import counts: at module level or inside a function, absolute or relative (`from . import x`,
`from ..pkg import y`; `from .pkg import name` is an import of module `pkg.name` when `name` is one).
Each test lists every offender as `path:line: what`."""
from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("featviz_core", "featviz_ui")  # the importable code: the import graph's nodes
UI_SCRIPTS = ("app.py", "pages")  # Streamlit scripts: UI rules and sizes, but no module imports them
# Arrows point down: a package may import only from packages earlier in this list (the first rank is
# the three bottom modules, featviz_core/errors.py, config.py and lazy.py).
ORDER = (("errors", "config", "lazy"), ("spec",), ("models",), ("inputs",), ("optvis",), ("store",), ("backends",),
         ("serving",), ("jobs",), ("analysis",), ("export",), ("cli",))
ANYTHING_GOES = {"featviz_core", "featviz_core.__main__"}  # the package's face and `python -m featviz_core`
MODULE_LINES = 250  # every module has fewer lines than this
FUNCTION_LINES = 40  # every function (def line to its last line, docstring included) has fewer than this


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module, dotted (only modules of PACKAGES are kept)
    names: tuple[str, ...]  # the names taken from it (`from target import a, b`); () for `import target`
    path: str  # the importing file, relative to the repository
    line: int


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _files() -> dict[str, Path]:
    """Module name -> file, for every module of PACKAGES."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _scripts() -> list[Path]:
    paths = []
    for name in UI_SCRIPTS:
        where = ROOT / name
        paths += sorted(where.rglob("*.py")) if where.is_dir() else [where]
    return paths


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _base_package(module: str, path: Path, level: int) -> str:
    """What `from .` (level 1), `from ..` (level 2), ... means inside `module`."""
    parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    return ".".join(parts[:len(parts) - (level - 1)])


def _imports_in(module: str, path: Path) -> list[Import]:
    known = _files()
    found = []
    for node in ast.walk(_tree(path)):  # every import, function-level ones too
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    found.append(Import(module, alias.name, (), _rel(path), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                target = ".".join(p for p in (_base_package(module, path, node.level), target) if p)
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in known:  # `from .pkg import name`, name a module: an import of pkg.name
                    found.append(Import(module, submodule, (), _rel(path), node.lineno))
                elif target in known:
                    found.append(Import(module, target, (alias.name,), _rel(path), node.lineno))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "lazy_names":
            found += _lazy_imports(module, path, node)
    return found


def _lazy_imports(module: str, path: Path, call: ast.Call) -> list[Import]:
    """A package face's `lazy_names(__name__, {".card": "LoadedModel", ...})` (featviz_core/lazy.py): each
    entry is the import `from .card import LoadedModel`, made when the name is first read."""
    found = []
    for key, value in zip(call.args[1].keys, call.args[1].values):
        relative = key.value
        level = len(relative) - len(relative.lstrip("."))
        target = ".".join(p for p in (_base_package(module, path, level), relative.lstrip(".")) if p)
        assert target in _files(), f"{_rel(path)}:{key.lineno}: lazy_names names no module {relative!r}"
        found.append(Import(module, target, tuple(value.value.split()), _rel(path), key.lineno))
    return found


@cache
def _graph() -> tuple[Import, ...]:
    return tuple(edge for module, path in _files().items() for edge in _imports_in(module, path))


def _cycles(edges: tuple[Import, ...]) -> list[list[Import]]:
    """One cycle (as its import statements) through each strongly connected group of modules."""
    after: dict[str, dict[str, Import]] = {}
    for edge in edges:
        after.setdefault(edge.source, {}).setdefault(edge.target, edge)
    groups, seen = [], set()
    for start in sorted(after):
        if start in seen:
            continue
        reach = _reachable(after, start)
        group = {m for m in reach if start in _reachable(after, m)}
        if start in group and (len(group) > 1 or start in after.get(start, {})):
            seen |= group
            groups.append(_cycle_through(after, start, group))
    return groups


def _reachable(after: dict[str, dict[str, Import]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in after.get(todo.pop(), {}):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _cycle_through(after: dict[str, dict[str, Import]], start: str, group: set[str]) -> list[Import]:
    """The shortest path from `start` back to itself inside `group` (breadth first)."""
    came: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for module in frontier:
            for target, edge in sorted(after.get(module, {}).items()):
                if target == start:
                    path = [edge]
                    while path[0].source != start:
                        path.insert(0, came[path[0].source])
                    return path
                if target in group and target not in came:
                    came[target] = edge
                    nxt_frontier.append(target)
        frontier = nxt_frontier
    raise AssertionError(f"no cycle through {start}")


def _rank(module: str) -> int | None:
    """Where a featviz_core module stands in ORDER; None for featviz_core's top level and __main__."""
    if module in ANYTHING_GOES:
        return None
    parts = module.split(".")
    stage = parts[1] if len(parts) > 1 else ""
    for rank, names in enumerate(ORDER):
        if stage in names:
            return rank
    return -1  # not in the order at all


def _listing(title: str, lines: list[str]) -> str:
    return f"{title} ({len(lines)}):\n  " + "\n  ".join(lines)


def test_no_import_cycles():
    cycles = _cycles(_graph())
    lines = [" -> ".join([c[0].source] + [e.target for e in c]) + "\n      "
             + "\n      ".join(f"{e.path}:{e.line}: {e.source} imports {e.target}" for e in c) for c in cycles]
    assert not cycles, _listing("Import cycles between modules (function-level imports count)", lines)


def test_arrows_only_point_down_the_package_order():
    order = "  ->  ".join(", ".join(names) for names in ORDER)
    bad = []
    for edge in _graph():
        if not edge.source.startswith("featviz_core") or edge.source in ANYTHING_GOES:
            continue
        source, target = _rank(edge.source), _rank(edge.target)
        if source == -1:
            bad.append(f"{edge.path}:{edge.line}: {edge.source} is in no package of the order")
        elif edge.target.startswith("featviz_ui"):
            bad.append(f"{edge.path}:{edge.line}: {edge.source} imports the dashboard ({edge.target})")
        elif target is None or target == -1 or target > source:
            bad.append(f"{edge.path}:{edge.line}: {edge.source} imports {edge.target}, which is above it")
    bad = sorted(set(bad))
    assert not bad, _listing(f"Imports pointing up the package order ({order}; featviz_core/__init__.py "
                             "and __main__.py may import anything)", bad)


def _sources() -> list[Path]:
    return sorted(set(_files().values())) + _scripts()


def test_every_module_is_short():
    long = [f"{_rel(p)}:1: {n} lines" for p in _sources()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) >= MODULE_LINES]
    assert not long, _listing(f"Modules of {MODULE_LINES} lines or more", long)


def test_every_function_is_short():
    long = []
    for path in _sources():
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines >= FUNCTION_LINES:
                    long.append(f"{_rel(path)}:{node.lineno}: {node.name}() has {lines} lines")
    assert not long, _listing(f"Functions of {FUNCTION_LINES} lines or more (def to last line)", long)


def _private(name: str) -> bool:
    return any(part.startswith("_") and not (part.startswith("__") and part.endswith("__"))
               for part in name.split("."))


def _private_uses(path: Path, module: str | None) -> list[str]:
    """featviz_core names starting with `_` that a dashboard file imports, or reads from a module it imported."""
    bad, core_aliases = [], set()
    tree = _tree(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "featviz_core":
                    core_aliases.add(alias.asname or alias.name.split(".")[0])
                    if _private(alias.name):
                        bad.append(f"{_rel(path)}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level and module:
                target = ".".join(p for p in (_base_package(module, path, node.level), target) if p)
            if target.split(".")[0] != "featviz_core":
                continue
            for alias in node.names:
                if _private(target) or _private(alias.name):
                    bad.append(f"{_rel(path)}:{node.lineno}: from {target} import {alias.name}")
                core_aliases.add(alias.asname or alias.name)  # may be a module: its attributes are checked
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in core_aliases):
            bad.append(f"{_rel(path)}:{node.lineno}: {node.value.id}.{node.attr}")
    return bad


def test_the_dashboard_uses_only_public_names_of_featviz_core():
    ui = {m: p for m, p in _files().items() if m.startswith("featviz_ui")}
    bad = [b for m, p in ui.items() for b in _private_uses(p, m)]
    bad += [b for p in _scripts() for b in _private_uses(p, None)]
    assert not bad, _listing("featviz_ui, pages/ and app.py using a _private name of featviz_core", sorted(bad))


ENVIRONMENT = ("environ", "environb", "getenv", "getenvb")


def _import_time_nodes(tree: ast.Module):
    """What runs when the module is imported: everything but the bodies of functions and lambdas (their
    decorators and default values do run; class bodies run too)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo += getattr(node, "decorator_list", []) + node.args.defaults
            todo += [d for d in node.args.kw_defaults if d is not None]
            continue
        yield node
        todo += list(ast.iter_child_nodes(node))


def _environment_reads(tree: ast.Module) -> list[ast.AST]:
    """`os.environ` / `os.getenv` (or `environ` / `getenv` taken `from os import`) used at import time."""
    taken = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             and node.module == "os" for a in node.names if a.name in ENVIRONMENT}
    return [node for node in _import_time_nodes(tree)
            if (isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT
                and isinstance(node.value, ast.Name) and node.value.id == "os")
            or (isinstance(node, ast.Name) and node.id in taken)]


def test_no_module_reads_the_environment_at_import_time():
    bad = sorted({f"{_rel(path)}:{node.lineno}: {ast.unparse(node)}"
                  for path in _files().values() for node in _environment_reads(_tree(path))})
    assert not bad, _listing("Environment read at import time (read it when called, as featviz_core/config.py "
                             "does)", bad)


def test_the_checks_see_the_code():
    """A guard for the checks themselves: they find the packages, the import graph and the order."""
    modules = _files()
    assert "featviz_core.errors" in modules and "featviz_ui" in modules and len(modules) > 40
    edges = {(e.source, e.target) for e in _graph()}
    assert ("featviz_core", "featviz_core.errors") in edges  # `from .errors import FeatvizError`
    assert any(s.startswith("featviz_ui") and t.startswith("featviz_core") for s, t in edges)
    assert _rank("featviz_core.errors") == 0 and _rank("featviz_core.cli.main") == len(ORDER) - 1
    assert _base_package("featviz_core.jobs.runner", ROOT / "featviz_core/jobs/runner.py", 2) == "featviz_core"
    assert _base_package("featviz_core.spec", ROOT / "featviz_core/spec/__init__.py", 1) == "featviz_core.spec"


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The checkers on made-up input: a cycle and a self-import, private names, environment reads."""
    edges = (Import("a", "b", (), "a.py", 1), Import("b", "c", (), "b.py", 2), Import("c", "a", (), "c.py", 3),
             Import("c", "d", (), "c.py", 4), Import("d", "d", (), "d.py", 5), Import("e", "a", (), "e.py", 6))
    assert [[e.source for e in cycle] for cycle in _cycles(edges)] == [["a", "b", "c"], ["d"]]
    page = tmp_path / "page.py"
    page.write_text("import featviz_core.jobs as jobs\nfrom featviz_core.models._registry import add\n"
                    "from featviz_core.config import _whole, __doc__\nfrom featviz_core import config\n"
                    "def f():\n    return config._cap(), jobs.runner, config.__name__\n")
    assert [b.split(": ", 1)[1] for b in _private_uses(page, None)] == [
        "from featviz_core.models._registry import add", "from featviz_core.config import _whole", "config._cap"]
    tree = ast.parse("import os\nfrom os import environ as env\nA = os.environ.get('A')\n"
                     "def f(b=os.getenv('B')):\n    return os.environ['C'], env['D']\n"
                     "class K:\n    e = env.get('E')\n")
    assert sorted(ast.unparse(n) for n in _environment_reads(tree)) == ["env", "os.environ", "os.getenv"]
