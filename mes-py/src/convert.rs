//! Decoded values and events → Python objects.
//!
//! Default representation = the original 1.8.0 wheel's (PYTHON_API.md §2), except JSON, which
//! is the JSON text MySQL's `SELECT` prints. `native_types=True` gives Python types instead.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_binlog_codec::ColumnDef;
use mysql_binlog_codec::charset::decode_text;
use mysql_binlog_codec::engine::{ChangeKind, TableInfo};
use mysql_binlog_codec::value::{Date, DateTime, Time, Timestamp};
use mysql_binlog_codec::{Row, Value};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyList, PyString};

use crate::Refs;
use crate::feed::Ready;

/// Python objects reused across events of one table.
pub struct TableCache {
    _keep: Arc<TableInfo>,
    database: Py<PyString>,
    table: Py<PyString>,
    keys: Vec<Py<PyString>>,
    names_resolved: bool,
}

/// Per-engine caches of Python objects (only touched with the GIL held).
#[derive(Default)]
pub struct PyCache {
    tables: HashMap<usize, TableCache>,
    position: Option<(Arc<str>, u64, Py<PyAny>)>,
    statement: Option<(Arc<str>, Py<PyString>)>,
    gtid: Option<(Arc<str>, Py<PyString>)>,
}

impl PyCache {
    /// Drop everything (on reset / close).
    pub fn clear(&mut self) {
        self.tables.clear();
        self.position = None;
        self.statement = None;
        self.gtid = None;
    }

    fn table<'py>(&mut self, py: Python<'py>, info: &Arc<TableInfo>) -> &TableCache {
        let key = Arc::as_ptr(info) as usize;
        if !self.tables.contains_key(&key) {
            if self.tables.len() >= 4096 {
                self.tables.clear();
            }
            let n = info.map.columns.len();
            let names = info.column_names.as_ref();
            let mut resolved = names.is_some();
            let keys = (0..n)
                .map(
                    |i| match names.and_then(|v| v.get(i)).filter(|s| !s.is_empty()) {
                        Some(name) => PyString::new(py, name).unbind(),
                        None => {
                            resolved = false;
                            PyString::new(py, &i.to_string()).unbind()
                        }
                    },
                )
                .collect();
            self.tables.insert(
                key,
                TableCache {
                    _keep: info.clone(),
                    database: PyString::new(py, &info.database).unbind(),
                    table: PyString::new(py, &info.table).unbind(),
                    keys,
                    names_resolved: resolved,
                },
            );
        }
        &self.tables[&key]
    }
}

/// UTF-8 text as `str`, invalid bytes kept with `surrogateescape` (the original's rule).
fn utf8_str<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    match std::str::from_utf8(b) {
        Ok(s) => Ok(PyString::new(py, s).into_any()),
        Err(_) => PyBytes::new(py, b).call_method1("decode", ("utf-8", "surrogateescape")),
    }
}

fn u64_compat<'py>(py: Python<'py>, v: u64) -> PyResult<Bound<'py, PyAny>> {
    if v > i64::MAX as u64 {
        Ok(PyString::new(py, &v.to_string()).into_any())
    } else {
        Ok(v.into_pyobject(py)?.into_any())
    }
}

fn timestamp_epoch(t: &Timestamp) -> String {
    let fsp = t.fsp.min(6);
    if fsp == 0 {
        t.seconds.to_string()
    } else {
        let frac = t.micros / 10u32.pow(6 - u32::from(fsp));
        format!("{}.{:0w$}", t.seconds, frac, w = usize::from(fsp))
    }
}

fn label<'py>(py: Python<'py>, bytes: &[u8], col: &ColumnDef<'_>) -> PyResult<Bound<'py, PyAny>> {
    match decode_text(bytes, col.collation) {
        Ok(s) => Ok(PyString::new(py, &s).into_any()),
        Err(_) => utf8_str(py, bytes),
    }
}

fn date_native<'py>(py: Python<'py>, refs: &Refs, d: &Date) -> PyResult<Bound<'py, PyAny>> {
    if d.year == 0 || d.month == 0 || d.day == 0 {
        return Ok(PyString::new(py, &d.to_string()).into_any());
    }
    refs.date
        .bind(py)
        .call1((d.year, d.month, d.day))
        .or_else(|_| Ok(PyString::new(py, &d.to_string()).into_any()))
}

fn datetime_native<'py>(
    py: Python<'py>,
    refs: &Refs,
    dt: &DateTime,
    tz: Option<&Py<PyAny>>,
    text: impl Fn() -> String,
) -> PyResult<Bound<'py, PyAny>> {
    let d = &dt.date;
    if d.year == 0 || d.month == 0 || d.day == 0 {
        return Ok(PyString::new(py, &text()).into_any());
    }
    let r = match tz {
        Some(tz) => refs.datetime.bind(py).call1((
            d.year,
            d.month,
            d.day,
            dt.hour,
            dt.minute,
            dt.second,
            dt.micros,
            tz.bind(py),
        )),
        None => refs.datetime.bind(py).call1((
            d.year, d.month, d.day, dt.hour, dt.minute, dt.second, dt.micros,
        )),
    };
    r.or_else(|_| Ok(PyString::new(py, &text()).into_any()))
}

