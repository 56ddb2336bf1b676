//! Decoded values and events → Python objects.
//!
//! Default representation = the original 1.8.0 wheel's (PYTHON_API.md §2), except JSON, which
//! is the JSON text MySQL's `SELECT` prints. `native_types=True` gives Python types instead.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_binlog_codec::ColumnDef;
use mysql_binlog_codec::charset::decode_text;
use mysql_binlog_codec::engine::{ChangeKind, EngineError, TableInfo};
use mysql_binlog_codec::value::{Date, DateTime, Time};
use mysql_binlog_codec::{AsciiText, Row, Value};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyList, PyString};

use crate::Refs;
use crate::feed::{FeedError, Ready, has_text};

/// The texts a helper rendered ahead ([`Ready::texts`]), taken in order, one per value that
/// has one ([`crate::feed::text_of`]); when there are none, each text is rendered here.
struct Texts<'a>(Option<std::slice::Iter<'a, AsciiText>>);

impl Texts<'_> {
    /// The value's text as `str`: the next one rendered ahead, else `render()`'s.
    fn str<'py>(
        &mut self,
        py: Python<'py>,
        render: impl FnOnce() -> AsciiText,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.0.as_mut().and_then(Iterator::next) {
            Some(t) => ascii_str(py, t),
            None => ascii_str(py, &render()),
        }
    }

    /// Pass over the text of a value whose object is not built (reused from the before image).
    fn skip(&mut self, v: &Value<'_>, native: bool) {
        if let Some(it) = self.0.as_mut().filter(|_| has_text(v, native)) {
            it.next();
        }
    }
}

/// Python objects reused across events of one table.
pub struct TableCache {
    _keep: Arc<TableInfo>,
    database: Py<PyString>,
    table: Py<PyString>,
    keys: Vec<Py<PyString>>,
    /// `{key: None for key in keys}`: a row image with every column is a copy of it with the
    /// values replaced. CPython copies a compact dict by cloning its key table (no hashing, no
    /// resizing while filling), which is cheaper than growing a fresh dict key by key.
    template: Option<Py<PyDict>>,
    names_resolved: bool,
}

/// Hashes the table cache's keys, the addresses of tables' shared infos: a multiply and a
/// fold instead of SipHash (one lookup per event; keys made by our allocator need no
/// flooding resistance).
#[derive(Default)]
struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_usize(&mut self, n: usize) {
        // Addresses are aligned (low bits zero), and the table picks buckets by the low bits:
        // the high half of the product is folded into them.
        let h = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }
}

/// Per-engine caches of Python objects (only touched with the GIL held).
#[derive(Default)]
pub struct PyCache {
    tables: HashMap<usize, TableCache, std::hash::BuildHasherDefault<AddressHasher>>,
    position: Option<(Arc<str>, u64, Py<PyAny>)>,
    file: Option<(Arc<str>, Py<PyString>)>,
    timestamp: Option<(u32, Py<PyAny>)>,
    statement: Option<(Arc<str>, Py<PyString>)>,
    gtid: Option<(Arc<str>, Py<PyString>)>,
}

impl PyCache {
    /// Drop everything (on reset / close).
    pub fn clear(&mut self) {
        self.tables.clear();
        self.position = None;
        self.file = None;
        self.timestamp = None;
        self.statement = None;
        self.gtid = None;
    }

    fn table<'py>(&mut self, py: Python<'py>, info: &Arc<TableInfo>) -> &TableCache {
        let key = Arc::as_ptr(info) as usize;
        if self.tables.len() >= 4096 && !self.tables.contains_key(&key) {
            self.tables.clear();
        }
        self.tables.entry(key).or_insert_with(|| {
            let n = info.map.columns.len();
            let names = info.column_names.as_ref();
            let mut resolved = names.is_some();
            let keys: Vec<Py<PyString>> = (0..n)
                .map(
                    |i| match names.and_then(|v| v.get(i)).filter(|s| !s.is_empty()) {
                        Some(name) => PyString::intern(py, name).unbind(),
                        None => {
                            resolved = false;
                            PyString::new(py, &i.to_string()).unbind()
                        }
                    },
                )
                .collect();
            let template = PyDict::new(py);
            for k in &keys {
                let k: &Py<PyString> = k;
                let _ = template.set_item(k.bind(py), py.None());
            }
            // Duplicate names (never produced by a server) would make the copy shorter.
            let template = (template.len() == keys.len()).then(|| template.unbind());
            TableCache {
                _keep: info.clone(),
                database: PyString::new(py, &info.database).unbind(),
                table: PyString::new(py, &info.table).unbind(),
                keys,
                template,
                names_resolved: resolved,
            }
        })
    }
}

