"""Peer: lucidrains' denoising-diffusion-pytorch, its ``Unet`` in its ``GaussianDiffusion``, paired with ``diffusion``
on digits.

The most used stand-alone DDPM in PyTorch. The harness trains it with the same ``fit`` loop, split, seed,
budget and EMA as ours; it uses our diffusion's settings where the library has them: T, the schedule
('cosine' or 'linear', the same formulas as ours), the U-Net's base width and its multipliers (1, 2, 2), i.e.
the resolutions 8x8, 4x4, 2x2, and the dropout in its residual blocks. Objective 'pred_noise' with no loss
weighting: loss E||eps - eps_theta(x_t, t)||^2. The library takes images in [0, 1] and maps them to [-1, 1]
itself (``auto_normalize``), so the adapter feeds x / 16 and the library's x_0 = 2 (x / 16) - 1 is exactly our
``levels_to_signed(x)``; a sample, back in [0, 1] from the library, goes to the nearest level. Sampling is
the library's ancestral step ``p_sample`` (with the predicted x_0 clipped to [-1, 1], as ours) over every one of
the T steps, as its ``p_sample_loop`` runs it, without that loop's progress bar. Only sample quality is
compared: the library gives no likelihood or variational bound, so the NLL column stays empty for it.

The library's module imports torchvision at its top, for its ``Trainer``'s data pipeline and image grids only;
PyPI has no torchvision for the CPU build of torch the project pins (benchmarks/requirements-no-deps.txt), so
where torchvision is not installed the import runs with an empty stand-in for it, removed again right after.
Nothing here touches the ``Trainer``, accelerate, the EMA wrapper or FID, which write or download files.

Reference: Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (2020); Nichol & Dhariwal, "Improved
Denoising Diffusion Probabilistic Models" (2021); https://github.com/lucidrains/denoising-diffusion-pytorch.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from importlib.metadata import version

import torch
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref.bench import Peer
from gdl_ref.models.diffusion import DiffusionConfig


def _import_library() -> types.ModuleType:
    """``denoising_diffusion_pytorch``, with an empty torchvision stand-in while it imports if there is none."""
    if importlib.util.find_spec("torchvision") is not None:
        import denoising_diffusion_pytorch

        return denoising_diffusion_pytorch
    names = ("torchvision", "torchvision.transforms", "torchvision.utils")
    stand_in = {name: types.ModuleType(name) for name in names}
    stand_in["torchvision"].transforms, stand_in["torchvision"].utils = stand_in[names[1]], stand_in[names[2]]
    sys.modules.update(stand_in)
    try:
        import denoising_diffusion_pytorch
    finally:
        for name in names:
            sys.modules.pop(name, None)
    return denoising_diffusion_pytorch


ddp = _import_library()
SCHEDULES = {"cosine": "cosine", "linear": "linear"}  # ours -> the library's beta_schedule


class LucidrainsDDPM(nn.Module):
    """eps-prediction DDPM: the library's loss (its ``forward``) and its ancestral sampler."""

    bound = None  # no likelihood: the harness reports sample quality only

    def __init__(self, data: str = "digits", config: DiffusionConfig | None = None) -> None:
        super().__init__()
        if data != "digits":
            raise ValueError(f"the lucidrains peer models digits only, got {data!r}")
        cfg = config or DiffusionConfig()
        if cfg.schedule not in SCHEDULES:
            raise ValueError(f"the library has no {cfg.schedule!r} schedule; valid: {', '.join(SCHEDULES)}")
        unet = ddp.Unet(dim=cfg.channels, dim_mults=cfg.mults, channels=1, dropout=cfg.dropout)
        self.diffusion = ddp.GaussianDiffusion(unet, image_size=gdata.DIGIT_SHAPE[-1], timesteps=cfg.timesteps,
                                               objective="pred_noise", beta_schedule=SCHEDULES[cfg.schedule],
                                               auto_normalize=True)

    def loss(self, x: Tensor) -> Tensor:
        gdata.check_digits(x)
        return self.diffusion(x.float() / (gdata.DIGIT_LEVELS - 1))  # [0, 1]; the library's x_0 = 2 y - 1

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        d = self.diffusion
        img = torch.randn(n, *gdata.DIGIT_SHAPE, device=d.device)  # x_T ~ N(0, I)
        for t in reversed(range(d.num_timesteps)):
            img, _ = d.p_sample(img, t)  # x_{t-1} ~ p(x_{t-1} | x_t)
        return gdata.signed_to_levels(2 * d.unnormalize(img) - 1)  # (n, 1, 8, 8) levels


def _versions() -> dict[str, str]:
    return {"denoising-diffusion-pytorch": version("denoising-diffusion-pytorch")}


PEERS = [Peer("lucidrains DDPM", "diffusion", ("digits",), LucidrainsDDPM, _versions,
              note="sample quality only: denoising-diffusion-pytorch gives no NLL or variational bound")]
