"""Shared fixtures: a hermetic home and cache, the GPU skip rule and one strict build of the site per test session."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

# Hermetic: the session runs as on a machine that never ran the project. Its home, its caches (the digit
# classifier of gdl_ref.metrics, matplotlib's font cache, Jupyter's runtime files) and GDL_REF_CACHE live in
# one empty temporary folder, set before anything imports gdl_ref; subprocesses (the CLI, the site build,
# notebook kernels) inherit it. Nothing is read from, or written to, the user's own home.
SESSION_HOME = Path(tempfile.mkdtemp(prefix="gdl-ref-test-home-"))
atexit.register(shutil.rmtree, SESSION_HOME, ignore_errors=True)
for _name, _sub in (("HOME", ""), ("GDL_REF_CACHE", "gdl-ref-cache"), ("XDG_CACHE_HOME", ".cache"),
                    ("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                    ("MPLCONFIGDIR", ".config/matplotlib"), ("IPYTHONDIR", ".ipython"),
                    ("JUPYTER_RUNTIME_DIR", ".local/share/jupyter/runtime")):
    os.environ[_name] = str(SESSION_HOME / _sub)
    (SESSION_HOME / _sub).mkdir(parents=True, exist_ok=True)

# Small models on a small CPU: one thread per process avoids oversubscription (two processes of the
# distributed test, notebook kernels and CLI subprocesses inherit the variable).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402  (after the thread setting, which torch reads at import)

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

from kinds import KINDS, kinds_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# The builds of the repository's site that this session ran (`pytest -m "not site"` runs none).
SITE_BUILDS_RUN: list[str] = []

# Malformed cards written for the validator tests: data, not pages whose code should run.
collect_ignore_glob = ["cards_corpus/*"]


def pytest_report_header(config: pytest.Config) -> str:
    return f"hermetic home and cache: {SESSION_HOME} (empty at the start of the session)"


CLASSIFIER_FILE = Path(os.environ["GDL_REF_CACHE"]) / "digit-classifier.safetensors"  # gdl_ref.metrics's cache
_LOAD_WHEN_TRAINED: list[str] = []  # the 1-minute load average after the test that trained the classifier


def pytest_runtest_logfinish(nodeid: str, location: object) -> None:
    """Note the machine's load once, after the test during which the digit classifier was trained."""
    if not _LOAD_WHEN_TRAINED and CLASSIFIER_FILE.is_file():
        try:
            _LOAD_WHEN_TRAINED.append(f"{os.getloadavg()[0]:.2f}")
        except (AttributeError, OSError):  # no load average on this system
            _LOAD_WHEN_TRAINED.append("unknown")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say which site builds the session ran, and what it paid for the digit classifier that the sample
    metrics use (trained once a session)."""
    terminalreporter.write_line(f"site builds this session: {', '.join(SITE_BUILDS_RUN) or 'none'}")
    path = CLASSIFIER_FILE
    if not path.is_file():
        return
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata() or {}
    terminalreporter.write_line(
        f"digit classifier: trained once this session in {meta.get('train_seconds', '?')} s "
        f"(1-minute load average {(_LOAD_WHEN_TRAINED or ['?'])[0]}), test accuracy {meta.get('test_accuracy', '?')}")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: the kinds must be on the items by then
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each item with its kind (tests/kinds.py); run the from-an-empty-cache CLI test first; skip
    `gpu`-marked tests, with the reason, without CUDA."""
    for item in items:
        explicit = {mark.name for mark in item.iter_markers() if mark.name in KINDS}
        snippet = item.path.suffix == ".md"
        for kind in sorted(kinds_of(item.path.stem, explicit, getattr(item, "fixturenames", ()), snippet) - explicit):
            item.add_marker(kind)
    first = [item for item in items if item.name == "test_digits_train_then_evaluate_from_an_empty_cache"]
    items[:] = first + [item for item in items if item not in first]
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: torch.cuda.is_available() is False (run with -m gpu on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@dataclass(frozen=True)
class SiteBuild:
    """The result of one strict build of the repository, by MkDocs or by Zensical."""

    site_dir: Path
    returncode: int
    log: str
    builder: str = "mkdocs"


BUILDERS = ("mkdocs", "zensical")


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> SiteBuild:
    """Build the site once, strictly, into a temporary folder (or reuse GDL_REF_SITE_DIR)."""
    prebuilt = os.environ.get("GDL_REF_SITE_DIR")
    if prebuilt:
        SITE_BUILDS_RUN.append("mkdocs (prebuilt, GDL_REF_SITE_DIR)")
        return SiteBuild(Path(prebuilt), 0, "(prebuilt site, build log not captured)")
    site_dir = tmp_path_factory.mktemp("site")
    SITE_BUILDS_RUN.append("mkdocs")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    return SiteBuild(site_dir, result.returncode, result.stdout + result.stderr)


def register_family(monkeypatch: pytest.MonkeyPatch, name: str, build: Callable[..., Any],
                    model_cls: type) -> Iterator[str]:
    """Register a test-only family ``name`` whose module defines ``model_cls`` (for ``family_of``)
    and ``build``; yields the name and restores the class's module afterwards (use with ``yield from``)."""
    from gdl_ref.models import registry as families

    mod = types.ModuleType(f"gdl_ref_{name}_family")
    mod.build = build  # type: ignore[attr-defined]
    original = model_cls.__module__
    model_cls.__module__ = mod.__name__
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(families.FAMILIES, name, mod.__name__)
    yield name
    model_cls.__module__ = original


@pytest.fixture(scope="session")
def zensical_site() -> SiteBuild:
    """Run the build step, then `zensical build --strict` into .cache/zensical-test-site/ (Zensical
    writes only inside the project, and takes its output folder from `site_dir` in mkdocs.yml), or
    reuse GDL_REF_ZENSICAL_SITE_DIR."""
    prebuilt = os.environ.get("GDL_REF_ZENSICAL_SITE_DIR")
    if prebuilt:
        SITE_BUILDS_RUN.append("zensical (prebuilt, GDL_REF_ZENSICAL_SITE_DIR)")
        return SiteBuild(Path(prebuilt), 0, "(prebuilt site, build log not captured)", "zensical")
    site_dir = ROOT / ".cache" / "zensical-test-site"
    SITE_BUILDS_RUN.append("zensical")
    shutil.rmtree(site_dir, ignore_errors=True)
    env = {**os.environ, "GDL_REF_SITE_OUT": str(site_dir)}
    log = ""
    for command in ([sys.executable, "-m", "gdl_site.prepare"], [sys.executable, "-m", "zensical", "build", "--strict"]):
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, env=env)
        log += result.stdout + result.stderr
        if result.returncode != 0:
            return SiteBuild(site_dir, result.returncode, log, "zensical")
    return SiteBuild(site_dir, 0, log, "zensical")


@pytest.fixture(scope="module", params=BUILDERS)
def any_site(request: pytest.FixtureRequest) -> SiteBuild:
    """The site as each builder makes it: the tests that take this fixture run once per builder."""
    return request.getfixturevalue("built_site" if request.param == "mkdocs" else "zensical_site")
