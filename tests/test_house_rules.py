"""The house rules of the source tree, checked on its syntax (nothing is imported).

* layering: ``kg`` imports neither ``graphrec`` nor ``alignment``; ``graphrec`` never imports
  ``alignment`` (which plugs in through the ``graphrec.models`` entry point);
* no import cycles between the project's modules, counting imports inside functions and the
  package ``__init__`` modules that importing a submodule runs;
* an import of the project's own modules inside a function says why on its line or the line
  above (``# lazy: <reason>``), so a hidden cycle cannot hide behind one;
* a function longer than 80 lines says why on the line above its ``def`` or decorators
  (``# long: <reason>``).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kg", "graphrec", "alignment")
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class ImportEdge:
    importer: str
    target: str
    line: int
    in_function: bool


def _module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


MODULES = _module_files()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imported_names(node: ast.Import | ast.ImportFrom, importer: str) -> list[str]:
    """Project modules an import statement loads: the module itself, its submodules named in
    ``from X import sub`` and every parent package (whose ``__init__`` runs first)."""
    if isinstance(node, ast.Import):
        bases = [alias.name for alias in node.names]
    else:
        if node.level:
            package = importer.split(".") if _is_package(importer) else importer.split(".")[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join(package + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        bases = [base] + [f"{base}.{alias.name}" for alias in node.names]
    loaded = set()
    for base in bases:
        parts = base.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if prefix in MODULES:
                loaded.add(prefix)
    # a module's own parent packages are already running when it is imported
    return sorted(m for m in loaded if not (importer == m or importer.startswith(m + ".")))


def _edges_of(name: str) -> Iterator[ImportEdge]:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))

    def walk(node: ast.AST, in_function: bool) -> Iterator[ImportEdge]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _imported_names(child, name):
                    yield ImportEdge(name, target, child.lineno, in_function)
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            yield from walk(child, inner)

    yield from walk(tree, False)


EDGES = [edge for name in MODULES for edge in _edges_of(name)]


def _lines(name: str) -> list[str]:
    return MODULES[name].read_text(encoding="utf-8").splitlines()


def _has_marker(lines: list[str], line: int, marker: str) -> bool:
    """``marker`` on 1-based ``line`` or the line above it."""
    return any(marker in lines[i] for i in (line - 1, line - 2) if 0 <= i < len(lines))


def _import_says_why(lines: list[str], line: int) -> bool:
    """``# lazy:`` on the import's line or on the comment above its block of imports."""
    index = line - 1
    if "# lazy:" in lines[index]:
        return True
    while index > 0 and lines[index - 1].strip().startswith(("from ", "import ")):
        index -= 1
    return index > 0 and "# lazy:" in lines[index - 1]


def test_the_tree_is_found():
    assert {"kg", "kg.llm", "graphrec", "graphrec.models", "alignment"} <= set(MODULES)
    assert len(EDGES) > 200


@pytest.mark.parametrize(
    "package, forbidden", [("kg", ("graphrec", "alignment")), ("graphrec", ("alignment",))]
)
def test_layering(package, forbidden):
    bad = [
        f"{MODULES[e.importer].relative_to(ROOT)}:{e.line} imports {e.target}"
        for e in EDGES
        if e.importer.split(".")[0] == package and e.target.split(".")[0] in forbidden
    ]
    assert not bad, "\n".join(bad)


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for edge in EDGES:
        graph[edge.importer].add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return components


def test_no_import_cycles():
    assert _cycles() == []


def test_cycle_finder_finds_a_cycle(monkeypatch):
    """The check above can fail: a planted edge back from a low module closes a cycle."""
    planted = ImportEdge("kg.errors", "kg.io", 1, True)
    assert any(e.importer == "kg.io" and e.target == "kg.errors" for e in EDGES)
    monkeypatch.setattr(sys.modules[__name__], "EDGES", [*EDGES, planted])
    assert ["kg.errors", "kg.io"] in _cycles()


def test_function_level_project_imports_say_why():
    bad = [
        f"{MODULES[e.importer].relative_to(ROOT)}:{e.line} imports {e.target} inside a function"
        for e in EDGES
        if e.in_function and not _import_says_why(_lines(e.importer), e.line)
    ]
    assert not bad, "add '# lazy: <reason>' or move the import to module level:\n" + "\n".join(
        sorted(set(bad))
    )


def _long_functions() -> Iterator[str]:
    for name, path in MODULES.items():
        lines = _lines(name)
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            if length > MAX_FUNCTION_LINES and not _has_marker(lines, first - 1, "# long:"):
                yield f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)"


def test_long_functions_say_why():
    bad = sorted(_long_functions())
    assert not bad, "split these or add '# long: <reason>' above the def:\n" + "\n".join(bad)
