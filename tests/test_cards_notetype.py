"""The note type is pinned: its fields and templates may change only together with a new model id."""

import hashlib
import json
import sqlite3
import zipfile
from pathlib import Path

from gdl_site.cards.export import export_cards
from gdl_site.cards.notetype import MODEL_ID, css, model_fingerprint

ROOT = Path(__file__).resolve().parents[1]
# Every model id the deck has used, with the fingerprint of its fields and templates. Never edit an entry:
# a note type that changes gets a new MODEL_ID (a number not used before) and a new line here.
PINNED = {
    1_607_392_411: "b8c4f80e944325558c25f787f760472c8baf3213b08b9610a46a178c5da69ebe",
}


def test_the_fields_and_templates_match_the_pin_of_the_model_id():
    assert MODEL_ID in PINNED, f"MODEL_ID {MODEL_ID} is not pinned: add it with fingerprint {model_fingerprint()}"
    assert model_fingerprint() == PINNED[MODEL_ID], (
        "the note type's fields or templates changed: give it a new MODEL_ID in gdl_site/cards/notetype.py and "
        f"pin that id here with fingerprint {model_fingerprint()} (never edit an old entry)")


def test_pinned_model_ids_are_distinct():
    assert len(set(PINNED.values())) == len(PINNED)


def test_the_fingerprint_is_that_of_the_note_type_in_the_deck(tmp_path):
    """Recompute the fingerprint from the model stored in an exported .apkg, not from the module's constants."""
    out = tmp_path / "deck.apkg"
    export_cards([ROOT / "tests" / "cards_corpus" / "good_card.md"], "anki", out, root=ROOT)
    with zipfile.ZipFile(out) as z:
        z.extract("collection.anki2", tmp_path)
    con = sqlite3.connect(tmp_path / "collection.anki2")
    models = json.loads(con.execute("select models from col").fetchone()[0])
    con.close()
    (model,) = models.values()
    assert int(model["id"]) == MODEL_ID
    spec = {"fields": [f["name"] for f in sorted(model["flds"], key=lambda f: f["ord"])],
            "templates": [{k: t[k] for k in ("name", "qfmt", "afmt")} for t in sorted(model["tmpls"], key=lambda t: t["ord"])]}
    assert hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest() == PINNED[MODEL_ID]
    assert model["css"] == css() and ".highlight .kn" in model["css"] and ".nightMode .highlight .kn" in model["css"]
