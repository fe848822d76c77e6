"""Peer: diffusers' ``UNet2DModel`` trained with ``DDPMScheduler``, paired with ``diffusion`` on digits.

What a user would otherwise pick for a DDPM in PyTorch. The harness trains it with the same ``fit``
loop, split, seed and budget as ours; it uses our diffusion's settings where the two libraries share
them (T, the cosine schedule, the steps of a sample) and maps the digits the same way, levels 0..16 to
x_0 = 2 x / 16 - 1 in [-1, 1] and back to the nearest level. Only sample quality is compared: diffusers
gives no likelihood or variational bound, so the NLL column stays empty for it.

Reference: Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (2020); diffusers,
https://github.com/huggingface/diffusers.
"""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler, UNet2DModel
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref.bench import Peer
from gdl_ref.models.diffusion import DiffusionConfig
from gdl_ref.records import versions

SCHEDULES = {"cosine": "squaredcos_cap_v2", "linear": "linear"}


class DiffusersDDPM(nn.Module):
    """eps-prediction DDPM: loss E||eps - eps_theta(x_t, t)||^2, ancestral sampling with the scheduler."""

    bound = None  # no likelihood: the harness reports sample quality only

    def __init__(self, config: DiffusionConfig | None = None) -> None:
        super().__init__()
        cfg = config or DiffusionConfig()
        self.timesteps = cfg.timesteps
        self.sample_steps = cfg.sample_steps or cfg.timesteps  # our DDPM default: every step
        c = cfg.channels
        self.unet = UNet2DModel(
            sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
            block_out_channels=(c, 2 * c, 2 * c), norm_num_groups=8,
            down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        )  # 8x8 -> 4x4 -> 2x2, the resolutions of our U-Net
        self.scheduler = DDPMScheduler(num_train_timesteps=cfg.timesteps,
                                       beta_schedule=SCHEDULES[cfg.schedule], clip_sample=cfg.clip)

    def loss(self, x: Tensor) -> Tensor:
        gdata.check_digits(x)
        x0 = gdata.levels_to_signed(x)  # (B, 1, 8, 8) bin centres in [-1, 1], as our diffusion sees them
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.timesteps, (x0.shape[0],), device=x0.device)
        xt = self.scheduler.add_noise(x0, noise, t)  # sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
        return ((noise - self.unet(xt, t).sample) ** 2).mean()

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        device = next(self.parameters()).device
        self.scheduler.set_timesteps(self.sample_steps, device=device)
        x = torch.randn(n, *gdata.DIGIT_SHAPE, device=device)  # x_T ~ N(0, I)
        for t in self.scheduler.timesteps:
            eps = self.unet(x, t).sample
            x = self.scheduler.step(eps, t, x).prev_sample  # x_{t-1} ~ p(x_{t-1} | x_t)
        return gdata.signed_to_levels(x)  # (n, 1, 8, 8) levels


def _build(data: str) -> DiffusersDDPM:
    if data != "digits":
        raise ValueError(f"the diffusers peer models digits only, got {data!r}")
    return DiffusersDDPM()


PEERS = [Peer("diffusers DDPM", "diffusion", ("digits",), _build, lambda: versions("diffusers"),
              note="sample quality only: diffusers gives no NLL or variational bound")]
