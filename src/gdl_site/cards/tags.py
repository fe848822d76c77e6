"""Anki tags of a card: its page, the book chapter the page covers, and its model family.

Tags are hierarchical (Anki shows ``a::b`` as a tree) under ``gdl-ref::`` so that they do not mix
with a reader's own tags:

- ``gdl-ref::page::<page stem>``, e.g. ``gdl-ref::page::flows``;
- ``gdl-ref::book-chapter::<NN>``, from the sentence every chapter page opens with, "... in chapter N
  of *Generative Deep Learning* ..." (Foster, 2nd ed., 2023), zero-padded so that they sort;
- ``gdl-ref::family::<family>`` for a family page, named as in ``gdl_ref.models.registry``;
- the page's own front-matter ``tags:``, spaces replaced by hyphens (an Anki tag is one word).
"""

from __future__ import annotations

import re

from .model import Page

__all__ = ["FAMILY_PAGES", "page_tags"]

PREFIX = "gdl-ref::"
BOOK_CHAPTER = re.compile(r"\bchapter\s+(\d+)\s+of\s+\*Generative\s+Deep\s+Learning\*", re.I)
# docs/families/<page>.md -> its family in gdl_ref.models.registry (tests/test_cards_tags.py checks both sides).
FAMILY_PAGES = {"autoregressive": "autoregressive", "flows": "flow", "vae": "vae", "diffusion": "diffusion",
                "gan": "gan", "ebm": "ebm"}


def page_tags(page: Page) -> list[str]:
    """The tags every card of `page` carries."""
    tags = [f"{PREFIX}page::{page.chapter}"]
    chapter = BOOK_CHAPTER.search(page.intro or page.text)
    if chapter:
        tags.append(f"{PREFIX}book-chapter::{int(chapter.group(1)):02d}")
    if page.chapter in FAMILY_PAGES:
        tags.append(f"{PREFIX}family::{FAMILY_PAGES[page.chapter]}")
    tags += ["-".join(t.split()) for t in page.tags if t.strip()]
    return list(dict.fromkeys(tags))
