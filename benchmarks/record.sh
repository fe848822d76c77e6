#!/usr/bin/env bash
# The recorded benchmark run: every family and its peers for 120 s each (toys 60 s) on this machine's CPU,
# then the benchmarks page regenerated from the JSON. Run from anywhere; takes about an hour on 2 cores.
#   pip install -r benchmarks/requirements.txt   (the peers: zuko, diffusers)
#   bash benchmarks/record.sh [extra gdl-ref bench options, e.g. --note "idle machine"]
set -euo pipefail
cd "$(dirname "$0")/.."
GDL_REF=${GDL_REF:-gdl-ref}
PYTHON=${PYTHON:-python}
out="benchmarks/results/$(date -u +%Y-%m-%d)-cpu.json"
status=0
"$GDL_REF" bench all --budget-seconds 120 --peers --json "$out" "$@" || status=$?
"$PYTHON" benchmarks/render_page.py "$out"   # a failed run is shown on the page too
exit "$status"
