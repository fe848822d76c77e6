"""Tests for gdl_ref.checkpoint and gdl_ref.models.registry: safe formats, rebuilding through the registry."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch
from torch import nn

from conftest import register_family
from gdl_ref import checkpoint
from gdl_ref.models import registry as families
from gdl_ref.train import fit

torch.set_num_threads(1)


@dataclasses.dataclass
class TinyConfig:
    data: str = "moons"
    hidden: int = 8
    sizes: tuple[int, ...] = (3, 4)


class Tiny(nn.Module):
    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.lin = nn.Linear(2, config.hidden)
        self.out = nn.Linear(config.hidden, 2)
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return ((self.out(torch.tanh(self.lin(x))) - x) ** 2).mean()


def tiny_build(data: str, **overrides: object) -> Tiny:
    if data not in families.datasets():
        raise ValueError(f"unknown data {data!r}")
    return Tiny(TinyConfig(data=data, **overrides))


@pytest.fixture
def tiny_family(monkeypatch):
    yield from register_family(monkeypatch, "tiny", tiny_build, Tiny)


def test_save_load_roundtrip_through_the_registry(tmp_path, tiny_family):
    torch.manual_seed(0)
    model = tiny_build("ring", hidden=5)
    path = checkpoint.save_checkpoint(tmp_path / "ck", model, step=7, meta={"metrics": {"nll": 1.5}})
    meta = json.loads((path / "meta.json").read_text())
    assert meta["family"] == "tiny" and meta["data"] == "ring" and meta["step"] == 7
    assert meta["config"] == {"data": "ring", "hidden": 5, "sizes": [3, 4]}
    assert set(meta["versions"]) == {"gdl_ref", "torch", "python"} and meta["metrics"]["nll"] == 1.5
    loaded = checkpoint.load_model(path)
    assert isinstance(loaded, Tiny) and not loaded.training and loaded.config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_fit_checkpoint_holds_safe_files_and_ema_weights(tmp_path, tiny_family):
    torch.manual_seed(0)
    model = tiny_build("moons")
    x = torch.randn(128, 2, generator=torch.Generator().manual_seed(0))
    fit(model, x, steps=6, batch_size=32, ema_decay=0.8, checkpoint_dir=tmp_path, meta={"note": "x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json", "model.safetensors", "resume.safetensors",
                                                          "train_state.pt"]
    ck = checkpoint.load_checkpoint(tmp_path)
    assert ck.meta["note"] == "x" and ck.meta["fit"]["ema_decay"] == 0.8 and ck.meta["step"] == 6
    # model.safetensors holds the EMA weights, which fit also left in the model
    for k, v in model.state_dict().items():
        assert torch.equal(ck.weights[k], v) and torch.equal(ck.resume[f"ema.{k}"], v)
    assert not torch.equal(ck.resume["online.lin.weight"], ck.weights["lin.weight"])
    assert "model" in ck.train_state["optimizers"] and ck.train_state["step"] == 6
    # the optimiser file loads without unpickling code
    state = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert state["optimizers"]["model"]["state"]


def test_train_state_rejects_pickled_code(tmp_path, tiny_family):
    model = tiny_build("moons")
    checkpoint.save_checkpoint(tmp_path, model)

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    torch.save({"x": Evil()}, tmp_path / "train_state.pt")
    with pytest.raises(checkpoint.CheckpointError, match="train_state.pt: not written with this checkpoint"):
        checkpoint.load_checkpoint(tmp_path)
    # one who also records the file in meta.json still meets torch.load(weights_only=True)
    meta = json.loads((tmp_path / "meta.json").read_text())
    data = (tmp_path / "train_state.pt").read_bytes()
    meta["files"]["train_state.pt"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(checkpoint.CheckpointError, match="train_state.pt: .*weights_only=True.* refused") as info:
        checkpoint.load_checkpoint(tmp_path)
    assert "\n" not in str(info.value)


def test_missing_and_foreign_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        checkpoint.load_checkpoint(tmp_path)
    checkpoint.save_checkpoint(tmp_path, nn.Linear(2, 2))
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["family"] is None and meta["config"] is None
    with pytest.raises(ValueError, match="names no family"):
        checkpoint.load_model(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a gdl-ref-checkpoint"):
        checkpoint.load_checkpoint(tmp_path)


def test_families_registry_errors_and_lists():
    assert families.names() == ("autoregressive", "flow", "vae", "diffusion", "gan", "ebm")
    assert families.datasets() == ["digits", "moons", "8gaussians", "checkerboard", "ring"]
    with pytest.raises(ValueError, match="valid families: autoregressive, flow, vae, diffusion, gan, ebm"):
        families.build("pixelrnn", "digits")
    with pytest.raises(ValueError, match="valid data sets: digits, moons"):
        families.build("flow", "cifar10")


def test_families_build_accepts_a_config_dict(tiny_family):
    model = families.build("tiny", "ring", hidden=3)
    again = families.build("tiny", "ring", **dataclasses.asdict(model.config))
    assert again.config == model.config and families.family_of(again) == "tiny"
    with pytest.raises(ValueError, match="config says data='moons'"):
        families.build("tiny", "ring", data="moons")


def test_missing_family_module_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(families.FAMILIES, "ghost", "gdl_ref.no_such_module")
    with pytest.raises(ValueError, match="gdl_ref.no_such_module is not available"):
        families.build("ghost", "digits")