/// UTF-8 text as `str`, invalid bytes kept with `surrogateescape` (the original's rule). One
/// pass: CPython validates and decodes together (no separate Rust UTF-8 check).
fn utf8_str<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let Ok(len) = pyo3::ffi::Py_ssize_t::try_from(b.len()) else {
        return Err(pyo3::exceptions::PyOverflowError::new_err(
            "string too long",
        ));
    };
    // SAFETY: `b` is a live slice of `len` bytes; the error handler name is a NUL-terminated
    // static string; the result is a new reference or NULL with an exception set.
    unsafe {
        let obj =
            pyo3::ffi::PyUnicode_DecodeUTF8(b.as_ptr().cast(), len, c"surrogateescape".as_ptr());
        Bound::from_owned_ptr_or_err(py, obj)
    }
}

/// An ASCII text (temporal / DECIMAL rendering) as `str`. `PyUnicode_DecodeASCII` skips the
/// UTF-8 decoder's set-up (0.4% fewer instructions per event of the sync benchmark than
/// `PyUnicode_FromStringAndSize`); the text is ASCII by construction, so it cannot fail on it.
fn ascii_str<'py>(py: Python<'py>, t: &AsciiText) -> PyResult<Bound<'py, PyAny>> {
    let b = t.as_bytes();
    // SAFETY: `b` is a live slice of at most AsciiText::CAPACITY bytes (so the length cast is
    // lossless); a NULL error handler means "strict"; the result is a new reference or NULL with
    // an exception set.
    unsafe {
        let obj = pyo3::ffi::PyUnicode_DecodeASCII(
            b.as_ptr().cast(),
            b.len() as pyo3::ffi::Py_ssize_t,
            std::ptr::null(),
        );
        Bound::from_owned_ptr_or_err(py, obj)
    }
}

