"""The package layout: layers import only downwards, and no module imports itself in a circle.

Imports are read from the source (every ``import`` and ``from … import`` anywhere in a module,
those inside functions too), so a lazy import cannot hide a cycle. The order, lowest first, is the
one the README draws:

    kg → crs (config, io) → crs.data → crs.text → crs.rec → crs.gen → crs.serve → crs.eval → crs.ui
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# On top: crs.evaluate, the harness's command line (`python -m crs.evaluate`); crs.app, the Gradio
# shell (`python app.py`, `crs chat`); crs.cli, the `crs` console script over every entry point.
LAYERS = ["kg", "crs", "crs.paths", "crs.data", "crs.text", "crs.rec", "crs.gen", "crs.serve", "crs.eval", "crs.ui", "crs.evaluate",
          "crs.app", "crs.cli"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in ("kg", "crs"):
        for path in sorted((REPO / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def layer_of(name: str) -> int:
    best = -1
    for index, layer in enumerate(LAYERS):
        if name == layer or name.startswith(layer + "."):
            best = index if best < 0 or len(layer) > len(LAYERS[best]) else best
    return best


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def test_every_module_belongs_to_a_layer():
    assert all(layer_of(name) >= 0 for name in graph())


def test_layers_import_only_downwards():
    wrong = []
    for name, targets in graph().items():
        for target in targets:
            if target == "crs" or name == "crs":  # the package root holds only the version
                continue
            if layer_of(target) > layer_of(name):
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_kg_imports_nothing_from_crs():
    assert [f"{n} -> {t}" for n, targets in graph().items() if n.startswith("kg") for t in targets if t.startswith("crs")] == []


def test_no_module_import_cycle():
    edges = graph()
    # Package __init__ modules that only re-export their children are not cycle members.
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target.startswith(node + ".") or node.startswith(target + "."):
                continue  # a package and its own submodules
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif state.get(target) is None:
                visit(target, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert cycles == []


def test_the_checker_sees_lazy_imports(tmp_path):
    """The reader finds an import inside a function, so the cycle test cannot be fooled by one."""
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from crs.serve.pipeline import CRS\n    return CRS\n", encoding="utf-8")
    assert imports_of("crs.rec.lazy", source, {"crs.serve.pipeline", "crs.serve", "crs"}) == {"crs.serve.pipeline"}
