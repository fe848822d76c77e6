"""The GUID lock file: each card id's Anki note GUID, fixed at the card's first export.

Anki keeps a note's review history under its GUID. A GUID computed from the page and the id would
change when a card moves to another page, and every reader would lose the card's history; so the
GUID is computed once, when the card is first exported (``genanki.guid_for(chapter, id)``, the
formula the deck used before the lock existed, so decks already installed keep their notes), and
recorded in ``cards.lock.json`` at the repository root. From then on the export reads it from there.

Rules (CONTRIBUTING.md, "The GUID lock file"): entries are added, never changed or removed. A card
taken off the site keeps its entry, marked ``"retired": "<why>"``; its id is never used again.

The file holds one entry per line, sorted by id, so that a diff shows exactly the cards added or
retired, and a problem can name the line of its entry.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gdl_ref.bounded_io import JSON_MAX_BYTES, FileTooLarge, read_limited

from .model import Card, Problem

__all__ = ["LOCK_NAME", "LockEntry", "LockError", "read_lock", "write_lock", "lock_text", "assign_guids",
           "lock_changes", "lock_problems", "duplicate_guids", "new_guid", "retire", "retired_ids"]

LOCK_NAME = "cards.lock.json"
ABOUT = ("Anki note GUIDs of the site's cards, by card id. Entries are added by `gdl-ref cards lock` (or export), "
         "never changed or removed; a card taken off the site is marked retired. See CONTRIBUTING.md.")


class LockError(ValueError):
    """A lock file that cannot be read, or a change the rules forbid."""


@dataclass(frozen=True)
class LockEntry:
    """One card id's note GUID; `retired` says why the card left the site ("" while it is on it)."""

    guid: str
    retired: str = ""

    def as_json(self) -> dict[str, str]:
        return {"guid": self.guid, **({"retired": self.retired} if self.retired else {})}


def new_guid(card: Card) -> str:
    """The GUID a card gets at its first export: genanki.guid_for(chapter, id)."""
    import genanki

    return genanki.guid_for(card.chapter, card.id)


ENTRY_LINE = re.compile(r'^\s*("(?:[^"\\]|\\.)*")\s*:\s*\{')   # a line that opens an entry: "id": {


