"""The package's layers (docs/design.md): no import cycle, rectlab imported at module level.

lint-imports checks that each module imports only from its own layer and the layers below (the contract in
pyproject.toml). These tests check what that contract leaves open: that the module-level import graph of
``src/rectlab`` has no cycle at all, and that no module dodges one by importing rectlab inside a function
(the CLI, which loads each command's handler when the command runs, excepted). A function-level import of a
third-party module, for an optional or slow dependency, carries a comment that says why.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "rectlab"
# Modules that load rectlab's own modules (and so torch) only when needed, so that `import rectlab`,
# `rectlab --version`, `--help` and `rectlab list` answer at once:
LAZY_ALLOWED = {
    "rectlab",  # the lazy top-level surface (`rectlab.models`, `rectlab.get_activation`)
    "rectlab.cli.main",  # imports the handler of the command given, and plugins, when that command runs
    "rectlab.cli.listing",  # answers from catalog.json unless plugins may add names
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p): p for p in sorted(root.rglob("*.py"))}


def _target(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _runs_at_import(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements executed when the module is imported: the body, into if/try/with blocks and class bodies,
    not into functions, and not into ``if TYPE_CHECKING:`` blocks."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(stmt.test):
                yield from _runs_at_import(stmt.body)
            yield from _runs_at_import(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody):
                yield from _runs_at_import(block)
        elif isinstance(stmt, (ast.With, ast.ClassDef)):
            yield from _runs_at_import(stmt.body)


def imported(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that an import statement loads (``from pkg import sub`` loads ``pkg.sub``)."""
    out = set()
    if isinstance(node, ast.ImportFrom):
        target = _target(node, importer, is_package)
        for alias in node.names:
            if f"{target}.{alias.name}" in known:
                out.add(f"{target}.{alias.name}")
            elif target in known:
                out.add(target)
    else:
        out |= {alias.name for alias in node.names if alias.name in known}
    return out


def import_graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules its import runs; importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``
    first, so an edge to a module is an edge to its packages too (those the importer is not inside)."""
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for stmt in _runs_at_import(tree.body):
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                edges |= imported(stmt, name, is_package, known)
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
        for target in list(edges):
            parts = target.split(".")
            edges |= {".".join(parts[:i]) for i in range(1, len(parts))} - own
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def function_level_imports(path: Path) -> Iterator[tuple[int, ast.Import | ast.ImportFrom]]:
    tree = ast.parse(path.read_text(), str(path))
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    yield node.lineno, node


def test_the_module_level_import_graph_has_no_cycle() -> None:
    known = modules()
    graph = import_graph(known)
    assert len(graph) > 100 and "rectlab.training.loop" in graph["rectlab.study.record"]
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "src" / "demo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a  # inside a function: not an edge\n")
    (pkg / "sub" / "c.py").write_text("from ..a import x\n")
    known = {".".join(p.relative_to(tmp_path / "src").with_suffix("").parts).removesuffix(".__init__"): p
             for p in pkg.rglob("*.py")}  # fmt: skip
    assert cycles(import_graph(known)) == []
    (pkg / "a.py").write_text("from .sub import c\n")  # a -> c (and its package) -> a
    (pkg / "sub" / "__init__.py").write_text("from . import c\n")
    assert cycles(import_graph(known)) == [["demo.a", "demo.sub", "demo.sub.c"]]


@pytest.mark.parametrize("name", sorted(n for n in modules() if n not in LAZY_ALLOWED))
def test_rectlab_is_imported_at_module_level(name: str) -> None:
    path = modules()[name]
    lines = path.read_text().splitlines()
    inside = []
    for lineno, node in function_level_imports(path):
        target = _target(node, name, path.name == "__init__.py") if isinstance(node, ast.ImportFrom) else ""
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [target]
        if any(n == "rectlab" or n.startswith("rectlab.") for n in names):
            inside.append(f"{path.name}:{lineno}: {lines[lineno - 1].strip()}")
        elif "#" not in lines[lineno - 1] and "#" not in lines[lineno - 2]:
            inside.append(f"{path.name}:{lineno}: no comment says why it is imported here: {lines[lineno - 1].strip()}")
    assert inside == []
