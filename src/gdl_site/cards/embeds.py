"""Embeds (`--8<--` lines) stay inside the repository.

pymdownx.snippets replaces a line ``--8<-- "path[:section]"`` (or ``'path'``, or the paths listed
between two bare ``--8<--`` lines) with the file it names, and does the same inside the included
text, at any depth. The path comes from a page, so it is untrusted: it must name a file inside
the repository root. :func:`contained` enforces that (no absolute path, no URL, no ``..`` that
climbs out, no symbolic link that points out); the validator, the export and the site build call it
before they read a byte. A line that starts with ``;`` is escaped and includes nothing.

pymdownx.snippets' own ``restrict_base_path`` compares ``os.path.abspath`` paths, so a symbolic
link inside the base that points outside still passes it; :func:`contained` resolves links.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

__all__ = ["EmbedOutside", "contained", "snippet_refs", "split_ref", "select_lines", "ref_problem", "expand"]

# pymdownx.snippets' line forms: an inline reference in double or single quotes, or a bare block marker.
INLINE = re.compile(r"""^(?P<indent>[ \t]*)(?P<escape>;*)-+8<-+[ \t]+(?P<q>["'])(?P<ref>.+?)(?P=q)[ \t]*\r?$""")
BLOCK = re.compile(r"^[ \t]*(?P<escape>;*)-+8<-+\r?$")
SECTION_MARK = re.compile(r"-+8<-+[ \t]+\[[ \t]*(start|end)[ \t]*:")
LINE_RANGE = re.compile(r"[\d:,-]+")
REF = re.compile(r"^(?P<path>.*?)(?::(?P<section>[\d:,-]*|[a-z][-_0-9a-z]*))?$", re.I | re.S)
DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
MAX_DEPTH = 16


class EmbedOutside(ValueError):
    """An embed path that leaves the repository (absolute, a URL, a `..` escape or a link out)."""


def split_ref(ref: str) -> tuple[str, str]:
    """`path:section` -> (path, section); the section is a name or line numbers ("" for none)."""
    m = REF.match(ref.strip())
    return m.group("path").strip(), (m.group("section") or "").strip()


def contained(path: str, root: Path | str) -> Path:
    """The file that `path` names below `root`, fully resolved; EmbedOutside when it is not inside root."""
    root = Path(root).resolve()
    if re.match(r"^[a-z][a-z0-9+.-]*://", path, re.I):
        raise EmbedOutside(f'embed path "{path}" is a URL: an embed names a file inside the repository')
    if path.startswith(("/", "\\", "~")) or DRIVE.match(path) or Path(path).is_absolute():
        raise EmbedOutside(f'embed path "{path}" is absolute: write it relative to the repository root')
    lexical = Path(os.path.normpath(root / path))
    if not lexical.is_relative_to(root):
        raise EmbedOutside(f'embed path "{path}" climbs out of the repository with "..": '
                           "an embed names a file inside it")
    real = lexical.resolve()
    if not real.is_relative_to(root):
        raise EmbedOutside(f'embed path "{path}" is a link to a file outside the repository')
    return real


def snippet_refs(lines: list[str]) -> list[tuple[int, str]]:
    """(1-based line, reference) of every snippet line that pymdownx.snippets would expand."""
    refs: list[tuple[int, str]] = []
    in_block = False
    for k, line in enumerate(lines, start=1):
        inline, block = INLINE.match(line), BLOCK.match(line)
        if block:
            if not block.group("escape"):
                in_block = not in_block
            continue
        if inline:
            if not inline.group("escape") and not in_block:
                refs.append((k, inline.group("ref")))
            continue
        if in_block and line.strip() and not line.strip().startswith(";"):
            refs.append((k, line.strip()))
    return refs


def select_lines(lines: list[str], section: str, path: str) -> list[str]:
    """The lines of a file that `path:section` names (all, a line range, or a named section)."""
    if not section:
        return lines
    if LINE_RANGE.fullmatch(section):
        start, _, end = section.partition(":")
        return lines[int(start or 1) - 1:int(end) if end else None]
    begin = next((i for i, ln in enumerate(lines) if f"[start:{section}]" in ln), None)
    stop = next((i for i, ln in enumerate(lines) if f"[end:{section}]" in ln), None)
    if begin is None or stop is None:
        missing = [m for m, at in ((f"[start:{section}]", begin), (f"[end:{section}]", stop)) if at is None]
        raise FileNotFoundError(f'section "{section}" not found in {path} (no {" or ".join(missing)} marker)')
    return lines[begin + 1:stop]


def _read(ref: str, root: Path) -> tuple[Path, list[str]]:
    """(file, selected lines) of a reference; EmbedOutside, FileNotFoundError or UnicodeError on a bad one."""
    path, section = split_ref(ref)
    target = contained(path, root)
    if not target.is_file():
        raise FileNotFoundError(f'embedded file "{path}" does not exist')
    try:
        lines = target.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UnicodeError(f'embedded file "{path}" is not UTF-8 text') from None
    return target, select_lines(lines, section, path)


def ref_problem(ref: str, root: Path | str, nested: bool = True, _seen: tuple[Path, ...] = ()) -> str | None:
    """None when `ref` resolves inside root (and, if nested, every snippet in the text it includes), else why not."""
    root = Path(root)
    try:
        target, lines = _read(ref, root)
    except (EmbedOutside, FileNotFoundError, UnicodeError) as exc:
        return str(exc)
    if not nested or target in _seen or len(_seen) >= MAX_DEPTH:
        return None   # pymdownx.snippets skips a file already being included
    for k, inner in snippet_refs(lines):
        why = ref_problem(inner, root, True, _seen + (target,))
        if why:
            return f"{why} (included by {split_ref(ref)[0]}, line {k} of the included text)"
    return None


def expand(ref: str, root: Path | str, _seen: tuple[Path, ...] = ()) -> str:
    """The text pymdownx.snippets puts in place of `--8<-- "ref"`: nested snippets expanded, section markers dropped.

    Raises EmbedOutside before reading a file outside root, FileNotFoundError for a missing file or section.
    """
    root = Path(root)
    target, lines = _read(ref, root)
    nested = dict(snippet_refs(lines)) if target not in _seen and len(_seen) < MAX_DEPTH else {}
    out: list[str] = []
    for k, line in enumerate(lines, start=1):
        if k in nested:
            indent = line[:len(line) - len(line.lstrip())]
            out += [indent + ln if ln else "" for ln in expand(nested[k], root, _seen + (target,)).splitlines()]
        elif not SECTION_MARK.search(line) and not BLOCK.match(line):
            out.append(line)
    return textwrap.dedent("\n".join(out))
