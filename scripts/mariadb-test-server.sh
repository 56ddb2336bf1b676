#!/usr/bin/env bash
# A private, throwaway MariaDB server for tests (DESIGN.md §5 item 2).
#
#   scripts/mariadb-test-server.sh start    install the packages if missing (root), init a datadir,
#                                           make TLS certs, start mariadbd, create the test users
#   scripts/mariadb-test-server.sh stop     stop exactly the mariadbd whose PID is in our pidfile
#   scripts/mariadb-test-server.sh status   exit 0 if running, 3 if not
#   scripts/mariadb-test-server.sh env      print `export MES_TEST_...=...` lines (eval "$(... env)")
#
# Knobs (environment):
#   MES_BUILD_DIR        build dir (default <repo>/build); everything lives in $MES_BUILD_DIR/mariadb
#   MES_TEST_PORT        TCP port, bound to 127.0.0.1 only (default 33061)
#   MES_BINLOG_BASENAME  binlog file base name (default mariadb-bin -> mariadb-bin.000001)
#
# Never touches the system MariaDB (3306, /var/lib/mysql, /run/mysqld): it runs with its own
# --defaults-file, datadir, socket, port and pidfile. `stop` only ever signals the PID recorded by `start`,
# after checking that this PID is a mariadbd started with our defaults file.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd)"
BUILD_DIR="${MES_BUILD_DIR:-$REPO/build}"
mkdir -p "$BUILD_DIR"
BUILD_DIR="$(cd "$BUILD_DIR" && pwd)"
BASE="$BUILD_DIR/mariadb"
DATADIR="$BASE/data"
BINLOG_DIR="$BASE/binlog"
BINLOG_BASENAME="${MES_BINLOG_BASENAME:-mariadb-bin}"
TLS_DIR="$BASE/tls"
TMP_DIR="$BASE/tmp"
CNF="$BASE/my.cnf"
CLIENT_CNF="$BASE/client.cnf"
PIDFILE="$BASE/mes-mariadbd.pid"      # written by this script: the PID we started
SERVER_PIDFILE="$BASE/server.pid"     # written by mariadbd itself
ERROR_LOG="$BASE/error.log"
PORT="${MES_TEST_PORT:-33061}"
HOST=127.0.0.1

# Unix socket paths are limited to 107 bytes; fall back to /tmp for deep build dirs.
SOCKET="$BASE/mariadb.sock"
if [ "${#SOCKET}" -gt 100 ]; then
    SOCKET="/tmp/mes-mariadb-$(printf '%s' "$BASE" | md5sum | cut -c1-12).sock"
fi

# Known test credentials (the server listens on 127.0.0.1 only and is thrown away).
ROOT_PASSWORD="mes_root_pw"
NATIVE_USER="mes_native";   NATIVE_PASSWORD="mes_native_pw"     # mysql_native_password
ED25519_USER="mes_ed25519"; ED25519_PASSWORD="mes_ed25519_pw"   # ed25519 (auth_ed25519 plugin)
TLS_USER="mes_tls";         TLS_PASSWORD="mes_tls_pw"           # mysql_native_password, REQUIRE SSL
X509_USER="mes_x509";       X509_PASSWORD="mes_x509_pw"         # mysql_native_password, REQUIRE X509
REPL_USER="mes_repl";       REPL_PASSWORD="mes_repl_pw"         # replication privileges only
NOPW_USER="mes_nopw"                                            # mysql_native_password, empty password
OLD_USER="mes_old";         OLD_PASSWORD="mes_old_pw"           # mysql_old_password (pre-4.1 hash)
TEST_DB="mes_test"

log() { printf '[mariadb-test-server] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

find_bin() {
    local name
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
        for d in /usr/sbin /usr/local/sbin /usr/bin /usr/local/bin; do
            if [ -x "$d/$name" ]; then echo "$d/$name"; return 0; fi
        done
    done
    return 1
}

ensure_installed() {
    local need_pkgs=()
    find_bin mariadbd mysqld >/dev/null || need_pkgs+=(mariadb-server)
    find_bin mariadb mysql >/dev/null || need_pkgs+=(mariadb-client)
    find_bin openssl >/dev/null || need_pkgs+=(openssl)
    if [ "${#need_pkgs[@]}" -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            die "missing ${need_pkgs[*]} and not root: install mariadb-server mariadb-client openssl"
        fi
        log "installing ${need_pkgs[*]} (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        # mariadb-server and mariadb-client always go together.
        apt-get install -y --no-install-recommends mariadb-server mariadb-client openssl
    fi
    MARIADBD="$(find_bin mariadbd mysqld)" || die "mariadbd not found after install"
    CLIENT="$(find_bin mariadb mysql)" || die "mariadb client not found"
    ADMIN="$(find_bin mariadb-admin mysqladmin)" || die "mariadb-admin not found"
    INSTALL_DB="$(find_bin mariadb-install-db mysql_install_db)" || die "mariadb-install-db not found"
}

# Is $1 a live mariadbd started with our defaults file?
is_our_server() {
    local pid="$1"
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    local cmd
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    case "$cmd" in
        *"--defaults-file=$CNF"*) return 0 ;;
        *) return 1 ;;
    esac
}

