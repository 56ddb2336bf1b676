#!/usr/bin/env bash
# The change-event engine's work on the reference workload (DESIGN.md §6 table) counted in
# instructions per row change, for comparing two builds of the codec on hosts whose wall times
# swing too much to tell them apart (the 2-core VMs here). valgrind's callgrind counts what
# mes-bench-engine executes (one thread: the engine fed a binlog file, see
# benches/src/bin/engine.rs); start-up and the file read are cancelled out with two sizes:
#     instructions per row change = (Ir(LARGE) - Ir(SMALL)) / (3 * (LARGE - SMALL))
# Two modes: `check` (the engine alone: framing, CRC, the rows check, transaction bookkeeping —
# a live driver's reader thread) and `decode` (also both images of every change decoded — plus
# a driver consumer's decoding).
#
# Usage: bash benches/callgrind-engine.sh [SMALL [LARGE]]      (defaults 2000 and 20000)
# MES_CALLGRIND_ENGINE_BIN=PATH counts another build of mes-bench-engine instead of this
# checkout's (e.g. one built from an older commit in a git worktree, to compare two builds).
# Needs valgrind (installed when root); the binlogs are shared with
# benches/compare/callgrind-sync.sh (see benches/callgrind-common.sh). Under a minute once they
# exist.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
# shellcheck source=callgrind-common.sh
source "$REPO/benches/callgrind-common.sh"
callgrind_sizes "$@"

BIN="${MES_CALLGRIND_ENGINE_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build --release --locked -p mes-benches --bin mes-bench-engine >&2
    BIN="$REPO/target/release/mes-bench-engine"
fi
[ -x "$BIN" ] || { echo "$BIN is not an executable" >&2; exit 1; }

callgrind_setup

# Instructions of one run (the run must see every row change: valgrind exits with its status).
count() {
    local n="$1" out
    shift
    if ! out="$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$BIN" "$(binlog "$n")" --expect "$n:$n:$n" "$@" 2>&1 >/dev/null)"; then
        echo "the callgrind run of $BIN on $n rows ($*) failed:" >&2
        echo "$out" | tail -20 >&2
        return 1
    fi
    echo "$out" | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

echo "| mode | instructions per row change |"
echo "|---|---:|"
for mode in check decode; do
    flag=()
    [ "$mode" = decode ] && flag=(--decode)
    small="$(count "$SMALL" "${flag[@]}")"
    large="$(count "$LARGE" "${flag[@]}")"
    echo "| $mode | $(( (large - small) / (3 * (LARGE - SMALL)) )) |"
done
echo
echo "binary: $BIN; binlogs: $(binlog "$SMALL"), $(binlog "$LARGE")"
