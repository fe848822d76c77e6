"""Tests for gdl_ref.metrics against known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import linalg

from gdl_ref import data, evaluate, metrics

torch.set_num_threads(1)


def gauss(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    return shift + scale * torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_frechet_of_identical_gaussians_is_zero():
    a = gauss(300, 5, 0)
    cov = torch.cov(a.T)
    assert abs(metrics.gaussian_frechet(a.mean(0), cov, a.mean(0), cov)) < 1e-9
    assert abs(metrics.frechet_distance(a, a)) < 1e-9


def test_frechet_closed_form_diagonal_and_scipy_general():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    v1, v2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt v1 - sqrt v2)^2 = 5 + (1 + 1 + 4)
    fd = metrics.gaussian_frechet(mu1, torch.diag(v1), mu2, torch.diag(v2))
    assert fd == pytest.approx(5 + 6, abs=1e-9)
    # general covariances: the textbook formula with scipy's sqrtm
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    c1, c2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    m1, m2 = rng.normal(size=4), rng.normal(size=4)
    expected = ((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2 * linalg.sqrtm(c1 @ c2).real)
    got = metrics.gaussian_frechet(*(torch.tensor(t) for t in (m1, c1, m2, c2)))
    assert got == pytest.approx(expected, rel=1e-8)


def test_frechet_of_samples_approaches_the_closed_form():
    a, b = gauss(20_000, 3, 1), gauss(20_000, 3, 2, shift=1.0, scale=2.0)
    # N(0, I) vs N(1, 4 I) in 3-D: 3 * 1 + 3 * (1 - 2)^2 = 6
    assert metrics.frechet_distance(a, b) == pytest.approx(6.0, abs=0.15)


def test_kernel_distance_unbiased_and_separating():
    a, b = gauss(400, 4, 3), gauss(400, 4, 4)
    same = metrics.kernel_distance(a, b)
    far = metrics.kernel_distance(a, gauss(400, 4, 5, shift=2.0))
    assert abs(same) < 0.05 and far > 20 * max(abs(same), 1e-3)
    # unbiased: the mean over many pairs of same-distribution sets is near zero, with both signs
    vals = [metrics.kernel_distance(gauss(100, 2, 10 + i), gauss(100, 2, 50 + i)) for i in range(20)]
    assert min(vals) < 0 < max(vals) and abs(np.mean(vals)) < 0.02


def test_mmd_zero_for_the_same_set_and_growing_with_a_shift():
    a = gauss(300, 2, 6)
    assert metrics.mmd(a, a, (0.5, 1.0)) == 0.0
    near = metrics.mmd(a, gauss(300, 2, 7, shift=0.3), (0.5, 1.0))
    far = metrics.mmd(a, gauss(300, 2, 7, shift=3.0), (0.5, 1.0))
    assert 0 < near < far


def test_one_nn_accuracy_half_for_same_one_for_apart():
    a, b = gauss(500, 2, 8), gauss(500, 2, 9)
    assert 0.42 < metrics.one_nn_accuracy(a, b) < 0.58
    assert metrics.one_nn_accuracy(a, gauss(500, 2, 9, shift=50.0)) == 1.0
    assert metrics.one_nn_accuracy(a, a + 1e-6) == 0.0  # copies: each point's nearest is its twin


def test_toy_sample_quality_on_known_cases():
    truth = metrics.toy_sample_quality(data.toy("8gaussians", 1000, seed=5), data.dataset("8gaussians"))
    assert truth["modes_covered"] == 8 and truth["high_quality_share"] > 0.98
    assert 0.4 < truth["one_nn"] < 0.6
    one_mode = data.toy("8gaussians", 1000, seed=5)
    one_mode = one_mode[(one_mode - torch.tensor([2.0, 0.0])).norm(dim=1) < 0.6]  # the mode at (2, 0)
    collapsed = metrics.toy_sample_quality(one_mode, data.dataset("8gaussians"))
    assert collapsed["modes_covered"] == 1 and collapsed["one_nn"] > 0.8 and collapsed["mmd"] > truth["mmd"]
    center = metrics.toy_sample_quality(torch.zeros(100, 2), data.dataset("8gaussians"))
    assert center["high_quality_share"] == 0 and center["modes_covered"] == 0
    ring = metrics.toy_sample_quality(data.toy("ring", 500, seed=3), data.dataset("ring"))
    assert set(ring) == {"mmd", "one_nn"}
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        metrics.toy_sample_quality(torch.zeros(5, 3), data.dataset("ring"))


def test_resampled_statistics_treat_copies_as_one_point():
    # a resample read through counts equals the statistic computed on the resampled sets by hand,
    # with the copies of a point never paired with themselves
    a, b = gauss(30, 3, 11), gauss(25, 3, 12, shift=0.5)
    g = torch.Generator().manual_seed(3)
    ia, ib = torch.randint(30, (30,), generator=g), torch.randint(25, (25,), generator=g)
    x = torch.cat([a, b])
    c = metrics.resample_counts(30, 25, ia, ib)
    ra, rb = a[ia], b[ib]
    # MMD (V-statistic): the resampled sets as they are
    got = metrics.mmd_from_gram(metrics.gaussian_gram(x, (1.0,)), 30, c)
    assert got == pytest.approx(metrics.mmd(ra, rb, (1.0,)), rel=1e-9)
    # KID: pairs of copies left out, like the pairs i = j
    k = metrics.polynomial_gram(torch.cat([ra, rb]))
    oa, ob = ia[:, None] != ia[None, :], ib[:, None] != ib[None, :]
    by_hand = k[:30, :30][oa].mean() + k[30:, 30:][ob].mean() - 2 * k[:30, 30:].mean()
    assert metrics.kernel_distance_from_gram(metrics.polynomial_gram(x), 30, c) == pytest.approx(float(by_hand))
    # 1-NN: each drawn point's nearest drawn point of another origin
    d = torch.cdist(x, x)
    origin = torch.cat([ia, 30 + ib])
    dd = d[origin][:, origin]
    dd[origin[:, None] == origin[None, :]] = math.inf
    labels = torch.cat([torch.zeros(30), torch.ones(25)])
    expected = float((labels[dd.argmin(1)] == labels).double().mean())
    assert metrics.one_nn_from_distances(d, metrics.neighbour_order(d), 30, c) == pytest.approx(expected)


# ----------------------------------------------------------------------------- the classifier

def test_classifier_is_accurate_and_rejects_bad_input():
    assert metrics.classifier_accuracy(split="test") > 0.9
    x = data.digits("val")[0][:5]
    assert metrics.digit_features(x).shape == (5, metrics.FEATURE_DIM)
    with pytest.raises(ValueError, match="quantize"):
        metrics.digit_features(x.float())
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        metrics.digit_features(x.reshape(5, 64))


def test_sample_quality_floor_beats_noise_and_the_wrong_class():
    floor = {k: mean for k, (mean, _) in evaluate.floor(data.dataset("digits"), 447).items()}
    assert set(floor) == {"fd", "kd", "mmd", "one_nn"}
    noise = metrics.sample_quality(torch.randint(0, 17, (447, 1, 8, 8), generator=torch.Generator().manual_seed(0)), data.dataset("digits").test)
    x, y = data.digits("train")
    ones = metrics.sample_quality(x[y == 1][:100], data.dataset("digits").test)  # a model that draws only ones
    for key in floor:
        assert floor[key] < ones[key] and floor[key] < noise[key], key
    assert noise["one_nn"] > 0.95


def test_sample_quality_of_the_reference_itself():
    test = data.digits("test")[0]
    same = metrics.sample_quality(test, data.dataset("digits").test)
    assert abs(same["fd"]) < 1e-6 and same["mmd"] == 0.0 and same["one_nn"] == 0.0


@pytest.mark.slow
def test_classifier_training_is_reproducible():
    a = metrics.train_digit_classifier(seed=0)
    cached = metrics.digit_classifier()
    for k, v in a.state_dict().items():
        assert torch.allclose(v, cached.state_dict()[k], atol=1e-4), k
    assert metrics.classifier_accuracy(a) == metrics.classifier_accuracy(cached)


def test_the_metrics_page_figures_are_generated_from_their_json():
    import importlib.util
    import json

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("metrics_figures", ROOT / "benchmarks" / "metrics_figures.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    doc = json.loads(script.JSON_PATH.read_text(encoding="utf-8"))
    assert script.render(doc) == script.PAGE_PATH.read_text(encoding="utf-8"), (
        "benchmarks/results/metrics-figures.md is out of date: run python benchmarks/metrics_figures.py render")
    page = (ROOT / "docs" / "guide" / "metrics.md").read_text(encoding="utf-8")
    for section in ("classifier", "digits_floor", "toy_floors"):
        assert f'--8<-- "benchmarks/results/metrics-figures.md:{section}"' in page, section
    assert set(doc["floors"]) == {"digits", *data.TOY_NAMES} and doc["floor_subsets"] == evaluate.FLOOR_SUBSETS
    assert all(sd > 0 for f in doc["floors"].values() for key, (mean, sd) in f["values"].items()
               if key != "modes_covered")
