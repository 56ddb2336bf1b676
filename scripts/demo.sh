#!/usr/bin/env bash
# Demo (README, first command): start a throwaway MariaDB, run a small SQL workload, and turn the
# binlog files it wrote into change events with `mes decode` (JSON lines), then list every event
# with the codec's `dump` example. The server is stopped and
# its directory kept under build/demo for inspection.
#
# Environment: MES_DEMO_BUILD_DIR (default <repo>/build/demo), MES_DEMO_PORT (default 33063).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
SERVER="$REPO/scripts/mariadb-test-server.sh"
export MES_BUILD_DIR="${MES_DEMO_BUILD_DIR:-$REPO/build/demo}"
export MES_TEST_PORT="${MES_DEMO_PORT:-33063}"
export MES_BINLOG_BASENAME=demo-bin

section() { printf '\n========== %s ==========\n' "$*"; }

section "build mes"
cargo build --release -p mes-cli

section "start a throwaway MariaDB on 127.0.0.1:$MES_TEST_PORT"
bash "$SERVER" stop
rm -rf "$MES_BUILD_DIR/mariadb"
trap 'bash "$SERVER" stop' EXIT
bash "$SERVER" start
eval "$(bash "$SERVER" env)"
CLIENT=(mariadb --defaults-file="$MES_TEST_CLIENT_CNF" --default-character-set=utf8mb4)

# The workload starts in a fresh binlog file and ends with FLUSH BINARY LOGS, so its files are complete.
"${CLIENT[@]}" -e "RESET MASTER"

section "SQL workload"
SQL=$(cat <<'EOF'
CREATE DATABASE demo CHARACTER SET utf8mb4;
USE demo;
CREATE TABLE users (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(255) NULL,
  balance DECIMAL(12,2) NOT NULL DEFAULT 0,
  tags SET('admin','staff','beta') NULL,
  profile JSON NULL,
  created DATETIME(6) NOT NULL DEFAULT '2024-01-01 00:00:00'
);
INSERT INTO users (name, email, balance, tags, profile) VALUES
  ('alice', 'alice@example.invalid', 100.50, 'admin,beta', '{"lang": "en"}'),
  ('bob', NULL, 0, '', NULL),
  ('zoë 😀', 'zoe@example.invalid', -12.34, 'staff', '{"lang": "fr", "n": [1, 2]}');
UPDATE users SET balance = balance + 1, email = 'bob@example.invalid' WHERE name = 'bob';
BEGIN;
UPDATE users SET tags = 'staff,beta' WHERE id = 1;
DELETE FROM users WHERE name = 'alice';
COMMIT;
FLUSH BINARY LOGS;
EOF
)
echo "$SQL"
"${CLIENT[@]}" -e "$SQL"
"${CLIENT[@]}" -e "SELECT * FROM demo.users"

mapfile -t FILES < <("${CLIENT[@]}" -N -e "SHOW BINARY LOGS" | cut -f1)
PATHS=()
for ((i = 0; i < ${#FILES[@]} - 1; i++)); do   # all but the file the server still writes
    PATHS+=("$MES_TEST_BINLOG_DIR/${FILES[$i]}")
done

section "stop the server"
bash "$SERVER" stop
trap - EXIT

section "change events: mes decode ${PATHS[*]##*/}  (JSON lines)"
"$REPO/target/release/mes" decode --statements "${PATHS[@]}"

section "every event: cargo run --release -p mysql-binlog-codec --example dump -- ${PATHS[*]##*/}"
cargo run -q --release -p mysql-binlog-codec --example dump -- "${PATHS[@]}"
