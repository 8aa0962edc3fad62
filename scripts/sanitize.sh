#!/usr/bin/env bash
# Builds the C EVE reader (scanguard_ids/eve/_fast.c) with AddressSanitizer and UBSan and runs
# the decoder tests against that build: the C-vs-Python comparisons, their fuzzed and mutated
# lines, and the block reader. Any out-of-bounds read or undefined behaviour aborts the run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
inc=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
so="$tmp/_fast$($PY -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
gcc -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
    -Wall -Wextra -Wno-unused-parameter -Werror -fPIC -shared -I"$inc" \
    scanguard_ids/eve/_fast.c -o "$so"
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
SCANGUARD_FAST_SO="$so" \
    $PY -m pytest -q -p no:cacheprovider \
    tests/eve/test_fast_reader.py tests/eve/test_reader_blocks.py \
    tests/eve/test_decode.py tests/eve/test_decode_batch.py tests/eve/test_fast_scan_edges.py
