"""Shared fixtures: the GPU skip rule and one strict build of the site per test session."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

# Small models on a small CPU: one thread per process avoids oversubscription (two processes of the
# distributed test, notebook kernels and CLI subprocesses inherit the variable).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402  (after the thread setting, which torch reads at import)

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

ROOT = Path(__file__).resolve().parents[1]

# Malformed cards written for the validator tests: data, not pages whose code should run.
collect_ignore_glob = ["cards_corpus/*"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `gpu`-marked tests, with the reason, where CUDA is not available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: torch.cuda.is_available() is False (run with -m gpu on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@dataclass(frozen=True)
class SiteBuild:
    """The result of one `mkdocs build --strict` of the repository."""

    site_dir: Path
    returncode: int
    log: str


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> SiteBuild:
    """Build the site once, strictly, into a temporary folder (or reuse GDL_REF_SITE_DIR)."""
    prebuilt = os.environ.get("GDL_REF_SITE_DIR")
    if prebuilt:
        return SiteBuild(Path(prebuilt), 0, "(prebuilt site, build log not captured)")
    site_dir = tmp_path_factory.mktemp("site")
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
    from gdl_ref import families

    mod = types.ModuleType(f"gdl_ref_{name}_family")
    mod.build = build  # type: ignore[attr-defined]
    original = model_cls.__module__
    model_cls.__module__ = mod.__name__
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(families.FAMILIES, name, mod.__name__)
    yield name
    model_cls.__module__ = original
