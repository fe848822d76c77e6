"""Which code fences of a Markdown page a test runs.

A page may hold exactly three kinds of code (CONTRIBUTING.md, "Code on a card"):

- run:      info string exactly ``python``, ``sh`` or ``bash`` (backticks): pytest-codeblocks
            collects and runs it; ``<!--pytest-codeblocks:cont-->`` joins it to the block before.
- embed:    a titled fence holding only ``--8<-- "src/gdl_ref/x.py:section"`` lines; the file and
            its ``[start:section]`` / ``[end:section]`` markers must exist.
- skipped:  a run fence after a skip marker (``<!--pytest.mark.skip(reason="...")-->`` or
            ``skipif``; the older ``<!--pytest-codeblocks:skip-->`` still skips but is reported as
            deprecated); the page must say why, in a line ``*Not run here: <reason>*`` directly above
            the marker or directly below the fence.

Beside them: ``output`` (the fence after ``<!--pytest-codeblocks:expected-output-->``), ``other``
(text, yaml, toml, console, ...) and ``untested`` -- Python or shell code that no test runs
(``py``, ``python3``, ``pycon``, ``python title="..."`` holding code, a ``~~~python`` fence), which
is an error. The rules follow pytest-codeblocks 0.18: a marker counts only on a line of its own
and applies to the next fence; the fence's info string is compared exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .embeds import ref_problem

__all__ = ["Fence", "KINDS", "classify", "inside_fences", "audit_file", "audit_paths", "fence_problems",
           "resolve_snippet", "REASON_HINT"]

KINDS = ("run", "skipped", "output", "embed", "untested", "other")
RUN_LANGS = frozenset({"python", "sh", "bash"})
CODE_LANGS = frozenset({"python", "py", "python3", "pycon", "ipython", "sh", "bash", "shell", "zsh"})
OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})(?P<info>.*)$")
SNIPPET = re.compile(r'^\s*-+8<-+\s+"(?P<ref>[^"]+)"\s*$')
SNIPPET_ANYWHERE = re.compile(r'-+8<-+\s+"')
CODEBLOCKS_LINE = re.compile(r"^<!--[-\s]*pytest-codeblocks:(?P<kw>.*)-->$")
MARK_LINE = re.compile(r"^<!--[-\s]*(?P<mark>pytest\.mark\..*)-->$")
MARKER_ANYWHERE = re.compile(r"<!--[-\s]*(pytest-codeblocks:|pytest\.mark\.)")
SKIP = re.compile(r"^(skip|skipif\(.*\)|pytest\.mark\.skip(if)?\b.*)$")
KEYWORDS = re.compile(r"^(skip|skipif\(.*\)|cont|expected-output(-ignore-whitespace)?|"
                      r"importorskip\(.*\)|expect-exception|expect-error|skipfile)$")
INLINE_CODE = re.compile(r"(`+).*?\1")
REASON = re.compile(r"Not run here:\s*\S.{2,}")
REASON_HINT = "*Not run here: <reason>*"


@dataclass
class Fence:
    """One fenced code block: where it is, what it is, what is wrong with it."""

    file: str
    line: int                  # 1-based line of the opening fence
    end_line: int              # 1-based line of the closing fence
    indent: str                # leading whitespace of the opening fence
    info: str                  # the info string, stripped (e.g. 'python title="x.py"')
    lang: str                  # first word of the info string, lower case
    body: list[str]            # the lines inside, indentation removed
    kind: str = "other"        # one of KINDS
    markers: list[str] = field(default_factory=list)   # pytest-codeblocks keywords / marks before it
    refs: list[str] = field(default_factory=list)      # snippet references of an embed
    problems: list[str] = field(default_factory=list)                    # reported at the opening fence
    line_problems: list[tuple[int, str]] = field(default_factory=list)   # (line, problem): an embed's own line

    @property
    def code(self) -> str:
        return "\n".join(self.body) + ("\n" if self.body else "")


def resolve_snippet(ref: str, root: Path) -> str | None:
    """None when `path[:section]` names a file inside root (and a section it marks), else why not.

    The snippets inside the included text are not followed: gdl_site.cards.embeds.ref_problem does that.
    """
    return ref_problem(ref, root, nested=False)


def _marker_problem(path: str, idx: int, problem: str) -> Fence:
    """A marker line with a problem: reported like a fence of kind "marker" (not one of KINDS)."""
    return Fence(path, idx + 1, idx + 1, "", "", "", [], "marker", problems=[problem])


def _lang(info: str) -> str:
    return re.split(r"[\s{]", info.lstrip("{."), maxsplit=1)[0].lower() if info else ""


def _has_reason(lines: list[str], marker_idx: int, fence_start: int, fence_end: int) -> bool:
    """A `Not run here:` paragraph directly above the marker, between marker and fence, or directly below."""
    def paragraph(idx: int, step: int) -> str:
        while 0 <= idx < len(lines) and not lines[idx].strip():
            idx += step
        found: list[str] = []
        while 0 <= idx < len(lines) and lines[idx].strip() and not OPEN.match(lines[idx]):
            found.append(lines[idx].strip())
            idx += step
        return " ".join(found[::step])
    candidates = [paragraph(marker_idx - 1, -1), paragraph(fence_end + 1, 1)]
    candidates += lines[marker_idx + 1:fence_start]
    return any(REASON.search(c) for c in candidates)


def classify(text: str, path: str = "<string>", root: Path | str = ".") -> list[Fence]:
    """Every fence of a Markdown text, in order, each with its kind and problems.

    root is the folder snippet paths are relative to (the repository root).
    """
    root = Path(root)
    lines = text.splitlines()
    fences: list[Fence] = []
    pending: list[tuple[int, str]] = []   # (line index, keyword or mark) since the last fence
    skipfile = bool(lines) and lines[0].strip() == "<!--pytest-codeblocks:skipfile-->"
    last_collected: Fence | None = None   # last fence pytest-codeblocks turned into a block
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        opened = OPEN.match(line)
        if not opened:
            kw, mark = CODEBLOCKS_LINE.match(stripped), MARK_LINE.match(stripped)
            if kw:
                keyword = kw.group("kw").strip("- ")
                pending.append((i, keyword))
                if not KEYWORDS.match(keyword):
                    fences.append(_marker_problem(path, i, f'unknown pytest-codeblocks keyword "{keyword}" '
                                                           "(pytest fails to collect the page)"))
                elif SKIP.match(keyword):
                    fences.append(_marker_problem(path, i, f"<!--pytest-codeblocks:{keyword}--> is deprecated "
                                                           "(pytest warns on every run): write "
                                                           '<!--pytest.mark.skip(reason="...")--> with the '
                                                           "reason the page gives"))
            elif mark:
                pending.append((i, mark.group("mark").strip()))
            elif MARKER_ANYWHERE.search(INLINE_CODE.sub("", line)):
                fences.append(_marker_problem(path, i, "a pytest-codeblocks marker counts only on a line "
                                                       "of its own; this one is ignored"))
            i += 1
            continue
        indent, ticks, info = opened.group("indent"), opened.group("ticks"), opened.group("info").strip()
        if ticks[0] == "`" and "`" in info:  # inline code such as ```x``` is not a fence
            i += 1
            continue
        start = i
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            close = OPEN.match(lines[i])
            if (close and close.group("ticks")[0] == ticks[0] and len(close.group("ticks")) >= len(ticks)
                    and not close.group("info").strip()):
                closed = True
                break
            raw = lines[i]
            cut = min(len(indent), len(raw) - len(raw.lstrip()))
            body.append(raw[cut:])
            i += 1
        fence = Fence(path, start + 1, i + 1, indent, info, _lang(info), body)
        keywords = [k for _, k in pending]
        marker_idx = pending[0][0] if pending else start
        pending = []
        i += 1
        if not closed:
            fence.problems.append("fence never closed (pytest fails to collect the page)")
        refs_at = [(start + 2 + k, m.group("ref")) for k, m in enumerate(map(SNIPPET.match, body)) if m]
        refs = [ref for _, ref in refs_at]
        only_snippets = bool(refs) and all(SNIPPET.match(b) or not b.strip() for b in body)
        is_backtick_run = ticks[0] == "`" and info in RUN_LANGS
        fence.markers = keywords
        if any(k.startswith("expected-output") for k in keywords):
            fence.kind = "output"
            if last_collected is None or last_collected.kind not in {"run", "skipped"}:
                fence.problems.append("expected-output block does not follow a fence that runs "
                                      "(the fence before it is not ```python, ```sh or ```bash)")
        elif "cont" in keywords and ticks[0] == "`":
            fence.kind = last_collected.kind if last_collected else "untested"
            if last_collected is None:
                fence.problems.append("<!--pytest-codeblocks:cont--> with no code block before it")
        elif only_snippets:
            fence.kind = "embed"
            fence.refs = refs
            fence.line_problems += [(line, p) for line, r in refs_at if (p := ref_problem(r, root))]
            if is_backtick_run:
                fence.problems.append('pytest-codeblocks runs this fence and fails on the --8<-- line: '
                                      'give it a title, e.g. ```python title="src/gdl_ref/x.py"')
        elif is_backtick_run:
            skip = skipfile or any(SKIP.match(k) for k in keywords)
            fence.kind = "skipped" if skip else "run"
            if skip and not skipfile and not _has_reason(lines, marker_idx, start, fence.end_line - 1):
                fence.problems.append(f"skipped fence with no reason: write {REASON_HINT} "
                                      "directly above the skip marker or directly below the fence")
            if skipfile:
                fence.problems.append("the whole page is skipped (<!--pytest-codeblocks:skipfile-->): "
                                      "skip single fences, each with a reason")
            if any(SNIPPET_ANYWHERE.search(b) for b in body):
                fence.problems.append("a --8<-- line among other code: pytest-codeblocks does not expand it; "
                                      "put the embed in a fence of its own with a title")
        elif fence.lang in CODE_LANGS:
            fence.kind = "untested"
            fence.problems.append(
                f"no test runs this fence ({ticks[:3]}{info}): pytest-codeblocks runs only ```python, "
                "```sh or ```bash exactly; run it, mark it skipped with a reason, or embed package code "
                "with --8<--")
        else:
            fence.kind = "other"
        if ticks[0] == "`" and fence.kind != "output" and "cont" not in keywords:
            last_collected = fence  # pytest-codeblocks made a block of it
        fences.append(fence)
    return fences


def inside_fences(fences: list[Fence], n_lines: int) -> list[bool]:
    """inside[k] is True when line k (1-based) of an ``n_lines``-line text lies in one of ``fences`` (the
    result of ``classify``), its opening and closing lines included; a fence never closed runs to the last
    line. Marker lines are not fences. The list has n_lines + 2 entries, the first and the last False."""
    inside = [False] * (n_lines + 2)
    for f in fences:
        if f.kind == "marker":
            continue
        for k in range(f.line, min(f.end_line, n_lines) + 1):
            inside[k] = True
    return inside


def audit_file(md: Path, root: Path | str = ".") -> list[Fence]:
    """classify() a file, naming it relative to root where it lies below it."""
    root = Path(root).resolve()
    md = Path(md)
    full = md.resolve()
    name = str(full.relative_to(root)) if full.is_relative_to(root) else str(md)
    return classify(full.read_text(encoding="utf-8"), name, root)


def markdown_files(paths: list[Path | str]) -> list[Path]:
    """The .md files named, and those below the folders named, sorted."""
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.rglob("*.md")) if p.is_dir() else [p]
    return files


def audit_paths(paths: list[Path | str], root: Path | str = ".") -> list[Fence]:
    """Every fence of every Markdown file under paths (files or folders)."""
    return [f for md in markdown_files(paths) for f in audit_file(md, root)]


def fence_problems(fences: list[Fence]) -> list[str]:
    """`file:line: problem` for every problem, in file order."""
    found = [(f.line, p) for f in fences for p in f.problems] + [lp for f in fences for lp in f.line_problems]
    file = fences[0].file if fences else ""
    return [f"{file}:{line}: {p}" for line, p in sorted(found, key=lambda item: item[0])]
