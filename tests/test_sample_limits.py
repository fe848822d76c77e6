"""`gdl-ref sample` draws in batches with a progress bar, and refuses before drawing what would not fit in memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gdl_ref import cli
from gdl_ref.sampling import SAMPLE_MEMORY_LIMIT, SamplesTooLarge, check_fits, draw

torch.set_num_threads(1)


class Points(torch.nn.Module):
    """Samples of shape (2,), float32: 8 bytes each."""

    def sample(self, n: int) -> torch.Tensor:
        return torch.randn(n, 2)  # (n, 2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "flow"
    assert cli.main(["train", "flow", "--data", "8gaussians", "--steps", "2", "--out", str(out), "--no-progress",
                     "--samples", "64"]) == 0
    return out / "checkpoint"


@pytest.mark.reliability
def test_the_refusal_names_n_and_the_limit(checkpoint, tmp_path, capsys):
    out = tmp_path / "s.npy"
    assert cli.main(["sample", str(checkpoint), "--n", "1000000000", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].endswith(f"argument --n: 1000000000 samples of shape (2,) take 7.45 GiB, over the limit of "
                           f"1 GiB; ask for at most {SAMPLE_MEMORY_LIMIT // 8}")
    assert not out.exists()


def test_a_request_that_fits_is_drawn_in_batches_with_a_bar(checkpoint, tmp_path, capsys):
    out = tmp_path / "s.npy"
    assert cli.main(["sample", str(checkpoint), "--n", "1200", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1200/1200" in err and "sample" in err  # tqdm's bar, counting samples over three batches of 512
    assert np.load(out).shape == (1200, 2)


def test_check_fits_measures_one_sample_and_leaves_the_random_state():
    state = torch.get_rng_state()
    check_fits(Points(), 100, limit=800)  # 100 x 8 bytes: exactly the limit
    with pytest.raises(SamplesTooLarge, match=r"101 samples of shape \(2,\) .* ask for at most 100") as info:
        check_fits(Points(), 101, limit=800)
    assert info.value.most == 100 and torch.equal(state, torch.get_rng_state())


def test_draw_in_batches_is_the_same_as_in_one():
    assert torch.equal(draw(Points(), 1200, seed=4, batch=512), draw(Points(), 1200, seed=4, batch=512, progress=True))
