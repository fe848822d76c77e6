"""Train one family on one data set under several configs, the benchmark's way, and print what each reaches.

    python benchmarks/config_trials.py flow digits '[{}, {"hidden": 256}, {"_recipe": {"weight_decay": 0.1}}]'

Each config is a dict of config overrides (``registry.build``) with an optional ``_recipe`` of ``fit`` overrides.
Each trial trains with the family's recipe and early stopping on the val split for the family's recorded step
budget (``gdl_ref.bench.budgets``; ``--steps`` replaces it) under each ``--seeds``, and prints one JSON line: the overrides, parameters, steps, the best step, why it stopped, the
best validation loss and the test NLL (bits/dim on digits, the paired KL on a toy). The digits flow's choice of
spline couplings was made with it (the flows' config docstring).
"""

from __future__ import annotations

import argparse
import json

import torch

from gdl_ref.bench.budgets import recorded_budget
from gdl_ref.data import dataset
from gdl_ref.evaluate import evaluate_density
from gdl_ref.models import registry
from gdl_ref.train import fit, recipe


def trial(family: str, data: str, config: dict, steps: int, seed: int) -> dict:
    config = dict(config)
    fit_overrides = config.pop("_recipe", {})
    rec = {**recipe(family, data), **fit_overrides}
    torch.manual_seed(seed)
    model = registry.build(family, data, **config)
    values = dataset(data)
    history = fit(model, values.train.clone(), val_data=values.val if rec.get("patience") else None, steps=steps,
                  seed=seed, progress=False, **rec)
    test = evaluate_density(model, values, seed=seed + 1)
    figure = {"test_bits_per_dim": test.bits_per_dim} if values.images else {"kl": test.kl, "kl_stderr": test.kl_stderr}
    return {"config": config, "recipe": fit_overrides, "seed": seed, "params": sum(p.numel() for p in model.parameters()),
            "steps": history.steps, "best_step": history.best_step, "stop": history.stop_reason,
            "seconds": round(history.seconds, 1), "best_val": history.best_val, **figure}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family")
    parser.add_argument("data")
    parser.add_argument("configs", type=json.loads, help="a JSON list of override dicts")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the recorded budget)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)
    steps = args.steps or recorded_budget(args.family, args.data).steps
    for config in args.configs:
        for seed in args.seeds:
            print(json.dumps(trial(args.family, args.data, config, steps, seed)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
