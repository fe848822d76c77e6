"""The CrowdAnki export: deterministic JSON with the .apkg's notes, GUIDs, note type and media."""

import hashlib
import json
import sqlite3
import zipfile
from pathlib import Path

import pytest

from gdl_site.cards.cli import main
from gdl_site.cards.export import export_cards
from gdl_site.cards.notetype import FIELDS, MODEL_NAME, TEMPLATES, css

ROOT = Path(__file__).resolve().parents[1]
F_SVG = "gdl-ref_" + hashlib.sha256(b"docs/assets/f.svg").hexdigest()[:10] + "_f.svg"
GOOD = ROOT / "tests" / "cards_corpus" / "good_card.md"


def test_the_json_carries_the_notes_of_the_apkg(tmp_path):
    export_cards([GOOD], "anki", tmp_path / "deck.apkg", root=ROOT)
    export_cards([GOOD], "crowdanki", tmp_path / "deck", root=ROOT)
    with zipfile.ZipFile(tmp_path / "deck.apkg") as z:
        z.extract("collection.anki2", tmp_path)
    con = sqlite3.connect(tmp_path / "collection.anki2")
    rows = con.execute("select guid, flds, tags from notes order by id").fetchall()
    con.close()
    data = json.loads((tmp_path / "deck" / "deck.json").read_text(encoding="utf-8"))
    assert data["__type__"] == "Deck" and data["name"] == "gdl-ref" and data["media_files"] == []
    (model,) = data["note_models"]
    assert model["name"] == MODEL_NAME and model["css"] == css()
    assert [f["name"] for f in model["flds"]] == FIELDS
    assert [(t["name"], t["qfmt"], t["afmt"]) for t in model["tmpls"]] == [(t["name"], t["qfmt"], t["afmt"])
                                                                            for t in TEMPLATES]
    (config,) = data["deck_configurations"]
    assert data["deck_config_uuid"] == config["crowdanki_uuid"]
    assert [(n["guid"], "\x1f".join(n["fields"]), " ".join(n["tags"])) for n in data["notes"]] == \
        [(g, f, t.strip()) for g, f, t in rows]
    assert {n["note_model_uuid"] for n in data["notes"]} == {model["crowdanki_uuid"]}


def test_the_export_is_byte_identical_when_run_again(tmp_path):
    for name in ("one.zip", "two.zip"):
        export_cards([GOOD], "crowdanki", tmp_path / name, root=ROOT)
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as z:
        assert z.namelist() == ["gdl-ref/deck.json"]
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        text = z.read("gdl-ref/deck.json").decode()
    assert text.endswith("}\n") and json.loads(text)["notes"][0]["fields"][0] == "good_card/corpus-mle"


def test_the_folder_is_replaced_only_with_force(tmp_path, capsys):
    out = tmp_path / "gdl-ref"
    argv = ["export", "--format", "crowdanki", "--out", str(out), "--root", str(ROOT), str(GOOD)]
    assert main(argv) == 0
    assert main(argv) == 1 and "pass --force" in capsys.readouterr().err
    (out / "deck.json").write_text("{}", encoding="utf-8")
    assert main(argv + ["--force"]) == 0
    assert json.loads((out / "deck.json").read_text(encoding="utf-8"))["name"] == "gdl-ref"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gdl-ref"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine", encoding="utf-8")
    argv[argv.index(str(out))] = str(mine)
    assert main(argv + ["--force"]) == 1 and "not a CrowdAnki export" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize("suffix", [".zip", ""])
def test_media_travel_in_the_export(tmp_path, suffix):
    (tmp_path / "docs" / "assets").mkdir(parents=True)
    (tmp_path / "docs" / "assets" / "f.svg").write_text("<svg/>", encoding="utf-8")
    page = tmp_path / "docs" / "p.md"
    page.write_text('# P\n\n## C {#c}\n\nB.\n\n??? question "Q?"\n\n    ![f](assets/f.svg)\n', encoding="utf-8")
    out = tmp_path / f"deck{suffix}"
    export_cards([page], "crowdanki", out, root=tmp_path)
    if suffix:
        with zipfile.ZipFile(out) as z:
            assert z.read(f"gdl-ref/media/{F_SVG}") == b"<svg/>"
            data = json.loads(z.read("gdl-ref/deck.json"))
    else:
        assert (out / "media" / F_SVG).read_bytes() == b"<svg/>"
        data = json.loads((out / "deck.json").read_text(encoding="utf-8"))
    assert data["media_files"] == [F_SVG]
    assert f'src="{F_SVG}"' in data["notes"][0]["fields"][5]