fn u64_compat<'py>(py: Python<'py>, v: u64) -> PyResult<Bound<'py, PyAny>> {
    if v > i64::MAX as u64 {
        Ok(PyString::new(py, &v.to_string()).into_any())
    } else {
        Ok(v.into_pyobject(py)?.into_any())
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
    texts: &mut Texts<'_>,
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
            let s = texts.str(py, || d.as_decimal().to_text())?;
            if native {
                refs.decimal.bind(py).call1((s,))?
            } else {
                s
            }
        }
        Value::Year(y) => y.into_pyobject(py)?.into_any(),
        Value::Date(d) => {
            if native {
                date_native(py, refs, d)?
            } else {
                texts.str(py, || d.to_text())?
            }
        }
        Value::Time(t) => {
            if native {
                time_native(py, refs, t)?
            } else {
                texts.str(py, || t.to_text())?
            }
        }
        Value::DateTime(dt) => {
            if native {
                datetime_native(py, refs, dt, None, || dt.to_string())?
            } else {
                texts.str(py, || dt.to_text())?
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
                texts.str(py, || t.to_epoch_text())?
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

/// Whether a value's Python object is immutable, so the same object can stand for an unchanged
/// column in both images of an UPDATE (JSON may become a dict/list and VECTOR a list with
/// `native_types`; JSON text is also consumed in order from `json`, so it is never shared).
fn shareable(v: &Value<'_>, native: bool) -> bool {
    match v {
        Value::Json(_) => false,
        Value::Vector(_) => !native,
        _ => true,
    }
}

/// Same value, bit for bit (`==` would call -0.0 and 0.0 equal).
fn identical(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// An UPDATE's before image as converted, offered to its after image: the decoded row, each
/// column's object (`None` where the column is absent) and the dict.
#[derive(Clone, Copy)]
struct Before<'r, 'py> {
    row: &'r Row<'r>,
    objs: &'r [Option<Bound<'py, PyAny>>],
    dict: &'r Bound<'py, PyDict>,
}

/// Converts the row images of one event: what every image of it shares.
struct RowConverter<'a, 'py> {
    py: Python<'py>,
    refs: &'a Refs,
    native: bool,
    info: &'a TableInfo,
    t: &'a TableCache,
    /// JSON texts, taken in order (before image first).
    json: std::vec::IntoIter<String>,
    texts: Texts<'a>,
}

impl<'py> RowConverter<'_, 'py> {
    /// Whether `row` has every column (then its dict has the template's keys, in order).
    fn full(&self, row: &Row<'_>) -> bool {
        row.values.len() == self.t.keys.len() && row.values.iter().all(Option::is_some)
    }

    /// One row image as a dict. `record` (before image of an UPDATE) receives each column's
    /// object; `shared` (after image) offers them back: a column whose value equals the before
    /// image's reuses that object instead of building an equal one. When both images have
    /// every column, the after image's dict starts as a copy of the before image's (`shared`'s
    /// dict) and only the columns that changed are set in it.
    fn row(
        &mut self,
        row: &Row<'_>,
        mut record: Option<&mut Vec<Option<Bound<'py, PyAny>>>>,
        shared: Option<Before<'_, 'py>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (py, native) = (self.py, self.native);
        let keys = &self.t.keys;
        let full = self.full(row);
        // An UPDATE's after image with every column, after a before image with every column:
        // the before image's dict has the same keys in the same order, and the unchanged
        // columns' objects already in place. Only with a template, i.e. distinct keys: with
        // two columns under one key the dict holds the later column's value, and setting only
        // the changed columns in a copy could leave the earlier column's value there instead.
        let from_before = match shared {
            Some(b) if full && self.t.template.is_some() && self.full(b.row) => {
                Some(b.dict.copy()?)
            }
            _ => None,
        };
        let copied = from_before.is_some();
        let d = match (from_before, &self.t.template, full) {
            (Some(d), _, _) => d,
            (None, Some(tpl), true) => tpl.bind(py).copy()?,
            _ => PyDict::new(py),
        };
        for (i, v) in row.values.iter().enumerate() {
            // Columns absent from the row image (MINIMAL / NOBLOB) are absent from the dict.
            let Some(v) = v else {
                if let Some(rec) = record.as_deref_mut() {
                    rec.push(None);
                }
                continue;
            };
            let reuse = shared.and_then(|b| match (b.row.values.get(i), b.objs.get(i)) {
                (Some(Some(b)), Some(Some(obj))) if shareable(v, native) && identical(b, v) => {
                    Some(obj.clone())
                }
                _ => None,
            });
            let val = match reuse {
                Some(_) if copied => {
                    // Already in the dict copied from the before image.
                    self.texts.skip(v, native);
                    continue;
                }
                Some(obj) => {
                    self.texts.skip(v, native);
                    obj
                }
                None => {
                    let col = self.info.map.columns.get(i);
                    value(
                        py,
                        self.refs,
                        native,
                        v,
                        col,
                        &mut self.json,
                        &mut self.texts,
                    )?
                }
            };
            if let Some(rec) = record.as_deref_mut() {
                rec.push(Some(val.clone()));
            }
            match keys.get(i) {
                Some(k) => d.set_item(k.bind(py), val)?,
                None => d.set_item(i.to_string(), val)?,
            }
        }
        Ok(d)
    }
}

/// A frozen slots dataclass (`ChangeEvent`, `BinlogPosition`) and the fastest safe way to make
/// its instances without running the generated `__init__` (which sets every field through
/// `object.__setattr__`, ~0.8 µs for `ChangeEvent`).
///
/// Fast path: allocate with the type's `tp_alloc` (what `object.__new__(cls)` does) and store
/// each field straight into its slot. The slot offsets are not part of the stable ABI, so they
/// are *measured* once at registration: a probe instance gets a distinct sentinel in every slot
/// through the generic attribute setter, and the fast path is used only if each sentinel is found
/// at the offset CPython's layout rule gives (`tp_basicsize` of `object`, then one pointer per
/// slot in `__slots__` order). Otherwise every instance goes through `object.__new__` + the
/// generic setter (still no Python-level call per field).
pub struct SlotsClass {
    cls: Py<PyAny>,
    names: Vec<Py<PyString>>,
    /// `tp_alloc` and the byte offset of each slot, when verified.
    direct: Option<(pyo3::ffi::allocfunc, Vec<usize>)>,
}

impl SlotsClass {
    /// Check that `cls` is a slots class with exactly `fields` in this order, and measure its
    /// layout.
    pub fn new(py: Python<'_>, cls: Py<PyAny>, fields: &[&str]) -> PyResult<Self> {
        let slots: Vec<String> = cls.bind(py).getattr("__slots__")?.extract()?;
        if slots != fields {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "_init: {} has slots {slots:?}, expected {fields:?}",
                cls.bind(py).getattr("__name__")?
            )));
        }
        let names: Vec<Py<PyString>> = fields
            .iter()
            .map(|n| PyString::intern(py, n).unbind())
            .collect();
        let mut this = Self {
            cls,
            names,
            direct: None,
        };
        this.direct = this.measure(py)?;
        Ok(this)
    }

    /// The verified fast-path layout, or None. (CPython orders slots by name, not by
    /// `__slots__` order, so every offset is found by its sentinel.)
    fn measure(&self, py: Python<'_>) -> PyResult<Option<(pyo3::ffi::allocfunc, Vec<usize>)>> {
        let cls = self.cls.bind(py);
        let Ok(tp) = cls.cast::<pyo3::types::PyType>() else {
            return Ok(None);
        };
        let ptr_size = std::mem::size_of::<*mut pyo3::ffi::PyObject>();
        let object_size: usize = py
            .get_type::<pyo3::types::PyAny>()
            .getattr("__basicsize__")?
            .extract()?;
        let basic: usize = cls.getattr("__basicsize__")?.extract()?;
        if basic != object_size + ptr_size * self.names.len() {
            return Ok(None);
        }
        // SAFETY: PyType_GetSlot accepts any type object since 3.10 and returns the slot's
        // function pointer or NULL; Py_tp_alloc's slot has the `allocfunc` signature.
        let alloc: Option<pyo3::ffi::allocfunc> = unsafe {
            let f = pyo3::ffi::PyType_GetSlot(tp.as_type_ptr(), pyo3::ffi::Py_tp_alloc);
            if f.is_null() {
                None
            } else {
                Some(std::mem::transmute::<
                    *mut std::ffi::c_void,
                    pyo3::ffi::allocfunc,
                >(f))
            }
        };
        let Some(alloc) = alloc else { return Ok(None) };
        let probe = self.build_generic(
            py,
            (0..self.names.len())
                .map(|_| pyo3::types::PyList::empty(py).into_any())
                .collect(),
        )?;
        let mut offsets = Vec::with_capacity(self.names.len());
        for name in &self.names {
            let sentinel = probe.getattr(name.bind(py))?;
            // The pointer slots of the instance after the `object` header.
            let found: Vec<usize> = (0..self.names.len())
                .map(|k| object_size + ptr_size * k)
                .filter(|off| {
                    // SAFETY: `off + ptr_size <= basic`, the instance size, so the read stays
                    // inside the live probe object; every slot holds an object pointer.
                    let at = unsafe {
                        probe
                            .as_ptr()
                            .cast::<u8>()
                            .add(*off)
                            .cast::<*mut pyo3::ffi::PyObject>()
                            .read()
                    };
                    at == sentinel.as_ptr()
                })
                .collect();
            match found.as_slice() {
                [off] => offsets.push(*off),
                _ => return Ok(None),
            }
        }
        Ok(Some((alloc, offsets)))
    }

    /// Whether instances are built by direct slot stores (the measured layout).
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// The class itself.
    pub fn class(&self) -> &Py<PyAny> {
        &self.cls
    }

    /// Slow path: `object.__new__(cls)` + the generic setter per slot.
    fn build_generic<'py>(
        &self,
        py: Python<'py>,
        values: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cls = self.cls.bind(py).cast::<pyo3::types::PyType>()?;
        let obj = py
            .get_type::<pyo3::types::PyAny>()
            .call_method1("__new__", (cls,))?;
        for (name, value) in self.names.iter().zip(&values) {
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

    /// A new instance with these field values (in field order).
    pub fn build<'py, const N: usize>(
        &self,
        py: Python<'py>,
        values: [Bound<'py, PyAny>; N],
    ) -> PyResult<Bound<'py, PyAny>> {
        if N != self.names.len() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "{N} values for {} fields",
                self.names.len()
            )));
        }
        let Some((alloc, offsets)) = &self.direct else {
            return self.build_generic(py, values.into());
        };
        let cls = self.cls.bind(py).cast::<pyo3::types::PyType>()?;
        // SAFETY: `alloc` is the type's own tp_alloc; it returns a new, zero-filled instance
        // (GC-tracked for GC types) or NULL with an exception set. Each offset was verified at
        // registration to be the slot of the corresponding field, inside the instance; the
        // slots are NULL in a fresh instance, so storing an owned reference (into_ptr) there is
        // exactly what the slot setter does, minus the descriptor lookup. No Python code runs
        // between the allocation and the stores.
        unsafe {
            let obj = alloc(cls.as_type_ptr(), 0);
            let obj = Bound::from_owned_ptr_or_err(py, obj)?;
            let base = obj.as_ptr().cast::<u8>();
            for (off, v) in offsets.iter().zip(values) {
                base.add(*off)
                    .cast::<*mut pyo3::ffi::PyObject>()
                    .write(v.into_ptr());
            }
            Ok(obj)
        }
    }
}

