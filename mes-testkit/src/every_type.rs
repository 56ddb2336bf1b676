//! An "every column type" end-to-end check of the drivers against the private MariaDB of the
//! test script, with the server as the oracle (DESIGN §5 item 2).
//!
//! [`EveryType`] creates a table holding every MariaDB 10.11 column type — integers of every
//! width signed and unsigned, DECIMAL of several precisions (up to (65,30), unsigned), FLOAT,
//! DOUBLE, BIT(1–64), DATE, TIME / DATETIME / TIMESTAMP with fsp 0, 3 and 6, YEAR, CHAR /
//! VARCHAR in utf8mb4 and latin1, BINARY / VARBINARY, TINY/MEDIUM/LONG TEXT and BLOB, ENUM,
//! SET, JSON (a LONGTEXT in MariaDB), GEOMETRY and POINT, INET4, INET6 and UUID — and runs
//! three phases: INSERT of edge values (minima, maxima, zero, NULL, empty strings, negative and
//! fractional times, zero dates, multi-byte text, zero bytes, values of 70 000 and more bytes),
//! UPDATE of every row to another row's values (to and from NULL), DELETE of every row. After
//! each phase it takes a `SELECT` snapshot (`time_zone = '+00:00'`, every cell fetched as hex,
//! so it is byte-exact). The test streams the database through a driver and hands every change
//! event to [`EveryType::check`], which renders it with `json_lines::write_change` (DESIGN §4,
//! what `mes stream` prints) and compares every value with the snapshot: INSERT after images
//! with the first, UPDATE before images with the first and after images with the second,
//! DELETE before images with the second. [`EveryType::finish`] fails on any mismatch and on a
//! missing or repeated change.
//!
//! (`mysql-binlog-codec/tests/live_roundtrip.rs` does the same for the codec alone, from binlog
//! files, with random rows on top of its edge values.)
//! Test support: a failed step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use base64::Engine as _;
use mysql_binlog_codec::engine::json_lines::write_change;
use mysql_binlog_codec::engine::{ChangeEvent, ChangeKind};
use serde_json::{Map, Value as J};

use crate::live::sql_stdin;

/// How a column's decoded value is compared with its `SELECT` cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A JSON integer equal to the text.
    Int,
    /// A JSON integer; SELECT prints four digits.
    Year,
    /// A JSON integer; SELECT of `CAST(col AS UNSIGNED)`.
    Bit,
    /// A float32 (JSON number); SELECT of `CAST(col AS DOUBLE)`, which widens it exactly.
    Float,
    /// A float64 (JSON number) with the same bits as the text parsed.
    Double,
    /// A JSON string equal to the text (decimals, temporals, text, ENUM, SET, MariaDB JSON).
    Text,
    /// Base64 of the stored bytes; SELECT of `HEX(col)`.
    Bytes,
}

struct Col {
    name: String,
    ddl: String,
    kind: Kind,
    /// SQL literals (expressions) of the non-NULL edge values.
    edges: Vec<String>,
}

/// Session settings of every script: UTC for TIMESTAMP, a strict mode that still allows zero
/// dates, row-based logging with full images.
const PRELUDE: &str = "SET NAMES utf8mb4;\n\
    SET SESSION time_zone = '+00:00';\n\
    SET SESSION sql_mode = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';\n\
    SET SESSION binlog_format = 'ROW';\n\
    SET SESSION binlog_row_image = 'FULL';\n";

fn strs(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| (*s).to_owned()).collect()
}

