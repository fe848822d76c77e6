"""The GUID lock file: a card keeps its Anki note GUID when it moves; entries are never changed or removed."""

import json
import shutil
import sqlite3
import subprocess
import zipfile
from pathlib import Path

import genanki
import pytest

from gdl_site.cards.cli import main
from gdl_site.cards.export import CardProblems, export_cards
from gdl_site.cards.lock import (LOCK_NAME, LockEntry, LockError, lock_changes, lock_problems, lock_text, read_lock,
                                write_lock)
from gdl_site.cards.validate import validate_paths

ROOT = Path(__file__).resolve().parents[1]
CARD = "## {title} {{#{id}}}\n\nBackground of {id}.\n\n??? question \"What is {id}?\"\n\n    The answer.\n\n"


def guids_by_id(apkg: Path, tmp: Path) -> dict[str, str]:
    with zipfile.ZipFile(apkg) as z:
        z.extract("collection.anki2", tmp)
    con = sqlite3.connect(tmp / "collection.anki2")
    try:
        rows = con.execute("select guid, flds from notes").fetchall()
    finally:
        con.close()
    (tmp / "collection.anki2").unlink()
    return {flds.split("\x1f")[0].split("/")[1]: guid for guid, flds in rows}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "docs" / "families").mkdir(parents=True)
    (tmp_path / "mkdocs.yml").write_text("site_name: t\n", encoding="utf-8")
    (tmp_path / "docs" / "intro.md").write_text(
        "# Intro\n\n" + CARD.format(title="One", id="card-one") + CARD.format(title="Two", id="card-two"),
        encoding="utf-8")
    (tmp_path / "docs" / "families" / "flows.md").write_text("# Flows\n\n" + CARD.format(title="Three", id="card-three"),
                                                             encoding="utf-8")
    return tmp_path


def test_moving_a_card_to_another_page_keeps_every_guid(site, tmp_path):
    first = export_cards([site / "docs"], "anki", site / "one.apkg", root=site)
    before = guids_by_id(site / "one.apkg", tmp_path)
    assert len(first) == 3 and before["card-two"] == genanki.guid_for("intro", "card-two")
    locked = json.loads((site / LOCK_NAME).read_text(encoding="utf-8"))["cards"]
    assert {k: v["guid"] for k, v in locked.items()} == before
    # card-two moves from docs/intro.md to docs/families/flows.md, below card-three.
    (site / "docs" / "intro.md").write_text("# Intro\n\n" + CARD.format(title="One", id="card-one"), encoding="utf-8")
    (site / "docs" / "families" / "flows.md").write_text(
        "# Flows\n\n" + CARD.format(title="Three", id="card-three") + CARD.format(title="Two", id="card-two"),
        encoding="utf-8")
    cards = export_cards([site / "docs"], "anki", site / "two.apkg", root=site)
    assert {c.key for c in cards} >= {"flows/card-two"}
    assert guids_by_id(site / "two.apkg", tmp_path) == before
    assert genanki.guid_for("flows", "card-two") != before["card-two"]   # without the lock it would have changed


def test_the_export_adds_new_ids_and_changes_no_entry(site):
    export_cards([site / "docs"], "csv", site / "a.csv", root=site)
    lock = site / LOCK_NAME
    before = read_lock(lock)
    text_before = lock.read_text(encoding="utf-8")
    page = site / "docs" / "intro.md"
    page.write_text(page.read_text(encoding="utf-8") + CARD.format(title="New", id="a-new-card"), encoding="utf-8")
    export_cards([site / "docs"], "csv", site / "b.csv", root=site)
    after = read_lock(lock)
    assert lock_changes(before, after) == [] and set(after) - set(before) == {"a-new-card"}
    added = [ln for ln in lock.read_text(encoding="utf-8").splitlines() if ln not in text_before.splitlines()]
    assert len(added) == 1 and added[0].startswith('    "a-new-card": {"guid": ')


def test_cards_outside_the_site_are_not_recorded(site):
    (site / "scratch.md").write_text("# Scratch\n\n" + CARD.format(title="S", id="scratch-card"), encoding="utf-8")
    export_cards([site / "scratch.md"], "csv", site / "s.csv", root=site)
    assert not (site / LOCK_NAME).exists()


def test_write_lock_refuses_to_remove_change_or_unretire(tmp_path):
    path = tmp_path / LOCK_NAME
    write_lock(path, {"a": LockEntry("g-a"), "b": LockEntry("g-b", retired="merged into a")})
    for entries, why in [({"b": LockEntry("g-b", "merged into a")}, '"a" was removed'),
                         ({"a": LockEntry("other"), "b": LockEntry("g-b", "merged into a")}, "GUID of \"a\" changed"),
                         ({"a": LockEntry("g-a"), "b": LockEntry("g-b")}, '"b" is no longer retired')]:
        with pytest.raises(LockError, match=why):
            write_lock(path, entries)
    write_lock(path, {"a": LockEntry("g-a", retired="gone"), "b": LockEntry("g-b", "merged into a")})
    assert read_lock(path)["a"] == LockEntry("g-a", "gone")


