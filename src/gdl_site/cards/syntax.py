"""The Markdown the card tools recognise as the site's renderer does: math delimiters, display blocks.

Shared by the validator, the renderer and the HTML check, so that each blanks or converts the same
spans. The inline rule is pymdownx.arithmatex's "smart dollar": no space just inside the dollars.
"""

from __future__ import annotations

import re

__all__ = ["DOCS", "INLINE_DOLLAR", "INLINE_ROUND", "BLOCKS"]

DOCS = "docs"   # the site's pages, below the repository root

INLINE_DOLLAR = re.compile(r"(?<!\\)\$(?!\s)((?:\\.|[^\\$])+?)(?<!\s)\$")  # $x$
INLINE_ROUND = re.compile(r"(?<!\\)\\\(((?:\\[^)]|[^\\])+?)\\\)")  # \(x\)
BLOCKS = (re.compile(r"^\$\$(.+?)\$\$$", re.S),  # $$x$$
          re.compile(r"^\\\[(.+?)\\\]$", re.S),  # \[x\]
          re.compile(r"^(\\begin\{([a-z]+\*?)\}.+?\\end\{\2\})$", re.S))  # \begin{align}...\end{align}
