"""A Markdown extension that ends each card's question with a report link and the code it was verified with::

    <p class="card-meta" data-search-exclude><small><a href="…/issues/new?title=…&body=…">Report a problem with this card</a>
    · Verified with gdl-ref 0.1.0 on 2026-11-28</small></p>

The link opens a new issue on ``repo_url`` naming the card, its page and the version. The date is the day
of ``SOURCE_DATE_EPOCH`` if set, else that of the commit built from (``git log -1 --format=%cs``), else
today (no git checkout); a tree with uncommitted changes, or no commit, ends the line "not verified".
Options (all optional): ``repo_url``, ``site_url`` (default: from ``config_file``, mkdocs.yml),
``version``, ``date``, ``commit``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import xml.etree.ElementTree as etree
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlencode

import yaml
from markdown import Extension, Markdown
from markdown.treeprocessors import Treeprocessor
from markdown.util import ETX, STX

__all__ = ["CardFooterExtension", "Provenance", "provenance", "report_url", "makeExtension"]

PLACEHOLDER = re.compile(f"{STX}[^{ETX}]*{ETX}")


@dataclass(frozen=True)
class Provenance:
    """What the site was built from: version, commit, its date, and whether the tree matched the commit."""

    version: str
    commit: str      # short hash ("" when unknown)
    date: str        # YYYY-MM-DD
    verified: bool   # False: no commit, or uncommitted changes

    def line(self) -> str:
        if self.verified:
            return f"Verified with gdl-ref {self.version} on {self.date}"
        if not self.commit:
            return f"Built with gdl-ref {self.version} on {self.date} outside a git checkout: not verified"
        return f"Built from uncommitted changes of gdl-ref {self.version} on {self.date}: not verified"


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@lru_cache(maxsize=4)
def provenance(folder: str = ".") -> Provenance:
    """The version, and the commit (with its date) that the tree at `folder` is; computed once a build."""
    from gdl_ref import __version__

    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    commit = _git(Path(folder), "rev-parse", "--short=12", "HEAD") or ""
    dirty = _git(Path(folder), "status", "--porcelain", "--untracked-files=no")
    if epoch.isdigit():
        date = dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc).date().isoformat()
    else:
        date = _git(Path(folder), "log", "-1", "--format=%cs") or dt.date.today().isoformat()
    return Provenance(__version__, commit, date, verified=bool(commit) and dirty == "")


def report_url(repo_url: str, card_id: str, card_title: str, page: str, version: str, commit: str) -> str:
    """A new-issue address on GitHub with the title and body filled in for one card."""
    body = (f"**Card:** `{card_id}` ({card_title})\n**Page:** {page}\n**Built from:** gdl-ref {version}"
            + (f", commit {commit}" if commit else "") + "\n\n**What is wrong:**\n\n")
    query = urlencode({"title": f"Card {card_id}: ", "body": body}, quote_via=quote)
    return f"{repo_url.rstrip('/')}/issues/new?{query}"


class _Loader(yaml.SafeLoader):
    """mkdocs.yml may hold tags such as !!python/name:…; they are read as plain values."""


_Loader.add_multi_constructor("", lambda loader, suffix, node: None)


def _site_config(config_file: str) -> dict:
    try:
        data = yaml.load(Path(config_file).read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (SafeLoader)
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _text(element: etree.Element) -> str:
    """The visible text of an element, without Python-Markdown's placeholders for stashed raw HTML."""
    return " ".join(PLACEHOLDER.sub("", "".join(element.itertext())).split())


class _CardFooter(Treeprocessor):
    def __init__(self, md: Markdown, extension: CardFooterExtension):
        super().__init__(md)
        self.ext = extension

    def _page(self, root: etree.Element, card_id: str) -> str:
        relpath = self.md.treeprocessors["relpath"] if "relpath" in self.md.treeprocessors else None
        page_file = getattr(relpath, "file", None)
        site_url = self.ext.getConfig("site_url")
        if page_file is not None and site_url:
            return f"{site_url.rstrip('/')}/{page_file.url}#{card_id}"
        if page_file is not None:
            return f"{page_file.src_uri}#{card_id}"
        h1 = next(root.iter("h1"), None)
        return f'"{_text(h1)}"' if h1 is not None else "(unknown page)"

    def run(self, root: etree.Element) -> None:
        repo_url = self.ext.getConfig("repo_url")
        made = self.ext.provenance()
        children = list(root)
        for k, heading in enumerate(children):
            if heading.tag != "h2" or not heading.get("id"):
                continue
            following = []
            for element in children[k + 1:]:
                if element.tag in {"h1", "h2"}:
                    break
                following.append(element)
            question = next((e for e in following if e.tag == "details" and "question" in e.get("class", "").split()),
                            None)
            if question is None:
                continue
            meta = etree.Element("p", {"class": "card-meta", "data-search-exclude": ""})   # not search text
            small = etree.SubElement(meta, "small")
            if repo_url:
                link = etree.SubElement(small, "a", {"class": "card-report", "href": report_url(
                    repo_url, heading.get("id"), _text(heading), self._page(root, heading.get("id")),
                    made.version, made.commit)})
                link.text = "Report a problem with this card"
                link.tail = " · "
            stamp = etree.SubElement(small, "span", {"class": "card-verified"})
            stamp.text = made.line()
            if made.commit:
                stamp.set("title", f"commit {made.commit}")
            root.insert(list(root).index(following[-1]) + 1, meta)


class CardFooterExtension(Extension):
    """Register the card footer (see the module docstring)."""

    def __init__(self, **kwargs):
        self.config = {
            "repo_url": ["", "repository address for the report link (default: repo_url of config_file)"],
            "site_url": ["", "site address for the page in the report (default: site_url of config_file)"],
            "config_file": ["mkdocs.yml", "the site configuration to read repo_url and site_url from"],
            "version": ["", "the version shown (default: gdl_ref.__version__)"],
            "date": ["", "the date shown, YYYY-MM-DD (default: the commit's, see the module docstring)"],
            "commit": ["", "the commit shown (default: git rev-parse HEAD)"],
        }
        super().__init__(**kwargs)
        site = _site_config(self.getConfig("config_file"))
        for key in ("repo_url", "site_url"):
            if not self.getConfig(key) and isinstance(site.get(key), str):
                self.setConfig(key, site[key])

    def provenance(self) -> Provenance:
        found = provenance(str(Path(self.getConfig("config_file")).resolve().parent))
        given = {k: self.getConfig(k) for k in ("version", "date", "commit") if self.getConfig(k)}
        if not given:
            return found
        return Provenance(given.get("version", found.version), given.get("commit", found.commit),
                          given.get("date", found.date), verified=True)

    def extendMarkdown(self, md: Markdown) -> None:
        # After attr_list (priority 8) has set the heading ids; before toc (5) reads the headings.
        md.treeprocessors.register(_CardFooter(md, self), "gdl_ref_card_footer", 6)


def makeExtension(**kwargs) -> CardFooterExtension:  # noqa: N802 (the name Python-Markdown looks for)
    """Python-Markdown's entry point: `markdown_extensions: [gdl_site.cards.card_footer]`."""
    return CardFooterExtension(**kwargs)
