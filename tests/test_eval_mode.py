"""The evaluation context: the caller's random stream and every submodule's mode come back as they were."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gdl_ref.eval_mode import cuda_devices, evaluation
from gdl_ref.likelihood import evaluating


class Noisy(nn.Module):
    """Dropout between two layers, and a method that draws from the global generator in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(3, 3)
        self.drop = nn.Dropout(0.5)
        self.second = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))

    @evaluating
    def sample(self, n: int) -> torch.Tensor:
        assert not any(m.training for m in self.modules())
        return torch.randn(n, 3)


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def _mixed() -> Noisy:
    model = Noisy().train()
    model.drop.eval()
    model.second[1].eval()
    return model


def test_caller_stream_untouched() -> None:
    model = Noisy()
    torch.manual_seed(5)
    expected = torch.rand(4)
    torch.manual_seed(5)
    with evaluation(model, seed=123):
        torch.rand(100)
    assert torch.equal(torch.rand(4), expected)


def test_seed_none_leaves_caller_stream_untouched() -> None:
    model = Noisy()
    torch.manual_seed(6)
    expected = torch.rand(4)
    torch.manual_seed(6)
    with evaluation(model):
        inside = torch.rand(4)
    assert torch.equal(inside, expected)  # the fork starts from the caller's state
    assert torch.equal(torch.rand(4), expected)  # and the caller's stream has not moved


def test_two_seeded_contexts_draw_the_same() -> None:
    model = Noisy()
    with evaluation(model, seed=7):
        first = torch.randn(10)
    torch.rand(3)  # the caller's stream moves between them
    with evaluation(model, seed=7):
        second = torch.randn(10)
    assert torch.equal(first, second)


def test_each_submodule_mode_restored() -> None:
    model = _mixed()
    before = _modes(model)
    assert True in before and False in before
    with evaluation(model):
        assert not any(_modes(model))
    assert _modes(model) == before


def test_modes_and_stream_restored_when_the_body_raises() -> None:
    model = _mixed()
    before = _modes(model)
    torch.manual_seed(8)
    expected = torch.rand(4)
    torch.manual_seed(8)
    with pytest.raises(RuntimeError, match="boom"):
        with evaluation(model, seed=1):
            torch.rand(50)
            raise RuntimeError("boom")
    assert _modes(model) == before
    assert torch.equal(torch.rand(4), expected)


def test_no_grad_is_a_keyword() -> None:
    model = Noisy()
    x = torch.randn(2, 3)
    with evaluation(model):
        assert model.first(x).requires_grad
    with evaluation(model, no_grad=True):
        assert not model.first(x).requires_grad
    assert torch.is_grad_enabled()


def test_unforked_context_moves_the_caller_stream_and_refuses_a_seed() -> None:
    model = Noisy()
    torch.manual_seed(9)
    first = torch.rand(4)
    torch.manual_seed(9)
    with evaluation(model, fork=False):
        torch.rand(4)
    assert not torch.equal(torch.rand(4), first)
    with pytest.raises(ValueError, match="seed"):
        with evaluation(model, seed=0, fork=False):
            pass


def test_decorator_restores_modes_and_shares_the_stream() -> None:
    model = _mixed()
    before = _modes(model)
    torch.manual_seed(10)
    expected = torch.randn(2, 3)
    torch.manual_seed(10)
    assert torch.equal(model.sample(2), expected)
    assert _modes(model) == before


def test_cpu_model_forks_no_cuda_device() -> None:
    assert cuda_devices(Noisy()) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_stream_of_the_model_device_untouched() -> None:
    model = Noisy().cuda()
    assert cuda_devices(model) == [torch.cuda.current_device()]
    torch.manual_seed(11)
    expected = torch.rand(4, device="cuda")
    torch.manual_seed(11)
    with evaluation(model, seed=2):
        torch.rand(100, device="cuda")
    assert torch.equal(torch.rand(4, device="cuda"), expected)
