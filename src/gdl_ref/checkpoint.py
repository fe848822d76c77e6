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
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as dump_safetensors
from torch import Tensor, nn

from gdl_ref.bounded_io import FileTooLarge, read_limited
from gdl_ref.records import jsonable, versions

__all__ = ["Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint", "load_model", "load_weights",
           "update_meta", "state_to_cpu", "model_meta", "is_checkpoint", "read_meta", "safetensors_shapes"]

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

def _write_file(path: Path, data: bytes, shown: Path | None = None) -> None:
    """Write ``data`` to a new file and flush it to the disk: on return the bytes are on the disk.

    A failure (a full disk, a file-size limit) is an OSError naming ``shown``, the file it will become,
    and saying that what was there before is untouched: every write goes to a new file first.
    """
    try:
        with open(path, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        target = shown or path
        raise OSError(err.errno, f"{target}: cannot write {len(data):,} bytes ({err.strerror or err}); "
                                 f"what {target.parent} held before is unchanged") from None


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
    return (json.dumps(jsonable(value), indent=2) + "\n").encode()


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
            "versions": versions(), **(meta or {}), "files": {k: _digest(v) for k, v in payload.items()}}
    payload["meta.json"] = _json_bytes(info)
    new = _sibling(path, "tmp")
    try:
        new.mkdir()
        for name, data in payload.items():
            _write_file(new / name, data, shown=path / name)
        _fsync_dir(new)
        _replace_folder(new, path)
    finally:
        shutil.rmtree(new, ignore_errors=True)  # gone after a success; the half-written folder after a failure
    return path


def update_meta(path: str | Path, **entries: Any) -> dict[str, Any]:
    """Add entries (e.g. metrics=...) to a checkpoint's meta.json, replacing it in one rename; return it."""
    file = Path(path) / "meta.json"
    meta = {**_read_meta(file), **jsonable(entries)}
    tmp = _sibling(file, "tmp")
    try:
        _write_file(tmp, _json_bytes(meta), shown=file)
        os.replace(tmp, file)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(file.parent)
    return meta


# ---------------------------------------------------------------------------------------------
# Reading: every file checked, every error names its file
# ---------------------------------------------------------------------------------------------

META_MAX_BYTES = 16 * 2**20  # a meta.json holds kilobytes: a config, metrics, versions, digests
WEIGHTS_MAX_BYTES = 2**31  # 2 GiB: the largest model.safetensors or resume.safetensors read (ours: megabytes)
TRAIN_STATE_MAX_BYTES = 64 * 2**20  # train_state.pt: random states and counters (ours: kilobytes)
HEADER_MAX_BYTES = 16 * 2**20  # the JSON header of a safetensors file: names, dtypes, shapes, offsets
_LIMITS = {"model.safetensors": WEIGHTS_MAX_BYTES, "resume.safetensors": WEIGHTS_MAX_BYTES,
           "train_state.pt": TRAIN_STATE_MAX_BYTES, "meta.json": META_MAX_BYTES}


def _read_meta(file: Path) -> dict[str, Any]:
    try:
        meta = json.loads(read_limited(file, META_MAX_BYTES, "checkpoint's meta.json"))
    except FileTooLarge as err:
        raise CheckpointError(str(err)) from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{file}: unreadable JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{file}: unreadable JSON (not UTF-8 text)") from None
    except RecursionError:
        raise CheckpointError(f"{file}: unreadable JSON (nested too deeply)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{file}: not a {FORMAT} file (format={found!r})")
    return meta


def _verified(file: Path, record: dict[str, Any] | None) -> bytes:
    """The bytes of ``file``, checked against its ``meta.json`` record (size, then SHA-256) when there is one.

    The size on disk is compared with the record and with the file's limit before a byte is read.
    """
    size = file.stat().st_size
    if record is not None and size != record["bytes"]:
        kind = "truncated" if size < record["bytes"] else "longer than written"
        raise CheckpointError(f"{file}: {kind}: {size} bytes, meta.json records {record['bytes']} bytes")
    try:
        data = read_limited(file, _LIMITS.get(file.name, WEIGHTS_MAX_BYTES), "checkpoint file")
    except FileTooLarge as err:
        raise CheckpointError(str(err)) from None
    if record is None:
        return data
    if len(data) != record["bytes"]:
        raise CheckpointError(f"{file}: changed while read: {len(data)} bytes, meta.json records {record['bytes']}")
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
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f" (it names {found.group(1)})" if found else ""
        raise CheckpointError(f"{file}: holds code or Python objects{what}, not only tensors, numbers and "
                              f"containers; refused: gdl-ref reads only tensors and plain data from a checkpoint and "
                              f"never runs code in one (a checkpoint it wrote holds none)") from None
    except (RuntimeError, EOFError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{file}: truncated or corrupt ({first})") from None


def _open(path: Path) -> tuple[dict[str, Any], Callable[[str], bytes | None]]:
    """A checkpoint folder's meta.json, checked against the files present, and a reader of verified files."""
    for name in ("model.safetensors", "meta.json"):
        if not (path / name).is_file():
            inner = path / "checkpoint"  # gdl-ref train --out DIR writes its checkpoint into DIR/checkpoint
            hint = f" (a run folder: its checkpoint is {inner})" if (inner / "model.safetensors").is_file() else ""
            raise FileNotFoundError(f"{path / name} not found: {path} is not a gdl-ref checkpoint folder{hint}")
    meta = _read_meta(path / "meta.json")
    records = meta.get("files")  # absent in format 1: nothing to verify against
    if records is not None:
        if not isinstance(records, dict) or not all(
                isinstance(r, dict) and isinstance(r.get("bytes"), int) and isinstance(r.get("sha256"), str)
                for r in records.values()):
            raise CheckpointError(f"{path / 'meta.json'}: its 'files' entry is not {{name: {{bytes, sha256}}}}")
        unknown = [name for name in records if name not in FILES]
        if unknown:
            raise CheckpointError(f"{path / 'meta.json'}: lists {unknown[0]!r}, not a checkpoint file")
        unlisted = [name for name in FILES[:-1] if (path / name).exists() and name not in records]
        if unlisted:
            raise CheckpointError(f"{path / unlisted[0]}: not written with this checkpoint (meta.json does not list it)")
        for name in records:
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path / name} not found, but meta.json lists it")

    def read(name: str) -> bytes | None:
        file = path / name
        return _verified(file, (records or {}).get(name)) if file.is_file() else None

    return meta, read


