"""Round trip through the private MariaDB test server (scripts/mariadb-test-server.sh): write
rows of every column type with SQL, decode the binlog the server wrote, and check the Python
values against the value table of PYTHON_API.md §2 — and, when the original 1.8.0 wheel is
installed (build/venv-orig), against what the original decodes from the same bytes.

Needs the ``MES_TEST_*`` environment that ``eval "$(scripts/mariadb-test-server.sh env)"``
prints (scripts/test.sh does it). Skipped loudly without it (failed with
``MES_REQUIRE_SERVER=1``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import HERE, feed_all, read_binlog, split_events
from mysql_event_stream import CdcEngine, EventType
from test_differential import ORIG_PYTHON, orig_available

DB = "mes_py_roundtrip"

SET64 = ",".join(f"'m{i}'" for i in range(64))

SCHEMA = f"""
DROP DATABASE IF EXISTS {DB};
CREATE DATABASE {DB} CHARACTER SET utf8mb4;
CREATE TABLE {DB}.t (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  f FLOAT, d DOUBLE,
  dec1 DECIMAL(10,2), dec2 DECIMAL(65,30), dec3 DECIMAL(5,0), dec4 DECIMAL(4,3),
  da DATE, t0 TIME, t1 TIME(1), t6 TIME(6),
  dtm0 DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6),
  ts0 TIMESTAMP NULL DEFAULT NULL, ts3 TIMESTAMP(3) NULL DEFAULT NULL,
  ts6 TIMESTAMP(6) NULL DEFAULT NULL,
  y YEAR,
  c CHAR(10), vc VARCHAR(100), vcl VARCHAR(20) CHARACTER SET latin1, tx TEXT,
  bn BINARY(4), vb VARBINARY(10), bl BLOB, txb TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  e ENUM('a','b','c'), s SET('x','y','z'), s64 SET({SET64}),
  b1 BIT(1), b12 BIT(12), b64 BIT(64),
  j JSON,
  vcc VARCHAR(100) COMPRESSED, tc TEXT COMPRESSED
) ENGINE=InnoDB;
CREATE TABLE {DB}.geo (id INT PRIMARY KEY, g GEOMETRY, c CHAR(3)) ENGINE=InnoDB;
"""

WORKLOAD = f"""
SET time_zone = '+00:00';
SET sql_mode = '';
INSERT INTO {DB}.t VALUES (
  1,
  -1, 255, -2, 65535, -3, 16777215, -5, 4294967295, -9223372036854775808, 18446744073709551615,
  1.5, 2.25,
  -1234.56, 12345678901234567890123456789012345.123456789012345678901234567890, 123, 0.5,
  '2024-01-02', '-01:02:03', '12:34:56.7', '-00:00:01.5',
  '2024-01-02 03:04:05', '2024-01-02 03:04:05.123', '2024-01-02 03:04:05.123456',
  '2025-01-01 00:00:00', '2025-01-01 00:00:00.123', '2025-01-01 00:00:00.123456',
  2024,
  'héllo', '', 'café', 'text', X'0001', X'FF00', X'', 'bin',
  'b', 'x,z', '{",".join(f"m{i}" for i in range(64))}',
  b'1', b'101010111100', 0xFFFFFFFFFFFFFFFF,
  '{{"a": 1}}',
  'hello hello hello', REPEAT('compressible ', 50)
);
INSERT INTO {DB}.t (id) VALUES (2);
INSERT INTO {DB}.t (id, da, dtm0, ts0, y, dec4) VALUES
  (3, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', 0, 0);
INSERT INTO {DB}.geo VALUES (1, ST_GeomFromText('POINT(1 2)'), 'abc');
UPDATE {DB}.t SET i = i + 1, vc = 'changed' WHERE id = 1;
DELETE FROM {DB}.t WHERE id = 2;
"""


def sql(cnf: str, statements: str) -> str:
    r = subprocess.run(
        ["mariadb", f"--defaults-file={cnf}", "-N", "-B", "-e", statements],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def binlog() -> bytes:
    cnf = os.environ.get("MES_TEST_CLIENT_CNF")
    binlog_dir = os.environ.get("MES_TEST_BINLOG_DIR")
    if not cnf or not binlog_dir or not Path(cnf).is_file():
        msg = (
            "!!! MariaDB test server environment (MES_TEST_CLIENT_CNF, MES_TEST_BINLOG_DIR) not "
            'set: round-trip tests SKIPPED (eval "$(scripts/mariadb-test-server.sh env)")'
        )
        print(msg, file=sys.stderr)
        if os.environ.get("MES_REQUIRE_SERVER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    sql(cnf, SCHEMA)
    sql(cnf, "FLUSH BINARY LOGS")
    file = sql(cnf, "SHOW MASTER STATUS").split("\t")[0]
    sql(cnf, WORKLOAD)
    sql(cnf, "FLUSH BINARY LOGS")
    return read_binlog(Path(binlog_dir) / file)


def split_at_geo(binlog: bytes) -> tuple[bytes, bytes]:
    """The stream before / from the transaction of the GEOMETRY table."""
    events = split_events(binlog)
    k = next(i for i, ev in enumerate(events) if ev[4] == 19 and b"geo" in ev[19:80])
    # Back to the transaction's GTID event (MariaDB GTID_EVENT, type 162).
    while events[k][4] != 162:
        k -= 1
    return b"".join(events[:k]), b"".join(events[k:])


def decode(binlog: bytes, **kw) -> list:
    """Events of the `t` table."""
    e = CdcEngine(**kw)
    e.set_include_databases([DB])
    e.set_include_tables(["t"])
    return feed_all(e, binlog)


def _skip_txn(stream: bytes) -> list[bytes]:
    """The events after the first transaction (through its XID, type 16)."""
    events = split_events(stream)
    k = next(i for i, ev in enumerate(events) if ev[4] == 16)
    return events[k + 1 :]


def test_event_shapes(binlog):
    events = decode(binlog)
    assert [(ev.type, (ev.after or ev.before)["id"]) for ev in events] == [
        (EventType.INSERT, 1),
        (EventType.INSERT, 2),
        (EventType.INSERT, 3),
        (EventType.UPDATE, 1),
        (EventType.DELETE, 2),
    ]
    for ev in events:
        assert ev.database == DB and ev.table == "t"
        assert ev.names_resolved is True  # binlog_row_metadata=FULL
        assert ev.gtid and ev.gtid.count("-") == 2  # MariaDB d-s-n
        assert ev.position.file.startswith(os.environ["MES_TEST_BINLOG_BASENAME"]) or (
            ev.position.file == ""
        )
    upd = events[3]
    assert upd.before["i"] == -5 and upd.after["i"] == -4
    assert upd.before["vc"] == "" and upd.after["vc"] == "changed"
    assert events[4].after is None and set(events[4].before.values()) == {2, None}
    assert all(v is None for k, v in events[1].after.items() if k != "id")


def test_values_match_the_contract_table(binlog):
    row = decode(binlog)[0].after
    expected = {
        "ti": -1, "tiu": 255, "si": -2, "siu": 65535, "mi": -3, "miu": 16777215, "i": -5,
        "iu": 4294967295, "bi": -9223372036854775808, "biu": "18446744073709551615",
        "f": 1.5, "d": 2.25,
        "dec1": "-1234.56",
        "dec2": "12345678901234567890123456789012345.123456789012345678901234567890",
        "dec3": "123", "dec4": "0.500",
        "da": "2024-01-02", "t0": "-01:02:03", "t1": "12:34:56.7", "t6": "-00:00:01.500000",
        "dtm0": "2024-01-02 03:04:05", "dtm3": "2024-01-02 03:04:05.123",
        "dtm6": "2024-01-02 03:04:05.123456",
        "ts0": "1735689600", "ts3": "1735689600.123", "ts6": "1735689600.123456",
        "y": 2024,
        "c": "héllo", "vc": "", "vcl": "caf\udce9", "tx": "text",
        "vb": b"\xff\x00", "bl": b"", "txb": "bin",
        "e": 2, "s": 5, "s64": "18446744073709551615",
        "b1": 1, "b12": 2748, "b64": "18446744073709551615",
        "j": '{"a": 1}',
        "vcc": "hello hello hello", "tc": "compressible " * 50,
    }  # fmt: skip
    for key, value in expected.items():
        assert row[key] == value and type(row[key]) is type(value), (key, row[key], value)
    assert row["bn"][:2] == b"\x00\x01" and isinstance(row["bn"], bytes)
    zero = decode(binlog)[2].after
    assert zero["da"] == "0000-00-00" and zero["dtm0"] == "0000-00-00 00:00:00"
    assert zero["ts0"] == "0" and zero["y"] == 0 and zero["dec4"] == "0.000"


def test_native_types_roundtrip(binlog):
    events = decode(binlog, native_types=True)
    row = events[0].after
    assert row["biu"] == 18446744073709551615 and row["b64"] == 2**64 - 1
    assert row["dec1"] == Decimal("-1234.56") and row["dec4"] == Decimal("0.500")
    assert row["da"] == dt.date(2024, 1, 2)
    assert row["t6"] == -dt.timedelta(seconds=1, microseconds=500000)
    assert row["dtm6"] == dt.datetime(2024, 1, 2, 3, 4, 5, 123456)
    assert row["ts3"] == dt.datetime(2025, 1, 1, 0, 0, 0, 123000, tzinfo=dt.UTC)
    assert row["e"] == "b" and row["s"] == frozenset({"x", "z"})
    assert row["s64"] == frozenset(f"m{i}" for i in range(64))
    assert row["vcl"] == "café"  # decoded with the column's charset in native mode
    assert row["j"] == '{"a": 1}'  # MariaDB JSON is LONGTEXT: text, not parsed
    zero = events[2].after
    assert zero["da"] == "0000-00-00" and zero["dtm0"] == "0000-00-00 00:00:00"
    assert zero["ts0"] == "0000-00-00 00:00:00"


def test_geometry_table_map(binlog):
    # Regression: MariaDB counts GEOMETRY columns in the TABLE_MAP charset metadata.
    e = CdcEngine()
    e.set_include_databases([DB])
    e.set_include_tables(["geo"])
    (ev,) = feed_all(e, binlog)
    assert ev.after["c"] == "abc"
    # GEOMETRY: 4-byte SRID + WKB point (1 2).
    assert ev.after["g"][:4] == b"\x00\x00\x00\x00" and len(ev.after["g"]) == 25


def test_same_as_original(binlog, tmp_path):
    if not orig_available():
        msg = f"!!! original 1.8.0 not at {ORIG_PYTHON}: MariaDB differential SKIPPED"
        print(msg, file=sys.stderr)
        if os.environ.get("MES_REQUIRE_ORIG") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    path = tmp_path / "mariadb.binlog"
    before, after = split_at_geo(binlog)
    binlog = before + b"".join(_skip_txn(after))
    path.write_bytes(b"\xfebin" + binlog)
    r = subprocess.run(
        [str(ORIG_PYTHON), str(HERE / "dump_events.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    orig = json.loads(r.stdout)[str(path)]
    assert orig["error"] is None, orig["attempts"]
    import dump_events

    ours = dump_events.run(binlog, "default", 0)
    assert ours["error"] is None
    mine = [ev for ev in ours["events"] if ev["database"] == DB]
    theirs = [ev for ev in orig["events"] if ev["database"] == DB]
    assert len(mine) == 5
    assert mine == theirs
