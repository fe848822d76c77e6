"""Checking a config's fields by type and range when the config is made, each error naming the field.

A field's type comes from its annotation (``int``, ``float``, ``bool``, ``str``, ``tuple[int, ...]``,
``X | None``); its range from the config class's ``RANGES`` (``{field: (low, high)}``, both ends included),
else from the default for its type: an ``int`` counts something (layers, channels, steps), so it lies in
``1..INT_MAX``, but a field named ``seed`` (any of ``0..SEED_MAX``); a ``float`` is finite (a log-variance may be negative, so no sign is assumed). ``CHOICES``
(``{field: allowed strings}``) names the values a ``str`` field may take.

So ``--set hidden=-3`` is refused as ``PixelCNNConfig.hidden = -3: must be an integer in 1..1048576``
before torch sees a negative dimension, and ``--set hidden=abc`` as the same field given a string.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

__all__ = ["INT_MAX", "SEED_MAX", "check_fields"]

INT_MAX = 2**20  # the default upper end of an integer field: no width, depth or count of this package nears it
SEED_MAX = 2**32 - 1  # a seed is any integer numpy and torch both take, 0 included


def check_fields(config: Any) -> None:
    """Check every field of the dataclass ``config`` in place; lists become tuples. ValueError names the field."""
    cls = type(config)
    hints = typing.get_type_hints(cls)
    ranges: dict[str, tuple[float, float]] = getattr(cls, "RANGES", {})
    choices: dict[str, tuple[str, ...]] = getattr(cls, "CHOICES", {})
    for field in dataclasses.fields(config):
        name = f"{cls.__name__}.{field.name}"
        value = getattr(config, field.name)
        bounds = ranges.get(field.name, (0, SEED_MAX) if field.name == "seed" else None)
        checked = _check(name, value, hints[field.name], bounds, choices.get(field.name))
        if checked is not value:
            setattr(config, field.name, checked)


def _check(name: str, value: Any, hint: Any, bounds: tuple[float, float] | None,
           allowed: tuple[str, ...] | None) -> Any:
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else ()
    if options:  # X | None
        if value is None and type(None) in options:
            return None
        (hint,) = [o for o in options if o is not type(None)]
    if typing.get_origin(hint) is tuple:
        return _check_tuple(name, value, typing.get_args(hint), bounds)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} = {value!r}: must be True or False")
        return value
    if hint is int:
        low, high = bounds or (1, INT_MAX)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} = {value!r}: must be an integer in {int(low)}..{int(high)}")
        return value
    if hint is float:
        low, high = bounds or (-math.inf, math.inf)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not low <= value <= high:
            raise ValueError(f"{name} = {value!r}: must be a finite number in [{low:g}, {high:g}]")
        return float(value)
    if hint is str:
        if not isinstance(value, str) or (allowed is not None and value not in allowed):
            valid = f"one of {', '.join(map(repr, allowed))}" if allowed is not None else "a string"
            raise ValueError(f"{name} = {value!r}: must be {valid}")
        return value
    return value  # a type this module does not check


def _check_tuple(name: str, value: Any, args: tuple[Any, ...], bounds: tuple[float, float] | None) -> tuple[Any, ...]:
    """``tuple[T, ...]`` (any length, at least one) or ``tuple[T, T]`` (that length); a JSON list is accepted."""
    if not isinstance(value, (tuple, list)):
        raise ValueError(f"{name} = {value!r}: must be a tuple, e.g. {name.split('.')[-1]}=(1, 2)")
    fixed = not (len(args) == 2 and args[1] is Ellipsis)
    if (fixed and len(value) != len(args)) or not value:
        raise ValueError(f"{name} = {value!r}: must hold {len(args) if fixed else 'at least one'} element(s)")
    element = args[0]
    return tuple(_check(f"{name}[{i}]", v, element, bounds, None) for i, v in enumerate(value))