def safetensors_shapes(file: Path) -> dict[str, tuple[int, ...]]:
    """{tensor name: shape} from the header of a safetensors file, without reading its tensors.

    Layout (the safetensors format): an unsigned 64-bit little-endian N, then N bytes of JSON
    ``{name: {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}``, then the tensors' bytes.
    """
    with file.open("rb") as fh:
        head = fh.read(8)
        size = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < size <= HEADER_MAX_BYTES:
            raise CheckpointError(f"{file}: a safetensors header of {size} bytes (a file holds 1 to "
                                  f"{HEADER_MAX_BYTES:,}); truncated or not a safetensors file")
        raw = fh.read(size)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise CheckpointError(f"{file}: the safetensors header is not JSON: truncated or corrupt") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{file}: the safetensors header is not a JSON object")
    shapes = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise CheckpointError(f"{file}: tensor {name!r} has no valid shape in the header")
        shapes[name] = tuple(shape)
    return shapes


def _config_misfit(config: dict[str, Any], expected: dict[str, tuple[int, ...]],
                   found: dict[str, tuple[int, ...]]) -> str | None:
    """What differs between the shapes a config implies and those a file holds, naming the fields suspected."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing or unexpected:
        first = f"{missing[0]} is missing" if missing else f"{unexpected[0]} is not in the model"
        return f"{len(missing)} tensor(s) missing and {len(unexpected)} unexpected ({first})"
    for name, shape in expected.items():
        if found[name] != shape:
            dims = set(shape) - set(found[name])
            fields = [f"{k}={v}" for k, v in config.items() if isinstance(v, int) and not isinstance(v, bool) and v in dims]
            blame = f"set by {', '.join(fields)}" if fields else "no single config field gives it"
            return f"{name} has shape {tuple(found[name])} in the file, the config implies {shape} ({blame})"
    return None


def read_meta(path: str | Path) -> dict[str, Any]:
    """A checkpoint's meta.json, checked against the files in its folder, reading no other file."""
    return _open(Path(path))[0]


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint folder, verifying every file recorded in meta.json (no code is unpickled).

    FileNotFoundError names what is missing; CheckpointError (a ValueError) names the file that is
    truncated, corrupt, changed, or not plain data.
    """
    path = Path(path)
    meta, read = _open(path)
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

    path = Path(path)
    meta, read = _open(path)  # only meta.json and model.safetensors are read: train_state.pt is --resume's
    meta_file, weights_file = path / "meta.json", path / "model.safetensors"
    found, data, config = meta.get("family"), meta.get("data"), meta.get("config")
    if found is None or data is None:
        raise ValueError(f"{meta_file} names no family/data (family={found!r}, data={data!r}); "
                         f"rebuild the model yourself and load {weights_file}")
    if family is not None and found != family:
        raise CheckpointError(f"{meta_file}: a {found} checkpoint, not {family}")
    if not isinstance(config, dict | None):
        raise CheckpointError(f"{meta_file}: 'config' is a {type(config).__name__}, not an object of fields")
    try:
        config = families.fields_from_json(found, data, config or {})  # JSON's lists back to the fields' tuples
        with torch.device("meta"):  # shapes only: a config that implies a huge model allocates nothing here
            skeleton = families.build(found, data, **config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{meta_file}: cannot rebuild the model ({err})") from None
    misfit = _config_misfit(config, {k: tuple(v.shape) for k, v in skeleton.state_dict().items()},
                            safetensors_shapes(weights_file))
    if misfit:
        raise CheckpointError(f"{meta_file}: its config does not fit {weights_file}: {misfit}; refused before "
                              f"building the model")
    weights = _tensors(weights_file, read("model.safetensors") or b"")
    model = families.build(found, data, **config)
    load_weights(model, weights, weights_file)
    return model.to(device).eval()
