"""Embeds (``--8<--``) that stay inside the repository and name what they want.

``pymdownx.snippets`` with ``restrict_base_path: true`` (its default) already refuses a path that
leaves its base: it joins the base and the path and compares the *absolute* path, so
``../outside`` and ``/etc/passwd`` are not read. Three things it leaves open, which this module
closes:

* the base is ``"."``, the folder the builder was started in, not the repository;
* the comparison does not resolve symbolic links, so a link inside the repository that points
  outside it is followed;
* a refused path, a missing file and a missing ``[start:name]`` section all stop the build with
  ``Snippet ... could not be found`` and a traceback, with no page and no line.

:func:`embed_problems` checks every embed of a page (and, through whole-file embeds, of what they
embed) against the repository root, resolved with its links, and says ``line N: why``. It runs
twice: in ``python -m gdl_site.prepare`` over every page, naming the file; and in the
Markdown extension ``gdl_site.embeds`` (listed before ``pymdownx.snippets`` runs), which stops
either builder on the first problem of the page being built.
"""

from __future__ import annotations

import os
from pathlib import Path

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor

from gdl_site.cards.embeds import EmbedOutside, contained, snippet_refs
from gdl_site.cards.fences import resolve_snippet

from .errors import SiteError

__all__ = ["EmbedExtension", "embed_problems", "makeExtension"]



def embed_problems(text: str, root: Path, _seen: frozenset[Path] = frozenset()) -> list[tuple[int, str]]:
    """``(line, why)`` (1-based) for each embed of ``text`` that escapes ``root``, is missing, or
    names a section its file does not mark. Whole-file embeds are checked in turn, and a problem
    inside one is reported at the line that embeds it."""
    problems: list[tuple[int, str]] = []
    for line, ref in snippet_refs(text.splitlines()):
        path, _, section = ref.partition(":")
        try:  # the cards' containment rule: no absolute path, URL, ".." escape or link out
            target = contained(path, root)
        except EmbedOutside as err:
            problems.append((line, str(err)))
            continue
        base = Path(os.path.realpath(root))
        relative = target.relative_to(base).as_posix()
        why = resolve_snippet(f"{relative}:{section}" if section else relative, base)
        if why:
            problems.append((line, why.replace(f'"{relative}"', f'"{path}"').replace(f" in {relative} ", f" in {path} ")))
            continue
        if not section and target not in _seen and target.suffix in {".md", ".markdown", ".txt"}:
            inner = embed_problems(target.read_text(encoding="utf-8"), root, _seen | {target})
            problems += [(line, f'in "{path}", line {k}: {why}') for k, why in inner]
    return problems


class _CheckEmbeds(Preprocessor):
    def __init__(self, md: Markdown, root: Path) -> None:
        super().__init__(md)
        self.root = root

    def run(self, lines: list[str]) -> list[str]:
        problems = embed_problems("\n".join(lines), self.root)
        if problems:
            line, why = problems[0]
            raise SiteError(f"line {line}: {why}")
        return lines


class EmbedExtension(Extension):
    """Check a page's embeds before ``pymdownx.snippets`` (priority 32) reads them."""

    def __init__(self, **kwargs: object) -> None:
        self.config = {"root": [".", "the repository root that embed paths are relative to"]}
        super().__init__(**kwargs)

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 - Python-Markdown's name
        md.registerExtension(self)
        md.preprocessors.register(_CheckEmbeds(md, Path(self.getConfig("root"))), "gdl_ref_embeds", 40)


def makeExtension(**kwargs: object) -> EmbedExtension:  # noqa: N802 - Python-Markdown's entry point
    return EmbedExtension(**kwargs)
