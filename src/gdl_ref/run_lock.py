"""One run per checkpoint folder: an exclusive advisory lock held for the run's whole life.

The lock is ``fcntl.flock`` on the file ``.NAME.lock`` beside the checkpoint folder ``NAME`` (a sibling,
so it is never inside a checkpoint that is published or replaced by a rename). The kernel releases an
flock when its process dies, so a killed run leaves no stale lock: the file may stay, and the next run
takes it. The holder writes its PID into the file once it holds the lock, so that a refused run can
name the process in its way. A run that ends normally removes the file.

The lock is reentrant within a process (``gdl-ref train`` takes it before any work, and ``fit`` takes
it again around its loop); a second process, or a second open of the file, is refused at once with
:class:`FolderInUse`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FolderInUse", "lock_path", "hold", "holder_pid"]


class FolderInUse(RuntimeError):
    """The folder's lock is held by another process (``pid``: its PID, None when it has not written it yet)."""

    def __init__(self, folder: Path, pid: int | None, lock: Path) -> None:
        self.folder, self.pid, self.lock = folder, pid, lock
        who = f"PID {pid}" if pid is not None else "a process that has not written its PID yet"
        super().__init__(f"{folder} is in use by another run ({who}, holding {lock}); wait for it to end, "
                         f"or choose another folder")


@dataclass
class _Held:
    fd: int
    count: int
    pid: int  # the process that took it: a forked child does not hold it for itself


_held: dict[Path, _Held] = {}
_guard = threading.Lock()


def lock_path(folder: str | Path) -> Path:
    """The lock file of a checkpoint folder: ``.NAME.lock`` beside it, in its parent."""
    folder = Path(folder)
    return folder.with_name(f".{folder.name}.lock")


def holder_pid(lock: str | Path, wait: float = 0.2) -> int | None:
    """The PID written in a lock file (waiting up to ``wait`` seconds for a holder that is writing it), or None."""
    deadline = time.monotonic() + wait
    while True:
        try:
            text = Path(lock).read_text(encoding="ascii", errors="replace")[:32].strip()
        except OSError:
            text = ""
        if text.isdigit():
            return int(text)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def _acquire(folder: Path, lock: Path) -> int:
    """Open and flock ``lock`` without waiting; the descriptor, once the file at ``lock`` is the one locked."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderInUse(folder, holder_pid(lock), lock) from None
            raise OSError(err.errno, f"{lock}: cannot take the run lock: {err.strerror}") from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else a holder removed the file between our open and flock: lock the new one
            return fd
        os.close(fd)


@contextmanager
def hold(folder: str | Path) -> Iterator[Path]:
    """Hold the run lock of checkpoint folder ``folder`` for the block; FolderInUse if another process holds it.

    Creates the folder's parent if needed (not the folder). Yields the lock file's path.
    """
    folder = Path(folder)
    lock = lock_path(folder)
    key = lock.absolute()
    with _guard:
        held = _held.get(key)
        if held is not None and held.pid == os.getpid():
            held.count += 1
        else:
            fd = _acquire(folder, lock)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            held = _held[key] = _Held(fd, 1, os.getpid())
    try:
        yield lock
    finally:
        with _guard:
            held.count -= 1
            if held.count == 0:
                del _held[key]
                lock.unlink(missing_ok=True)  # while still locked: a process that opened it retries on a new file
                os.close(held.fd)
