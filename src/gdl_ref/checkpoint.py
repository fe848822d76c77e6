"""Checkpoints in safe formats: a folder with weights (safetensors), metadata (JSON), training state.

Layout of a checkpoint folder::

    model.safetensors   the weights to use (the EMA weights when fit ran with ema_decay)
    meta.json           family, data, the model's config dict, step, library versions, metrics, and the
                        size and SHA-256 of every other file ("files")
    resume.safetensors  tensors only a resumed run needs (online weights, EMA shadow, best weights)
    train_state.pt      optimiser state dicts, RNG states, step, history: torch.save of plain
                        containers, read back with torch.load(weights_only=True) (no pickled code)

A folder is written whole: every file goes into a temporary sibling folder, is flushed to disk
(``fsync``), and the folder then takes the checkpoint's name in one rename, so a crash or a full disk
leaves the previous checkpoint as it was. Loading checks each file's size and SHA-256 against
``meta.json`` before reading it, and every error names the file and says in one line what is wrong.

Nothing here unpickles arbitrary objects: safetensors and JSON hold data only, and
``weights_only=True`` restricts the optimiser file to tensors and plain Python containers.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import io
import json
import os
import pickle
import platform
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as dump_safetensors
from torch import Tensor, nn

__all__ = ["Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint", "load_model", "load_weights",
           "update_meta", "state_to_cpu", "model_meta", "is_checkpoint"]

FORMAT = "gdl-ref-checkpoint"
FORMAT_VERSION = 2  # 2: meta.json records "files" (bytes and SHA-256); version 1 folders load unverified
FILES = ("model.safetensors", "resume.safetensors", "train_state.pt", "meta.json")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: the message starts with the file's path."""


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


# ---------------------------------------------------------------------------------------------
# Writing: whole folders, flushed, swapped in by one rename
# ---------------------------------------------------------------------------------------------

def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and flush it to the disk (the only place checkpoint bytes are written)."""
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system or kernel cannot exchange
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def is_checkpoint(path: str | Path) -> bool:
    """True for a folder that holds only checkpoint files (at least meta.json) and hidden temporary ones."""
    path = Path(path)
    names = {p.name for p in path.iterdir() if not p.name.startswith(".")} if path.is_dir() else set()
    return "meta.json" in names and names <= set(FILES)


def _replace_folder(new: Path, path: Path) -> None:
    """Give the complete folder ``new`` the name ``path``; the old ``path`` (empty or a checkpoint) goes."""
    if not path.exists():
        os.rename(new, path)
    elif _exchange(new, path):
        shutil.rmtree(new)  # it now holds the previous checkpoint
    else:  # two renames: between them the previous checkpoint is complete under the name .NAME.old-*
        old = _sibling(path, "old")
        os.rename(path, old)
        try:
            os.rename(new, path)
        except BaseException:
            os.rename(old, path)  # the previous checkpoint takes its name back
            raise
        shutil.rmtree(old)
    _fsync_dir(path.parent)


def _sibling(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{kind}-{uuid.uuid4().hex[:8]}")


def _check_replaceable(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path}: a file, not a checkpoint folder; not replacing it")
    if path.is_dir() and any(path.iterdir()) and not is_checkpoint(path):
        extra = sorted(p.name for p in path.iterdir() if p.name not in FILES)[:3]
        raise FileExistsError(f"{path}: holds files that are not a checkpoint's ({', '.join(extra)}, ...); "
                              f"not replacing it: choose an empty or new folder")


def _digest(data: bytes) -> dict[str, Any]:
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _json_bytes(value: dict[str, Any]) -> bytes:
    return (json.dumps(_jsonable(value), indent=2) + "\n").encode()


def save_checkpoint(path: str | Path, model: nn.Module, *, step: int = 0,
                    weights: dict[str, Tensor] | None = None, meta: dict[str, Any] | None = None,
                    resume: dict[str, Tensor] | None = None, train_state: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint folder at ``path``, whole, and return it.

    ``weights`` defaults to ``model.state_dict()``; ``meta`` entries are added to (and override) the
    family/data/config found on the model; ``resume`` and ``train_state`` are what ``fit`` needs to
    continue. An existing ``path`` must be an empty folder or a checkpoint: it is replaced only once the
    new folder is complete on disk, so a failure at any point leaves it as it was.
    """
    path = Path(path)
    _check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model.safetensors": dump_safetensors(state_to_cpu(weights if weights is not None
                                                                  else model.state_dict()))}
    if resume:
        payload["resume.safetensors"] = dump_safetensors(state_to_cpu(resume))
    if train_state is not None:
        buffer = io.BytesIO()
        torch.save(train_state, buffer)
        payload["train_state.pt"] = buffer.getvalue()
    info = {"format": FORMAT, "format_version": FORMAT_VERSION, **model_meta(model), "step": int(step),
            "versions": _versions(), **(meta or {}), "files": {k: _digest(v) for k, v in payload.items()}}
    payload["meta.json"] = _json_bytes(info)
    new = _sibling(path, "tmp")
    try:
        new.mkdir()
        for name, data in payload.items():
            _write_file(new / name, data)
        _fsync_dir(new)
        _replace_folder(new, path)
    finally:
        shutil.rmtree(new, ignore_errors=True)  # gone after a success; the half-written folder after a failure
    return path


