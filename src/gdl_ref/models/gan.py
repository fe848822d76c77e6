"""Generative adversarial networks: DCGAN (non-saturating loss) and WGAN-GP.

A generator G maps noise z ~ N(0, I) to a sample; a discriminator D (a *critic* in the Wasserstein
version) scores samples. The two play the minimax game of Goodfellow et al. (2014)

    min_G max_D  E_x[log sigma(D(x))] + E_z[log(1 - sigma(D(G(z))))],

with the generator minimising the *non-saturating* loss -E_z[log sigma(D(G(z)))] instead of
E_z[log(1 - sigma(D(G(z))))], whose gradient vanishes when D wins. WGAN-GP (Gulrajani et al., 2017)
replaces the game by the Kantorovich-Rubinstein dual of the Wasserstein-1 distance,

    W(p_data, p_G) = max_{||D||_L <= 1} E_x[D(x)] - E_z[D(G(z))],

and enforces the Lipschitz bound softly with the gradient penalty
lambda * E_xhat[(||grad_xhat D(xhat)||_2 - 1)^2] on points xhat = eps x + (1 - eps) G(z), eps ~ U[0, 1]
drawn once per example.

GANs give no likelihood (an implicit density): they are judged by their samples.

On digits the real images are dequantised to y = (x + u) / 17 in [0, 1) and scaled to [-1, 1]; the
generator ends in tanh and its samples are quantised back to levels 0..16. On the 2-D toys both
networks are MLPs. ``conditional=True`` (digits only) feeds a class label to both networks: the
generator sees a one-hot label beside z, the critic adds a projection term embed(y) . phi(x)
(Miyato & Koyama, 2018).

References: Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014; Radford, Metz & Chintala,
"Unsupervised Representation Learning with Deep Convolutional GANs", ICLR 2016; Arjovsky, Chintala &
Bottou, "Wasserstein GAN", ICML 2017; Gulrajani et al., "Improved Training of Wasserstein GANs",
NeurIPS 2017; Foster, *Generative Deep Learning*, 2nd ed. (2023), chapter 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref.likelihood import evaluating
from gdl_ref.models.registry import FamilyConfig
from gdl_ref.models.spaces import Points, SignedImages

__all__ = ["GANConfig", "GAN", "ImageGAN", "PointGAN", "gradient_penalty", "config_for", "build", "OBJECTIVES"]

OBJECTIVES = ("dcgan", "wgan-gp")
# The papers' optimiser settings: Radford et al. 2016 (DCGAN), Gulrajani et al. 2017, Algorithm 1.
_PAPER = {
    "dcgan": dict(n_critic=1, lr=2e-4, betas=(0.5, 0.999)),
    "wgan-gp": dict(n_critic=5, lr=1e-4, betas=(0.0, 0.9)),
}
N_CLASSES = 10


@dataclass
class GANConfig(FamilyConfig):
    """Settings of a GAN. ``None`` in n_critic, lr, betas means the paper's value for ``objective``."""

    objective: str = "wgan-gp"  # "dcgan" (non-saturating loss) or "wgan-gp" (Wasserstein + gradient penalty)
    conditional: bool = False  # class label in, digit of that class out (digits only)
    z_dim: int = 32  # noise dimension (toys: 2)
    width: int = 32  # conv channels (digits) or hidden units per layer (toys: 64)
    n_critic: int | None = None  # critic steps per generator step: 5 (wgan-gp), 1 (dcgan)
    lr: float | None = None  # Adam learning rate: 1e-4 (wgan-gp), 2e-4 (dcgan)
    betas: tuple[float, float] | None = None  # Adam betas: (0.0, 0.9) (wgan-gp), (0.5, 0.999) (dcgan)
    gp_lambda: float = 10.0  # penalty weight lambda (wgan-gp only; toys: 0.1)

    RANGES = {"betas": (0.0, 1.0)}
    CHOICES = {"objective": OBJECTIVES}

    def __post_init__(self) -> None:
        super().__post_init__()  # types and ranges first: the objective below is then a valid one
        for name, value in _PAPER[self.objective].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        if self.n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {self.n_critic}")

    @classmethod
    def defaults(cls, data: str) -> dict[str, Any]:
        """Toys: 2-D noise as in Gulrajani et al.'s toy script (gan_toy.py), which also uses a penalty weight of
        0.1 ("smaller lambda seems to help for toy tasks specifically"); their width of 512 is cut to 64."""
        return {} if data == "digits" else {"width": 64, "z_dim": 2, "gp_lambda": 0.1}


# --8<-- [start:networks]
class _ConvGenerator(nn.Module):
    """z (B, z_dim) [+ one-hot label] -> image (B, 1, 8, 8) in [-1, 1]: DCGAN's strided transposed convs."""

    def __init__(self, z_in: int, w: int) -> None:
        super().__init__()
        self.w = w
        self.fc = nn.Sequential(nn.Linear(z_in, 2 * w * 2 * 2), nn.BatchNorm1d(2 * w * 4), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU(),  # (B, w, 4, 4)
            nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh(),  # (B, 1, 8, 8)
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.fc(z).view(-1, 2 * self.w, 2, 2))  # (B, 2w, 2, 2) -> (B, 1, 8, 8)


