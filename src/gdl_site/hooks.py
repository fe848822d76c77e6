"""MkDocs hook (named in ``mkdocs.yml`` under ``hooks:``): run the site's build step first.

Everything the pages need is made either by a Markdown extension (math: ``gdl_site.math``;
embed checks: ``gdl_site.embeds``) or by the build step :mod:`gdl_site.prepare` (the card
downloads, the family notebooks, the notebook pages). Zensical runs the extensions but no hooks,
so its documented command runs the step itself; under MkDocs this hook runs it on every build,
``mkdocs serve`` rebuilds included. The step writes a file only when its content changed, so a
rebuild does not trigger another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gdl_site.prepare import prepare  # absolute: MkDocs loads this file by its path


def on_pre_build(config: Any) -> None:
    """mkdocs hook: the downloads and notebook pages, before MkDocs collects ``docs/``."""
    prepare(Path(config["config_file_path"]).parent, quiet=True)
