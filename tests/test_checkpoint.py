"""Tests for gdl_ref.checkpoint and gdl_ref.models.registry: safe formats, rebuilding through the registry."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

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
    assert set(meta["versions"]) == {"gdl-ref", "torch", "python"} and meta["metrics"]["nll"] == 1.5
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
    with pytest.raises(checkpoint.CheckpointError, match=r"train_state.pt: holds code or Python objects \(it names \S*print\).*refused") as info:
        checkpoint.load_checkpoint(tmp_path)
    assert "\n" not in str(info.value) and "weights_only=False" not in str(info.value)


def test_missing_and_foreign_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.safetensors") as info:
        checkpoint.load_checkpoint(tmp_path)
    assert "run folder" not in str(info.value)
    checkpoint.save_checkpoint(tmp_path, nn.Linear(2, 2))
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["family"] is None and meta["config"] is None
    with pytest.raises(ValueError, match="names no family"):
        checkpoint.load_model(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a gdl-ref-checkpoint"):
        checkpoint.load_checkpoint(tmp_path)


def test_a_run_folder_points_to_its_checkpoint(tmp_path):
    checkpoint.save_checkpoint(tmp_path / "checkpoint", nn.Linear(2, 2))  # the layout gdl-ref train --out writes
    with pytest.raises(FileNotFoundError, match=r"a run folder: its checkpoint is \S*checkpoint\)"):
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


# ----------------------------------------------------------------------------- whole folders, faults

def _tiny(hidden: int = 4, seed: int = 0) -> Tiny:
    torch.manual_seed(seed)
    return tiny_build("moons", hidden=hidden)


def _full_save(path, model: nn.Module, step: int) -> None:
    checkpoint.save_checkpoint(path, model, step=step, resume={"online.w": torch.full((3,), float(step))},
                               train_state={"step": step, "rows": [1.0, 2.0]})


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _leftovers(parent) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_save_replaces_the_folder_whole(tmp_path, tiny_family, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(checkpoint, "_exchange", lambda a, b: False)
    path = tmp_path / "ck"
    _full_save(path, _tiny(), step=1)
    model = _tiny(seed=1)
    checkpoint.save_checkpoint(path, model, step=2)  # no resume file this time: the old one must not stay
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "model.safetensors"]
    ck = checkpoint.load_checkpoint(path)
    assert ck.meta["step"] == 2 and _same(ck.weights, model.state_dict()) and _leftovers(tmp_path) == []


@pytest.mark.parametrize("fail_at", ["write:0", "write:1", "write:2", "write:3", "fsync_dir", "rename",
                                     "second-rename"])
def test_a_failed_write_leaves_the_earlier_checkpoint_loadable(tmp_path, tiny_family, monkeypatch, fail_at):
    path = tmp_path / "ck"
    first = _tiny()
    _full_save(path, first, step=1)
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    what, _, index = fail_at.partition(":")
    calls = []

    def failing(real):
        def run(*args, **kwargs):
            calls.append(args)
            if what != "write" or len(calls) == int(index) + 1:
                raise OSError(28, "No space left on device")
            return real(*args, **kwargs)
        return run

    if what == "second-rename":  # no atomic exchange: the old folder is moved aside, then the new one fails
        what, index = "write", "1"
        monkeypatch.setattr(checkpoint, "_exchange", lambda a, b: False)
        monkeypatch.setattr(checkpoint.os, "rename", failing(os.rename))
    else:
        target = {"write": "_write_file", "fsync_dir": "_fsync_dir", "rename": "_replace_folder"}[what]
        monkeypatch.setattr(checkpoint, target, failing(getattr(checkpoint, target)))
    with pytest.raises(OSError, match="No space left"):
        _full_save(path, _tiny(seed=1), step=2)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before  # byte for byte
    ck = checkpoint.load_checkpoint(path)
    assert ck.meta["step"] == 1 and _same(ck.weights, first.state_dict()) and ck.train_state["step"] == 1
    assert _leftovers(tmp_path) == []  # the half-written temporary folder is gone


def test_save_refuses_a_file_or_a_folder_of_other_files(tmp_path, tiny_family):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=f"{tmp_path}: .*notes.txt.*not replacing it"):
        checkpoint.save_checkpoint(tmp_path, _tiny())
    with pytest.raises(FileExistsError, match="notes.txt: a file, not a checkpoint folder"):
        checkpoint.save_checkpoint(tmp_path / "notes.txt", _tiny())
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_meta_records_each_files_size_and_hash(tmp_path, tiny_family):
    _full_save(tmp_path, _tiny(), step=3)
    files = json.loads((tmp_path / "meta.json").read_text())["files"]
    assert set(files) == {"model.safetensors", "resume.safetensors", "train_state.pt"}
    for name, record in files.items():
        data = (tmp_path / name).read_bytes()
        assert record == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}  # hashlib, independently
    meta = checkpoint.update_meta(tmp_path, metrics={"nll": 1.0})
    assert meta["files"] == files and checkpoint.load_checkpoint(tmp_path).meta["metrics"] == {"nll": 1.0}


def _flip(file, offset: int = -9) -> None:
    data = bytearray(file.read_bytes())
    data[offset] ^= 0xFF
    file.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["model.safetensors", "resume.safetensors", "train_state.pt"])
def test_flipped_bytes_are_caught_by_the_hash(tmp_path, tiny_family, name):
    _full_save(tmp_path, _tiny(), step=1)
    _flip(tmp_path / name)
    with pytest.raises(checkpoint.CheckpointError, match="SHA-256 .* differs .*corrupt or was changed") as info:
        checkpoint.load_checkpoint(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / name}:") and "\n" not in str(info.value)


def _truncate(file, keep: int = 40) -> None:
    file.write_bytes(file.read_bytes()[:keep])


def _unrecorded(path) -> None:
    """Drop the size and hash records, as in a folder of format 1, so that the readers meet the bad bytes."""
    meta = json.loads((path / "meta.json").read_text())
    del meta["files"]
    (path / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("case, name, message", [
    ("truncated", "model.safetensors", "truncated: 40 bytes, meta.json records"),
    ("truncated", "train_state.pt", "truncated: 40 bytes, meta.json records"),
    ("unrecorded", "model.safetensors", "not a readable safetensors file, truncated or corrupt"),
    ("unrecorded", "resume.safetensors", "not a readable safetensors file, truncated or corrupt"),
    ("unrecorded", "train_state.pt", "truncated or corrupt"),
    ("json", "meta.json", r"unreadable JSON \(Expecting .* at line 1"),
    ("listed", "resume.safetensors", "not found, but meta.json lists it"),
])
def test_each_load_error_names_its_file_in_one_line(tmp_path, tiny_family, case, name, message):
    _full_save(tmp_path, _tiny(), step=1)
    if case == "json":
        (tmp_path / name).write_text('{"format": "gdl-ref-checkpoint", ')
    elif case == "listed":
        (tmp_path / name).unlink()
    else:
        _truncate(tmp_path / name)
        if case == "unrecorded":
            _unrecorded(tmp_path)
    with pytest.raises((checkpoint.CheckpointError, FileNotFoundError), match=message) as info:
        checkpoint.load_checkpoint(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / name}") and "\n" not in str(info.value)


def test_weights_of_another_shape_or_family_are_summarised(tmp_path, tiny_family):
    checkpoint.save_checkpoint(tmp_path, _tiny(hidden=4))
    with pytest.raises(checkpoint.CheckpointError, match="a tiny checkpoint, not flow") as info:
        checkpoint.load_model(tmp_path, family="flow")
    assert str(info.value).startswith(str(tmp_path / "meta.json"))
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["config"]["hidden"] = 6  # the weights are of hidden=4
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(checkpoint.CheckpointError) as info:
        checkpoint.load_model(tmp_path)
    text = str(info.value)
    # found from the safetensors header and a model built on the meta device, before any weight is allocated
    assert text == (f"{tmp_path / 'meta.json'}: its config does not fit {tmp_path / 'model.safetensors'}: lin.weight "
                    f"has shape (4, 2) in the file, the config implies (6, 2) (set by hidden=6); refused before "
                    f"building the model")
    assert "\n" not in text and len(text) < 300  # a summary, not the list of every key
    with pytest.raises(checkpoint.CheckpointError, match="1 of 2 tensors missing .*; 1 unexpected"):
        checkpoint.load_weights(nn.Linear(2, 2), {"weight": torch.zeros(2, 2), "scale": torch.ones(1)}, "w.st")
