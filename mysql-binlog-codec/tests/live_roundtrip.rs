//! Live round trip against a real MariaDB server (DESIGN §5 item 2: the server is the oracle).
//!
//! Creates a fresh database with tables holding every MariaDB column type (all integer widths
//! signed/unsigned, FLOAT/DOUBLE edge values, DECIMAL up to (65,30) and negatives,
//! DATE/TIME/DATETIME/TIMESTAMP with fsp 0–6 and negative TIME, YEAR, CHAR/VARCHAR/TEXT in utf8mb4
//! and latin1, BINARY/VARBINARY/BLOB with zero bytes, ENUM, SET, BIT(1..64), JSON, GEOMETRY,
//! NULLs), fills them with fixed edge rows plus random rows from a seeded generator, then runs
//! phases of INSERT / UPDATE (random columns, to and from NULL, multi-row, primary-key changes) /
//! DELETE (single and multi-row) / transactions (a committed multi-table one with a SAVEPOINT
//! rolled back to, and a fully ROLLBACK'd one), taking a `SELECT` snapshot of every table after
//! each phase (`time_zone='+00:00'`, every value fetched as hex so it is byte-exact).
//!
//! Then it `FLUSH BINARY LOGS`, decodes the binlog files written since its first statement with
//! [`Engine`] (each file fed with `start_file`, filtered to its database), renders every change
//! event with `json_lines::write_change` (DESIGN §4), replays INSERT/UPDATE/DELETE by primary key
//! and compares the replayed tables with the snapshots — every row, every column — at the phase
//! boundaries (a marker row inserted after each phase says where). The before image of every
//! UPDATE/DELETE must equal the replayed row, and the first one of a row in a phase must equal the
//! previous snapshot's row. Rows of the rolled-back transaction and of the part rolled back to
//! the savepoint must not appear; the committed transaction's rows share one GTID.
//!
//! Server: `MES_TEST_CLIENT_CNF` (from `scripts/mariadb-test-server.sh env`). Without it, or
//! when the server does not answer, the test prints a loud SKIPPED line and passes, unless
//! `MES_REQUIRE_SERVER=1` (then it fails). `MES_ROUNDTRIP_SEED` fixes the seed (printed every
//! run), `MES_ROUNDTRIP_ROWS` the number of random rows per table (default 200).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use mysql_binlog_codec::engine::{
    Engine, EngineConfig, EngineEvent, TableFilter, json_lines::write_change,
};
use serde_json::{Map, Value as J};

// =============================================================================================
// Seeded generator (SplitMix64: tiny, good enough, no dependency)
// =============================================================================================

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when n == 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn below_usize(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi as i128 - lo as i128 + 1) as u128;
        if span > u128::from(u64::MAX) {
            return self.next_u64() as i64;
        }
        (lo as i128 + self.below(span as u64) as i128) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below_usize(xs.len())]
    }

    /// `k` distinct elements of `xs` in random order.
    fn sample<T: Clone>(&mut self, xs: &[T], k: usize) -> Vec<T> {
        let mut v = xs.to_vec();
        let k = k.min(v.len());
        for i in 0..k {
            let j = i + self.below_usize(v.len() - i);
            v.swap(i, j);
        }
        v.truncate(k);
        v
    }

    /// A length in `0..=max`, mostly short, sometimes 0 or `max`.
    fn len(&mut self, max: usize) -> usize {
        match self.below(20) {
            0 => 0,
            1 => max,
            2 => self.below_usize(max + 1),
            _ => self.below_usize(max.min(40) + 1),
        }
    }
}

// =============================================================================================
// Helpers
// =============================================================================================

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02X}");
    }
    s
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let d = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    s.chunks(2)
        .map(|p| Some(d(p[0])? << 4 | d(p[1])?))
        .collect()
}

