"""The rows of a benchmark run as they finish, so that an interrupted run can go on where it stopped.

``gdl-ref bench ... --json FILE`` appends each finished row to ``FILE.partial.jsonl`` and removes that file
once ``FILE`` is written. If the run stops first (a closed laptop, a killed session), the same command with
``--resume`` runs only the jobs that have no row there. A step budget makes that safe: a job's figures do not
depend on when it ran, so a resumed run gives the rows an unbroken one would. What does depend on it, the
throughput and the load average, is measured per row as before.

Each line is JSON: a ``{"sitting": k, "command": ...}`` line as each sitting starts, then one
``{"sitting": k, "elapsed": s, "job": ..., "row": ...}`` line per finished job (``elapsed``: seconds since
that sitting started). The run's wall time is the sum over sittings of their last ``elapsed``, plus the
last sitting's own; the time a killed sitting spent on unfinished jobs is not counted.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gdl_ref.bench.job import Job
from gdl_ref.data import Move
from gdl_ref.records import jsonable

__all__ = ["RowLog", "partial_path"]

SUFFIX = ".partial.jsonl"


def partial_path(json_path: Path) -> Path:
    """``FILE.partial.jsonl`` beside ``--json FILE``."""
    return json_path.with_name(json_path.name + SUFFIX)


def _job_key(job: Job) -> dict[str, Any]:
    key = asdict(job)
    key["move"] = None if job.move is None else [job.move.scale, job.move.shift]
    return key


def _job_of(key: dict[str, Any]) -> Job:
    move = key.get("move")
    return Job(**{**key, "move": None if move is None else Move(*move)})


class RowLog:
    """The ``.partial.jsonl`` file of one run: the rows of its earlier sittings, and the rows of this one."""

    def __init__(self, path: Path, command: str, resume: bool) -> None:
        """Open ``path`` for the run of ``command``.

        Without ``resume`` the file must not exist (it holds an unfinished run: ``ValueError`` says so and
        touches nothing). With ``resume`` an existing file must be of the same command; its rows become
        ``done``. Either way a new sitting starts.
        """
        self.path, self.done, self.earlier_seconds, self.sittings = path, {}, 0.0, 0
        if path.exists():
            if not resume:
                raise ValueError(f"{path} holds the rows of an unfinished run; pass --resume to go on from them, "
                                 "or move the file away to start again")
            self._read(command)
        self.sittings += 1
        self.started = time.perf_counter()
        self._append({"sitting": self.sittings, "command": command})

    def _read(self, command: str) -> None:
        last: dict[int, float] = {}
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                sitting = int(entry["sitting"])
                if "command" in entry:
                    if entry["command"] != command:
                        raise ValueError(f"{self.path}:{number}: a run of `{entry['command']}`, not of "
                                         f"`{command}`; resume it with its own command")
                    last.setdefault(sitting, 0.0)
                    continue
                if "error" not in entry["row"]:  # a failed job runs again
                    self.done[_job_of(entry["job"])] = entry["row"]
                last[sitting] = max(last.get(sitting, 0.0), float(entry["elapsed"]))
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                if number == len(lines):  # the last line, cut short when the run was killed: that job runs again
                    self.path.write_text("".join(f"{kept}\n" for kept in lines[:-1]), encoding="utf-8")
                    break  # and the line goes, so that the next sitting's lines start on a line of their own
                raise ValueError(f"{self.path}:{number}: not a row of a bench run ({type(err).__name__}: {err})") \
                    from None
        self.sittings = max(last, default=0)
        self.earlier_seconds = sum(last.values())

    def _append(self, entry: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, default=jsonable) + "\n")
            f.flush()

    def add(self, job: Job, row: dict[str, Any]) -> None:
        """Record a finished job's row."""
        self._append({"sitting": self.sittings, "elapsed": time.perf_counter() - self.started,
                      "job": _job_key(job), "row": row})

    def wall_seconds(self) -> float:
        """The run's wall time so far: the earlier sittings' (to their last row) and this one's."""
        return self.earlier_seconds + time.perf_counter() - self.started

    def close(self) -> None:
        """Remove the file: the run's JSON now holds every row."""
        self.path.unlink(missing_ok=True)
