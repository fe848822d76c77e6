"""A seventh family needs only its own module and one ``registry.register`` call: built, trained, sampled,
evaluated and checkpointed through the public API and the command line, with no other file changed."""

from __future__ import annotations

import json
import math
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from gdl_ref import checkpoint, cli, data, evaluate
from gdl_ref.likelihood import Bound
from gdl_ref.models import registry
from gdl_ref.train import fit
from gdl_ref.train import recipe as train_recipe

MODULE = '''
"""A diagonal Gaussian on 2-D points: the smallest density family."""
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gdl_ref import data as gdata
from gdl_ref.likelihood import Bound, DensityModule, evaluating, log_normal
from gdl_ref.models.registry import FamilyConfig


@dataclass
class DiagonalConfig(FamilyConfig):
    DATA = gdata.TOY_NAMES
    data: str = "moons"
    init_log_var: float = 0.0

    def recipe(self) -> dict[str, Any]:
        return {"batch_size": 128, "lr": 5e-2}


class Diagonal(DensityModule):
    bound = Bound.DIFFERENTIAL

    def __init__(self, config: DiagonalConfig) -> None:
        super().__init__()
        self.config = config
        self.mu = nn.Parameter(torch.zeros(2))
        self.log_var = nn.Parameter(torch.full((2,), config.init_log_var))

    def log_likelihood(self, x: Tensor) -> Tensor:
        gdata.check_points(x)
        return log_normal(x, self.mu, self.log_var)

    @evaluating
    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        return self.mu + (0.5 * self.log_var).exp() * torch.randn(n, 2)


config_for = DiagonalConfig.for_data


def build(data: str, /, **overrides: object) -> Diagonal:
    return Diagonal(config_for(data, **overrides))
'''


@pytest.fixture
def diagonal_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "diagonal_family.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "FAMILIES", dict(registry.FAMILIES))  # leave the real registry as it was
    registry.register("diagonal", "diagonal_family")
    yield "diagonal"
    sys.modules.pop("diagonal_family", None)


def test_a_registered_family_runs_through_the_public_api(diagonal_family: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = registry.build(diagonal_family, "ring", init_log_var=-1.0)
    assert registry.family_of(model) == "diagonal" and model.bound is Bound.DIFFERENTIAL
    recipe = train_recipe(diagonal_family, "ring")
    assert recipe == {"batch_size": 128, "lr": 5e-2}
    train = torch.randn(2000, 2) * torch.tensor([2.0, 0.5]) + torch.tensor([1.0, -1.0])
    fit(model, train, steps=300, seed=0, **recipe)
    assert torch.allclose(model.mu.detach(), train.mean(0), atol=0.1)  # the MLE: the data's mean and variance
    assert torch.allclose(model.log_var.detach().exp(), train.var(0), rtol=0.1)
    assert model.sample(5).shape == (5, 2)
    path = checkpoint.save_checkpoint(tmp_path / "ck", model, step=300)
    loaded = checkpoint.load_model(path)
    assert type(loaded).__name__ == "Diagonal" and loaded.config == model.config
    torch.testing.assert_close(loaded.log_prob(train[:10]), model.log_prob(train[:10]))
    result = evaluate.evaluate_model(loaded, data.dataset("ring"), samples=200).to_dict()
    assert result["bound"] == "differential" and result["test_nll"] > 0 and math.isfinite(result["kl"])
    assert result["kl"] > 0 and result["kl_stderr"] > 0  # a Gaussian is not the ring
    with pytest.raises(ValueError, match="already registered"):
        registry.register("diagonal", "another_module")


def test_the_command_line_trains_and_evaluates_a_registered_family(diagonal_family: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert cli.main(["train", diagonal_family, "--data", "moons", "--steps", "50", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["family"] == "diagonal" and metrics["steps"] == 50
    assert cli.main(["evaluate", str(out / "checkpoint"), "--samples", "100"]) == 0
