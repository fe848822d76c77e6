"""Tests for gdl_ref.data: digits split, dequantisation, toys and their entropies, IDX files."""

from __future__ import annotations

import dataclasses
import gzip
import math
import struct

import numpy as np
import pytest
import torch

from gdl_ref import data

torch.set_num_threads(1)

# ----------------------------------------------------------------------------- digits

def test_digits_split_sizes_types_and_order():
    sizes = {}
    for split in ("train", "val", "test"):
        x, y = data.digits(split)
        assert x.dtype == torch.int64 and y.dtype == torch.int64
        assert x.shape[1:] == data.DIGIT_SHAPE and x.shape[0] == y.shape[0]
        assert int(x.min()) >= 0 and int(x.max()) <= data.DIGIT_LEVELS - 1
        sizes[split] = x.shape[0]
    assert sizes == {"train": 1000, "val": 350, "test": 447}
    from sklearn.datasets import load_digits

    raw = load_digits()
    x, y = data.digits("test")
    assert torch.equal(x[0, 0], torch.as_tensor(raw.images[1350].astype(np.int64)))
    assert torch.equal(y, torch.as_tensor(raw.target[1350:]))


def test_digits_returns_copies_and_rejects_unknown_split():
    x, _ = data.digits("train")
    x.zero_()
    assert int(data.digits("train")[0].sum()) > 0
    with pytest.raises(ValueError, match="train, val, test"):
        data.digits("validation")


def test_dequantize_range_and_quantize_inverse():
    x, _ = data.digits("val")
    g = torch.Generator().manual_seed(0)
    y = data.dequantize(x, generator=g)
    assert y.dtype == torch.float32 and float(y.min()) >= 0 and float(y.max()) < 1
    assert torch.equal(data.quantize(y), x)
    # the noise is a full bin wide: y * 17 - x spreads over [0, 1), mean about 1/2
    frac = y * 17 - x
    assert 0.45 < float(frac.mean()) < 0.55 and float(frac.max()) > 0.95
    assert torch.equal(data.dequantize(x, torch.Generator().manual_seed(0)), y)
    assert int(data.quantize(torch.tensor([-0.2, 1.3])).tolist()[1]) == 16
    with pytest.raises(ValueError, match="integer"):
        data.dequantize(y)


# ----------------------------------------------------------------------------- toys

@pytest.mark.parametrize("name", data.TOY_NAMES)
def test_toy_seeded_shape_and_finite_density(name):
    a, b = data.toy(name, 500, seed=3), data.toy(name, 500, seed=3)
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, data.toy(name, 500, seed=4))
    lp = data.toy_log_prob(name, a)
    assert lp.shape == (500,) and torch.isfinite(lp).all()


@pytest.mark.parametrize("name", data.TOY_NAMES)
def test_toy_density_integrates_to_one(name):
    # midpoint rule on a grid that covers all the mass
    edge, k = 3.0, 300
    h = 2 * edge / k
    c = torch.linspace(-edge + h / 2, edge - h / 2, k, dtype=torch.float64)
    grid = torch.cartesian_prod(c, c)
    mass = float(data.toy_log_prob(name, grid).exp().sum() * h * h)
    assert abs(mass - 1) < 2e-3


def test_toy_log_prob_matches_sample_histogram():
    # the density is the density of the sampler: compare P(box) from samples and from the density
    x = data.toy("moons", 40_000, seed=1)
    box = (x[:, 0] > 0.0) & (x[:, 0] < 0.5) & (x[:, 1] > 0.0) & (x[:, 1] < 0.5)
    c = torch.linspace(0.0025, 0.4975, 100, dtype=torch.float64)
    p_box = float(data.toy_log_prob("moons", torch.cartesian_prod(c, c)).exp().sum() * 0.005**2)
    emp = float(box.double().mean())
    se = math.sqrt(p_box * (1 - p_box) / 40_000)
    assert abs(emp - p_box) < 4 * se


def test_moons_quadrature_is_converged():
    x = data.toy("moons", 2000, seed=7).double()
    fine_t, fine_w = data._arc_rule(panels=64)
    coarse = data.toy_log_prob("moons", x)
    saved = data._T_NODES, data._T_LOGW
    try:
        data._T_NODES, data._T_LOGW = fine_t, fine_w
        fine = data.toy_log_prob("moons", x)
    finally:
        data._T_NODES, data._T_LOGW = saved
    assert float((coarse - fine).abs().max()) < 1e-8


