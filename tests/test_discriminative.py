"""Generative vs discriminative classifiers: both classify; only the generative ones sample."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gdl_ref import data
from gdl_ref.lessons import discriminative as disc
from gdl_ref.train import fit


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, ...]:
    return (*data.digits("train"), *data.digits("test"))


def test_naive_bayes_is_counting_and_bayes_rule(digits: tuple[torch.Tensor, ...]) -> None:
    x, y, x_test, y_test = digits
    model = disc.build("digits", pseudocount=1.0).fit_closed_form(x, y)
    # theta[c, i, k] = (N_{c,i,k} + 1) / (N_c + 17): check one entry by hand
    c, i, k = 3, 20, 16
    n_c = int((y == c).sum())
    n_cik = int((x.flatten(1)[y == c, i] == k).sum())
    assert model.log_theta[c, i, k].exp().item() == pytest.approx((n_cik + 1) / (n_c + 17), rel=1e-5)
    # p(y | x) from the joint sums to one, and log p(x) = logsumexp_y log p(x, y)
    joint = model.log_joint(x_test[:5])
    posterior = joint.log_softmax(-1).exp()
    assert torch.allclose(posterior.sum(-1), torch.ones(5))
    assert torch.allclose(model.log_prob(x_test[:5]), joint.logsumexp(-1))
    assert disc.accuracy(model, x_test, y_test) > 0.8


def test_gradient_descent_reaches_the_counting_mle(digits: tuple[torch.Tensor, ...]) -> None:
    x, y, _, _ = digits
    closed = disc.build("digits", pseudocount=0.0).fit_closed_form(x, y)
    gd = disc.build("digits")
    fit(gd, (x, y), steps=150, batch_size=len(x), lr=0.2)
    assert gd.loss(x, y).item() == pytest.approx(closed.loss(x, y).item(), abs=0.5)  # nats per image, ~100


def test_gaussian_classifier(digits: tuple[torch.Tensor, ...]) -> None:
    x, y, x_test, y_test = digits
    model = disc.build("digits", model="gaussian").fit_closed_form(x, y)
    assert disc.accuracy(model, x_test, y_test) > 0.9
    v = x[y == 7].flatten(1).float() / 16
    assert torch.allclose(model.means[7], v.mean(0), atol=1e-6)
    s = model.sample(4000, y=7, generator=torch.Generator().manual_seed(0))
    assert s.dtype == torch.int64 and s.shape == (4000, 1, 8, 8) and 0 <= s.min() and s.max() <= 16
    assert (model.predict(s) == 7).float().mean() > 0.9  # samples of class 7 are classified as 7


def test_logistic_regression_classifies_but_cannot_sample(digits: tuple[torch.Tensor, ...]) -> None:
    x, y, x_test, y_test = digits
    torch.manual_seed(0)
    model = disc.build("digits", model="logistic")
    fit(model, (x, y), epochs=10, batch_size=64, lr=0.01)
    assert disc.accuracy(model, x_test, y_test) > 0.85
    with pytest.raises(NotImplementedError, match="p\\(y \\| x\\)"):
        model.sample(1, y=3)


def test_generative_samples_are_of_the_chosen_class(digits: tuple[torch.Tensor, ...]) -> None:
    """Pixel means of samples of class c match E[x_i | y = c] of the model and the class's training mean."""
    x, y, _, _ = digits
    model = disc.build("digits").fit_closed_form(x, y)
    levels = torch.arange(17.0)
    for c in (0, 3):
        s = model.sample(2000, y=c, generator=torch.Generator().manual_seed(c)).flatten(1).float()  # (2000, 64)
        expected = (model.log_theta[c].exp() * levels).sum(-1)  # (64,) sum_k k theta[c, i, k]
        assert (s.mean(0) - expected).abs().max() < 0.5  # grey levels; sd of a pixel <= 8, 2000 draws
        xc = x.flatten(1)[y == c].float()  # with one pseudo-count: (sum_n x_ni + sum_k k) / (N_c + 17)
        assert torch.allclose(expected, (xc.sum(0) + 136) / (len(xc) + 17), atol=1e-4)
        nearest = ((x.flatten(1).float() - s.mean(0)).pow(2).sum(-1)).argmin()  # closest train image
        assert y[nearest] == c
    mixed = model.sample(5000, generator=torch.Generator().manual_seed(5))  # y ~ p(y)
    assert mixed.shape == (5000, 1, 8, 8)


def test_build_contract() -> None:
    for kind in ("categorical", "gaussian", "logistic"):
        model = disc.build("digits", model=kind)
        assert model.config.model == kind
        disc.build("digits", **dataclasses.asdict(model.config)).load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match="digits"):
        disc.build("moons")
    with pytest.raises(TypeError, match="shrink"):
        disc.build("digits", shrink=0.1)
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        disc.build("digits").predict(torch.zeros(2, 64, dtype=torch.long))
