#!/usr/bin/env bash
# Print the SQL of a benchmark workload on stdout (MariaDB: uses the SEQUENCE engine's seq_A_to_B).
# Shared by benches/gen-bench-binlog.sh (criterion inputs) and benches/compare/run.sh.
#
#   benches/workload.sh KIND N [BATCH]    the workload's SQL
#   benches/workload.sh --table KIND      the table it writes (database `bench`)
#
# KIND:
#   ref    DESIGN.md §6 reference table (id INT PK, k INT, c CHAR(120), pad CHAR(60),
#          amount DECIMAL(12,2), ts DATETIME(6), score DOUBLE): N inserts, then N updates, then N
#          deletes, in statements of BATCH rows (default 1000), one transaction each;
#   wide   a 30-column table of mixed types (integers signed/unsigned, FLOAT, DOUBLE, DECIMALs,
#          DATE, TIME(3), DATETIME(6), TIMESTAMP(6), YEAR, CHAR, VARCHAR, VARBINARY, TEXT, BLOB,
#          ENUM, SET, BIT, nullable columns that are sometimes NULL); same N/N/N pattern;
#   json   a JSON-heavy table (id INT PK, k INT, doc JSON ~1 KB, tags JSON); same N/N/N pattern
#          (MariaDB stores JSON as LONGTEXT, so the binlog carries the JSON text);
#   big    ONE transaction: a single INSERT of N rows of ~1 KiB (id INT PK, k INT,
#          payload VARBINARY(1000)), for the bounded-memory check.
# In every kind the first column is `id` and each kind of change (INSERT / UPDATE / DELETE)
# touches ids 1..N exactly once, which the comparison contenders verify.
set -euo pipefail

usage() { echo "usage: $0 ref|wide|json|big N [BATCH]   |   $0 --table KIND" >&2; exit 2; }

table_of() {
    case "$1" in
        ref) echo sbtest1 ;;
        wide) echo wide1 ;;
        json) echo json1 ;;
        big) echo big1 ;;
        *) usage ;;
    esac
}

if [ "${1:-}" = "--table" ]; then
    [ $# -eq 2 ] || usage
    table_of "$2"
    exit 0
fi
[ $# -ge 2 ] || usage
KIND="$1"
N="$2"
BATCH="${3:-1000}"
table_of "$KIND" >/dev/null   # validates KIND
[[ "$N" =~ ^[0-9]+$ && "$N" -gt 0 ]] || { echo "N must be > 0" >&2; exit 2; }
[[ "$BATCH" =~ ^[0-9]+$ && "$BATCH" -gt 0 ]] || { echo "BATCH must be > 0" >&2; exit 2; }

cat <<EOF
USE bench;
SET SESSION binlog_format = 'ROW';
EOF

# Rows a..b of each phase: $1 = a statement template with @A@ / @B@ placeholders.
batches() {
    local tpl="$1" a b s
    for ((a = 1; a <= N; a += BATCH)); do
        b=$((a + BATCH - 1)); [ "$b" -le "$N" ] || b=$N
        s="${tpl//@A@/$a}"
        echo "${s//@B@/$b}"
    done
}

case "$KIND" in
ref)
    cat <<'EOF'
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
    # sysbench-like filler: c = 11-digit groups joined by '-', pad = 60 chars; all columns full width.
    batches "INSERT INTO bench.sbtest1 SELECT seq, seq * 7919 % 1000003, LEFT(CONCAT_WS('-', LPAD(seq*48271 % 99999999989, 11, '0'), LPAD(seq*69621 % 99999999977, 11, '0'), LPAD(seq*16807 % 99999999967, 11, '0'), LPAD(seq*39373 % 99999999943, 11, '0'), LPAD(seq*40692 % 99999999929, 11, '0'), LPAD(seq*40014 % 99999999907, 11, '0'), LPAD(seq*44488 % 99999999851, 11, '0'), LPAD(seq*3399 % 99999999833, 11, '0'), LPAD(seq*52774 % 99999999817, 11, '0'), LPAD(seq*10007 % 99999999787, 11, '0')), 120), LEFT(CONCAT(SHA1(seq), SHA1(seq + 1)), 60), (seq * 37 % 100000000) / 100, TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND, seq / 7.0 FROM seq_@A@_to_@B@;"
    batches "UPDATE bench.sbtest1 SET k = k + 1, c = CONCAT(SUBSTRING(c, 2), LEFT(c, 1)), amount = amount + 0.01, ts = ts + INTERVAL 1 SECOND, score = score * 1.5 WHERE id BETWEEN @A@ AND @B@;"
    batches "DELETE FROM bench.sbtest1 WHERE id BETWEEN @A@ AND @B@;"
    ;;
wide)
    cat <<'EOF'