def test_checkerboard_is_uniform_on_area_eight():
    x = data.toy("checkerboard", 4000, seed=0)
    assert torch.allclose(data.toy_log_prob("checkerboard", x), torch.full((4000,), -math.log(8)))
    out = torch.tensor([[0.5, 0.5], [1.5, 0.5], [2.5, 0.0]])  # dark-square test: (floor sum) even
    assert data.toy_log_prob("checkerboard", out).tolist()[1:] == [-math.inf, -math.inf]
    h = data.toy_entropy("checkerboard")
    assert h.exact and h.stderr == 0 and h.nats == pytest.approx(math.log(8))


def _trapezoid_entropy(name: str, margin: float, h: float) -> float:
    """-int p log p by the trapezoid rule on a uniform grid (another rule and another box than the package's)."""
    (x0, x1), (y0, y1) = data.ENTROPY_BOXES[name]
    xs = torch.arange(x0 - margin, x1 + margin + h / 2, h, dtype=torch.float64)
    ys = torch.arange(y0 - margin, y1 + margin + h / 2, h, dtype=torch.float64)
    lp = data.toy_log_prob(name, torch.cartesian_prod(xs, ys)).reshape(len(xs), len(ys))
    f = torch.where(lp > -700, lp.exp() * lp, torch.zeros_like(lp))
    return -float(torch.trapezoid(torch.trapezoid(f, dx=h, dim=1), dx=h))


@pytest.mark.parametrize("name", sorted(data.QUADRATURE_ENTROPY_TABLE))
def test_entropy_agrees_with_a_second_quadrature_rule(name):
    h = data.toy_entropy(name)
    assert not h.exact and 0 <= h.stderr < 1e-6  # the numerical error of the converged integral
    assert abs(_trapezoid_entropy(name, margin=0.3, h=0.02) - h.nats) < 1e-3


@pytest.mark.parametrize("name", sorted(data.QUADRATURE_ENTROPY_TABLE))
def test_entropy_agrees_with_monte_carlo_on_the_sampler(name):
    # the sampler, not the density: a density that is not the sampler's would fail here
    h = data.toy_entropy(name)
    check = data.mc_entropy(name, n=20_000, seed=999)
    assert abs(check.nats - h.nats) < 4 * check.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(data.QUADRATURE_ENTROPY_TABLE))
def test_stored_entropy_is_what_the_documented_code_computes(name):
    fresh = data.quadrature_entropy(name)
    stored = data.toy_entropy(name)
    assert fresh.nats == pytest.approx(stored.nats, abs=1e-9)


def test_ring_entropy_as_a_radial_integral():
    # p depends on r only: H = -int_0^inf p(r) log p(r) 2 pi r dr, a 1-D integral on a fine uniform grid
    r = torch.linspace(0, data.RING_RADIUS + 12 * data.RING_NOISE, 200_001, dtype=torch.float64)
    lp = data.toy_log_prob("ring", torch.stack([r, torch.zeros_like(r)], 1))
    h = -float(torch.trapezoid(lp.exp() * lp * 2 * math.pi * r, r))
    assert h == pytest.approx(data.toy_entropy("ring").nats, abs=1e-6)


def test_entropy_against_closed_form_limits():
    # 8 nearly disjoint Gaussians: H ~ log 8 + log(2 pi e s^2)
    h8 = data.toy_entropy("8gaussians")
    closed = math.log(8) + math.log(2 * math.pi * math.e * data.GAUSS8_STD**2)
    assert abs(h8.nats - closed) < 1e-3  # the overlap between neighbouring modes is ~e^-29
    # thin ring: H ~ log(2 pi R) + (1/2) log(2 pi e s^2), to O(s^2 / R^2)
    hr = data.toy_entropy("ring")
    thin = math.log(2 * math.pi * data.RING_RADIUS) + 0.5 * math.log(2 * math.pi * math.e * data.RING_NOISE**2)
    assert abs(hr.nats - thin) < 0.02


def test_toy_errors_and_standard_splits():
    with pytest.raises(ValueError, match="moons, 8gaussians, checkerboard, ring"):
        data.toy("spiral", 3)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        data.toy_log_prob("moons", torch.zeros(3, 3))
    assert data.load("ring", "val").shape == (1000, 2)
    assert torch.equal(data.load("moons", "test"), data.toy("moons", 2000, seed=2))
    assert data.load("digits", "test").shape == (447, 1, 8, 8)
    with pytest.raises(ValueError, match="digits"):
        data.load("cifar")


# ----------------------------------------------------------------------------- IDX

