"""Tests for gdl_ref.train.fit: budgets, reproducibility, resume, validation, EMA, custom steps."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
from torch import nn

from gdl_ref.train import EMA, History, evaluate, fit

torch.set_num_threads(1)


@dataclasses.dataclass
class NoisyConfig:
    data: str = "moons"
    hidden: int = 16


class Noisy(nn.Module):
    """A small regression-to-noise model whose loss draws from the global RNG and uses dropout."""

    def __init__(self, config: NoisyConfig | None = None) -> None:
        super().__init__()
        self.config = config or NoisyConfig()
        self.net = nn.Sequential(nn.Linear(2, self.config.hidden), nn.Tanh(), nn.Dropout(0.1),
                                 nn.Linear(self.config.hidden, 2))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        noisy = x + 0.1 * torch.randn_like(x)  # like dequantisation: randomness inside the loss
        return ((self.net(noisy) - x) ** 2).mean()


def make(seed: int = 0) -> Noisy:
    torch.manual_seed(seed)
    return Noisy()


def data(n: int = 256, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_needs_a_budget():
    with pytest.raises(ValueError, match="steps, epochs, seconds"):
        fit(make(), data())


def test_seeded_runs_are_identical_and_seed_matters():
    a, b, c = make(), make(), make()
    ha = fit(a, data(), steps=15, batch_size=32, seed=1)
    fit(b, data(), steps=15, batch_size=32, seed=1)
    fit(c, data(), steps=15, batch_size=32, seed=2)
    assert same_weights(a, b) and not same_weights(a, c)
    assert isinstance(ha, History) and ha.steps == 15 and ha.stop_reason == "steps"
    assert [row["step"] for row in ha.train] == [10, 15] and ha.train[0]["loss"] > 0


def test_fit_trains_inside_a_callers_no_grad():
    """A caller's torch.no_grad() (a metric that trains its classifier on first use) must not stop fit."""
    model, reference = make(), make()
    with torch.no_grad():
        history = fit(model, data(), steps=5, batch_size=32, lr=1e-2)
        assert not torch.is_grad_enabled()  # fit restores the caller's mode
    assert history.steps == 5 and not same_weights(model, reference)


def test_training_reduces_the_loss():
    model, x = make(), data(512)
    before = evaluate(model, x)
    fit(model, x, epochs=8, batch_size=32, lr=1e-2)
    assert evaluate(model, x) < 0.5 * before


def test_epoch_budget_counts_full_batches_and_steps_bound_first():
    h = fit(make(), data(100), epochs=3, batch_size=32)  # 100 // 32 = 3 batches an epoch
    assert h.steps == 9 and h.stop_reason == "epochs"
    h = fit(make(), data(100), epochs=3, steps=4, batch_size=32)
    assert h.steps == 4 and h.stop_reason == "steps"


def test_seconds_budget_stops():
    h = fit(make(), data(), seconds=0.3, batch_size=32)
    assert h.stop_reason == "seconds" and h.steps > 0 and h.seconds >= 0.3


def test_resume_continues_identically(tmp_path):
    kw = dict(batch_size=32, seed=3, lr=3e-3, clip_grad=1.0, ema_decay=0.9, val_data=data(64, seed=9),
              eval_every=4)
    straight = make()
    h_straight = fit(straight, data(), steps=20, **kw)  # 256 / 32 = 8 steps an epoch: crosses epochs
    first = make()
    fit(first, data(), steps=10, checkpoint_dir=tmp_path / "ck", **kw)
    torch.manual_seed(1234)  # the global RNG is disturbed between the runs: resume must restore it
    resumed = make(seed=99)  # different initial weights: resume must overwrite them
    h_resumed = fit(resumed, data(), steps=20, resume=tmp_path / "ck", **kw)
    assert same_weights(straight, resumed)
    assert h_resumed.steps == 20 and h_resumed.val == h_straight.val  # (4, 8, 12, 16, 20)
    assert h_resumed.train == h_straight.train  # rows at steps 10, 20


