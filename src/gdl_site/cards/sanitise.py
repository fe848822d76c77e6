"""The sanitiser every export of the cards goes through (defence in depth behind `html_safety`).

`clean_card_html` keeps exactly what the card renderer makes, with nh3 (bindings to the Rust
library Ammonia): the HTML of card Markdown (gdl_site.cards.render, Python-Markdown with tables,
admonitions and Pygments' ``<span class>`` code), the MathML that gdl_site.cards.mathml makes from
``$...$`` (the site's pages), the inline HTML a card may hold (`html_safety.ALLOWED`), and ``img``
whose ``src`` is a plain relative name (a figure in the deck's own media). Everything else is
dropped: ``<script>`` and ``<style>`` with their content, other elements keeping their text,
event handlers, ``style`` (but a table cell's ``text-align``), and URLs of other schemes.

`clean_card_markdown` does the same for the text formats (CSV, flashcard text), which hold
Markdown, not HTML: only the raw HTML tags in it are touched (found as the validator finds them),
so that code, math and prose stay byte for byte what the page says.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

from .html_safety import ACTIVE, ALLOWED, URL_ATTRS, dangerous_scheme, html_problems, markdown_html

__all__ = ["TAGS", "ATTRIBUTES", "clean_card_html", "clean_card_markdown"]

MATHML = frozenset({"math", "menclose", "merror", "mfenced", "mfrac", "mi", "mmultiscripts", "mn", "mo", "mover",
                    "mpadded", "mphantom", "mprescripts", "mroot", "mrow", "ms", "mspace", "msqrt", "mstyle", "msub",
                    "msubsup", "msup", "mtable", "mtd", "mtext", "mtr", "munder", "munderover", "none",
                    "semantics", "annotation"})
MARKDOWN = frozenset({"a", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4",
                      "h5", "h6", "hr", "img", "li", "ol", "p", "pre", "span", "strong", "table", "tbody", "td",
                      "tfoot", "th", "thead", "tr", "ul"})
TAGS = (MARKDOWN | ALLOWED | MATHML) - ACTIVE | {"math"}
MATH_ATTRS = {"accent", "accentunder", "close", "columnalign", "columnlines", "columnspacing", "depth", "display",
              "displaystyle", "fence", "form", "height", "largeop", "linethickness", "lspace", "mathvariant",
              "maxsize", "minsize", "movablelimits", "notation", "open", "rowalign", "rowlines", "rowspacing",
              "rspace", "scriptlevel", "separator", "separators", "stretchy", "symmetric", "voffset", "width",
              "xmlns", "encoding"}
ATTRIBUTES: dict[str, set[str]] = {
    "*": {"class", "title", "id", "lang", "dir"},
    "a": {"href"}, "img": {"src", "alt", "width", "height"}, "abbr": {"title"}, "details": {"open"},
    "td": {"align", "style"}, "th": {"align", "style"}, "ol": {"start"},
    **{tag: MATH_ATTRS for tag in MATHML},
}
MEDIA_NAME = re.compile(r"^(?![a-zA-Z][a-zA-Z0-9+.-]*:)(?![/\\])(?!.*(?:^|/)\.\.(?:/|$))[^\s<>\"'\\]+$")
DROP_WITH_CONTENT = {"script", "style", "template", "noscript", "textarea", "xmp", "iframe", "noembed", "noframes"}


def _attribute(tag: str, name: str, value: str) -> str | None:
    """An img's src only when it is a relative name inside the deck (no scheme, no leading /, no ..); no URL
    whose scheme, once tabs, newlines and spaces are taken out as a browser does, is javascript:/vbscript:/data:."""
    if name in URL_ATTRS and dangerous_scheme(value):
        return None
    if tag == "img" and name == "src":
        return value if MEDIA_NAME.match(value) else None
    return value


def _strict(html: str) -> str:
    return nh3.clean(html, tags=set(TAGS), clean_content_tags=DROP_WITH_CONTENT, attributes=ATTRIBUTES,
                     attribute_filter=_attribute, strip_comments=False, link_rel=None,
                     url_schemes={"http", "https", "mailto"}, filter_style_properties={"text-align"})


class _Names(HTMLParser):
    """Every element, attribute and URL scheme a text uses."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.schemes: set[str] = set()
        self.dangerous = False   # a URL attribute whose scheme, as a browser reads it, runs or embeds content

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            self.attrs.add(name)
            self.dangerous |= name in URL_ATTRS and dangerous_scheme(value or "") is not None
            scheme = re.match(r"\s*([a-zA-Z][a-zA-Z0-9+.-]*):", value or "")
            if scheme:
                self.schemes.add(scheme.group(1).lower())


