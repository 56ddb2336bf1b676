//! The JSON-lines rendering of change events (DESIGN §4), shared by `mes decode`, `mes stream`
//! and the tests: values as `SELECT` returns them over the text protocol with
//! `time_zone='+00:00'`, except binary strings / BLOB / GEOMETRY as base64, JSON columns
//! embedded, BIT / integers / YEAR / FLOAT / DOUBLE as JSON numbers, DECIMAL as a string with
//! `scale` digits, ENUM / SET as labels (index / bitmask without metadata), VECTOR as an array.

use std::fmt::Write as _;

use base64::Engine as _;

use super::{ChangeEvent, EngineError, Position, StatementEvent, TableInfo};
use crate::charset::decode_text;
use crate::json_diff::parse_json_diffs;
use crate::table_map::ColumnDef;
use crate::value::{ColumnType, JsonValue, Value};

/// Append `s` as a JSON string literal.
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_base64(out: &mut String, b: &[u8]) {
    out.push('"');
    base64::engine::general_purpose::STANDARD.encode_string(b, out);
    out.push('"');
}

fn write_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        // `{:?}` is the shortest representation that round-trips, with an exponent for very
        // large or small magnitudes: always a valid JSON number.
        let _ = write!(out, "{v:?}");
    } else {
        out.push_str("null");
    }
}

fn write_f32(out: &mut String, v: f32) {
    if v.is_finite() {
        let _ = write!(out, "{v:?}");
    } else {
        out.push_str("null");
    }
}

/// Append one column value as JSON.
pub fn write_value(out: &mut String, value: &Value<'_>, col: Option<&ColumnDef<'_>>) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Int(v) => {
            let _ = write!(out, "{v}");
        }
        Value::UInt(v) | Value::Bit(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Float(v) => write_f32(out, *v),
        Value::Double(v) => write_f64(out, *v),
        Value::Decimal(d) => {
            let _ = write!(out, "\"{d}\"");
        }
        Value::Year(y) => {
            let _ = write!(out, "{y}");
        }
        Value::Date(d) => {
            let _ = write!(out, "\"{d}\"");
        }
        Value::Time(t) => {
            let _ = write!(out, "\"{t}\"");
        }
        Value::DateTime(t) => {
            let _ = write!(out, "\"{t}\"");
        }
        Value::Timestamp(t) => {
            let _ = write!(out, "\"{t}\"");
        }
        // Without charset metadata (MINIMAL / pre-8.0): text when it is valid UTF-8.
        Value::String {
            bytes,
            collation: None,
        } => match std::str::from_utf8(bytes) {
            Ok(text) => write_json_string(out, text),
            Err(_) => write_base64(out, bytes),
        },
        Value::String { bytes, collation } => match decode_text(bytes, *collation) {
            Ok(text) => write_json_string(out, &text),
            // Bytes that are not valid in the column's charset (or an unknown charset):
            // not invented into text — base64, as for binary data.
            Err(_) => write_base64(out, bytes),
        },
        // BINARY(n): the row image drops trailing 0x00 bytes, SELECT returns all n bytes.
        Value::Bytes(b) if col.is_some_and(|c| c.column_type == ColumnType::String) => {
            let n = col.map_or(0, |c| binary_len(c.meta));
            if b.len() < n {
                let mut padded = b.to_vec();
                padded.resize(n, 0);
                write_base64(out, &padded);
            } else {
                write_base64(out, b);
            }
        }
        Value::Bytes(b) | Value::Geometry(b) => write_base64(out, b),
        Value::Enum(i) => match col.and_then(|c| c.enum_label(*i)) {
            Some(label) => write_label(out, label, col),
            None if col.is_some_and(|c| c.enum_values.is_some()) && *i == 0 => out.push_str("\"\""),
            None => {
                let _ = write!(out, "{i}");
            }
        },
        Value::Set(bits) => match col.and_then(|c| c.set_values.as_ref()) {
            Some(labels) => {
                let mut joined = Vec::new();
                for (k, l) in labels.iter().enumerate() {
                    if k < 64 && bits & (1u64 << k) != 0 {
                        if !joined.is_empty() {
                            joined.push(b',');
                        }
                        joined.extend_from_slice(l);
                    }
                }
                write_label(out, &joined, col);
            }
            None => {
                let _ = write!(out, "{bits}");
            }
        },
        Value::Json(JsonValue::UnappliedDiff(raw)) => write_unapplied_diff(out, raw),
        Value::Json(j) => match j.to_text() {
            Ok(t) => out.push_str(&t),
            Err(_) => out.push_str("null"),
        },
        Value::Vector(_) => match value.vector_elements() {
            Some(v) => {
                out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_f32(out, *x);
                }
                out.push(']');
            }
            None => out.push_str("null"),
        },
    }
}