fn q(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A character-string literal with an explicit charset, byte-exact (`_utf8mb4 X'...'`).
fn text_lit(cs: Cs, bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "''".to_owned();
    }
    let intro = match cs {
        Cs::Utf8mb4 => "_utf8mb4",
        Cs::Latin1 => "_latin1",
    };
    format!("{intro} X'{}'", hex(bytes))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 → (y, m, d) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `.ffffff` with `digits` digits of `micros` (none for 0 digits).
fn frac(micros: i64, digits: u32) -> String {
    if digits == 0 {
        String::new()
    } else {
        format!(
            ".{:0w$}",
            micros / 10i64.pow(6 - digits),
            w = digits as usize
        )
    }
}

// =============================================================================================
// Column types: DDL, random and edge SQL literals, the SELECT oracle expression, comparison
// =============================================================================================

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cs {
    Utf8mb4,
    Latin1,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Geo {
    Any,
    Point,
    LineString,
    Polygon,
}

#[derive(Clone, Debug)]
enum Ty {
    Int {
        bytes: u32,
        unsigned: bool,
    },
    Float,
    Double,
    FloatMD(u32, u32),
    DoubleMD(u32, u32),
    Decimal {
        p: u32,
        s: u32,
        unsigned: bool,
    },
    Date,
    Time(u32),
    DateTime(u32),
    Timestamp(u32),
    Year,
    Text {
        sql: &'static str,
        chars: usize,
        bytes: usize,
        cs: Cs,
    },
    Binary {
        sql: &'static str,
        fixed: Option<usize>,
        max: usize,
    },
    Enum {
        labels: Vec<String>,
        cs: Cs,
    },
    Set(Vec<String>),
    Bit(u32),
    Json,
    Geometry(Geo),
}

impl Ty {
    fn ddl(&self) -> String {
        match self {
            Ty::Int { bytes, unsigned } => {
                let base = match bytes {
                    1 => "TINYINT",
                    2 => "SMALLINT",
                    3 => "MEDIUMINT",
                    4 => "INT",
                    _ => "BIGINT",
                };
                format!("{base}{}", if *unsigned { " UNSIGNED" } else { "" })
            }
            Ty::Float => "FLOAT".into(),
            Ty::Double => "DOUBLE".into(),
            Ty::FloatMD(m, d) => format!("FLOAT({m},{d})"),
            Ty::DoubleMD(m, d) => format!("DOUBLE({m},{d})"),
            Ty::Decimal { p, s, unsigned } => {
                format!(
                    "DECIMAL({p},{s}){}",
                    if *unsigned { " UNSIGNED" } else { "" }
                )
            }
            Ty::Date => "DATE".into(),
            Ty::Time(f) => format!("TIME({f})"),
            Ty::DateTime(f) => format!("DATETIME({f})"),
            Ty::Timestamp(f) => format!("TIMESTAMP({f}) NULL DEFAULT NULL"),
            Ty::Year => "YEAR".into(),
            Ty::Text { sql, .. } | Ty::Binary { sql, .. } => (*sql).into(),
            Ty::Enum { labels, cs } => format!(
                "ENUM({}) CHARACTER SET {}",
                labels
                    .iter()
                    .map(|l| sql_str(l))
                    .collect::<Vec<_>>()
                    .join(","),
                if *cs == Cs::Latin1 {
                    "latin1"
                } else {
                    "utf8mb4"
                }
            ),
            Ty::Set(labels) => format!(
                "SET({})",
                labels
                    .iter()
                    .map(|l| sql_str(l))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Ty::Bit(n) => format!("BIT({n})"),
            Ty::Json => "JSON".into(),
            Ty::Geometry(g) => match g {
                Geo::Any => "GEOMETRY",
                Geo::Point => "POINT",
                Geo::LineString => "LINESTRING",
                Geo::Polygon => "POLYGON",
            }
            .into(),
        }
    }

    /// Whether the oracle cell holds the raw stored bytes (`HEX(col)`) rather than text.
    fn is_bytes(&self) -> bool {
        matches!(self, Ty::Binary { .. } | Ty::Geometry(_))
    }

    /// The SELECT expression; every cell comes back as hex (binary-safe, NULL unambiguous).
    fn oracle_expr(&self, col: &str) -> String {
        let c = q(col);
        match self {
            Ty::Binary { .. } | Ty::Geometry(_) => format!("HEX({c})"),
            Ty::Float | Ty::FloatMD(..) | Ty::DoubleMD(..) => {
                format!("HEX(CONVERT(CAST({c} AS DOUBLE) USING utf8mb4))")
            }
            Ty::Bit(_) => format!("HEX(CONVERT(CAST({c} AS UNSIGNED) USING utf8mb4))"),
            _ => format!("HEX(CONVERT({c} USING utf8mb4))"),
        }
    }

    fn int_range(&self) -> (i128, i128) {
        let Ty::Int { bytes, unsigned } = self else {
            unreachable!()
        };
        let bits = bytes * 8;
        if *unsigned {
            (0, (1i128 << bits) - 1)
        } else {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        }
    }

    /// A random non-NULL SQL literal for this column.
    fn random(&self, rng: &mut Rng) -> String {
        match self {
            Ty::Int { .. } => {
                let (min, max) = self.int_range();
                let v = match rng.below(10) {
                    0 => min,
                    1 => max,
                    2 => 0,
                    3 => i128::from(rng.range(-100, 100)).clamp(min, max),
                    _ => min + i128::from(rng.next_u64()) % (max - min + 1),
                };
                v.to_string()
            }
            Ty::Float => {
                if rng.chance(30) {
                    nice_decimal(rng)
                } else {
                    loop {
                        let f = f32::from_bits(rng.next_u64() as u32);
                        if f.is_finite() {
                            break format!("{f:e}");
                        }
                    }
                }
            }
            Ty::Double => {
                if rng.chance(30) {
                    nice_decimal(rng)
                } else {
                    loop {
                        let f = f64::from_bits(rng.next_u64());
                        if f.is_finite() {
                            break format!("{f:e}");
                        }
                    }
                }
            }
            Ty::FloatMD(m, d) | Ty::DoubleMD(m, d) => {
                // Stay one digit below the maximum (rounding to the binary float must not
                // push a value out of range).
                let digits = m - 1;
                let n = rng.below(10u64.pow(digits));
                let scale = 10u64.pow(*d);
                let sign = if rng.chance(40) { "-" } else { "" };
                format!("{sign}{}.{:0w$}", n / scale, n % scale, w = *d as usize)
            }
            Ty::Decimal { p, s, unsigned } => {
                let intg = p - s;
                let ni = if rng.chance(30) {
                    intg
                } else {
                    rng.below(u64::from(intg) + 1) as u32
                };
                let nf = if rng.chance(30) {
                    *s
                } else {
                    rng.below(u64::from(*s) + 1) as u32
                };
                let mut out = String::new();
                if !unsigned && rng.chance(50) {
                    out.push('-');
                }
                if ni == 0 {
                    out.push('0');
                } else {
                    out.push(char::from(b'1' + rng.below(9) as u8));
                    for _ in 1..ni {
                        out.push(char::from(b'0' + rng.below(10) as u8));
                    }
                }
                if nf > 0 {
                    out.push('.');
                    for _ in 0..nf {
                        out.push(char::from(b'0' + rng.below(10) as u8));
                    }
                }
                out
            }
            Ty::Date => {
                if rng.chance(5) {
                    return "'0000-00-00'".into();
                }
                let (y, m, d) = gen_date(rng);
                format!("'{y:04}-{m:02}-{d:02}'")
            }
            Ty::Time(fsp) => {
                let neg = rng.chance(30);
                let h = match rng.below(4) {
                    0 => rng.range(0, 838),
                    1 => 838,
                    _ => rng.range(0, 23),
                };
                let (mi, s) = (rng.range(0, 59), rng.range(0, 59));
                let us = rng.range(0, 999_999);
                // Mostly the column's fsp; sometimes more digits (the server truncates).
                let digits = if rng.chance(20) { 6 } else { *fsp };
                format!(
                    "'{}{h}:{mi:02}:{s:02}{}'",
                    if neg { "-" } else { "" },
                    frac(us, digits)
                )
            }
            Ty::DateTime(fsp) => {
                if rng.chance(5) {
                    return "'0000-00-00 00:00:00'".into();
                }
                let (y, m, d) = gen_date(rng);
                let (h, mi, s) = (rng.range(0, 23), rng.range(0, 59), rng.range(0, 59));
                let digits = if rng.chance(20) { 6 } else { *fsp };
                format!(
                    "'{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}{}'",
                    frac(rng.range(0, 999_999), digits)
                )
            }
            Ty::Timestamp(fsp) => {
                if rng.chance(5) {
                    return "'0000-00-00 00:00:00'".into();
                }
                let secs = rng.range(1, i64::from(i32::MAX));
                let (y, m, d) = civil_from_days(secs / 86_400);
                let t = secs % 86_400;
                let digits = if rng.chance(20) { 6 } else { *fsp };
                format!(
                    "'{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}{}'",
                    t / 3600,
                    t / 60 % 60,
                    t % 60,
                    frac(rng.range(0, 999_999), digits)
                )
            }
            Ty::Year => {
                if rng.chance(10) {
                    "0".into()
                } else {
                    rng.range(1901, 2155).to_string()
                }
            }
            Ty::Text {
                chars, bytes, cs, ..
            } => {
                let n = rng.len(*chars);
                text_lit(*cs, &gen_text(rng, *cs, n, *bytes))
            }
            Ty::Binary { fixed, max, .. } => {
                let n = rng.len(fixed.unwrap_or(*max));
                let b: Vec<u8> = (0..n)
                    .map(|_| {
                        if rng.chance(30) {
                            0
                        } else {
                            rng.next_u64() as u8
                        }
                    })
                    .collect();
                format!("X'{}'", hex(&b))
            }
            Ty::Enum { labels, .. } => text_lit(Cs::Utf8mb4, rng.pick(labels).as_bytes()),
            Ty::Set(labels) => {
                let k = rng.below_usize(labels.len() + 1);
                let chosen = rng.sample(labels, k);
                text_lit(Cs::Utf8mb4, chosen.join(",").as_bytes())
            }
            Ty::Bit(n) => {
                let mask = if *n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                let v = match rng.below(6) {
                    0 => 0,
                    1 => mask,
                    2 => 1,
                    _ => rng.next_u64() & mask,
                };
                v.to_string()
            }
            Ty::Json => {
                let mut s = String::new();
                gen_json(rng, &mut s, 0, true);
                text_lit(Cs::Utf8mb4, s.as_bytes())
            }
            Ty::Geometry(g) => gen_geometry(rng, *g),
        }
    }

    /// Fixed edge-case literals.
    fn edges(&self) -> Vec<String> {
        let v = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        match self {
            Ty::Int { .. } => {
                let (min, max) = self.int_range();
                let mut e = vec![min, max, 0, 1, max - 1, min + 1];
                if min < 0 {
                    e.push(-1);
                }
                e.iter().map(i128::to_string).collect()
            }
            Ty::Float => v(&[
                "0",
                "-0e0",
                "3.4028234663852886e38",
                "-3.4028234663852886e38",
                "1.1754943508222875e-38",
                "1.401298464324817e-45",
                "-1.401298464324817e-45",
                "0.1",
                "16777217",
                "1e-40",
                "3.14159274",
                "-1",
            ]),
            Ty::Double => v(&[
                "0",
                "-0e0",
                "1.7976931348623157e308",
                "-1.7976931348623157e308",
                "2.2250738585072014e-308",
                "2.2250738585072009e-308",
                "5e-324",
                "-5e-324",
                "0.1",
                "9007199254740993",
                "1e16",
                "123456789012345680000",
                "-1",
            ]),
            Ty::FloatMD(..) => v(&["9999.999", "-9999.999", "0.001", "-0.001", "0", "1234.5675"]),
            Ty::DoubleMD(..) => v(&[
                "12345678901234.567891",
                "-99999999999999.9",
                "0.000001",
                "-0.000001",
                "0",
            ]),
            Ty::Decimal { p, s, unsigned } => {
                let intg = (p - s) as usize;
                let s = *s as usize;
                let nines = |n: usize| "9".repeat(n);
                let max = match (intg, s) {
                    (0, s) => format!("0.{}", nines(s)),
                    (i, 0) => nines(i),
                    (i, s) => format!("{}.{}", nines(i), nines(s)),
                };
                let tiny = if s == 0 {
                    "1".to_owned()
                } else {
                    format!("0.{}1", "0".repeat(s - 1))
                };
                let mut e = vec![max.clone(), "0".to_owned(), tiny.clone()];
                if intg > 0 {
                    e.push(format!("1{}", "0".repeat(intg - 1)));
                    e.push(format!(
                        "{}{}",
                        "1".repeat(intg.min(9)),
                        if s > 0 { ".5" } else { "" }
                    ));
                }
                if !unsigned {
                    e.push(format!("-{max}"));
                    e.push(format!("-{tiny}"));
                    e.push("-0".to_owned());
                }
                e
            }
            Ty::Date => v(&[
                "'0000-00-00'",
                "'1000-01-01'",
                "'9999-12-31'",
                "'2024-02-29'",
                "'0001-01-01'",
                "'2024-00-00'",
                "'1970-01-01'",
            ]),
            Ty::Time(_) => v(&[
                "'-838:59:59'",
                "'838:59:59'",
                "'00:00:00'",
                "'-00:00:00.000001'",
                "'-00:00:01'",
                "'23:59:59.999999'",
                "'-12:34:56.5'",
                "'100:00:00.000001'",
                "'-838:59:58.999999'",
            ]),
            Ty::DateTime(_) => v(&[
                "'0000-00-00 00:00:00'",
                "'1000-01-01 00:00:00'",
                "'9999-12-31 23:59:59.999999'",
                "'2024-02-29 12:34:56.123456'",
                "'0001-01-01 00:00:00.000001'",
                "'2024-00-00 00:00:00'",
                "'1970-01-01 00:00:00'",
            ]),
            Ty::Timestamp(_) => v(&[
                "'0000-00-00 00:00:00'",
                "'1970-01-01 00:00:01'",
                "'2038-01-19 03:14:07.999999'",
                "'2000-02-29 23:59:59.5'",
                "'1999-12-31 23:59:59.999999'",
                "'2024-03-31 02:30:00.000001'",
            ]),
            Ty::Year => v(&["0", "1901", "2155", "2000", "1999"]),
            Ty::Text {
                chars, bytes, cs, ..
            } => {
                let fit = |b: Vec<u8>| -> Vec<u8> {
                    // Cut to the column's limits on a character boundary.
                    match cs {
                        Cs::Latin1 => b.into_iter().take((*chars).min(*bytes)).collect(),
                        Cs::Utf8mb4 => {
                            let s = String::from_utf8(b).expect("utf8 edge");
                            let mut out = String::new();
                            for ch in s.chars().take(*chars) {
                                if out.len() + ch.len_utf8() > *bytes {
                                    break;
                                }
                                out.push(ch);
                            }
                            out.into_bytes()
                        }
                    }
                };
                let mut e: Vec<Vec<u8>> = vec![
                    Vec::new(),
                    b"NULL".to_vec(),
                    b" ".to_vec(),
                    b"a  ".to_vec(),
                    b"\0x\0".to_vec(),
                    b"'\\\"\t\n\r%_".to_vec(),
                    b"  lead".to_vec(),
                ];
                match cs {
                    Cs::Utf8mb4 => {
                        e.push("😀".repeat(*chars).into_bytes());
                        e.push(
                            "é名\u{10FFFF}\u{FFFD}\u{7F}\u{80}\u{FEFF}"
                                .to_owned()
                                .into_bytes(),
                        );
                        e.push("x".repeat(*chars).into_bytes());
                    }
                    Cs::Latin1 => {
                        e.push((0..=255u8).collect());
                        e.push((0x80..=0x9fu8).collect());
                        e.push(b"caf\xe9 \xff".to_vec());
                    }
                }
                e.into_iter().map(|b| text_lit(*cs, &fit(b))).collect()
            }
            Ty::Binary { fixed, max, .. } => {
                let n = fixed.unwrap_or(*max);
                let e: Vec<Vec<u8>> = vec![
                    Vec::new(),
                    vec![0],
                    vec![0; n],
                    vec![0xff; n],
                    vec![1, 0, 0],
                    vec![0, 0, 7],
                    (0..=255u8).collect(),
                    (0..n).map(|i| (i * 7 % 256) as u8).collect(),
                ];
                e.into_iter()
                    .map(|mut b| {
                        b.truncate(n);
                        format!("X'{}'", hex(&b))
                    })
                    .collect()
            }
            Ty::Enum { labels, .. } => labels
                .iter()
                .map(|l| text_lit(Cs::Utf8mb4, l.as_bytes()))
                .collect(),
            Ty::Set(labels) => {
                let mut e = vec![
                    "''".to_owned(),
                    text_lit(Cs::Utf8mb4, labels.join(",").as_bytes()),
                ];
                for l in labels.iter().take(4) {
                    e.push(text_lit(Cs::Utf8mb4, l.as_bytes()));
                }
                e.push(text_lit(
                    Cs::Utf8mb4,
                    labels.last().expect("labels").as_bytes(),
                ));
                e
            }
            Ty::Bit(n) => {
                let mask = if *n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                [0, mask, 1, 1u64 << (n - 1), mask >> 1]
                    .iter()
                    .map(u64::to_string)
                    .collect()
            }
            Ty::Json => [
                "{}",
                "[]",
                "null",
                "true",
                "0",
                "-1.5e-300",
                "\"\"",
                "\"\\u00e9\\ud83d\\ude00 \\\" \\\\ \\n \\/\"",
                "  {\"a\" : [1, 2, {\"b\": null}] , \"ü名\": \"😀\" }  ",
                "[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]",
                "12345678901234567890123",
                "{\"dup\":1,\"dup\":2}",
            ]
            .iter()
            .map(|s| text_lit(Cs::Utf8mb4, s.as_bytes()))
            .collect(),
            Ty::Geometry(g) => {
                let point = |le: bool, x: f64, y: f64| {
                    let mut w = Vec::new();
                    wkb_header(&mut w, le, 1);
                    put_f64(&mut w, le, x);
                    put_f64(&mut w, le, y);
                    w
                };
                let line = {
                    let mut w = Vec::new();
                    wkb_header(&mut w, true, 2);
                    put_u32(&mut w, true, 2);
                    for c in [0.0, 0.0, 1.5, -2.25] {
                        put_f64(&mut w, true, c);
                    }
                    w
                };
                let square = {
                    let mut w = Vec::new();
                    wkb_header(&mut w, true, 3);
                    put_u32(&mut w, true, 1);
                    put_u32(&mut w, true, 5);
                    for c in [0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0] {
                        put_f64(&mut w, true, c);
                    }
                    w
                };
                let empty_collection = {
                    let mut w = Vec::new();
                    wkb_header(&mut w, true, 7);
                    put_u32(&mut w, true, 0);
                    w
                };
                let lit = |w: &[u8], srid: u32| format!("ST_GeomFromWKB(X'{}', {srid})", hex(w));
                let points = vec![
                    lit(&point(true, 0.0, 0.0), 0),
                    lit(&point(true, -0.0, 5e-324), 4326),
                    lit(&point(true, f64::MAX, f64::MIN), 3857),
                    lit(&point(false, 1.25, -7.5), 65535),
                ];
                match g {
                    Geo::Point => points,
                    Geo::LineString => vec![lit(&line, 0), lit(&line, 4326)],
                    Geo::Polygon => vec![lit(&square, 0), lit(&square, 123456)],
                    Geo::Any => {
                        let mut e = points;
                        e.push(lit(&line, 0));
                        e.push(lit(&square, 4326));
                        e.push(lit(&empty_collection, 0));
                        e
                    }
                }
            }
        }
    }
}

fn nice_decimal(rng: &mut Rng) -> String {
    let n = rng.range(-1_000_000, 1_000_000);
    let k = rng.below(7) as u32;
    if k == 0 {
        n.to_string()
    } else {
        let a = n.unsigned_abs();
        let p = 10u64.pow(k);
        format!(
            "{}{}.{:0w$}",
            if n < 0 { "-" } else { "" },
            a / p,
            a % p,
            w = k as usize
        )
    }
}

fn gen_date(rng: &mut Rng) -> (i64, i64, i64) {
    let y = match rng.below(10) {
        0 => rng.range(1, 999),
        1 | 2 => rng.range(1000, 9999),
        _ => rng.range(1900, 2100),
    };
    let m = rng.range(1, 12);
    let d = rng.range(1, days_in_month(y, m));
    (y, m, d)
}

fn gen_char(rng: &mut Rng) -> char {
    let pick = |rng: &mut Rng, lo: u32, hi: u32| {
        char::from_u32(rng.range(i64::from(lo), i64::from(hi)) as u32).unwrap_or('?')
    };
    match rng.below(20) {
        0..=9 => pick(rng, 0x20, 0x7e),
        10 | 11 => *rng.pick(&[
            '\'', '\\', '"', '\t', '\n', '\r', '\0', ' ', '%', '_', '\u{7f}',
        ]),
        12 | 13 => pick(rng, 0xa0, 0x24f),
        14 | 15 => pick(rng, 0x4e00, 0x9fff),
        16 => pick(rng, 0x1f300, 0x1faff),
        17 => pick(rng, 0x10000, 0x10ffff),
        18 => pick(rng, 0x80, 0x9f),
        _ => pick(rng, 0x100, 0xfffd), // surrogates map to '?'
    }
}

/// `n` characters, at most `max_bytes` bytes, in the charset's encoding.
fn gen_text(rng: &mut Rng, cs: Cs, n: usize, max_bytes: usize) -> Vec<u8> {
    match cs {
        Cs::Latin1 => (0..n.min(max_bytes))
            .map(|_| {
                if rng.chance(60) {
                    rng.range(0x20, 0x7e) as u8
                } else {
                    rng.next_u64() as u8
                }
            })
            .collect(),
        Cs::Utf8mb4 => {
            let mut s = String::new();
            for _ in 0..n {
                let c = gen_char(rng);
                if s.len() + c.len_utf8() > max_bytes {
                    break;
                }
                s.push(c);
            }
            s.into_bytes()
        }
    }
}

fn gen_ws(rng: &mut Rng, out: &mut String) {
    if rng.chance(30) {
        out.push_str(rng.pick::<&str>(&[" ", "  ", "\n", "\t", " \r\n "]));
    }
}

fn gen_json(rng: &mut Rng, out: &mut String, depth: u32, top: bool) {
    gen_ws(rng, out);
    let choice = if top && rng.chance(80) {
        4 + rng.below(2)
    } else if depth >= 4 {
        rng.below(4)
    } else {
        rng.below(6)
    };
    match choice {
        0 => out.push_str(rng.pick::<&str>(&["null", "true", "false"])),
        1 => {
            let n = match rng.below(5) {
                0 => rng.range(-1000, 1000).to_string(),
                1 => (rng.next_u64() as i64).to_string(),
                2 => format!("{:e}", f64::from_bits(rng.next_u64() >> 2)),
                3 => nice_decimal(rng),
                _ => rng
                    .pick(&[
                        "-0",
                        "0.0",
                        "1E+2",
                        "-1.5e-10",
                        "123456789012345678901234567890",
                    ])
                    .to_string(),
            };
            out.push_str(&n);
        }
        2 | 3 => {
            out.push('"');
            for _ in 0..rng.len(30) {
                match rng.below(12) {
                    0 => out.push_str(rng.pick::<&str>(&[
                        "\\\"",
                        "\\\\",
                        "\\/",
                        "\\b",
                        "\\f",
                        "\\n",
                        "\\r",
                        "\\t",
                        "\\u00e9",
                        "\\ud83d\\ude00",
                        "\\u0000",
                        "\\u001f",
                    ])),
                    _ => {
                        let c = gen_char(rng);
                        match c {
                            '"' => out.push_str("\\\""),
                            '\\' => out.push_str("\\\\"),
                            c if (c as u32) < 0x20 => {
                                let _ = write!(out, "\\u{:04x}", c as u32);
                            }
                            c => out.push(c),
                        }
                    }
                }
            }
            out.push('"');
        }
        4 => {
            out.push('[');
            let n = rng.below(6);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                gen_json(rng, out, depth + 1, false);
            }
            gen_ws(rng, out);
            out.push(']');
        }
        _ => {
            out.push('{');
            let n = rng.below(6);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                gen_ws(rng, out);
                out.push('"');
                let _ = write!(out, "k{}", rng.below(1000));
                if rng.chance(30) {
                    out.push_str("ü名");
                }
                out.push('"');
                gen_ws(rng, out);
                out.push(':');
                gen_json(rng, out, depth + 1, false);
            }
            gen_ws(rng, out);
            out.push('}');
        }
    }
    gen_ws(rng, out);
}

fn put_u32(w: &mut Vec<u8>, le: bool, v: u32) {
    w.extend_from_slice(&if le { v.to_le_bytes() } else { v.to_be_bytes() });
}

fn put_f64(w: &mut Vec<u8>, le: bool, v: f64) {
    w.extend_from_slice(&if le { v.to_le_bytes() } else { v.to_be_bytes() });
}

fn wkb_header(w: &mut Vec<u8>, le: bool, ty: u32) {
    w.push(u8::from(le));
    put_u32(w, le, ty);
}

fn gen_coord(rng: &mut Rng) -> f64 {
    match rng.below(10) {
        0..=4 => rng.range(-18_000, 18_000) as f64 / 100.0,
        5..=7 => loop {
            let f = f64::from_bits(rng.next_u64());
            if f.is_finite() {
                break f;
            }
        },
        _ => *rng.pick(&[0.0, -0.0, f64::MAX, f64::MIN, 5e-324, 1e-300, 180.0, -90.0]),
    }
}

fn wkb_points(rng: &mut Rng, w: &mut Vec<u8>, le: bool, n: usize, closed: bool) {
    put_u32(w, le, n as u32);
    let mut first = None;
    for i in 0..n {
        let (x, y) = if closed && i == n - 1 {
            first.expect("first point")
        } else {
            (gen_coord(rng), gen_coord(rng))
        };
        first.get_or_insert((x, y));
        put_f64(w, le, x);
        put_f64(w, le, y);
    }
}

fn wkb_geometry(rng: &mut Rng, w: &mut Vec<u8>, le: bool, kind: u32, depth: u32) {
    wkb_header(w, le, kind);
    match kind {
        1 => {
            put_f64(w, le, gen_coord(rng));
            put_f64(w, le, gen_coord(rng));
        }
        2 => {
            let n = rng.range(2, 6) as usize;
            wkb_points(rng, w, le, n, false);
        }
        3 => {
            let rings = rng.range(1, 2) as u32;
            put_u32(w, le, rings);
            for _ in 0..rings {
                let n = rng.range(4, 7) as usize;
                wkb_points(rng, w, le, n, true);
            }
        }
        4..=6 => {
            let n = rng.range(1, 3) as u32;
            put_u32(w, le, n);
            for _ in 0..n {
                wkb_geometry(rng, w, le, kind - 3, depth + 1);
            }
        }
        _ => {
            let n = rng.range(0, 3) as u32;
            put_u32(w, le, n);
            for _ in 0..n {
                let k = rng.range(1, if depth >= 1 { 6 } else { 7 }) as u32;
                wkb_geometry(rng, w, le, k, depth + 1);
            }
        }
    }
}

fn gen_geometry(rng: &mut Rng, g: Geo) -> String {
    let le = !rng.chance(15);
    let kind = match g {
        Geo::Point => 1,
        Geo::LineString => 2,
        Geo::Polygon => 3,
        Geo::Any => rng.range(1, 7) as u32,
    };
    let mut w = Vec::new();
    wkb_geometry(rng, &mut w, le, kind, 0);
    let srid = *rng.pick(&[0u32, 0, 4326, 3857, 65535, 123_456]);
    format!("ST_GeomFromWKB(X'{}', {srid})", hex(&w))
}

// =============================================================================================
// Comparing a decoded JSON value with the SELECT cell
// =============================================================================================

fn show_cell(ty: &Ty, cell: Option<&[u8]>) -> String {
    match cell {
        None => "NULL".into(),
        Some(b) if ty.is_bytes() => format!("HEX {}", hex(b)),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => format!("{s:?}"),
            Err(_) => format!("non-UTF-8 {}", hex(b)),
        },
    }
}

