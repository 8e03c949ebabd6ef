"""The layering rules of DESIGN.md and CONVENTIONS.md, checked by walking the source with :mod:`ast`.

What fails this test:

- an import cycle among ``service`` and ``ingest`` modules. The graph holds the imports that run when a
  module is imported: statements at module level (also inside a top-level ``if``/``try``, and in class
  bodies), but not those under ``if TYPE_CHECKING:`` (they never execute) nor those inside functions (they
  run after every module involved has finished importing). Importing ``a.b.c`` also runs ``a.b``'s
  ``__init__``, so an edge goes to each package above the target that is not also above the importer
  (an explicit import of its own package is an edge like any other);
- an import of ``service`` anywhere in ``ingest`` (the dependency runs one way);
- ``from x import _name`` where ``x`` is another project module (a private name is private to its module);
- an import of a route module (one defining ``router = APIRouter(...)``) anywhere but ``service/app.py``,
  whose ``ROUTERS`` list is the one router registry;
- an import of the CLI's root module (``service.cli``, where commands are registered) from one of its
  command modules (``service.cli.*``): they share ``service.cli.shared`` instead;
- an import inside a function without a ``# lazy: <reason>`` comment on its line: imports go at the top of
  the module unless they keep a heavy optional dependency off the import path.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("service", "ingest")
ROUTE_IMPORTERS = frozenset({"service.app"})  # its ROUTERS list is the one router registry
CLI_ROOT = "service.cli"
LAZY_MARK = "# lazy:"


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name of the file the statement is in
    target: str  # the module it imports (resolved to a module or package that exists)
    names: tuple[str, ...]  # for ``from x import a, b``: ("a", "b"); empty for ``import x``
    line: int
    module_level: bool  # runs when the importer is imported (not in a function, not under TYPE_CHECKING)
    type_checking: bool
    lazy_reason: bool  # a ``# lazy:`` comment on one of the statement's lines


class Project:
    """The modules of some top-level packages under ``root`` and every import statement in them."""

    def __init__(self, root: Path, packages: tuple[str, ...] = PACKAGES) -> None:
        self.root = root
        self.packages = packages
        self.files: dict[str, Path] = {}
        for package in packages:
            for path in sorted((root / package).rglob("*.py")):
                self.files[_module_name(root, path)] = path
        self.imports = [imp for name in self.files for imp in self._imports_of(name)]

    def is_package(self, module: str) -> bool:
        return self.files.get(module, Path()).name == "__init__.py"

    def resolve(self, module: str, name: str | None = None) -> str | None:
        """The project module that ``from module import name`` (or ``import module``) loads, if any."""
        if name is not None and f"{module}.{name}" in self.files:
            return f"{module}.{name}"
        return module if module in self.files else None

    def _imports_of(self, importer: str) -> Iterator[Import]:
        path = self.files[importer]
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source, filename=str(path))
        for node, module_level, type_checking in _walk(tree, in_function=False, type_checking=False):
            lazy = any(LAZY_MARK in lines[i - 1] for i in range(node.lineno, (node.end_lineno or node.lineno) + 1))
            for target, names in self._targets(importer, node):
                yield Import(importer, target, names, node.lineno, module_level, type_checking, lazy)

    def _targets(self, importer: str, node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, tuple[str, ...]]]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in self.packages:
                    yield alias.name, ()
            return
        base = node.module or ""
        if node.level:
            parts = importer.split(".")
            keep = len(parts) - node.level + (1 if self.is_package(importer) else 0)
            base = ".".join(parts[:keep] + ([base] if base else []))
        if base.split(".")[0] not in self.packages:
            return
        plain: list[str] = []
        for alias in node.names:
            submodule = self.resolve(base, alias.name)
            if submodule is not None and submodule != base:
                yield submodule, ()
            else:
                plain.append(alias.name)
        if plain:
            yield base, tuple(plain)

    def module_graph(self) -> dict[str, set[str]]:
        """Edges ``importer -> imported`` for the imports that run at import time."""
        graph: dict[str, set[str]] = {name: set() for name in self.files}
        for imp in self.imports:
            if not imp.module_level:
                continue
            # the packages above the importer are already importing when it runs: no implicit edge to them
            own_packages = set(_ancestors(imp.importer))
            implicit = [p for p in _ancestors(imp.target) if p not in own_packages]
            for target in [imp.target, *implicit]:
                if target in self.files and target != imp.importer:
                    graph[imp.importer].add(target)
        return graph

    def route_modules(self) -> set[str]:
        """Modules that define a FastAPI router at module level (``router = APIRouter(...)``)."""
        found = set()
        for name, path in self.files.items():
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                    func = node.value.func
                    if isinstance(func, ast.Name) and func.id == "APIRouter":
                        found.add(name)
        return found


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(
    node: ast.AST, in_function: bool, type_checking: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    """Every import statement under ``node``, with whether it runs at import time and is TYPE_CHECKING-only."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, not in_function and not type_checking, type_checking
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, True, type_checking)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for statement in child.body:
                yield from _walk(ast.Module(body=[statement], type_ignores=[]), in_function, True)
            for statement in child.orelse:
                yield from _walk(ast.Module(body=[statement], type_ignores=[]), in_function, type_checking)
        else:
            yield from _walk(child, in_function, type_checking)


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components, key=lambda c: (-len(c), c))


