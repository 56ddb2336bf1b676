#!/usr/bin/env bash
# Side-by-side comparison (issue 8, DESIGN.md §6), in one run on this machine:
#   1. builds ours in release (mes-bench-live; the Python package into build/bench-venv) and
#      installs the original mysql-event-stream==1.8.0 and python-mysql-replication into
#      build/bench-venv-orig;
#   2. starts a throwaway MariaDB (scripts/mariadb-test-server.sh with its own build dir and
#      port; stopped by its PID at the end, also on error) and writes the reference workload
#      (benches/workload.sh ref N) into a binlog file of its own;
#   3. after one unrecorded warm-up pass (floor and mes-blocking), streams that file with every
#      contender, each in a fresh process, timing only the streaming and reading the process's
#      peak RSS:
#        raw floor      mariadb-binlog --read-from-remote-server --raw (byte-compared after)
#        rust-blocking  mes-blocking BinlogStream        (live, to the end of the binlog)
#        rust-tokio     mes-tokio BinlogStream           (live, to the end of the binlog)
#        ours-async     our CdcStream                    (live, until N*3 row changes)
#        orig-async     the original's CdcStream         (live, until N*3 row changes)
#        pyrepl         python-mysql-replication          (live, to the end of the binlog)
#        ours-sync      our CdcEngine.feed/next_event over the binlog file
#        orig-sync      the original's CdcEngine the same way
#      every contender must see exactly N inserts, N updates and N deletes with ids 1..N, or the
#      run fails;
#   4. one big transaction (a single INSERT of ~1 KiB rows, default 256 MiB) streamed through
#      mes-blocking, its peak RSS against the 64 MiB target: with the libraries' default limits,
#      and with the reduced limits of the end-to-end tests (16 MiB transaction buffer, 8 MiB
#      engine queue, 4 MiB driver queue);
#   5. prints a markdown table (rows/s, MB/s, peak RSS, CPU seconds of the contender and of the
#      server during its run, ratios against the floor and against the original in the same
#      mode, and the least time the live contenders' CPU allows on this machine) and writes
#      it to build/bench/compare.md (raw results in build/bench/compare-results.jsonl);
#      --update-readme replaces the README's
#      <!-- compare:begin --> … <!-- compare:end --> section with it.
#
# Usage: bash benches/compare/run.sh [--rows N] [--repeat R] [--big-mib M | --big-gib | --no-big]
#                                    [--big-compressed] [--update-readme]
#   --rows N        rows per phase (default 200000; DESIGN's full size is 500000)
#   --repeat R      runs of each contender, interleaved; the table shows medians (default 3)
#   --big-mib M     size of the big transaction in MiB (default 256); --big-gib = 1024
#   --big-compressed  also stream the big transaction written with log_bin_compress=ON
#   --no-big        skip the big-transaction check
# Environment: MES_COMPARE_PORT (default 33075), MES_COMPARE_BUILD_DIR (default
# build/bench-compare), MES_COMPARE_SKIP_BUILD=1 (reuse the last build and venvs).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"
ARGS_TEXT="$*"

N=200000
REPEAT=3
BIG_MIB=256
BIG_COMPRESSED=0
UPDATE_README=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) N="$2"; shift 2 ;;
        --repeat) REPEAT="$2"; shift 2 ;;
        --big-mib) BIG_MIB="$2"; shift 2 ;;
        --big-gib) BIG_MIB=1024; shift ;;
        --no-big) BIG_MIB=0; shift ;;
        --big-compressed) BIG_COMPRESSED=1; shift ;;
        --update-readme) UPDATE_README=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in N REPEAT BIG_MIB; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "$v must be a number" >&2; exit 2; }
done
if [ "$N" -eq 0 ] || [ "$REPEAT" -eq 0 ]; then echo "--rows and --repeat must be > 0" >&2; exit 2; fi

log() { printf '\n[compare] %s\n' "$*" >&2; }
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
OUT_DIR="$REPO/build/bench"
RESULTS="$OUT_DIR/compare-results.jsonl"
mkdir -p "$OUT_DIR"

