#!/usr/bin/env bash
# Demo (README, first command): start a throwaway MariaDB (installing it if missing), check it with
# `mes check`, create a sample schema, apply a stream of changes in the background, and show
# `mes stream` following them live as JSON lines; then decode the binlog files it wrote with
# `mes decode`. Everything it started is stopped on exit (by PID); the data dir stays under
# build/demo for inspection.
#
# Environment: MES_DEMO_SECONDS (how long changes are applied; default 20, CI uses a few),
# MES_DEMO_BUILD_DIR (default <repo>/build/demo), MES_DEMO_PORT (default 33063).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
SERVER="$REPO/scripts/mariadb-test-server.sh"
export MES_BUILD_DIR="${MES_DEMO_BUILD_DIR:-$REPO/build/demo}"
export MES_TEST_PORT="${MES_DEMO_PORT:-33063}"
export MES_BINLOG_BASENAME=demo-bin
SECONDS_TO_RUN="${MES_DEMO_SECONDS:-20}"

section() { printf '\n========== %s ==========\n' "$*" >&2; }

PROFILE="${MES_DEMO_PROFILE:-release}"   # CI passes debug to reuse its test build
section "build mes ($PROFILE)"
if [ "$PROFILE" = release ]; then
    cargo build --release -p mes-cli
    MES="$REPO/target/release/mes"
else
    cargo build -p mes-cli
    MES="$REPO/target/debug/mes"
fi

section "start a throwaway MariaDB on 127.0.0.1:$MES_TEST_PORT"
bash "$SERVER" stop
rm -rf "$MES_BUILD_DIR/mariadb"
WRITER_PID=""
STREAM_PID=""
cleanup() {
    [ -n "$WRITER_PID" ] && kill "$WRITER_PID" 2>/dev/null || true
    [ -n "$STREAM_PID" ] && kill -INT "$STREAM_PID" 2>/dev/null || true
    [ -n "$STREAM_PID" ] && wait "$STREAM_PID" 2>/dev/null || true
    bash "$SERVER" stop
}
trap cleanup EXIT
bash "$SERVER" start
eval "$(bash "$SERVER" env)"
CLIENT=(mariadb --defaults-file="$MES_TEST_CLIENT_CNF" --default-character-set=utf8mb4)
# The password travels in MES_PASSWORD, so no command line or log line shows it.
export MES_PASSWORD="$MES_TEST_REPL_PASSWORD"
URL="mysql://$MES_TEST_REPL_USER@127.0.0.1:$MES_TEST_PORT?ssl-mode=verify-identity&ssl-ca=$MES_TEST_TLS_CA&server-id=77"

section "mes check (TLS verified against the generated CA)"
"$MES" check "$URL"

"${CLIENT[@]}" -e "RESET MASTER"
section "sample schema"
"${CLIENT[@]}" <<'EOF'
CREATE DATABASE demo CHARACTER SET utf8mb4;
CREATE TABLE demo.users (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(255) NULL,
  balance DECIMAL(12,2) NOT NULL DEFAULT 0,
  tags SET('admin','staff','beta') NULL,
  profile JSON NULL,
  created DATETIME(6) NOT NULL DEFAULT '2024-01-01 00:00:00'
);
EOF

section "mes stream $URL --include-db demo  (following live changes for ${SECONDS_TO_RUN}s)"
"$MES" stream "$URL" --include-db demo --from "file:demo-bin.000001:4" --checkpoint "$MES_BUILD_DIR/checkpoint.txt" --stats &
STREAM_PID=$!

# A stream of changes in the background: inserts, updates, deletes, a multi-row transaction.
(
    end=$((SECONDS + SECONDS_TO_RUN))
    i=0
    while [ "$SECONDS" -lt "$end" ]; do
        i=$((i + 1))
        "${CLIENT[@]}" -e "
          INSERT INTO demo.users (name, email, balance, tags, profile) VALUES
            ('user$i', 'user$i@example.invalid', $i.25, 'beta', '{\"n\": $i}'),
            ('zoë 😀 $i', NULL, -$i.50, 'admin,staff', NULL);
          UPDATE demo.users SET balance = balance + 1, tags = 'staff' WHERE name = 'user$i';
          BEGIN; DELETE FROM demo.users WHERE name = 'zoë 😀 $i'; INSERT INTO demo.users (name) VALUES ('tx$i'); COMMIT;"
        sleep 1
    done
) &
WRITER_PID=$!
wait "$WRITER_PID" || true
WRITER_PID=""
sleep 2
kill -INT "$STREAM_PID" 2>/dev/null || true
wait "$STREAM_PID" || true
STREAM_PID=""
section "checkpoint written by mes stream: $(cat "$MES_BUILD_DIR/checkpoint.txt")"

"${CLIENT[@]}" -e "FLUSH BINARY LOGS"
mapfile -t FILES < <("${CLIENT[@]}" -N -e "SHOW BINARY LOGS" | cut -f1)
PATHS=()
for ((i = 0; i < ${#FILES[@]} - 1; i++)); do   # all but the file the server still writes
    PATHS+=("$MES_TEST_BINLOG_DIR/${FILES[$i]}")
done
section "the same changes from the files: mes decode ${PATHS[*]##*/} (first 5 lines)"
"$MES" decode --include-db demo "${PATHS[@]}" | head -n 5
