#!/usr/bin/env bash
# Run every benchmark, one after the other (never in parallel: they would disturb each other).
#   bench/run.sh          the bounded set (about 12 min on 2 cores): dispatch lag one run per variant
#                         with a 40 s window, throughput at 300 jobs, reconcile at 10,000 tasks
#   bench/run.sh --full   the sizes reported in BENCHMARKS.md (about 35 min): dispatch lag 3 runs of
#                         the recorder and rq-scheduler variants with a 45 s window, throughput at
#                         1,000 jobs, reconcile at 100,000 tasks with 3 passes after FLUSHALL
# Results: bench/results/<name>.json; tables on stdout, progress on stderr.
# Before/after a change: bench/compare.py BASE runs these on BASE and on this tree, alternating (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [[ "${1:-}" == "--full" ]]; then
  WINDOW=45; REPEAT=3; JOBS=1000; RECONCILE_TASKS=100000; FLUSH_REPEAT=3
else
  WINDOW=40; REPEAT=1; JOBS=300; RECONCILE_TASKS=10000; FLUSH_REPEAT=1
fi
started=$(date +%s)
"$PY" bench/dispatch_lag.py --tasks 1000 10000 --window "$WINDOW" --repeat "$REPEAT"
"$PY" bench/burst.py --tasks 10000 --repeat 3
"$PY" bench/throughput.py --jobs "$JOBS" --repeat 3
"$PY" bench/reconcile.py --tasks "$RECONCILE_TASKS" --repeat 3 --repeat-flush "$FLUSH_REPEAT"
echo "all benchmarks done in $(( $(date +%s) - started )) s"
