"""The packages read top to bottom: no import cycle, and no module imports a layer above its own.

``gdl_ref``, the reference package, knows nothing of ``gdl_site``, the site's tooling; ``gdl_site``
may import any of ``gdl_ref``. The layers of ``gdl_ref``, in reading order (a module may import its own
layer and those before it):

0. ``bounded_io``, ``cli_errors``, ``data``, ``eval_mode``, ``likelihood``, ``records`` -- reading outside files within
   limits, how a command ends on an error, the data sets, the evaluation context, what a log-probability is and the
   JSON round trip of what a run records;
1. ``models`` -- the six families, their registry and shared parts;
2. ``distributed``, ``run_lock``, ``train_state``, ``checkpoint``, ``train`` -- one training loop and its run
   folders;
3. ``sampling``, ``metrics``, ``evaluate`` -- drawing and scoring a trained model;
4. ``lessons`` -- the chapter-1 models, which train and score themselves with the layers before them;
5. ``bench`` -- the benchmark harness and its tables;
6. ``cli`` -- the ``gdl-ref`` command over all of them (it finds ``gdl-ref cards`` through an entry point,
   without importing ``gdl_site``).

Those of ``gdl_site``, above every layer of ``gdl_ref``:

0. ``errors``, ``files`` -- the build's error and the folders it owns;
1. ``cards`` -- the card tools;
2. ``math``, ``embeds``, ``notebooks``, ``page_notebooks``, ``study``, ``taxonomy_table``, ``benchmark_targets``,
   ``benchmarks_figure``, ``benchmarks_page`` -- what the pages are made of;
3. ``prepare``, ``hooks`` -- the build step and the MkDocs hooks that run it.

Every import counts, also one made inside a function to defer its cost: deferring an import does not
change which way the dependency points. The graph is read from the source with ``ast``, so the test
needs nothing imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "gdl_ref"
SITE = SRC / "gdl_site"
OURS = ("gdl_ref", "gdl_site")

LAYERS: dict[str, list[tuple[str, ...]]] = {
    "gdl_ref": [
        ("bounded_io", "cli_errors", "data", "eval_mode", "likelihood", "records"),
        ("models",),
        ("distributed", "run_lock", "train_state", "checkpoint", "train"),
        ("sampling", "metrics", "evaluate"),
        ("lessons",),
        ("bench",),
        ("cli",),
    ],
    "gdl_site": [
        ("errors", "files"),
        ("cards",),
        ("math", "embeds", "notebooks", "page_notebooks", "study", "taxonomy_table", "benchmark_targets",
         "benchmarks_figure", "benchmarks_page"),
        ("prepare", "hooks"),
    ],
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The modules of our packages that ``path`` imports, anywhere in its body, resolved to module names."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] in OURS}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] not in OURS:
                continue
            for alias in node.names:  # `from gdl_ref import data` imports the module gdl_ref.data
                candidate = f"{base}.{alias.name}"
                found.add(candidate if _is_module(candidate) else base)
    return {name for name in found if name != here}


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def layer_of(name: str) -> int:
    """The module's layer; every layer of ``gdl_site`` is above every layer of ``gdl_ref``."""
    package, _, rest = name.partition(".")
    top = rest.split(".")[0]
    offset = len(LAYERS["gdl_ref"]) if package == "gdl_site" else 0
    for index, members in enumerate(LAYERS[package]):
        if top in members:
            return offset + index
    raise AssertionError(f"{name} belongs to no layer: add its top-level name to LAYERS in {__file__}")


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted([*PACKAGE.rglob("*.py"), *SITE.rglob("*.py")])}


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
        if name not in OURS:
            layer_of(name)


def test_no_import_points_up() -> None:
    upward = [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
              for a, targets in graph().items() if a not in OURS
              for b in sorted(targets) if b not in OURS and layer_of(b) > layer_of(a)]
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
    assert "gdl_site.cards.mathml" in imports_of(SITE / "cards" / "__init__.py")


def test_the_reference_package_imports_nothing_of_the_site() -> None:
    found = [f"{a} imports {b}" for a, targets in graph().items() if a.split(".")[0] == "gdl_ref"
             for b in sorted(targets) if b.split(".")[0] == "gdl_site"]
    assert not found, "\n".join(found)
