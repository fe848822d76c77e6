#!/usr/bin/env bash
# The recorded benchmark run, as one command: every family for its budget in optimiser steps
# (gdl_ref.bench.budgets.RECORDED_STEPS) on seeds 0, 1 and 2, the peers beside it and the 2-D density families also on
# moved toys (x0.1, x10, +5), on this machine's CPU; then the benchmarks page regenerated from the JSON.
#
# The figures depend on the steps, not on the machine's speed. Two choices keep the whole run affordable on 2 cores,
# and the page states both:
#   --workers 2        two runs at a time, each in its own process with one torch thread: these models are too small
#                      to keep two threads busy, so two one-thread runs make about 1.5 times the steps of one
#                      two-thread run (a run's bits depend on its thread count only through float rounding);
#   --peer-seeds 0 --moved-seeds 0
#                      the peers and the moved toys on seed 0 only: together they would otherwise cost more than
#                      our own rows; a peer is compared with our seed-0 row and with our spread over seeds.
# The JSON records the load average at the start and the end, the throughput of every run and the wall time.
# Rows are kept in <json>.partial.jsonl as they finish: if the run is interrupted, `bash benchmarks/record.sh --resume`
# goes on with it (same figures; the wall time counts both sittings). Run from anywhere:
#   pip install -r benchmarks/requirements.txt   (the peers: zuko, diffusers, and what the next two import)
#   pip install --no-deps -r benchmarks/requirements-no-deps.txt   (denoising-diffusion-pytorch, torchcfm)
#   bash benchmarks/record.sh [--resume] [extra gdl-ref bench options, e.g. --note "idle machine"]
set -euo pipefail
cd "$(dirname "$0")/.."
GDL_REF=${GDL_REF:-gdl-ref}
PYTHON=${PYTHON:-python}
out="benchmarks/results/$(date -u +%Y-%m-%d)-cpu.json"
for arg in "$@"; do
  if [ "$arg" = "--resume" ]; then  # go on with the newest unfinished run, whatever day it started
    unfinished=$(ls benchmarks/results/*-cpu.json.partial.jsonl 2>/dev/null | sort | tail -n 1 || true)
    if [ -z "$unfinished" ]; then
      echo "record.sh: --resume, but no benchmarks/results/*-cpu.json.partial.jsonl holds an unfinished run" >&2
      exit 2
    fi
    out=${unfinished%.partial.jsonl}
  fi
done
if [ -e "$out" ]; then
  echo "record.sh: $out exists; move it away or rename it first (nothing was overwritten)" >&2
  exit 2
fi
echo "record.sh: load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)" >&2
status=0
"$GDL_REF" bench all --seeds 0 1 2 --peers --peer-seeds 0 --moved --moved-seeds 0 --workers 2 --json "$out" "$@" || status=$?
echo "record.sh: load average after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)" >&2
if [ -e "$out" ]; then
  "$PYTHON" benchmarks/render_page.py "$out"   # a run with a failed row is shown on the page too
fi
exit "$status"
