"""The site's build step, run before either builder: ``python -m gdl_site.prepare``.

MkDocs runs it itself (``on_pre_build`` in :mod:`gdl_site.hooks`); Zensical runs no hooks, so
its documented command runs it first. It writes only into git-ignored folders, two of them under ``docs/``:

* ``docs/downloads/``: the Anki deck, the CSV and the CrowdAnki JSON of every card (:func:`gdl_site.cards.export.export_cards`),
  one notebook per family page with its runnable blocks (:mod:`gdl_site.page_notebooks`), and the
  Study page's cards and scheduler under ``study/`` (:mod:`gdl_site.study`);
* ``docs/notebooks/``: one Markdown page per notebook of ``notebooks/``, executed (or taken from the
  cache) with its figures (:mod:`gdl_site.notebooks`); and, outside ``docs/``, in
  ``.cache/notebook-pages/``, the same notebook as the page that MkDocs renders with mkdocs-jupyter.

Before any of that it checks every embed of every page (:mod:`gdl_site.embeds`), so a missing
section or a path that leaves the repository stops the build with ``file:line: why``. Each file is
written beside its target and renamed into place; the one scratch folder (the card export's) is
removed when the step ends, whatever happens.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat

from gdl_ref import __version__

from .embeds import embed_problems
from .errors import SiteError
from .files import GeneratedFolder
from .notebooks import build_notebook_pages
from .page_notebooks import page_notebook
from .study import write_study_assets

__all__ = ["DOWNLOADS", "check_embeds", "prepare", "main"]

# Under docs/downloads/: the Anki deck, the CSV, and the deck as CrowdAnki JSON (a zip of deck.json).
DOWNLOADS = {"anki": "gdl-ref.apkg", "csv": "gdl-ref.csv", "crowdanki": "gdl-ref-crowdanki.zip"}
DECK_TIMESTAMP = 0.0  # the deck's note timestamps: fixed, so an unchanged deck is byte-identical


def check_embeds(docs: Path, root: Path) -> list[str]:
    """``file:line: why`` for every embed problem of every page under ``docs``."""
    problems = []
    for page in sorted(docs.rglob("*.md")):
        name = page.relative_to(root).as_posix()
        problems += [f"{name}:{line}: {why}" for line, why in embed_problems(page.read_text(encoding="utf-8"), root)]
    return problems


@contextmanager
def _scratch() -> Iterator[Path]:
    """A temporary folder, removed after, that is also ``tempfile``'s default while it exists:
    genanki writes its database to ``tempfile.mkstemp()`` and never removes it."""
    with tempfile.TemporaryDirectory(prefix="gdl-ref-downloads-") as scratch:
        previous, tempfile.tempdir = tempfile.tempdir, scratch
        try:
            yield Path(scratch)
        finally:
            tempfile.tempdir = previous


def _card_downloads(docs: Path, root: Path, folder: GeneratedFolder) -> None:
    from gdl_site.cards.export import CardProblems, export_cards  # late: genanki is only needed here

    with _scratch() as scratch:
        for fmt, name in DOWNLOADS.items():
            target = scratch / name
            try:
                # record=False: a build reads the GUID lock file, never writes it (`gdl-ref cards lock` does)
                export_cards([docs], fmt, target, root=root, timestamp=DECK_TIMESTAMP if fmt == "anki" else None,
                             record=False)
            except CardProblems as problems:
                raise SiteError(f"the cards have problems, so no {fmt} download was built:\n{problems}") from None
            folder.write(name, target.read_bytes())


def prepare(root: Path, quiet: bool = False) -> list[str]:
    """Check the embeds, then write the downloads and the notebook pages; returns what was done."""
    root = root.resolve()
    docs = root / "docs"
    problems = check_embeds(docs, root)
    if problems:
        raise SiteError("embeds that cannot be built:\n" + "\n".join(problems))
    done = []
    with GeneratedFolder(docs / "downloads") as downloads:
        _card_downloads(docs, root, downloads)
        done.append(f"docs/downloads/: {', '.join(DOWNLOADS.values())}")
        done += write_study_assets(root, downloads)
        for page in sorted((docs / "families").glob("*.md")):
            nb = page_notebook(page, root, __version__)
            if nb is not None:
                downloads.write(f"notebooks/{page.stem}.ipynb", nbformat.writes(nb) + "\n")
                blocks = sum(cell.cell_type == "code" for cell in nb.cells) - 1
                done.append(f"docs/downloads/notebooks/{page.stem}.ipynb: {blocks} runnable blocks")
    if (root / "notebooks").is_dir():
        done += build_notebook_pages(root, root / "notebooks", docs / "notebooks", root / ".cache" / "notebooks",
                                     __version__)
    if not quiet:
        print("\n".join(done))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gdl_site.prepare", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository root (default: .)")
    args = parser.parse_args(argv)
    if not (args.root / "mkdocs.yml").is_file():
        print(f"error: --root {args.root}: no mkdocs.yml there", file=sys.stderr)
        return 2
    try:
        prepare(args.root)
    except SiteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
