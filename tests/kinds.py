"""What each test is: the LIBRARY, the SITE or the CONTENT (see CONTRIBUTING.md, "Which tests to run").

- ``library``: the packages' code on small inputs it makes itself -- the models, training, evaluation,
  data, checkpoints, the CLI (``gdl-ref`` and ``gdl-ref cards``), the card tooling, the bench harness.
  The page snippets (the code blocks of ``docs/*.md``, ``README.md`` and ``CONTRIBUTING.md`` that
  pytest-codeblocks runs) go with it: they are the library's API as a reader calls it.
- ``site``: anything that builds a site with MkDocs or Zensical (the repository's, through the
  ``built_site``/``zensical_site``/``any_site`` fixtures, or a small one in a temporary folder), checks
  the built site's links, drives the browser, the Study page, the notebooks the build executes.
- ``content``: what the pages and cards of ``docs/`` say -- the chapter pages, the errata, the card
  checks over ``docs/`` and the lock file of its cards, the fences and the figures on the pages.

``tests/conftest.py`` marks every collected item with its kind (``pytest_collection_modifyitems``):
an item marked with a kind in its file keeps that kind; an item that takes a site-build fixture is
``site`` whatever its module, so a new test that uses the build is never run by ``pytest -m "not site"``;
any other takes its module's kind from ``MODULE_KINDS``. ``tests/test_markers.py`` fails when
a test module is missing from the table, or an item ends up with no kind or with two.
"""

from __future__ import annotations

KINDS = ("library", "site", "content")

# The session fixtures that build the repository's site (tests/conftest.py).
SITE_BUILD_FIXTURES = frozenset({"built_site", "zensical_site", "any_site"})

# The code blocks of the pages (pytest-codeblocks items) are of this kind.
SNIPPET_KIND = "library"

MODULE_KINDS: dict[str, str] = {
    # the library: models, training, evaluation, data, CLI, bench harness, the cards tooling
    "test_autoregressive": "library",
    "test_bench": "library",
    "test_bounded_reads": "library",
    "test_cards_card_footer": "library",
    "test_cards_cli": "library",
    "test_cards_crowdanki": "library",
    "test_cards_embeds": "library",
    "test_cards_export": "library",
    "test_cards_export_safety": "library",
    "test_cards_fences": "library",
    "test_cards_html_safety": "library",
    "test_cards_importer": "library",
    "test_cards_lock": "library",
    "test_cards_mathml": "library",
    "test_cards_media": "library",
    "test_cards_notetype": "library",
    "test_cards_sanitise": "library",
    "test_cards_tags": "library",
    "test_cards_validate": "library",
    "test_checkpoint": "library",
    "test_cli": "library",
    "test_cli_errors": "library",
    "test_config_fields": "library",
    "test_data": "library",
    "test_diffusion": "library",
    "test_discriminative": "library",
    "test_distributed": "library",
    "test_ebm": "library",
    "test_eval_mode": "library",
    "test_evaluate": "library",
    "test_flows": "library",
    "test_gan": "library",
    "test_layers": "library",
    "test_likelihood": "library",
    "test_markers": "library",
    "test_metrics": "library",
    "test_mle": "library",
    "test_new_family": "library",
    "test_records": "library",
    "test_resume_ranks": "library",
    "test_run_lock": "library",
    "test_sample_limits": "library",
    "test_scale_free": "library",
    "test_sequence": "library",
    "test_train": "library",
    "test_vae": "library",
    # the site: builds, links, browser, the Study page, the executed notebooks
    "test_browser": "site",
    "test_links": "site",
    "test_site_build": "site",
    "test_site_extensions": "site",
    "test_site_notebooks": "site",
    "test_study": "site",
    # the content of docs/: pages, cards, errata, fences, figures
    "test_cards_contributing": "content",
    "test_cards_site": "content",
    "test_chapter_one": "content",
    "test_errata": "content",
    "test_fences": "content",
    "test_figures": "content",
}


def kinds_of(module: str, explicit: set[str], fixturenames: tuple[str, ...] | list[str], snippet: bool) -> set[str]:
    """The kinds an item gets: those marked in its file, else ``site`` if it takes a site-build fixture,
    else its module's (the snippets' for a page's code block). An item marked in its file with another
    kind than ``site`` that takes the build gets both, which ``tests/test_markers.py`` reports."""
    builds = bool(SITE_BUILD_FIXTURES.intersection(fixturenames))
    if explicit:
        return set(explicit) | ({"site"} if builds else set())
    if builds:
        return {"site"}
    if snippet:
        return {SNIPPET_KIND}
    return {MODULE_KINDS[module]} if module in MODULE_KINDS else set()