fn check_value(ty: &Ty, got: Option<&J>, want: Option<&[u8]>) -> Result<(), String> {
    let Some(got) = got else {
        return Err("column missing from the image".into());
    };
    let want = match (got, want) {
        (J::Null, None) => return Ok(()),
        (J::Null, Some(_)) => return Err("decoded NULL".into()),
        (_, None) => return Err("SELECT has NULL".into()),
        (_, Some(w)) => w,
    };
    if ty.is_bytes() {
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
    let ok = match ty {
        Ty::Int { .. } => match got.as_i64() {
            Some(v) => v.to_string() == text,
            None => got.as_u64().is_some_and(|v| v.to_string() == text),
        },
        Ty::Year => got.as_u64().is_some_and(|y| format!("{y:04}") == text),
        Ty::Bit(_) => got.as_u64().is_some_and(|v| v.to_string() == text),
        Ty::Float | Ty::FloatMD(..) => {
            // The server widened the stored float32 exactly to a double.
            let d: f64 = text.parse().map_err(|_| "SELECT float unparsable")?;
            got.as_f64().is_some_and(|g| {
                let g = g as f32;
                d as f32 as f64 == d && (g as f64).to_bits() == d.to_bits()
            })
        }
        Ty::Double | Ty::DoubleMD(..) => {
            let d: f64 = text.parse().map_err(|_| "SELECT double unparsable")?;
            got.as_f64().is_some_and(|g| g.to_bits() == d.to_bits())
        }
        _ => got.as_str() == Some(text),
    };
    if ok {
        Ok(())
    } else {
        Err("value differs".into())
    }
}

// =============================================================================================
// Schema
// =============================================================================================

struct Table {
    name: &'static str,
    cols: Vec<(String, Ty)>,
}

const MARKER: &str = "rt_marker";
const ROLLBACK_ID: i64 = 900_000;

fn tables() -> Vec<Table> {
    let t = |name, cols: Vec<(&str, Ty)>| Table {
        name,
        cols: cols.into_iter().map(|(n, t)| (n.to_owned(), t)).collect(),
    };
    let int = |bytes, unsigned| Ty::Int { bytes, unsigned };
    let text = |sql, chars, bytes, cs| Ty::Text {
        sql,
        chars,
        bytes,
        cs,
    };
    let bin = |sql, fixed, max| Ty::Binary { sql, fixed, max };
    let labels = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut temporal = vec![("d", Ty::Date)];
    let names_t = ["t0", "t1", "t2", "t3", "t4", "t5", "t6"];
    let names_dt = ["dt0", "dt1", "dt2", "dt3", "dt4", "dt5", "dt6"];
    let names_ts = ["ts0", "ts1", "ts2", "ts3", "ts4", "ts5", "ts6"];
    for f in 0..7u32 {
        temporal.push((names_t[f as usize], Ty::Time(f)));
        temporal.push((names_dt[f as usize], Ty::DateTime(f)));
        temporal.push((names_ts[f as usize], Ty::Timestamp(f)));
    }
    temporal.push(("y", Ty::Year));
    use Cs::{Latin1, Utf8mb4};
    vec![
        t(
            "t_int",
            vec![
                ("ti", int(1, false)),
                ("tu", int(1, true)),
                ("si", int(2, false)),
                ("su", int(2, true)),
                ("mi", int(3, false)),
                ("mu", int(3, true)),
                ("ii", int(4, false)),
                ("iu", int(4, true)),
                ("bi", int(8, false)),
                ("bu", int(8, true)),
            ],
        ),
        t(
            "t_float",
            vec![
                ("f", Ty::Float),
                ("d", Ty::Double),
                ("f7_3", Ty::FloatMD(7, 3)),
                ("d20_6", Ty::DoubleMD(20, 6)),
            ],
        ),
        t(
            "t_decimal",
            vec![
                (
                    "d65_30",
                    Ty::Decimal {
                        p: 65,
                        s: 30,
                        unsigned: false,
                    },
                ),
                (
                    "d65_0",
                    Ty::Decimal {
                        p: 65,
                        s: 0,
                        unsigned: false,
                    },
                ),
                (
                    "d30_30",
                    Ty::Decimal {
                        p: 30,
                        s: 30,
                        unsigned: false,
                    },
                ),
                (
                    "d10_0",
                    Ty::Decimal {
                        p: 10,
                        s: 0,
                        unsigned: false,
                    },
                ),
                (
                    "d5_2",
                    Ty::Decimal {
                        p: 5,
                        s: 2,
                        unsigned: false,
                    },
                ),
                (
                    "d18_9",
                    Ty::Decimal {
                        p: 18,
                        s: 9,
                        unsigned: false,
                    },
                ),
                (
                    "d1_0",
                    Ty::Decimal {
                        p: 1,
                        s: 0,
                        unsigned: false,
                    },
                ),
                (
                    "d19_10",
                    Ty::Decimal {
                        p: 19,
                        s: 10,
                        unsigned: false,
                    },
                ),
                (
                    "d38_2",
                    Ty::Decimal {
                        p: 38,
                        s: 2,
                        unsigned: false,
                    },
                ),
                (
                    "d20_4u",
                    Ty::Decimal {
                        p: 20,
                        s: 4,
                        unsigned: true,
                    },
                ),
            ],
        ),
        t("t_temporal", temporal),
        t(
            "t_string",
            vec![
                ("c20", text("CHAR(20)", 20, 80, Utf8mb4)),
                ("c255", text("CHAR(255)", 255, 1020, Utf8mb4)),
                ("v20", text("VARCHAR(20)", 20, 80, Utf8mb4)),
                ("v300", text("VARCHAR(300)", 300, 1200, Utf8mb4)),
                (
                    "vbin",
                    text("VARCHAR(40) COLLATE utf8mb4_bin", 40, 160, Utf8mb4),
                ),
                ("tt", text("TINYTEXT", 255, 255, Utf8mb4)),
                ("tx", text("TEXT", 16_000, 65_535, Utf8mb4)),
                ("mt", text("MEDIUMTEXT", 20_000, 1 << 24, Utf8mb4)),
                ("lc", text("CHAR(20) CHARACTER SET latin1", 20, 20, Latin1)),
                (
                    "lv",
                    text("VARCHAR(300) CHARACTER SET latin1", 300, 300, Latin1),
                ),
                (
                    "lt",
                    text("TEXT CHARACTER SET latin1", 3000, 65_535, Latin1),
                ),
            ],
        ),
        t(
            "t_binary",
            vec![
                ("b1", bin("BINARY(1)", Some(1), 1)),
                ("b8", bin("BINARY(8)", Some(8), 8)),
                ("vb10", bin("VARBINARY(10)", None, 10)),
                ("vb300", bin("VARBINARY(300)", None, 300)),
                ("tb", bin("TINYBLOB", None, 255)),
                ("bl", bin("BLOB", None, 65_535)),
                ("mb", bin("MEDIUMBLOB", None, 70_000)),
                ("lb", bin("LONGBLOB", None, 100_000)),
            ],
        ),
        t(
            "t_enum_set_bit",
            vec![
                (
                    "e",
                    Ty::Enum {
                        labels: labels(&[
                            "red",
                            "green",
                            "blue",
                            "ünï-名",
                            "with space",
                            "a,b",
                            "NULL",
                        ]),
                        cs: Utf8mb4,
                    },
                ),
                (
                    "el",
                    Ty::Enum {
                        labels: labels(&["é", "ß", "x", "€"]),
                        cs: Latin1,
                    },
                ),
                ("s", Ty::Set(labels(&["a", "b", "c", "ü", "名", "x y"]))),
                (
                    "s64",
                    Ty::Set((0..64).map(|i| format!("m{i:02}")).collect()),
                ),
                ("bit1", Ty::Bit(1)),
                ("bit7", Ty::Bit(7)),
                ("bit8", Ty::Bit(8)),
                ("bit9", Ty::Bit(9)),
                ("bit17", Ty::Bit(17)),
                ("bit32", Ty::Bit(32)),
                ("bit63", Ty::Bit(63)),
                ("bit64", Ty::Bit(64)),
            ],
        ),
        t(
            "t_json_geo",
            vec![
                ("j", Ty::Json),
                ("g", Ty::Geometry(Geo::Any)),
                ("p", Ty::Geometry(Geo::Point)),
                ("ls", Ty::Geometry(Geo::LineString)),
                ("pg", Ty::Geometry(Geo::Polygon)),
            ],
        ),
    ]
}

fn create_sql(t: &Table) -> String {
    let mut s = format!("CREATE TABLE {} (id INT NOT NULL PRIMARY KEY", q(t.name));
    for (n, ty) in &t.cols {
        let _ = write!(s, ", {} {}", q(n), ty.ddl());
    }
    s.push_str(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n");
    s
}

// =============================================================================================
// The server
// =============================================================================================

struct Client {
    bin: String,
    cnf: String,
    db: String,
}

const PRELUDE: &str = "SET SESSION time_zone = '+00:00';\n\
    SET SESSION sql_mode = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';\n\
    SET SESSION binlog_format = 'ROW';\n\
    SET SESSION binlog_row_image = 'FULL';\n";

impl Client {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg(format!("--defaults-file={}", self.cnf))
            .arg("--default-character-set=utf8mb4")
            .arg("--connect-timeout=5")
            .arg("--batch")
            .arg("--raw")
            .arg("--skip-column-names");
        c
    }

    /// Run a script (stdin) in one session: the prelude, `USE db` (when it exists), the SQL.
    fn script(&self, sql: &str, use_db: bool) -> Result<Vec<u8>, String> {
        let mut full = String::from(PRELUDE);
        if use_db {
            let _ = writeln!(full, "USE {};", q(&self.db));
        }
        full.push_str(sql);
        let mut child = self
            .cmd()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin))?;
        let mut stdin = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || stdin.write_all(full.as_bytes()));
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let _ = writer.join();
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}): {}",
                self.bin,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(out.stdout)
    }

    /// Tab-separated rows of a query's text output.
    fn rows(&self, sql: &str, use_db: bool) -> Result<Vec<Vec<Vec<u8>>>, String> {
        let out = self.script(&format!("{sql};\n"), use_db)?;
        Ok(out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| l.split(|&b| b == b'\t').map(<[u8]>::to_vec).collect())
            .collect())
    }

    fn value(&self, sql: &str) -> Result<String, String> {
        let rows = self.rows(sql, false)?;
        let cell = rows.first().and_then(|r| r.first()).ok_or("no result")?;
        Ok(String::from_utf8_lossy(cell).into_owned())
    }

    fn master_status(&self) -> Result<(String, u64), String> {
        let rows = self.rows("SHOW MASTER STATUS", false)?;
        let r = rows
            .first()
            .ok_or("SHOW MASTER STATUS: empty (binary log off?)")?;
        Ok((
            String::from_utf8_lossy(&r[0]).into_owned(),
            String::from_utf8_lossy(&r[1])
                .parse()
                .map_err(|_| "bad position")?,
        ))
    }
}

