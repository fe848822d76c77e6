"""The package reads top to bottom: no import cycle, and no module imports a layer above its own.

The layers, in reading order (a module may import its own layer and those before it):

0. ``bounded_io``, ``data``, ``likelihood`` -- reading outside files within limits, the data sets and what a
   log-probability is;
1. ``models`` -- the six families, their registry and shared parts;
2. ``distributed``, ``run_lock``, ``train_state``, ``checkpoint``, ``train`` -- one training loop and its run
   folders;
3. ``sampling``, ``metrics``, ``evaluate`` -- drawing and scoring a trained model;
4. ``lessons`` -- the chapter-1 models, which train and score themselves with the layers before them;
5. ``cards``, ``site``, ``bench`` -- the card tools, the site build and the benchmark harness;
6. ``cli`` -- the ``gdl-ref`` command over all of them.

Every import counts, also one made inside a function to defer its cost: deferring an import does not
change which way the dependency points. The graph is read from the source with ``ast``, so the test
needs nothing imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "gdl_ref"

LAYERS: list[tuple[str, ...]] = [
    ("bounded_io", "data", "likelihood"),
    ("models",),
    ("distributed", "run_lock", "train_state", "checkpoint", "train"),
    ("sampling", "metrics", "evaluate"),
    ("lessons",),
    ("cards", "site", "bench"),
    ("cli",),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The gdl_ref modules that ``path`` imports, anywhere in its body, resolved to module names."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("gdl_ref")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("gdl_ref"):
                continue
            for alias in node.names:  # `from gdl_ref import data` imports the module gdl_ref.data
                candidate = f"{base}.{alias.name}"
                found.add(candidate if _is_module(candidate) else base)
    return {name for name in found if name != here}


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def layer_of(name: str) -> int:
    top = name.split(".")[1] if "." in name else ""
    for index, members in enumerate(LAYERS):
        if top in members:
            return index
    raise AssertionError(f"{name} belongs to no layer: add its top-level name to LAYERS in {__file__}")


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first search (each reported from the module where it was entered)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return found


def test_every_module_has_a_layer() -> None:
    for name in graph():
        if name != "gdl_ref":
            layer_of(name)


def test_no_import_points_up() -> None:
    upward = [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
              for a, targets in graph().items() if a != "gdl_ref"
              for b in sorted(targets) if b != "gdl_ref" and layer_of(b) > layer_of(a)]
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def test_no_import_cycle() -> None:
    edges = graph()
    found = cycles(edges)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b", "a"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_cycle_search_finds_what_it_should(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(edges) == expected


def test_relative_and_from_imports_resolve() -> None:
    """The graph sees `from gdl_ref import x`, `from .x import y` and imports inside functions."""
    assert "gdl_ref.data" in imports_of(PACKAGE / "models" / "registry.py")
    assert "gdl_ref.cards.mathml" in imports_of(PACKAGE / "cards" / "__init__.py")
