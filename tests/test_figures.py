"""No page states a measured figure that no code produced.

The site promises that every number was measured by code in the repository. A figure typed into prose
goes stale the day the code changes, so this test scans the Markdown of ``docs/`` and ``README.md``
for measured figures -- a duration, a percentage, nats, bits per dimension, a size in bytes, a rate
per second, an accuracy -- and fails on each one that stands outside

* a fence a test runs, its expected-output block, an embedded section of the package, or a fence
  shown but not run (the code is the source of its own numbers);
* a generated include (``--8<-- "docs/benchmarks.md:section"``, rendered from a recorded run);
* a restatement of a number that such a block or include on the same page prints (same value at the
  precision shown), so prose may say "106.5 nats" under an output block that prints 106.47.

Math, inline code, link targets and HTML comments are not prose and are not scanned. Definitions that
look like measurements (a budget the benchmark is given, a target, what an ideal score is) are in the
commented ``ALLOWED`` list below; each entry says why it is not a measurement.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from gdl_site.cards.fences import SNIPPET, classify, resolve_snippet

ROOT = Path(__file__).resolve().parents[1]
# The pages' sources: Markdown under docs/ but the folders the build step writes (git-ignored, made from
# the notebooks and the cards), the README, and the notebooks themselves (their Markdown cells).
GENERATED_FOLDERS = ("docs/notebooks/", "docs/downloads/")
PAGES = sorted(name for name in (p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))
               if not name.startswith(GENERATED_FOLDERS)) + ["README.md"]
NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.ipynb"))

_NUMBER_WORDS = (r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
                 r"forty|fifty|sixty|ninety|a hundred|hundreds of|a few|several|a couple of|half an?|an?")
NUMBER = rf"(?:(?<![\w.,])(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?|\b(?:{_NUMBER_WORDS}))"
UNIT = (r"(?:seconds?|secs?|s|ms|minutes?|mins?|hours?|h|%|per ?cent|nats?|bits?/dim|bits per dim\w*|bits|"
        r"[KMGT]i?B|bytes?|megabytes?|gigabytes?|(?:ex|examples|images|steps|it)/s|per second)")
# A number, then a unit: "%" may follow at once, any other unit after a space or a hyphen.
MEASURED = re.compile(rf"(?P<figure>{NUMBER}(?:\s?%|[ \u00a0-]{UNIT}(?![\w/])))", re.IGNORECASE)
ACCURACY = re.compile(r"(?P<figure>accurac(?:y|ies)\b[^.\n]{0,40}?(?<![\w.])[01]?\.\d+|"
                      r"(?<![\w.])[01]?\.\d+\s+(?:test\s+)?accuracy)", re.IGNORECASE)
# A number as it is printed: 1,797 / 106.47 / -0.003 / 1.2e-05.
PRINTED = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")

# Prose that is not scanned: math, inline code, HTML comments, link targets, bare URLs.
_NOT_PROSE = [re.compile(p, re.DOTALL) for p in (
    r"\$\$.*?\$\$", r"(?<!\\)\$[^$\n]+\$", r"(`+).+?\1", r"<!--.*?-->", r"\]\([^)]*\)", r"https?://\S+")]

# Definitions that the patterns above would take for measurements: (page or "*", regex, why it is not
# a measured figure). An entry matches when its regex matches a span of the line that holds the figure.
ALLOWED: list[tuple[str, str, str]] = [
    # A wall-clock budget is a setting of a run (--budget-seconds), not something it measured.
    ("*", r"(?:trains?|for|at most|the same) (?:for )?(?:at most )?two minutes", "the benchmark's budget"),
    ("*", r"trains for minutes", "says only that it is slow, no figure"),
    # What an ideal or a chance score is: a property of the metric, not a measurement.
    ("*", r"accuracy (?:near |of )?0\.5|0\.5 is ideal|0\.5 (?:means|is chance)", "1-NN accuracy of chance"),
    # Unit definitions.
    ("*", r"nats / \(64 ln 2\)|per image and bits per dimension", "the definition of bits per dimension"),
    # Settings, not results: a default budget, a share fixed by a parameter, the load-average windows.
    ("*", r"budget[^\n]*\b\d+ s per run", "the benchmark's budget"),
    ("docs/guide/cli.md", r"60 seconds if none is given", "the default budget of --seconds"),
    ("docs/families/ebm.md", r"95% of the chains start|and 5% from uniform noise",
     "the shares that reuse = 0.95 sets; the block below measures them"),
    ("*", r"load average \(1, 5, 15 min\)", "the windows of the load average"),
    # Mathematics, not measurement: the mass of a 2-D standard Gaussian within 3 sd is 1 - exp(-9/2).
    ("docs/families/gan.md", r"three standard deviations hold 98\.9%", "1 - exp(-4.5) = 0.9889"),
    # Targets are goals the project sets, not results.
    ("*", r"target[^.\n]{0,40}(?:bits/dim|nats)|(?:bits/dim|KL(?: gap)?) ≤ [\d.]+(?: nats)?", "a target"),
]

# Hand-typed figures on pages that are being regenerated elsewhere: (page, the figure as found).
# Every entry makes its page's test an expected failure that lists it, and an entry that is no longer
# found fails the test, so this list can only shrink. It is to be emptied, not extended.
KNOWN_PENDING: dict[str, list[str]] = {}

# Pages that code writes whole, with a test that fails when the page and its source disagree: every figure
# on them is generated, the recorded run's own note included.
GENERATED_PAGES: dict[str, str] = {
    "docs/benchmarks.md": "benchmarks/render_page.py renders it from the recorded JSON; "
                          "tests/test_bench.py fails when the two disagree",
}


@dataclass(frozen=True)
class Figure:
    page: str
    line: int
    figure: str
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.figure!r} in: {self.text.strip()[:120]}"


def _blank(text: str, pattern: re.Pattern[str]) -> str:
    """Replace each match by spaces, keeping newlines, so line numbers and columns survive."""
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def _numbers(text: str) -> set[float]:
    return {float(n.replace(",", "")) for n in PRINTED.findall(text)}


def _generated_numbers(page: str, text: str, fences: list) -> set[float]:
    """Numbers printed by the page's code blocks and by the generated sections it includes."""
    found: set[float] = set()
    for fence in fences:
        if fence.kind in {"output", "run"}:
            found |= _numbers("\n".join(fence.body))
    for line in text.splitlines():
        match = SNIPPET.match(line)
        if match and match.group("ref").startswith("docs/"):
            included = resolve_snippet(match.group("ref"), ROOT)
            if included:
                found |= _numbers(included)
    return found


