"""Python-Markdown extension ``gdl_site.math``: the page's TeX as MathML, made at build time.

``pymdownx.arithmatex`` (``generic: true``) wraps inline TeX in ``<span class="arithmatex">\\(...\\)</span>``
and display TeX in ``<div class="arithmatex">\\[...\\]</div>``. A postprocessor, run after the raw
HTML is put back, replaces each wrapper's TeX with MathML from :func:`gdl_site.cards.mathml.to_mathml`
(the converter the card validator uses), so browsers render it natively: no JavaScript, no CDN.
Being a Markdown extension, it runs under MkDocs and under Zensical alike. TeX that will not
convert stops the build with the line of the page it came from.

Listed in ``mkdocs.yml`` after ``pymdownx.arithmatex``::

    markdown_extensions:
      - pymdownx.arithmatex: {generic: true}
      - gdl_site.math
"""

from __future__ import annotations

import html
import re

from markdown import Extension, Markdown
from markdown.postprocessors import Postprocessor
from markdown.preprocessors import Preprocessor

from gdl_site.cards.mathml import MathError, to_mathml

from .errors import SiteError

__all__ = ["MathExtension", "makeExtension", "math_html", "render_math"]

INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.DOTALL)
BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.DOTALL)


def line_of(tex: str, source: str) -> int:
    """1-based line of ``source`` holding the first line of ``tex`` (0 when not found)."""
    first = tex.strip().splitlines()[0] if tex.strip() else ""
    for number, line in enumerate(source.splitlines(), start=1):
        if first and first in line:
            return number
    return 0


def math_html(tex: str, display: bool) -> str:
    """One formula as the site writes it: MathML in arithmatex's wrapper (``div`` for display math).

    Raises:
        MathError: the TeX will not render (see :func:`gdl_site.cards.mathml.to_mathml`).
    """
    tag = "div" if display else "span"
    return f'<{tag} class="arithmatex">{to_mathml(tex, display=display)}</{tag}>'


def render_math(content: str, source: str = "") -> str:
    """Replace arithmatex's generic TeX wrappers in the HTML ``content`` with MathML.

    Raises:
        SiteError: ``line N: math will not render: <why>`` (N in ``source``, the page's Markdown).
    """

    def convert(match: re.Match[str], display: bool) -> str:
        tex = html.unescape(match.group(1))
        try:
            return math_html(tex, display)
        except MathError as error:
            raise SiteError(f"line {line_of(tex, source)}: math will not render: {error}") from None

    content = BLOCK.sub(lambda m: convert(m, True), content)
    return INLINE.sub(lambda m: convert(m, False), content)


class _KeepSource(Preprocessor):
    """Remember the page's Markdown, before any other step, to name lines in errors."""

    def __init__(self, md: Markdown, extension: MathExtension) -> None:
        super().__init__(md)
        self.extension = extension

    def run(self, lines: list[str]) -> list[str]:
        self.extension.source = "\n".join(lines)
        return lines


class _ToMathML(Postprocessor):
    def __init__(self, md: Markdown, extension: MathExtension) -> None:
        super().__init__(md)
        self.extension = extension

    def run(self, text: str) -> str:
        return render_math(text, self.extension.source)


class MathExtension(Extension):
    """Register the source keeper (first preprocessor) and the MathML postprocessor (after raw HTML)."""

    def __init__(self, **kwargs: object) -> None:
        self.config: dict = {}
        super().__init__(**kwargs)
        self.source = ""

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 - Python-Markdown's name
        md.registerExtension(self)
        md.preprocessors.register(_KeepSource(md, self), "gdl_ref_math_source", 1000)
        # raw_html restores stashed blocks at 30; amp_substitute runs at 20. MathML must be last.
        md.postprocessors.register(_ToMathML(md, self), "gdl_ref_math", 5)

    def reset(self) -> None:
        self.source = ""


def makeExtension(**kwargs: object) -> MathExtension:  # noqa: N802 - Python-Markdown's entry point
    return MathExtension(**kwargs)
