//! Python binding (PyO3 + maturin): the extension module `mysql_event_stream._native` behind the
//! pure-Python package `mysql_event_stream` (mes-py/python). See `PYTHON_API.md` for the
//! contract.
//!
//! The Python layer validates arguments and owns the public classes; this module holds the
//! decoding engine (`feed::FeedState`, GIL released while decoding) and builds the event
//! objects (the private module `convert`).

use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, TryLockError};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod convert;
pub mod feed;
mod live;

use feed::{FeedState, FilterKind};

pub(crate) const CODE_INVALID_ARG: i32 = 2;
pub(crate) const CODE_DECODE_ROW: i32 = feed::CODE_DECODE_ROW;

/// Python objects the native code needs (registered once by `types.py` / `engine.py`).
pub(crate) struct Refs {
    change_event: convert::SlotsClass,
    binlog_position: convert::SlotsClass,
    event_types: [Py<PyAny>; 3],
    exception_for_rc: Py<PyAny>,
    mark_invalid_arg: Py<PyAny>,
    log_dispatch: Py<PyAny>,
    date: Py<PyAny>,
    datetime: Py<PyAny>,
    timedelta: Py<PyAny>,
    utc: Py<PyAny>,
    decimal: Py<PyAny>,
    json_loads: Py<PyAny>,
    empty: Py<pyo3::types::PyString>,
}

static REFS: PyOnceLock<Refs> = PyOnceLock::new();

fn refs(py: Python<'_>) -> PyResult<&'static Refs> {
    REFS.get(py).ok_or_else(|| {
        PyRuntimeError::new_err(
            "mysql_event_stream._native used before _init() registered the types",
        )
    })
}

/// The typed exception `exception_for_rc(code, message)` builds (ParseError, DecodeError,
/// ChecksumError or MesError).
pub(crate) fn mes_error(py: Python<'_>, refs: &Refs, code: i32, message: String) -> PyErr {
    match refs.exception_for_rc.bind(py).call1((code, message)) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// A builtin exception with `.code = MesErrorCode.INVALID_ARG`.
fn coded(py: Python<'_>, refs: &Refs, err: PyErr) -> PyErr {
    match refs.mark_invalid_arg.bind(py).call1((err.value(py),)) {
        Ok(v) => PyErr::from_value(v),
        Err(e) => e,
    }
}

const EVENT_FIELDS: [&str; 10] = [
    "type",
    "database",
    "table",
    "before",
    "after",
    "timestamp",
    "position",
    "names_resolved",
    "source_sql",
    "gtid",
];

/// Register the Python-side types (called once at import by `engine.py`).
#[pyfunction]
fn _init(py: Python<'_>, ns: &Bound<'_, PyDict>) -> PyResult<()> {
    let get = |k: &str| -> PyResult<Py<PyAny>> {
        ns.get_item(k)?
            .map(Bound::unbind)
            .ok_or_else(|| PyRuntimeError::new_err(format!("_init: missing {k}")))
    };
    let refs = Refs {
        change_event: convert::SlotsClass::new(py, get("ChangeEvent")?, &EVENT_FIELDS)?,
        binlog_position: convert::SlotsClass::new(py, get("BinlogPosition")?, &["file", "offset"])?,
        event_types: [get("INSERT")?, get("UPDATE")?, get("DELETE")?],
        exception_for_rc: get("exception_for_rc")?,
        mark_invalid_arg: get("mes_validation_error")?,
        log_dispatch: get("log_dispatch")?,
        date: get("date")?,
        datetime: get("datetime")?,
        timedelta: get("timedelta")?,
        utc: get("utc")?,
        decimal: get("Decimal")?,
        json_loads: get("json_loads")?,
        empty: pyo3::types::PyString::intern(py, "").unbind(),
    };
    // A second _init (module reload) keeps the first registration.
    let _ = REFS.set(py, refs);
    Ok(())
}

/// Whether `ChangeEvent` and `BinlogPosition` instances are built by direct slot stores (the
/// layout measured at `_init`) rather than the generic setter; for tests.
#[pyfunction]
fn _direct_slots(py: Python<'_>) -> PyResult<(bool, bool)> {
    let refs = refs(py)?;
    Ok((
        refs.change_event.is_direct(),
        refs.binlog_position.is_direct(),
    ))
}

/// Deliver log records with level <= `level` to the registered dispatcher (-1: none).
#[pyfunction]
fn _set_log_level(level: i32) {
    feed::LOG_LEVEL.store(level, Ordering::Relaxed);
}

fn dispatch_logs(py: Python<'_>, refs: &Refs, logs: Vec<(i32, String)>) {
    for (level, msg) in logs {
        // The dispatcher swallows handler exceptions; anything else is not ours to raise here.
        let _ = refs.log_dispatch.bind(py).call1((level, msg));
    }
}

struct State {
    feed: Option<FeedState>,
    cache: convert::PyCache,
}

/// The decoding engine behind `CdcEngine` (single owner; not for concurrent use).
#[pyclass(module = "mysql_event_stream._native", subclass)]
struct NativeEngine {
    state: Mutex<State>,
    native_types: bool,
}

impl NativeEngine {
    fn lock(&self, py: Python<'_>) -> PyResult<MutexGuard<'_, State>> {
        match self.state.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => {
                let refs = refs(py)?;
                Err(coded(
                    py,
                    refs,
                    PyRuntimeError::new_err(
                        "CdcEngine is in use by another thread (an engine has a single owner)",
                    ),
                ))
            }
        }
    }

    fn with_open<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut FeedState, &mut convert::PyCache) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut g = self.lock(py)?;
        let st = &mut *g;
        match st.feed.as_mut() {
            Some(feed) => f(feed, &mut st.cache),
            None => Err(mes_error(
                py,
                refs(py)?,
                CODE_INVALID_ARG,
                "Engine has been closed".into(),
            )),
        }
    }
}