class _ConvCritic(nn.Module):
    """image (B, 1, 8, 8) -> features phi(x) (B, 8w): strided convs, LeakyReLU, no batch norm."""

    def __init__(self, w: int) -> None:
        super().__init__()
        self.out_features = 2 * w * 2 * 2  # 2w channels on 2 x 2
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),  # (B, w, 4, 4)
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),  # (B, 2w, 2, 2)
            nn.Flatten(),  # (B, 8w)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _mlp(d_in: int, w: int, d_out: int, act: Callable[[], nn.Module]) -> nn.Sequential:
    """Three hidden layers of width w (Gulrajani et al.'s toy networks)."""
    return nn.Sequential(nn.Linear(d_in, w), act(), nn.Linear(w, w), act(), nn.Linear(w, w), act(),
                         nn.Linear(w, d_out))
# --8<-- [end:networks]


# --8<-- [start:gradient_penalty]
def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """E_xhat[(||grad_xhat D(xhat)||_2 - 1)^2] with xhat = eps x + (1 - eps) x_fake, eps ~ U[0, 1] per example.

    ``critic`` maps (B, ...) to (B,); the graph is kept so the penalty can be backpropagated
    (Gulrajani et al. 2017, eq. 3).
    """
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)  # one eps per example, broadcast over pixels
    eps = torch.rand(shape, generator=generator, device=real.device)  # eps ~ U[0, 1]
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)  # xhat on the segment
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)  # grad_xhat D(xhat)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()  # (||grad|| - 1)^2
# --8<-- [end:gradient_penalty]