def _idx_bytes(arr: np.ndarray, type_byte: int = 0x08) -> bytes:
    head = bytes([0, 0, type_byte, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(">u1" if type_byte == 0x08 else ">i4").tobytes()


def test_read_idx_roundtrip_raw_gz_and_int32(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a-idx3-ubyte").write_bytes(_idx_bytes(arr))
    with gzip.open(tmp_path / "a-idx3-ubyte.gz", "wb") as fh:
        fh.write(_idx_bytes(arr))
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        assert np.array_equal(data.read_idx(tmp_path / name), arr)
    ints = np.array([-5, 70000, 3], dtype=np.int64)
    (tmp_path / "i").write_bytes(_idx_bytes(ints, 0x0C))
    assert data.read_idx(tmp_path / "i").tolist() == [-5, 70000, 3]


@pytest.mark.parametrize("case, message", [
    ("truncated", "truncated"),
    ("trailing", "trailing bytes"),
    ("magic", "bad magic"),
    ("type", "bad magic"),
    ("header", "header truncated"),
    ("gzip", "cannot decompress"),
    ("empty", "bad magic"),
    ("deflate", "cannot decompress"),
    ("overflow", "over the limit"),
])
def test_read_idx_errors_name_the_file(tmp_path, case, message):
    good = _idx_bytes(np.zeros((4, 5), dtype=np.uint8))
    blobs = {
        "truncated": good[:-3],
        "trailing": good + b"\x00",
        "magic": b"\x01" + good[1:],
        "type": good[:2] + b"\x42" + good[3:],
        "header": good[:6],
        "gzip": gzip.compress(good)[:-10],
        "empty": b"",
        # a valid gzip header whose deflate stream is garbage (zlib.error inside gzip)
        "deflate": gzip.compress(good)[:10] + b"\xff" * 40,
        # sizes whose product is 2**64, which wraps to 0 in int64: an empty body must not pass the size check
        "overflow": bytes([0, 0, 0x08, 3]) + struct.pack(">III", 2**31, 2**31, 4),
    }
    path = tmp_path / f"bad-{case}.idx"
    path.write_bytes(blobs[case])
    with pytest.raises(data.IDXError, match=message) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def test_load_mnist_missing_file_is_named_and_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz") as info:
        data.load_mnist("train", root=tmp_path)
    assert "download=True" in str(info.value)
    with pytest.raises(ValueError, match="mnist, fashion"):
        data.load_mnist(kind="kmnist", root=tmp_path)


def test_load_mnist_checksum_mismatch_is_named(tmp_path):
    imgs = np.zeros((2, 28, 28), dtype=np.uint8)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(_idx_bytes(imgs))
    with pytest.raises(data.IDXError, match="t10k-images-idx3-ubyte.gz: MD5"):
        data.load_mnist("test", root=tmp_path)


def test_load_mnist_tiny_unpacked_files(tmp_path, monkeypatch):
    monkeypatch.setitem(data._MNIST_SPLITS, "test", ("t10k", 3))
    imgs = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(imgs))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.array([7, 2, 1], dtype=np.uint8)))
    x, y = data.load_mnist("test", root=tmp_path, kind="fashion")
    assert x.shape == (3, 1, 28, 28) and x.dtype == torch.uint8 and torch.equal(x[:, 0], torch.from_numpy(imgs))
    assert y.tolist() == [7, 2, 1] and y.dtype == torch.int64
    # a pinned SHA-256 that does not match is an error naming the file
    with pytest.raises(data.IDXError, match="t10k-labels-idx1-ubyte: SHA-256"):
        data.load_mnist("test", root=tmp_path, sha256={"t10k-labels-idx1-ubyte": "0" * 64})
    pinned = {"t10k-labels-idx1-ubyte": data.file_sha256(tmp_path / "t10k-labels-idx1-ubyte")}
    assert data.load_mnist("test", root=tmp_path, sha256=pinned)[1].tolist() == [7, 2, 1]
    # wrong image count and bad labels
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.array([7, 2, 11], dtype=np.uint8)))
    with pytest.raises(data.IDXError, match="label 11") as info:
        data.load_mnist("test", root=tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 't10k-labels-idx1-ubyte'}:")  # the file read, not a .gz
    monkeypatch.setitem(data._MNIST_SPLITS, "test", ("t10k", 4))
    with pytest.raises(data.IDXError, match=r"t10k-images-idx3-ubyte: expected uint8 of shape \(4, 28, 28\)"):
        data.load_mnist("test", root=tmp_path)


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GDL_REF_CACHE", str(tmp_path))
    assert data.cache_dir() == tmp_path