/// A queued change as a `ChangeEvent`.
pub fn event<'py>(
    py: Python<'py>,
    refs: &Refs,
    cache: &mut PyCache,
    native: bool,
    ready: &mut Ready,
) -> PyResult<Bound<'py, PyAny>> {
    let ev = &ready.event;
    let position = match &cache.position {
        Some((f, o, p)) if Arc::ptr_eq(f, &ev.position().file) && *o == ev.position().offset => {
            p.clone_ref(py)
        }
        _ => {
            let file = match &cache.file {
                Some((f, p)) if Arc::ptr_eq(f, &ev.position().file) => p.clone_ref(py),
                _ => {
                    let p = PyString::new(py, &ev.position().file).unbind();
                    cache.file = Some((ev.position().file.clone(), p.clone_ref(py)));
                    p
                }
            };
            let p = refs
                .binlog_position
                .build(
                    py,
                    [
                        file.into_bound(py).into_any(),
                        ev.position().offset.into_pyobject(py)?.into_any(),
                    ],
                )?
                .unbind();
            cache.position = Some((
                ev.position().file.clone(),
                ev.position().offset,
                p.clone_ref(py),
            ));
            p
        }
    };
    let source_sql = match (ev.statement(), ready.annotate) {
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
    let gtid = match ev.gtid() {
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
    let timestamp = match &cache.timestamp {
        Some((t, p)) if *t == ev.timestamp() => p.clone_ref(py),
        _ => {
            let p = ev.timestamp().into_pyobject(py)?.into_any().unbind();
            cache.timestamp = Some((ev.timestamp(), p.clone_ref(py)));
            p
        }
    };
    let json = std::mem::take(&mut ready.json).into_iter();
    // Texts rendered ahead exist only for images decoded ahead (the helper renders them after
    // a successful decode); otherwise each text is rendered here.
    let texts = Texts(ready.texts.as_deref().map(<[AsciiText]>::iter));
    let t = cache.table(py, ev.table());
    let decode = |e: EngineError| {
        let e = FeedError::from_engine(&e);
        crate::mes_error(py, refs, e.code, e.message)
    };
    // Both engines of the binding decode the images before conversion (a live stream on its
    // reader thread, `CdcEngine` in `feed` or on its decode-ahead thread), so they are used as
    // they are; an event with lazy images would be decoded here, borrowing from the rows
    // event's bytes.
    let decoded;
    let (before_row, after_row) = match ev.decoded_images() {
        Some((b, a)) => (b, a),
        None => {
            decoded = (ev.before().map_err(decode)?, ev.after().map_err(decode)?);
            (decoded.0.as_ref(), decoded.1.as_ref())
        }
    };
    let mut images = RowConverter {
        py,
        refs,
        native,
        info: ev.table(),
        t,
        json,
        texts,
    };
    let mut before_objs = Vec::with_capacity(before_row.map_or(0, |r| r.values.len()));
    let record = (before_row.is_some() && after_row.is_some()).then_some(&mut before_objs);
    let before = match before_row {
        Some(r) => images.row(r, record, None)?.into_any(),
        None => py.None().into_bound(py),
    };
    let after = match after_row {
        Some(r) => {
            let before_dict = before.cast::<PyDict>().ok();
            let shared = before_row.zip(before_dict).map(|(row, dict)| Before {
                row,
                objs: &before_objs,
                dict,
            });
            images.row(r, None, shared)?.into_any()
        }
        None => py.None().into_bound(py),
    };
    let kind = match ev.kind() {
        ChangeKind::Insert => &refs.event_types[0],
        ChangeKind::Update => &refs.event_types[1],
        ChangeKind::Delete => &refs.event_types[2],
    };
    refs.change_event.build(
        py,
        [
            kind.bind(py).clone(),
            t.database.bind(py).clone().into_any(),
            t.table.bind(py).clone().into_any(),
            before,
            after,
            timestamp.into_bound(py),
            position.into_bound(py),
            pyo3::types::PyBool::new(py, t.names_resolved)
                .to_owned()
                .into_any(),
            source_sql.into_bound(py).into_any(),
            gtid.into_bound(py),
        ],
    )
}