# ------------------------------------------------------------------------------------------------
VENV="$REPO/build/bench-venv"
VENV_ORIG="$REPO/build/bench-venv-orig"
LIVE="$REPO/target/release/mes-bench-live"
if [ "${MES_COMPARE_SKIP_BUILD:-0}" != 1 ]; then
    log "build: mes-bench-live (release)"
    cargo build --release --locked -p mes-benches --bin mes-bench-live
    log "build: the Python package (maturin develop --release) into $VENV"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check 'maturin>=1.5,<2'
    (
        cd mes-py
        export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH"
        unset CONDA_PREFIX
        maturin develop --release >&2   # stdout is the report's
    )
    log "install: mysql-event-stream==1.8.0 and mysql-replication into $VENV_ORIG"
    [ -x "$VENV_ORIG/bin/python" ] || python3 -m venv "$VENV_ORIG"
    "$VENV_ORIG/bin/python" -m pip install --quiet --disable-pip-version-check \
        mysql-event-stream==1.8.0 mysql-replication==1.0.17
fi
[ -x "$LIVE" ] || { echo "missing $LIVE (run without MES_COMPARE_SKIP_BUILD)" >&2; exit 1; }
pkg_version() { "$1/bin/python" -c "import importlib.metadata as m; print(m.version('$2'))"; }
VERSIONS="ours mysql-event-stream $(pkg_version "$VENV" mysql-event-stream) (mes-py, release), original $(pkg_version "$VENV_ORIG" mysql-event-stream), mysql-replication $(pkg_version "$VENV_ORIG" mysql-replication), $("$VENV/bin/python" -c 'import platform; print("CPython", platform.python_version())'), $(rustc --version | cut -d' ' -f1-2)"

# ------------------------------------------------------------------------------------------------
export MES_BUILD_DIR="${MES_COMPARE_BUILD_DIR:-$REPO/build/bench-compare}"
export MES_TEST_PORT="${MES_COMPARE_PORT:-33075}"
export MES_BINLOG_BASENAME="compare-bin"
SERVER="$REPO/scripts/mariadb-test-server.sh"
srv() { bash "$SERVER" "$@"; }
if srv status >/dev/null 2>&1; then
    echo "a comparison server is already running in $MES_BUILD_DIR; stop it first:" >&2
    echo "  MES_BUILD_DIR=$MES_BUILD_DIR MES_TEST_PORT=$MES_TEST_PORT bash $SERVER stop" >&2
    exit 1
