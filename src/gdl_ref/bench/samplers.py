"""The samplers ``gdl-ref bench`` scores beside each model's default one, by family.

``SAMPLER_SWEEPS[family](config)`` is an ordered table, label -> keywords of the model's ``sample``; its
first entry is the model's default sampler. A family without an entry is scored under its default only.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["SAMPLER_STEPS", "SAMPLER_SWEEPS", "diffusion_samplers"]

SAMPLER_STEPS = (100, 50, 20, 10)  # the shortened chains compared, where shorter than the model's T


def diffusion_samplers(timesteps: int) -> dict[str, dict[str, object]]:
    """DDPM over all ``timesteps`` (T) steps, then DDPM on a respaced chain and DDIM (eta = 0) at each of
    ``SAMPLER_STEPS`` below T (Ho et al. 2020; Song, Meng & Ermon 2021)."""
    table: dict[str, dict[str, object]] = {f"DDPM, {timesteps} steps": {"method": "ddpm", "steps": timesteps}}
    for steps in (k for k in SAMPLER_STEPS if k < timesteps):
        table[f"DDPM, {steps} steps"] = {"method": "ddpm", "steps": steps}
        table[f"DDIM, {steps} steps"] = {"method": "ddim", "steps": steps}
    return table


SAMPLER_SWEEPS: dict[str, Callable[[Any], dict[str, dict[str, object]]]] = {
    "diffusion": lambda config: diffusion_samplers(config.timesteps),  # DiffusionConfig.timesteps: T
}
