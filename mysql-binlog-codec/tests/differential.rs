//! Differential test against `mysql_common` (blackbeam/rust_mysql_common, feature `binlog`).
//!
//! Every binlog of the corpus (`$MES_CORPUS_DIR`, default `<workspace>/../shared/corpus`; the
//! file list is `census.json`'s) is decoded by both decoders. We compare the event sequence
//! (offset, raw type code, size, end position — events inside TRANSACTION_PAYLOADs included,
//! flattened after their payload), how each side interprets the type code, and for every rows
//! event every row image, column by column, after converting both sides' values to one comparable
//! form ([`Cmp`]): integers as i128, floats by bits, character/binary data as bytes, DECIMAL as
//! its canonical text, temporal values by components, JSON as a parsed JSON document, BIT / ENUM
//! / SET as integers.
//!
//! Every disagreement is either a failure or matched by an entry of [`ALLOWED`], which says why
//! the difference is mysql_common's bug or a deliberate difference.

use std::collections::HashMap;
use std::io::{BufRead, Cursor, Read};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use mysql_binlog_codec::json_diff::parse_json_diffs;
use mysql_binlog_codec::{
    BinlogDecoder, DecoderConfig, EventData, JsonValue, MagicMode, TableMap, Value,
};
use mysql_common::Value as TheirValue;
use mysql_common::binlog::EventStreamReader;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::EventData as TheirData;
use mysql_common::binlog::value::BinlogValue;
use mysql_common::constants::ColumnType as TheirType;
use mysql_common::serde_json as json;

// ---------------------------------------------------------------------------------------------
// Corpus access
// ---------------------------------------------------------------------------------------------

fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("MES_CORPUS_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "\n\n*** SKIPPED: corpus not found at {} (set MES_CORPUS_DIR) ***\n\n",
            dir.display()
        );
        None
    }
}

/// The census' file list (`census.json`: an array of objects with a `file` member).
fn census_files(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("census.json")).expect("read census.json");
    let v: json::Value = json::from_str(&text).expect("parse census.json");
    v.as_array()
        .expect("census.json is an array")
        .iter()
        .map(|e| e["file"].as_str().expect("file member").to_string())
        .collect()
}

/// File bytes, gunzipped when gzip-wrapped (`mysql-bin.sakila.gz`).
fn read_binlog(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    } else {
        raw
    }
}

// ---------------------------------------------------------------------------------------------
// The common comparable form
// ---------------------------------------------------------------------------------------------

/// One column value in a form both decoders can be converted to.
#[derive(Debug, Clone, PartialEq)]
enum Cmp {
    Null,
    /// Integers, YEAR, ENUM index, SET bitmask, BIT value.
    Int(i128),
    F32(u32),
    F64(u64),
    /// DECIMAL text.
    Dec(String),
    /// Character and binary data, GEOMETRY, VECTOR.
    Bytes(Vec<u8>),
    /// DATE / DATETIME: year, month, day, hour, minute, second, microsecond.
    DateTime(u16, u8, u8, u8, u8, u8, u32),
    /// TIMESTAMP: seconds since the epoch, microseconds.
    Ts(i64, u32),
    /// TIME: negative, hours, minutes, seconds, microseconds.
    Time(bool, u32, u8, u8, u32),
    Json(json::Value),
    /// A partial-JSON diff that was not applied: (operation byte, path, new value) per diff.
    JsonDiff(Vec<(u8, String, Option<json::Value>)>),
    /// The value could not be converted (message).
    Err(String),
}

type Image = Vec<Cmp>;
type TableShape = (String, String, Vec<u8>, Vec<bool>);
type Change = (Option<Image>, Option<Image>);

