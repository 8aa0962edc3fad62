#!/usr/bin/env bash
# `make demo`: a short run of the built-in lab (3000 ports, TCP and UDP, 10 ms path delay):
# nmap against the victim without and with scanguard, the live monitor while protected
# (when this is a terminal), then Table I beside the paper's figures.
set -euo pipefail
cd "$(dirname "$0")/.."
out=out/demo
mkdir -p "$out"
tui=()
[ -t 1 ] && tui=(--tui)
exec .venv/bin/scanguard lab --ports 1-3000 --delay 10 --latency-trials 3 --out "$out" "${tui[@]}"