CREATE TABLE bench.wide1 (
    id INT NOT NULL PRIMARY KEY,
    c_tiny TINYINT NOT NULL,
    c_utiny TINYINT UNSIGNED NOT NULL,
    c_small SMALLINT NOT NULL,
    c_medium MEDIUMINT NOT NULL,
    c_int INT NULL,
    c_uint INT UNSIGNED NOT NULL,
    c_big BIGINT NOT NULL,
    c_ubig BIGINT UNSIGNED NOT NULL,
    c_float FLOAT NOT NULL,
    c_double DOUBLE NULL,
    c_dec1 DECIMAL(10,2) NOT NULL,
    c_dec2 DECIMAL(30,10) NOT NULL,
    c_date DATE NOT NULL,
    c_time TIME(3) NOT NULL,
    c_dt DATETIME(6) NOT NULL,
    c_ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    c_year YEAR NOT NULL,
    c_char CHAR(20) NOT NULL,
    c_vchar VARCHAR(100) NOT NULL,
    c_vchar_null VARCHAR(40) NULL,
    c_vbin VARBINARY(32) NOT NULL,
    c_text TEXT NOT NULL,
    c_blob BLOB NULL,
    c_enum ENUM('red','green','blue','cyan','magenta') NOT NULL,
    c_set SET('a','b','c','d','e','f') NOT NULL,
    c_bit BIT(10) NOT NULL,
    c_bool BOOLEAN NOT NULL,
    c_latin VARCHAR(30) CHARACTER SET latin1 NOT NULL,
    c_last INT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
EOF
    batches "INSERT INTO bench.wide1 SELECT seq, seq % 127, seq % 256, seq % 32000 - 16000, seq * 31 % 8000000 - 4000000, IF(seq % 5 = 0, NULL, seq * 7), seq * 2654435761 % 4294967296, seq * 1000003 - 500000000000, CAST(CONV(LEFT(SHA1(seq), 16), 16, 10) AS UNSIGNED), seq / 3, IF(seq % 7 = 0, NULL, seq / 11.0), (seq * 13 % 100000000) / 100, (seq * 104729) / 1000000000, DATE'2020-01-01' + INTERVAL (seq % 3650) DAY, SEC_TO_TIME(seq % 86400) + INTERVAL (seq % 1000) * 1000 MICROSECOND, TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq SECOND + INTERVAL (seq % 999999) MICROSECOND, TIMESTAMP'2024-06-01 00:00:00' + INTERVAL seq SECOND, 1901 + seq % 254, LEFT(SHA1(seq), 20), CONCAT('name-', seq, '-', SHA1(seq), '-', MD5(seq)), IF(seq % 3 = 0, NULL, LEFT(MD5(seq), 40)), UNHEX(SHA1(seq)), REPEAT(CONCAT(MD5(seq), ' '), 4), IF(seq % 4 = 0, NULL, UNHEX(REPEAT(MD5(seq), 2))), 1 + seq % 5, seq % 64, seq % 1024, seq % 2, CONCAT('caf', CHAR(233), '-', seq), seq FROM (SELECT CAST(seq AS SIGNED) AS seq FROM seq_@A@_to_@B@) AS s;"
    batches "UPDATE bench.wide1 SET c_int = IF(c_int IS NULL, id, NULL), c_double = COALESCE(c_double, 0) + 1.5, c_dec1 = c_dec1 + 0.01, c_dt = c_dt + INTERVAL 1 SECOND, c_vchar = CONCAT(c_vchar, '!'), c_set = c_set | 1, c_last = c_last + 1 WHERE id BETWEEN @A@ AND @B@;"
    batches "DELETE FROM bench.wide1 WHERE id BETWEEN @A@ AND @B@;"
    ;;
json)
    cat <<'EOF'
CREATE TABLE bench.json1 (
    id INT NOT NULL PRIMARY KEY,
    k INT NOT NULL,
    doc JSON NOT NULL,
    tags JSON NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
EOF
    # doc: a nested object of ~1 KB (strings, numbers, booleans, null, an array of objects).
    batches "INSERT INTO bench.json1 SELECT seq, seq % 1000, JSON_OBJECT('id', seq, 'name', CONCAT('customer ', seq), 'email', CONCAT('user', seq, '@example.com'), 'active', seq % 2 = 0, 'score', seq / 7.0, 'balance', (seq * 37 % 1000000) / 100, 'note', NULL, 'address', JSON_OBJECT('street', CONCAT(seq % 999, ' Main Street'), 'city', ELT(1 + seq % 4, 'Berlin', 'Paris', 'Lisbon', 'Oslo'), 'zip', LPAD(seq % 100000, 5, '0'), 'geo', JSON_ARRAY(seq % 90, seq % 180)), 'orders', JSON_ARRAY(JSON_OBJECT('sku', SHA1(seq), 'qty', seq % 9, 'price', (seq % 10000) / 100), JSON_OBJECT('sku', SHA1(seq + 1), 'qty', seq % 5, 'price', (seq % 7000) / 100), JSON_OBJECT('sku', MD5(seq), 'qty', 1, 'price', 9.99)), 'history', JSON_ARRAY(seq, seq + 1, seq + 2, seq + 3, seq + 4, seq + 5, seq + 6, seq + 7), 'bio', REPEAT(CONCAT(MD5(seq), ' '), 6)), IF(seq % 3 = 0, NULL, JSON_ARRAY('tag-a', CONCAT('tag-', seq % 17), CONCAT('tag-', seq % 23))) FROM seq_@A@_to_@B@;"
    batches "UPDATE bench.json1 SET k = k + 1, doc = JSON_SET(doc, '\$.score', k + 1, '\$.status', 'updated', '\$.address.zip', LPAD(id % 99991, 5, '0')) WHERE id BETWEEN @A@ AND @B@;"
    batches "DELETE FROM bench.json1 WHERE id BETWEEN @A@ AND @B@;"
    ;;
big)
    cat <<EOF
CREATE TABLE bench.big1 (
    id INT NOT NULL PRIMARY KEY,
    k INT NOT NULL,
    payload VARBINARY(1000) NOT NULL
) ENGINE=InnoDB;
INSERT INTO bench.big1 SELECT seq, seq % 1000, LEFT(REPEAT(UNHEX(SHA2(seq, 512)), 16), 1000) FROM seq_1_to_$N;
EOF
    ;;
esac