fi
cleanup() {
    local rc=$?
    srv stop || true
    if [ "$rc" -eq 0 ]; then
        # Throwaway: drop its data and binlogs (up to GiBs with --big-gib); kept after a failure.
        srv status >/dev/null 2>&1 || rm -rf "$MES_BUILD_DIR/mariadb/data" "$MES_BUILD_DIR/mariadb/binlog"
    else
        echo "[compare] FAILED (exit $rc); the server's files stay in $MES_BUILD_DIR/mariadb" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log "start a throwaway MariaDB on 127.0.0.1:$MES_TEST_PORT ($MES_BUILD_DIR)"
rm -rf "$MES_BUILD_DIR/mariadb"
srv start
eval "$(srv env)"
export MES_BENCH_PASSWORD="$MES_TEST_PASSWORD"
sql() { mariadb --defaults-file="$MES_TEST_CLIENT_CNF" --batch --skip-column-names "$@"; }
MARIADB_VERSION="$(sql -e 'SELECT VERSION()')"

# Write workload KIND with N rows into a binlog file of its own; sets FILE and FILE_PATH.
write_workload() {
    local kind="$1" rows="$2" compress="${3:-OFF}" table
    table="$(bash "$REPO/benches/workload.sh" --table "$kind")"
    sql -e "CREATE DATABASE IF NOT EXISTS bench; DROP TABLE IF EXISTS bench.$table; SET GLOBAL log_bin_compress = $compress; FLUSH BINARY LOGS;"
    FILE="$(sql -e 'SHOW MASTER STATUS' | cut -f1)"
    [ -n "$FILE" ] || { echo "binary logging is off?" >&2; exit 1; }
    local t0=$SECONDS
    bash "$REPO/benches/workload.sh" "$kind" "$rows" | sql
    sql -e "FLUSH BINARY LOGS; SET GLOBAL log_bin_compress = OFF; DROP TABLE bench.$table;"
    FILE_PATH="$MES_TEST_BINLOG_DIR/$FILE"
    log "workload $kind ($rows rows, log_bin_compress=$compress) in $((SECONDS - t0)) s: $FILE, $(stat -c %s "$FILE_PATH") bytes"
}

log "generate the reference workload: $N inserts, $N updates, $N deletes"
write_workload ref "$N"
REF_FILE="$FILE"
REF_PATH="$FILE_PATH"
REF_BYTES="$(stat -c %s "$REF_PATH")"
ROWS=$((3 * N))
EXPECT="$N:$N:$N"

# ------------------------------------------------------------------------------------------------
: >"$RESULTS"
SERVER_ID=5000
PY_OURS="$VENV/bin/python"
PY_ORIG="$VENV_ORIG/bin/python"
CMP="$HERE/compare.py"
COMMON=(--host 127.0.0.1 --port "$MES_TEST_PORT" --user root --file "$REF_FILE")
# CPU time, to tell where a contender's time goes on this small machine: the contender's own
# (user + system, the whole process from start to exit, from bash's `times` for the child of the
# command substitution; the floor reports mariadb-binlog's alone) and the server's during the
# run (its /proc/PID/stat utime + stime).
SERVER_PID="$(tr -dc '0-9' <"$MES_BUILD_DIR/mariadb/mes-mariadbd.pid")"
CLK_TCK="$(getconf CLK_TCK)"
CPU_FILE="$OUT_DIR/.cpu"
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
# Run "$@" (its stdout passes through), then write its CPU seconds (user + system) to $CPU_FILE.
with_cpu() {
    local rc=0
    "$@" || rc=$?
    # The builtin writes straight to a file: in a pipeline or a command substitution it would
    # run in a forked shell that has no children of its own.
    times >"$CPU_FILE.times"
    awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); n += t[1] * 60 + t[2] } printf "%.3f\n", n }' \
        "$CPU_FILE.times" >"$CPU_FILE"
    return "$rc"
}
run_one() {
    local name="$1" line ticks0
    SERVER_ID=$((SERVER_ID + 1))
    printf '[compare] %-14s ' "$name" >&2
    ticks0="$(server_ticks)"
    case "$name" in
        floor) line="$(with_cpu "$PY_OURS" "$CMP" floor "${COMMON[@]}" --binlog "$REF_PATH" --out-dir "$OUT_DIR/raw-floor" --server-id "$SERVER_ID")" ;;
        rust-blocking) line="$(with_cpu "$LIVE" --driver blocking "${COMMON[@]}" --server-id "$SERVER_ID" --expect-rows "$ROWS" --expect-kinds "$EXPECT")" ;;
        rust-tokio) line="$(with_cpu "$LIVE" --driver tokio "${COMMON[@]}" --server-id "$SERVER_ID" --expect-rows "$ROWS" --expect-kinds "$EXPECT")" ;;
        ours-async) line="$(with_cpu "$PY_OURS" "$CMP" async "${COMMON[@]}" --server-id "$SERVER_ID" --expect "$EXPECT" --label ours-async)" ;;
        orig-async) line="$(with_cpu "$PY_ORIG" "$CMP" async "${COMMON[@]}" --server-id "$SERVER_ID" --expect "$EXPECT" --label orig-async)" ;;
        pyrepl) line="$(with_cpu "$PY_ORIG" "$CMP" pyrepl "${COMMON[@]}" --server-id "$SERVER_ID" --expect "$EXPECT" --label pyrepl)" ;;
        ours-sync) line="$(with_cpu "$PY_OURS" "$CMP" sync --binlog "$REF_PATH" --expect "$EXPECT" --label ours-sync)" ;;
        orig-sync) line="$(with_cpu "$PY_ORIG" "$CMP" sync --binlog "$REF_PATH" --expect "$EXPECT" --label orig-sync)" ;;
    esac
    line="$("$PY_OURS" -c 'import json, sys; r = json.loads(sys.argv[1]); r.setdefault("cpu_s", float(sys.argv[2])); r.update(server_cpu_s=round(int(sys.argv[3]) / int(sys.argv[4]), 3)); print(json.dumps(r))' \
        "$line" "$(cat "$CPU_FILE")" "$(($(server_ticks) - ticks0))" "$CLK_TCK")"
    echo "$line" >>"$RESULTS"
    "$PY_OURS" -c 'import json, sys; r = json.loads(sys.argv[1]); print("%.3f s, peak RSS %.0f MiB, CPU %.2f s, server CPU %.2f s" % (r["seconds"], r["peak_rss_kib"] / 1024, r["cpu_s"], r["server_cpu_s"]))' "$line" >&2
}
CONTENDERS=(floor rust-blocking rust-tokio ours-async orig-async pyrepl ours-sync orig-sync)
# Warm-up, not recorded: the first dump of a freshly written binlog ran up to 3× slower than the
# next ones (seen on a 2-core EPYC: floor 1.09 s, then 0.45 s and 0.37 s), which skewed the
# floor's median and spread. One floor pass and one Rust pass warm the server, the page cache
# and the binaries' first start.
log "warm-up (not recorded): floor, rust-blocking"
RESULTS_KEEP="$RESULTS"
RESULTS=/dev/null
run_one floor
run_one rust-blocking
RESULTS="$RESULTS_KEEP"
for ((r = 1; r <= REPEAT; r++)); do
    log "run $r of $REPEAT: $ROWS row changes, $REF_BYTES bytes of binlog"
    for c in "${CONTENDERS[@]}"; do run_one "$c"; done