fn ours_cmp(v: &Value<'_>) -> Cmp {
    match v {
        Value::Null => Cmp::Null,
        Value::Int(i) => Cmp::Int(i128::from(*i)),
        Value::UInt(u) => Cmp::Int(i128::from(*u)),
        Value::Float(f) => Cmp::F32(f.to_bits()),
        Value::Double(d) => Cmp::F64(d.to_bits()),
        Value::Decimal(d) => Cmp::Dec(d.to_string()),
        Value::Year(y) => Cmp::Int(i128::from(*y)),
        Value::Date(d) => Cmp::DateTime(d.year, d.month, d.day, 0, 0, 0, 0),
        Value::DateTime(t) => Cmp::DateTime(
            t.date.year,
            t.date.month,
            t.date.day,
            t.hour,
            t.minute,
            t.second,
            t.micros,
        ),
        Value::Timestamp(t) => Cmp::Ts(i64::from(t.seconds), t.micros),
        Value::Time(t) => Cmp::Time(t.negative, t.hours, t.minutes, t.seconds, t.micros),
        Value::String { bytes, .. } => Cmp::Bytes(bytes.to_vec()),
        Value::Bytes(b) => Cmp::Bytes(b.to_vec()),
        Value::Enum(i) => Cmp::Int(i128::from(*i)),
        Value::Set(s) => Cmp::Int(i128::from(*s)),
        Value::Bit(b) => Cmp::Int(i128::from(*b)),
        Value::Json(JsonValue::UnappliedDiff(raw)) => match parse_json_diffs(raw) {
            Ok(diffs) => Cmp::JsonDiff(
                diffs
                    .iter()
                    .map(|d| {
                        let v = d.value.as_ref().map(|v| match v.to_text() {
                            Ok(t) => json::from_str(&t).unwrap_or(json::Value::Null),
                            Err(e) => json::Value::String(format!("<our JSON error {e}>")),
                        });
                        (d.op.as_u8(), d.path.to_string(), v)
                    })
                    .collect(),
            ),
            Err(e) => Cmp::Err(format!("our JSON diff does not parse: {e}")),
        },
        Value::Json(j) => match j.to_text() {
            Ok(text) => match json::from_str::<json::Value>(&text) {
                Ok(v) => Cmp::Json(v),
                Err(e) => Cmp::Err(format!("our JSON text {text:?} does not parse: {e}")),
            },
            Err(e) => Cmp::Err(format!(
                "our JSON to_text failed (placeholder src/json.rs?): {e}"
            )),
        },
        Value::Geometry(b) | Value::Vector(b) => Cmp::Bytes(b.to_vec()),
        other => Cmp::Err(format!("unknown variant {other:?}")),
    }
}

fn be_int(b: &[u8]) -> i128 {
    b.iter().fold(0i128, |acc, &x| (acc << 8) | i128::from(x))
}

fn le_int(b: &[u8]) -> i128 {
    b.iter()
        .rev()
        .fold(0i128, |acc, &x| (acc << 8) | i128::from(x))
}

fn theirs_cmp(v: &BinlogValue<'_>, ty: TheirType) -> Cmp {
    use TheirType::*;
    let v = match v {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => {
            return match j.clone().parse() {
                Ok(dom) => Cmp::Json(their_json(dom)),
                Err(e) => Cmp::Err(format!("mysql_common JSONB parse: {e}")),
            };
        }
        BinlogValue::JsonDiff(diffs) => {
            return Cmp::JsonDiff(
                diffs
                    .iter()
                    .map(|d| {
                        let v = d.value().map(|v| match v.clone().parse() {
                            Ok(dom) => their_json(dom),
                            Err(e) => json::Value::String(format!("<their JSON error {e}>")),
                        });
                        (d.operation() as u8, d.path_str().into_owned(), v)
                    })
                    .collect(),
            );
        }
    };
    match (ty, v) {
        (_, TheirValue::NULL) => Cmp::Null,
        // TIMESTAMP (pre-5.6) comes as the integer of seconds.
        (MYSQL_TYPE_TIMESTAMP, TheirValue::Int(i)) => Cmp::Ts(*i, 0),
        (_, TheirValue::Int(i)) => Cmp::Int(i128::from(*i)),
        (_, TheirValue::UInt(u)) => Cmp::Int(i128::from(*u)),
        (_, TheirValue::Float(f)) => Cmp::F32(f.to_bits()),
        (_, TheirValue::Double(d)) => Cmp::F64(d.to_bits()),
        (_, TheirValue::Date(y, mo, d, h, mi, s, us)) => {
            Cmp::DateTime(*y, *mo, *d, *h, *mi, *s, *us)
        }
        // TIME is (negative, days, hours, ...): fold the days into the hours.
        (_, TheirValue::Time(neg, days, h, m, s, us)) => {
            Cmp::Time(*neg, days * 24 + u32::from(*h), *m, *s, *us)
        }
        (MYSQL_TYPE_NEWDECIMAL, TheirValue::Bytes(b)) => {
            Cmp::Dec(String::from_utf8_lossy(b).into_owned())
        }
        // YEAR comes as the text of 1900 + the stored byte.
        (MYSQL_TYPE_YEAR, TheirValue::Bytes(b)) => {
            match std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()) {
                Some(y) => Cmp::Int(y),
                None => Cmp::Err(format!("YEAR {b:?}")),
            }
        }
        // TIMESTAMP2 comes as the text "seconds[.micros]".
        (MYSQL_TYPE_TIMESTAMP2, TheirValue::Bytes(b)) => {
            let s = String::from_utf8_lossy(b);
            let (sec, us) = s.split_once('.').unwrap_or((&s, "0"));
            match (sec.parse::<i64>(), us.parse::<u32>()) {
                (Ok(sec), Ok(us)) => Cmp::Ts(sec, us),
                _ => Cmp::Err(format!("TIMESTAMP2 {s:?}")),
            }
        }
        // SET: the stored little-endian bitmask bytes; BIT: the stored big-endian bytes.
        (MYSQL_TYPE_SET, TheirValue::Bytes(b)) => Cmp::Int(le_int(b)),
        (MYSQL_TYPE_BIT, TheirValue::Bytes(b)) => Cmp::Int(be_int(b)),
        (_, TheirValue::Bytes(b)) => Cmp::Bytes(b.clone()),
    }
}

