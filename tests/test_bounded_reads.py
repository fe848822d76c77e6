"""No file from outside can make a reader use unbounded memory, and every refusal names its file.

Each bomb is refused in a fresh interpreter whose peak resident memory is read before and after the
refusal (``resource.getrusage``, in kB on Linux): it may grow by at most ``BOUND_MB`` over the
interpreter's baseline with its imports done. Before the readers were bounded, the IDX bomb below
alone raised the peak by more than its 512 MB of unpacked data.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

from gdl_ref import bounded_io, checkpoint, data
from gdl_ref.models import registry

pytestmark = pytest.mark.reliability

BOUND_MB = 100
BOMB_BYTES = 512 * 2**20  # what the bombs unpack to, or claim


def refusal_in_subprocess(setup: str, call: str) -> dict[str, object]:
    """Run ``call`` after ``setup`` in a new interpreter; its error message and how much its peak RSS grew (MB)."""
    measure = textwrap.dedent(f"""
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            {call}
            message = None
        except Exception as err:
            message = f"{{type(err).__name__}}: {{err}}"
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
        print(json.dumps({{"message": message, "grew_mb": grew}}))
    """)
    code = f"import json, resource\n{setup}\n{measure}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_refused_within_bound(result: dict[str, object], *needles: str) -> None:
    message = str(result["message"])
    for needle in needles:
        assert needle in message, message
    assert "\n" not in message and "Traceback" not in message
    assert float(result["grew_mb"]) < BOUND_MB, f"peak RSS grew by {result['grew_mb']:.0f} MB: {message}"
    print(f"refused with peak RSS +{result['grew_mb']:.1f} MB: {message}")


# --- IDX ------------------------------------------------------------------------------------

def _gzip_of_zeros(path: Path, header: bytes, zeros: int) -> None:
    block = bytes(2**20)
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(header)
        for _ in range(zeros // len(block)):
            fh.write(block)


def test_an_idx_bomb_with_a_small_header_is_refused_after_one_byte_past_its_data(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    _gzip_of_zeros(path, bytes([0, 0, 0x08, 3]) + struct.pack(">III", 10, 28, 28), BOMB_BYTES)
    assert path.stat().st_size < 4 * 2**20  # a few MB on disk
    result = refusal_in_subprocess("from gdl_ref import data", f"data.read_idx({str(path)!r})")
    assert_refused_within_bound(result, str(path), "trailing bytes")


def test_an_idx_header_declaring_more_than_the_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "big-idx3-ubyte.gz"
    _gzip_of_zeros(path, bytes([0, 0, 0x08, 3]) + struct.pack(">III", 2_000_000, 28, 28), 8 * 2**20)
    result = refusal_in_subprocess("from gdl_ref import data", f"data.read_idx({str(path)!r})")
    assert_refused_within_bound(result, str(path), "(2000000, 28, 28)", "over the limit", "refused before reading")


def test_mnist_sized_files_fit_well_under_the_idx_limit(tmp_path):
    assert 60_000 * 28 * 28 < data.IDX_MAX_BYTES // 10
    arr = torch.arange(6, dtype=torch.uint8).numpy()
    (tmp_path / "ok").write_bytes(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 6) + arr.tobytes())
    assert data.read_idx(tmp_path / "ok").tolist() == list(range(6))
    with pytest.raises(data.IDXError, match="over the limit of 5 "):
        data.read_idx(tmp_path / "ok", max_bytes=5)


# --- checkpoints ------------------------------------------------------------------------------

@pytest.fixture()
def flow_checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = registry.build("flow", "moons", hidden=8, layers=2, bins=4)
    return checkpoint.save_checkpoint(tmp_path / "ckpt", model)


def _set_config(folder: Path, **fields: object) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    meta["config"].update(fields)
    (folder / "meta.json").write_text(json.dumps(meta))


def test_a_config_that_does_not_fit_the_tensors_is_refused_before_the_model_is_built(flow_checkpoint):
    _set_config(flow_checkpoint, hidden=500_000)  # in range for the field, and a 500,000-wide model would need GBs
    result = refusal_in_subprocess("from gdl_ref import checkpoint", f"checkpoint.load_model({str(flow_checkpoint)!r})")
    assert_refused_within_bound(result, str(flow_checkpoint / "meta.json"), "does not fit", "hidden=500000",
                                "refused before building the model")


def test_a_config_field_out_of_range_is_named_with_its_range(flow_checkpoint):
    _set_config(flow_checkpoint, hidden=1_000_000_000)
    with pytest.raises(checkpoint.CheckpointError, match=r"FlowConfig.hidden = 1000000000: must be an integer in 1\.\.1048576"):
        checkpoint.load_model(flow_checkpoint)


def test_a_matching_config_still_loads_and_the_shapes_come_from_the_header_alone(flow_checkpoint):
    model = checkpoint.load_model(flow_checkpoint)
    shapes = checkpoint.safetensors_shapes(flow_checkpoint / "model.safetensors")
    assert shapes == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_a_sparse_meta_json_of_a_gigabyte_is_refused_unread(flow_checkpoint):
    with (flow_checkpoint / "meta.json").open("r+b") as fh:
        fh.truncate(2**30)  # sparse: no disk used, 1 GiB to a reader that trusts the size
    result = refusal_in_subprocess("from gdl_ref import checkpoint", f"checkpoint.load_model({str(flow_checkpoint)!r})")
    assert_refused_within_bound(result, str(flow_checkpoint / "meta.json"), "over the", "limit")


def test_a_safetensors_header_declaring_a_terabyte_is_refused(flow_checkpoint):
    file = flow_checkpoint / "model.safetensors"
    body = file.read_bytes()
    forged = struct.pack("<Q", 2**40) + body[8:]
    file.write_bytes(forged)
    meta = json.loads((flow_checkpoint / "meta.json").read_text())
    meta["files"]["model.safetensors"]["sha256"] = hashlib.sha256(forged).hexdigest()  # digests fixed up
    (flow_checkpoint / "meta.json").write_text(json.dumps(meta))
    result = refusal_in_subprocess("from gdl_ref import checkpoint", f"checkpoint.load_model({str(flow_checkpoint)!r})")
    assert_refused_within_bound(result, str(file), "safetensors header of 1099511627776 bytes")


def test_a_checkpoint_file_longer_than_recorded_is_refused_from_its_size(flow_checkpoint):
    with (flow_checkpoint / "model.safetensors").open("r+b") as fh:
        fh.truncate(BOMB_BYTES)
    result = refusal_in_subprocess("from gdl_ref import checkpoint", f"checkpoint.load_model({str(flow_checkpoint)!r})")
    assert_refused_within_bound(result, "model.safetensors", "longer than written", f"{BOMB_BYTES} bytes")


def test_evaluate_and_sample_never_read_train_state(tmp_path):
    torch.manual_seed(0)
    model = registry.build("flow", "moons", hidden=8, layers=2, bins=4)
    folder = checkpoint.save_checkpoint(tmp_path / "ckpt", model, train_state={"step": 3})
    (folder / "train_state.pt").write_bytes(b"corrupt")  # --resume would refuse it
    with pytest.raises(checkpoint.CheckpointError, match="train_state.pt: truncated"):
        checkpoint.load_checkpoint(folder)
    loaded = checkpoint.load_model(folder)
    assert checkpoint.read_meta(folder)["family"] == "flow"
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


def test_a_full_disk_names_the_file_and_keeps_the_previous_checkpoint(tmp_path):
    torch.manual_seed(0)
    small = checkpoint.save_checkpoint(tmp_path / "ckpt", registry.build("flow", "moons", hidden=8, layers=2, bins=4))
    before = {p.name: p.read_bytes() for p in small.iterdir()}
    code = textwrap.dedent(f"""
        import resource, torch
        from gdl_ref import checkpoint
        from gdl_ref.models import registry
        big = registry.build("flow", "moons", hidden=512, layers=4)  # megabytes of weights
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # a file may grow to 200 kB: a full disk
        checkpoint.save_checkpoint({str(small)!r}, big)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("OSError: [Errno 27]"), last
    assert f"{small / 'model.safetensors'}: cannot write" in last and "is unchanged" in last
    assert {p.name: p.read_bytes() for p in small.iterdir()} == before
    assert checkpoint.load_model(small) is not None


