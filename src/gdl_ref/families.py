"""The registry of model families: a family name -> the module that builds its models.

Each family module exposes ``build(data: str, **overrides) -> nn.Module``; this registry imports it only
when asked, so ``gdl-ref --help`` and checkpoint loading pay for one family at a time. The six families
are those of Part II of Foster, *Generative Deep Learning*, 2nd ed. (2023): variational autoencoders,
GANs, autoregressive models, normalizing flows, energy-based models and diffusion models.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from torch import nn

from gdl_ref.data import TOY_NAMES

__all__ = ["FAMILIES", "names", "module", "build", "family_of", "datasets"]

FAMILIES: dict[str, str] = {
    "autoregressive": "gdl_ref.autoregressive",
    "flow": "gdl_ref.flows",
    "vae": "gdl_ref.vae",
    "diffusion": "gdl_ref.diffusion",
    "gan": "gdl_ref.gan",
    "ebm": "gdl_ref.ebm",
}


def names() -> tuple[str, ...]:
    """The family names, in registry order."""
    return tuple(FAMILIES)


def datasets() -> list[str]:
    """The data sets every family builds for: "digits" and the 2-D toys."""
    return ["digits", *TOY_NAMES]


def module(family: str) -> ModuleType:
    """Import the module of ``family``; ValueError listing the valid families for an unknown name."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid families: {', '.join(FAMILIES)}")
    path = FAMILIES[family]
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as err:
        if err.name == path:
            raise ValueError(f"family {family!r}: its module {path} is not available") from None
        raise


def build(family: str, data: str, /, **overrides: object) -> nn.Module:
    """A model of ``family`` for ``data`` with its config defaults, replaced by ``overrides``.

    A ``data`` entry in ``overrides`` (as in ``dataclasses.asdict(model.config)``) must agree with ``data``.
    """
    if data not in datasets():
        raise ValueError(f"unknown data set {data!r}; valid data sets: {', '.join(datasets())}")
    if "data" in overrides:
        if overrides["data"] != data:
            raise ValueError(f"config says data={overrides['data']!r} but data={data!r} was asked for")
        overrides = {k: v for k, v in overrides.items() if k != "data"}
    return module(family).build(data, **overrides)


def family_of(model: nn.Module) -> str | None:
    """The family whose module defines ``type(model)`` (or ``model.family`` if set), else None."""
    explicit = getattr(model, "family", None)
    if isinstance(explicit, str) and explicit in FAMILIES:
        return explicit
    mod = type(model).__module__
    for name, path in FAMILIES.items():
        if mod == path:
            return name
    return None