/// Declared length of a CHAR/BINARY column from its TABLE_MAP metadata.
fn binary_len(meta: u16) -> usize {
    let b0 = meta >> 8;
    usize::from((((b0 & 0x30) ^ 0x30) << 4) | (meta & 0xff))
}

fn write_label(out: &mut String, label: &[u8], col: Option<&ColumnDef<'_>>) {
    match decode_text(label, col.and_then(|c| c.collation)) {
        Ok(t) => write_json_string(out, &t),
        Err(_) => write_json_string(out, &String::from_utf8_lossy(label)),
    }
}

/// A partial-JSON diff whose before image was not logged: `{"$partial_json_diff": [...]}` with
/// each operation, never a made-up document.
fn write_unapplied_diff(out: &mut String, raw: &[u8]) {
    out.push_str("{\"$partial_json_diff\":[");
    if let Ok(diffs) = parse_json_diffs(raw) {
        for (i, d) in diffs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"op\":");
            write_json_string(out, &format!("{:?}", d.op).to_ascii_uppercase());
            out.push_str(",\"path\":");
            write_json_string(out, d.path);
            if let Some(v) = &d.value {
                out.push_str(",\"value\":");
                match v.to_text() {
                    Ok(t) => out.push_str(&t),
                    Err(_) => out.push_str("null"),
                }
            }
            out.push('}');
        }
    }
    out.push_str("]}");
}

fn write_image(out: &mut String, table: &TableInfo, row: Option<&crate::rows::Row<'_>>) {
    let Some(row) = row else {
        out.push_str("null");
        return;
    };
    out.push('{');
    let mut first = true;
    for (i, v) in row.values.iter().enumerate() {
        let Some(v) = v else { continue };
        if !first {
            out.push(',');
        }
        first = false;
        write_json_string(out, &table.column_key(i));
        out.push(':');
        write_value(out, v, table.map.columns.get(i));
    }
    out.push('}');
}

fn write_position(out: &mut String, p: &Position) {
    out.push_str("{\"file\":");
    write_json_string(out, &p.file);
    let _ = write!(out, ",\"offset\":{}}}", p.offset);
}

fn write_gtid(out: &mut String, gtid: Option<&str>) {
    match gtid {
        Some(g) => write_json_string(out, g),
        None => out.push_str("null"),
    }
}

/// Append one change event as a JSON object (no trailing newline):
/// `{"type","database","table","before","after","timestamp","position","gtid"}`.
/// Fails only when a row image does not decode (see [`ChangeEvent::before`]); then `out`
/// holds a partial line.
pub fn write_change(out: &mut String, ev: &ChangeEvent) -> Result<(), EngineError> {
    out.push_str("{\"type\":\"");
    out.push_str(ev.kind().as_str());
    out.push_str("\",\"database\":");
    write_json_string(out, &ev.table().database);
    out.push_str(",\"table\":");
    write_json_string(out, &ev.table().table);
    out.push_str(",\"before\":");
    write_image(out, ev.table(), ev.before()?.as_ref());
    out.push_str(",\"after\":");
    write_image(out, ev.table(), ev.after()?.as_ref());
    let _ = write!(out, ",\"timestamp\":{},\"position\":", ev.timestamp());
    write_position(out, ev.position());
    out.push_str(",\"gtid\":");
    write_gtid(out, ev.gtid().map(|g| &**g));
    out.push('}');
    Ok(())
}

/// Append a statement event: `{"type":"DDL"|"QUERY","database","statement","timestamp",
/// "position","gtid"}`.
pub fn write_statement(out: &mut String, ev: &StatementEvent) {
    out.push_str(if ev.is_ddl {
        "{\"type\":\"DDL\""
    } else {
        "{\"type\":\"QUERY\""
    });
    out.push_str(",\"database\":");
    write_json_string(out, &ev.database);
    out.push_str(",\"statement\":");
    write_json_string(out, &ev.statement);
    let _ = write!(out, ",\"timestamp\":{},\"position\":", ev.timestamp);
    write_position(out, &ev.position);
    out.push_str(",\"gtid\":");
    write_gtid(out, ev.gtid.as_deref());
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers() {
        let mut s = String::new();
        write_json_string(&mut s, "a\"b\\\n\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\\\n\\u0001é\"");
        let mut s = String::new();
        write_f64(&mut s, 1e300);
        s.push(' ');
        write_f64(&mut s, 0.1);
        s.push(' ');
        write_f32(&mut s, 1.1);
        s.push(' ');
        write_f64(&mut s, 3.0);
        assert_eq!(s, "1e300 0.1 1.1 3.0");
    }
}
