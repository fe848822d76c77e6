"""Every code fence on the site and in the README is run, embedded from the package, or skipped with a reason.

The rules are gdl_site.cards.fences (see CONTRIBUTING.md, "Code on a card"); this test fails
listing `file:line: problem` for each fence no test runs and each embed that does not resolve.
"""

from pathlib import Path

from gdl_site.cards.fences import audit_paths, fence_problems

ROOT = Path(__file__).resolve().parents[1]


def test_every_fence_is_run_embedded_or_skipped_with_a_reason():
    targets = [p for p in (ROOT / "docs", ROOT / "README.md", ROOT / "CONTRIBUTING.md") if p.exists()]
    fences = audit_paths(targets, ROOT)
    problems = fence_problems(fences)
    assert not problems, "fences that no test runs or that are broken:\n" + "\n".join(problems)
