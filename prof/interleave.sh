#!/bin/sh
# Interleaved drains, this worktree vs /work/main (same harness, same redis setup):
#   prof/interleave.sh ROUNDS N > log
# Runs from / so that PYTHONPATH (not the current directory) picks the tree under test.
WT=$(cd "$(dirname "$0")/.." && pwd)
PY=/work/main/.venv/bin/python
for i in $(seq "${1:-3}"); do
  for tree in /work/main "$WT"; do
    (cd / && PYTHONPATH="$tree:$WT" $PY -m prof.variants "${2:-300000}" base direct)
  done
done
