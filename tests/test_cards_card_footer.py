"""Each card ends with a prefilled report link and the version and date it was verified with."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import markdown
import pytest

from gdl_site.cards.card_footer import CardFooterExtension, provenance, report_url

PAGE = """# Flows

Intro.

## The change of variables {#flow-change-of-variables}

Background with `code`.

??? question "What does a flow compute?"

    The answer.

## References

Not a card.
"""
CONFIG = {"repo_url": "https://github.com/gdl-ref/gdl-ref", "version": "0.1.0", "date": "2026-01-02",
          "commit": "abc123", "config_file": "/nonexistent/mkdocs.yml"}


def render(text: str, **config) -> str:
    extensions = ["attr_list", "pymdownx.details", CardFooterExtension(**{**CONFIG, **config})]
    return markdown.markdown(text, extensions=extensions)


def query(html: str) -> dict[str, str]:
    href = html.split('class="card-report" href="')[1].split('"')[0].replace("&amp;", "&")
    parts = urlsplit(href)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://github.com/gdl-ref/gdl-ref/issues/new"
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


def test_a_card_gets_a_footer_after_its_question_and_a_section_none():
    html = render(PAGE)
    assert html.count('<p class="card-meta" data-search-exclude="">') == 1
    question_end = html.index("</details>")
    assert html.index('class="card-meta"') > question_end > 0
    assert html.index('class="card-meta"') < html.index("<h2>References</h2>")
    assert '<span class="card-verified" title="commit abc123">Verified with gdl-ref 0.1.0 on 2026-01-02</span>' in html
    fields = query(html)
    assert fields["title"] == "Card flow-change-of-variables: "
    assert "**Card:** `flow-change-of-variables` (The change of variables)" in fields["body"]
    assert '**Page:** "Flows"' in fields["body"] and "gdl-ref 0.1.0, commit abc123" in fields["body"]


def test_no_repo_url_no_link(tmp_path):
    html = render(PAGE, repo_url="", config_file=str(tmp_path / "none.yml"))
    assert "card-report" not in html and "Verified with gdl-ref 0.1.0" in html


def test_repo_and_site_url_are_read_from_mkdocs_yml(tmp_path):
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nrepo_url: https://github.com/gdl-ref/gdl-ref\n"
                                         "site_url: https://example.org/site/\n"
                                         "x: !!python/name:builtins.print\n", encoding="utf-8")
    ext = CardFooterExtension(config_file=str(tmp_path / "mkdocs.yml"))
    assert (ext.getConfig("repo_url"), ext.getConfig("site_url")) == ("https://github.com/gdl-ref/gdl-ref",
                                                                      "https://example.org/site/")


def test_report_url_is_percent_encoded():
    url = report_url("https://github.com/o/r/", "a-b", "Q & A?", "p#x", "1.0", "")
    assert url.startswith("https://github.com/o/r/issues/new?title=Card%20a-b%3A%20&body=")
    assert " " not in url and "&A" not in url


def git(folder: Path, *args: str, date: str = "2025-03-04T05:06:07Z") -> None:
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date, "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, env=env)


def test_the_date_is_the_commits_and_uncommitted_changes_are_not_verified(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    git(tmp_path, "init", "-q")
    (tmp_path / "page.md").write_text("one\n", encoding="utf-8")
    git(tmp_path, "add", "page.md")
    git(tmp_path, "commit", "-q", "-m", "one")
    provenance.cache_clear()
    made = provenance(str(tmp_path))
    assert (made.date, made.verified, len(made.commit)) == ("2025-03-04", True, 12)
    assert made.line().startswith("Verified with gdl-ref ") and made.line().endswith(" on 2025-03-04")
    (tmp_path / "page.md").write_text("two\n", encoding="utf-8")
    provenance.cache_clear()
    assert not provenance(str(tmp_path)).verified
    assert "uncommitted changes" in provenance(str(tmp_path)).line()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    provenance.cache_clear()
    assert provenance(str(tmp_path)).date == "2023-11-14"
    provenance.cache_clear()


@pytest.mark.site  # builds a small site with MkDocs
def test_mkdocs_gives_the_page_address(tmp_path):
    (tmp_path / "docs" / "families").mkdir(parents=True)
    (tmp_path / "docs" / "index.md").write_text("# Home\n", encoding="utf-8")
    (tmp_path / "docs" / "families" / "flows.md").write_text(PAGE, encoding="utf-8")
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\nsite_url: https://example.org/site/\nrepo_url: https://github.com/gdl-ref/gdl-ref\n"
        "markdown_extensions:\n  - attr_list\n  - pymdownx.details\n  - gdl_site.cards.card_footer\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "--site-dir", str(tmp_path / "site")],
                   cwd=tmp_path, check=True, capture_output=True, env=env)
    html = (tmp_path / "site" / "families" / "flows" / "index.html").read_text(encoding="utf-8")
    body = query(html)["body"]
    assert "**Page:** https://example.org/site/families/flows/#flow-change-of-variables" in body
    assert "outside a git checkout: not verified" in html


@pytest.mark.parametrize("title", ["A card with <em>raw</em> HTML {#raw-html}"])
def test_the_title_in_the_report_has_no_placeholders(title):
    fields = query(render(PAGE.replace("The change of variables {#flow-change-of-variables}", title)))
    assert "\x02" not in fields["body"] and "\x03" not in fields["body"] and "A card with" in fields["body"]