def _as_parsed(html: str) -> str | None:
    """The HTML as Ammonia serialises it with nothing removed (the same parse as `_strict`), or None when
    it holds a dangerous URL (which Ammonia would drop from both, hiding the removal)."""
    names = _Names()
    names.feed(html)
    names.close()
    if names.dangerous:
        return None
    return nh3.clean(html, tags=names.tags | set(TAGS), clean_content_tags=set(), attributes={"*": names.attrs},
                     strip_comments=False, link_rel=None, url_schemes=names.schemes | {"http", "https", "mailto"})


def clean_card_html(html: str) -> str:
    """The card HTML with only what the renderer makes (see the module docstring).

    When cleaning removes nothing (the cleaned HTML is the input as Ammonia parses and writes it
    back), the input is returned byte for byte: the renderer's own output is never rewritten.
    """
    cleaned = _strict(html)
    return html if cleaned == _as_parsed(html) else cleaned


class _Tags(HTMLParser):
    """The (start, end) offsets of every tag and comment of a text, and of script/style content."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.spans: list[tuple[int, int, str]] = []   # (start, end, "tag" | "content")
        self.base = 0
        self.line_starts = [0]

    def _at(self, i: int) -> int:
        return self.base + i

    def parse_starttag(self, i: int) -> int:
        k = super().parse_starttag(i)
        if k > i:
            self.spans.append((self._at(i), self._at(k), "tag"))
        return k

    def parse_endtag(self, i: int) -> int:
        k = super().parse_endtag(i)
        if k > i:
            self.spans.append((self._at(i), self._at(k), "tag"))
        return k

    def parse_comment(self, i: int, report: int = 1) -> int:
        k = super().parse_comment(i, report)
        if k > i:
            self.spans.append((self._at(i), self._at(k), "tag"))
        return k


def clean_card_markdown(text: str) -> str:
    """Markdown with each raw HTML tag that `html_safety` refuses cleaned (or dropped), the rest untouched.

    A ``<script>`` or ``<style>`` loses its content too. Code fences, code spans and math are not HTML.
    """
    from .fences import classify

    fenced = {k for f in classify(text) if f.kind != "marker" for k in range(f.line, f.end_line + 1)}
    visible = markdown_html(text, fenced)
    if "<" not in visible:
        return text
    finder = _Tags()
    finder.feed(visible)
    finder.base = len(visible) - len(finder.rawdata)
    if finder.rawdata.startswith("<"):   # an unfinished tag at the end goes as a whole
        finder.spans.append((finder.base, len(visible), "tag"))
    finder.close()
    out, last, drop_until = [], 0, None
    for start, end, _ in sorted(finder.spans):
        raw = text[start:end]
        name = re.match(r"</?\s*([a-zA-Z][^\s/>]*)", raw)
        tag = name.group(1).lower() if name else ""
        if drop_until is not None:
            if raw.lower().startswith(f"</{drop_until}"):
                last, drop_until = end, None
            continue
        closing_unknown = raw.startswith("</") and tag not in ALLOWED
        if not closing_unknown and not html_problems(visible[start:end], allowed=ALLOWED):
            continue
        out.append(text[last:start])
        if tag in DROP_WITH_CONTENT and not raw.startswith("</"):
            drop_until = tag
        else:
            kept = clean_card_html(raw) if not raw.startswith(("</", "<!")) else ""
            out.append(re.sub(rf"</{re.escape(tag)}>$", "", kept) if tag else "")
        last = end
    if drop_until is not None:
        last = len(text)
    out.append(text[last:])
    return "".join(out)