/// `Some(client)` when a server answers; `None` after a loud skip; panics when required.
fn connect() -> Option<Client> {
    let required = std::env::var("MES_REQUIRE_SERVER").as_deref() == Ok("1");
    let skip = |why: String| -> Option<Client> {
        if required {
            panic!("live round trip: {why}, and MES_REQUIRE_SERVER=1");
        }
        eprintln!(
            "SKIPPED: no test server ({why}) (run scripts/test.sh, or scripts/mariadb-test-server.sh start and eval its env)"
        );
        None
    };
    let Ok(cnf) = std::env::var("MES_TEST_CLIENT_CNF") else {
        return skip("MES_TEST_CLIENT_CNF is not set".into());
    };
    let bin = ["mariadb", "mysql"]
        .iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|b| (*b).to_owned());
    let Some(bin) = bin else {
        return skip("no `mariadb` command-line client".into());
    };
    let client = Client {
        bin,
        cnf,
        db: String::new(),
    };
    match client.value("SELECT 1") {
        Ok(v) if v == "1" => Some(client),
        Ok(v) => skip(format!("SELECT 1 returned {v:?}")),
        Err(e) => skip(format!("server does not answer: {}", e.trim())),
    }
}

type Cell = Option<Vec<u8>>;
/// table → id → cells (in column order, without id).
type Snapshot = BTreeMap<String, BTreeMap<i64, Vec<Cell>>>;