/// Marks a DECIMAL inside mysql_common's JSON (see [`their_json`]).
const DECIMAL_MARK: &str = "\u{1}DECIMAL:";

/// mysql_common's JSON DOM as a JSON document. Like its own `From<JsonDom>` conversion, except
/// that a DECIMAL (a JSON *opaque* scalar) is kept recognisable: mysql_common renders it as a
/// JSON string ("123.456"), MySQL's JSON text (and ours) as a number (123.456).
fn their_json(dom: mysql_common::binlog::jsonb::JsonDom) -> json::Value {
    use mysql_common::binlog::jsonb::{JsonContainer, JsonDom, JsonNumber, JsonScalar};
    match dom {
        JsonDom::Container(JsonContainer::Array(v)) => {
            json::Value::Array(v.into_iter().map(their_json).collect())
        }
        JsonDom::Container(JsonContainer::Object(m)) => {
            json::Value::Object(m.into_iter().map(|(k, v)| (k, their_json(v))).collect())
        }
        JsonDom::Scalar(JsonScalar::Number(JsonNumber::Decimal(d))) => {
            json::Value::String(format!("{DECIMAL_MARK}{d}"))
        }
        other => json::Value::from(other),
    }
}

/// JSON equality (`a` ours, `b` mysql_common's), where a DECIMAL that mysql_common marked equals
/// our number of the same numeric value (compared as f64: MySQL prints the DECIMAL's scale,
/// e.g. `9.00`, which serde_json reads as the float 9).
fn json_eq(a: &json::Value, b: &json::Value) -> bool {
    use json::Value as J;
    match (a, b) {
        (J::Number(n), J::String(s)) if s.starts_with(DECIMAL_MARK) => {
            let text = &s[DECIMAL_MARK.len()..];
            n.as_f64()
                .zip(text.parse::<f64>().ok())
                .is_some_and(|(x, y)| x == y)
        }
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        (J::Number(x), J::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn cmp_eq(a: &Cmp, b: &Cmp) -> bool {
    match (a, b) {
        (Cmp::Json(x), Cmp::Json(y)) => json_eq(x, y),
        (Cmp::JsonDiff(x), Cmp::JsonDiff(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(p, q)| {
                    p.0 == q.0
                        && p.1 == q.1
                        && match (&p.2, &q.2) {
                            (Some(v), Some(w)) => json_eq(v, w),
                            (None, None) => true,
                            _ => false,
                        }
                })
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------
// One decoder's view of a file
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Ev {
    /// Offset in the file (for events inside a payload: the payload's offset).
    offset: u64,
    /// Index inside the enclosing TRANSACTION_PAYLOAD (None for top-level events).
    inner: Option<usize>,
    /// The type code as stored in the header.
    raw_type: u8,
    /// The type the decoder took the event for (ours after the 5.1.0–5.1.15 permutation).
    meaning: u8,
    size: u32,
    log_pos: u32,
    /// For TABLE_MAP events: schema, table, column type codes, nullability.
    table_map: Option<TableShape>,
    /// For rows events: the row changes, present columns only, or why they could not be decoded.
    rows: Option<Result<Vec<Change>, String>>,
    /// A body the decoder could not parse (only where it does not stop the stream).
    error: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Side {
    events: Vec<Ev>,
    /// Why the decoder stopped before the end of the file, if it did.
    stop: Option<String>,
}

fn ours_table(ev: &EventData<'_>) -> Option<TableShape> {
    let EventData::TableMap(t) = ev else {
        return None;
    };
    Some((
        t.database.to_string(),
        t.table.to_string(),
        t.columns.iter().map(|c| c.type_code).collect(),
        t.columns.iter().map(|c| c.nullable).collect(),
    ))
}

fn ours_image(row: &mysql_binlog_codec::Row<'_>) -> Image {
    row.values.iter().flatten().map(ours_cmp).collect()
}

fn ours_rows(
    ev: &EventData<'_>,
    tables: &HashMap<u64, TableMap<'static>>,
) -> Option<Result<Vec<Change>, String>> {
    let EventData::Rows(r) = ev else { return None };
    let Some(table) = tables.get(&r.table_id) else {
        return Some(Err(format!("no TABLE_MAP for table id {}", r.table_id)));
    };
    let mut out = Vec::new();
    for change in r.rows(table) {
        match change {
            Ok(c) => out.push((
                c.before.as_ref().map(ours_image),
                c.after.as_ref().map(ours_image),
            )),
            Err(e) => return Some(Err(format!("{e}"))),
        }
    }
    Some(Ok(out))
}

fn decode_ours(bytes: &[u8]) -> Side {
    let mut side = Side::default();
    let mut decoder = BinlogDecoder::new(DecoderConfig::default().with_magic(MagicMode::Require));
    let mut tables: HashMap<u64, TableMap<'static>> = HashMap::new();
    let mut pos = 0usize;
    loop {
        let (ev, used) = match decoder.decode(&bytes[pos..]) {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(e) => {
                side.stop = Some(format!("{e}"));
                return side;
            }
        };
        pos += used;
        if let EventData::TableMap(t) = &ev.data {
            tables.insert(t.table_id, t.clone().into_owned());
        }
        side.events.push(Ev {
            offset: ev.offset,
            inner: None,
            raw_type: ev.raw[4],
            meaning: ev.header.type_code,
            size: ev.header.event_size,
            log_pos: ev.header.log_pos,
            table_map: ours_table(&ev.data),
            rows: ours_rows(&ev.data, &tables),
            error: None,
        });
        if let EventData::TransactionPayload(p) = &ev.data {
            let fde = decoder
                .format_description()
                .expect("FDE before payload")
                .clone();
            let mut inner = p.events(&fde, ev.offset);
            let mut k = 0;
            loop {
                match inner.next_event() {
                    Ok(Some(iev)) => {
                        if let EventData::TableMap(t) = &iev.data {
                            tables.insert(t.table_id, t.clone().into_owned());
                        }
                        side.events.push(Ev {
                            offset: ev.offset,
                            inner: Some(k),
                            raw_type: iev.header.type_code,
                            meaning: iev.header.type_code,
                            size: iev.header.event_size,
                            log_pos: iev.header.log_pos,
                            table_map: ours_table(&iev.data),
                            rows: ours_rows(&iev.data, &tables),
                            error: None,
                        });
                        k += 1;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        side.stop = Some(format!("inside payload at {}: {e}", ev.offset));
                        return side;
                    }
                }
            }
        }
    }
    if let Err(e) = decoder.finish(&bytes[pos..]) {
        side.stop = Some(format!("{e}"));
    }
    side
}

fn theirs_image(row: &mysql_common::binlog::row::BinlogRow) -> Image {
    let cols = row.columns_ref();
    (0..row.len())
        .map(|i| match row.as_ref(i) {
            Some(v) => theirs_cmp(v, cols[i].column_type()),
            None => Cmp::Err("taken".into()),
        })
        .collect()
}

/// Rows of one of mysql_common's events (the reader has already registered its table maps).
fn theirs_rows(
    data: &TheirData<'_>,
    reader: &EventStreamReader,
) -> Option<Result<Vec<Change>, String>> {
    let TheirData::RowsEvent(r) = data else {
        return None;
    };
    let Some(tme) = reader.get_tme(r.table_id()) else {
        return Some(Err(format!("no TABLE_MAP for table id {}", r.table_id())));
    };
    let mut out = Vec::new();
    for row in r.rows(tme) {
        match row {
            Ok((b, a)) => out.push((b.as_ref().map(theirs_image), a.as_ref().map(theirs_image))),
            Err(e) => return Some(Err(format!("{e}"))),
        }
    }
    Some(Ok(out))
}

/// One event read by mysql_common: header fields, rows, body error.
fn theirs_event(
    ev: &mysql_common::binlog::events::Event,
    reader: &EventStreamReader,
    offset: u64,
    inner: Option<usize>,
) -> Ev {
    let h = ev.header();
    let mut out = Ev {
        offset,
        inner,
        raw_type: h.event_type_raw(),
        meaning: h.event_type_raw(),
        size: h.event_size(),
        log_pos: h.log_pos(),
        table_map: None,
        rows: None,
        error: None,
    };
    match ev.read_data() {
        Ok(Some(data)) => {
            if let TheirData::TableMapEvent(t) = &data {
                let n = t.columns_count() as usize;
                out.table_map = Some((
                    t.database_name().into_owned(),
                    t.table_name().into_owned(),
                    (0..n)
                        .map(|i| match t.get_raw_column_type(i) {
                            Ok(Some(c)) => c as u8,
                            Ok(None) => 0,
                            Err(u) => u.0,
                        })
                        .collect(),
                    t.null_bitmask().iter().map(|b| *b).collect(),
                ));
            }
            out.rows = theirs_rows(&data, reader)
        }
        Ok(None) => {}
        Err(e) => out.error = Some(format!("{e}")),
    }
    out
}

fn decode_theirs(bytes: &[u8]) -> Side {
    let mut side = Side::default();
    if bytes.get(..4) != Some(&[0xfe, b'b', b'i', b'n'][..]) {
        side.stop = Some("no binlog magic".into());
        return side;
    }
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut cur = Cursor::new(bytes);
    cur.set_position(4);
    loop {
        let offset = cur.position();
        if offset as usize >= bytes.len() {
            break;
        }
        match reader.read(&mut cur) {
            Ok(Some(ev)) => {
                let e = theirs_event(&ev, &reader, offset, None);
                side.events.push(e);
                if let Ok(Some(TheirData::TransactionPayloadEvent(p))) = ev.read_data() {
                    let mut dec = match p.decompressed() {
                        Ok(d) => d,
                        Err(e) => {
                            side.stop = Some(format!("payload at {offset}: {e}"));
                            return side;
                        }
                    };
                    let mut k = 0;
                    loop {
                        match dec.fill_buf() {
                            Ok([]) => break,
                            Ok(_) => {}
                            Err(e) => {
                                side.stop = Some(format!("payload at {offset}: {e}"));
                                return side;
                            }
                        }
                        match reader.read_decompressed(&mut dec) {
                            Ok(Some(iev)) => {
                                let e = theirs_event(&iev, &reader, offset, Some(k));
                                side.events.push(e);
                                k += 1;
                            }
                            Ok(None) => break,
                            Err(e) => {
                                side.stop = Some(format!("inside payload at {offset}: {e}"));
                                return side;
                            }
                        }
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                // `read` consumed the event before its table-map/FDE bookkeeping failed: record
                // the event from its header and go on; if nothing was consumed, stop.
                let after = cur.position();
                let hdr = bytes.get(offset as usize..offset as usize + 19);
                match hdr {
                    Some(h) if after > offset => {
                        let u32_at =
                            |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
                        side.events.push(Ev {
                            offset,
                            inner: None,
                            raw_type: h[4],
                            meaning: h[4],
                            size: u32_at(9),
                            log_pos: u32_at(13),
                            table_map: None,
                            rows: None,
                            error: Some(format!("{e}")),
                        });
                    }
                    _ => {
                        side.stop = Some(format!("at {offset}: {e}"));
                        return side;
                    }
                }
            }
        }
    }
    side
}

/// mysql_common, with a panic turned into a stop reason (its `Event::read` unwraps a short read).
fn decode_theirs_guarded(bytes: &[u8]) -> Side {
    match std::panic::catch_unwind(AssertUnwindSafe(|| decode_theirs(bytes))) {
        Ok(side) => side,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Side {
                events: Vec::new(),
                stop: Some(format!("mysql_common panicked: {msg}")),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Disagreements and the allow-list
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The two event sequences differ (count, offset, raw type, size, end position).
    Framing,
    /// Same bytes, different event type (type-code interpretation).
    Meaning,
    /// One side stopped decoding (error or panic) where the other did not, or both did.
    Stop,
    /// One side failed to parse a body or rows event the other decoded.
    Body,
    /// Row counts, column counts or values differ.
    Value,
}

#[derive(Debug)]
struct Diff {
    file: String,
    kind: Kind,
    offset: Option<u64>,
    text: String,
}

/// A tolerated disagreement: file, kind, optional offset (None = any), the reason.
struct Allowed {
    file: &'static str,
    kind: Kind,
    offset: Option<u64>,
    /// A substring the disagreement's text must contain ("" = any).
    contains: &'static str,
    #[allow(dead_code)]
    why: &'static str,
}

/// Disagreements that are mysql_common's bugs or deliberate differences, with the evidence.
const ALLOWED: &[Allowed] = &[
    // --- Files with deliberate decode errors -------------------------------------------------
    Allowed {
        file: "rust_mysql_common/binlog_truncated_event.000001",
        kind: Kind::Stop,
        offset: None,
        contains: "",
        why: "14-byte file: 10 bytes after the magic, not even an event header. We report \
              Truncated at offset 4; mysql_common stops with an UnexpectedEof/short-read error.",
    },
    Allowed {
        file: "rust_mysql_common/binlog_truncated_prev_gtid_event.000001",
        kind: Kind::Stop,
        offset: None,
        contains: "",
        why: "The file ends 9 bytes into the PREVIOUS_GTIDS header at 120: we report \
              Truncated; mysql_common stops on the short read.",
    },
    Allowed {
        file: "rust_mysql_common/corrupt-relay-bin.000624",
        kind: Kind::Stop,
        offset: None,
        contains: "",
        why: "The QUERY event at 91204 (size 171) is corrupt (its status-variable block runs \
              past the body; rust_mysql_common's own round-trip test lets this very event \
              through as known-broken). Both decoders fail on its body — ours stops the stream \
              there with ShortBody, mysql_common's read_data says \"can't parse: buf doesn't \
              have enough data\" — but mysql_common's reader frames by size without parsing \
              QUERY bodies and goes on to the final ROTATE at 91375.",
    },
    Allowed {
        file: "rust_mysql_common/corrupt-relay-bin.000624",
        kind: Kind::Framing,
        offset: None,
        contains: "",
        why: "Consequence of the stop above: mysql_common has 2 more events (the corrupt QUERY \
              at 91204 and the ROTATE at 91375).",
    },
    Allowed {
        file: "rust_mysql_common/ver_5_1-wl2325_r.001",
        kind: Kind::Meaning,
        offset: None,
        contains: "",
        why: "A MySQL 5.1.0–5.1.15 preview log (server 5.2.2-a_drop6p13): event types 16–22 \
              were numbered differently then (16 TABLE_MAP, 17–19 PRE_GA rows, 20 XID, 21–22 \
              LOAD). We apply MySQL's own permutation (log_event.cc, \
              Format_description_log_event::event_type_permutation); mysql_common does not.",
    },
    Allowed {
        file: "rust_mysql_common/ver_5_1-wl2325_r.001",
        kind: Kind::Body,
        offset: None,
        contains: "",
        why: "Same permutation, seen in the bodies: mysql_common parses the old TABLE_MAPs (raw \
              16, size 0x26 — the 'broken XID' its own round-trip test lets through) as XID \
              ('bytes remaining on stream while reading XidEvent') and an old PRE_GA_UPDATE_ROWS \
              (raw 18) as EXECUTE_LOAD_QUERY ('Unknown duplicate handling variant 101'), and \
              sees no rows events at all. We decode the table maps and rows headers, and refuse \
              the pre-GA (v0) row images themselves with UnsupportedFormat, by design.",
    },
    Allowed {
        file: "rust_mysql_common/ver_5_1-wl2325_s.001",
        kind: Kind::Meaning,
        offset: None,
        contains: "",
        why: "Same 5.1.0–5.1.15 event-type permutation as ver_5_1-wl2325_r.001.",
    },
];

fn is_allowed(d: &Diff) -> Option<usize> {
    ALLOWED.iter().position(|a| {
        a.file == d.file
            && a.kind == d.kind
            && a.offset.is_none_or(|o| Some(o) == d.offset)
            && d.text.contains(a.contains)
    })
}

#[derive(Default)]
struct Stats {
    files: usize,
    table_maps: usize,
    events: usize,
    rows_events: usize,
    row_changes: usize,
    values: usize,
    json_values: usize,
    skipped_partial_json: usize,
    /// Values compared, by kind (ours).
    by_kind: std::collections::BTreeMap<&'static str, usize>,
}

fn kind_name(c: &Cmp) -> &'static str {
    match c {
        Cmp::Null => "NULL",
        Cmp::Int(_) => "integer",
        Cmp::F32(_) => "float",
        Cmp::F64(_) => "double",
        Cmp::Dec(_) => "decimal",
        Cmp::Bytes(_) => "bytes",
        Cmp::DateTime(..) => "date/datetime",
        Cmp::Ts(..) => "timestamp",
        Cmp::Time(..) => "time",
        Cmp::Json(_) => "json",
        Cmp::JsonDiff(_) => "json-diff",
        Cmp::Err(_) => "error",
    }
}

#[allow(clippy::too_many_arguments)]
fn compare_images(
    file: &str,
    ev: &Ev,
    which: &str,
    ri: usize,
    a: Option<&Image>,
    b: Option<&Image>,
    stats: &mut Stats,
    diffs: &mut Vec<Diff>,
) {
    let at = ev.offset;
    let place = match ev.inner {
        Some(k) => format!("{at} (payload event {k})"),
        None => format!("{at}"),
    };
    match (a, b) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            if a.len() != b.len() {
                diffs.push(Diff {
                    file: file.into(),
                    kind: Kind::Value,
                    offset: Some(at),
                    text: format!(
                        "@{place} row {ri} {which}: {} columns vs theirs {}",
                        a.len(),
                        b.len()
                    ),
                });
            }
            for (ci, (x, y)) in a.iter().zip(b).enumerate() {
                stats.values += 1;
                *stats.by_kind.entry(kind_name(x)).or_default() += 1;
                if matches!(x, Cmp::Json(_) | Cmp::JsonDiff(_)) {
                    stats.json_values += 1;
                }
                // mysql_common keeps a PARTIAL_UPDATE_ROWS diff as the diff where we could apply
                // it to the before image: our document has no counterpart to compare with.
                if matches!(x, Cmp::Json(_)) && matches!(y, Cmp::JsonDiff(_)) {
                    stats.skipped_partial_json += 1;
                    continue;
                }
                if !cmp_eq(x, y) {
                    diffs.push(Diff {
                        file: file.into(),
                        kind: Kind::Value,
                        offset: Some(at),
                        text: format!("@{place} row {ri} {which} column #{ci} (present-column index): ours {x:?} vs theirs {y:?}"),
                    });
                }
            }
        }
        (a, b) => diffs.push(Diff {
            file: file.into(),
            kind: Kind::Value,
            offset: Some(at),
            text: format!(
                "@{place} row {ri}: {which} image ours {} theirs {}",
                a.is_some(),
                b.is_some()
            ),
        }),
    }
}

fn compare_file(file: &str, ours: &Side, theirs: &Side, stats: &mut Stats, diffs: &mut Vec<Diff>) {
    let push = |diffs: &mut Vec<Diff>, kind, offset, text: String| {
        diffs.push(Diff {
            file: file.into(),
            kind,
            offset,
            text,
        })
    };
    if ours.stop.is_some() || theirs.stop.is_some() {
        push(
            diffs,
            Kind::Stop,
            None,
            format!(
                "ours stopped: {:?}; theirs stopped: {:?}",
                ours.stop, theirs.stop
            ),
        );
    }
    if ours.events.len() != theirs.events.len() {
        push(
            diffs,
            Kind::Framing,
            None,
            format!(
                "{} events vs theirs {}",
                ours.events.len(),
                theirs.events.len()
            ),
        );
    }
    for (a, b) in ours.events.iter().zip(&theirs.events) {
        stats.events += 1;
        let at = a.offset;
        if (a.offset, a.inner, a.raw_type, a.size, a.log_pos)
            != (b.offset, b.inner, b.raw_type, b.size, b.log_pos)
        {
            push(
                diffs,
                Kind::Framing,
                Some(at),
                format!(
                    "event (offset, inner, type, size, log_pos) ours {:?} vs theirs {:?}",
                    (a.offset, a.inner, a.raw_type, a.size, a.log_pos),
                    (b.offset, b.inner, b.raw_type, b.size, b.log_pos)
                ),
            );
            continue;
        }
        if a.meaning != b.meaning {
            push(
                diffs,
                Kind::Meaning,
                Some(at),
                format!(
                    "raw type {} read as {} by us, as {} by mysql_common",
                    a.raw_type, a.meaning, b.meaning
                ),
            );
        }
        if a.table_map.is_some() && b.table_map.is_some() && a.table_map != b.table_map {
            push(
                diffs,
                Kind::Value,
                Some(at),
                format!(
                    "TABLE_MAP (schema, table, types, nullable) ours {:?} vs theirs {:?}",
                    a.table_map, b.table_map
                ),
            );
        }
        if a.table_map.is_some() {
            stats.table_maps += 1;
        }
        if let Some(e) = &b.error {
            push(
                diffs,
                Kind::Body,
                Some(at),
                format!("mysql_common cannot parse the body: {e}"),
            );
        }
        match (&a.rows, &b.rows) {
            (None, None) => {}
            (Some(Ok(ra)), Some(Ok(rb))) => {
                stats.rows_events += 1;
                if ra.len() != rb.len() {
                    push(
                        diffs,
                        Kind::Value,
                        Some(at),
                        format!("{} rows vs theirs {}", ra.len(), rb.len()),
                    );
                }
                for (ri, (x, y)) in ra.iter().zip(rb).enumerate() {
                    stats.row_changes += 1;
                    compare_images(
                        file,
                        a,
                        "before",
                        ri,
                        x.0.as_ref(),
                        y.0.as_ref(),
                        stats,
                        diffs,
                    );
                    compare_images(
                        file,
                        a,
                        "after",
                        ri,
                        x.1.as_ref(),
                        y.1.as_ref(),
                        stats,
                        diffs,
                    );
                }
            }
            (ra, rb) => push(
                diffs,
                Kind::Body,
                Some(at),
                format!(
                    "rows: ours {} vs theirs {}",
                    describe_rows(ra),
                    describe_rows(rb)
                ),
            ),
        }
    }
}

fn describe_rows(r: &Option<Result<Vec<Change>, String>>) -> String {
    match r {
        None => "not a rows event".into(),
        Some(Ok(v)) => format!("{} rows", v.len()),
        Some(Err(e)) => format!("error: {e}"),
    }
}

#[test]
fn mysql_common_agrees() {
    let Some(dir) = corpus_dir() else { return };
    let files = census_files(&dir);
    assert!(files.len() >= 90, "census.json lists {} files", files.len());
    let mut stats = Stats::default();
    let mut diffs = Vec::new();
    for file in &files {
        let bytes = read_binlog(&dir.join(file));
        let ours = decode_ours(&bytes);
        let theirs = decode_theirs_guarded(&bytes);
        stats.files += 1;
        compare_file(file, &ours, &theirs, &mut stats, &mut diffs);
    }
    let mut used = vec![0usize; ALLOWED.len()];
    let mut failures = Vec::new();
    for d in &diffs {
        match is_allowed(d) {
            Some(i) => used[i] += 1,
            None => failures.push(d),
        }
    }
    eprintln!(
        "mysql_common_agrees: {} files, {} events ({} TABLE_MAPs), {} rows events, {} row \
         changes, {} values compared ({} JSON; {} partial-JSON after-images not comparable); {} \
         allowed disagreement(s)",
        stats.files,
        stats.events,
        stats.table_maps,
        stats.rows_events,
        stats.row_changes,
        stats.values,
        stats.json_values,
        stats.skipped_partial_json,
        used.iter().sum::<usize>()
    );
    eprintln!("  values by kind: {:?}", stats.by_kind);
    for d in &diffs {
        if is_allowed(d).is_some() {
            eprintln!("  allowed: {} {:?} {}", d.file, d.kind, d.text);
        }
    }
    for (a, n) in ALLOWED.iter().zip(&used) {
        if *n == 0 {
            eprintln!(
                "  note: allow-list entry no longer needed: {} {:?}",
                a.file, a.kind
            );
        }
    }
    if !failures.is_empty() {
        let json_only = failures
            .iter()
            .all(|d| d.text.contains("placeholder src/json.rs"));
        panic!(
            "{} disagreement(s) with mysql_common{}:\n  {}",
            failures.len(),
            if json_only {
                " (all from the JSON placeholder)"
            } else {
                ""
            },
            failures
                .iter()
                .map(|d| format!("{} [{:?}] {}", d.file, d.kind, d.text))
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
}

/// The comparison itself notices a changed value, a missing event and a re-typed event (so a
/// green `mysql_common_agrees` means agreement, not a blind comparator).
#[test]
fn comparator_detects_differences() {
    let Some(dir) = corpus_dir() else { return };
    let bytes = read_binlog(&dir.join("rust_mysql_common/mysql-enum-string-set.000001"));
    let ours = decode_ours(&bytes);
    let theirs = decode_theirs_guarded(&bytes);
    let run = |theirs: &Side| {
        let mut stats = Stats::default();
        let mut diffs = Vec::new();
        compare_file("f", &ours, theirs, &mut stats, &mut diffs);
        (stats, diffs)
    };
    let (stats, diffs) = run(&theirs);
    assert!(diffs.is_empty(), "{diffs:?}");
    assert!(stats.values >= 10, "only {} values", stats.values);

    let mut changed = theirs.clone();
    let ev = changed
        .events
        .iter_mut()
        .find(|e| matches!(&e.rows, Some(Ok(r)) if !r.is_empty()))
        .expect("a rows event");
    let Some(Ok(rows)) = &mut ev.rows else {
        unreachable!()
    };
    let (before, after) = &mut rows[0];
    let image = after.as_mut().or(before.as_mut()).expect("an image");
    image[0] = Cmp::Int(-424242);
    let (_, diffs) = run(&changed);
    assert!(diffs.iter().any(|d| d.kind == Kind::Value), "{diffs:?}");

    let mut dropped = theirs.clone();
    dropped.events.remove(1);
    let (_, diffs) = run(&dropped);
    assert!(diffs.iter().any(|d| d.kind == Kind::Framing), "{diffs:?}");

    let mut retyped = theirs.clone();
    retyped.events[1].meaning = 99;
    let (_, diffs) = run(&retyped);
    assert!(diffs.iter().any(|d| d.kind == Kind::Meaning), "{diffs:?}");

    // DECIMAL inside JSON: mysql_common's string form equals our number, nothing else does.
    let dec = json::Value::String(format!("{DECIMAL_MARK}9.00"));
    assert!(json_eq(&json::json!(9.0), &dec));
    assert!(!json_eq(&json::json!(9.5), &dec));
    assert!(!json_eq(&json::json!(9.0), &json::json!("9.00")));
}
