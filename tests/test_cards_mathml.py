"""TeX -> MathML: what renders, and the precise message for what does not."""

import xml.etree.ElementTree as ET

import pytest

from gdl_site.cards.mathml import MathError, to_mathml


@pytest.mark.parametrize("tex", [
    r"\hat{\theta} = \argmax_{\theta} p(D \mid \theta)",
    r"\operatorname{arg\,max}_\theta \log p_\theta(x)",
    r"\mathbb{E}_{q_\phi(z|x)}\left[\log p_\theta(x|z)\right] - \mathrm{KL}(q \,\|\, p)",
    r"\begin{align*} a &= b \\ c &= d \end{align*}",
    r"f(x) = \begin{cases} 1 & x > 0 \\ 0 & \text{otherwise} \end{cases}",
    r"\{x_i\}_{i=1}^N",
    r"\frac{1}{2}\sigma^2",
])
def test_renders_valid_mathml(tex):
    out = to_mathml(tex, display=True)
    root = ET.fromstring(out)  # well-formed XML
    assert root.tag.endswith("math") and root.get("display") == "block"
    assert "\\" not in out  # no raw TeX left


def test_inline_vs_display():
    assert 'display="inline"' in to_mathml("x^2", display=False)
    assert 'display="block"' in to_mathml("x^2", display=True)


@pytest.mark.parametrize("tex, message", [
    (r"\arg\max_\theta p", r"unsupported command \arg (write \argmax or \operatorname{arg\,max})"),
    (r"\foo x", r"unsupported command \foo"),
    (r"\frac{a}{b", "unbalanced braces: 1 '{' never closed"),
    (r"a}", "unbalanced braces: a '}' at character 2 closes nothing"),
    (r"\frac{a}", r"\frac needs 2 arguments, got 1"),
    (r"x_", "latex2mathml cannot convert it: a ^ or _ has nothing after it"),
    (r"\left( x", r"latex2mathml cannot convert it: a \left has no matching \right"),
    (r"\operatorname*{arg\,max}_x", r"unsupported command \operatorname* (write \operatorname{...} (no star) or \argmax / \argmin)"),
    (r"\begin{aligned} a &= b \end{aligned}", r"unsupported environment {aligned} (use \begin{align*} ... \end{align*} or \begin{split})"),
    (r"a & b", r"a bare '&' outside a supported environment: write \& for an ampersand, or align inside \begin{align*} ... \end{align*}"),
    ("  ", "empty math"),
])
def test_refuses_what_would_render_wrongly(tex, message):
    with pytest.raises(MathError) as err:
        to_mathml(tex, display=False)
    assert str(err.value) == message


def test_escaped_braces_are_not_counted():
    to_mathml(r"\{ a \}", display=False)
    to_mathml(r"a \\ {b}", display=True)
