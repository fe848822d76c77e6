"""`gdl-ref cards check | import | export`: the card tools on the command line.

`add_parser(subparsers)` registers `cards` on the `gdl-ref` command (gdl_ref.cli); each
subcommand's handler takes the argparse Namespace and returns the exit status. The same
commands run standalone as `python -m gdl_site.cards ...`.

Exit status (`gdl_ref.cli_errors`): 0 fine; 1 problems found (listed as `file:line: message`, then
a count), or an error naming the file (a path that does not exist, a file that is not flashcards or
not UTF-8, an output that exists, a lock file that refuses the change); 2 a usage error naming the
argument (an unknown option, a missing argument, a bad value).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gdl_ref.cli_errors import ArgumentParser, Failure, UsageError, fail, run_main

__all__ = ["add_parser", "main", "cmd_check", "cmd_import", "cmd_export", "cmd_lock", "cmd_retire"]


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _existing(paths: list[str]) -> list[Path]:
    """``paths`` as Paths; ``Failure`` naming those that do not exist."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        fail(f"{', '.join(missing)}: no such file or folder")
    return [Path(p) for p in paths]


def _lock_check(paths: list[Path], pages: list, root: str) -> list:
    """Problems of the GUID lock file, when the whole site (ROOT/docs) is checked and the file exists."""
    from .lock import LOCK_NAME, LockError, lock_problems
    from .model import Problem
    from .syntax import DOCS

    lock, docs = Path(root) / LOCK_NAME, (Path(root) / DOCS).resolve()
    if not lock.is_file() or docs not in {p.resolve() for p in paths}:
        return []
    try:
        return lock_problems(lock, [c for p in pages for c in p.cards if Path(c.file).parts[:1] == (DOCS,)])
    except LockError as exc:
        return [Problem(LOCK_NAME, 1, str(exc))]


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the cards under PATHS; print every problem as file:line: message."""
    from .validate import site_duplicates, validate_paths

    paths = _existing(args.paths)
    pages, problems = validate_paths(paths, args.root)
    if not args.alone:
        problems = sorted(set(problems) | set(site_duplicates(pages, args.root)) | set(_lock_check(paths, pages, args.root)))
    for problem in problems:
        print(problem)
    card_pages = [p for p in pages if p.is_card_page]
    n_cards = sum(len(p.cards) for p in card_pages)
    summary = (f"{len(problems)} problem{'s' * (len(problems) != 1)} in {len(pages)} pages "
               f"({len(card_pages)} card pages, {n_cards} cards)")
    print(summary if problems else f"ok: {summary}", file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


def cmd_import(args: argparse.Namespace) -> int:
    """Turn a flashcard text file into a chapter page; report what was changed or not mapped."""
    from .importer import ImportFailed, import_flashcards
    from .lock import LOCK_NAME, LockError, retired_ids
    from .validate import site_ids

    source = Path(args.file)
    if not source.is_file():
        fail(f"{source}: no such file")
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        fail(f"{source} is not UTF-8 text (a flashcard file is plain text)")
    out = Path(args.out) if args.out else None
    if out and out.exists() and not args.force:
        fail(f"{out} exists: pass --force to overwrite it")
    try:
        taken = {**retired_ids(Path(args.root) / LOCK_NAME), **site_ids(Path(args.root), {out} if out else set())}
        result = import_flashcards(text, args.chapter, taken)
    except ImportFailed as exc:
        raise Failure(f"{source}: {exc}") from None
    except LockError as exc:
        raise Failure(str(exc)) from None
    page_name = str(out) if out else "<page>"
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.page, encoding="utf-8")
    else:
        sys.stdout.write(result.page)
    for note in result.notes:
        _err(note.render(str(source), page_name))
    _err(f"imported {result.cards} cards from {source}" + (f" into {out}" if out else "")
         + (f"; {len(result.notes)} things to check (listed above)" if result.notes else "")
         + (f"; next: gdl-ref cards check {out}" if out else ""))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export the cards under PATHS as an Anki deck, a CSV or flashcard text."""
    from .export import CardProblems, export_cards
    from .lock import LockError

    paths = _existing(args.paths)
    try:
        cards = export_cards(paths, args.format, args.out, root=args.root, force=args.force)
    except (FileExistsError, IsADirectoryError, LockError) as exc:
        raise Failure(str(exc)) from None
    except CardProblems as exc:
        for problem in exc.problems:
            print(problem)
        _err(f"gdl-ref cards export: nothing written: {len(exc.problems)} problems in the cards (listed above)")
        return 1
    print(f"wrote {len(cards)} cards to {args.out} ({args.format})")
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    """Add the ids of the cards under ROOT/docs that ROOT/cards.lock.json lacks, each with its Anki note GUID;
    no entry is ever changed or removed."""
    from .export import CardProblems, lock_site
    from .lock import LOCK_NAME, LockError

    root = Path(args.root)
    if not (root / "docs").is_dir():
        fail(f"{root / 'docs'}: no such folder")
    try:
        added = lock_site(root)
    except CardProblems as exc:
        for problem in exc.problems:
            print(problem)
        _err(f"gdl-ref cards lock: nothing written: {len(exc.problems)} problems in the cards (listed above)")
        return 1
    except LockError as exc:
        raise Failure(str(exc)) from None
    print(f"added {len(added)} ids to {root / LOCK_NAME}" + (f": {', '.join(added)}" if added else ""))
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    """Mark ID retired in ROOT/cards.lock.json, with the reason. The card must be deleted from its page first;
    the entry and its GUID stay, and the id is never used again."""
    from .lock import LOCK_NAME, LockError, retire
    from .validate import site_ids

    root = Path(args.root)
    if not args.why.strip():
        raise UsageError("argument --why: say why the card is retired (for example: merged into another-card)")
    try:
        entry = retire(root / LOCK_NAME, args.id, args.why, set(site_ids(root)))
    except LockError as exc:
        raise Failure(str(exc)) from None
    print(f'retired "{args.id}" (GUID {entry.guid}) in {root / LOCK_NAME}: {entry.retired}')
    return 0