def update_meta(path: str | Path, **entries: Any) -> dict[str, Any]:
    """Add entries (e.g. metrics=...) to a checkpoint's meta.json, replacing it in one rename; return it."""
    file = Path(path) / "meta.json"
    meta = {**_read_meta(file), **_jsonable(entries)}
    tmp = _sibling(file, "tmp")
    try:
        _write_file(tmp, _json_bytes(meta))
        os.replace(tmp, file)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(file.parent)
    return meta


# ---------------------------------------------------------------------------------------------
# Reading: every file checked, every error names its file
# ---------------------------------------------------------------------------------------------

def _read_meta(file: Path) -> dict[str, Any]:
    try:
        meta = json.loads(file.read_bytes())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{file}: unreadable JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{file}: unreadable JSON (not UTF-8 text)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{file}: not a {FORMAT} file (format={found!r})")
    return meta


def _verified(file: Path, record: dict[str, Any] | None) -> bytes:
    """The bytes of ``file``, checked against its ``meta.json`` record (size, then SHA-256) when there is one."""
    data = file.read_bytes()
    if record is None:
        return data
    if len(data) != record["bytes"]:
        kind = "truncated" if len(data) < record["bytes"] else "longer than written"
        raise CheckpointError(f"{file}: {kind}: {len(data)} bytes, meta.json records {record['bytes']} bytes")
    digest = hashlib.sha256(data).hexdigest()
    if digest != record["sha256"]:
        raise CheckpointError(f"{file}: SHA-256 {digest[:16]}... differs from {record['sha256'][:16]}... recorded "
                              f"in meta.json: the file is corrupt or was changed")
    return data


def _tensors(file: Path, data: bytes) -> dict[str, Tensor]:
    try:
        return load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{file}: not a readable safetensors file, truncated or corrupt ({err})") from None


def _train_state(file: Path, data: bytes) -> dict[str, Any]:
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{file}: holds objects other than tensors and plain containers; "
                              f"torch.load(weights_only=True) refused it ({first})") from None
    except (RuntimeError, EOFError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{file}: truncated or corrupt ({first})") from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint folder, verifying every file recorded in meta.json (no code is unpickled).

    FileNotFoundError names what is missing; CheckpointError (a ValueError) names the file that is
    truncated, corrupt, changed, or not plain data.
    """
    path = Path(path)
    for name in ("model.safetensors", "meta.json"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name} not found: {path} is not a gdl-ref checkpoint folder")
    meta = _read_meta(path / "meta.json")
    records = meta.get("files")  # absent in format 1: nothing to verify against
    if records is not None:
        unlisted = [name for name in FILES[:-1] if (path / name).exists() and name not in records]
        if unlisted:
            raise CheckpointError(f"{path / unlisted[0]}: not written with this checkpoint (meta.json does not list it)")
        for name in records:
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path / name} not found, but meta.json lists it")

    def read(name: str) -> bytes | None:
        file = path / name
        return _verified(file, (records or {}).get(name)) if file.is_file() else None

    weights = _tensors(path / "model.safetensors", read("model.safetensors") or b"")
    resume_bytes, state_bytes = read("resume.safetensors"), read("train_state.pt")
    resume = _tensors(path / "resume.safetensors", resume_bytes) if resume_bytes is not None else {}
    state = _train_state(path / "train_state.pt", state_bytes) if state_bytes is not None else None
    return Checkpoint(path, weights, meta, resume, state)


def _shape(t: Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def _mismatch(expected: dict[str, Tensor], found: dict[str, Tensor]) -> Iterator[str]:
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [k for k in expected if k in found and expected[k].shape != found[k].shape]
    if missing:
        yield f"{len(missing)} of {len(expected)} tensors missing (first: {missing[0]})"
    if unexpected:
        yield f"{len(unexpected)} unexpected (first: {unexpected[0]})"
    if shapes:
        k = shapes[0]
        yield f"{len(shapes)} of {len(expected)} tensors of another shape (first: {k} {_shape(found[k])}, the model has {_shape(expected[k])})"


def load_weights(model: nn.Module, state: dict[str, Tensor], file: str | Path) -> None:
    """``model.load_state_dict(state)``, or a one-line CheckpointError naming ``file`` and summarising the misfit."""
    problems = list(_mismatch(model.state_dict(), state))
    if problems:
        raise CheckpointError(f"{file}: weights do not fit {type(model).__name__}: {'; '.join(problems)}")
    model.load_state_dict(state)


def load_model(path: str | Path, device: str | torch.device = "cpu", family: str | None = None) -> nn.Module:
    """Rebuild the model of a checkpoint through ``families.build`` and load its weights (eval mode).

    ``family``: the family the caller expects; a checkpoint of another family is a CheckpointError.
    """
    from gdl_ref.models import registry as families

    ckpt = load_checkpoint(path)
    meta_file = ckpt.path / "meta.json"
    found, data, config = ckpt.meta.get("family"), ckpt.meta.get("data"), ckpt.meta.get("config")
    if found is None or data is None:
        raise ValueError(f"{meta_file} names no family/data (family={found!r}, data={data!r}); "
                         f"rebuild the model yourself and load {ckpt.path / 'model.safetensors'}")
    if family is not None and found != family:
        raise CheckpointError(f"{meta_file}: a {found} checkpoint, not {family}")
    # JSON turned tuples into lists; config fields hold tuples (immutable dataclass defaults)
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in (config or {}).items()}
    try:
        model = families.build(found, data, **config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{meta_file}: cannot rebuild the model ({err})") from None
    load_weights(model, ckpt.weights, ckpt.path / "model.safetensors")
    return model.to(device).eval()