def test_resume_between_log_rows_keeps_the_logged_means(tmp_path):
    straight = fit(make(), data(), steps=20, batch_size=32, log_every=8)
    fit(make(), data(), steps=5, batch_size=32, log_every=8, checkpoint_dir=tmp_path)
    resumed = fit(make(), data(), steps=20, batch_size=32, log_every=8, resume=tmp_path)
    assert resumed.train == straight.train  # rows at 8 (steps 1-8, across the resume), 16, 20


def test_checkpoint_every_and_resume_from_a_middle_checkpoint(tmp_path):
    straight = make()
    fit(straight, data(), steps=12, batch_size=32, seed=5)
    fit(make(), data(), steps=6, batch_size=32, seed=5, checkpoint_dir=tmp_path / "a", checkpoint_every=4)
    from gdl_ref.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "a").meta["step"] == 6
    # a run of 8 steps saving every 4; resume from the step-4 copy by stopping at 4
    fit(make(), data(), steps=4, batch_size=32, seed=5, checkpoint_dir=tmp_path / "b", checkpoint_every=2)
    resumed = make(7)
    fit(resumed, data(), steps=12, batch_size=32, seed=5, resume=tmp_path / "b")
    assert same_weights(straight, resumed)


def test_resume_rejects_a_different_batch_size(tmp_path):
    fit(make(), data(), steps=2, batch_size=32, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="batch_size=32"):
        fit(make(), data(), steps=4, batch_size=16, resume=tmp_path)


def test_validation_and_early_stopping_restore_the_best():
    x, val = data(256), data(128, seed=1)
    model = make()
    h = fit(model, x, val_data=val, steps=400, batch_size=32, lr=0.5, patience=2, eval_every=2)
    assert h.stop_reason == "early_stopping" and h.steps < 400
    assert h.best_val == min(v for _, v in h.val) and h.best_step is not None
    assert evaluate(model, val, seed=1) == pytest.approx(h.best_val, rel=1e-6)  # the best weights came back


def test_validation_does_not_change_training():
    a, b = make(), make()
    fit(a, data(), steps=10, batch_size=32)
    h = fit(b, data(), steps=10, batch_size=32, val_data=data(64, seed=2), eval_every=3)
    assert same_weights(a, b) and [s for s, _ in h.val] == [3, 6, 9, 10]


def test_ema_weights_are_returned():
    model = make()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    online = make()
    fit(online, data(), steps=5, batch_size=32)
    fit(model, data(), steps=5, batch_size=32, ema_decay=0.5)
    # ema_5 = 0.5^5 theta_0 + sum_k 0.5^(6-k) theta_k: between the start and the online weights
    w0, w_ema, w_on = start["net.0.weight"], model.state_dict()["net.0.weight"], online.state_dict()["net.0.weight"]
    assert not torch.equal(w_ema, w_on) and (w_ema - w0).norm() < (w_on - w0).norm()


def _ema_after_a_jump(decay: float) -> tuple[nn.Linear, EMA]:
    """A 1x1 weight, averaged from 1.0, that has just moved to 3.0."""
    lin = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema = EMA(lin, decay)
    with torch.no_grad():
        lin.weight.fill_(3.0)
    return lin, ema


def test_ema_warm_up_forgets_the_initial_weights():
    lin, ema = _ema_after_a_jump(0.999)
    ema.update(lin, step=0)  # d = min(0.999, 1/10)
    assert float(ema.shadow["weight"]) == pytest.approx(0.1 * 1 + 0.9 * 3)
    for step in range(1, 2000):
        ema.update(lin, step)
    assert float(ema.shadow["weight"]) == pytest.approx(3.0, abs=1e-3)  # a plain 0.999 would be 2.73


def test_ema_update_formula():
    lin, ema = _ema_after_a_jump(0.75)
    ema.update(lin)
    assert float(ema.shadow["weight"]) == pytest.approx(0.75 * 1 + 0.25 * 3)
    with pytest.raises(ValueError):
        EMA(lin, 1.5)


def test_grad_clipping_logs_the_norm_and_limits_the_update():
    model = make()
    h = fit(model, data() * 100, steps=1, batch_size=32, clip_grad=1e-3, log_every=1, lr=0.1)
    assert h.train[0]["grad_norm"] > 1e-3


