"""What a run records beside its numbers, and the JSON round trip of the values it records.

* ``jsonable(value)`` -- a value as JSON holds it: a dataclass as the dict of its fields, tuples as lists,
  a ``Path`` as its string, tensors, numpy arrays and scalars as Python numbers (``tolist``), dict keys as
  strings, NaN as ``null`` (JSON has no NaN); a value of any other type is refused (TypeError), or passed
  to ``fallback`` when one is given;
* ``from_json(cls, mapping)`` -- the way back: the dataclass ``cls`` made from a JSON object, each field
  converted by its annotation (``tuple[int, ...]`` and ``tuple[float, float]`` from lists, nested
  dataclasses from objects, ``X | None``, lists and dicts of these); a key that is not a field is refused
  by name. ``from_json(cls, json.loads(json.dumps(jsonable(x)))) == x`` for the configs, budgets, moves
  and histories of this package;
* ``versions(*extra_packages)`` -- the versions of Python, torch, this package and the named distributions;
* ``loadavg()`` -- the 1, 5 and 15-minute load averages (``os.getloadavg``), None where the system has none.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = ["jsonable", "from_json", "json_fields", "versions", "loadavg"]

T = TypeVar("T")


def jsonable(value: Any, *, fallback: Callable[[Any], Any] | None = None) -> Any:
    """``value`` as ``json.dumps`` takes it (see the module docstring); ``fallback(v)`` for any other type."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, fallback=fallback) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, fallback=fallback) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.tolist()
    if isinstance(value, np.generic):
        return jsonable(value.item(), fallback=fallback)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if value is None or isinstance(value, (str, int, float)):  # bool is an int; a str Enum is a str
        return value
    if fallback is not None:
        return fallback(value)
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")


def json_fields(cls: type, mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of the dataclass ``cls`` given in ``mapping``, each converted from JSON by its annotation.

    TypeError naming the keys of ``mapping`` that are not fields of ``cls``.
    """
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{cls.__name__} from JSON needs an object of fields, got a {type(mapping).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(mapping) - set(names))
    if unknown:
        raise TypeError(f"unknown {cls.__name__} field(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    return {k: _convert(v, hints[k]) for k, v in mapping.items()}


def from_json(cls: type[T], mapping: Mapping[str, Any]) -> T:
    """``cls(**fields)`` from a JSON object (``json_fields``); the dataclass checks the values itself."""
    return cls(**json_fields(cls, mapping))


def _convert(value: Any, hint: Any) -> Any:
    """A JSON value as the annotation ``hint`` holds it: lists to tuples, objects to dataclasses, recursively."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or isinstance(hint, types.UnionType):
        if value is None:
            return None
        options = [a for a in args if a is not type(None)]
        return _convert(value, options[0]) if len(options) == 1 else value
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return from_json(hint, value)  # type: ignore[arg-type]
    if not isinstance(value, (list, tuple, dict)):
        return value
    if origin is tuple and isinstance(value, (list, tuple)):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0]) for v in value)
        if len(args) == len(value):
            return tuple(_convert(v, a) for v, a in zip(value, args))
        return tuple(value)  # the wrong length: the dataclass's own check names the field
    if origin is list and isinstance(value, (list, tuple)):
        return [_convert(v, args[0]) if args else v for v in value]
    if origin is dict and isinstance(value, dict):
        return {k: _convert(v, args[1]) if args else v for k, v in value.items()}
    return value


def versions(*extra_packages: str) -> dict[str, str]:
    """{"python", "torch", each of ``extra_packages`` (its installed version, "unknown" if none), "gdl-ref"}."""
    import gdl_ref

    out = {"python": platform.python_version(), "torch": torch.__version__}
    out.update({name: _distribution_version(name) for name in extra_packages})
    return {**out, "gdl-ref": gdl_ref.__version__}


def _distribution_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def loadavg() -> tuple[float, float, float] | None:
    """The system's load averages over 1, 5 and 15 minutes, rounded to 2 places; None where unavailable."""
    try:
        one, five, fifteen = os.getloadavg()
    except (OSError, AttributeError):
        return None
    return round(one, 2), round(five, 2), round(fifteen, 2)
