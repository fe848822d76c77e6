"""One run per checkpoint folder: a second process is refused at once, naming the folder and the holder's PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from gdl_ref import cli, run_lock
from gdl_ref.train import fit

pytestmark = pytest.mark.reliability

HOLDER = """
import sys, time
from gdl_ref import run_lock
with run_lock.hold(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def _hold_in_other_process(folder: Path) -> subprocess.Popen:
    """A second Python process that takes the run lock of ``folder`` and sleeps; returned once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def held(tmp_path):
    run = tmp_path / "run"
    proc = _hold_in_other_process(run / "checkpoint")
    yield run, proc
    proc.kill()
    proc.wait()


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.w) ** 2).mean()


@pytest.mark.parametrize("extra", [[], ["--force"]])
def test_a_second_train_into_a_folder_in_use_is_refused(held, capsys, extra):
    run, proc = held
    (run / "metrics.json").write_text("{}")  # what --force would delete
    status = cli.main(["train", "flow", "--data", "moons", "--steps", "1", "--out", str(run), "--no-progress",
                       *extra])
    err = capsys.readouterr().err.strip()
    assert status == 1
    assert len(err.splitlines()) == 1 and f"{run / 'checkpoint'} is in use by another run (PID {proc.pid}" in err, err
    assert (run / "metrics.json").read_text() == "{}"


def test_resume_into_a_folder_in_use_is_refused(held, capsys):
    run, proc = held
    assert cli.main(["train", "--resume", str(run), "--steps", "1"]) == 1
    assert f"(PID {proc.pid}," in capsys.readouterr().err


def test_fit_into_a_folder_in_use_raises(held):
    run, proc = held
    with pytest.raises(run_lock.FolderInUse, match=f"PID {proc.pid}") as info:
        fit(_Tiny(), torch.zeros(8, 2), steps=1, checkpoint_dir=run / "checkpoint")
    assert info.value.pid == proc.pid and info.value.folder == run / "checkpoint"


def test_the_lock_file_is_beside_the_checkpoint_and_removed_after_a_run(tmp_path):
    ckpt = tmp_path / "run" / "checkpoint"
    with run_lock.hold(ckpt) as lock:
        assert lock == tmp_path / "run" / ".checkpoint.lock"
        assert lock.read_text().strip() == str(os.getpid())
        with run_lock.hold(ckpt):  # reentrant in one process
            pass
        assert lock.exists()
    assert not lock.exists()
    fit(_Tiny(), torch.zeros(8, 2), steps=1, checkpoint_dir=ckpt)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint"]
    assert not list(ckpt.glob("*.lock"))


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, capsys):
    run = tmp_path / "run"
    proc = _hold_in_other_process(run / "checkpoint")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run_lock.lock_path(run / "checkpoint").read_text().strip() == str(proc.pid)  # the file stays
    # past the lock: the resume goes on to find no checkpoint there (exit 1), not a folder in use
    assert cli.main(["train", "--resume", str(run), "--steps", "1"]) == 1
    assert "in use" not in capsys.readouterr().err
    fit(_Tiny(), torch.zeros(8, 2), steps=1, checkpoint_dir=run / "checkpoint")
    assert (run / "checkpoint").is_dir()


def test_a_training_run_holds_its_folder(tmp_path, capsys):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gdl_ref.cli", "train", "flow", "--data", "moons", "--steps",
                             "1000000", "--out", str(run), "--no-progress"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lock = run_lock.lock_path(run / "checkpoint")
        deadline = time.monotonic() + 60
        while run_lock.holder_pid(lock, wait=0) != proc.pid:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert cli.main(["train", "flow", "--data", "ring", "--steps", "1", "--out", str(run), "--force"]) == 1
        assert f"is in use by another run (PID {proc.pid}," in capsys.readouterr().err
    finally:
        proc.kill()
        proc.wait()
