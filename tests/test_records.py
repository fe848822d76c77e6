"""The JSON round trip of what a run records, the version collector and the load-average reader."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gdl_ref.bench.budgets import Budget
from gdl_ref.data import MOVES, Move
from gdl_ref.lessons import discriminative, mle, sequence
from gdl_ref.likelihood import Bound
from gdl_ref.models import registry
from gdl_ref.records import from_json, jsonable, loadavg, versions
from gdl_ref.train_state import History


def _through_json(value: Any) -> Any:
    return json.loads(json.dumps(jsonable(value)))


def _family_configs() -> list[Any]:
    """The config of every family on every data set it builds for, and those of the lessons."""
    configs = []
    for family in registry.names():
        for data in registry.datasets():
            try:
                configs.append(registry.module(family).config_for(data))
            except ValueError:  # a data set the family does not build for
                continue
    configs += [mle.MLEConfig.for_data(d) for d in mle.MLEConfig.DATA]
    configs += [discriminative.ClassifierConfig.for_data(d) for d in discriminative.ClassifierConfig.DATA]
    return configs + [sequence.SequenceConfig()]


@pytest.mark.parametrize("config", _family_configs(), ids=lambda c: f"{type(c).__name__}-{c.data}")
def test_every_config_round_trips_to_an_equal_value(config: Any) -> None:
    back = from_json(type(config), _through_json(config))
    assert back == config and type(back) is type(config)


def test_family_config_from_json_is_the_same_round_trip() -> None:
    config = registry.module("flow").config_for("moons")
    assert type(config).from_json(_through_json(config)) == config


@pytest.mark.parametrize("value", [Budget(), Budget(seconds=60.0), Budget(steps=2_000), *MOVES,
                                   History(steps=3, seconds=1.5, train=[{"step": 1, "loss": 0.5}],
                                           val=[(1, 0.25), (3, 0.125)], best_val=0.125, best_step=3,
                                           optimizer_steps={"model": 3})],
                         ids=repr)
def test_budget_move_and_history_round_trip(value: Any) -> None:
    assert from_json(type(value), _through_json(value)) == value


def test_a_tuple_field_comes_back_as_a_tuple() -> None:
    for family, field in (("diffusion", "mults"), ("ebm", "betas"), ("gan", "betas")):
        config = dataclasses.replace(registry.module(family).config_for("digits"), **{field: (2, 3) if
                                     family == "diffusion" else (0.5, 0.9)})
        back = from_json(type(config), _through_json(config))
        assert type(getattr(back, field)) is tuple and getattr(back, field) == getattr(config, field)
    history = from_json(History, _through_json(History(val=[(1, 0.5)])))
    assert history.val == [(1, 0.5)] and type(history.val[0]) is tuple


def test_a_nested_dataclass_and_an_optional_come_back_typed() -> None:
    @dataclasses.dataclass
    class Outer:
        move: Move
        budget: Budget | None = None
        sizes: tuple[int, ...] = (1,)

    back = from_json(Outer, {"move": {"scale": 2.0, "shift": 1.0}, "budget": {"steps": 5}, "sizes": [3, 4]})
    assert back == Outer(Move(2.0, 1.0), Budget(steps=5), (3, 4))
    assert from_json(Outer, {"move": {"scale": 1.0}, "budget": None}).budget is None


def test_an_unknown_key_is_refused_with_its_name() -> None:
    config = registry.module("vae").config_for("digits")
    with pytest.raises(TypeError, match="unknown VAEConfig field.*widht"):
        from_json(type(config), {**_through_json(config), "widht": 3})
    with pytest.raises(TypeError, match="unknown Budget field.*minutes"):
        from_json(Budget, {"minutes": 2})
    with pytest.raises(TypeError, match="unknown FlowConfig field.*layrs"):
        registry.fields_from_json("flow", "moons", {"layrs": 2})


def test_fields_from_json_turns_lists_back_into_tuples() -> None:
    assert registry.fields_from_json("diffusion", "digits", {"mults": [1, 2], "sample_steps": None}) == \
        {"mults": (1, 2), "sample_steps": None}
    assert registry.fields_from_json("gan", "moons", {"betas": [0.5, 0.9]}) == {"betas": (0.5, 0.9)}


def test_jsonable_of_a_nested_structure() -> None:
    @dataclasses.dataclass
    class Row:
        where: Path
        pair: tuple[int, int]

    value = {"row": Row(Path("a/b.json"), (1, 2)), 3: [(4.5, float("nan")), torch.tensor([1.0, 2.0])],
             "scalars": (np.float64(0.25), np.int64(7), torch.tensor(3)), "bound": Bound.ELBO, "none": None,
             "flag": True, "inf": math.inf}
    expected = ('{"row": {"where": "a/b.json", "pair": [1, 2]}, "3": [[4.5, null], [1.0, 2.0]], '
                '"scalars": [0.25, 7, 3], "bound": "elbo", "none": null, "flag": true, "inf": Infinity}')
    assert json.dumps(jsonable(value)) == expected


def test_jsonable_refuses_an_unknown_type_unless_given_a_fallback() -> None:
    with pytest.raises(TypeError, match="object"):
        jsonable({"x": object()})
    assert jsonable([torch.device("cpu")], fallback=repr) == ["device(type='cpu')"]


def test_versions_has_torch_python_ours_and_the_extras() -> None:
    found = versions("numpy", "no-such-distribution-here")
    assert found["torch"] == torch.__version__ and found["numpy"] == np.__version__
    assert {"python", "gdl-ref"} <= found.keys() and found["no-such-distribution-here"] == "unknown"


def test_loadavg_is_three_rounded_floats_or_none() -> None:
    found = loadavg()
    assert found is None or (len(found) == 3 and all(isinstance(v, float) and round(v, 2) == v for v in found))
