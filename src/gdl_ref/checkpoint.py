"""Checkpoints in safe formats: a folder with weights (safetensors), metadata (JSON), training state.

Layout of a checkpoint folder::

    model.safetensors   the weights to use (the EMA weights when fit ran with ema_decay)
    meta.json           family, data, the model's config dict, step, library versions, metrics
    resume.safetensors  tensors only a resumed run needs (online weights, EMA shadow, best weights)
    train_state.pt      optimiser state dicts, RNG states, step, history: torch.save of plain
                        containers, read back with torch.load(weights_only=True) (no pickled code)

Nothing here unpickles arbitrary objects: safetensors and JSON hold data only, and
``weights_only=True`` restricts the optimiser file to tensors and plain Python containers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "load_model", "update_meta", "state_to_cpu",
           "model_meta"]

FORMAT = "gdl-ref-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """What a checkpoint folder holds, loaded."""

    path: Path
    weights: dict[str, Tensor]
    meta: dict[str, Any]
    resume: dict[str, Tensor] = field(default_factory=dict)
    train_state: dict[str, Any] | None = None


def state_to_cpu(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Detached, contiguous CPU copies (safetensors refuses shared or strided storage)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def _versions() -> dict[str, str]:
    import gdl_ref

    return {"gdl_ref": gdl_ref.__version__, "torch": torch.__version__, "python": platform.python_version()}


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Tensor):
        return value.tolist()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def model_meta(model: nn.Module) -> dict[str, Any]:
    """family (from the registry), data and config (``dataclasses.asdict(model.config)``) of a model."""
    from gdl_ref.models.registry import family_of

    config = getattr(model, "config", None)
    config_dict = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else None
    data = getattr(config, "data", None)
    return {"family": family_of(model), "data": data, "config": config_dict, "model": type(model).__name__}


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(path: str | Path, model: nn.Module, *, step: int = 0,
                    weights: dict[str, Tensor] | None = None, meta: dict[str, Any] | None = None,
                    resume: dict[str, Tensor] | None = None, train_state: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint folder at ``path`` and return it.

    ``weights`` defaults to ``model.state_dict()``; ``meta`` entries are added to (and override) the
    family/data/config found on the model; ``resume`` and ``train_state`` are what ``fit`` needs to
    continue. Each file is written to a temporary name and renamed, so a crash leaves the old file.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = state_to_cpu(weights if weights is not None else model.state_dict())
    info = {"format": FORMAT, "format_version": FORMAT_VERSION, **model_meta(model), "step": int(step),
            "versions": _versions(), **(meta or {})}
    _atomic_write(path / "model.safetensors", lambda p: save_file(tensors, str(p)))
    if resume:
        res = state_to_cpu(resume)
        _atomic_write(path / "resume.safetensors", lambda p: save_file(res, str(p)))
    if train_state is not None:
        _atomic_write(path / "train_state.pt", lambda p: torch.save(train_state, p))
    _atomic_write(path / "meta.json", lambda p: p.write_text(json.dumps(_jsonable(info), indent=2) + "\n"))
    return path


def update_meta(path: str | Path, **entries: Any) -> dict[str, Any]:
    """Add entries (e.g. metrics=...) to a checkpoint's meta.json and return the new metadata."""
    file = Path(path) / "meta.json"
    meta = {**json.loads(file.read_text()), **_jsonable(entries)}
    _atomic_write(file, lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))
    return meta


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint folder (no code is unpickled); FileNotFoundError names what is missing."""
    path = Path(path)
    for name in ("model.safetensors", "meta.json"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name} not found: {path} is not a gdl-ref checkpoint folder")
    meta = json.loads((path / "meta.json").read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path / 'meta.json'}: not a {FORMAT} file (format={meta.get('format')!r})")
    resume = load_file(str(path / "resume.safetensors")) if (path / "resume.safetensors").is_file() else {}
    state = None
    if (path / "train_state.pt").is_file():
        state = torch.load(path / "train_state.pt", map_location="cpu", weights_only=True)
    return Checkpoint(path, load_file(str(path / "model.safetensors")), meta, resume, state)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model of a checkpoint through ``families.build`` and load its weights (eval mode)."""
    from gdl_ref.models import registry as families

    ckpt = load_checkpoint(path)
    family, data, config = ckpt.meta.get("family"), ckpt.meta.get("data"), ckpt.meta.get("config")
    if family is None or data is None:
        raise ValueError(f"{ckpt.path / 'meta.json'} names no family/data (family={family!r}, data={data!r}); "
                         f"rebuild the model yourself and load {ckpt.path / 'model.safetensors'}")
    # JSON turned tuples into lists; config fields hold tuples (immutable dataclass defaults)
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in (config or {}).items()}
    model = families.build(family, data, **config)
    model.load_state_dict(ckpt.weights)
    return model.to(device).eval()
