"""Active HTML in a card is refused by `cards check` at its file:line, whatever its spelling."""

from pathlib import Path

import pytest

from gdl_site.cards.cli import main
from gdl_site.cards.html_safety import html_problems

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[1]
PAGE = '# Hostile\n\n## A card {#a-card}\n\nSome background.\n\n??? question "What runs?"\n\n    {html}\n'
LINE = 9   # the line of {html} in PAGE

CASES = {
    "script": ("<script>alert(1)</script>", "active HTML <script>"),
    "script, mixed case": ("<ScRiPt>alert(1)</sCrIpT>", "active HTML <script>"),
    "script, unfinished": ("<script src=x", "active HTML <script>"),
    "iframe": ('<iframe src="https://example.org"></iframe>', "active HTML <iframe>"),
    "frame": ("<frame src=x>", "active HTML <frame>"),
    "object": ("<object data=x.swf></object>", "active HTML <object>"),
    "embed": ("<embed src=x.swf>", "active HTML <embed>"),
    "applet": ("<applet code=X></applet>", "active HTML <applet>"),
    "form": ("<form><input name=q></form>", "active HTML <form>"),
    "input": ("<INPUT autofocus>", "active HTML <input>"),
    "button": ("<button>b</button>", "active HTML <button>"),
    "base": ("<base href=https://example.org/>", "active HTML <base>"),
    "link": ("<link rel=stylesheet href=x.css>", "active HTML <link>"),
    "meta": ('<meta http-equiv="refresh" content="0;url=x">', "active HTML <meta>"),
    "style element": ("<style>body{}</style>", "active HTML <style>"),
    "svg": ("<svg><circle r=1 /></svg>", "active HTML <svg> written by hand"),
    "math": ("<math><mi>x</mi></math>", "active HTML <math> written by hand"),
    "onerror, unquoted": ("<img src=x onerror=alert(1)>", "event-handler attribute onerror= on <img>"),
    "onerror, mixed case and spaces": ('<img src=x OnErRoR  =  "alert(1)">', "event-handler attribute onerror= on <img>"),
    "onerror after a slash": ("<img/onerror=alert(1) src=x>", "event-handler attribute onerror= on <img>"),
    "onclick, single quotes": ("<kbd onclick='alert(1)'>K</kbd>", "event-handler attribute onclick= on <kbd>"),
    "javascript href": ('<a href="javascript:alert(1)">x</a>', '<a href="javascript:...">: a javascript: URL'),
    "javascript iframe src": ('<iframe src="javascript:alert(1)"></iframe>', '<iframe src="javascript:...">'),
    "javascript, mixed case, unquoted": ("<a href=JaVaScRiPt:alert(1)>x</a>", '<a href="javascript:...">'),
    "javascript, entity-encoded": ('<a href="&#106;&#x61;vascript&colon;alert(1)">x</a>', '<a href="javascript:...">'),
    "javascript, tab inside": ('<a href="java&#x09;script:alert(1)">x</a>', '<a href="javascript:...">'),
    "javascript, leading spaces": ('<a href="  \tjavascript:alert(1)">x</a>', '<a href="javascript:...">'),
    "vbscript": ("<a href='VBScript:msgbox(1)'>x</a>", '<a href="vbscript:...">: a vbscript: URL'),
    "data src": ('<img src="data:image/svg+xml,&lt;svg onload=alert(1)&gt;">', '<img src="data:...">: a data: URL'),
    "data srcset": ('<img srcset="a.png 1x, DATA:image/png;base64,AA 2x">', '<img srcset="data:...">'),
    "formaction": ("<button formaction=javascript:x>b</button>", '<button formaction="javascript:...">'),
    "action": ('<form action="javascript:x"></form>', '<form action="javascript:...">'),
    "xlink:href": ('<svg><a xlink:href="javascript:alert(1)">x</a></svg>', '<a xlink:href="javascript:...">'),
    "inline style": ('<span style="background:url(x)">x</span>', "inline style= on <span>"),
    "inline style, upper case": ("<b STYLE=color:red>x</b>", "inline style= on <b>"),
    "script behind a comment a browser ends early": ("<!--> <script>alert(1)</script> -->", "active HTML <script>"),
    "element outside the allowlist": ("<marquee>x</marquee>", "HTML element <marquee> is not among those"),
}


def check(tmp_path, html, capsys):
    page = tmp_path / "hostile.md"
    page.write_text(PAGE.replace("{html}", html), encoding="utf-8")
    code = main(["check", "--alone", "--root", str(tmp_path), str(page)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.mark.parametrize("html, found", CASES.values(), ids=CASES.keys())
def test_active_html_is_refused_at_its_line(tmp_path, capsys, html, found):
    code, lines, err = check(tmp_path, html, capsys)
    assert code == 1 and "Traceback" not in err and "internal error" not in err
    assert any(line.startswith(f"hostile.md:{LINE}: {found}") for line in lines), lines
    assert all(line.startswith(f"hostile.md:{LINE}: ") for line in lines)
    assert all(": " in line.split(f"hostile.md:{LINE}: ", 1)[1] for line in lines)   # what to write instead


HARMLESS = ["<kbd>Ctrl</kbd>+<kbd>C</kbd>", "H<sub>2</sub>O and x<sup>2</sup>", 'an <abbr title="maximum likelihood">ML</abbr> fit',
            "line<br>break", "<details><summary>More</summary>text</details>", "<em>e</em> <strong>s</strong> <code>c</code>",
            '<a href="https://example.org/page">a link</a>', '<img src="figure.png" alt="a figure">',
            "`<script>alert(1)</script>` in backticks", "``<iframe src=javascript:x>`` in double backticks",
            "$a<b$ and $c>d$", "<https://example.org> autolinked", "<!-- a comment -->"]


@pytest.mark.parametrize("html", HARMLESS)
def test_harmless_inline_html_and_code_pass(tmp_path, capsys, html):
    code, lines, _ = check(tmp_path, html, capsys)
    assert (code, lines) == (0, ["ok: 0 problems in 1 pages (1 card pages, 1 cards)"])


def test_code_fences_are_text(tmp_path, capsys):
    fence = '```text\n    <script>alert(1)</script>\n    <img src=x onerror=alert(1)>\n    ```'
    code, lines, _ = check(tmp_path, fence, capsys)
    assert code == 0 and lines[0].startswith("ok: 0 problems")


def test_a_raw_html_block_keeps_backticks_so_its_script_is_found(tmp_path, capsys):
    code, lines, _ = check(tmp_path, "<details>\n    `<script>alert(1)</script>`\n    </details>", capsys)
    assert code == 1 and lines[0].startswith(f"hostile.md:{LINE}: active HTML <script>")
    assert "renders to" in lines[0]


def test_html_included_from_another_file_is_found(tmp_path, capsys):
    (tmp_path / "table.md").write_text("<script>alert(1)</script>\n", encoding="utf-8")
    code, lines, _ = check(tmp_path, '--8<-- "table.md"', capsys)
    assert code == 1 and lines[0].startswith(f"hostile.md:{LINE}: active HTML <script>")


def test_every_problem_of_a_page_is_reported_at_its_own_line():
    text = "a\n<b onclick=x>b</b>\n\n<script>\n</script>\n<a href=javascript:x>"
    assert [k for k, _ in html_problems(text)] == [2, 4, 6]


def test_the_site_cards_hold_no_active_html(capsys):
    code = main(["check", "--root", str(ROOT), str(ROOT / "docs")])
    out, _ = capsys.readouterr()
    assert not [line for line in out.splitlines() if "HTML" in line]
