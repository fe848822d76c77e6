#!/usr/bin/env bash
# The recorded benchmark run: every family and its peers for its budget in optimiser steps
# (gdl_ref.bench.budgets.RECORDED_STEPS), 3 seeds each, on this machine's CPU, with the 2-D density families also on
# moved toys (x0.1, x10, +5), then the benchmarks page regenerated from the JSON. The figures depend on the steps, not
# on the machine's speed; the toy runs go two at a time (--toy-workers 2, one torch thread each) only so that the
# whole run fits in its wall time on 2 cores. The JSON records the load average at the start and the end, the
# throughput of every run and the wall time of the whole run; the page shows them. Run from anywhere:
#   pip install -r benchmarks/requirements.txt   (the peers: zuko, diffusers, and what the next two import)
#   pip install --no-deps -r benchmarks/requirements-no-deps.txt   (denoising-diffusion-pytorch, torchcfm)
#   bash benchmarks/record.sh [extra gdl-ref bench options, e.g. --note "idle machine"]
set -euo pipefail
cd "$(dirname "$0")/.."
GDL_REF=${GDL_REF:-gdl-ref}
PYTHON=${PYTHON:-python}
out="benchmarks/results/$(date -u +%Y-%m-%d)-cpu.json"
if [ -e "$out" ]; then
  echo "record.sh: $out exists; move it away or rename it first (nothing was overwritten)" >&2
  exit 2
fi
echo "record.sh: load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)" >&2
status=0
"$GDL_REF" bench all --seeds 0 1 2 --peers --moved --toy-workers 2 --json "$out" "$@" || status=$?
echo "record.sh: load average after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)" >&2
"$PYTHON" benchmarks/render_page.py "$out"   # a failed run is shown on the page too
exit "$status"