def _entry_lines(text: str) -> dict[str, list[int]]:
    """The line numbers (from 1) on which each card id's entry starts (the file holds one entry a line)."""
    lines: dict[str, list[int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = ENTRY_LINE.match(line)
        if match:
            try:
                lines.setdefault(json.loads(match.group(1)), []).append(number)
            except json.JSONDecodeError:
                continue
    return lines


class _Object(dict):  # type: ignore[type-arg]
    """A JSON object that remembers the keys it was given twice (json's own dict keeps the last silently)."""

    repeated: list[str]


def _pairs(pairs: list[tuple[str, object]]) -> _Object:
    out = _Object()
    out.repeated = []
    for key, value in pairs:
        if key in out:
            out.repeated.append(key)
        out[key] = value
    return out


def _at(path: Path, lines: dict[str, list[int]], card_id: str, nth: int = 0) -> str:
    found = lines.get(card_id, [])
    return f"{path}:{found[nth]}" if len(found) > nth else str(path)


def duplicate_guids(entries: dict[str, LockEntry]) -> list[tuple[str, str, str]]:
    """(guid, first id, second id) for each GUID that two card ids share, in the file's (sorted) order."""
    owner: dict[str, str] = {}
    shared = []
    for card_id in sorted(entries):
        guid = entries[card_id].guid
        if guid in owner:
            shared.append((guid, owner[guid], card_id))
        else:
            owner[guid] = card_id
    return shared


def read_lock(path: Path | str) -> dict[str, LockEntry]:
    """The entries of a lock file ({} when it does not exist).

    Raises:
        LockError: naming the file (and the line where there is one) when the file is over
            ``JSON_MAX_BYTES``, is not JSON, lists a card id twice, holds an entry of the wrong shape,
            or gives one GUID to two card ids (Anki matches notes by GUID, so one card would overwrite
            the other in a reader's collection).
    """
    path = Path(path)
    if not path.exists():
        return {}
    try:
        text = read_limited(path, JSON_MAX_BYTES, "card lock").decode("utf-8")
        data = json.loads(text, object_pairs_hook=_pairs)
    except FileTooLarge as exc:
        raise LockError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError(f"{path}: cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise LockError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise LockError(f"{path}: JSON nested too deeply to read") from None
    cards = data.get("cards") if isinstance(data, dict) else None
    if not isinstance(cards, _Object) or "cards" in data.repeated:
        raise LockError(f'{path}: no single "cards" mapping of card ids to entries')
    lines = _entry_lines(text)
    if cards.repeated:
        card_id = cards.repeated[0]
        raise LockError(f'{_at(path, lines, card_id, 1)}: card id "{card_id}" has a second entry (its first is on '
                        f'line {lines.get(card_id, ["?"])[0]}): keep the one git history gives it, delete the other')
    entries: dict[str, LockEntry] = {}
    for card_id, entry in cards.items():
        if not (isinstance(entry, _Object) and not entry.repeated and isinstance(entry.get("guid"), str)
                and entry["guid"] and isinstance(entry.get("retired", ""), str) and set(entry) <= {"guid", "retired"}):
            raise LockError(f'{_at(path, lines, card_id)}: the entry of "{card_id}" is not '
                            '{"guid": "...", "retired": "why" (optional)}')
        entries[card_id] = LockEntry(entry["guid"], entry.get("retired", ""))
    shared = duplicate_guids(entries)
    if shared:
        guid, first, second = shared[0]
        raise LockError(f'{_at(path, lines, second)}: "{second}" has the GUID {json.dumps(guid)} of "{first}" '
                        f'(line {lines.get(first, ["?"])[0]}): Anki would put one card over the other. One entry '
                        f"is a copy (a bad merge does this): give it back its own GUID from the file's history "
                        f"(git log -p {path.name})")
    return entries


def lock_text(entries: dict[str, LockEntry]) -> str:
    """The file's text: one entry per line, sorted by id (deterministic, diff-friendly)."""
    rows = [f"    {json.dumps(k)}: {json.dumps(entries[k].as_json())}" for k in sorted(entries)]
    return ('{\n  "about": ' + json.dumps(ABOUT) + ',\n  "cards": {\n' + ",\n".join(rows)
            + ("\n" if rows else "") + "  }\n}\n")


def lock_changes(old: dict[str, LockEntry], new: dict[str, LockEntry]) -> list[str]:
    """What `new` does to `old` that the rules forbid: an entry removed, a GUID changed, a retirement undone."""
    changes = []
    for card_id, before in sorted(old.items()):
        after = new.get(card_id)
        if after is None:
            changes.append(f'"{card_id}" was removed (mark a card retired, never delete its entry)')
        elif after.guid != before.guid:
            changes.append(f'the GUID of "{card_id}" changed from {before.guid} to {after.guid}')
        elif before.retired and not after.retired:
            changes.append(f'"{card_id}" is no longer retired (a retired id is never used again)')
    return changes


def write_lock(path: Path | str, entries: dict[str, LockEntry]) -> None:
    """Write the lock through a temporary sibling; LockError (nothing written) if it would break a rule."""
    path = Path(path)
    forbidden = lock_changes(read_lock(path), entries)
    forbidden += [f'"{second}" would get the GUID {json.dumps(guid)} of "{first}"'
                  for guid, first, second in duplicate_guids(entries)]
    if forbidden:
        raise LockError(f"{path}: refused: " + "; ".join(forbidden))
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(lock_text(entries))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def assign_guids(cards: list[Card], entries: dict[str, LockEntry], lock_name: str = LOCK_NAME
                 ) -> tuple[dict[str, str], dict[str, LockEntry], list[Problem]]:
    """(GUID by card key, the entries to add for ids the lock lacks, problems).

    A card whose id the lock marks retired is a problem: its GUID belongs to the card that left.
    """
    guids: dict[str, str] = {}
    added: dict[str, LockEntry] = {}
    problems: list[Problem] = []
    for card in cards:
        entry = entries.get(card.id)
        if entry is not None and entry.retired:
            problems.append(Problem(card.file, card.line, f'card id "{card.id}" is retired in {lock_name} '
                                                          f'("{entry.retired}"): give this card a new id'))
            continue
        if entry is None:
            entry = added.setdefault(card.id, LockEntry(new_guid(card)))
        guids[card.key] = entry.guid
    return guids, added, problems


def retire(path: Path | str, card_id: str, why: str, on_site: set[str]) -> LockEntry:
    """Mark `card_id` retired in the lock at `path`, with the reason; LockError when it may not be.

    The card must be off the site already (`on_site`: the ids of its cards) and have an entry that
    is not retired; the reason must say something.
    """
    entries = read_lock(path)
    if not why.strip():
        raise LockError("say why the card is retired (for example: merged into another-card)")
    if card_id not in entries:
        raise LockError(f'{Path(path).name} has no entry "{card_id}": only a published card is retired')
    if entries[card_id].retired:
        raise LockError(f'"{card_id}" is retired already ("{entries[card_id].retired}")')
    if card_id in on_site:
        raise LockError(f'"{card_id}" is still on a page: delete the card first, then retire its id')
    entries[card_id] = LockEntry(entries[card_id].guid, why.strip())
    write_lock(path, entries)
    return entries[card_id]


def retired_ids(path: Path | str) -> dict[str, str]:
    """The retired ids of the lock at `path`, each mapped to where it is recorded (ids never to use again)."""
    return {i: f"{Path(path).name} (retired: {e.retired})" for i, e in read_lock(path).items() if e.retired}


def lock_problems(path: Path | str, cards: list[Card]) -> list[Problem]:
    """Entries of the lock at `path` for ids on no page that are not marked retired, and site ids it lacks."""
    path = Path(path)
    entries = read_lock(path)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    on_site = {c.id for c in cards}

    def line_of(card_id: str) -> int:
        key = json.dumps(card_id) + ":"
        return next((k for k, ln in enumerate(lines, 1) if ln.strip().startswith(key)), 1)

    problems = [Problem(path.name, line_of(i), f'card id "{i}" is on no page: put the card back, or mark it '
                                               '"retired": "<why>" (never delete the entry)')
                for i, e in entries.items() if not e.retired and i not in on_site]
    problems += [Problem(c.file, c.line, f'card id "{c.id}" has no GUID in {path.name}: run '
                                         "gdl-ref cards lock, then commit the file")
                 for c in cards if c.id not in entries]
    return sorted(problems)
