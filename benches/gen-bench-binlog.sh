#!/usr/bin/env bash
# Generate the criterion bench inputs with a real MariaDB and copy them to build/bench/
# (the inputs `cargo bench -p mes-benches --bench decode` looks for).
#
#   benches/gen-bench-binlog.sh [N] [KIND ...]
#
# N: rows per phase (default 100000): N inserts + N updates + N deletes (benches/workload.sh).
# KIND (default ref; `all` = every kind):
#   ref             the DESIGN.md §6 reference table       -> build/bench/bench.binlog
#   wide            a 30-column table of mixed types        -> build/bench/bench-wide.binlog
#   json            a JSON-heavy table (~1 KB documents)    -> build/bench/bench-json.binlog
#   ref-compressed  the reference workload written with MariaDB's log_bin_compress=ON
#                   (compressed rows events)                 -> build/bench/bench-compressed.binlog
# Rows are written in statements of $MES_BENCH_BATCH rows (default 1000), one transaction each;
# binlog_format=ROW, binlog_row_image=FULL, binlog_row_metadata=FULL, binlog_checksum=CRC32.
#
# The server is a private instance of scripts/mariadb-test-server.sh with its own build dir
# ($MES_BENCH_BUILD_DIR, default build/bench-mariadb) and port ($MES_BENCH_PORT, default 33071), so
# it never meets the test server or the system MariaDB on 3306. It is stopped afterwards (by the
# PID that script recorded) unless it was already running. MES_BENCH_OUT overrides the output
# file when exactly one KIND is generated.
set -euo pipefail

N="${1:-100000}"
shift || true
KINDS=("$@")
[ "${#KINDS[@]}" -gt 0 ] || KINDS=(ref)
if [ "${KINDS[*]}" = all ]; then KINDS=(ref wide json ref-compressed); fi
BATCH="${MES_BENCH_BATCH:-1000}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
SERVER_SCRIPT="$REPO/scripts/mariadb-test-server.sh"
OUT_DIR="$REPO/build/bench"

[[ "$N" =~ ^[0-9]+$ && "$N" -gt 0 ]] || { echo "usage: $0 [N>0] [ref|wide|json|ref-compressed|all ...]" >&2; exit 2; }
[[ "$BATCH" =~ ^[0-9]+$ && "$BATCH" -gt 0 ]] || { echo "MES_BENCH_BATCH must be > 0" >&2; exit 2; }
[ -f "$SERVER_SCRIPT" ] || { echo "missing $SERVER_SCRIPT" >&2; exit 1; }
out_of() {
    case "$1" in
        ref) echo "$OUT_DIR/bench.binlog" ;;
        wide) echo "$OUT_DIR/bench-wide.binlog" ;;
        json) echo "$OUT_DIR/bench-json.binlog" ;;
        ref-compressed) echo "$OUT_DIR/bench-compressed.binlog" ;;
        *) echo "unknown kind '$1' (ref, wide, json, ref-compressed, all)" >&2; return 2 ;;
    esac
}
for kind in "${KINDS[@]}"; do out_of "$kind" >/dev/null; done
if [ -n "${MES_BENCH_OUT:-}" ] && [ "${#KINDS[@]}" -ne 1 ]; then
    echo "MES_BENCH_OUT needs exactly one KIND" >&2
    exit 2
fi

export MES_BUILD_DIR="${MES_BENCH_BUILD_DIR:-$REPO/build/bench-mariadb}"
export MES_TEST_PORT="${MES_BENCH_PORT:-33071}"
export MES_BINLOG_BASENAME="bench-bin"
srv() { bash "$SERVER_SCRIPT" "$@"; }

log() { printf '[gen-bench-binlog] %s\n' "$*" >&2; }

started=0
cleanup() {
    if [ "$started" = 1 ]; then
        srv stop || true
    fi
}
trap cleanup EXIT
if ! srv status >/dev/null 2>&1; then
    started=1
    srv start
fi

eval "$(srv env)"
sql() { mariadb --defaults-file="$MES_TEST_CLIENT_CNF" --batch --skip-column-names "$@"; }
# Private bench server: drop the binlogs of earlier runs (each input is copied out anyway).
sql -e "RESET MASTER"

for kind in "${KINDS[@]}"; do
    workload="$kind"
    compress=OFF
    if [ "$kind" = ref-compressed ]; then workload=ref; compress=ON; fi
    table="$(bash "$HERE/workload.sh" --table "$workload")"
    out="${MES_BENCH_OUT:-$(out_of "$kind")}"
    # Start a fresh binlog file so the copy holds only this workload.
    sql -e "CREATE DATABASE IF NOT EXISTS bench; DROP TABLE IF EXISTS bench.$table; SET GLOBAL log_bin_compress = $compress; FLUSH BINARY LOGS;"
    file="$(sql -e "SHOW MASTER STATUS" | cut -f1)"
    [ -n "$file" ] || { log "binary logging is off?"; exit 1; }
    log "$kind: $N inserts, $N updates, $N deletes in batches of $BATCH into $MES_TEST_BINLOG_DIR/$file (log_bin_compress=$compress)"
    SECONDS=0
    bash "$HERE/workload.sh" "$workload" "$N" "$BATCH" | sql
    sql -e "FLUSH BINARY LOGS; SET GLOBAL log_bin_compress = OFF;"
    log "$kind: workload done in ${SECONDS}s"
    mkdir -p "$(dirname "$out")"
    cp "$MES_TEST_BINLOG_DIR/$file" "$out.tmp"
    mv "$out.tmp" "$out"
    log "$kind: wrote $out ($(stat -c %s "$out") bytes; $((3 * N)) row changes)"
done
sql -e "RESET MASTER"   # the copies are out; free the server's binlogs
