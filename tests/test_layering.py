"""Layering of the project's own packages, read from their source with ``ast``: no import cycles between modules
and no arrow pointing up a layer (``training`` is plain Python under everything; ``serving`` stands on
``training`` alone; nothing but the CLI imports ``newsforge``).

An import anywhere in a module counts: in a function body (it runs when the function does) and under
``if TYPE_CHECKING:`` (an arrow a reader and the type checker follow; issue 23 found a cycle closed by one).
``benchmarks/import_graph.py`` prints the same graph's summary.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("newsforge", "orchestration", "assets", "training", "serving")
#: The top-level names a package must not import: its own packages' and external ones (``dagster``).
FORBIDDEN = {
    "training": ("assets", "orchestration", "serving", "newsforge", "dagster"),
    "serving": ("orchestration", "assets", "newsforge"),
    "assets": ("newsforge",),
    "orchestration": ("newsforge",),
}


@dataclass(frozen=True)
class Import:
    """``source`` imports ``target`` at ``path:line``; ``target`` is a project module (``training.ctr.config``)
    or, for anything else, the top-level name imported (``dagster``)."""

    source: str
    target: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} imports {self.target}"


def project_modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Module name -> source file of every module of ``packages`` (a package is its ``__init__.py``)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The longest prefix of the dotted ``name`` that is a project module, else its top-level name."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return parts[0]


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: dict[str, Path]):
    if isinstance(node, ast.Import):
        yield from (_resolve(alias.name, modules) for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: from the module's own package, one level up per extra dot
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[:len(package) - node.level + 1]
        base = ".".join(package + ([base] if base else []))
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield submodule if submodule in modules else _resolve(base, modules)


def import_list(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> list[Import]:
    """Every import of every module of ``packages``, sorted by file and line (a module importing itself left out)."""
    modules = project_modules(root, packages)
    found = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))):
            for target in _imported(node, module, path.name == "__init__.py", modules):
                if target != module:
                    found.append(Import(module, target, str(path.relative_to(root)), node.lineno))
    return sorted(set(found), key=lambda i: (i.path, i.line, i.target))


def graph(imports: list[Import], level: str = "module") -> dict[str, set[str]]:
    """Node -> the nodes it imports, between project modules (``level="module"``) or their top-level packages
    (``level="package"``); imports of anything outside the project are left out."""
    packages = {i.source.split(".")[0] for i in imports}
    edges: dict[str, set[str]] = defaultdict(set)
    for i in imports:
        if i.target.split(".")[0] in packages:
            source, target = (i.source, i.target) if level == "module" else (
                i.source.split(".")[0], i.target.split(".")[0])
            if source != target:
                edges[source].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:  # recursion depth <= the longest import chain, a few dozen
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(edges.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(set(edges) | {t for targets in edges.values() for t in targets}):
        if node not in index:
            visit(node)
    return sorted(found, key=lambda c: (-len(c), c))


def upward_arrows(imports: list[Import], forbidden: dict[str, tuple[str, ...]] = FORBIDDEN) -> list[Import]:
    """The imports a package's row of ``forbidden`` rules out (``dagster_mlflow`` counts as ``dagster``)."""
    def top(name: str) -> str:
        name = name.split(".")[0]
        return "dagster" if name.startswith("dagster_") else name

    return [i for i in imports if top(i.target) in forbidden.get(top(i.source), ())]


def describe(cycle: list[str], imports: list[Import]) -> str:
    """A cycle's modules and the imports that close it, one per line."""
    members = set(cycle)
    inside = [f"    {i}" for i in imports if i.source in members and i.target in members]
    return " <-> ".join(cycle) + "\n" + "\n".join(inside)


# --- the project ---------------------------------------------------------------------------------------------


def test_no_package_imports_a_layer_above_it():
    arrows = upward_arrows(import_list())
    assert not arrows, "imports against the layering (see FORBIDDEN):\n" + "\n".join(map(str, arrows))


def test_no_import_cycles_between_modules():
    imports = import_list()
    found = cycles(graph(imports))
    assert not found, "import cycles (move the shared code to the module it belongs to):\n" + "\n".join(
        describe(c, imports) for c in found)


# --- the graph builder on a made-up project ----------------------------------------------------------------


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_imports_in_functions_and_under_type_checking_count(tmp_path):
    root = _project(tmp_path, {
        "low/__init__.py": "",
        "low/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from high import b\n",
        "low/c.py": "def f():\n    import dagster\n    from high.b import g\n",
        "high/__init__.py": "",
        "high/b.py": "from low import a, c\nfrom . import d\nfrom .d import x\n",
        "high/d.py": "",
    })
    imports = import_list(root, ("low", "high"))
    assert {(i.source, i.target) for i in imports} == {
        ("low.a", "typing"), ("low.a", "high.b"), ("low.c", "dagster"), ("low.c", "high.b"),
        ("high.b", "low.a"), ("high.b", "low.c"), ("high.b", "high.d")}
    assert [str(i) for i in upward_arrows(imports, {"low": ("high", "dagster")})] == [
        "low/a.py:3: low.a imports high.b", "low/c.py:2: low.c imports dagster", "low/c.py:3: low.c imports high.b"]
    assert graph(imports, "package") == {"low": {"high"}, "high": {"low"}}
    assert cycles(graph(imports)) == [["high.b", "low.a", "low.c"]]


def test_cycles_are_found_and_named_with_the_imports_that_close_them(tmp_path):
    root = _project(tmp_path, {
        "p/__init__.py": "from p.a import A\n",  # a package importing its own module is no cycle
        "p/a.py": "import p.b\n",
        "p/b.py": "from p.c import C\n",
        "p/c.py": "from p import a\n",
        "p/d.py": "import p.a\n",
    })
    imports = import_list(root, ("p",))
    found = cycles(graph(imports))
    assert found == [["p.a", "p.b", "p.c"]]
    assert describe(found[0], imports) == (
        "p.a <-> p.b <-> p.c\n    p/a.py:1: p.a imports p.b\n    p/b.py:1: p.b imports p.c\n"
        "    p/c.py:1: p.c imports p.a")