class GAN(nn.Module):
    """A generator and a critic, trained by ``fit`` through ``configure_optimizers`` + ``training_step``.

    A subclass builds ``generator``, ``features`` and ``head`` and says how data enters the critic (``prepare``)
    and how the generator's output becomes a sample (``to_data``).

    ``loss(x)`` is the critic's loss on a real batch against as many
    fresh generated samples, without the penalty: for WGAN-GP, E[D(G(z))] - E[D(x)], the negative of the
    critic's Wasserstein estimate; for DCGAN, the discriminator's cross-entropy
    -E[log sigma(D(x))] - E[log(1 - sigma(D(G(z))))] in nats.
    """

    def __init__(self, config: GANConfig, generator: nn.Module, features: nn.Module, n_features: int) -> None:
        super().__init__()
        self.config = config
        self.generator = generator  # (B, z_dim [+ 10]) -> a sample in the critic's space
        self.features = features  # a sample -> phi(x), (B, n_features)
        self.head = nn.Linear(n_features, 1)
        self.embed = nn.Embedding(N_CLASSES, n_features) if config.conditional else None
        self._last_g = float("nan")  # most recent generator loss, reported between generator steps

    # ----------------------------------------------------------------------------------------- io
    def _device(self) -> torch.device:
        return self.head.weight.device

    def _labels(self, y: Tensor | None, n: int) -> Tensor | None:
        if not self.config.conditional:
            return None
        if y is None:
            raise ValueError("this GAN is conditional: pass the labels y (B,)")
        y = torch.as_tensor(y, device=self._device()).long().reshape(-1)
        if y.numel() == 1 and n > 1:
            y = y.expand(n)
        if y.shape != (n,) or y.min() < 0 or y.max() >= N_CLASSES:
            raise ValueError(f"expected labels y of shape ({n},) in 0..{N_CLASSES - 1}, got {tuple(y.shape)}")
        return y

    def prepare(self, x: Tensor) -> Tensor:
        """Real data as the critic sees it."""
        raise NotImplementedError

    def to_data(self, out: Tensor) -> Tensor:
        """The generator's output as a sample of the data."""
        raise NotImplementedError

    # --8<-- [start:game]
    def critic(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """D(x) (B,): a score, high for real; with labels, D(x, y) = w . phi(x) + embed(y) . phi(x)."""
        phi = self.features(x)  # (B, F)
        out = self.head(phi).squeeze(1)  # (B,)
        if y is not None:
            out = out + (self.embed(y) * phi).sum(1)  # projection term
        return out

    def generate(self, n: int, y: Tensor | None = None) -> Tensor:
        """G(z), z ~ N(0, I): (n, 1, 8, 8) in [-1, 1] on digits, (n, 2) on toys."""
        z = torch.randn(n, self.config.z_dim, device=self._device())  # (n, z_dim)
        if y is not None:
            z = torch.cat([z, F.one_hot(y, N_CLASSES).float()], 1)  # (n, z_dim + 10)
        return self.generator(z)

    def critic_loss(self, real: Tensor, y: Tensor | None = None, penalty: bool = True) -> tuple[Tensor, Tensor]:
        """The critic's loss on prepared real data and as many fresh fakes; also E[D(x)] - E[D(G(z))]."""
        with torch.no_grad():
            fake = self.generate(real.shape[0], y)  # the generator is not updated here
        d_real, d_fake = self.critic(real, y), self.critic(fake, y)  # (B,), (B,)
        gap = d_real.mean() - d_fake.mean()
        if self.config.objective == "dcgan":
            # -log sigma(D(x)) - log(1 - sigma(D(G(z)))), with log sigma(t) = -softplus(-t)
            return F.softplus(-d_real).mean() + F.softplus(d_fake).mean(), gap
        loss = -gap  # -(E[D(x)] - E[D(G(z))]): the critic maximises the Wasserstein estimate
        if penalty:
            loss = loss + self.config.gp_lambda * gradient_penalty(lambda t: self.critic(t, y), real, fake)
        return loss, gap

    def generator_loss(self, n: int, y: Tensor | None = None) -> Tensor:
        """Non-saturating -E[log sigma(D(G(z)))] (dcgan) or -E[D(G(z))] (wgan-gp)."""
        d_fake = self.critic(self.generate(n, y), y)  # (n,)
        if self.config.objective == "dcgan":
            return F.softplus(-d_fake).mean()  # -log sigma(D(G(z)))
        return -d_fake.mean()
    # --8<-- [end:game]

    # ------------------------------------------------------------------------------- training
    def _critic_parameters(self) -> list[nn.Parameter]:
        mods = [self.features, self.head] + ([self.embed] if self.embed is not None else [])
        return [p for m in mods for p in m.parameters()]

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        """Two Adam optimisers with the config's lr and betas (the papers' settings).

        ``fit`` passes its own ``lr``; it is ignored here so that the paper's values hold unless the
        config overrides them (``build(data, lr=...)``).
        """
        c = self.config
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=c.betas),
            "critic": torch.optim.Adam(self._critic_parameters(), lr=c.lr, betas=c.betas),
        }

    # --8<-- [start:steps]
    def critic_step(self, real: Tensor, y: Tensor | None, opt: torch.optim.Optimizer) -> tuple[float, float]:
        """One update of the critic only; returns (critic loss, Wasserstein estimate E[D(x)] - E[D(G(z))])."""
        loss, gap = self.critic_loss(real, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item(), gap.item()

    def generator_step(self, n: int, y: Tensor | None, opt: torch.optim.Optimizer) -> float:
        """One update of the generator only: the critic's weights are frozen while its gradient flows."""
        critic_params = self._critic_parameters()
        for p in critic_params:
            p.requires_grad_(False)
        try:
            loss = self.generator_loss(n, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        finally:
            for p in critic_params:
                p.requires_grad_(True)
        return loss.item()

    def training_step(self, batch: tuple[Tensor, ...], optimizers: dict[str, torch.optim.Optimizer],
                      step: int) -> dict[str, float]:
        """One critic step on the batch; every n_critic-th call also one generator step (Algorithm 1)."""
        x = batch[0]
        y = self._labels(batch[1] if len(batch) > 1 else None, x.shape[0])
        real = self.prepare(x)
        d_loss, gap = self.critic_step(real, y, optimizers["critic"])
        if (step + 1) % self.config.n_critic == 0:
            self._last_g = self.generator_step(x.shape[0], y, optimizers["generator"])
        return {"critic": d_loss, "wasserstein": gap, "generator": self._last_g}
    # --8<-- [end:steps]

    # ------------------------------------------------------------------------------- contract
    def loss(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The critic's loss on x without the penalty (see the class docstring); a scalar."""
        return self.critic_loss(self.prepare(x), self._labels(y, x.shape[0]), penalty=False)[0]

    @evaluating
    @torch.no_grad()
    def sample(self, n: int, y: Tensor | int | None = None) -> Tensor:
        """n samples: int64 levels (n, 1, 8, 8) in 0..16 on digits, float (n, 2) on toys.

        Conditional models take labels y (n,) or one int; without them the labels cycle 0, 1, ..., 9.
        """
        if self.config.conditional and y is None:
            y = torch.arange(n) % N_CLASSES
        return self.to_data(self.generate(n, self._labels(y, n)))


class ImageGAN(SignedImages, GAN):
    """DCGAN-style conv generator and critic on digits: dequantised images in [-1, 1), samples quantised back."""

    def __init__(self, config: GANConfig) -> None:
        critic = _ConvCritic(config.width)
        super().__init__(config, _ConvGenerator(config.z_dim + (N_CLASSES if config.conditional else 0),
                                                config.width), critic, critic.out_features)


class PointGAN(Points, GAN):
    """MLP generator and critic on 2-D points (Gulrajani et al.'s toy networks); no labels."""

    def __init__(self, config: GANConfig) -> None:
        if config.conditional:
            raise ValueError("conditional=True needs labels: only data='digits' has them")
        w = config.width
        super().__init__(config, _mlp(config.z_dim, w, 2, nn.ReLU),
                         _mlp(2, w, w, lambda: nn.LeakyReLU(0.2))[:-1], w)  # features (B, w)


config_for = GANConfig.for_data


def build(data: str, /, **overrides: object) -> GAN:
    """A GAN for "digits" (:class:`ImageGAN`) or a 2-D toy (:class:`PointGAN`), the config's defaults for
    ``data`` replaced by ``overrides``."""
    config = config_for(data, **overrides)
    return ImageGAN(config) if config.image else PointGAN(config)
