"""The registry of model families: a family name -> the module that builds its models, and the contract it meets.

A family module exposes ``build(data: str, **overrides) -> nn.Module`` and, usually, ``config_for(data: str,
**overrides)``: a :class:`FamilyConfig` whose ``for_data`` holds every per-data default and whose ``recipe()``
holds how ``fit`` trains it. This registry imports a module only when asked, so ``gdl-ref --help`` and
checkpoint loading pay for one family at a time; ``register`` adds a family without editing this file. The six families
are those of Part II of Foster, *Generative Deep Learning*, 2nd ed. (2023): variational autoencoders,
GANs, autoregressive models, normalizing flows, energy-based models and diffusion models.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Any, ClassVar, TypeVar

from torch import nn

from gdl_ref.data import DATASETS
from gdl_ref.models.config_fields import check_fields
from gdl_ref.records import from_json, json_fields

__all__ = ["FAMILIES", "FamilyConfig", "names", "module", "register", "build", "fields_from_json", "family_of", "label",
           "datasets"]

FAMILIES: dict[str, str] = {
    "autoregressive": "gdl_ref.models.autoregressive",
    "flow": "gdl_ref.models.flows",
    "vae": "gdl_ref.models.vae",
    "diffusion": "gdl_ref.models.diffusion",
    "gan": "gdl_ref.models.gan",
    "ebm": "gdl_ref.models.ebm",
}


def register(family: str, module_path: str) -> None:
    """Add a family: ``module_path`` names a module with ``build`` (and ``config_for``); ValueError if taken."""
    if family in FAMILIES and FAMILIES[family] != module_path:
        raise ValueError(f"family {family!r} is already registered to {FAMILIES[family]}")
    FAMILIES[family] = module_path


def names() -> tuple[str, ...]:
    """The family names, in registry order."""
    return tuple(FAMILIES)


def datasets() -> list[str]:
    """The data sets every family builds for: "digits" and the 2-D toys."""
    return list(DATASETS)


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


def fields_from_json(family: str, data: str, mapping: dict[str, Any]) -> dict[str, Any]:
    """Config fields read back from JSON (``asdict(model.config)`` or overrides) as ``build`` takes them.

    Each value is converted by its field's annotation in the config class of ``family`` on ``data`` (lists
    back to tuples; ``records.json_fields``); TypeError naming a key that is no field. A family module
    without ``config_for`` has no annotations to go by: its lists become tuples (config fields hold tuples,
    immutable dataclass defaults) and its ``build`` checks the rest.
    """
    config_for = getattr(module(family), "config_for", None)
    if config_for is None:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in mapping.items()}
    return json_fields(type(config_for(data)), mapping)


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


def label(model: nn.Module) -> str:
    """The model's name in tables: its class name, with what its config says tells it apart
    (``FamilyConfig.variant``, e.g. ``PointFlow (affine couplings)``)."""
    config = getattr(model, "config", None)
    variant = config.variant if isinstance(config, FamilyConfig) else None
    return f"{type(model).__name__} ({variant})" if variant else type(model).__name__


Config = TypeVar("Config", bound="FamilyConfig")


@dataclasses.dataclass
class FamilyConfig:
    """What every family's config shares: the data set it is built for, its per-data defaults, its recipe.

    A family subclasses it as a dataclass with commented defaults (those of digits), overrides ``defaults``
    with what differs on the 2-D toys, and ``recipe`` with how ``fit`` trains it.
    """

    data: str = "digits"  # a name of gdl_ref.data.DATASETS
    DATA: ClassVar[tuple[str, ...]] = DATASETS  # the data sets the family builds for

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {}  # {field: (low, high)} where the default range is wrong
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {}  # {field: the strings it may hold}

    def __post_init__(self) -> None:
        """Every field checked by type and range (:func:`~gdl_ref.models.config_fields.check_fields`)."""
        check_fields(self)

    @property
    def variant(self) -> str | None:
        """What tells a model of this config apart from others of its class (e.g. a flow's couplings), or None."""
        return None

    @classmethod
    def defaults(cls, data: str) -> dict[str, Any]:
        """Field values that differ from the dataclass defaults when the model is built for ``data``."""
        return {}

    @classmethod
    def for_data(cls: type[Config], data: str, /, **overrides: Any) -> Config:
        """The config for ``data``: dataclass defaults, then ``defaults(data)``, then ``overrides``.

        ValueError for an unknown data name (listing the valid ones) or a ``data`` override that contradicts
        ``data``; TypeError naming unknown fields. ``overrides`` may hold ``data`` (``asdict(model.config)``).
        """
        if data not in cls.DATA:
            raise ValueError(f"unknown data {data!r}; valid: {', '.join(cls.DATA)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise TypeError(f"unknown {cls.__name__} field(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
        if overrides.get("data", data) != data:
            raise ValueError(f"override data={overrides['data']!r} contradicts data={data!r}")
        return cls(**{**cls.defaults(data), **overrides, "data": data})

    @classmethod
    def from_json(cls: type[Config], mapping: dict[str, Any]) -> Config:
        """The config of ``json.loads(json.dumps(dataclasses.asdict(config)))``: each field converted by its
        annotation (``records.from_json``), then checked; TypeError naming an unknown field."""
        return from_json(cls, mapping)

    @property
    def image(self) -> bool:
        """Whether the config is for the digit images (else for 2-D points)."""
        return self.data == "digits"

    def recipe(self) -> dict[str, Any]:
        """``fit`` keyword arguments for this model (batch size, learning rate, EMA, early stopping)."""
        return {}
