#!/usr/bin/env bash
# The recorded benchmark run in parts, for a machine too slow to run benchmarks/record.sh in time: the same
# budgets (120 s digits, 60 s toys) and seeds (0, 1, 2), split into one part per seed and family group, run in
# two lanes side by side with one torch thread each (two cores, no lane waits on the other's threads). The peers
# run on the digits only. Then the parts are merged into one run and the benchmarks page is regenerated.
# Run from anywhere:
#   pip install -r benchmarks/requirements.txt   (the peers: zuko, diffusers)
#   bash benchmarks/record_lanes.sh [parts folder, default benchmarks/results/parts-<date>]
# A part whose JSON exists is not run again, so an interrupted recording resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
GDL_REF=${GDL_REF:-gdl-ref}
PYTHON=${PYTHON:-python}
day=$(date -u +%Y-%m-%d)
parts=${1:-benchmarks/results/parts-$day}
out="benchmarks/results/$day-cpu.json"
if [ -e "$out" ]; then
  echo "record_lanes.sh: $out exists; move it away or rename it first (nothing was overwritten)" >&2
  exit 2
fi
mkdir -p "$parts"
toys=moons,8gaussians,checkerboard,ring
part() {  # part NAME BENCH-ARGS...: one gdl-ref bench run with one torch thread, skipped when its JSON exists
  local name=$1; shift
  [ -e "$parts/$name.json" ] && return 0
  echo "$(date -u +%T) start $name, load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$parts/lanes.log"
  local rc=0
  "$GDL_REF" bench "$@" --threads 1 --json "$parts/$name.json" --quiet > "$parts/$name.out" 2>&1 || rc=$?
  echo "$(date -u +%T) end $name, exit $rc, load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$parts/lanes.log"
}
# Lane A and lane B each take about the same time at one thread: a digits part costs about half an hour a seed,
# a toy part with its moved toys about a quarter of an hour. The spline flow's moved toys run under seed 0 only
# (a seed of them costs 17 minutes at one thread); its plain toys run under every seed.
laneA() {
  part digits-s0 all --data digits --budget-seconds 120 --seeds 0 --peers
  part digits-s2 all --data digits --budget-seconds 120 --seeds 2 --peers
  part ar-s2 autoregressive --data "$toys" --budget-seconds 120 --seeds 2 --moved
  part gan-s2 gan --data 8gaussians --budget-seconds 120 --seeds 2
  part ebm-s2 ebm --data 8gaussians --budget-seconds 120 --seeds 2
  part flow-plain-s2 flow --data "$toys" --budget-seconds 120 --seeds 2
}
laneB() {
  part ar-s0 autoregressive --data "$toys" --budget-seconds 120 --seeds 0 --moved
  part flow-s0 flow --data "$toys" --budget-seconds 120 --seeds 0 --moved
  part gan-s0 gan --data 8gaussians --budget-seconds 120 --seeds 0
  part ebm-s0 ebm --data 8gaussians --budget-seconds 120 --seeds 0
  part digits-s1 all --data digits --budget-seconds 120 --seeds 1 --peers
  part ar-s1 autoregressive --data "$toys" --budget-seconds 120 --seeds 1 --moved
  part gan-s1 gan --data 8gaussians --budget-seconds 120 --seeds 1
  part ebm-s1 ebm --data 8gaussians --budget-seconds 120 --seeds 1
  part flow-plain-s1 flow --data "$toys" --budget-seconds 120 --seeds 1
}
laneA & laneB & wait
"$PYTHON" benchmarks/merge_runs.py "$parts"/*.json --out "$out"
"$PYTHON" benchmarks/render_page.py "$out"
