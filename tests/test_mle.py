"""Maximum likelihood: gradient descent reaches the closed forms; NLL - H = KL >= 0 on a toy."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gdl_ref import data
from gdl_ref.lessons import mle
from gdl_ref.train import fit


def test_gaussian_closed_form_is_the_mle() -> None:
    """The closed form has zero NLL gradient, and any perturbation raises the NLL."""
    x = data.load("moons", "train")
    mu, cov = mle.fit_gaussian_closed_form(x)
    assert torch.allclose(cov, torch.cov(x.T, correction=0), atol=1e-5)  # 1/N, not 1/(N-1)
    dist = torch.distributions.MultivariateNormal(mu, cov)
    nll = -dist.log_prob(x).mean()
    for d_mu, d_cov in [(0.05, 0.0), (0.0, 0.05), (-0.05, -0.02)]:
        other = torch.distributions.MultivariateNormal(mu + d_mu, cov + d_cov * torch.eye(2))
        assert -other.log_prob(x).mean() > nll


def test_gaussian_gradient_descent_reaches_closed_form() -> None:
    x = data.load("ring", "train")[:1000] * torch.tensor([1.0, 0.5]) + torch.tensor([0.3, -0.2])
    mu, cov = mle.fit_gaussian_closed_form(x)
    mu_gd, cov_gd = mle.fit_gaussian_gd(x, steps=400, lr=0.05)
    assert torch.allclose(mu_gd, mu, atol=2e-3)
    assert torch.allclose(cov_gd, cov, atol=2e-3)


def test_gaussian_log_prob_matches_torch() -> None:
    model = mle.Gaussian(3)
    with torch.no_grad():
        model.mu.normal_()
        model.raw_l.normal_(0, 0.5)
    x = torch.randn(7, 3)
    ref = torch.distributions.MultivariateNormal(model.mu, scale_tril=model.scale_tril()).log_prob(x)
    assert torch.allclose(model.log_prob(x), ref, atol=1e-5)
    s = model.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(s.mean(0), model.mu.detach(), atol=0.05)


def test_categorical_gradient_descent_reaches_counts() -> None:
    x = torch.multinomial(torch.tensor([0.5, 0.2, 0.2, 0.1]), 2000, replacement=True,
                          generator=torch.Generator().manual_seed(0))
    closed = mle.fit_categorical_closed_form(x, 4)
    assert torch.allclose(closed, torch.bincount(x, minlength=4) / 2000.0)
    model = mle.Categorical(4)
    fit(model, x, steps=300, batch_size=len(x), lr=0.05)
    assert torch.allclose(model.probs.detach(), closed, atol=2e-3)
    smoothed = mle.fit_categorical_closed_form(torch.tensor([0, 0, 1]), 3, pseudocount=1.0)
    assert torch.allclose(smoothed, torch.tensor([3.0, 2.0, 1.0]) / 6)


def test_pixel_categorical_counting_is_the_mle_and_baseline() -> None:
    x, _ = data.digits("train")
    x_test, _ = data.digits("test")
    model = mle.build("digits").fit_closed_form(x, pseudocount=0.0)
    probs = model.logits.softmax(-1)  # (64, 17)
    assert torch.allclose(probs[10, x[:, 0, 1, 2].bincount(minlength=17).argmax()],
                          x[:, 0, 1, 2].bincount(minlength=17).max() / 1000.0)
    smoothed = mle.build("digits").fit_closed_form(x, pseudocount=1.0)
    nll = -smoothed.log_prob(x_test).mean().item()
    assert 105.0 < nll < 108.0  # the independent-pixel baseline, about 106.5 nats per image
    assert smoothed.sample(3).shape == (3, 1, 8, 8)


def test_mixture_gradient_descent_matches_em() -> None:
    """Gradient descent on a diagonal mixture reaches the NLL of scikit-learn's EM fit (same K)."""
    x = data.load("8gaussians", "train")[:2000]
    em = SkGaussianMixture(8, covariance_type="diag", random_state=0, n_init=3).fit(x.numpy())
    em_nll = -em.score(x.numpy())
    torch.manual_seed(0)
    model = mle.GaussianMixture(2, 8, init=torch.as_tensor(em.means_, dtype=torch.float32) + 0.3)
    fit(model, x, steps=300, batch_size=len(x), lr=0.05)
    assert model.loss(x).item() == pytest.approx(em_nll, abs=0.01)


def test_paired_kl_from_the_truth() -> None:
    """The paired KL is 0 for the true density, and agrees with the Gaussian's closed-form KL."""
    name = "ring"
    gauss = mle.Gaussian.from_closed_form(data.load(name, "train"))
    cov = gauss.covariance.detach()
    assert torch.allclose(cov, mle.fit_gaussian_closed_form(data.load(name, "train"))[1], atol=1e-5)
    gap_gauss = mle.kl_from_truth(gauss, name)
    truth = type("Truth", (), {"log_prob": staticmethod(lambda x: data.toy_log_prob(name, x))})()
    gap_true = mle.kl_from_truth(truth, name)
    # the Gaussian's KL also has a closed form here: H(N(mu, Sigma)) - H(ring) when Sigma is the MLE
    h_gauss = 0.5 * math.log((2 * math.pi * math.e) ** 2 * torch.det(cov).item())
    assert gap_gauss["kl"] == pytest.approx(h_gauss - gap_gauss["entropy"], abs=3 * gap_gauss["stderr"])
    assert gap_gauss["kl"] > 5 * gap_gauss["stderr"] > 0
    assert gap_true["kl"] == 0 and gap_true["stderr"] == 0  # paired: the truth against itself
    # E_p[-log q] = H + KL: the test NLL minus the entropy agrees with the paired KL up to sample noise
    assert gap_gauss["nll"] - gap_gauss["entropy"] == pytest.approx(gap_gauss["kl"], abs=0.05)


def test_build_contract() -> None:
    for name in ("digits", "moons"):
        model = mle.build(name)
        assert model.config.data == name
        mle.build(name, **dataclasses.asdict(model.config)).load_state_dict(model.state_dict())
    assert isinstance(mle.build("moons", model="gaussian"), mle.Gaussian)
    with pytest.raises(ValueError, match="digits"):
        mle.build("cifar")
    with pytest.raises(TypeError, match="componentz"):
        mle.build("moons", componentz=3)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        mle.build("moons").log_prob(torch.zeros(4, 3))
