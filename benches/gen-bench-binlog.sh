#!/usr/bin/env bash
# Generate the DESIGN.md §6 reference binlog with a real MariaDB and copy it to
# build/bench/bench.binlog (the default input of `cargo bench -p mes-benches --bench decode`).
#
#   benches/gen-bench-binlog.sh [N]      N inserts + N updates + N deletes (default 100000)
#
# Table: (id INT PK, k INT, c CHAR(120), pad CHAR(60), amount DECIMAL(12,2), ts DATETIME(6),
# score DOUBLE), rows written in statements of $MES_BENCH_BATCH rows (default 1000), one
# transaction each. binlog_format=ROW, binlog_row_image=FULL, binlog_row_metadata=FULL,
# binlog_checksum=CRC32.
#
# The server is a private instance of scripts/mariadb-test-server.sh with its own build dir
# (build/bench-mariadb) and port (33071), so it never meets the test server or the system
# MariaDB on 3306. It is stopped afterwards (by the PID that script recorded) unless it was
# already running. Knobs: MES_BENCH_BATCH, MES_BENCH_PORT, MES_BENCH_OUT (output file).
set -euo pipefail

N="${1:-100000}"
BATCH="${MES_BENCH_BATCH:-1000}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
SERVER_SCRIPT="$REPO/scripts/mariadb-test-server.sh"
OUT="${MES_BENCH_OUT:-$REPO/build/bench/bench.binlog}"

[[ "$N" =~ ^[0-9]+$ && "$N" -gt 0 ]] || { echo "usage: $0 [N>0]" >&2; exit 2; }
[[ "$BATCH" =~ ^[0-9]+$ && "$BATCH" -gt 0 ]] || { echo "MES_BENCH_BATCH must be > 0" >&2; exit 2; }
[ -x "$SERVER_SCRIPT" ] || [ -f "$SERVER_SCRIPT" ] || { echo "missing $SERVER_SCRIPT" >&2; exit 1; }

export MES_BUILD_DIR="$REPO/build/bench-mariadb"
export MES_TEST_PORT="${MES_BENCH_PORT:-33071}"
export MES_BINLOG_BASENAME="bench-bin"
srv() { bash "$SERVER_SCRIPT" "$@"; }

log() { printf '[gen-bench-binlog] %s\n' "$*" >&2; }

started=0
if ! srv status >/dev/null 2>&1; then
    srv start
    started=1
fi
cleanup() {
    if [ "$started" = 1 ]; then
        srv stop || true
    fi
}
trap cleanup EXIT

eval "$(srv env)"
sql() { mariadb --defaults-file="$MES_TEST_CLIENT_CNF" --batch --skip-column-names "$@"; }

# Start a fresh binlog file so the copy holds only this workload.
sql -e "CREATE DATABASE IF NOT EXISTS bench; DROP TABLE IF EXISTS bench.sbtest1; FLUSH BINARY LOGS;"
file="$(sql -e "SHOW MASTER STATUS" | cut -f1)"
[ -n "$file" ] || { log "binary logging is off?"; exit 1; }
log "workload: $N inserts, $N updates, $N deletes in batches of $BATCH into $MES_TEST_BINLOG_DIR/$file"

gen_sql() {
    cat <<'EOF'
USE bench;
SET SESSION binlog_format = 'ROW';
CREATE TABLE bench.sbtest1 (
    id INT NOT NULL PRIMARY KEY,
    k INT NOT NULL,
    c CHAR(120) NOT NULL,
    pad CHAR(60) NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    ts DATETIME(6) NOT NULL,
    score DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
EOF
    local a b
    # sysbench-like filler: c = 11-digit groups joined by '-', pad = 60 chars; all columns full width.
    for ((a = 1; a <= N; a += BATCH)); do
        b=$((a + BATCH - 1)); [ "$b" -le "$N" ] || b=$N
        echo "INSERT INTO bench.sbtest1 SELECT seq, seq * 7919 % 1000003, LEFT(CONCAT_WS('-', LPAD(seq*48271 % 99999999989, 11, '0'), LPAD(seq*69621 % 99999999977, 11, '0'), LPAD(seq*16807 % 99999999967, 11, '0'), LPAD(seq*39373 % 99999999943, 11, '0'), LPAD(seq*40692 % 99999999929, 11, '0'), LPAD(seq*40014 % 99999999907, 11, '0'), LPAD(seq*44488 % 99999999851, 11, '0'), LPAD(seq*3399 % 99999999833, 11, '0'), LPAD(seq*52774 % 99999999817, 11, '0'), LPAD(seq*10007 % 99999999787, 11, '0')), 120), LEFT(CONCAT(SHA1(seq), SHA1(seq + 1)), 60), (seq * 37 % 100000000) / 100, TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND, seq / 7.0 FROM seq_${a}_to_${b};"
    done
    for ((a = 1; a <= N; a += BATCH)); do
        b=$((a + BATCH - 1)); [ "$b" -le "$N" ] || b=$N
        echo "UPDATE bench.sbtest1 SET k = k + 1, c = CONCAT(SUBSTRING(c, 2), LEFT(c, 1)), amount = amount + 0.01, ts = ts + INTERVAL 1 SECOND, score = score * 1.5 WHERE id BETWEEN $a AND $b;"
    done
    for ((a = 1; a <= N; a += BATCH)); do
        b=$((a + BATCH - 1)); [ "$b" -le "$N" ] || b=$N
        echo "DELETE FROM bench.sbtest1 WHERE id BETWEEN $a AND $b;"
    done
}

SECONDS=0
gen_sql | sql
sql -e "FLUSH BINARY LOGS"
log "workload done in ${SECONDS}s"

mkdir -p "$(dirname "$OUT")"
cp "$MES_TEST_BINLOG_DIR/$file" "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "wrote $OUT ($(stat -c %s "$OUT") bytes; $((3 * N)) row changes)"
