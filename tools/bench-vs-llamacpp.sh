#!/bin/sh
# bench-vs-llamacpp.sh — ruvllm-cli bench and llama.cpp's llama-bench loops
# (refharness lref) on the same files, alternating, on an idle machine.
# A developer tool: needs ../shared/refharness set up (not used by tests).
#
# Usage: tools/bench-vs-llamacpp.sh BUILD_DIR [THREADS] MODEL...
set -eu
build=$1; shift
threads=${1:-2}; shift
H=${REFHARNESS:-$HOME/.cache/ruvllm-refharness}
L=$H/llamacpp/native/build/lref
for m in "$@"; do
  for round in 1 2; do
    echo "== $m round $round (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    "$build/engine/ruvllm-cli" bench -m "$m" -p 512 -n 128 -t "$threads" -r 3 --json | tail -1
    "$L" bench "$m" --pp 512 --tg 128 --threads "$threads" --reps 3 | tail -1
  done
done