fn snapshot(client: &Client, tables: &[Table]) -> Result<Snapshot, String> {
    let mut snap = Snapshot::new();
    for t in tables {
        let exprs: Vec<String> = t.cols.iter().map(|(n, ty)| ty.oracle_expr(n)).collect();
        let sql = format!(
            "SELECT id, {} FROM {} ORDER BY id",
            exprs.join(", "),
            q(t.name)
        );
        let mut rows = BTreeMap::new();
        for r in client.rows(&sql, true)? {
            if r.len() != t.cols.len() + 1 {
                return Err(format!(
                    "{}: {} cells, expected {}",
                    t.name,
                    r.len(),
                    t.cols.len() + 1
                ));
            }
            let id: i64 = String::from_utf8_lossy(&r[0])
                .parse()
                .map_err(|_| "bad id")?;
            let cells = r[1..]
                .iter()
                .map(|c| {
                    if c == b"NULL" {
                        Ok(None)
                    } else {
                        unhex(c)
                            .map(Some)
                            .ok_or_else(|| format!("bad hex cell in {}", t.name))
                    }
                })
                .collect::<Result<Vec<_>, String>>()?;
            rows.insert(id, cells);
        }
        snap.insert(t.name.to_owned(), rows);
    }
    Ok(snap)
}