fn time_native<'py>(py: Python<'py>, refs: &Refs, t: &Time) -> PyResult<Bound<'py, PyAny>> {
    let secs = i64::from(t.hours) * 3600 + i64::from(t.minutes) * 60 + i64::from(t.seconds);
    let mut micros = secs * 1_000_000 + i64::from(t.micros);
    if t.negative {
        micros = -micros;
    }
    refs.timedelta.bind(py).call1((0, 0, micros))
}

/// One column value.
fn value<'py>(
    py: Python<'py>,
    refs: &Refs,
    native: bool,
    v: &Value<'_>,
    col: Option<&ColumnDef<'_>>,
    json: &mut std::vec::IntoIter<String>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::UInt(u) => {
            if native {
                u.into_pyobject(py)?.into_any()
            } else {
                u64_compat(py, *u)?
            }
        }
        Value::Float(f) => f64::from(*f).into_pyobject(py)?.into_any(),
        Value::Double(d) => d.into_pyobject(py)?.into_any(),
        Value::Decimal(d) => {
            let s = d.to_string();
            if native {
                refs.decimal.bind(py).call1((s,))?
            } else {
                PyString::new(py, &s).into_any()
            }
        }
        Value::Year(y) => y.into_pyobject(py)?.into_any(),
        Value::Date(d) => {
            if native {
                date_native(py, refs, d)?
            } else {
                PyString::new(py, &d.to_string()).into_any()
            }
        }
        Value::Time(t) => {
            if native {
                time_native(py, refs, t)?
            } else {
                PyString::new(py, &t.to_string()).into_any()
            }
        }
        Value::DateTime(dt) => {
            if native {
                datetime_native(py, refs, dt, None, || dt.to_string())?
            } else {
                PyString::new(py, &dt.to_string()).into_any()
            }
        }
        Value::Timestamp(t) => {
            if native {
                if t.seconds == 0 && t.micros == 0 {
                    PyString::new(py, &t.to_string()).into_any()
                } else {
                    datetime_native(py, refs, &t.to_utc(), Some(&refs.utc), || t.to_string())?
                }
            } else {
                PyString::new(py, &timestamp_epoch(t)).into_any()
            }
        }
        Value::String { bytes, collation } => match collation {
            // No charset metadata (binlog_row_metadata=NO_LOG): bytes are the only lossless
            // reading (the original's rule).
            None => PyBytes::new(py, bytes).into_any(),
            Some(c) if native => match decode_text(bytes, Some(*c)) {
                Ok(s) => PyString::new(py, &s).into_any(),
                Err(_) => utf8_str(py, bytes)?,
            },
            Some(_) => utf8_str(py, bytes)?,
        },
        Value::Bytes(b) | Value::Geometry(b) => PyBytes::new(py, b).into_any(),
        Value::Vector(b) => {
            if native {
                let floats = v.vector_elements().unwrap_or_default();
                PyList::new(py, floats.into_iter().map(f64::from))?.into_any()
            } else {
                PyBytes::new(py, b).into_any()
            }
        }
        Value::Enum(i) => match col.filter(|c| native && c.enum_values.is_some()) {
            Some(c) => match c.enum_label(*i) {
                Some(l) => label(py, l, c)?,
                None => PyString::new(py, "").into_any(),
            },
            None => i.into_pyobject(py)?.into_any(),
        },
        Value::Set(bits) => match col
            .filter(|_| native)
            .and_then(|c| c.set_values.as_ref().map(|v| (c, v)))
        {
            Some((c, members)) => {
                let mut labels = Vec::new();
                for (i, m) in members.iter().enumerate().take(64) {
                    if bits >> i & 1 == 1 {
                        labels.push(label(py, m, c)?);
                    }
                }
                PyFrozenSet::new(py, labels.iter())?.into_any()
            }
            None if native => bits.into_pyobject(py)?.into_any(),
            None => u64_compat(py, *bits)?,
        },
        Value::Bit(b) => {
            if native {
                b.into_pyobject(py)?.into_any()
            } else {
                u64_compat(py, *b)?
            }
        }
        Value::Json(_) => {
            let text = json.next().unwrap_or_default();
            if native {
                refs.json_loads.bind(py).call1((text,))?
            } else {
                PyString::new(py, &text).into_any()
            }
        }
        // Value is non_exhaustive: a variant added later is refused loudly, never guessed.
        other => {
            return Err(crate::mes_error(
                py,
                refs,
                crate::CODE_DECODE_ROW,
                format!("value {other:?} has no Python representation in this binding"),
            ));
        }
    })
}

