"""TeX to MathML at build time, so the site shows math with no JavaScript and no CDN.

`to_mathml(tex, display)` wraps latex2mathml and refuses what it would render wrongly
in silence. latex2mathml does not fail on everything it cannot do: an unknown command
comes out as the raw text ``<mi>\\arg</mi>``, an unknown environment is dropped, a
missing brace is closed for you, ``&`` inside ``aligned`` lands in the output as a bare
ampersand. Each of those raises :class:`MathError` here with a message a contributor can
act on, so `gdl-ref cards check` and the site build report it instead of publishing it.

Reference: latex2mathml, https://github.com/roniemartinez/latex2mathml
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from latex2mathml.commands import MATRICES
from latex2mathml.converter import convert

__all__ = ["MathError", "to_mathml", "check_tex"]

MATHML_NS = "http://www.w3.org/1998/Math/MathML"
# Environments latex2mathml lays out (\begin{align}, \begin{cases}, ...).
ENVIRONMENTS = frozenset(name.lstrip("\\") for name in MATRICES)
# Hints for the commands that contributors reach for most often.
HINTS = {
    "arg": r"write \argmax or \operatorname{arg\,max}",
    "operatorname*": r"write \operatorname{...} (no star) or \argmax / \argmin",
    "aligned": r"use \begin{align*} ... \end{align*} or \begin{split}",
    "gathered": r"use \begin{align*} ... \end{align*}",
    "gather": r"use \begin{align*} ... \end{align*}",
    "equation": "drop the environment: $$...$$ is already a display equation",
    "label": r"drop \label: pages do not number equations",
}
# Elements whose children are positional arguments: element -> number of children.
ARITY = {"mfrac": 2, "msub": 2, "msup": 2, "mroot": 2, "munder": 2, "mover": 2,
         "msubsup": 3, "munderover": 3}
# latex2mathml exception names -> what the author did.
EXCEPTIONS = {
    "NoAvailableTokensError": "a command is missing its argument",
    "MissingSuperScriptOrSubscriptError": "a ^ or _ has nothing after it",
    "ExtraLeftOrMissingRightError": r"a \left has no matching \right",
    "MissingEndError": r"a \begin{...} has no matching \end{...}",
    "DenominatorNotFoundError": r"\frac needs 2 arguments",
    "NumeratorNotFoundError": r"\frac needs 2 arguments",
    "InvalidAlignmentError": "an invalid column alignment",
    "InvalidStyleForGenfracError": r"an invalid \genfrac style",
    "DoubleSuperscriptsError": "two superscripts on one symbol (write x^{ab}, not x^a^b)",
    "DoubleSubscriptsError": "two subscripts on one symbol (write x_{ab}, not x_a_b)",
}
RAW_COMMAND = re.compile(r"\\([A-Za-z]+\*?)")
BEGIN = re.compile(r"\\begin\s*\{([^}]*)\}")


class MathError(ValueError):
    """The TeX will not render; the message says why and, where known, what to write."""


def _hint(name: str) -> str:
    return f" ({HINTS[name]})" if name in HINTS else ""


# --8<-- [start:braces]
def _check_braces(tex: str) -> None:
    """Raise MathError unless every `{` has its `}` (escaped `\\{` and `\\}` do not count)."""
    depth = 0
    i = 0
    while i < len(tex):
        ch = tex[i]
        if ch == "\\":
            i += 2  # skip the escaped character, e.g. \{ or \\ (line break)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise MathError(f"unbalanced braces: a '}}' at character {i + 1} closes nothing")
        i += 1
    if depth > 0:
        raise MathError(f"unbalanced braces: {depth} '{{' never closed")
# --8<-- [end:braces]


def check_tex(tex: str) -> None:
    """Raise MathError for TeX that latex2mathml accepts but would render wrongly."""
    if not tex.strip():
        raise MathError("empty math")
    _check_braces(tex)
    if r"\operatorname*" in tex:
        raise MathError(r"unsupported command \operatorname*" + _hint("operatorname*"))
    for env in BEGIN.findall(tex):
        if env.strip() not in ENVIRONMENTS:
            raise MathError(f"unsupported environment {{{env}}}{_hint(env.strip())}")


def _check_output(mathml: str) -> None:
    """Raise MathError when the converted MathML still holds TeX or is malformed."""
    # Text inside <mtext> is the author's words; only look for raw commands elsewhere.
    outside_text = re.sub(r"<mtext>.*?</mtext>", "", mathml, flags=re.S)
    raw = RAW_COMMAND.search(outside_text)
    if raw:
        name = raw.group(1)
        raise MathError(f"unsupported command \\{name}{_hint(name)}")
    try:
        root = ET.fromstring(mathml)
    except ET.ParseError:
        if re.search(r"&(?![A-Za-z]+;|#x?[0-9A-Fa-f]+;)", mathml):
            raise MathError("a bare '&' outside a supported environment: write \\& for an ampersand, "
                            "or align inside \\begin{align*} ... \\end{align*}") from None
        raise MathError("latex2mathml produced malformed MathML") from None
    for el in root.iter():
        tag = el.tag.removeprefix(f"{{{MATHML_NS}}}")
        if tag in ARITY and len(el) != ARITY[tag]:
            what = {"mfrac": r"\frac", "mroot": r"\sqrt[n]"}.get(tag, f"a {tag} (sub/superscript)")
            raise MathError(f"{what} needs {ARITY[tag]} arguments, got {len(el)}")


OPERATORNAME = re.compile(r"\\operatorname\{([^{}]*)\}")


def to_mathml(tex: str, display: bool = False) -> str:
    """Convert TeX (without the $ delimiters) to a ``<math>`` element.

    display=True gives ``display="block"`` (a display equation), False an inline one.
    Raises MathError, whose message says what will not render.
    """
    check_tex(tex)
    tex = OPERATORNAME.sub(r"\\mathrm{\1}", tex)  # upright operator names (arg max), which latex2mathml splits
    try:
        mathml = convert(tex.strip(), display="block" if display else "inline")
        mathml = mathml.replace("<mi>&#x0007E;</mi>", "<mo>&#x0223C;</mo>")  # \sim is a relation, not an ASCII tilde
    except Exception as exc:  # latex2mathml raises many exception types, some with no message
        detail = str(exc).strip()
        name = type(exc).__name__
        readable = EXCEPTIONS.get(name) or re.sub(r"(?<!^)(?=[A-Z])", " ", name.removesuffix("Error")).lower()
        raise MathError(f"latex2mathml cannot convert it: {readable}" + (f" ({detail})" if detail else "")) from None
    _check_output(mathml)
    return mathml