fn quoted(xs: &[&str]) -> Vec<String> {
    xs.iter()
        .map(|s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")))
        .collect()
}

fn columns() -> Vec<Col> {
    let mut cols = Vec::new();
    let mut add = |name: &str, ddl: &str, kind: Kind, edges: Vec<String>| {
        cols.push(Col {
            name: name.to_owned(),
            ddl: ddl.to_owned(),
            kind,
            edges,
        });
    };
    for (base, bits) in [
        ("TINYINT", 8u32),
        ("SMALLINT", 16),
        ("MEDIUMINT", 24),
        ("INT", 32),
        ("BIGINT", 64),
    ] {
        let (min, max) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
        let signed = [min, max, 0, -1, 1, max / 3];
        add(
            &format!("{}_s", base.to_lowercase()),
            base,
            Kind::Int,
            signed.iter().map(i128::to_string).collect(),
        );
        let umax = (1i128 << bits) - 1;
        let unsigned = [0, umax, 1, umax - 1, 1i128 << (bits - 1), 7];
        add(
            &format!("{}_u", base.to_lowercase()),
            &format!("{base} UNSIGNED"),
            Kind::Int,
            unsigned.iter().map(i128::to_string).collect(),
        );
    }
    let nines = |n: usize| "9".repeat(n);
    add(
        "dec65_30",
        "DECIMAL(65,30)",
        Kind::Text,
        vec![
            format!("{}.{}", nines(35), nines(30)),
            format!("-{}.{}", nines(35), nines(30)),
            "0".into(),
            format!("0.{}1", "0".repeat(29)),
            "-1.5".into(),
            "12345678901234567890.123456789012345678901234567890".into(),
        ],
    );
    add(
        "dec10_0",
        "DECIMAL(10,0)",
        Kind::Text,
        strs(&["9999999999", "-9999999999", "0", "1", "-1", "42"]),
    );
    add(
        "dec5_2",
        "DECIMAL(5,2)",
        Kind::Text,
        strs(&["999.99", "-999.99", "0", "0.01", "-0.01", "1.5"]),
    );
    add(
        "dec18_9",
        "DECIMAL(18,9)",
        Kind::Text,
        strs(&[
            "999999999.999999999",
            "-999999999.999999999",
            "0",
            "0.000000001",
            "-123.456",
        ]),
    );
    add(
        "dec20_4u",
        "DECIMAL(20,4) UNSIGNED",
        Kind::Text,
        strs(&["9999999999999999.9999", "0", "0.0001", "1234.5"]),
    );
    add(
        "dec1_0",
        "DECIMAL(1,0)",
        Kind::Text,
        strs(&["9", "-9", "0"]),
    );
    add(
        "f",
        "FLOAT",
        Kind::Float,
        strs(&[
            "3.4028234663852886e38",
            "-3.4028234663852886e38",
            "0",
            "1.401298464324817e-45",
            "0.1",
            "16777217",
        ]),
    );
    add(
        "d",
        "DOUBLE",
        Kind::Double,
        strs(&[
            "1.7976931348623157e308",
            "-1.7976931348623157e308",
            "0",
            "5e-324",
            "0.1",
            "-2.2250738585072014e-308",
        ]),
    );
    add("bit1", "BIT(1)", Kind::Bit, strs(&["0", "1"]));
    add("bit8", "BIT(8)", Kind::Bit, strs(&["0", "255", "1", "128"]));
    add(
        "bit17",
        "BIT(17)",
        Kind::Bit,
        strs(&["0", "131071", "65536"]),
    );
    add(
        "bit64",
        "BIT(64)",
        Kind::Bit,
        strs(&["0", "18446744073709551615", "1", "9223372036854775808"]),
    );
    add(
        "dt_date",
        "DATE",
        Kind::Text,
        quoted(&[
            "0000-00-00",
            "1000-01-01",
            "9999-12-31",
            "2024-02-29",
            "2024-00-00",
            "1970-01-01",
        ]),
    );
    add(
        "t0",
        "TIME",
        Kind::Text,
        quoted(&[
            "-838:59:59",
            "838:59:59",
            "00:00:00",
            "-00:00:01",
            "12:34:56",
            "100:00:00",
        ]),
    );
    add(
        "t3",
        "TIME(3)",
        Kind::Text,
        quoted(&[
            "-838:59:58.999",
            "838:59:58.999",
            "00:00:00.000",
            "-00:00:00.001",
            "23:59:59.999",
            "-12:34:56.5",
        ]),
    );
    add(
        "t6",
        "TIME(6)",
        Kind::Text,
        quoted(&[
            "-838:59:58.999999",
            "838:59:58.999999",
            "00:00:00",
            "-00:00:00.000001",
            "23:59:59.999999",
            "100:00:00.000001",
        ]),
    );
    for (name, ddl) in [
        ("dt0", "DATETIME"),
        ("dt3", "DATETIME(3)"),
        ("dt6", "DATETIME(6)"),
    ] {
        add(
            name,
            ddl,
            Kind::Text,
            quoted(&[
                "0000-00-00 00:00:00",
                "1000-01-01 00:00:00",
                "9999-12-31 23:59:59.999999",
                "2024-02-29 12:34:56.123456",
                "2024-00-00 00:00:00",
                "0001-01-01 00:00:00.000001",
            ]),
        );
    }
    for (name, ddl) in [
        ("ts0", "TIMESTAMP NULL DEFAULT NULL"),
        ("ts3", "TIMESTAMP(3) NULL DEFAULT NULL"),
        ("ts6", "TIMESTAMP(6) NULL DEFAULT NULL"),
    ] {
        add(
            name,
            ddl,
            Kind::Text,
            quoted(&[
                "0000-00-00 00:00:00",
                "1970-01-01 00:00:01",
                "2038-01-19 03:14:07.999999",
                "2000-02-29 23:59:59.5",
                "1999-12-31 23:59:59.000001",
            ]),
        );
    }
    add(
        "y",
        "YEAR",
        Kind::Year,
        strs(&["0", "1901", "2155", "2000", "1999"]),
    );
    let texts = |max: usize| {
        let mut v = quoted(&[
            "",
            "NULL",
            "a  ",
            "  lead",
            "'\\\"\t\n\r%_",
            "é名\u{10FFFF}\u{FFFD}\u{FEFF}",
        ]);
        v.push(format!("'{}'", "😀".repeat(max)));
        v
    };
    add("c10", "CHAR(10)", Kind::Text, texts(10));
    add("v50", "VARCHAR(50)", Kind::Text, texts(50));
    add(
        "vbin",
        "VARCHAR(20) COLLATE utf8mb4_bin",
        Kind::Text,
        texts(20),
    );
    let latin = |max: usize| {
        let mut v = quoted(&["", "café", "ÿ€‰Œ", "a  ", "'\\\"\t\n"]);
        v.push(format!("'{}'", "ß".repeat(max)));
        v
    };
    add(
        "lc10",
        "CHAR(10) CHARACTER SET latin1",
        Kind::Text,
        latin(10),
    );
    add(
        "lv50",
        "VARCHAR(50) CHARACTER SET latin1",
        Kind::Text,
        latin(50),
    );
    add(
        "b8",
        "BINARY(8)",
        Kind::Bytes,
        strs(&[
            "X''",
            "X'00'",
            "X'0000000000000000'",
            "X'FFFFFFFFFFFFFFFF'",
            "X'010000'",
            "X'00000007'",
        ]),
    );
    add(
        "vb20",
        "VARBINARY(20)",
        Kind::Bytes,
        strs(&[
            "X''",
            "X'00'",
            "X'FF00FF'",
            "X'000102030405060708090A0B0C0D0E0F10111213'",
        ]),
    );
    add(
        "ttext",
        "TINYTEXT",
        Kind::Text,
        vec![
            "''".into(),
            "REPEAT('x', 255)".into(),
            "REPEAT('é', 127)".into(),
            "'😀 tiny'".into(),
        ],
    );
    add(
        "txt",
        "TEXT",
        Kind::Text,
        vec![
            "''".into(),
            "REPEAT('名', 21845)".into(),
            "'line1\\nline2\\ttab'".into(),
        ],
    );
    add(
        "mtext",
        "MEDIUMTEXT",
        Kind::Text,
        vec!["''".into(), "REPEAT('😀', 20000)".into(), "'m'".into()],
    );
    add(
        "ltext",
        "LONGTEXT",
        Kind::Text,
        vec!["''".into(), "REPEAT('abc', 40000)".into(), "'l'".into()],
    );
    add(
        "tblob",
        "TINYBLOB",
        Kind::Bytes,
        vec![
            "X''".into(),
            "X'00'".into(),
            "REPEAT(X'FF', 255)".into(),
            "X'00FF00'".into(),
        ],
    );
    add(
        "blb",
        "BLOB",
        Kind::Bytes,
        vec![
            "X''".into(),
            "REPEAT(X'00', 65535)".into(),
            "X'DEADBEEF'".into(),
        ],
    );
    add(
        "mblob",
        "MEDIUMBLOB",
        Kind::Bytes,
        vec![
            "X''".into(),
            "REPEAT(X'01FE', 35000)".into(),
            "X'00'".into(),
        ],
    );
    add(
        "lblob",
        "LONGBLOB",
        Kind::Bytes,
        vec![
            "X''".into(),
            "REPEAT(X'00FF7F80', 25000)".into(),
            "X'0A'".into(),
        ],
    );
    add(
        "e",
        "ENUM('a','b','ünï-名','with space','NULL') CHARACTER SET utf8mb4",
        Kind::Text,
        quoted(&["a", "b", "ünï-名", "with space", "NULL"]),
    );
    add(
        "el",
        "ENUM('é','ß','x','€') CHARACTER SET latin1",
        Kind::Text,
        quoted(&["é", "ß", "x", "€"]),
    );
    add(
        "s",
        "SET('x','y','z','ü','名')",
        Kind::Text,
        quoted(&["", "x", "x,y,z,ü,名", "z", "y,名"]),
    );
    add(
        "s64",
        &format!(
            "SET({})",
            (0..64)
                .map(|i| format!("'m{i:02}'"))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Kind::Text,
        vec![
            "''".into(),
            format!(
                "'{}'",
                (0..64)
                    .map(|i| format!("m{i:02}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            "'m63'".into(),
            "'m00,m31,m32'".into(),
        ],
    );
    add(
        "j",
        "JSON",
        Kind::Text,
        quoted(&[
            "{}",
            "[]",
            "null",
            "{\"a\": [1, 2, {\"b\": null}], \"ü\": \"😀\"}",
            "\"str\"",
            "12345678901234567890123",
        ]),
    );
    add(
        "g",
        "GEOMETRY",
        Kind::Bytes,
        strs(&[
            "ST_GeomFromText('POINT(1 2)')",
            "ST_GeomFromText('LINESTRING(0 0,1 1,-2.5 3)', 4326)",
            "ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))')",
            "ST_GeomFromText('GEOMETRYCOLLECTION EMPTY')",
            "ST_GeomFromText('MULTIPOINT(1 1,2 2)', 3857)",
        ]),
    );
    add(
        "pt",
        "POINT",
        Kind::Bytes,
        strs(&[
            "ST_GeomFromText('POINT(-1.5 2.25)', 3857)",
            "ST_GeomFromText('POINT(0 0)')",
        ]),
    );
    add(
        "ip4",
        "INET4",
        Kind::Bytes,
        quoted(&["0.0.0.0", "255.255.255.255", "1.2.3.4"]),
    );
    add(
        "ip6",
        "INET6",
        Kind::Bytes,
        quoted(&[
            "::",
            "::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:1.2.3.4",
            "2001:db8::ff00:42:8329",
        ]),
    );
    add(
        "uu",
        "UUID",
        Kind::Bytes,
        quoted(&[
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "123e4567-e89b-12d3-a456-426655440000",
            "550e8400-e29b-41d4-a716-446655440000",
            "01890a5d-ac96-774b-bcce-b302099a8057",
        ]),
    );
    cols
}

/// The SELECT expression of a column; every cell comes back as hex (binary-safe, and NULL is
/// the only non-hex answer).
fn oracle_expr(col: &Col) -> String {
    let c = format!("`{}`", col.name);
    match col.kind {
        Kind::Bytes => format!("HEX({c})"),
        Kind::Float => format!("HEX(CONVERT(CAST({c} AS DOUBLE) USING utf8mb4))"),
        Kind::Bit => format!("HEX(CONVERT(CAST({c} AS UNSIGNED) USING utf8mb4))"),
        _ => format!("HEX(CONVERT({c} USING utf8mb4))"),
    }
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex cell {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02X}");
    }
    s
}

/// Compare one decoded value with its SELECT cell.
fn check_value(kind: Kind, got: Option<&J>, want: Option<&[u8]>) -> Result<(), String> {
    let Some(got) = got else {
        return Err("column missing from the image".into());
    };
    let want = match (got, want) {
        (J::Null, None) => return Ok(()),
        (J::Null, Some(_)) => return Err("decoded NULL".into()),
        (_, None) => return Err("SELECT has NULL".into()),
        (_, Some(w)) => w,
    };
    if kind == Kind::Bytes {
        let s = got.as_str().ok_or("not a base64 string")?;
        let b = base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("bad base64: {e}"))?;
        return if b == want {
            Ok(())
        } else {
            Err(format!("bytes differ (decoded HEX {})", hex(&b)))
        };
    }
    let text = std::str::from_utf8(want).map_err(|_| "SELECT text is not UTF-8")?;
    let ok = match kind {
        Kind::Int | Kind::Bit => {
            got.as_i64().map(|v| v.to_string()).as_deref() == Some(text)
                || got.as_u64().map(|v| v.to_string()).as_deref() == Some(text)
        }
        Kind::Year => got.as_u64().is_some_and(|y| format!("{y:04}") == text),
        Kind::Float => {
            // The server widened the stored float32 exactly to a double.
            let d: f64 = text.parse().map_err(|_| "SELECT float unparsable")?;
            got.as_f64().is_some_and(|g| {
                let g = g as f32;
                d as f32 as f64 == d && (g as f64).to_bits() == d.to_bits()
            })
        }
        Kind::Double => {
            let d: f64 = text.parse().map_err(|_| "SELECT double unparsable")?;
            got.as_f64().is_some_and(|g| g.to_bits() == d.to_bits())
        }
        Kind::Text | Kind::Bytes => got.as_str() == Some(text),
    };
    if ok {
        Ok(())
    } else {
        Err("value differs".into())
    }
}

/// A `SELECT` snapshot: id → cells (hex-decoded, `None` = NULL) in column order.
type Snapshot = BTreeMap<i64, Vec<Option<Vec<u8>>>>;

/// The every-type table, its phases and the comparison; see the module documentation.
pub struct EveryType {
    /// The database (`mes_every_<tag>_<pid>`), holding table `t`.
    pub db: String,
    cols: Vec<Col>,
    rows: usize,
    /// Phases run so far (1 insert, 2 update, 3 delete).
    phase: usize,
    /// Snapshot after each phase (index 0: empty).
    snaps: Vec<Snapshot>,
    /// Ids seen per phase.
    seen: Vec<BTreeSet<i64>>,
    values: usize,
    mismatches: Vec<String>,
}

impl EveryType {
    /// Create the database and the table (the stream should start after this).
    pub fn create(tag: &str) -> Self {
        let db = format!("mes_every_{tag}_{}", std::process::id());
        let cols = columns();
        let rows = cols.iter().map(|c| c.edges.len()).max().unwrap_or(0) + 1;
        let mut ddl = format!(
            "{PRELUDE}DROP DATABASE IF EXISTS {db};\nCREATE DATABASE {db} CHARACTER SET utf8mb4;\n\
             CREATE TABLE {db}.t (id INT NOT NULL PRIMARY KEY, seq INT NOT NULL"
        );
        for c in &cols {
            let _ = write!(ddl, ", `{}` {}", c.name, c.ddl);
        }
        ddl.push_str(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC");
        sql_stdin(&ddl);
        Self {
            db,
            cols,
            rows,
            phase: 0,
            snaps: vec![Snapshot::new()],
            seen: vec![BTreeSet::new()],
            values: 0,
            mismatches: Vec::new(),
        }
    }

    /// Rows the phases write (the edge rows and one row of NULLs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The literals of row `i`: edge values cycled per column; the last row is all NULL.
    fn literals(&self, i: usize) -> Vec<String> {
        self.cols
            .iter()
            .map(|c| {
                if i + 1 == self.rows {
                    "NULL".to_owned()
                } else {
                    c.edges[i % c.edges.len()].clone()
                }
            })
            .collect()
    }

    fn snapshot(&self) -> Snapshot {
        let exprs: Vec<String> = self.cols.iter().map(oracle_expr).collect();
        let out = sql_stdin(&format!(
            "{PRELUDE}SELECT id, {} FROM {}.t ORDER BY id",
            exprs.join(", "),
            self.db
        ));
        out.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let cells: Vec<&str> = l.split('\t').collect();
                assert_eq!(cells.len(), self.cols.len() + 1, "SELECT row {l:.80}");
                let id = cells[0].parse().unwrap();
                let values = cells[1..]
                    .iter()
                    .map(|c| (*c != "NULL").then(|| unhex(c)))
                    .collect();
                (id, values)
            })
            .collect()
    }

    /// Run the next phase (INSERT, UPDATE, DELETE) and snapshot the table; the number of change
    /// events the stream must now deliver, or `None` after the last phase.
    pub fn next_phase(&mut self) -> Option<usize> {
        let mut script = String::from(PRELUDE);
        let names: Vec<String> = self.cols.iter().map(|c| format!("`{}`", c.name)).collect();
        match self.phase {
            0 => {
                for i in 0..self.rows {
                    let _ = writeln!(
                        script,
                        "INSERT INTO {}.t (id, seq, {}) VALUES ({i}, {i}, {});",
                        self.db,
                        names.join(", "),
                        self.literals(i).join(", ")
                    );
                }
            }
            1 => {
                for i in 0..self.rows {
                    let sets: Vec<String> = names
                        .iter()
                        .zip(self.literals((i + 1) % self.rows))
                        .map(|(n, v)| format!("{n} = {v}"))
                        .collect();
                    let _ = writeln!(
                        script,
                        "UPDATE {}.t SET seq = {}, {} WHERE id = {i};",
                        self.db,
                        1000 + i,
                        sets.join(", ")
                    );
                }
            }
            2 => {
                let _ = writeln!(script, "DELETE FROM {}.t;", self.db);
            }
            _ => return None,
        }
        sql_stdin(&script);
        self.phase += 1;
        let snap = self.snapshot();
        let expected_ids = if self.phase == 3 { 0 } else { self.rows };
        assert_eq!(snap.len(), expected_ids, "rows after phase {}", self.phase);
        self.snaps.push(snap);
        self.seen.push(BTreeSet::new());
        Some(self.rows)
    }

    /// Compare one decoded image (JSON object) with one snapshot row.
    fn compare(&mut self, img: &Map<String, J>, snap: usize, id: i64, what: &str) {
        let Some(cells) = self.snaps[snap].get(&id).cloned() else {
            self.mismatches
                .push(format!("{what}: id {id} is not in the SELECT snapshot"));
            return;
        };
        if img.len() != self.cols.len() + 2 {
            self.mismatches.push(format!(
                "{what}: id {id}: {} columns in the image, {} in the table",
                img.len(),
                self.cols.len() + 2
            ));
        }
        for (col, cell) in self.cols.iter().zip(&cells) {
            self.values += 1;
            if let Err(e) = check_value(col.kind, img.get(&col.name), cell.as_deref()) {
                let shown = match cell {
                    None => "NULL".to_owned(),
                    Some(b) if col.kind == Kind::Bytes => format!("HEX {}", hex(b)),
                    Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
                };
                let got = img.get(&col.name).map_or("<absent>".into(), J::to_string);
                self.mismatches.push(format!(
                    "{what}: `{}` {} id={id}: {e}: decoded {:.200} vs SELECT {:.200}",
                    col.name, col.ddl, got, shown
                ));
            }
        }
    }

    /// Check one change event the stream delivered (of the current phase).
    pub fn check(&mut self, c: &ChangeEvent) {
        assert_eq!(
            (c.table().database.as_str(), c.table().table.as_str()),
            (self.db.as_str(), "t"),
            "a change of another table"
        );
        let mut line = String::new();
        write_change(&mut line, c).expect("row images decode");
        let j: J = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("write_change output is not JSON ({e}): {line:.300}"));
        let image = |k: &str| j[k].as_object().cloned();
        let id_of = |img: &Option<Map<String, J>>| {
            img.as_ref()
                .and_then(|m| m.get("id"))
                .and_then(J::as_i64)
                .unwrap_or_else(|| panic!("no id in {line:.300}"))
        };
        let (before, after) = (image("before"), image("after"));
        let phase = self.phase;
        let (kind, id) = match phase {
            1 => (ChangeKind::Insert, id_of(&after)),
            2 => (ChangeKind::Update, id_of(&before)),
            3 => (ChangeKind::Delete, id_of(&before)),
            _ => panic!("a change before the first phase: {line:.300}"),
        };
        assert_eq!(c.kind(), kind, "phase {phase}: {line:.300}");
        assert!(
            self.seen[phase].insert(id),
            "phase {phase}: id {id} changed twice"
        );
        let what = |w: &str| format!("phase {phase} ({}) {w}", kind.as_str());
        if let Some(b) = &before {
            self.compare(b, phase - 1, id, &what("before image"));
        }
        if let Some(a) = &after {
            self.compare(a, phase, id, &what("after image"));
            let seq = a.get("seq").and_then(J::as_i64);
            let want = if phase == 1 { id } else { 1000 + id };
            assert_eq!(seq, Some(want), "{}: seq", what("after image"));
        }
        assert_eq!(before.is_some(), phase > 1, "{}", what("before image"));
        assert_eq!(after.is_some(), phase < 3, "{}", what("after image"));
    }

    /// Whether the current phase's changes have all been checked.
    pub fn phase_done(&self) -> bool {
        self.seen[self.phase].len() == self.rows
    }

    /// Fail on any mismatch or missing change; print a summary; drop the database.
    pub fn finish(self) {
        assert_eq!(self.phase, 3, "not every phase ran");
        for (p, seen) in self.seen.iter().enumerate().skip(1) {
            assert_eq!(seen.len(), self.rows, "phase {p}: changes of {seen:?}");
        }
        eprintln!(
            "every type: {} columns, {} rows, {} values compared with SELECT, {} mismatches",
            self.cols.len(),
            self.rows,
            self.values,
            self.mismatches.len()
        );
        if !self.mismatches.is_empty() {
            let mut msg = format!(
                "{} mismatches (database {} kept):\n",
                self.mismatches.len(),
                self.db
            );
            for m in self.mismatches.iter().take(40) {
                let _ = writeln!(msg, "  {m}");
            }
            panic!("{msg}");
        }
        assert!(
            self.values >= 3 * self.rows * self.cols.len(),
            "too few values compared: {}",
            self.values
        );
        sql_stdin(&format!("DROP DATABASE {}", self.db));
    }
}