# --- zip archives and JSON ----------------------------------------------------------------------

def test_a_zip_bomb_is_refused_from_its_directory(tmp_path):
    path = tmp_path / "deck.apkg"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("collection.anki2", "w", force_zip64=True) as member:
            block = bytes(2**20)
            for _ in range(BOMB_BYTES // len(block)):
                member.write(block)
    assert path.stat().st_size < 4 * 2**20
    setup = f"import zipfile\nfrom gdl_ref import bounded_io\narchive = zipfile.ZipFile({str(path)!r})"
    result = refusal_in_subprocess(setup, f"bounded_io.zip_members(archive, {str(path)!r})")
    assert_refused_within_bound(result, str(path), f"unpack to {BOMB_BYTES:,} bytes", "over the limit")


def test_zip_member_count_and_paths_leaving_the_folder_are_refused(tmp_path):
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as archive:
        for i in range(12):
            archive.writestr(f"m{i}", b"")
    with zipfile.ZipFile(many) as archive, pytest.raises(bounded_io.FileTooLarge, match=r"many.zip: 12 members, over the limit of 10"):
        bounded_io.check_zip(archive, many, max_members=10)
    for name in ("../escape.txt", "/etc/passwd", "a/../../b", "C:/windows"):
        evil = tmp_path / "evil.zip"
        with zipfile.ZipFile(evil, "w") as archive:
            archive.writestr(name, b"x")
        with zipfile.ZipFile(evil) as archive, pytest.raises(ValueError, match="outside the archive's folder"):
            bounded_io.check_zip(archive, evil)


def test_a_member_unpacking_past_its_declared_size_is_stopped(tmp_path):
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("a", b"0123456789")
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("a")
    central = raw.rindex(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, 4)  # the central directory now says 4 bytes
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as archive:
        with pytest.raises((bounded_io.FileTooLarge, zipfile.BadZipFile)):
            bounded_io.zip_members(archive, path)
    assert info.file_size == 10


def test_json_over_its_limit_or_nested_too_deep_is_refused_with_its_name(tmp_path):
    huge = tmp_path / "run.json"
    with huge.open("wb") as fh:
        fh.truncate(2**30)
    result = refusal_in_subprocess("from gdl_ref import bounded_io", f"bounded_io.read_json({str(huge)!r})")
    assert_refused_within_bound(result, str(huge), "over the 67,108,864-byte limit")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ValueError, match="deep.json: JSON nested too deeply"):
        bounded_io.read_json(deep)
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "a": 1,\n  oops\n}')
    with pytest.raises(ValueError, match=r"broken.json:3:3: unreadable JSON"):
        bounded_io.read_json(broken)