# ----------------------------------------------------------------------------- moved toys


@pytest.mark.parametrize("move", data.MOVES, ids=lambda m: m.label("toy"))
def test_a_moved_toy_has_the_moved_density_and_entropy(move):
    # independent of Move.log_prob's formula: mass on a grid around the moved data, and the entropy by Monte Carlo
    name = "8gaussians"
    centre, half, k = move.shift, 4.0 * move.scale, 300
    h = 2 * half / k
    c = torch.linspace(centre - half + h / 2, centre + half - h / 2, k, dtype=torch.float64)
    mass = float(move.log_prob(name, torch.cartesian_prod(c, c)).exp().sum() * h * h)
    assert abs(mass - 1) < 2e-3
    y = move.apply(data.toy(name, 20_000, seed=5).double())
    lp = move.log_prob(name, y)
    assert abs(float(-lp.mean()) - move.entropy(name)) < 4 * float(lp.std()) / math.sqrt(len(lp))
    assert torch.allclose(move.undo(y), data.toy(name, 20_000, seed=5).double(), atol=1e-9)


def test_move_labels_and_bad_moves():
    assert [m.label("moons") for m in data.MOVES] == ["moons ×0.1", "moons ×10", "moons +5"]
    assert data.Move().label("ring") == "ring" and data.Move(2.0, -1.5).label("ring") == "ring ×2 -1.5"
    for scale, shift in ((0.0, 0.0), (-1.0, 0.0), (math.nan, 0.0), (1.0, math.inf)):
        with pytest.raises(ValueError, match="finite scale > 0"):
            data.Move(scale, shift)


# ------------------------------------------------------------------------------------------ one value


def test_a_dataset_is_made_once_and_holds_its_splits():
    digits = data.dataset("digits")
    assert data.dataset("digits") is digits, "made once a process"
    for split, (lo, hi) in data.DIGIT_SPLITS.items():
        images, labels = data.digits(split)
        assert torch.equal(digits.split(split), images) and torch.equal(digits.labels[split], labels)
        assert len(digits.split(split)) == hi - lo
    assert digits.images and digits.label == "digits" and digits.entropy is None and digits.move is None
    ring = data.dataset("ring")
    assert not ring.images and ring.labels is None
    for split, (n, seed) in data.TOY_SPLITS.items():
        assert torch.equal(ring.split(split), data.toy("ring", n, seed=seed))
    assert ring.entropy == data.toy_entropy("ring").nats
    assert torch.equal(ring.log_prob(ring.test[:5]), data.toy_log_prob("ring", ring.test[:5].double()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ring.train = ring.test  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        ring.split("dev")
    with pytest.raises(ValueError, match="unknown data set 'mnist'; valid names: digits, moons"):
        data.dataset("mnist")
    with pytest.raises(ValueError, match="the true density is unknown"):
        digits.log_prob(digits.test)


@pytest.mark.parametrize("move", data.MOVES, ids=lambda m: m.label("toy"))
def test_a_moved_dataset_moves_every_split_and_maps_back(move):
    toy, moved = data.dataset("moons"), data.dataset("moons", move)
    assert data.dataset("moons", data.Move(move.scale, move.shift)) is moved, "an equal move gives the same value"
    assert moved.label == move.label("moons") and moved.unmoved() is toy
    for split in ("train", "val", "test"):
        assert torch.allclose(moved.split(split), move.apply(toy.split(split)))
    assert torch.allclose(moved.unmove(moved.test), toy.test, atol=1e-5)
    assert torch.allclose(moved.log_prob(moved.test[:50]), move.log_prob("moons", moved.test[:50].double()))
    assert moved.entropy == pytest.approx(toy.entropy + 2 * math.log(move.scale))
    with pytest.raises(ValueError, match="only a 2-D toy can be moved"):
        data.dataset("digits", move)


def test_load_gives_the_caller_its_own_copy():
    x = data.load("moons", "train")
    x.zero_()
    assert data.dataset("moons").train.abs().sum() > 0, "a caller's change does not reach the shared value"


def test_the_data_names_are_spelled_once():
    from gdl_ref.bench.harness import valid_data
    from gdl_ref.models import registry

    assert data.DATASETS == ("digits", *data.TOY_NAMES)
    assert registry.datasets() == valid_data() == list(data.DATASETS)
    assert registry.FamilyConfig.DATA is data.DATASETS