#[pymethods]
impl NativeEngine {
    /// `lib_path` is accepted (and validated by the Python subclass) for compatibility only.
    #[new]
    #[pyo3(signature = (lib_path = None, *, native_types = None))]
    fn new(lib_path: Option<&Bound<'_, PyAny>>, native_types: Option<&Bound<'_, PyAny>>) -> Self {
        let _ = lib_path;
        // A non-bool is refused (with a coded TypeError) by the Python subclass's __init__.
        let native_types = native_types.is_some_and(|b| b.is_truthy().unwrap_or(false));
        Self {
            state: Mutex::new(State {
                feed: Some(FeedState::new().with_native_types(native_types)),
                cache: convert::PyCache::default(),
            }),
            native_types,
        }
    }

    /// Feed binlog bytes (`bytes` or `bytearray`); returns the number consumed.
    fn feed(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let refs = refs(py)?;
        // bytes are immutable: borrowed while the GIL is released. A bytearray could be
        // resized by another thread meanwhile, so it is copied.
        let copy;
        let bytes: &[u8] = if let Ok(b) = data.cast::<PyBytes>() {
            b.as_bytes()
        } else if let Ok(b) = data.cast::<PyByteArray>() {
            copy = b.to_vec();
            &copy
        } else {
            let name = data.get_type().name()?.to_string();
            return Err(coded(
                py,
                refs,
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "feed() expects bytes or bytearray, got {name}"
                )),
            ));
        };
        let mut g = self.lock(py)?;
        let Some(state) = g.feed.as_mut() else {
            return Err(mes_error(
                py,
                refs,
                CODE_INVALID_ARG,
                "Engine has been closed".into(),
            ));
        };
        if bytes.is_empty() {
            return Ok(0);
        }
        let result = py.detach(|| state.feed(bytes));
        let logs = std::mem::take(&mut state.logs);
        drop(g);
        dispatch_logs(py, refs, logs);
        result.map_err(|e| mes_error(py, refs, e.code, e.message))
    }

    /// The next change event, or None.
    fn next_event(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let refs = refs(py)?;
        let native = self.native_types;
        self.with_open(py, |feed, cache| {
            if feed.must_wait() {
                // The next event is still at the decode-ahead helper (microseconds).
                py.detach(|| feed.wait_ahead());
            }
            match feed.pop() {
                Some(mut ready) => {
                    let r = convert::event(py, refs, cache, native, &mut ready);
                    feed.recycle(ready);
                    Ok(r?.unbind())
                }
                None => Ok(py.None()),
            }
        })
    }

    fn has_events(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_open(py, |feed, _| Ok(feed.has_events()))
    }

    fn get_position(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let refs = refs(py)?;
        self.with_open(py, |feed, _| {
            let (file, offset) = feed.position();
            Ok(refs
                .binlog_position
                .class()
                .bind(py)
                .call1((file, offset))?
                .unbind())
        })
    }

    fn reset(&self, py: Python<'_>) -> PyResult<()> {
        self.with_open(py, |feed, cache| {
            feed.reset();
            cache.clear();
            Ok(())
        })
    }

    fn set_max_queue_size(&self, py: Python<'_>, n: u64) -> PyResult<()> {
        self.with_open(py, |feed, _| {
            feed.set_max_queue_size(n);
            Ok(())
        })
    }

    fn set_max_queue_bytes(&self, py: Python<'_>, n: u64) -> PyResult<()> {
        self.with_open(py, |feed, _| {
            feed.set_max_queue_bytes(n);
            Ok(())
        })
    }

    fn get_max_queue_bytes(&self, py: Python<'_>) -> PyResult<u64> {
        self.with_open(py, |feed, _| Ok(feed.max_queue_bytes()))
    }

    fn set_max_event_size(&self, py: Python<'_>, n: u64) -> PyResult<()> {
        self.with_open(py, |feed, _| {
            feed.set_max_event_size(n);
            Ok(())
        })
    }

    fn get_max_event_size(&self, py: Python<'_>) -> PyResult<u64> {
        self.with_open(py, |feed, _| Ok(feed.max_event_size()))
    }

    fn set_checksum_enabled(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        self.with_open(py, |feed, _| {
            feed.set_checksum_enabled(on);
            Ok(())
        })
    }

    fn set_trailer_pre_verified(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        self.with_open(py, |feed, _| {
            feed.set_trailer_pre_verified(on);
            Ok(())
        })
    }

    fn get_trailer_pre_verified(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_open(py, |feed, _| Ok(feed.trailer_pre_verified()))
    }

    /// `kind`: "include_databases", "include_tables" or "exclude_tables".
    #[pyo3(name = "_set_filter_native")]
    fn set_filter(&self, py: Python<'_>, kind: &str, names: Vec<String>) -> PyResult<()> {
        let kind = match kind {
            "include_databases" => FilterKind::IncludeDatabases,
            "include_tables" => FilterKind::IncludeTables,
            "exclude_tables" => FilterKind::ExcludeTables,
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown filter {other:?}"
                )));
            }
        };
        self.with_open(py, |feed, _| {
            feed.set_filter(kind, names);
            Ok(())
        })
    }

    /// Release the engine (idempotent).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let mut g = self.lock(py)?;
        g.feed = None;
        g.cache.clear();
        Ok(())
    }

    /// `enable_metadata`: check the side connection now (raises `LiveError`), then name
    /// columns through it when a TABLE_MAP has none.
    fn _enable_metadata(&self, py: Python<'_>, options: live::Options) -> PyResult<()> {
        let (host, port, cc) = live::check_schema_connection(py, &options)?;
        self.with_open(py, |feed, _| {
            feed.set_schema_lookup(host, port, cc);
            Ok(())
        })
    }

    /// Decode every row image in `feed` (`False`) instead of partly on the decode-ahead
    /// helper thread (`True`, the default: after the first `inline_events` events of a `feed`
    /// call); with the helper, a `feed` call of at least `scan_min` bytes (`None`: none) also
    /// has it check part of the rows. For tests and comparisons.
    #[pyo3(signature = (on, inline_events = 64, scan_min = Some(feed::SCAN_MIN)))]
    fn _set_decode_ahead(
        &self,
        py: Python<'_>,
        on: bool,
        inline_events: usize,
        scan_min: Option<usize>,
    ) -> PyResult<()> {
        self.with_open(py, |feed, _| {
            py.detach(|| feed.set_decode_ahead(on, inline_events, scan_min));
            Ok(())
        })
    }

    #[getter(_closed)]
    fn closed(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.lock(py)?.feed.is_none())
    }
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeEngine>()?;
    m.add_class::<live::NativeStream>()?;
    m.add_class::<live::NativeClient>()?;
    m.add_function(wrap_pyfunction!(live::check_metadata, m)?)?;
    m.add("LiveError", m.py().get_type::<live::LiveError>())?;
    m.add_function(wrap_pyfunction!(_init, m)?)?;
    m.add_function(wrap_pyfunction!(_set_log_level, m)?)?;
    m.add_function(wrap_pyfunction!(_direct_slots, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