def service_imports_in_ingest(project: Project) -> list[str]:
    return [
        f"{imp.importer}:{imp.line} imports {imp.target}"
        for imp in project.imports
        if imp.importer.split(".")[0] == "ingest" and imp.target.split(".")[0] == "service"
    ]


def private_imports(project: Project) -> list[str]:
    return [
        f"{imp.importer}:{imp.line} imports {name} from {imp.target}"
        for imp in project.imports
        if imp.target != imp.importer
        for name in imp.names
        if name.startswith("_") and not name.startswith("__")
    ]


def route_imports(project: Project, allowed: frozenset[str] = ROUTE_IMPORTERS) -> list[str]:
    routes = project.route_modules()
    return [
        f"{imp.importer}:{imp.line} imports route module {imp.target}"
        for imp in project.imports
        if imp.target in routes and imp.importer not in allowed
    ]


def cli_root_imports(project: Project, root: str = CLI_ROOT) -> list[str]:
    return [
        f"{imp.importer}:{imp.line} imports the CLI root {root}"
        for imp in project.imports
        if imp.importer.startswith(f"{root}.") and imp.target == root
    ]


def unexplained_lazy_imports(project: Project) -> list[str]:
    return [
        f"{imp.importer}:{imp.line} imports {imp.target} inside a function without '{LAZY_MARK} <reason>'"
        for imp in project.imports
        if not imp.module_level and not imp.type_checking and not imp.lazy_reason
    ]


def _lazy_imports_of_any_module(root: Path, packages: tuple[str, ...]) -> list[str]:
    """Function-level imports of anything (project or third party) without a reason."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            source = path.read_text()
            lines = source.splitlines()
            for node, module_level, type_checking in _walk(ast.parse(source), False, False):
                if module_level or type_checking:
                    continue
                span = range(node.lineno, (node.end_lineno or node.lineno) + 1)
                if not any(LAZY_MARK in lines[i - 1] for i in span):
                    found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.fixture(scope="module")
def project() -> Project:
    return Project(REPO)


def test_no_import_cycles(project: Project) -> None:
    cycles = import_cycles(project.module_graph())
    assert cycles == [], "import cycles (module-level imports):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_ingest_never_imports_service(project: Project) -> None:
    assert service_imports_in_ingest(project) == []


def test_no_private_name_is_imported_from_another_module(project: Project) -> None:
    assert private_imports(project) == []


def test_only_the_app_and_the_registry_import_route_modules(project: Project) -> None:
    assert route_imports(project) == []


def test_cli_commands_never_import_the_cli_root(project: Project) -> None:
    assert CLI_ROOT in project.files and any(name.startswith(f"{CLI_ROOT}.") for name in project.files)
    assert cli_root_imports(project) == []


def test_every_import_inside_a_function_says_why_it_is_lazy() -> None:
    assert _lazy_imports_of_any_module(REPO, PACKAGES) == []


def test_the_route_modules_are_found(project: Project) -> None:
    # guards the rule above against a finder that finds nothing (and so can never fail)
    assert {"service.routes.query", "service.routes.documents", "service.routes.health"} <= project.route_modules()


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_reports_a_deliberate_cycle_and_each_broken_rule(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "service/__init__.py": "",
            "service/a.py": "from service.b import thing\n",
            "service/b.py": "from service import c\n",
            "service/c.py": "import service.a\n",
            "service/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from service.late import X\n",
            "service/late.py": "from service.typed import Y\n",
            "service/routes/__init__.py": "",
            "service/routes/things.py": "from fastapi import APIRouter\nrouter = APIRouter()\n",
            "service/user.py": "from service.routes.things import router\nfrom service.a import _helper\n"
            "def f():\n    import json\n    import os  # lazy: only on this path\n",
            "service/cli/__init__.py": "from service.cli import run\nVALUE = 1\n",
            "service/cli/run.py": "from service.cli import VALUE\n",
            "ingest/__init__.py": "",
            "ingest/low.py": "def g():\n    from service.a import thing  # lazy: test\n",
        },
    )
    project = Project(tmp_path)
    # a -> b -> c -> a is reported; typed -> late is TYPE_CHECKING-only, so typed <-> late is no cycle
    assert import_cycles(project.module_graph()) == [
        ["service.a", "service.b", "service.c"],
        ["service.cli", "service.cli.run"],  # a module importing its own package, which imports it
    ]
    assert service_imports_in_ingest(project) == ["ingest.low:2 imports service.a"]
    assert private_imports(project) == ["service.user:2 imports _helper from service.a"]
    assert route_imports(project) == ["service.user:1 imports route module service.routes.things"]
    assert cli_root_imports(project) == ["service.cli.run:1 imports the CLI root service.cli"]
    assert _lazy_imports_of_any_module(tmp_path, PACKAGES) == ["service/user.py:4: import json"]


def test_a_cycle_through_a_package_init_is_found(tmp_path: Path) -> None:
    # importing pkg.sub runs pkg/__init__.py first: that import closes the loop
    _write(
        tmp_path,
        {
            "service/__init__.py": "",
            "service/pkg/__init__.py": "from service.pkg.impl import X\n",
            "service/pkg/impl.py": "from service.other import Y\nX = 1\n",
            "service/pkg/free.py": "Z = 3\n",
            "service/other.py": "from service.pkg.free import Z\nY = 2\n",
        },
    )
    assert import_cycles(Project(tmp_path).module_graph()) == [["service.other", "service.pkg", "service.pkg.impl"]]
