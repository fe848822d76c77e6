"""Corrected statements on the family and guide pages stay corrected.

Each test names the fact it guards and, where one exists, the source: the book's repository, a paper,
or a computation on the page itself. The chapter-1 corrections are guarded in ``test_chapter_one.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _prose(page: str) -> str:
    """The page with its line breaks folded, so phrases can be searched across lines."""
    return " ".join((DOCS / page).read_text(encoding="utf-8").split())


def test_diffusion_error_in_eps_reaches_x0_scaled_down_at_low_noise() -> None:
    # x0_hat = (x_t - sqrt(1 - abar) eps_hat) / sqrt(abar): an eps error is multiplied by sqrt((1 - abar) / abar).
    text = _prose("families/diffusion.md")
    assert r"\sqrt{(1 - \bar\alpha_t)/\bar\alpha_t}" in text
    assert r"\sqrt{\bar\alpha_t/(1 - \bar\alpha_t)}" not in text
    assert "sawtooth" in text and r"1/\sqrt{1 - \bar\alpha_t}" in text


def test_diffusion_bound_is_an_expectation_and_one_draw_bounds_only_in_expectation() -> None:
    text = _prose("families/diffusion.md")
    assert r"-\log p_\theta(x_0) \le \mathbb{E}_{q(x_{1:T} \mid x_0)}" in text  # Ho et al. (2020), eq. 5
    assert "the total is an upper bound" not in text and "bound only in expectation" in text
    # The benchmark runs DDPM on all T steps, then DDPM respaced and DDIM at each of four step counts.
    assert "nine in all" in text and "DDPM on a respaced chain, and DDIM" not in text


def test_vae_bounds() -> None:
    text = _prose("families/vae.md")
    # Raising the ELBO over theta may shrink the posterior gap instead of raising log p(x).
    assert "over $\\theta$ it raises the likelihood." not in text and "shrink the gap by moving the true posterior" in text
    # One set of k draws gives an unbiased estimate of L_k, a bound only in expectation.
    assert "Its negative is an upper bound on the test NLL" not in text and "the bound holds in expectation" in text


def test_ebm_names_its_sampler_and_its_method_right() -> None:
    text = _prose("families/ebm.md")
    assert "most flexible explicit density there is" not in text
    # Contrastive divergence (Hinton, 2002) starts at the data; from noise or a buffer it is PCD or short-run MCMC.
    assert "chain started at the data point $x^+$ itself" in text
    assert "persistent contrastive divergence (Tieleman, 2008)" in text and "short-run MCMC" in text


def test_one_symbol_for_the_langevin_step() -> None:
    # eta, as in the chapter-1 card; epsilon is the diffusion noise.
    for page in ("families/ebm.md", "chapters/generative-modelling.md"):
        langevin = [line for line in (DOCS / page).read_text(encoding="utf-8").splitlines()
                    if "x_{k+1} = x_k" in line]
        assert langevin, page
        for line in langevin:
            assert r"\eta\, \nabla_x E_\theta(x_k) + \sqrt{2\eta}" in line, (page, line)
    assert r"\epsilon" not in (DOCS / "families/ebm.md").read_text(encoding="utf-8")


def test_the_discriminator_outputs_a_logit_on_every_page() -> None:
    for page in ("families/gan.md", "chapters/generative-modelling.md"):
        text = _prose(page)
        assert re.search(r"\\log \\sigma\(D\(x\)\)", text), page
        assert not re.search(r"\\log D\(|\\log \(1 - D\(", text), page


def test_singular_class_covariance_is_explained_by_constant_pixels() -> None:
    # The page's own block counts 11 to 18 constant pixels per class and ranks 46 to 53.
    text = (DOCS / "families/generative-vs-discriminative.md").read_text(encoding="utf-8")
    counted = re.findall(r"class \d: +\d+ images, +(\d+) constant pixels, covariance rank (\d+) of 64", text)
    assert len(counted) == 10
    constant, rank = [int(c) for c, _ in counted], [int(r) for _, r in counted]
    prose = _prose("families/generative-vs-discriminative.md")
    assert f"between {min(constant)} and {max(constant)} pixels" in prose
    assert f"rank {min(rank)} to {max(rank)}" in prose
    assert "2,080 free numbers, so the MLE covariance is singular" not in prose


def test_gpu_guide_says_the_book_uses_a_t4() -> None:
    text = _prose("guide/gpu.md")
    assert "Its example names a Tesla K80" not in text
    assert "one NVIDIA Tesla T4" in text and "--accelerator=type=nvidia-tesla-t4,count=1" in text