class Pair(nn.Module):
    """Two parameters trained by two optimisers in a model-defined step (the GAN/EBM pattern)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.zeros(1))
        self.b = nn.Parameter(torch.zeros(1))
        self.calls: list[int] = []

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"a": torch.optim.SGD([self.a], lr=lr), "b": torch.optim.SGD([self.b], lr=lr)}

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((x - self.a) ** 2).mean() + ((y - self.b) ** 2).mean()

    def training_step(self, batch, optimizers, step):
        x, y = batch
        self.calls.append(step)
        optimizers["a"].zero_grad()
        la = ((x - self.a) ** 2).mean()
        la.backward()
        optimizers["a"].step()
        if step % 2 == 0:  # b trained every other step
            optimizers["b"].zero_grad()
            lb = ((y - self.b) ** 2).mean()
            lb.backward()
            optimizers["b"].step()
        return {"loss_a": la.item()}


def test_custom_training_step_and_tuple_data():
    model = Pair()
    x, y = torch.full((64,), 2.0), torch.full((64,), -1.0)
    h = fit(model, (x, y), val_data=(x, y), steps=200, batch_size=16, lr=0.1, log_every=50)
    assert model.calls[:3] == [0, 1, 2] and len(model.calls) == 200
    assert model.a.item() == pytest.approx(2.0, abs=1e-3) and model.b.item() == pytest.approx(-1.0, abs=1e-3)
    assert set(h.train[0]) == {"step", "loss_a"} and h.val[-1][1] < 1e-5


def test_tuple_data_reaches_loss_and_unequal_lengths_fail():
    with pytest.raises(ValueError, match="unequal length"):
        fit(Pair(), (torch.zeros(4), torch.zeros(5)), steps=1)


def test_amp_on_cpu_warns_and_trains_in_float32():
    a, b = make(), make()
    fit(a, data(), steps=3, batch_size=32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(b, data(), steps=3, batch_size=32, amp=True)
    assert any("CUDA only" in str(w.message) for w in caught) and same_weights(a, b)


def test_non_finite_loss_is_reported():
    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def loss(self, x):
            return self.w * float("nan")

    with pytest.raises(FloatingPointError, match="step 1"):
        fit(Bad(), data(), steps=3)


def test_progress_bar_writes_only_when_asked(capsys):
    fit(make(), data(), steps=3, batch_size=32)
    assert capsys.readouterr().err == ""
    fit(make(), data(), steps=3, batch_size=32, progress=True)
    assert "3/3" in capsys.readouterr().err


@pytest.mark.gpu
def test_cuda_bf16_autocast_trains():
    model = make()
    h = fit(model, data(), steps=20, batch_size=32, device="cuda", amp=True, ema_decay=0.9)
    assert next(model.parameters()).device.type == "cuda" and h.steps == 20
    assert next(model.parameters()).dtype == torch.float32  # autocast: weights stay float32
    a, b = make(), make()
    fit(a, data(), steps=5, batch_size=32, device="cuda", seed=4)
    fit(b, data(), steps=5, batch_size=32, device="cuda", seed=4)
    assert torch.allclose(a.net[0].weight, b.net[0].weight, atol=1e-6)


# ----------------------------------------------------------------------------- what ran

def test_history_records_the_optimisers_settings_and_steps_apart():
    model = Pair()
    x, y = torch.full((64,), 2.0), torch.full((64,), -1.0)
    h = fit(model, (x, y), steps=9, batch_size=16, lr=0.1)
    assert h.hparams == {"a": {"type": "SGD", "lr": 0.1, "weight_decay": 0.0, "momentum": 0},
                         "b": {"type": "SGD", "lr": 0.1, "weight_decay": 0.0, "momentum": 0}}
    assert h.optimizer_steps == {"a": 9, "b": 5}  # b steps at 0, 2, 4, 6, 8
    h = fit(make(), data(), steps=3, batch_size=32, lr=2e-3, weight_decay=0.01)
    assert h.hparams["model"]["type"] == "AdamW" and h.hparams["model"]["lr"] == 2e-3
    assert h.hparams["model"]["weight_decay"] == 0.01 and h.hparams["model"]["betas"] == (0.9, 0.999)
    assert h.optimizer_steps == {"model": 3}


def test_optimizer_steps_continue_across_a_resume(tmp_path):
    x, y = torch.full((64,), 2.0), torch.full((64,), -1.0)
    fit(Pair(), (x, y), steps=5, batch_size=16, checkpoint_dir=tmp_path)
    h = fit(Pair(), (x, y), steps=9, batch_size=16, resume=tmp_path)
    assert h.optimizer_steps == {"a": 9, "b": 5}


class OwnSettings(Pair):
    """Optimisers with their own learning rate and weight decay, whatever fit passes."""

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"a": torch.optim.AdamW([self.a], lr=1e-4, weight_decay=0.5),
                "b": torch.optim.AdamW([self.b], lr=1e-4, weight_decay=0.5)}


@pytest.mark.parametrize("kwargs, argument", [
    ({"lr": 0.1}, "lr=0.1"),
    ({"weight_decay": 0.01}, "weight_decay=0.01"),
    ({"clip_grad": 1.0}, "clip_grad=1.0"),
])
def test_fit_warns_when_the_models_own_step_ignores_an_argument(kwargs, argument):
    x = (torch.zeros(32), torch.zeros(32))
    with pytest.warns(UserWarning, match=rf"fit\(\.\.\., {argument}\) is ignored: OwnSettings") as caught:
        h = fit(OwnSettings(), x, steps=1, batch_size=16, **kwargs)
    assert len(caught) == 1 and h.hparams["a"]["lr"] == 1e-4  # the record holds what ran


def test_fit_is_silent_when_the_arguments_are_used():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(OwnSettings(), (torch.zeros(32), torch.zeros(32)), steps=1, batch_size=16)  # fit's defaults
        fit(Pair(), (torch.zeros(32), torch.zeros(32)), steps=1, batch_size=16, lr=0.1)  # SGD holds 0.1
        fit(make(), data(), steps=1, batch_size=32, lr=0.1, weight_decay=0.01, clip_grad=1.0)


# ----------------------------------------------------------------------------- interruption, checkpoint intervals

def test_should_stop_ends_the_run_with_a_checkpoint_that_resumes_identically(tmp_path):
    kw = dict(batch_size=32, seed=2, ema_decay=0.9, val_data=data(64, seed=9), eval_every=4, log_every=3)
    straight = make()
    h_straight = fit(straight, data(), steps=15, **kw)
    calls = []

    def after_seven() -> bool:
        calls.append(1)
        return len(calls) > 7  # asked before each step: True before step 8

    h = fit(make(), data(), steps=15, checkpoint_dir=tmp_path, should_stop=after_seven, **kw)
    assert h.stop_reason == "interrupted" and h.steps == 7 and h.val[-1][0] == 4  # no validation at the stop
    from gdl_ref.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path).meta["step"] == 7
    resumed = make(seed=5)
    h_resumed = fit(resumed, data(), steps=15, resume=tmp_path, **kw)
    assert same_weights(straight, resumed) and h_resumed.val == h_straight.val and h_resumed.train == h_straight.train


def test_checkpoint_every_seconds_writes_during_the_run(tmp_path, monkeypatch):
    from gdl_ref import train

    steps_saved = []
    monkeypatch.setattr(train, "save_checkpoint", lambda path, model, step, **kw: steps_saved.append(step))
    clock = iter(range(0, 10_000, 10))  # each reading of the clock: 10 s later
    monkeypatch.setattr(train.time, "perf_counter", lambda: float(next(clock)))
    fit(make(), data(), steps=4, batch_size=32, checkpoint_dir=tmp_path, checkpoint_every="15s")
    assert steps_saved[:-1] and steps_saved[-1] == 4  # some during the run, then the final one


@pytest.mark.parametrize("every, expected", [(100, (100, None)), ("100", (100, None)), ("30s", (None, 30.0)),
                                             ("0.5s", (None, 0.5)), (None, (None, None))])
def test_parse_every(every, expected):
    from gdl_ref.train import parse_every

    assert parse_every(every) == expected


@pytest.mark.parametrize("every", ["0", "-3", "nans", "infs", "ten", "3m", "1.5"])
def test_parse_every_rejects_with_the_argument_named(every):
    from gdl_ref.train import parse_every

    with pytest.raises(ValueError, match=f"checkpoint_every: .*got '{every}'"):
        parse_every(every)
