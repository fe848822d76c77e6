"""Tests say what they are: every test module has one kind (library, site or content, tests/kinds.py),
every collected item carries exactly one kind marker, and only `site` items take a site-build fixture."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from kinds import KINDS, MODULE_KINDS, SITE_BUILD_FIXTURES, SNIPPET_KIND, kinds_of

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def test_every_test_module_has_a_kind_and_every_entry_a_module() -> None:
    modules = {path.stem for path in TESTS.glob("test_*.py")}
    missing = sorted(modules - MODULE_KINDS.keys())
    assert not missing, (f"test modules with no kind: {missing}; add each to MODULE_KINDS in tests/kinds.py "
                         f"as one of {KINDS}")
    stale = sorted(MODULE_KINDS.keys() - modules)
    assert not stale, f"tests/kinds.py names modules that are not in tests/: {stale}"
    assert set(MODULE_KINDS.values()) <= set(KINDS)


def test_the_kinds_are_registered_markers() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    registered = {line.split(":", 1)[0] for line in config["tool"]["pytest"]["ini_options"]["markers"]}
    assert set(KINDS) <= registered


@pytest.mark.parametrize(("module", "explicit", "fixtures", "snippet", "expected"), [
    ("test_data", set(), ("tmp_path",), False, {"library"}),
    ("test_errata", set(), (), False, {"content"}),
    ("test_data", set(), ("tmp_path", "built_site"), False, {"site"}),     # a new test that builds
    ("test_errata", set(), ("any_site",), False, {"site"}),
    ("test_not_in_the_table", set(), (), False, set()),
    ("test_bench", {"content"}, (), False, {"content"}),                   # marked in its file
    ("test_bench", {"content"}, ("zensical_site",), False, {"content", "site"}),  # reported below
    ("README", set(), (), True, {SNIPPET_KIND}),
])
def test_kinds_of(module: str, explicit: set[str], fixtures: tuple[str, ...], snippet: bool,
                  expected: set[str]) -> None:
    assert kinds_of(module, explicit, fixtures, snippet) == expected


def test_every_collected_item_has_one_kind_and_only_site_items_build(request: pytest.FixtureRequest) -> None:
    """Over the items of this session (after `-m`): under `-m "not site"` this is the check that nothing
    selected takes a fixture that builds the site."""
    problems = []
    for item in request.session.items:
        kinds = sorted({mark.name for mark in item.iter_markers() if mark.name in KINDS})
        if len(kinds) != 1:
            problems.append(f"{item.nodeid}: kinds {kinds or 'none'}")
        builds = SITE_BUILD_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if builds and kinds != ["site"]:
            problems.append(f"{item.nodeid}: takes {sorted(builds)} but is not only `site`")
        if item.path.suffix == ".md" and kinds != [SNIPPET_KIND]:
            problems.append(f"{item.nodeid}: a page snippet that is not `{SNIPPET_KIND}`")
    assert not problems, "\n".join(problems)