fn row<'py>(
    py: Python<'py>,
    refs: &Refs,
    native: bool,
    row: &Row<'_>,
    info: &TableInfo,
    keys: &[Py<PyString>],
    json: &mut std::vec::IntoIter<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (i, v) in row.values.iter().enumerate() {
        // Columns absent from the row image (MINIMAL / NOBLOB) are absent from the dict.
        let Some(v) = v else { continue };
        let col = info.map.columns.get(i);
        let val = value(py, refs, native, v, col, json)?;
        match keys.get(i) {
            Some(k) => d.set_item(k.bind(py), val)?,
            None => d.set_item(i.to_string(), val)?,
        }
    }
    Ok(d)
}

/// Build a frozen slots dataclass instance without running its generated `__init__` (which
/// sets every field through `object.__setattr__`, ~0.8 µs for `ChangeEvent`): allocate with
/// `object.__new__(cls)` and store each slot through the generic attribute setter — exactly what
/// `object.__setattr__` does, minus the Python-level call per field.
pub fn fast_new<'py>(
    py: Python<'py>,
    refs: &Refs,
    cls: &Py<PyAny>,
    names: &[Py<PyString>],
    values: &[Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    debug_assert_eq!(names.len(), values.len());
    let obj = refs.object_new.bind(py).call1((cls.bind(py),))?;
    for (name, value) in names.iter().zip(values) {
        // SAFETY: all three pointers are live, owned references held by the GIL-bound
        // handles above; PyObject_GenericSetAttr does not steal references.
        let rc = unsafe {
            pyo3::ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr())
        };
        if rc != 0 {
            return Err(PyErr::fetch(py));
        }
    }
    Ok(obj)
}

/// A queued change as a `ChangeEvent`.
pub fn event<'py>(
    py: Python<'py>,
    refs: &Refs,
    cache: &mut PyCache,
    native: bool,
    ready: Ready,
) -> PyResult<Bound<'py, PyAny>> {
    let ev = &ready.event;
    let position = match &cache.position {
        Some((f, o, p)) if Arc::ptr_eq(f, &ev.position.file) && *o == ev.position.offset => {
            p.clone_ref(py)
        }
        _ => {
            let p = fast_new(
                py,
                refs,
                &refs.binlog_position,
                &refs.position_fields,
                &[
                    PyString::new(py, &ev.position.file).into_any(),
                    ev.position.offset.into_pyobject(py)?.into_any(),
                ],
            )?
            .unbind();
            cache.position = Some((
                ev.position.file.clone(),
                ev.position.offset,
                p.clone_ref(py),
            ));
            p
        }
    };
    let source_sql = match (&ev.statement, ready.annotate) {
        (Some(s), true) => match &cache.statement {
            Some((a, p)) if Arc::ptr_eq(a, s) => p.clone_ref(py),
            _ => {
                let p = PyString::new(py, s).unbind();
                cache.statement = Some((s.clone(), p.clone_ref(py)));
                p
            }
        },
        _ => refs.empty.clone_ref(py),
    };
    let gtid = match &ev.gtid {
        Some(g) => match &cache.gtid {
            Some((a, p)) if Arc::ptr_eq(a, g) => p.clone_ref(py).into_any(),
            _ => {
                let p = PyString::new(py, g).unbind();
                cache.gtid = Some((g.clone(), p.clone_ref(py)));
                p.into_any()
            }
        },
        None => py.None(),
    };
    let mut json = ready.json.into_iter();
    let t = cache.table(py, &ev.table);
    let before = match &ev.before {
        Some(r) => row(py, refs, native, r, &ev.table, &t.keys, &mut json)?.into_any(),
        None => py.None().into_bound(py),
    };
    let after = match &ev.after {
        Some(r) => row(py, refs, native, r, &ev.table, &t.keys, &mut json)?.into_any(),
        None => py.None().into_bound(py),
    };
    let kind = match ev.kind {
        ChangeKind::Insert => &refs.event_types[0],
        ChangeKind::Update => &refs.event_types[1],
        ChangeKind::Delete => &refs.event_types[2],
    };
    fast_new(
        py,
        refs,
        &refs.change_event,
        &refs.event_fields,
        &[
            kind.bind(py).clone(),
            t.database.bind(py).clone().into_any(),
            t.table.bind(py).clone().into_any(),
            before,
            after,
            ev.timestamp.into_pyobject(py)?.into_any(),
            position.into_bound(py),
            pyo3::types::PyBool::new(py, t.names_resolved)
                .to_owned()
                .into_any(),
            source_sql.into_bound(py).into_any(),
            gtid.into_bound(py),
        ],
    )
}