// =============================================================================================
// Workload generation
// =============================================================================================

struct Workload<'a> {
    rng: Rng,
    tables: &'a [Table],
    /// Live primary keys per table, as the generator believes them.
    live: Vec<BTreeSet<i64>>,
    next_id: Vec<i64>,
    rows_inserted: usize,
}

impl Workload<'_> {
    fn random_row(&mut self, t: usize) -> Vec<String> {
        let cols = &self.tables[t].cols;
        cols.iter()
            .map(|(_, ty)| {
                if self.rng.chance(10) {
                    "NULL".to_owned()
                } else {
                    ty.random(&mut self.rng)
                }
            })
            .collect()
    }

    fn insert(&mut self, t: usize, rows: Vec<(i64, Vec<String>)>, sql: &mut String) {
        let table = &self.tables[t];
        let cols: Vec<String> = table.cols.iter().map(|(n, _)| q(n)).collect();
        let mut i = 0;
        while i < rows.len() {
            let n = (self.rng.range(1, 40) as usize).min(rows.len() - i);
            let _ = write!(
                sql,
                "INSERT INTO {} (id, {}) VALUES ",
                q(table.name),
                cols.join(", ")
            );
            for (k, (id, vals)) in rows[i..i + n].iter().enumerate() {
                let _ = write!(
                    sql,
                    "{}({id}, {})",
                    if k > 0 { ", " } else { "" },
                    vals.join(", ")
                );
                self.live[t].insert(*id);
            }
            sql.push_str(";\n");
            i += n;
        }
        self.rows_inserted += rows.len();
    }

    fn new_rows(&mut self, t: usize, n: usize, base: Option<i64>) -> Vec<(i64, Vec<String>)> {
        (0..n)
            .map(|k| {
                let id = match base {
                    Some(b) => b + k as i64,
                    None => {
                        self.next_id[t] += 1;
                        self.next_id[t]
                    }
                };
                (id, self.random_row(t))
            })
            .collect()
    }

    fn random_set(&mut self, t: usize, null_percent: u64) -> String {
        let cols = &self.tables[t].cols;
        let k = self.rng.range(1, cols.len().min(4) as i64) as usize;
        let idx: Vec<usize> = (0..cols.len()).collect();
        let chosen = self.rng.sample(&idx, k);
        chosen
            .iter()
            .map(|&i| {
                let v = if self.rng.chance(null_percent) {
                    "NULL".to_owned()
                } else {
                    cols[i].1.random(&mut self.rng)
                };
                format!("{} = {v}", q(&cols[i].0))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn some_live(&mut self, t: usize, k: usize) -> Vec<i64> {
        let ids: Vec<i64> = self.live[t].iter().copied().collect();
        self.rng.sample(&ids, k)
    }

    fn id_list(ids: &[i64]) -> String {
        ids.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn updates(&mut self, t: usize, n: usize, sql: &mut String) {
        let name = q(self.tables[t].name);
        for id in self.some_live(t, n) {
            let set = self.random_set(t, 25);
            let _ = writeln!(sql, "UPDATE {name} SET {set} WHERE id = {id};");
        }
    }

    fn deletes(&mut self, t: usize, n: usize, sql: &mut String) {
        let name = q(self.tables[t].name);
        for id in self.some_live(t, n) {
            let _ = writeln!(sql, "DELETE FROM {name} WHERE id = {id};");
            self.live[t].remove(&id);
        }
    }

    /// Phase 1: edge rows, an all-NULL row, `n` random rows; multi-row INSERTs.
    fn phase_insert(&mut self, n: usize) -> String {
        let mut sql = String::new();
        for t in 0..self.tables.len() {
            let edges: Vec<Vec<String>> = self.tables[t]
                .cols
                .iter()
                .map(|(_, ty)| ty.edges())
                .collect();
            let n_edges = edges.iter().map(Vec::len).max().unwrap_or(0);
            let mut rows = Vec::new();
            for k in 0..n_edges {
                self.next_id[t] += 1;
                rows.push((
                    self.next_id[t],
                    edges.iter().map(|e| e[k % e.len()].clone()).collect(),
                ));
            }
            self.next_id[t] += 1;
            rows.push((self.next_id[t], vec!["NULL".to_owned(); edges.len()]));
            rows.extend(self.new_rows(t, n, None));
            self.insert(t, rows, &mut sql);
        }
        sql
    }

    /// Phase 2: random single-row UPDATEs, whole rows to/from NULL, multi-row UPDATEs,
    /// primary-key changes.
    fn phase_update(&mut self) -> String {
        let mut sql = String::new();
        for t in 0..self.tables.len() {
            let name = q(self.tables[t].name);
            let n = self.live[t].len() * 2 / 5;
            self.updates(t, n, &mut sql);
            let cols = self.tables[t].cols.clone();
            // Whole rows to NULL, and whole rows from NULL (incl. the all-NULL edge row).
            for id in self.some_live(t, 3) {
                let set: Vec<String> = cols
                    .iter()
                    .map(|(c, _)| format!("{} = NULL", q(c)))
                    .collect();
                let _ = writeln!(sql, "UPDATE {name} SET {} WHERE id = {id};", set.join(", "));
            }
            let mut from_null = self.some_live(t, 2);
            let all_null_id = cols
                .iter()
                .map(|(_, ty)| ty.edges().len())
                .max()
                .unwrap_or(0) as i64
                + 1;
            if self.live[t].contains(&all_null_id) {
                from_null.push(all_null_id);
            }
            for id in from_null {
                let set: Vec<String> = cols
                    .iter()
                    .map(|(c, ty)| format!("{} = {}", q(c), ty.random(&mut self.rng)))
                    .collect();
                let _ = writeln!(sql, "UPDATE {name} SET {} WHERE id = {id};", set.join(", "));
            }
            // Multi-row UPDATEs (one statement, many row images).
            for _ in 0..4 {
                let k = self.rng.range(3, 12) as usize;
                let ids = self.some_live(t, k);
                let set = self.random_set(t, 30);
                let _ = writeln!(
                    sql,
                    "UPDATE {name} SET {set} WHERE id IN ({});",
                    Self::id_list(&ids)
                );
            }
            let lo = self.rng.range(1, 150);
            let (c, _) = self.rng.pick(&cols).clone();
            let _ = writeln!(
                sql,
                "UPDATE {name} SET {} = NULL WHERE id BETWEEN {lo} AND {};",
                q(&c),
                lo + 10
            );
            // Primary-key changes.
            let ids = self.some_live(t, 3);
            let _ = writeln!(
                sql,
                "UPDATE {name} SET id = id + 100000 WHERE id IN ({});",
                Self::id_list(&ids)
            );
            for id in ids {
                self.live[t].remove(&id);
                self.live[t].insert(id + 100_000);
            }
        }
        sql
    }

    /// Phase 3: single-row and multi-row DELETEs.
    fn phase_delete(&mut self) -> String {
        let mut sql = String::new();
        for t in 0..self.tables.len() {
            let name = q(self.tables[t].name);
            let n = self.live[t].len() / 12;
            self.deletes(t, n, &mut sql);
            let ids = self.some_live(t, 8);
            let _ = writeln!(
                sql,
                "DELETE FROM {name} WHERE id IN ({});",
                Self::id_list(&ids)
            );
            for id in ids {
                self.live[t].remove(&id);
            }
            let lo = self.rng.range(1, 150);
            let _ = writeln!(
                sql,
                "DELETE FROM {name} WHERE id BETWEEN {lo} AND {};",
                lo + 5
            );
            self.live[t].retain(|&id| !(lo..=lo + 5).contains(&id));
        }
        sql
    }

    /// Phase 4: one committed multi-table transaction (with a part rolled back to a savepoint)
    /// and one ROLLBACK'd transaction.
    fn phase_transactions(&mut self) -> String {
        let mut sql = String::from("BEGIN;\n");
        for t in 0..self.tables.len() {
            let rows = self.new_rows(t, 8, None);
            self.insert(t, rows, &mut sql);
            self.updates(t, 8, &mut sql);
            self.deletes(t, 4, &mut sql);
        }
        sql.push_str("SAVEPOINT sp1;\n");
        let saved = self.live.clone();
        let saved_rows = self.rows_inserted;
        for t in 0..self.tables.len() {
            self.updates(t, 4, &mut sql);
            let rows = self.new_rows(t, 3, Some(ROLLBACK_ID + 50_000));
            self.insert(t, rows, &mut sql);
            self.deletes(t, 2, &mut sql);
        }
        sql.push_str("ROLLBACK TO SAVEPOINT sp1;\n");
        self.live = saved;
        self.rows_inserted = saved_rows;
        for t in 0..self.tables.len() {
            // The same row twice in one transaction.
            if let Some(&id) = self.some_live(t, 1).first() {
                for _ in 0..2 {
                    let set = self.random_set(t, 20);
                    let _ = writeln!(
                        sql,
                        "UPDATE {} SET {set} WHERE id = {id};",
                        q(self.tables[t].name)
                    );
                }
            }
        }
        sql.push_str("COMMIT;\n");
        sql.push_str("BEGIN;\n");
        let saved = self.live.clone();
        let saved_rows = self.rows_inserted;
        for t in 0..self.tables.len() {
            let rows = self.new_rows(t, 5, Some(ROLLBACK_ID));
            self.insert(t, rows, &mut sql);
            self.updates(t, 8, &mut sql);
            self.deletes(t, 4, &mut sql);
        }
        sql.push_str("ROLLBACK;\n");
        self.live = saved;
        self.rows_inserted = saved_rows;
        sql
    }
}

// =============================================================================================
// Decoding and replay
// =============================================================================================

struct Change {
    kind: String,
    table: String,
    before: Option<Map<String, J>>,
    after: Option<Map<String, J>>,
    gtid: Option<String>,
    line: String,
}

struct Decoded {
    changes: Vec<Change>,
    ddl: usize,
    dml_statements: Vec<String>,
    files: Vec<String>,
    bytes: usize,
}

fn binlog_files(client: &Client, first: &str, end: &str) -> Result<Vec<String>, String> {
    let num = |f: &str| f.rsplit('.').next().and_then(|n| n.parse::<u64>().ok());
    let (lo, hi) = (
        num(first).ok_or("bad file name")?,
        num(end).ok_or("bad file name")?,
    );
    let mut out = Vec::new();
    for r in client.rows("SHOW BINARY LOGS", false)? {
        let name = String::from_utf8_lossy(&r[0]).into_owned();
        if num(&name).is_some_and(|n| n >= lo && n < hi) {
            out.push(name);
        }
    }
    if out.first().map(String::as_str) != Some(first) {
        return Err(format!(
            "binlog {first} is no longer listed by SHOW BINARY LOGS: {out:?}"
        ));
    }
    Ok(out)
}

fn decode(dir: &std::path::Path, files: &[String], db: &str) -> Result<Decoded, String> {
    let filter = TableFilter::default().with_include_databases(&[db]);
    let mut engine = Engine::new(EngineConfig::default().with_filter(filter));
    let mut out = Decoded {
        changes: Vec::new(),
        ddl: 0,
        dml_statements: Vec::new(),
        files: files.to_vec(),
        bytes: 0,
    };
    let drain = |engine: &mut Engine, out: &mut Decoded| -> Result<(), String> {
        while let Some(ev) = engine.poll_event() {
            match ev {
                EngineEvent::Change(c) => {
                    let mut line = String::new();
                    write_change(&mut line, &c).map_err(|e| format!("row images: {e}"))?;
                    let j: J = serde_json::from_str(&line)
                        .map_err(|e| format!("write_change output is not JSON ({e}): {line}"))?;
                    if j["database"] != db {
                        return Err(format!("filter let another database through: {line}"));
                    }
                    let image = |k: &str| j[k].as_object().cloned();
                    out.changes.push(Change {
                        kind: j["type"].as_str().unwrap_or_default().to_owned(),
                        table: j["table"].as_str().unwrap_or_default().to_owned(),
                        before: image("before"),
                        after: image("after"),
                        gtid: j["gtid"].as_str().map(str::to_owned),
                        line,
                    });
                }
                EngineEvent::Statement(s) => {
                    if s.is_ddl {
                        out.ddl += 1;
                    } else if s.database == db {
                        out.dml_statements.push(s.statement);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    };
    for f in files {
        let data =
            std::fs::read(dir.join(f)).map_err(|e| format!("{}: {e}", dir.join(f).display()))?;
        out.bytes += data.len();
        engine.start_file(f);
        let mut input = &data[..];
        while !input.is_empty() {
            let used = engine
                .handle_input(input)
                .map_err(|e| format!("{f}: {e}"))?;
            input = &input[used..];
            drain(&mut engine, &mut out)?;
        }
        engine.handle_eof().map_err(|e| format!("{f}: {e}"))?;
        drain(&mut engine, &mut out)?;
    }
    Ok(out)
}

#[derive(Default)]
struct Report {
    values: usize,
    rows: usize,
    before_images: usize,
    mismatches: Vec<String>,
    by_column: BTreeMap<String, usize>,
}

impl Report {
    fn fail(&mut self, key: &str, msg: String) {
        *self.by_column.entry(key.to_owned()).or_default() += 1;
        self.mismatches.push(msg);
    }

    /// Compare one decoded image (JSON object) with one SELECT row.
    fn compare_row(
        &mut self,
        t: &Table,
        id: i64,
        img: &Map<String, J>,
        cells: &[Cell],
        what: &str,
    ) {
        self.rows += 1;
        if img.len() != t.cols.len() + 1 {
            self.fail(
                &format!("{}.<columns>", t.name),
                format!(
                    "{what}: {}.id={id}: image has {} columns, table {}",
                    t.name,
                    img.len(),
                    t.cols.len() + 1
                ),
            );
        }
        if img.get("id").and_then(J::as_i64) != Some(id) {
            self.fail(
                &format!("{}.id", t.name),
                format!("{what}: {}: id {:?} != {id}", t.name, img.get("id")),
            );
        }
        for ((name, ty), cell) in t.cols.iter().zip(cells) {
            self.values += 1;
            if let Err(e) = check_value(ty, img.get(name), cell.as_deref()) {
                self.fail(
                    &format!("{}.{name} ({})", t.name, ty.ddl()),
                    format!(
                        "{what}: {}.{name} ({}) id={id}: {e}: decoded {} vs SELECT {}",
                        t.name,
                        ty.ddl(),
                        img.get(name).map_or("<absent>".into(), J::to_string),
                        show_cell(ty, cell.as_deref())
                    ),
                );
            }
        }
    }
}

const PHASES: [&str; 4] = ["insert", "update", "delete", "transactions"];

fn replay(tables: &[Table], decoded: &Decoded, snaps: &[Snapshot], report: &mut Report) {
    let by_name: HashMap<&str, &Table> = tables.iter().map(|t| (t.name, t)).collect();
    let mut state: BTreeMap<&str, BTreeMap<i64, Map<String, J>>> =
        tables.iter().map(|t| (t.name, BTreeMap::new())).collect();
    let mut phase = 0usize; // phases whose marker has been seen
    let mut touched: HashSet<(String, i64)> = HashSet::new();
    let mut gtids: BTreeSet<String> = BTreeSet::new();
    let mut changes_in_phase = 0usize;
    let id_of = |img: &Map<String, J>| img.get("id").and_then(J::as_i64);
    for ch in &decoded.changes {
        if ch.table == MARKER {
            let p = ch
                .after
                .as_ref()
                .and_then(|a| a.get("phase"))
                .and_then(J::as_u64);
            if ch.kind != "INSERT" || p != Some(phase as u64 + 1) {
                report.fail(
                    "<marker>",
                    format!("unexpected marker event after phase {phase}: {}", ch.line),
                );
                continue;
            }
            phase += 1;
            let what = format!("phase {phase} ({})", PHASES[phase - 1]);
            // Every row of every table equals the SELECT snapshot taken after the phase.
            for t in tables {
                let got = &state[t.name];
                let want = &snaps[phase][t.name];
                let got_ids: BTreeSet<i64> = got.keys().copied().collect();
                let want_ids: BTreeSet<i64> = want.keys().copied().collect();
                if got_ids != want_ids {
                    let extra: Vec<_> = got_ids.difference(&want_ids).take(10).collect();
                    let missing: Vec<_> = want_ids.difference(&got_ids).take(10).collect();
                    report.fail(
                        &format!("{}.<rows>", t.name),
                        format!(
                            "{what}: {}: replayed ids differ: extra {extra:?}, missing {missing:?}",
                            t.name
                        ),
                    );
                }
                for (id, cells) in want {
                    if let Some(img) = got.get(id) {
                        report.compare_row(t, *id, img, cells, &what);
                    }
                }
            }
            if phase == 4 && gtids.len() != 1 {
                report.fail(
                    "<transaction>",
                    format!("phase 4: the committed transaction's {changes_in_phase} changes have GTIDs {gtids:?}, expected one"),
                );
            }
            touched.clear();
            gtids.clear();
            changes_in_phase = 0;
            continue;
        }
        let Some(t) = by_name.get(ch.table.as_str()) else {
            report.fail(
                "<table>",
                format!("change of an unknown table: {}", ch.line),
            );
            continue;
        };
        changes_in_phase += 1;
        gtids.extend(ch.gtid.clone());
        let what = format!(
            "phase {} ({})",
            phase + 1,
            PHASES.get(phase).unwrap_or(&"after the last")
        );
        for img in [&ch.before, &ch.after].into_iter().flatten() {
            if id_of(img).is_some_and(|id| id >= ROLLBACK_ID) {
                report.fail(
                    "<rollback>",
                    format!("{what}: a rolled-back change is in the binlog: {}", ch.line),
                );
            }
        }
        let rows = state.get_mut(t.name).expect("table state");
        // Before image: equals the replayed row; at its first change in a phase also the
        // previous snapshot's row, compared with the SELECT oracle.
        let mut remove = None;
        match (ch.kind.as_str(), &ch.before, &ch.after) {
            ("INSERT", None, Some(_)) => {}
            ("UPDATE" | "DELETE", Some(before), _)
                if (ch.kind == "DELETE") == ch.after.is_none() =>
            {
                let Some(id) = id_of(before) else {
                    report.fail(
                        "<image>",
                        format!("{what}: before image without id: {}", ch.line),
                    );
                    continue;
                };
                report.before_images += 1;
                match rows.get(&id) {
                    None => report.fail(
                        &format!("{}.<rows>", t.name),
                        format!("{what}: {} of a row the replay does not have: {}", ch.kind, ch.line),
                    ),
                    Some(cur) if cur != before => report.fail(
                        &format!("{}.<before>", t.name),
                        format!(
                            "{what}: {} before image differs from the replayed row id={id}: before {} vs replayed {}",
                            ch.kind,
                            J::Object(before.clone()),
                            J::Object(cur.clone())
                        ),
                    ),
                    Some(_) => {}
                }
                if touched.insert((t.name.to_owned(), id)) {
                    match snaps[phase][t.name].get(&id) {
                        Some(cells) => report.compare_row(
                            t,
                            id,
                            before,
                            cells,
                            &format!("{what} before image of {}", ch.kind),
                        ),
                        None => report.fail(
                            &format!("{}.<rows>", t.name),
                            format!(
                                "{what}: before image of a row not in the previous snapshot: {}",
                                ch.line
                            ),
                        ),
                    }
                }
                remove = Some(id);
            }
            _ => {
                report.fail("<image>", format!("{what}: malformed change: {}", ch.line));
                continue;
            }
        }
        if let Some(id) = remove {
            rows.remove(&id);
        }
        if let Some(after) = &ch.after {
            let Some(id) = id_of(after) else {
                report.fail(
                    "<image>",
                    format!("{what}: after image without id: {}", ch.line),
                );
                continue;
            };
            touched.insert((t.name.to_owned(), id));
            if rows.insert(id, after.clone()).is_some() {
                report.fail(
                    &format!("{}.<rows>", t.name),
                    format!(
                        "{what}: {} of an id the replay already has: {}",
                        ch.kind, ch.line
                    ),
                );
            }
        }
    }
    if phase != PHASES.len() {
        report.fail(
            "<marker>",
            format!(
                "saw {phase} of {} phase markers in the binlog",
                PHASES.len()
            ),
        );
    }
    if changes_in_phase != 0 {
        report.fail(
            "<marker>",
            format!("{changes_in_phase} changes after the last marker"),
        );
    }
}

// =============================================================================================
// The test
// =============================================================================================

#[test]
fn live_roundtrip_every_type() {
    let Some(mut client) = connect() else {
        return;
    };
    let started = std::time::Instant::now();
    let seed = match std::env::var("MES_ROUNDTRIP_SEED") {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .expect("MES_ROUNDTRIP_SEED must be a u64"),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock");
            t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
        }
    };
    let n_rows: usize = std::env::var("MES_ROUNDTRIP_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros();
    client.db = format!("mes_rt_{}_{unique}", std::process::id());
    eprintln!(
        "live round trip: seed {seed} (MES_ROUNDTRIP_SEED={seed} to repeat), {n_rows} random rows per table, database {}",
        client.db
    );
    let ctx = |e: String| format!("{e}\n(seed {seed}, database {})", client.db);

    // Server settings the round trip depends on.
    let version = client.value("SELECT @@version").expect("version");
    let metadata = client
        .value("SELECT @@binlog_row_metadata")
        .expect("binlog_row_metadata");
    assert_eq!(
        metadata, "FULL",
        "the test server must run with binlog_row_metadata=FULL (column names, ENUM/SET labels)"
    );
    assert_eq!(
        client.value("SELECT @@log_bin").expect("log_bin"),
        "1",
        "binary log is off"
    );
    let binlog_dir = match std::env::var_os("MES_TEST_BINLOG_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let base = client
                .value("SELECT @@log_bin_basename")
                .expect("log_bin_basename");
            PathBuf::from(base)
                .parent()
                .expect("binlog dir")
                .to_path_buf()
        }
    };

    let tables = tables();
    let mut w = Workload {
        rng: Rng(seed),
        tables: &tables,
        live: vec![BTreeSet::new(); tables.len()],
        next_id: vec![0; tables.len()],
        rows_inserted: 0,
    };

    let (first_file, first_pos) = client.master_status().expect("SHOW MASTER STATUS");
    // Schema.
    let mut ddl = format!(
        "CREATE DATABASE {} CHARACTER SET utf8mb4;\nUSE {};\n",
        q(&client.db),
        q(&client.db)
    );
    let _ = writeln!(
        ddl,
        "CREATE TABLE {} (id INT NOT NULL PRIMARY KEY, phase INT NOT NULL);",
        q(MARKER)
    );
    for t in &tables {
        ddl.push_str(&create_sql(t));
    }
    client.script(&ddl, false).map_err(ctx).unwrap();

    let mut snaps: Vec<Snapshot> = vec![
        tables
            .iter()
            .map(|t| (t.name.to_owned(), BTreeMap::new()))
            .collect(),
    ];
    for (i, name) in PHASES.iter().enumerate() {
        let sql = match i {
            0 => w.phase_insert(n_rows),
            1 => w.phase_update(),
            2 => w.phase_delete(),
            _ => w.phase_transactions(),
        };
        let sql = format!(
            "{sql}INSERT INTO {} VALUES ({}, {});\n",
            q(MARKER),
            i + 1,
            i + 1
        );
        client
            .script(&sql, true)
            .map_err(|e| ctx(format!("phase {name}: {e}")))
            .unwrap();
        let snap = snapshot(&client, &tables).map_err(ctx).unwrap();
        // The generator's idea of the live rows must match the server's (sanity of the test).
        for (t, live) in tables.iter().zip(&w.live) {
            let ids: BTreeSet<i64> = snap[t.name].keys().copied().collect();
            assert_eq!(
                &ids, live,
                "{}: generator and server disagree on the rows after phase {name} (seed {seed})",
                t.name
            );
        }
        snaps.push(snap);
    }
    client
        .script("FLUSH BINARY LOGS;\n", false)
        .map_err(ctx)
        .unwrap();
    let (end_file, _) = client.master_status().expect("SHOW MASTER STATUS");
    let workload_time = started.elapsed();

    let files = binlog_files(&client, &first_file, &end_file)
        .map_err(ctx)
        .unwrap();
    let decoded = decode(&binlog_dir, &files, &client.db)
        .map_err(ctx)
        .unwrap();
    let mut report = Report::default();
    replay(&tables, &decoded, &snaps, &mut report);

    assert!(
        decoded.dml_statements.is_empty(),
        "statement-based DML in the binlog (binlog_format must be ROW): {:?}",
        decoded.dml_statements
    );
    assert!(
        decoded.ddl > tables.len(),
        "expected the CREATE DATABASE / CREATE TABLE statements as DDL events, saw {}",
        decoded.ddl
    );

    let (mut ins, mut upd, mut del) = (0, 0, 0);
    for c in &decoded.changes {
        match c.kind.as_str() {
            "INSERT" => ins += 1,
            "UPDATE" => upd += 1,
            _ => del += 1,
        }
    }
    let non_null = snaps
        .iter()
        .flat_map(|s| s.values())
        .flat_map(|t| t.values())
        .flatten()
        .filter(|c| c.is_some())
        .count();
    eprintln!(
        "live round trip: MariaDB {version}; {} tables, {} rows inserted; binlog {:?} from {first_file}:{first_pos} ({} bytes); \
         {} change events (INSERT {ins}, UPDATE {upd}, DELETE {del}); {} rows / {} values compared with SELECT \
         ({} non-NULL snapshot cells), {} before images checked; workload {:.1?}, total {:.1?}",
        tables.len(),
        w.rows_inserted,
        decoded.files,
        decoded.bytes,
        decoded.changes.len(),
        report.rows,
        report.values,
        non_null,
        report.before_images,
        workload_time,
        started.elapsed()
    );
    if !report.mismatches.is_empty() {
        let mut msg = format!(
            "{} mismatches (seed {seed}, database {} kept for inspection); by column:\n",
            report.mismatches.len(),
            client.db
        );
        for (k, n) in &report.by_column {
            let _ = writeln!(msg, "  {k}: {n}");
        }
        msg.push_str("first ones:\n");
        for m in report.mismatches.iter().take(40) {
            let _ = writeln!(msg, "  {m}");
        }
        panic!("{msg}");
    }
    assert!(
        report.values > 10_000,
        "too few values compared: {}",
        report.values
    );
    client
        .script(&format!("DROP DATABASE {};\n", q(&client.db)), false)
        .map_err(ctx)
        .unwrap();
}
