"""Tests for gdl_ref.lessons.sequence: the tiny autoregressive model of the chapter-1 page."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch

from gdl_ref.lessons.sequence import (
    SequenceConfig,
    TinyAutoregressive,
    build,
    counting_entropy,
    counting_sequences,
)
from gdl_ref.train import fit


def test_log_prob_is_normalised_over_every_sequence() -> None:
    # An explicit density: summing p(x) over all V**T sequences gives exactly 1.
    torch.manual_seed(0)
    model = build("counting", vocab=3, length=4, context=2, hidden=8)
    every = torch.tensor(list(itertools.product(range(3), repeat=4)))  # (81, 4)
    total = model.log_prob(every).double().exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-5)


def test_log_prob_is_the_sum_of_the_conditionals() -> None:
    torch.manual_seed(1)
    model = build("counting", context=3)
    x = counting_sequences(4, length=7)
    logits = model.conditional_logits(x)  # (4, 7, 5)
    assert logits.shape == (4, 7, 5)
    by_hand = torch.zeros(4)
    for t in range(7):
        by_hand += logits[:, t].log_softmax(-1)[torch.arange(4), x[:, t]]
    torch.testing.assert_close(model.log_prob(x), by_hand)


def test_conditionals_do_not_see_the_future() -> None:
    # Changing x_t must leave p(x_s | past) unchanged for every s <= t.
    torch.manual_seed(2)
    model = build("counting")
    x = counting_sequences(2, length=10)
    y = x.clone()
    y[:, 6] = (y[:, 6] + 2) % 5
    a, b = model.conditional_logits(x), model.conditional_logits(y)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7], b[:, 7])  # x_6 is in the window of x_7


def test_sample_shape_range_and_seed() -> None:
    model = build("counting", vocab=4, length=9)
    s = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert s.shape == (5, 9) and s.dtype == torch.long
    assert s.min() >= 0 and s.max() <= 3
    again = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, again)
    assert model.sample(2, length=3).shape == (2, 3)


def test_sampling_uses_the_same_conditionals_as_log_prob() -> None:
    # Fix a model whose conditionals are near-deterministic; its samples must be its argmax path.
    torch.manual_seed(3)
    model = build("counting", vocab=5, length=6)
    with torch.no_grad():
        model.net[-1].weight.mul_(0.0)
        model.net[-1].bias.copy_(torch.tensor([0.0, 0.0, 40.0, 0.0, 0.0]))  # always token 2
    s = model.sample(3)
    assert torch.equal(s, torch.full((3, 6), 2))
    assert model.log_prob(s).abs().max() < 1e-6


def test_counting_data_and_entropy() -> None:
    x = counting_sequences(4000, length=6, vocab=5, noise=0.2, seed=0)
    assert x.shape == (4000, 6) and x.min() >= 0 and x.max() <= 4
    follows = ((x[:, 1:] - x[:, :-1]) % 5 == 1).float().mean().item()
    assert follows == pytest.approx(0.8 + 0.2 / 5, abs=0.02)
    assert torch.equal(x, counting_sequences(4000, length=6, vocab=5, noise=0.2, seed=0))
    # No noise: only the first token is random.
    assert counting_entropy(length=6, vocab=5, noise=0.0) == pytest.approx(math.log(5))
    # All noise: every token uniform.
    assert counting_entropy(length=6, vocab=5, noise=1.0) == pytest.approx(6 * math.log(5))
    with pytest.raises(ValueError, match="noise"):
        counting_sequences(2, noise=1.5)


def test_fit_by_maximum_likelihood_approaches_the_entropy() -> None:
    torch.manual_seed(0)
    model = build("counting")
    train, test = counting_sequences(512, seed=0), counting_sequences(512, seed=1)
    h = counting_entropy()
    before = model.loss(test).item()
    fit(model, train, steps=100, batch_size=512, lr=5e-2)
    after = model.loss(test).item()
    assert before > h + 5  # an untrained model is far from the truth
    assert h - 0.05 < after < h + 1.0  # test NLL = H + KL >= H, up to sampling noise


def test_build_rebuilds_from_its_config() -> None:
    model = build("counting", context=3, hidden=16)
    again = build("counting", **dataclasses.asdict(model.config))
    assert again.config == model.config
    assert [p.shape for p in again.parameters()] == [p.shape for p in model.parameters()]
    assert isinstance(TinyAutoregressive(), TinyAutoregressive)
    assert TinyAutoregressive().config == SequenceConfig()


def test_bad_arguments_raise_with_a_message() -> None:
    with pytest.raises(ValueError, match="counting"):
        build("moons")
    with pytest.raises(TypeError, match="widht"):
        build("counting", widht=3)
    with pytest.raises(ValueError, match="disagrees"):
        build("counting", data="other")
    model = build("counting")
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model.log_prob(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model.log_prob(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="0..4"):
        model.log_prob(torch.full((2, 3), 5))
    with pytest.raises(ValueError):
        build("counting", vocab=1)
