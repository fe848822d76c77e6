"""The registry of model families: a family name -> the module that builds its models.

Each family module exposes ``build(data: str, **overrides) -> nn.Module``; this registry imports it only
when asked, so ``gdl-ref --help`` and checkpoint loading pay for one family at a time. The six families
are those of Part II of Foster, *Generative Deep Learning*, 2nd ed. (2023): variational autoencoders,
GANs, autoregressive models, normalizing flows, energy-based models and diffusion models.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Any

from torch import nn

from gdl_ref.data import TOY_NAMES

__all__ = ["FAMILIES", "names", "module", "build", "family_of", "datasets", "make_config", "recipe"]

FAMILIES: dict[str, str] = {
    "autoregressive": "gdl_ref.models.autoregressive",
    "flow": "gdl_ref.models.flows",
    "vae": "gdl_ref.models.vae",
    "diffusion": "gdl_ref.models.diffusion",
    "gan": "gdl_ref.models.gan",
    "ebm": "gdl_ref.models.ebm",
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


def recipe(family: str, data: str) -> dict[str, Any]:
    """The ``fit`` keyword arguments a family trains with on ``data`` (batch size, learning rate, EMA, ...).

    A family module may define ``RECIPES = {"digits": {...}, "toys": {...}}``; the entry for ``data``
    ("toys" for every 2-D toy) is laid over ``fit``'s own defaults of batch size and learning rate.
    Budgets are not part of a recipe.
    """
    import inspect

    from gdl_ref.train import fit  # late: train imports checkpoint, which imports this module

    defaults = {k: inspect.signature(fit).parameters[k].default for k in ("batch_size", "lr")}
    recipes = getattr(module(family), "RECIPES", {})
    return {**defaults, **recipes.get("digits" if data == "digits" else "toys", {})}


def make_config(cfg_cls: type[Any], data: str, overrides: dict[str, Any],
                valid: tuple[str, ...] = ("digits", *TOY_NAMES)) -> Any:
    """``cfg_cls(data=data, **overrides)`` for a family's ``build(data, **overrides)``, with the contract's errors.

    ValueError for an unknown data name (listing the valid ones) or a ``data`` override that contradicts
    ``data``; TypeError naming the unknown fields. ``overrides`` may hold ``data`` (``asdict(model.config)``).
    """
    if data not in valid:
        raise ValueError(f"unknown data {data!r}; valid: {', '.join(valid)}")
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown {cfg_cls.__name__} field(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
    if overrides.get("data", data) != data:
        raise ValueError(f"override data={overrides['data']!r} contradicts data={data!r}")
    return cfg_cls(**{**overrides, "data": data})
