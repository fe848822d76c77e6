"""The deck in CrowdAnki's JSON format: a text file that git can diff, beside the binary .apkg.

CrowdAnki (an Anki add-on, https://github.com/Stvad/CrowdAnki) imports a folder holding ``deck.json``
and a ``media/`` folder. The export is deterministic: the same cards give the same bytes. Keys are
sorted, the JSON is indented, the notes keep the site's order, the ids CrowdAnki matches on
(``crowdanki_uuid``) are UUID-5s of the fixed deck and model ids, the note GUIDs are the lock file's
(gdl_site.cards.lock), and nothing records the time of the export.

`write_crowdanki` writes a folder, or a zip archive of that folder when the name ends in ``.zip``
(the site's download; its entries carry a fixed date).
"""

from __future__ import annotations

import json
import shutil
import uuid
import zipfile
from pathlib import Path
from typing import Any

from .notetype import DECK_DESCRIPTION, DECK_ID, DECK_NAME, MODEL_ID, DeckNote, note_model

__all__ = ["crowdanki_deck", "crowdanki_json", "write_crowdanki", "FOLDER"]

NAMESPACE = uuid.UUID("6b0c1f64-8f1e-5c5a-9d1e-67646c2d7265")   # fixed: the uuids below must never change
FOLDER = DECK_NAME                  # the folder inside the zip archive
ZIP_DATE = (1980, 1, 1, 0, 0, 0)    # the earliest date a zip entry can carry: no export time leaks in
MODEL_KEYS = ("css", "flds", "latexPost", "latexPre", "latexsvg", "name", "req", "sortf", "tags", "tmpls", "type",
              "vers")


def _uuid(kind: str, number: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}-{number}"))


def crowdanki_deck(notes: list[DeckNote], media_names: list[str]) -> dict[str, Any]:
    """The deck as CrowdAnki's JSON object (one deck, one note type, one options group)."""
    model_uuid, config_uuid = _uuid("model", MODEL_ID), _uuid("deck-config", DECK_ID)
    model = {k: v for k, v in note_model().to_json(0, DECK_ID).items() if k in MODEL_KEYS}
    return {
        "__type__": "Deck",
        "children": [],
        "crowdanki_uuid": _uuid("deck", DECK_ID),
        "deck_config_uuid": config_uuid,
        "deck_configurations": [{"__type__": "DeckConfig", "crowdanki_uuid": config_uuid, "name": DECK_NAME}],
        "desc": DECK_DESCRIPTION,
        "dyn": 0,
        "extendNew": 10,
        "extendRev": 50,
        "media_files": sorted(media_names),
        "name": DECK_NAME,
        "note_models": [{"__type__": "NoteModel", "crowdanki_uuid": model_uuid, **model}],
        "notes": [{"__type__": "Note", "data": "", "fields": n.fields, "flags": 0, "guid": n.guid,
                   "note_model_uuid": model_uuid, "tags": n.tags} for n in notes],
    }


def crowdanki_json(notes: list[DeckNote], media_names: list[str]) -> str:
    """deck.json's text: sorted keys, two-space indent, a final newline."""
    return json.dumps(crowdanki_deck(notes, media_names), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_crowdanki(notes: list[DeckNote], media: dict[str, Path], out: Path) -> None:
    """Write the deck to `out`: a zip archive when its name ends in .zip, else a folder (deck.json, media/)."""
    text = crowdanki_json(notes, list(media))
    if out.suffix.lower() == ".zip":
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            entries = [(f"{FOLDER}/deck.json", text.encode("utf-8"))]
            entries += [(f"{FOLDER}/media/{name}", media[name].read_bytes()) for name in sorted(media)]
            for name, data in entries:
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
        return
    out.mkdir()
    (out / "deck.json").write_text(text, encoding="utf-8")
    if media:
        (out / "media").mkdir()
        for name in sorted(media):
            shutil.copyfile(media[name], out / "media" / name)
