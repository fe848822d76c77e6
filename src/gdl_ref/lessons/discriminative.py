"""Generative versus discriminative classifiers on the digits.

A **generative** classifier models how each class produces images, p(x | y), and a prior p(y); Bayes'
rule turns the joint into a classifier,

    p(y | x) = p(x | y) p(y) / sum_c p(x | c) p(c),

and because it has p(x | y) it can also *sample* an image of a chosen class. A **discriminative**
classifier models p(y | x) only -- here logistic regression, p(y | x) = softmax(W x + b) -- and has no
distribution over images to sample from.

* :class:`PixelCategoricalClassifier` -- naive Bayes with a categorical over the 17 grey levels for
  every pixel and class; its MLE is counting (with an additive pseudo-count).
* :class:`GaussianClassifier` -- a Gaussian N(mu_y, Sigma_y) per class on the pixel intensities
  (quadratic discriminant analysis), its covariance shrunk towards the identity.
* :class:`LogisticRegression` -- p(y | x) = softmax(W x / 16 + b), trained by ``train.fit``.

References: Ng & Jordan (2001), "On discriminative vs. generative classifiers: a comparison of logistic
regression and naive Bayes"; Bishop (2006), sections 4.2-4.3; Foster, *Generative Deep Learning*, 2nd ed.
(2023), chapter 1 ("Generative versus discriminative modeling").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref.likelihood import Bound, DensityModule
from gdl_ref.models.registry import FamilyConfig

__all__ = [
    "ClassifierConfig", "GenerativeClassifier", "PixelCategoricalClassifier", "GaussianClassifier", "LogisticRegression",
    "accuracy", "build",
]

CLASSES = 10


def _check(x: Tensor, y: Tensor | None = None) -> None:
    gdata.check_digits(x)
    if y is not None and (y.shape != (len(x),) or y.dtype.is_floating_point):
        raise ValueError(f"expected integer labels y of shape ({len(x)},), got {y.dtype} {tuple(y.shape)}")


def _labels(n: int, y: int | Tensor | None, generator: torch.Generator | None, prior: Tensor) -> Tensor:
    """The classes to sample: y as given (int or (n,)), or drawn from the prior p(y)."""
    if y is None:
        return torch.multinomial(prior, n, replacement=True, generator=generator)
    y = torch.as_tensor(y, dtype=torch.long, device=prior.device)
    return y.expand(n).clone() if y.ndim == 0 else y


# --8<-- [start:bayes]
class GenerativeClassifier(nn.Module):
    """A class-conditional density p(x | y) with a prior p(y); subclasses define ``log_joint``."""

    def log_joint(self, x: Tensor) -> Tensor:
        """log p(x, y=c) = log p(c) + log p(x | c) for every class c, (B, 10)."""
        raise NotImplementedError

    def predict(self, x: Tensor) -> Tensor:
        """Bayes' rule: argmax_y p(y | x) = argmax_y log p(x, y), since p(x) is common to every y."""
        return self.log_joint(x).argmax(-1)

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """-mean log p(x, y) in nats per image: gradient descent on it reaches the closed-form MLE."""
        _check(x, y)
        return -self.log_joint(x).gather(1, y[:, None]).mean()
# --8<-- [end:bayes]