def test_a_retired_id_cannot_come_back(site):
    lock = site / LOCK_NAME
    lock.write_text(lock_text({"card-two": LockEntry("old-guid", retired="split into two cards")}), encoding="utf-8")
    with pytest.raises(CardProblems) as err:
        export_cards([site / "docs"], "anki", site / "d.apkg", root=site)
    (problem,) = err.value.problems
    assert (problem.file, problem.line) == ("docs/intro.md", 11)
    assert 'card id "card-two" is retired in cards.lock.json ("split into two cards")' in problem.message
    assert not (site / "d.apkg").exists()


def test_check_reports_entries_on_no_page_and_cards_with_no_entry(site, capsys, monkeypatch):
    monkeypatch.chdir(site)
    (site / LOCK_NAME).write_text(lock_text({"card-one": LockEntry("g1"), "card-gone": LockEntry("g0"),
                                             "card-old": LockEntry("g9", retired="merged")}), encoding="utf-8")
    assert main(["check"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ['cards.lock.json:4: card id "card-gone" is on no page: put the card back, or mark it '
                   '"retired": "<why>" (never delete the entry)',
                   'docs/families/flows.md:3: card id "card-three" has no GUID in cards.lock.json: run gdl-ref cards '
                   "lock, then commit the file",
                   'docs/intro.md:11: card id "card-two" has no GUID in cards.lock.json: run gdl-ref cards lock, '
                   "then commit the file"]


def test_a_malformed_lock_names_the_file_and_line(tmp_path):
    path = tmp_path / LOCK_NAME
    path.write_text('{\n  "cards": {\n    "a": {"guid": "x"},\n  }\n}\n', encoding="utf-8")
    with pytest.raises(LockError, match=r"cards.lock.json:4: not valid JSON"):
        read_lock(path)
    path.write_text('{"cards": {"a": {"guid": ""}}}', encoding="utf-8")
    with pytest.raises(LockError, match='the entry of "a" is not'):
        read_lock(path)


# The committed lock file of this repository.

@pytest.mark.content  # the cards of docs/ and the committed lock
def test_every_card_of_the_site_is_locked_and_every_entry_is_on_the_site_or_retired():
    pages, _ = validate_paths([ROOT / "docs"], ROOT)
    assert lock_problems(ROOT / LOCK_NAME, [c for p in pages for c in p.cards]) == []


@pytest.mark.content  # the committed lock against its history
def test_no_committed_entry_was_ever_removed_or_changed(tmp_path):
    """Compare the lock file with each version of it in the git history (HEAD included)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the history of cards.lock.json cannot be read")
    commits = subprocess.run(["git", "log", "--format=%H", "--", LOCK_NAME], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    current = read_lock(ROOT / LOCK_NAME)
    for commit in commits:
        shown = subprocess.run(["git", "show", f"{commit}:{LOCK_NAME}"], cwd=ROOT, capture_output=True, text=True)
        if shown.returncode:   # the commit deleted the file: that is itself a removal of every entry
            pytest.fail(f"{LOCK_NAME} was deleted in commit {commit[:12]}")
        old = tmp_path / f"{commit}.json"
        old.write_text(shown.stdout, encoding="utf-8")
        assert lock_changes(read_lock(old), current) == [], f"against commit {commit[:12]}"


@pytest.mark.content  # exports the cards of docs/
def test_exporting_the_site_leaves_the_committed_entries_as_they_are(tmp_path):
    lock = tmp_path / LOCK_NAME
    shutil.copy(ROOT / LOCK_NAME, lock)
    before = read_lock(lock)
    export_cards([ROOT / "docs"], "csv", tmp_path / "all.csv", root=ROOT, lock=lock)
    assert read_lock(lock) == before


def test_cards_lock_adds_new_ids_only(site, capsys, monkeypatch):
    monkeypatch.chdir(site)
    assert main(["lock"]) == 0
    assert capsys.readouterr().out == "added 3 ids to cards.lock.json: card-one, card-three, card-two\n"
    before = (site / LOCK_NAME).read_text(encoding="utf-8")
    assert main(["lock"]) == 0 and capsys.readouterr().out == "added 0 ids to cards.lock.json\n"
    assert (site / LOCK_NAME).read_text(encoding="utf-8") == before
    (site / LOCK_NAME).write_text(before.replace('"card-two": {"guid": "', '"card-two": {"retired": "gone", "guid": "'),
                                  encoding="utf-8")
    assert main(["lock"]) == 1
    assert 'docs/intro.md:11: card id "card-two" is retired in cards.lock.json ("gone")' in capsys.readouterr().out


def test_import_avoids_retired_ids(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / LOCK_NAME).write_text(lock_text({"first-card": LockEntry("g1", retired="merged")}), encoding="utf-8")
    (tmp_path / "f.txt").write_text("# Flashcards: T\n\n---\n\n#### First card\nB.\n\n:p Q?\n??x\nA.\nx??\n\n---\n",
                                    encoding="utf-8")
    assert main(["import", str(tmp_path / "f.txt"), "--root", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "## First card {#first-card-2}" in out
    assert 'id "first-card" is taken (cards.lock.json (retired: merged))' in err


def test_cards_retire_marks_an_id_that_left_the_site(site, capsys, monkeypatch):
    monkeypatch.chdir(site)
    assert main(["lock"]) == 0
    guid = read_lock(site / LOCK_NAME)["card-two"].guid
    capsys.readouterr()
    assert main(["retire", "card-two", "--why", "merged into card-one"]) == 1
    assert 'still on a page: delete the card first' in capsys.readouterr().err
    (site / "docs" / "intro.md").write_text("# Intro\n\n" + CARD.format(title="One", id="card-one"), encoding="utf-8")
    assert main(["retire", "card-two", "--why", "merged into card-one"]) == 0
    assert capsys.readouterr().out == f'retired "card-two" (GUID {guid}) in cards.lock.json: merged into card-one\n'
    assert read_lock(site / LOCK_NAME)["card-two"] == LockEntry(guid, "merged into card-one")
    assert main(["check"]) == 0
    for argv, why, code in [(["retire", "card-two", "--why", "again"], "retired already", 1),
                            (["retire", "never-published", "--why", "x"], 'no entry "never-published"', 1),
                            (["retire", "card-one", "--why", " "], "argument --why: say why", 2)]:
        assert main(argv) == code and why in capsys.readouterr().err


# Two cards on one GUID (a bad merge of two pull requests copies one entry onto another id).

def _lock_with(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / LOCK_NAME
    path.write_text('{\n  "about": "x",\n  "cards": {\n' + ",\n".join(f"    {r}" for r in rows) + "\n  }\n}\n",
                    encoding="utf-8")
    return path


def test_a_guid_given_to_two_ids_is_refused_naming_both_and_the_line(tmp_path):
    path = _lock_with(tmp_path, ['"card-one": {"guid": "AAA"}', '"card-three": {"guid": "CCC"}',
                                 '"card-two": {"guid": "AAA"}'])
    before = path.read_bytes()
    with pytest.raises(LockError) as err:
        read_lock(path)
    assert str(err.value).startswith(f'{path}:6: "card-two" has the GUID "AAA" of "card-one" (line 4)')
    assert path.read_bytes() == before


def test_a_card_id_listed_twice_is_refused_at_its_second_line(tmp_path):
    path = _lock_with(tmp_path, ['"card-one": {"guid": "AAA"}', '"card-one": {"guid": "BBB"}'])
    with pytest.raises(LockError, match=r'cards.lock.json:5: card id "card-one" has a second entry \(its first is on '
                                        r"line 4\)"):
        read_lock(path)
    path = _lock_with(tmp_path, ['"card-one": {"guid": "AAA", "guid": "BBB"}'])
    with pytest.raises(LockError, match=r'cards.lock.json:4: the entry of "card-one" is not'):
        read_lock(path)


def test_write_lock_never_writes_a_shared_guid(tmp_path):
    path = tmp_path / LOCK_NAME
    write_lock(path, {"a": LockEntry("AAA")})
    before = path.read_bytes()
    with pytest.raises(LockError, match=r'"b" would get the GUID "AAA" of "a"'):
        write_lock(path, {"a": LockEntry("AAA"), "b": LockEntry("AAA")})
    assert path.read_bytes() == before


def test_export_with_a_shared_guid_in_the_lock_writes_nothing(site, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(site)
    assert main(["lock"]) == 0
    lock = site / LOCK_NAME
    entries = read_lock(lock)
    text = lock.read_text(encoding="utf-8").replace(entries["card-two"].guid, entries["card-one"].guid)
    lock.write_text(text, encoding="utf-8")
    capsys.readouterr()
    assert main(["export", "--format", "anki", "--out", str(tmp_path / "deck.apkg"), "docs"]) == 1
    err = capsys.readouterr().err
    assert f'"card-two" has the GUID {json.dumps(entries["card-one"].guid)} of "card-one"' in err
    assert "Traceback" not in err and not (tmp_path / "deck.apkg").exists()
    assert lock.read_text(encoding="utf-8") == text


def test_a_lock_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    import gdl_site.cards.lock as lock_module
    monkeypatch.setattr(lock_module, "JSON_MAX_BYTES", 100)
    path = _lock_with(tmp_path, [f'"card-{i}": {{"guid": "G{i}"}}' for i in range(10)])
    with pytest.raises(LockError, match=r"cards.lock.json: \d[\d,]* bytes, over the 100-byte limit for a card lock"):
        read_lock(path)
