"""The one error the site's build steps and Markdown extensions raise: ``file:line: what is wrong``.

Under MkDocs it is a :class:`mkdocs.exceptions.BuildError`, which MkDocs reports as one line and
aborts on, with no traceback. Without MkDocs (Zensical, ``python -m gdl_site.prepare``) it is a
plain :class:`ValueError` whose message is that same line.
"""

from __future__ import annotations

try:  # MkDocs prints a BuildError as its message alone; any other exception gets a traceback.
    from mkdocs.exceptions import BuildError as _Base
except ImportError:  # pragma: no cover - Zensical-only installs
    _Base = ValueError  # type: ignore[assignment,misc]

__all__ = ["SiteError"]


class SiteError(_Base):  # type: ignore[valid-type,misc]
    """A page or build input the site cannot be built from; the message names the file and line."""
