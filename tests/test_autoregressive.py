"""PixelCNN and MADE: causality, normalisation, sampling consistent with log_prob, the build contract."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
import torch.nn.functional as F

from gdl_ref.models import autoregressive as ar


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _tiny_pixelcnn(**kw: object) -> ar.PixelCNN:
    cfg = ar.PixelCNNConfig(levels=3, size=2, channels=8, layers=2, kernel=3, hidden=8, dropout=0.0, **kw)
    model = ar.PixelCNN(cfg)
    with torch.no_grad():  # a non-trivial position bias, so the normalisation test is not about zeros
        model.bias.normal_()
    return model.eval()


def test_masks_a_and_b() -> None:
    a, b = ar.raster_mask(3, 3, "A"), ar.raster_mask(3, 3, "B")
    assert a.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    assert ar.vertical_mask(3, 3).tolist() == [[1, 1, 1], [1, 1, 1], [0, 0, 0]]
    with pytest.raises(ValueError, match="'A' or 'B'"):
        ar.raster_mask(3, 3, "C")


@pytest.mark.parametrize("config", [{}, {"kernel": 3, "layers": 3}, {"output": "logistic", "mixtures": 3}])
def test_pixelcnn_is_causal_and_sees_all_of_the_past(config: dict) -> None:
    """d logits(pixel i) / d input(pixel j) is exactly 0 for j >= i and nonzero for j < i (default config)."""
    model = ar.build("digits", dropout=0.0, **config).eval()
    hw = model.config.size
    image = F.one_hot(torch.randint(0, 17, (hw, hw)), 17).permute(2, 0, 1).float()  # (17, 8, 8)
    onehot = image.expand(hw * hw, -1, -1, -1).clone().requires_grad_()  # copy i asks about pixel i
    logits = model(onehot)  # (64, 17, 8, 8)
    rows, cols = torch.arange(hw * hw) // hw, torch.arange(hw * hw) % hw
    (grad,) = torch.autograd.grad(logits[torch.arange(hw * hw), :, rows, cols].sum(), onehot)
    full_view = "layers" not in config  # the default depth must have no blind spot
    for i in range(hw * hw):
        per_pixel = grad[i].abs().sum(0).flatten()  # (64,) d logits_i / d pixel j, raster order
        assert torch.all(per_pixel[i:] == 0), f"pixel {i} depends on a pixel >= itself"
        if full_view:
            assert torch.all(per_pixel[:i] > 0), f"pixel {i} has a blind spot"


@pytest.mark.parametrize("output", ["softmax", "logistic"])
def test_pixelcnn_probabilities_sum_to_one_on_tiny_image_space(output: str) -> None:
    model = _tiny_pixelcnn(output=output, mixtures=2)
    images = torch.tensor(list(itertools.product(range(3), repeat=4))).view(-1, 1, 2, 2)  # all 81 images
    with torch.no_grad():
        total = model.log_prob(images).exp().sum()
    assert abs(total.item() - 1.0) < 1e-5


def test_pixelcnn_samples_follow_log_prob() -> None:
    """Empirical frequencies of 10,000 samples match exp(log_prob) on all 81 tiny images (TV < 0.04)."""
    model = _tiny_pixelcnn()
    images = torch.tensor(list(itertools.product(range(3), repeat=4))).view(-1, 1, 2, 2)
    with torch.no_grad():
        p = model.log_prob(images).exp()
    s = model.sample(10_000, generator=torch.Generator().manual_seed(1))
    index = (s.view(-1, 4) * torch.tensor([27, 9, 3, 1])).sum(1)  # base-3 code = row of `images`
    freq = torch.bincount(index, minlength=81).float() / len(s)
    assert 0.5 * (freq - p).abs().sum().item() < 0.04
    cold = model.sample(5_000, temperature=0.3, generator=torch.Generator().manual_seed(2))
    top = images[p.argmax()].view(1, 4)
    assert (cold.view(-1, 4) == top).all(1).float().mean() > p.max()  # low temperature sharpens the mode


def test_pixelcnn_shapes_and_errors() -> None:
    model = ar.build("digits", channels=8, layers=2, hidden=8)
    s = model.sample(2)
    assert s.dtype == torch.int64 and s.shape == (2, 1, 8, 8) and 0 <= s.min() and s.max() <= 16
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        model.log_prob(torch.zeros(3, 64, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        model.sample(1, temperature=0.0)


@pytest.mark.parametrize("data", ["digits", "moons"])
def test_build_contract(data: str) -> None:
    model = ar.build(data)
    assert model.config.data == data
    again = ar.build(data, **dataclasses.asdict(model.config))
    again.load_state_dict(model.state_dict())  # same architecture, same parameter names and shapes
    with pytest.raises(ValueError, match="digits"):
        ar.build("mnist")
    with pytest.raises(TypeError, match="widthh"):
        ar.build(data, widthh=3)


def test_made_is_autoregressive() -> None:
    model = ar.build("moons")
    x = torch.randn(5, 2)
    y = x.clone()
    y[:, 1] += 1.0  # change x_2 only
    with torch.no_grad():
        px, py = model.params(x), model.params(y)
        z = torch.randn(5, 2)
        pz = model.params(z)
    for a, b in zip(px, py):
        assert torch.equal(a, b)  # nothing depends on x_2 (the last coordinate)
    for a, c in zip(px, pz):
        assert torch.equal(a[:, 0], c[:, 0])  # p(x_1) depends on nothing
        assert not torch.allclose(a[:, 1], c[:, 1])  # p(x_2 | x_1) does depend on x_1


def test_made_density_integrates_to_one() -> None:
    model = ar.build("ring", hidden=16, components=4).eval()
    with torch.no_grad():
        model.out.weight.normal_(0, 0.3)  # make p(x_2 | x_1) vary strongly with x_1
    step = 0.025
    g = torch.arange(-8, 8, step) + step / 2
    grid = torch.cartesian_prod(g, g)  # midpoints of a 640 x 640 grid on [-8, 8]^2
    with torch.no_grad():
        mass = model.log_prob(grid).exp().sum().item() * step**2
    assert abs(mass - 1.0) < 1e-2
    assert model.sample(4).shape == (4, 2)


def test_logistic_mixture_output_is_the_binned_mixture_computed_directly() -> None:
    """mixture_log_probs against P(l) = sum_k pi_k (sigma((c_l + h - mu_k)/s_k) - sigma((c_l - h - mu_k)/s_k)) in
    float64, with the first and last bins open to -inf and +inf."""
    model = ar.build("digits", output="logistic", mixtures=3)
    out = torch.randn(2, 9, 8, 8, generator=torch.Generator().manual_seed(4))
    got = model.mixture_log_probs(out)  # (2, 17, 8, 8)
    logit_pi, mean, log_scale = out.double().view(2, 3, 3, 8, 8).unbind(1)
    pi, mu, s = torch.softmax(logit_pi, 1), mean.tanh(), log_scale.clamp(-7, 3).exp()
    centres = torch.linspace(-1, 1, 17, dtype=torch.float64)
    upper = torch.sigmoid((centres.view(1, 17, 1, 1, 1) + 1 / 16 - mu.unsqueeze(1)) / s.unsqueeze(1))
    lower = torch.sigmoid((centres.view(1, 17, 1, 1, 1) - 1 / 16 - mu.unsqueeze(1)) / s.unsqueeze(1))
    upper[:, -1], lower[:, 0] = 1.0, 0.0
    want = ((upper - lower) * pi.unsqueeze(1)).sum(2)  # (2, 17, 8, 8)
    torch.testing.assert_close(got.exp().double(), want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.exp().sum(1), torch.ones(2, 8, 8), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="output"):
        ar.build("digits", output="gaussian")
