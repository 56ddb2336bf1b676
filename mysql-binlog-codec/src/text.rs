//! A compact, human-readable text form of events and values, used by the `dump` example and by
//! tests. It is a debugging aid, not the JSON-lines rendering of DESIGN §4 (that lives in the
//! change-event layer).

use std::fmt::Write;

use crate::table_map::ColumnDef;
use crate::value::Value;

fn hex(out: &mut String, b: &[u8]) {
    for x in b {
        let _ = write!(out, "{x:02x}");
    }
}

/// Append `value` as text: numbers plain, strings single-quoted (lossy UTF-8), binary as
/// `x'hex'`, temporal values as `SELECT` prints them, ENUM/SET by label when the column has
/// labels, JSON as MySQL's JSON text, VECTOR as `[f, f, …]`.
pub fn write_value(out: &mut String, value: &Value<'_>, col: Option<&ColumnDef<'_>>) {
    match value {
        Value::Null => out.push_str("NULL"),
        Value::Int(v) => {
            let _ = write!(out, "{v}");
        }
        Value::UInt(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Float(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Double(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Decimal(d) => {
            let _ = write!(out, "{d}");
        }
        Value::Year(y) => {
            let _ = write!(out, "{y}");
        }
        Value::Date(d) => {
            let _ = write!(out, "'{d}'");
        }
        Value::Time(t) => {
            let _ = write!(out, "'{t}'");
        }
        Value::DateTime(t) => {
            let _ = write!(out, "'{t}'");
        }
        Value::Timestamp(t) => {
            let _ = write!(out, "'{t}' ({}.{:06})", t.seconds, t.micros);
        }
        Value::String { bytes, .. } => {
            out.push('\'');
            for ch in String::from_utf8_lossy(bytes).chars() {
                match ch {
                    '\'' => out.push_str("\\'"),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\0' => out.push_str("\\0"),
                    c => out.push(c),
                }
            }
            out.push('\'');
        }
        Value::Bytes(b) => {
            out.push_str("x'");
            hex(out, b);
            out.push('\'');
        }
        Value::Geometry(b) => {
            out.push_str("geometry x'");
            hex(out, b);
            out.push('\'');
        }
        Value::Enum(i) => match col.and_then(|c| c.enum_label(*i)) {
            Some(label) => {
                let _ = write!(out, "'{}'", String::from_utf8_lossy(label));
            }
            None => {
                let _ = write!(out, "{i}");
            }
        },
        Value::Set(bits) => match col.and_then(|c| c.set_values.as_ref()) {
            Some(labels) => {
                out.push('\'');
                let mut first = true;
                for (k, l) in labels.iter().enumerate() {
                    if k < 64 && bits & (1u64 << k) != 0 {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        out.push_str(&String::from_utf8_lossy(l));
                    }
                }
                out.push('\'');
            }
            None => {
                let _ = write!(out, "{bits}");
            }
        },
        Value::Bit(b) => {
            let _ = write!(out, "b'{b:b}'");
        }
        Value::Json(crate::value::JsonValue::UnappliedDiff(raw)) => {
            match crate::json_diff::parse_json_diffs(raw) {
                Ok(diffs) => {
                    out.push_str("JSON_DIFF(");
                    for (i, d) in diffs.iter().enumerate() {
                        if i > 0 {
                            out.push_str("; ");
                        }
                        let _ = write!(out, "{:?} {}", d.op, d.path);
                        if let Some(v) = &d.value {
                            out.push(' ');
                            match v.to_text() {
                                Ok(t) => out.push_str(&t),
                                Err(e) => {
                                    let _ = write!(out, "<bad JSON: {e}>");
                                }
                            }
                        }
                    }
                    out.push(')');
                }
                Err(e) => {
                    let _ = write!(out, "<bad JSON diff: {e}>");
                }
            }
        }
        Value::Json(j) => match j.to_text() {
            Ok(t) => out.push_str(&t),
            Err(e) => {
                let _ = write!(out, "<bad JSON: {e}>");
            }
        },
        Value::Vector(_) => match value.vector_elements() {
            Some(v) => {
                let _ = write!(out, "{v:?}");
            }
            None => out.push_str("<bad vector>"),
        },
    }
}

/// Text of one row image: `[v0, v1, …]`, `-` for columns absent from the image.
pub fn write_row(out: &mut String, values: &[Option<Value<'_>>], cols: &[ColumnDef<'_>]) {
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match v {
            Some(v) => write_value(out, v, cols.get(i)),
            None => out.push('-'),
        }
    }
    out.push(']');
}