running_pid() {
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid="$(tr -dc '0-9' <"$PIDFILE")"
    is_our_server "$pid" || return 1
    echo "$pid"
}

port_in_use() {
    (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
}

make_certs() {
    [ -f "$TLS_DIR/client-key.pem" ] && return 0
    log "generating TLS certificates in $TLS_DIR"
    mkdir -p "$TLS_DIR"
    local o="$TLS_DIR"
    openssl genrsa -out "$o/ca-key.pem" 2048 2>/dev/null
    openssl req -x509 -new -key "$o/ca-key.pem" -sha256 -days 3650 -subj "/CN=mes test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$o/ca.pem" 2>/dev/null
    cat >"$o/server-ext.cnf" <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:::1
EOF
    cat >"$o/client-ext.cnf" <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
    local who
    for who in server client; do
        openssl genrsa -out "$o/$who-key.pem" 2048 2>/dev/null
        local cn="localhost"; [ "$who" = client ] && cn="mes test client"
        openssl req -new -key "$o/$who-key.pem" -subj "/CN=$cn" -out "$o/$who.csr" 2>/dev/null
        openssl x509 -req -in "$o/$who.csr" -CA "$o/ca.pem" -CAkey "$o/ca-key.pem" -CAcreateserial \
            -days 3650 -sha256 -extfile "$o/$who-ext.cnf" -out "$o/$who-cert.pem" 2>/dev/null
        rm -f "$o/$who.csr"
    done
    chmod 600 "$o"/*-key.pem
}

write_cnf() {
    cat >"$CNF" <<EOF
# Generated by scripts/mariadb-test-server.sh - private test server, do not edit.
[mariadbd]
datadir=$DATADIR
tmpdir=$TMP_DIR
socket=$SOCKET
port=$PORT
bind-address=$HOST
pid-file=$SERVER_PIDFILE
log-error=$ERROR_LOG
skip-name-resolve
performance_schema=OFF
log_bin=$BINLOG_DIR/$BINLOG_BASENAME
log_bin_index=$BINLOG_DIR/$BINLOG_BASENAME.index
binlog_format=ROW
binlog_row_image=FULL
binlog_row_metadata=FULL
binlog_checksum=CRC32
server_id=1
gtid_strict_mode=ON
log_slave_updates=ON
expire_logs_days=0
sync_binlog=0
ssl_ca=$TLS_DIR/ca.pem
ssl_cert=$TLS_DIR/server-cert.pem
ssl_key=$TLS_DIR/server-key.pem
default_time_zone='+00:00'
character_set_server=utf8mb4
collation_server=utf8mb4_general_ci
max_allowed_packet=1G
plugin_load_add=auth_ed25519
innodb_buffer_pool_size=128M
innodb_log_file_size=64M
innodb_flush_log_at_trx_commit=2
innodb_use_native_aio=0
max_connections=200
# lets the mysql_old_password account (mes_old) log in at all
secure_auth=OFF
EOF
    cat >"$CLIENT_CNF" <<EOF
# Generated by scripts/mariadb-test-server.sh: mariadb --defaults-file=$CLIENT_CNF
[client]
socket=$SOCKET
user=root
password=$ROOT_PASSWORD
default-character-set=utf8mb4
EOF
    chmod 600 "$CLIENT_CNF"
}

# Run SQL (stdin) as root over the socket. $1 = password to use ("" = none).
root_sql() {
    local pw="$1"; shift
    if [ -n "$pw" ]; then
        "$CLIENT" --no-defaults --socket="$SOCKET" -uroot --password="$pw" --default-character-set=utf8mb4 "$@"
    else
        "$CLIENT" --no-defaults --socket="$SOCKET" -uroot --default-character-set=utf8mb4 "$@"
    fi
}

setup_users() {
    local pw="$ROOT_PASSWORD"
    if ! root_sql "$pw" -e 'SELECT 1' >/dev/null 2>&1; then
        pw=""   # fresh datadir: root@localhost has no password yet
        root_sql "" -e 'SELECT 1' >/dev/null || die "cannot log in as root over $SOCKET"
    fi
    local old_hash=""
    if root_sql "$pw" -N -e "SELECT 1 FROM information_schema.PLUGINS WHERE PLUGIN_NAME='mysql_old_password' AND PLUGIN_STATUS='ACTIVE'" 2>/dev/null | grep -q 1; then
        old_hash="$(root_sql "$pw" -N -e "SELECT OLD_PASSWORD('$OLD_PASSWORD')")"
    fi
    {
        cat <<EOF
SET SESSION sql_log_bin = 0;
EOF
        # INSTALL SONAME only if plugin_load_add did not already load it.
        if ! root_sql "$pw" -N -e "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME='ed25519'" 2>/dev/null | grep -q ACTIVE; then
            echo "INSTALL SONAME 'auth_ed25519';"
        fi
        cat <<EOF
-- anonymous accounts would shadow ours
DELETE FROM mysql.global_priv WHERE User = '';
-- root@<hostname> (passwordless, never matched with skip-name-resolve)
DELETE FROM mysql.global_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1', '%');
FLUSH PRIVILEGES;
CREATE USER IF NOT EXISTS 'root'@'localhost';
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'root'@'::1';
CREATE USER IF NOT EXISTS 'root'@'%';
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('$ROOT_PASSWORD');
ALTER USER 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('$ROOT_PASSWORD');
ALTER USER 'root'@'::1' IDENTIFIED VIA mysql_native_password USING PASSWORD('$ROOT_PASSWORD');
ALTER USER 'root'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('$ROOT_PASSWORD');
GRANT ALL PRIVILEGES ON *.* TO 'root'@'localhost' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS \`$TEST_DB\` CHARACTER SET utf8mb4;
CREATE OR REPLACE USER '$NATIVE_USER'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('$NATIVE_PASSWORD');
CREATE OR REPLACE USER '$ED25519_USER'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('$ED25519_PASSWORD');
CREATE OR REPLACE USER '$TLS_USER'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('$TLS_PASSWORD') REQUIRE SSL;
CREATE OR REPLACE USER '$X509_USER'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('$X509_PASSWORD') REQUIRE X509;
CREATE OR REPLACE USER '$NOPW_USER'@'%' IDENTIFIED VIA mysql_native_password USING '';
CREATE OR REPLACE USER '$REPL_USER'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('$REPL_PASSWORD');
GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, SELECT ON *.* TO '$REPL_USER'@'%';
EOF
        # Every login user can stream the binlog (so each auth path can be tested end to end)
        # and owns the test database.
        local u
        for u in "$NATIVE_USER" "$ED25519_USER" "$TLS_USER" "$X509_USER" "$NOPW_USER"; do
            echo "GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, SELECT ON *.* TO '$u'@'%';"
            echo "GRANT ALL PRIVILEGES ON \`$TEST_DB\`.* TO '$u'@'%';"
        done
        echo "GRANT ALL PRIVILEGES ON \`$TEST_DB\`.* TO '$REPL_USER'@'%';"
        if [ -n "$old_hash" ]; then
            echo "CREATE OR REPLACE USER '$OLD_USER'@'%' IDENTIFIED VIA mysql_old_password USING '$old_hash';"
            echo "GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, SELECT ON *.* TO '$OLD_USER'@'%';"
            echo "GRANT ALL PRIVILEGES ON \`$TEST_DB\`.* TO '$OLD_USER'@'%';"
        fi
        echo "FLUSH PRIVILEGES;"
    } | root_sql "$pw" || die "user setup failed"
}

show_error_log() {
    if [ -f "$ERROR_LOG" ]; then
        log "---- last lines of $ERROR_LOG ----"
        tail -n 60 "$ERROR_LOG" >&2 || true
        log "----"
    fi
    if [ -s "$BASE/mariadbd.out" ]; then
        log "---- $BASE/mariadbd.out ----"
        tail -n 30 "$BASE/mariadbd.out" >&2 || true
    fi
}

cmd_start() {
    ensure_installed
    mkdir -p "$BASE" "$BINLOG_DIR" "$TMP_DIR"
    local pid
    if pid="$(running_pid)"; then
        log "already running: pid $pid, port $PORT, socket $SOCKET"
        return 0
    fi
    rm -f "$PIDFILE"
    if port_in_use; then
        die "port $HOST:$PORT is already in use by another process (set MES_TEST_PORT)"
    fi
    local user_args=()
    [ "$(id -u)" -eq 0 ] && user_args=(--user=root)
    make_certs
    write_cnf
    if [ ! -d "$DATADIR/mysql" ]; then
        log "initialising datadir $DATADIR"
        rm -rf "$DATADIR"; mkdir -p "$DATADIR"
        if ! "$INSTALL_DB" --no-defaults --datadir="$DATADIR" --auth-root-authentication-method=normal \
                --skip-test-db "${user_args[@]}" >"$BASE/install-db.log" 2>&1; then
            cat "$BASE/install-db.log" >&2
            rm -rf "$DATADIR"
            die "mariadb-install-db failed"
        fi
    fi
    log "starting $MARIADBD on $HOST:$PORT (datadir $DATADIR)"
    : >"$BASE/mariadbd.out"
    # --defaults-file must be the first option. stdin from /dev/null so we never hold a terminal.
    "$MARIADBD" --defaults-file="$CNF" "${user_args[@]}" </dev/null >>"$BASE/mariadbd.out" 2>&1 &
    pid=$!
    echo "$pid" >"$PIDFILE"
    local deadline=$((SECONDS + ${MES_TEST_START_TIMEOUT:-60}))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            show_error_log
            die "mariadbd (pid $pid) exited during startup"
        fi
        if [ -S "$SOCKET" ] && "$ADMIN" --no-defaults --socket="$SOCKET" --connect-timeout=2 ping >/dev/null 2>&1; then
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            show_error_log
            log "stopping pid $pid after timeout"
            stop_pid "$pid"
            rm -f "$PIDFILE"
            die "mariadbd did not answer within ${MES_TEST_START_TIMEOUT:-60}s"
        fi
        sleep 0.3
    done
    if ! (setup_users); then
        log "user setup failed; stopping pid $pid"
        stop_pid "$pid"
        rm -f "$PIDFILE"
        exit 1
    fi
    log "running: pid $pid, $HOST:$PORT, socket $SOCKET"
}

stop_pid() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 600); do   # up to 60 s
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    log "pid $pid did not exit after TERM; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    die "pid $pid still alive after KILL"
}

cmd_stop() {
    if [ ! -f "$PIDFILE" ]; then
        log "not running (no pidfile $PIDFILE)"
        return 0
    fi
    local pid
    pid="$(tr -dc '0-9' <"$PIDFILE")"
    if is_our_server "$pid"; then
        log "stopping pid $pid"
        stop_pid "$pid"
        # Reap if it is our own child (only when start and stop ran in the same shell).
        wait "$pid" 2>/dev/null || true
        log "stopped"
    else
        log "stale pidfile (pid '$pid' is not our mariadbd); removing it"
    fi
    rm -f "$PIDFILE"
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        echo "running: pid $pid, $HOST:$PORT, socket $SOCKET, datadir $DATADIR"
        return 0
    fi
    echo "not running"
    return 3
}

cmd_env() {
    cat <<EOF
export MES_TEST_HOST=$HOST
export MES_TEST_PORT=$PORT
export MES_TEST_SOCKET='$SOCKET'
export MES_TEST_USER=root
export MES_TEST_PASSWORD='$ROOT_PASSWORD'
export MES_TEST_DATABASE='$TEST_DB'
export MES_TEST_TLS_CA='$TLS_DIR/ca.pem'
export MES_TEST_TLS_CERT='$TLS_DIR/client-cert.pem'
export MES_TEST_TLS_KEY='$TLS_DIR/client-key.pem'
export MES_TEST_TLS_SERVER_CERT='$TLS_DIR/server-cert.pem'
export MES_TEST_DATADIR='$DATADIR'
export MES_TEST_BINLOG_DIR='$BINLOG_DIR'
export MES_TEST_BINLOG_BASENAME='$BINLOG_BASENAME'
export MES_TEST_CLIENT_CNF='$CLIENT_CNF'
export MES_TEST_NATIVE_USER=$NATIVE_USER
export MES_TEST_NATIVE_PASSWORD='$NATIVE_PASSWORD'
export MES_TEST_ED25519_USER=$ED25519_USER
export MES_TEST_ED25519_PASSWORD='$ED25519_PASSWORD'
export MES_TEST_TLS_USER=$TLS_USER
export MES_TEST_TLS_PASSWORD='$TLS_PASSWORD'
export MES_TEST_X509_USER=$X509_USER
export MES_TEST_X509_PASSWORD='$X509_PASSWORD'
export MES_TEST_REPL_USER=$REPL_USER
export MES_TEST_REPL_PASSWORD='$REPL_PASSWORD'
export MES_TEST_NOPW_USER=$NOPW_USER
export MES_TEST_NOPW_PASSWORD=''
export MES_TEST_OLD_USER=$OLD_USER
export MES_TEST_OLD_PASSWORD='$OLD_PASSWORD'
EOF
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
