"""Card text for Anki: Markdown to HTML with embeds expanded, math kept for Anki's MathJax, code
highlighted by Pygments, and the figures a card shows shipped as media files.

- `readable_markdown`: the page Markdown with `--8<--` embeds and includes expanded and test markers
  dropped (also what the CSV holds);
- `to_html`: that Markdown as HTML; formulas become ``\\(...\\)`` and ``\\[...\\]``, which Anki renders
  offline with the MathJax it ships; fenced code becomes ``<div class="highlight">`` with Pygments
  token classes, coloured by the note type's stylesheet (gdl_site.cards.notetype.css);
- `ship_figures`: each ``<img src>`` that names a file of the repository is copied into the deck under
  a name of its own (Anki keeps media in one flat folder, so the name carries a hash of the file's
  path in the repository) and the tag is pointed at it. A figure that
  is a URL, lies outside the repository or does not exist is a problem: the deck must work offline.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from .embeds import BLOCK as BLOCK_MARK
from .embeds import EmbedOutside, contained, expand, snippet_refs
from .fences import classify
from .model import Card, Problem
from .syntax import BLOCKS, DOCS, INLINE_DOLLAR

__all__ = ["readable_markdown", "anki_math", "protect_math", "to_html", "ship_figures", "media_name", "MEDIA_PREFIX"]

# latex2mathml knows \argmax and \argmin; MathJax (in Anki) spells them with \operatorname*.
MATHJAX = {r"\argmax": r"\operatorname*{arg\,max}", r"\argmin": r"\operatorname*{arg\,min}"}
MATHJAX_SPELLING = re.compile(r"\\arg(max|min)(?![A-Za-z])")
MARKER_LINE = re.compile(r"^\s*<!--[-\s]*pytest[-.].*-->\s*$")
IMG_SRC = re.compile(r"""(<img\b[^>]*?\bsrc=(["']))(.*?)(\2)""", re.I | re.S)
MEDIA_PREFIX = "gdl-ref_"


def readable_markdown(text: str, root: Path) -> str:
    """Page Markdown for reading elsewhere: embeds expanded, test markers dropped."""
    lines = text.splitlines()
    out: list[str] = []
    embeds = {f.line: f for f in classify(text, "<card>", root) if f.kind == "embed"}
    includes = dict(snippet_refs(lines))
    k = 0
    while k < len(lines):
        fence = embeds.get(k + 1)
        if fence:
            code = "\n".join(expand(r, root) for r in fence.refs)
            title = re.search(r'title="([^"]*)"', fence.info)
            out.append(f"{fence.indent}```{fence.lang or 'python'}")
            out += [fence.indent + ln if ln else "" for ln in code.splitlines()]
            out.append(f"{fence.indent}```")
            if title:
                out.append(f"{fence.indent}*From `{title.group(1)}`.*")
            k = fence.end_line
            continue
        if k + 1 in includes:  # Markdown included from another file (e.g. a benchmark table), at this line's indent
            indent = lines[k][:len(lines[k]) - len(lines[k].lstrip())]
            out += [indent + ln if ln else "" for ln in expand(includes[k + 1], root).splitlines()]
        elif not MARKER_LINE.match(lines[k]) and not BLOCK_MARK.match(lines[k]):
            out.append(lines[k])
        k += 1
    return "\n".join(out)


def anki_math(tex: str, display: bool) -> str:
    """A formula as Anki's MathJax reads it: ``\\(...\\)`` or ``\\[...\\]``, its TeX escaped for HTML."""
    tex = MATHJAX_SPELLING.sub(lambda m: MATHJAX[m.group(0)], tex)
    return ("\\[" if display else "\\(") + html.escape(tex, quote=False) + ("\\]" if display else "\\)")


def protect_math(text: str, root: Path, write: Callable[[str, bool], str] = anki_math) -> tuple[str, list[str]]:
    """Replace each formula outside code by a placeholder ``GDLMATH<n>X``; return the text and each
    formula as ``write(tex, display)`` gives it (by default, the Anki math)."""
    maths: list[str] = []

    def keep(tex: str, display: bool) -> str:
        maths.append(write(tex, display))
        return f"GDLMATH{len(maths) - 1}X"

    fenced = {k for f in classify(text, "<card>", root) for k in range(f.line, f.end_line + 1)}
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if not para:
            return
        joined = "\n".join(para)
        block = next((m for b in BLOCKS if (m := b.match(joined.strip()))), None)
        if block:
            out.append(para[0][: len(para[0]) - len(para[0].lstrip())] + keep(block.group(1).strip(), True))
        else:
            parts = re.split(r"(`+[^`]*`+)", joined)  # inline code is not math
            out.extend("".join(p if p.startswith("`") else INLINE_DOLLAR.sub(lambda m: keep(m.group(1), False), p)
                               for p in parts).split("\n"))
        para.clear()

    for k, line in enumerate(text.splitlines(), start=1):
        if k in fenced or not line.strip():
            flush()
            out.append(line)
        else:
            para.append(line)
    flush()
    return "\n".join(out), maths


@lru_cache(maxsize=1)
def _markdown():
    """One Markdown converter for every field (building one per call cost more than converting)."""
    import markdown

    return markdown.Markdown(extensions=["fenced_code", "codehilite", "tables", "sane_lists", "admonition"],
                             extension_configs={"codehilite": {"css_class": "highlight", "guess_lang": False}})


def to_html(text: str, root: Path, inline: bool = False) -> str:
    """Markdown to HTML for Anki: math as \\( \\) / \\[ \\], code highlighted by Pygments (CSS classes)."""
    protected, maths = protect_math(readable_markdown(text, root), root)
    out = _markdown().reset().convert(protected)
    if inline and out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1:
        out = out[3:-4]
    return re.sub(r"GDLMATH(\d+)X", lambda m: maths[int(m.group(1))], out)


def _figure_file(src: str, card: Card, root: Path) -> Path:
    """The repository file an <img src> of the card names (relative to its page, or to docs/ with a leading /)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", src, re.I) or src.startswith("//"):
        raise EmbedOutside(f'figure "{src}" is a URL: a deck works offline, so put the file in the repository')
    path = unquote(src.split("#")[0].split("?")[0])
    relative = PurePosixPath(DOCS) / path.lstrip("/") if path.startswith("/") else \
        PurePosixPath(Path(card.file).parent.as_posix()) / path
    target = contained(str(relative), root)
    if not target.is_file():
        raise FileNotFoundError(f'figure "{src}" does not exist ({relative})')
    return target


def media_name(path: str) -> str:
    """A figure's name in Anki's flat media folder: prefix, a hash of its repository path, its file name."""
    return f"{MEDIA_PREFIX}{hashlib.sha256(path.encode('utf-8')).hexdigest()[:10]}_{PurePosixPath(path).name}"


def ship_figures(fields: list[str], card: Card, root: Path) -> tuple[list[str], dict[str, Path], list[Problem]]:
    """(fields with each figure pointed at its media name, media name -> file, problems)."""
    media: dict[str, Path] = {}
    problems: list[Problem] = []
    root_resolved = Path(root).resolve()

    def point(m: re.Match) -> str:
        src = html.unescape(m.group(3))
        if src.startswith("data:"):
            return m.group(0)   # the picture is inside the tag already
        try:
            target = _figure_file(src, card, root)
        except (EmbedOutside, FileNotFoundError) as exc:
            problems.append(Problem(card.file, card.line, str(exc)))
            return m.group(0)
        name = media_name(target.relative_to(root_resolved).as_posix())
        media[name] = target
        return m.group(1) + html.escape(name) + m.group(4)

    return [IMG_SRC.sub(point, f) for f in fields], media, problems
