"""The layering of docs/architecture.md, checked on the source: no import cycles (lazy
imports included), each layer imports only layers below it, the board side loads without
the host stack, and procedures reach the board only through ``Board``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("memhw", "firmware_protocol")

#: modules of the host stack: the board side must never need them
HOST = ("memhw.board", "memhw.link", "memhw.connection", "memhw.session", "memhw.transport", "memhw.codes",
        "memhw.programming", "memhw.calibration", "memhw.nn", "memhw.cli", "memhw.report", "memhw.demo",
        "memhw.limits", "memhw.targets")
#: neutral modules below both stacks, and the board side
BELOW_BOTH = ("memhw.conversions", "memhw.algorithms", "memhw.faults", "memhw.errors", "memhw.info",
              "memhw.units", "memhw._version")
BOARD_SIDE = ("memhw.peer", "memhw.mock")
PROCEDURES = ("memhw.programming", "memhw.calibration", "memhw.nn")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, at the top or inside functions (lazily), but not
    under ``if TYPE_CHECKING``."""
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()

    def absolute(level: int, module: str | None) -> str:
        if level == 0:
            return module or ""
        base = name.split(".")[: len(name.split(".")) - (0 if is_pkg else 1) - (level - 1)]
        return ".".join(base + ([module] if module else []))

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            base = absolute(node.level, node.module)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _in(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_no_import_cycles_lazy_imports_included() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("layer, forbidden", [
    (("firmware_protocol",), ("memhw",)),
    (BELOW_BOTH, HOST + BOARD_SIDE),
    (BOARD_SIDE, HOST),
    (("memhw.transport", "memhw.link", "memhw.board", "memhw.codes"), BOARD_SIDE + PROCEDURES),
])
def test_each_layer_imports_only_layers_below_it(layer, forbidden) -> None:
    bad = sorted((m, d) for m, deps in GRAPH.items() if _in(m, layer) for d in deps
                 if _in(d, forbidden) and d != "memhw")
    assert not bad, f"upward imports: {bad}"


def test_the_board_side_loads_without_the_host_stack() -> None:
    code = ("import sys, memhw.mock.emulator, memhw.peer; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('memhw'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not [m for m in loaded if _in(m, HOST)], loaded
    assert "h5py" not in subprocess.run([sys.executable, "-c", code.replace("memhw')", "h5py')")],
                                        capture_output=True, text=True, check=True).stdout


def test_procedures_reach_the_board_only_through_board_methods() -> None:
    """No procedure calls ``link.request`` / ``link.send_only`` or a Board's private helpers."""
    offenders = []
    for name, path in MODULES.items():
        if not _in(name, PROCEDURES + ("memhw.cli", "memhw.demo", "memhw.report")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "link" and node.attr in ("request", "send_only"):
                offenders.append(f"{name}:{node.lineno} link.{node.attr}")
            if isinstance(node, ast.Attribute) and node.attr in ("_gain", "_request", "_announce") \
                    and not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                offenders.append(f"{name}:{node.lineno} .{node.attr}")
    assert not offenders, offenders