def _root_option(parser: argparse.ArgumentParser, text: str = "repository root (default: .)") -> None:
    """The ``--root`` option of a cards command: the repository that pages, embeds and the lock file live in."""
    parser.add_argument("--root", default=".", help=text)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `cards` (check, import, export) on an argparse subparsers object."""
    cards = subparsers.add_parser("cards", help="check, import and export the cards",
                                  description="Check, import and export the cards of the site.")
    _add_subcommands(cards)
    return cards


def _add_subcommands(cards: argparse.ArgumentParser) -> None:
    from .export import FORMATS   # genanki is imported only when a deck is written

    sub = cards.add_subparsers(dest="cards_command", metavar="{check,import,export,lock,retire}", required=True)

    check = sub.add_parser("check", help="validate cards: every problem as file:line: message",
                           description="Validate the chapter pages under PATHS (default docs/): card structure, "
                                       "site-wide ids, math, and code fences.")
    check.add_argument("paths", nargs="*", default=["docs"], metavar="PATHS", help="pages or folders (default: docs)")
    _root_option(check, "repository root that embeds resolve against (default: .)")
    check.add_argument("--alone", action="store_true",
                       help="check the ids of PATHS among themselves only, not against the cards under ROOT/docs")
    check.set_defaults(func=cmd_check)

    imp = sub.add_parser("import", help="turn a flashcard text file into a chapter page",
                         description="Turn a flashcard text file (#### Title, background, :p question, ??x answer "
                                     "x??, separated by ---) into a chapter page; report what was changed or not mapped.")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--chapter", metavar="NAME", help="the chapter title (default: the file's '# Flashcards:' header)")
    imp.add_argument("--out", metavar="PATH", help="where to write the page (default: standard output)")
    imp.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    _root_option(imp, "repository root; imported ids avoid those under ROOT/docs")
    imp.set_defaults(func=cmd_import)

    lock = sub.add_parser("lock", help="give new cards their Anki note GUIDs in cards.lock.json",
                          description=cmd_lock.__doc__)
    _root_option(lock)
    lock.set_defaults(func=cmd_lock)

    ret = sub.add_parser("retire", help="mark the id of a card taken off the site retired in cards.lock.json",
                         description=cmd_retire.__doc__)
    ret.add_argument("id", metavar="ID")
    ret.add_argument("--why", required=True, help='the reason, e.g. "merged into mle"')
    _root_option(ret)
    ret.set_defaults(func=cmd_retire)

    exp = sub.add_parser("export", help="write the cards as an Anki deck, CrowdAnki JSON, a CSV or flashcard text",
                         description="Export the cards under PATHS (default docs/). Note GUIDs come from "
                                     "ROOT/cards.lock.json; the ids of new cards under ROOT/docs are added to it.")
    exp.add_argument("--format", required=True, choices=list(FORMATS),
                     help="anki: an .apkg; crowdanki: a folder with deck.json and media/ (a .zip of it when "
                          "FILE ends in .zip); csv; flashcards: the flashcard text format")
    exp.add_argument("--out", required=True, metavar="FILE")
    exp.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    exp.add_argument("paths", nargs="*", default=["docs"], metavar="PATHS", help="pages or folders (default: docs)")
    exp.add_argument("--root", default=None, help="repository root for embeds (default: the folder with mkdocs.yml)")
    exp.set_defaults(func=cmd_export)


def main(argv: list[str] | None = None) -> int:
    """`python -m gdl_site.cards ...`: the cards subcommands without the rest of gdl-ref."""
    parser = ArgumentParser(prog="gdl-ref cards", description="Check, import and export the cards of the site.")
    _add_subcommands(parser)
    return run_main(parser, argv)