def _restated(figure: str, generated: set[float]) -> bool:
    """Whether every number of the figure is a generated number shown at the figure's precision."""
    numbers = PRINTED.findall(figure)
    if not numbers:
        return False
    for shown in numbers:
        decimals = len(shown.split(".")[1]) if "." in shown else 0
        value = float(shown.replace(",", ""))
        if not any(round(g, decimals) == value for g in generated):
            return False
    return True


def _allowed(page: str, line: str, start: int, end: int) -> bool:
    for where, pattern, _why in ALLOWED:
        if where not in ("*", page):
            continue
        for match in re.finditer(pattern, line, re.IGNORECASE):
            if match.start() < end and start < match.end():
                return True
    return False


def hand_typed_figures(page: str, text: str | None = None) -> list[Figure]:
    """The measured figures in ``page``'s prose (or in ``text``, read as that page) that no code on it produced."""
    text = (ROOT / page).read_text(encoding="utf-8") if text is None else text
    fences = classify(text, page, ROOT)
    lines = text.splitlines()
    generated = _generated_numbers(page, text, fences)
    for fence in fences:  # code of every kind is its own source: blank it out
        for k in range(fence.line - 1, min(fence.end_line, len(lines))):
            lines[k] = ""
    prose = "\n".join("" if SNIPPET.match(line) else line for line in lines)
    for pattern in _NOT_PROSE:
        prose = _blank(prose, pattern)
    found = []
    for number, line in enumerate(prose.splitlines(), start=1):
        for pattern in (MEASURED, ACCURACY):
            for match in pattern.finditer(line):
                figure = match.group("figure")
                if re.fullmatch(r"an? [\w/%-]+", figure, re.I) and not re.fullmatch(r"an? (?:minute|hour)", figure, re.I):
                    continue  # "a" / "an" counts only as "a minute" or "an hour" ("a second" is mostly an ordinal)
                if _restated(figure, generated) or _allowed(page, line, match.start(), match.end()):
                    continue
                found.append(Figure(page, number, figure, text.splitlines()[number - 1]))
    return found


@pytest.mark.parametrize("page", PAGES)
def test_no_hand_typed_measured_figures(page: str) -> None:
    if page in GENERATED_PAGES:
        assert (ROOT / page).is_file(), f"{page} is listed as generated but does not exist"
        return
    found = hand_typed_figures(page)
    pending = KNOWN_PENDING.get(page, [])
    stale = [p for p in pending if p not in {f.figure for f in found}]
    assert not stale, f"{page}: no longer found, remove from KNOWN_PENDING: {stale}"
    new = [f for f in found if f.figure not in pending]
    assert not new, "figures typed by hand (generate them, restate a printed value, or remove them):\n" + "\n".join(
        map(str, new))
    if pending:
        pytest.xfail(f"{page}: {len(pending)} hand-typed figures pending: {pending}")


def notebook_prose(path: str) -> str:
    """The Markdown cells of a notebook, one after another (its code and outputs are their own source)."""
    cells = json.loads((ROOT / path).read_text(encoding="utf-8"))["cells"]
    return "\n\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_no_hand_typed_measured_figures_in_notebooks(notebook: str) -> None:
    found = hand_typed_figures(notebook, notebook_prose(notebook))
    assert not found, "figures typed by hand (generate them, restate a printed value, or remove them):\n" + "\n".join(
        map(str, found))


def test_the_check_finds_what_it_should() -> None:
    """Each kind of figure is caught in prose and passed over in code, math and generated output."""
    sample = (
        "# Sample\n\nIt took 5.6 s, about four minutes, and 86 %.\n"
        "The data are about 11 MB; the test NLL is 106.5 nats or 2.40 bits/dim; accuracies 0.9940 / 0.9886.\n"
        "Definitions pass: 8×8 pixels, 17 levels, chapter 7, the year 2014, `--budget-seconds 120`, $64 \\ln 2$ nats.\n"
        "Allowed: the benchmark trains for two minutes; a 1-NN accuracy near 0.5 is chance; the generated ones;"
        " a second network.\nCaught: under a minute and a half, about an hour.\n\n"
        "```python\nprint(f\"{1.2345:.2f} s\")\n```\n\n<!--pytest-codeblocks:expected-output-->\n\n"
        "```text\n1.23 s\n```\n\nRestated from the output: 1.23 s.\n")
    figures = [f.figure for f in hand_typed_figures("docs/sample.md", sample)]
    assert figures == ["5.6 s", "four minutes", "86 %", "11 MB", "106.5 nats", "2.40 bits/dim",
                       "accuracies 0.9940", "a minute", "an hour"]
