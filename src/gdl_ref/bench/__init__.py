"""The benchmark harness (``gdl-ref bench``) and the report it renders: ``harness`` trains and scores, ``report`` writes tables."""

from gdl_ref.bench.harness import (Budget, Job, Peer, add_parser, bench, budgets, command_line, load_peers,
                                   jobs, main, plan, run_job, run_one, valid_families, what_ran)

__all__ = ["Budget", "Job", "Peer", "add_parser", "bench", "budgets", "command_line", "jobs", "load_peers", "main",
           "plan", "run_job", "run_one", "valid_families", "what_ran"]