# --8<-- [start:generative]
class PixelCategoricalClassifier(GenerativeClassifier, DensityModule):
    """Naive Bayes: p(x, y) = p(y) prod_i Cat(x_i | theta[y, i]) over 64 pixels and 17 levels."""

    bound = Bound.EXACT  # log_prob(x) = log sum_y p(x, y), exact on the discrete images

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        self.config = config or ClassifierConfig(model="categorical")
        self.prior_logits = nn.Parameter(torch.zeros(CLASSES))  # p(y) = softmax(prior_logits)
        self.logits = nn.Parameter(torch.zeros(CLASSES, gdata.DIGIT_DIMS, gdata.DIGIT_LEVELS))  # (10, 64, 17)

    @property
    def log_prior(self) -> Tensor:
        """log p(y), (10,)."""
        return F.log_softmax(self.prior_logits, -1)

    @property
    def log_theta(self) -> Tensor:
        """log p(x_i = k | y), (10, 64, 17): a softmax over the levels, so gradient descent stays normalised."""
        return F.log_softmax(self.logits, -1)

    @torch.no_grad()
    def fit_closed_form(self, x: Tensor, y: Tensor) -> PixelCategoricalClassifier:
        """The MLE by counting: p(y) = N_y / N, theta[y, i, k] = (N_{y,i,k} + a) / (N_y + 17 a)."""
        _check(x, y)
        a = self.config.pseudocount
        onehot = F.one_hot(x.flatten(1), gdata.DIGIT_LEVELS).float()  # (N, 64, 17)
        counts = torch.zeros(CLASSES, gdata.DIGIT_DIMS, gdata.DIGIT_LEVELS).index_add_(0, y, onehot) + a
        self.logits.copy_(torch.log(counts / counts.sum(-1, keepdim=True)))  # log_softmax leaves it as is
        self.prior_logits.copy_(torch.log(torch.bincount(y, minlength=CLASSES).float() / len(y)))
        return self

    def log_joint(self, x: Tensor) -> Tensor:
        """log p(x, y=c) for every class c, (B, 10): log p(c) + sum_i log theta[c, i, x_i]."""
        _check(x)
        pixels = x.flatten(1)  # (B, 64)
        per_pixel = self.log_theta[:, torch.arange(gdata.DIGIT_DIMS), pixels]  # (10, B, 64)
        return per_pixel.sum(-1).T + self.log_prior  # (B, 10)

    def log_likelihood(self, x: Tensor) -> Tensor:
        """log p(x) = log sum_y p(x, y), (B,): the model is a density over images too."""
        return torch.logsumexp(self.log_joint(x), -1)

    @torch.no_grad()
    def sample(self, n: int, y: int | Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n digits int64 (n, 1, 8, 8) of class y (or y ~ p(y)): every pixel from Cat(theta[y, i])."""
        labels = _labels(n, y, generator, self.log_prior.exp())
        probs = self.log_theta.exp()[labels].reshape(n * gdata.DIGIT_DIMS, gdata.DIGIT_LEVELS)
        return torch.multinomial(probs, 1, generator=generator).view(n, *gdata.DIGIT_SHAPE)
# --8<-- [end:generative]


class GaussianClassifier(GenerativeClassifier):
    """p(x, y) = p(y) N(x / 16; mu_y, Sigma_y): one Gaussian per class on the intensities (QDA).

    Sigma_y is the class's MLE covariance shrunk towards the identity, (1 - s) S_y + s v I (s =
    ``shrinkage``, v the mean variance), because 64 x 64 covariances from ~100 images are singular.
    Samples are rounded back to the 17 levels.
    """

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        self.config = config or ClassifierConfig(model="gaussian")
        d = gdata.DIGIT_DIMS
        self.register_buffer("log_prior", torch.full((CLASSES,), -math.log(CLASSES)))
        self.register_buffer("means", torch.zeros(CLASSES, d))
        self.register_buffer("scale_tril", torch.eye(d).repeat(CLASSES, 1, 1))  # Cholesky factors L_y

    @torch.no_grad()
    def fit_closed_form(self, x: Tensor, y: Tensor) -> GaussianClassifier:
        """mu_y = class mean, Sigma_y = shrunk class covariance, p(y) = N_y / N."""
        _check(x, y)
        v = x.flatten(1).float() / (gdata.DIGIT_LEVELS - 1)  # (N, 64) in [0, 1]
        s = self.config.shrinkage
        for c in range(CLASSES):
            vc = v[y == c]
            mu = vc.mean(0)
            cov = (vc - mu).T @ (vc - mu) / len(vc)  # MLE covariance (1/N_y)
            cov = (1 - s) * cov + s * cov.diagonal().mean() * torch.eye(len(mu))
            self.means[c], self.scale_tril[c] = mu, torch.linalg.cholesky(cov)
        self.log_prior.copy_(torch.log(torch.bincount(y, minlength=CLASSES).float() / len(y)))
        return self

    def log_joint(self, x: Tensor) -> Tensor:
        """log p(y=c) + log N(x / 16; mu_c, Sigma_c) for every class c, (B, 10)."""
        _check(x)
        v = x.flatten(1).float() / (gdata.DIGIT_LEVELS - 1)
        dist = torch.distributions.MultivariateNormal(self.means, scale_tril=self.scale_tril)
        return dist.log_prob(v[:, None, :]) + self.log_prior  # (B, 10)

    @torch.no_grad()
    def sample(self, n: int, y: int | Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """x = round(16 (mu_y + L_y eps)), clamped to 0..16: int64 (n, 1, 8, 8)."""
        labels = _labels(n, y, generator, self.log_prior.exp())
        eps = torch.randn(n, gdata.DIGIT_DIMS, 1, generator=generator, device=self.means.device)
        v = self.means[labels] + (self.scale_tril[labels] @ eps)[..., 0]
        levels = torch.round(v * (gdata.DIGIT_LEVELS - 1)).clamp(0, gdata.DIGIT_LEVELS - 1).long()
        return levels.view(n, *gdata.DIGIT_SHAPE)


# --8<-- [start:discriminative]
class LogisticRegression(nn.Module):
    """p(y | x) = softmax(W x / 16 + b): a model of the label given the image, and of nothing else."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        self.config = config or ClassifierConfig(model="logistic")
        self.linear = nn.Linear(gdata.DIGIT_DIMS, CLASSES)

    def logits(self, x: Tensor) -> Tensor:
        _check(x)
        return self.linear(x.flatten(1).float() / (gdata.DIGIT_LEVELS - 1))  # (B, 10)

    def predict(self, x: Tensor) -> Tensor:
        return self.logits(x).argmax(-1)

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Cross-entropy -mean log p(y | x), trained by ``train.fit(model, (x, y), ...)``."""
        _check(x, y)
        return F.cross_entropy(self.logits(x), y)

    def sample(self, n: int, y: int | Tensor | None = None) -> Tensor:
        """There is nothing to sample: p(y | x) is not a distribution over images."""
        raise NotImplementedError("logistic regression models p(y | x) only; it has no p(x) or p(x | y) "
                                  "to draw images from -- use a generative classifier")
# --8<-- [end:discriminative]


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Share of images whose predicted class is the label."""
    with torch.no_grad():
        return float((model.predict(x) == y).float().mean())


@dataclass
class ClassifierConfig(FamilyConfig):
    """Which classifier ``build`` makes; all fit in well under a second on a CPU."""

    DATA = ("digits",)  # the only labelled data set
    model: str = "categorical"  # "categorical" (naive Bayes), "gaussian" (QDA) or "logistic"
    pseudocount: float = 1.0  # categorical: added to every count
    shrinkage: float = 0.1  # gaussian: weight of the identity in the shrunk covariance


def build(data: str, /, **overrides: object) -> nn.Module:
    """A classifier for "digits" (the only labelled data set): ``model`` picks which."""
    cfg = ClassifierConfig.for_data(data, **overrides)  # the toys have no labels
    classes = {"categorical": PixelCategoricalClassifier, "gaussian": GaussianClassifier,
               "logistic": LogisticRegression}
    if cfg.model not in classes:
        raise ValueError(f"unknown model {cfg.model!r}; valid: {', '.join(classes)}")
    return classes[cfg.model](cfg)