done

# ------------------------------------------------------------------------------------------------
big_check() {
    local compress="$1" rows line
    # ~1 KiB rows: 1000-byte payload + id + k + row overhead in a WRITE_ROWS event.
    rows=$((BIG_MIB * 1048576 / 1014))
    log "big transaction: one INSERT of $rows rows (~$BIG_MIB MiB, log_bin_compress=$compress)"
    write_workload big "$rows" "$compress"
    # Twice: the libraries' default limits, and the reduced ones the end-to-end tests use.
    local limits
    for limits in default reduced; do
        local opts=()
        if [ "$limits" = reduced ]; then
            opts=(--max-buffered-txn-bytes $((16 << 20)) --engine-queue-bytes $((8 << 20)) --queue-bytes $((4 << 20)))
        fi
        SERVER_ID=$((SERVER_ID + 1))
        line="$("$LIVE" --driver blocking --host 127.0.0.1 --port "$MES_TEST_PORT" --user root \
            --file "$FILE" --server-id "$SERVER_ID" --expect-rows "$rows" --expect-kinds "$rows:0:0" \
            --label big-blocking "${opts[@]}")"
        line="$("$PY_OURS" -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(big=True, binlog_bytes=int(sys.argv[2]), compressed=sys.argv[3]=="ON", rows_mib=int(sys.argv[4]), limits=sys.argv[5]); print(json.dumps(r))' \
            "$line" "$(stat -c %s "$FILE_PATH")" "$compress" "$BIG_MIB" "$limits")"
        echo "$line" >>"$RESULTS"
        echo "$line" >&2
    done
}
if [ "$BIG_MIB" -gt 0 ]; then
    big_check OFF
    if [ "$BIG_COMPRESSED" = 1 ]; then big_check ON; fi
fi

# ------------------------------------------------------------------------------------------------
log "report"
REPORT_ARGS=(--results "$RESULTS" --bytes "$REF_BYTES" --rows "$ROWS" --n "$N" --repeat "$REPEAT"
    --mariadb-version "$MARIADB_VERSION" --versions "$VERSIONS" --load-before "$LOAD_BEFORE"
    "--command-line=$ARGS_TEXT" --out "$OUT_DIR/compare.md")
if [ "$UPDATE_README" = 1 ]; then REPORT_ARGS+=(--readme "$REPO/README.md"); fi
"$PY_OURS" "$CMP" report "${REPORT_ARGS[@]}"
