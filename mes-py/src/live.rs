//! Live streaming: `CdcStream` over [`mes_blocking::BinlogStream`] ([`NativeStream`]),
//! `BinlogClient` over the sans-IO [`mysql_repl_proto::Connection`] with a socket loop on a
//! Rust thread ([`NativeClient`]). Waiting happens with the GIL released.
//!
//! Failures are raised as `_native.LiveError(code, message)`; the Python layer turns them into
//! `MesConnectionError` / `MesError` per PYTHON_API.md §1.3.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mes_blocking::{Backoff, BinlogStream, Reconnect, StopHandle, StreamConfig, StreamError};
use mysql_binlog_codec::engine::{EngineConfig, EngineEvent, GtidCheckpoint, TableFilter};
use mysql_repl_proto::{
    ConnEvent, ConnectConfig, Connection, Flavor, Output, ProtoError, SslMode, StartPosition,
    TlsOptions,
};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::feed::{FeedError, ready_from_change};
use crate::{convert, refs};

pyo3::create_exception!(_native, LiveError, pyo3::exceptions::PyException);

pub(crate) const CODE_INTERNAL: i32 = 99;
pub(crate) const CODE_CONNECT: i32 = 400;
pub(crate) const CODE_AUTH: i32 = 401;
pub(crate) const CODE_VALIDATION: i32 = 402;
pub(crate) const CODE_STREAM: i32 = 403;
pub(crate) const CODE_DISCONNECTED: i32 = 404;
pub(crate) const CODE_GTID_PURGED: i32 = 405;

fn live_error(code: i32, message: String) -> PyErr {
    LiveError::new_err((code, message))
}

fn prefix(code: i32) -> &'static str {
    match code {
        CODE_CONNECT => "connection error",
        CODE_AUTH => "authentication error",
        CODE_VALIDATION => "server validation error",
        CODE_STREAM => "stream error",
        CODE_DISCONNECTED => "disconnected",
        CODE_GTID_PURGED => "GTID purged",
        2 => "invalid argument",
        100 => "binlog parse error",
        101 => "checksum mismatch",
        202 => "row decode error",
        _ => "internal error",
    }
}

/// The `MesErrorCode` of a protocol failure.
pub(crate) fn proto_code(e: &ProtoError) -> i32 {
    match e {
        ProtoError::Auth(_) => CODE_AUTH,
        ProtoError::Server { code, .. } => match code {
            1045 | 1044 | 1698 | 1251 | 1862 => CODE_AUTH,
            1227 | 1142 => CODE_VALIDATION,
            1236 | 1789 | 1948 | 1955 => CODE_GTID_PURGED,
            _ => CODE_STREAM,
        },
        ProtoError::Tls(_) => CODE_CONNECT,
        ProtoError::Config(_) => CODE_VALIDATION,
        ProtoError::PositionUnavailable(_) => CODE_GTID_PURGED,
        ProtoError::InvalidConfig(_) => 2,
        ProtoError::Timeout(_) | ProtoError::Protocol { .. } => CODE_STREAM,
        ProtoError::Eof(_) => CODE_DISCONNECTED,
        ProtoError::PacketTooLarge { .. } | ProtoError::Decode(_) => 100,
        _ => CODE_STREAM,
    }
}

/// The `MesErrorCode` of a driver failure.
fn stream_code(e: &StreamError) -> i32 {
    match e {
        StreamError::Io { .. } => CODE_CONNECT,
        StreamError::Proto(p) => proto_code(p),
        StreamError::Engine(e) => FeedError::from_engine(e).code,
        StreamError::ReconnectExhausted { last, .. } => stream_code(last),
        _ => CODE_INTERNAL,
    }
}

fn stream_err(e: &StreamError) -> PyErr {
    let code = stream_code(e);
    match e {
        StreamError::Io { addr, message } => live_error(
            code,
            format!("{}: Failed to connect to {addr}: {message}", prefix(code)),
        ),
        _ => live_error(code, format!("{}: {e}", prefix(code))),
    }
}

/// Connection settings shared by `CdcStream`, `BinlogClient` and `enable_metadata`.
#[derive(FromPyObject, Clone)]
#[pyo3(from_item_all)]
pub(crate) struct Options {
    host: String,
    port: u16,
    user: String,
    password: String,
    server_id: u32,
    #[pyo3(default)]
    start_gtid: Option<String>,
    #[pyo3(default)]
    start_binlog_file: Option<String>,
    #[pyo3(default)]
    start_binlog_position: Option<u64>,
    connect_timeout_s: u64,
    read_timeout_s: u64,
    ssl_mode: u8,
    ssl_ca: String,
    ssl_cert: String,
    ssl_key: String,
    #[pyo3(default)]
    max_event_size: Option<u64>,
    allow_public_key_retrieval: bool,
}

fn path(s: &str) -> Option<std::path::PathBuf> {
    (!s.is_empty()).then(|| s.into())
}

impl Options {
    /// The protocol settings (start position resolved with `flavor` when ambiguous).
    pub(crate) fn connect_config(&self, flavor: Option<Flavor>) -> ConnectConfig {
        let mode = match self.ssl_mode {
            0 => SslMode::Disabled,
            2 => SslMode::Required,
            3 => SslMode::VerifyCa,
            4 => SslMode::VerifyIdentity,
            _ => SslMode::Preferred,
        };
        let secs = |s: u64, default: u64| Duration::from_secs(if s == 0 { default } else { s });
        let read_timeout = secs(self.read_timeout_s, 30);
        let start = if let Some(g) = &self.start_gtid {
            let maria = match flavor {
                Some(f) => f == Flavor::MariaDb,
                None => !g.contains(':') && !g.is_empty(),
            };
            if maria {
                StartPosition::MariaGtid(g.clone())
            } else {
                StartPosition::MysqlGtidSet(g.clone())
            }
        } else if let (Some(file), Some(pos)) =
            (&self.start_binlog_file, self.start_binlog_position)
        {
            StartPosition::FilePosition {
                file: file.clone(),
                position: pos,
            }
        } else {
            StartPosition::Current
        };
        let max_event_size = match self.max_event_size {
            None => 64 << 20,
            Some(0) => 1 << 30,
            Some(n) => n.clamp(23, 1 << 30),
        };
        ConnectConfig {
            host: self.host.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            tls: TlsOptions {
                mode,
                ca_file: path(&self.ssl_ca),
                cert_file: path(&self.ssl_cert),
                key_file: path(&self.ssl_key),
            },
            allow_public_key_retrieval: self.allow_public_key_retrieval,
            server_id: self.server_id,
            start,
            heartbeat_period: (read_timeout / 3)
                .clamp(Duration::from_secs(1), Duration::from_secs(10)),
            read_timeout,
            connect_timeout: secs(self.connect_timeout_s, 10),
            max_event_size,
            ..ConnectConfig::default()
        }
    }

    /// Whether the start position needs the server's flavor (`start_gtid=""`).
    fn ambiguous_start(&self) -> bool {
        self.start_gtid.as_deref() == Some("")
    }

    fn probe_flavor(&self) -> Result<Flavor, StreamError> {
        let cc = self.connect_config(None);
        mes_blocking::probe(&self.host, self.port, &cc).map(|(info, _)| info.flavor)
    }
}

/// The checkpoint's GTID part as the Python API shows it ("" = none).
fn gtid_text(g: &GtidCheckpoint) -> String {
    g.to_string()
}

// ---------------------------------------------------------------------------------------------
// CdcStream backend

struct StreamInner {
    stream: BinlogStream,
    /// An event read ahead while refreshing the checkpoint, or the events of a non-blocking
    /// batch held back (with their checkpoints) until the rest of their transaction comes.
    ahead: VecDeque<(EngineEvent, Option<String>)>,
    /// A failure met while reading ahead, raised after the events before it.
    failed: Option<StreamError>,
    ended: bool,
    /// The checkpoint text last attributed to an event.
    seen: String,
    /// The checkpoint GTIDs `seen` was made from.
    seen_gtid: GtidCheckpoint,
}

/// How long a waiting batch that ends inside a transaction waits for the rest of it.
const LINGER: Duration = Duration::from_millis(2);
const LINGER_STEP: Duration = Duration::from_micros(200);

/// Events with the checkpoint valid once each was handed out (None: unchanged).
type Batch = Vec<(EngineEvent, Option<String>)>;

impl StreamInner {
    /// A checkpoint change seen now covers the events fetched before: the last of `out`, or
    /// (none there) those already handed out, recorded in `delivered`.
    fn attribute(&mut self, out: &mut Batch, delivered: &Mutex<String>) {
        // Compared structurally first: formatting a (MySQL) GTID set per event is costly.
        let gtid = &self.stream.checkpoint().gtid;
        if *gtid == self.seen_gtid {
            return;
        }
        self.seen_gtid.clone_from(gtid);
        let cp = gtid_text(gtid);
        if cp == self.seen {
            return;
        }
        self.seen.clone_from(&cp);
        match out.last_mut() {
            Some(last) => last.1 = Some(cp),
            None => {
                *delivered
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = cp
            }
        }
    }

    fn fetch(
        &mut self,
        timeout: Duration,
        out: &mut Batch,
        delivered: &Mutex<String>,
    ) -> Option<EngineEvent> {
        let got = self.stream.next_timeout(timeout);
        self.attribute(out, delivered);
        match got {
            Some(Ok(Some(ev))) => Some(ev),
            Some(Ok(None)) => None,
            Some(Err(e)) => {
                self.failed = Some(e);
                None
            }
            None => {
                self.ended = true;
                None
            }
        }
    }

    /// A waiting batch that ends inside a transaction with nothing more queued: wait a little
    /// (at most [`LINGER`]) for what follows, usually the transaction's commit, so that its
    /// checkpoint travels with the batch. Without this the consumer, once it has handed out
    /// the transaction's last event, could still see the checkpoint before it (the reader
    /// sends the commit's checkpoint after the events, often after another socket read).
    fn linger(&mut self, out: &mut Batch, delivered: &Mutex<String>) {
        let deadline = Instant::now() + LINGER;
        while self.caught_up_inside_transaction(out) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            // A checkpoint alone does not end a wait: in short steps, to notice it soon.
            if let Some(ev) = self.fetch(left.min(LINGER_STEP), out, delivered) {
                self.ahead.push_back((ev, None));
            }
        }
    }

    /// Whether `out` ends inside a transaction (its last event has no checkpoint) and nothing
    /// more is at hand: no event read ahead, no failure, no end.
    fn caught_up_inside_transaction(&self, out: &Batch) -> bool {
        self.ahead.is_empty()
            && self.failed.is_none()
            && !self.ended
            && out.last().is_some_and(|(_, cp)| cp.is_none())
    }

    /// Take checkpoint messages already queued (reading at most one event ahead).
    fn refresh(&mut self, out: &mut Batch, delivered: &Mutex<String>) {
        if !self.ahead.is_empty() || self.failed.is_some() || self.ended {
            return;
        }
        if let Some(ev) = self.fetch(Duration::ZERO, out, delivered) {
            self.ahead.push_back((ev, None));
        }
    }
}

/// The `BinlogStream` behind `CdcStream`.
#[pyclass(module = "mysql_event_stream._native")]
pub(crate) struct NativeStream {
    options: Options,
    filter: TableFilter,
    queue_events: usize,
    queue_bytes: usize,
    max_reconnect_attempts: u32,
    schema_lookup: bool,
    native_types: bool,
    inner: Mutex<Option<StreamInner>>,
    stop: Mutex<Option<StopHandle>>,
    closed: AtomicBool,
    cache: Mutex<convert::PyCache>,
    /// The checkpoint covering every event handed out by earlier batches.
    gtid: Mutex<String>,
}

impl NativeStream {
    fn take_events(&self, timeout: Duration, max: usize) -> Result<Option<Batch>, StreamError> {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(inner) = g.as_mut() else {
            return Ok(None);
        };
        let mut out: Batch = inner.ahead.drain(..).collect();
        if out.is_empty() {
            if let Some(e) = inner.failed.take() {
                inner.ended = true;
                return Err(e);
            }
            if inner.ended {
                return Ok(None);
            }
            match inner.fetch(timeout, &mut out, &self.gtid) {
                Some(ev) => out.push((ev, None)),
                None => {
                    if let Some(e) = inner.failed.take() {
                        inner.ended = true;
                        return Err(e);
                    }
                    if inner.ended {
                        return Ok(None);
                    }
                }
            }
        }
        // Take what is already queued (never waiting), up to `max`.
        while out.len() < max && inner.failed.is_none() && !inner.ended {
            match inner.fetch(Duration::ZERO, &mut out, &self.gtid) {
                Some(ev) => out.push((ev, None)),
                None => break,
            }
        }
        inner.refresh(&mut out, &self.gtid);
        if inner.caught_up_inside_transaction(&out) {
            if timeout.is_zero() {
                // Caught up inside a transaction. A non-blocking call runs on the event loop's
                // thread, which must not wait: hold the events back for a waiting call, which
                // takes them with the rest of the transaction (its checkpoint included).
                inner.ahead.extend(out.drain(..));
            } else {
                inner.linger(&mut out, &self.gtid);
            }
        }
        Ok(Some(out))
    }
}

#[pymethods]
impl NativeStream {
    #[new]
    #[pyo3(signature = (options, *, include_databases, include_tables, exclude_tables,
        max_queue_size, max_queue_bytes, max_reconnect_attempts, schema_lookup, native_types))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        options: Options,
        include_databases: Vec<String>,
        include_tables: Vec<String>,
        exclude_tables: Vec<String>,
        max_queue_size: u64,
        max_queue_bytes: u64,
        max_reconnect_attempts: u64,
        schema_lookup: bool,
        native_types: bool,
    ) -> Self {
        let filter = TableFilter::default()
            .with_include_databases(&include_databases)
            .with_include_tables(&include_tables)
            .with_exclude_tables(&exclude_tables);
        Self {
            options,
            filter,
            queue_events: if max_queue_size == 0 {
                10_000
            } else {
                usize::try_from(max_queue_size)
                    .unwrap_or(usize::MAX)
                    .min(1 << 24)
            },
            queue_bytes: if max_queue_bytes == 0 {
                48 << 20
            } else {
                usize::try_from(max_queue_bytes).unwrap_or(usize::MAX)
            },
            max_reconnect_attempts: u32::try_from(max_reconnect_attempts).unwrap_or(u32::MAX),
            schema_lookup,
            native_types,
            inner: Mutex::new(None),
            stop: Mutex::new(None),
            closed: AtomicBool::new(false),
            cache: Mutex::new(convert::PyCache::default()),
            gtid: Mutex::new(String::new()),
        }
    }

    /// Connect and start the reader thread (GIL released).
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let result = py.detach(|| -> Result<BinlogStream, StreamError> {
            let flavor = if self.options.ambiguous_start() {
                Some(self.options.probe_flavor()?)
            } else {
                None
            };
            let cc = self.options.connect_config(flavor);
            let mut config = StreamConfig::new(&self.options.host, self.options.port, cc);
            // The reader thread decodes the row images (no GIL there); the conversion, which
            // holds the GIL on the event loop's thread, only borrows them.
            config.engine = EngineConfig::default()
                .with_filter(self.filter.clone())
                .with_decoded_images(true);
            config.queue_events = self.queue_events;
            config.queue_bytes = self.queue_bytes;
            // PYTHON_API.md §1.6: min(1000 * N, 10000) ms * uniform(0.5, 1.0) before attempt N.
            config.reconnect = Reconnect {
                max_attempts: self.max_reconnect_attempts,
                base_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(10),
                backoff: Backoff::Linear,
            };
            config.schema_lookup = self.schema_lookup;
            BinlogStream::start(config)
        });
        let stream = result.map_err(|e| stream_err(&e))?;
        *self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(stream.stop_handle());
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *g = Some(StreamInner {
            stream,
            ahead: VecDeque::new(),
            failed: None,
            ended: false,
            seen: String::new(),
            seen_gtid: GtidCheckpoint::default(),
        });
        if self.closed.load(Ordering::SeqCst) {
            if let Some(mut inner) = g.take() {
                drop(g);
                py.detach(|| inner.stream.stop());
            }
        }
        Ok(())
    }

    /// Change events (waiting at most `timeout_ms` for the first; [] on timeout), or None when
    /// the stream ended. `timeout_ms == 0` never waits: only what is already queued, for a
    /// call on the event loop's thread.
    fn next_batch(
        &self,
        py: Python<'_>,
        timeout_ms: u64,
        max: usize,
    ) -> PyResult<Option<(Py<PyList>, Py<PyList>)>> {
        let refs = refs(py)?;
        let got = py.detach(|| self.take_events(Duration::from_millis(timeout_ms), max.max(1)));
        let events = match got {
            Ok(Some(evs)) => evs,
            Ok(None) => return Ok(None),
            Err(e) => return Err(stream_err(&e)),
        };
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let list = PyList::empty(py);
        // (index in `list`, checkpoint once that event is handed out): few per batch, so the
        // events themselves travel without a tuple each.
        let marks = PyList::empty(py);
        let mut pending: Option<String> = None;
        let newest = events.iter().rev().find_map(|(_, cp)| cp.clone());
        if let Some(cp) = newest {
            // What the stream stands at once this whole batch was handed out.
            *self
                .gtid
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = cp;
        }
        for (ev, cp) in events {
            let EngineEvent::Change(c) = ev else {
                // A statement's checkpoint moves to the next row event (or the stream's own).
                if cp.is_some() {
                    pending = cp;
                }
                continue;
            };
            let cp = cp.or_else(|| pending.take());
            let mariadb = c.gtid().map(|g| &**g).is_some_and(|g| !g.contains(':'));
            let mut ready =
                ready_from_change(c, mariadb).map_err(|e| live_error(e.code, e.message))?;
            let obj = convert::event(py, refs, &mut cache, self.native_types, &mut ready)?;
            if let Some(cp) = cp {
                marks.append((list.len(), cp))?;
            }
            list.append(obj)?;
        }

        Ok(Some((list.unbind(), marks.unbind())))
    }

    /// The committed and delivered checkpoint's GTIDs ("" = none yet).
    #[getter]
    fn current_gtid(&self) -> String {
        if let Ok(mut g) = self.inner.try_lock() {
            if let Some(inner) = g.as_mut() {
                let mut none = Batch::new();
                inner.refresh(&mut none, &self.gtid);
            }
        }
        self.gtid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Ask the reader to stop (any thread; a pending `next_batch` returns soon after).
    fn stop(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(h) = self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            h.stop();
        }
    }

    /// Stop and join the reader (idempotent).
    fn close(&self, py: Python<'_>) {
        self.stop();
        let taken = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut inner) = taken {
            py.detach(|| inner.stream.stop());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// BinlogClient backend

/// One item for `poll()`: raw event bytes with their framing, or a heartbeat.
enum Item {
    Event(Vec<u8>, bool),
    Heartbeat,
    Error(i32, String),
}

#[derive(Default)]
struct Shared {
    queue: Mutex<ClientQueue>,
    cond: Condvar,
    stop: AtomicBool,
    crc_errors: AtomicU64,
}

#[derive(Default)]
struct ClientQueue {
    items: VecDeque<Item>,
    bytes: usize,
    ended: bool,
}

/// A connected session: the flavor, whether events carry CRC32, events read while connecting.
type Connected = (Session, Flavor, bool, VecDeque<Item>);

/// `poll_batch` items: (data | None, is_heartbeat, checksum).
type Polled = Vec<(Option<Py<pyo3::types::PyBytes>>, bool, bool)>;

struct Session {
    sock: TcpStream,
    conn: Connection,
}

const HEARTBEAT_LOG_EVENT: u8 = 27;

fn io_err(addr: &str, e: &std::io::Error) -> (i32, String) {
    (
        CODE_CONNECT,
        format!("connection error: Failed to connect to {addr}: {e}"),
    )
}

/// Drive the connection once: transmit, read or return the next protocol event.
fn step(
    s: &mut Session,
    stop: &AtomicBool,
    buf: &mut [u8],
) -> Result<Option<ConnEvent>, (i32, String)> {
    loop {
        match s.conn.poll_output() {
            Output::Transmit(b) => s
                .sock
                .write_all(&b)
                .map_err(|e| (CODE_DISCONNECTED, format!("disconnected: {e}")))?,
            Output::Event(ev) => return Ok(Some(ev)),
            Output::Closed(Ok(())) => {
                return Err((
                    CODE_DISCONNECTED,
                    "disconnected: connection closed by the server".into(),
                ));
            }
            Output::Closed(Err(e)) => {
                let code = proto_code(&e);
                return Err((code, format!("{}: {e}", prefix(code))));
            }
            Output::Wait(deadline) => {
                if stop.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                let wait = deadline.map_or(Duration::from_millis(200), |d| {
                    d.saturating_duration_since(Instant::now())
                });
                s.sock
                    .set_read_timeout(Some(
                        wait.clamp(Duration::from_millis(1), Duration::from_millis(200)),
                    ))
                    .map_err(|e| (CODE_DISCONNECTED, format!("disconnected: {e}")))?;
                match s.sock.read(buf) {
                    Ok(0) => s.conn.handle_eof(),
                    Ok(n) => s.conn.handle_input(Instant::now(), &buf[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        s.conn.handle_timeout(Instant::now());
                        if stop.load(Ordering::SeqCst) {
                            return Ok(None);
                        }
                    }
                    Err(e) => return Err((CODE_DISCONNECTED, format!("disconnected: {e}"))),
                }
            }
            _ => {}
        }
    }
}

fn item_of(ev: ConnEvent) -> Option<Item> {
    match ev {
        ConnEvent::Binlog { event, checksum } => {
            if event.len() > 4 && event[4] == HEARTBEAT_LOG_EVENT {
                Some(Item::Heartbeat)
            } else {
                Some(Item::Event(event.to_vec(), checksum))
            }
        }
        _ => None,
    }
}

fn reader(mut s: Session, shared: Arc<Shared>, max_bytes: usize) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            s.conn.close();
            while let Output::Transmit(b) = s.conn.poll_output() {
                let _ = s.sock.write_all(&b);
            }
            break;
        }
        let item = match step(&mut s, &shared.stop, &mut buf) {
            Ok(Some(ConnEvent::EndOfStream)) => {
                Item::Error(CODE_DISCONNECTED, "disconnected: end of stream".into())
            }
            Ok(Some(ev)) => match item_of(ev) {
                Some(i) => i,
                None => continue,
            },
            Ok(None) => continue,
            Err((code, msg)) => Item::Error(code, msg),
        };
        // Counted, not dropped: the event is handed out as received, and a CdcEngine fed with
        // it raises ChecksumError (unless told the trailer was pre-verified).
        if let Item::Event(b, true) = &item {
            if !mysql_binlog_codec::crc32_matches(b) {
                shared.crc_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        let size = match &item {
            Item::Event(b, _) => b.len() + 1,
            _ => 1,
        };
        let last = matches!(item, Item::Error(..));
        let mut q = shared
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while q.bytes > 0 && q.bytes + size > max_bytes && !shared.stop.load(Ordering::SeqCst) {
            q = shared
                .cond
                .wait_timeout(q, Duration::from_millis(200))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        q.bytes += size;
        q.items.push_back(item);
        if last {
            q.ended = true;
        }
        shared.cond.notify_all();
        drop(q);
        if last {
            return;
        }
    }
    let mut q = shared
        .queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    q.ended = true;
    shared.cond.notify_all();
}

/// Follows the GTIDs of the events handed out by `poll()`: an engine whose filter drops every
/// row (so no row is decoded) still tracks the transactions' GTIDs and commits.
struct GtidTracker {
    engine: Option<mysql_binlog_codec::engine::Engine>,
    text: String,
}

impl GtidTracker {
    fn new(checksum: bool, start: &StartPosition, flavor: Flavor) -> Self {
        use mysql_binlog_codec::engine::{Engine, MariaGtidPos, MysqlGtidSet};
        use mysql_binlog_codec::{ChecksumAlg, DecoderConfig, MagicMode};
        let dec = DecoderConfig::default()
            .with_magic(MagicMode::None)
            .with_verify_checksum(false)
            .with_initial_checksum(if checksum {
                ChecksumAlg::Crc32
            } else {
                ChecksumAlg::Off
            });
        let config = EngineConfig::default()
            .with_decoder(dec)
            .with_filter(TableFilter::default().with_include_databases(&["\u{0}"]));
        let mut engine = Engine::new(config);
        match start {
            StartPosition::MysqlGtidSet(s) if flavor == Flavor::Mysql => {
                if let Some(set) = MysqlGtidSet::parse(s) {
                    engine.set_start_gtid(GtidCheckpoint::Mysql(set));
                }
            }
            StartPosition::MariaGtid(p) => {
                if let Some(pos) = MariaGtidPos::parse(p) {
                    engine.set_start_gtid(GtidCheckpoint::Maria(pos));
                }
            }
            _ => {}
        }
        let text = gtid_text(&engine.checkpoint().gtid);
        Self {
            engine: Some(engine),
            text,
        }
    }

    fn feed(&mut self, event: &[u8]) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        if engine.handle_input(event).is_err() {
            // Tracking is best effort: the consumer's own engine reports decode errors.
            self.engine = None;
            return;
        }
        while engine.poll_event().is_some() {}
        self.text = gtid_text(&engine.checkpoint().gtid);
    }
}

/// The replication connection behind `BinlogClient`.
#[pyclass(module = "mysql_event_stream._native")]
pub(crate) struct NativeClient {
    options: Options,
    max_queue_bytes: usize,
    session: Mutex<Option<Session>>,
    /// Events read while connecting (before `start`).
    early: Mutex<VecDeque<Item>>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    info: Mutex<Option<(Flavor, bool)>>,
    streaming: AtomicBool,
    poll_lock: Mutex<()>,
    tracker: Mutex<Option<GtidTracker>>,
}

#[pymethods]
impl NativeClient {
    #[new]
    fn new(options: Options, max_queue_bytes: u64) -> Self {
        Self {
            options,
            max_queue_bytes: if max_queue_bytes == 0 {
                48 << 20
            } else {
                usize::try_from(max_queue_bytes).unwrap_or(usize::MAX)
            },
            session: Mutex::new(None),
            early: Mutex::new(VecDeque::new()),
            shared: Arc::new(Shared::default()),
            thread: Mutex::new(None),
            info: Mutex::new(None),
            streaming: AtomicBool::new(false),
            poll_lock: Mutex::new(()),
            tracker: Mutex::new(None),
        }
    }

    /// TCP + TLS + auth + server checks, then the dump request (GIL released).
    fn connect(&self, py: Python<'_>) -> PyResult<()> {
        let o = self.options.clone();
        let res = py.detach(|| -> Result<Connected, (i32, String)> {
            let addr = format!("{}:{}", o.host, o.port);
            let flavor =
                if o.ambiguous_start() {
                    Some(o.probe_flavor().map_err(|e| {
                        (stream_code(&e), format!("{}: {e}", prefix(stream_code(&e))))
                    })?)
                } else {
                    None
                };
            let cc = o.connect_config(flavor);
            let sock_addr = (o.host.as_str(), o.port)
                .to_socket_addrs()
                .map_err(|e| io_err(&addr, &e))?
                .next()
                .ok_or_else(|| {
                    (
                        CODE_CONNECT,
                        format!("connection error: Failed to connect to {addr}: no address"),
                    )
                })?;
            let sock = TcpStream::connect_timeout(&sock_addr, cc.connect_timeout)
                .map_err(|e| io_err(&addr, &e))?;
            let _ = sock.set_nodelay(true);
            let conn = Connection::new(cc, Instant::now()).map_err(|e| {
                let code = proto_code(&e);
                (code, format!("{}: {e}", prefix(code)))
            })?;
            let mut s = Session { sock, conn };
            let never = AtomicBool::new(false);
            let mut buf = vec![0u8; 64 * 1024];
            let mut early = VecDeque::new();
            loop {
                match step(&mut s, &never, &mut buf)? {
                    Some(ConnEvent::Ready(info)) => {
                        return Ok((s, info.flavor, info.checksum, early));
                    }
                    Some(ev) => {
                        if let Some(i) = item_of(ev) {
                            early.push_back(i);
                        }
                    }
                    None => {}
                }
            }
        });
        match res {
            Ok((s, flavor, checksum, early)) => {
                *self
                    .session
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(s);
                *self
                    .early
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = early;
                *self
                    .info
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((flavor, checksum));
                let start = self.options.connect_config(Some(flavor)).start;
                *self
                    .tracker
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(GtidTracker::new(checksum, &start, flavor));
                Ok(())
            }
            Err((code, msg)) => Err(live_error(code, msg)),
        }
    }

    /// Start the reader thread.
    fn start(&self) -> PyResult<()> {
        let Some(s) = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            return Err(live_error(
                CODE_DISCONNECTED,
                "disconnected: Not connected".into(),
            ));
        };
        self.shared.stop.store(false, Ordering::SeqCst);
        {
            let mut q = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let early = std::mem::take(
                &mut *self
                    .early
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for i in early {
                q.bytes += match &i {
                    Item::Event(b, _) => b.len() + 1,
                    _ => 1,
                };
                q.items.push_back(i);
            }
            q.ended = false;
        }
        let shared = self.shared.clone();
        let max = self.max_queue_bytes;
        let t = std::thread::Builder::new()
            .name("mes-py-client".into())
            .spawn(move || reader(s, shared, max))
            .map_err(|e| live_error(CODE_INTERNAL, format!("internal error: {e}")))?;
        *self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(t);
        self.streaming.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Up to `max` items: (data | None, is_heartbeat, checksum); waits for the first. A failure
    /// after at least one item is kept for the next call.
    fn poll_batch(&self, py: Python<'_>, max: usize) -> PyResult<Polled> {
        if !self.streaming.load(Ordering::SeqCst) {
            return Err(live_error(
                CODE_DISCONNECTED,
                "disconnected: Not connected".into(),
            ));
        }
        let items = py.detach(|| {
            let _guard = self
                .poll_lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut q = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            loop {
                if !q.items.is_empty() {
                    break;
                }
                if q.ended || self.shared.stop.load(Ordering::SeqCst) {
                    return Err((
                        CODE_DISCONNECTED,
                        "disconnected: stream stopped".to_string(),
                    ));
                }
                q = self
                    .shared
                    .cond
                    .wait_timeout(q, Duration::from_millis(100))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            let mut out = Vec::new();
            while out.len() < max.max(1) {
                match q.items.front() {
                    Some(Item::Error(..)) if !out.is_empty() => break,
                    None => break,
                    _ => {}
                }
                let Some(item) = q.items.pop_front() else {
                    break;
                };
                let size = match &item {
                    Item::Event(b, _) => b.len() + 1,
                    _ => 1,
                };
                q.bytes = q.bytes.saturating_sub(size);
                if let Item::Error(code, msg) = item {
                    return Err((code, msg));
                }
                out.push(item);
            }
            self.shared.cond.notify_all();
            drop(q);
            if let Some(t) = self
                .tracker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_mut()
            {
                for item in &out {
                    if let Item::Event(b, _) = item {
                        t.feed(b);
                    }
                }
            }
            Ok(out)
        });
        match items {
            Ok(items) => Ok(items
                .into_iter()
                .map(|i| match i {
                    Item::Event(b, c) => {
                        (Some(pyo3::types::PyBytes::new(py, &b).unbind()), false, c)
                    }
                    _ => (None, true, false),
                })
                .collect()),
            Err((code, msg)) => {
                self.streaming.store(false, Ordering::SeqCst);
                Err(live_error(code, msg))
            }
        }
    }

    /// Stop the reader (any thread) and join it.
    fn stop(&self, py: Python<'_>) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.cond.notify_all();
        let t = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = t {
            py.detach(|| {
                let _ = t.join();
            });
        }
        self.streaming.store(false, Ordering::SeqCst);
    }

    /// Drop the connection.
    fn disconnect(&self, py: Python<'_>) {
        self.stop(py);
        if let Some(mut s) = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            s.conn.close();
            while let Output::Transmit(b) = s.conn.poll_output() {
                let _ = s.sock.write_all(&b);
            }
        }
        *self
            .info
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let mut q = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        q.items.clear();
        q.bytes = 0;
    }

    #[getter]
    fn is_connected(&self) -> bool {
        self.info
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// GTIDs of the transactions whose last event was handed out ("" = none yet).
    #[getter]
    fn current_gtid(&self) -> String {
        self.tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|t| t.text.clone())
            .unwrap_or_default()
    }

    #[getter]
    fn is_streaming(&self) -> bool {
        self.streaming.load(Ordering::SeqCst)
    }

    /// 0 MySQL, 1 MariaDB.
    #[getter]
    fn flavor(&self) -> u8 {
        match *self
            .info
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Some((Flavor::MariaDb, _)) => 1,
            _ => 0,
        }
    }

    #[getter]
    fn checksum_enabled(&self) -> bool {
        self.streaming.load(Ordering::SeqCst)
            && matches!(
                *self
                    .info
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                Some((_, true))
            )
    }

    #[getter]
    fn queued_bytes(&self) -> usize {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .bytes
    }

    #[getter]
    fn crc_errors(&self) -> u64 {
        self.shared.crc_errors.load(Ordering::Relaxed)
    }
}

/// Check that the metadata connection works (raises `LiveError`), for `CdcStream`.
#[pyfunction]
pub(crate) fn check_metadata(py: Python<'_>, options: Options) -> PyResult<()> {
    check_schema_connection(py, &options).map(|_| ())
}

/// Plug a `SchemaLookup` into an engine: checks the connection now (raises LiveError).
pub(crate) fn check_schema_connection(
    py: Python<'_>,
    options: &Options,
) -> PyResult<(String, u16, ConnectConfig)> {
    use mysql_binlog_codec::engine::SchemaSource;
    let cc = options.connect_config(None);
    let host = options.host.clone();
    let port = options.port;
    let res = py.detach(|| {
        let mut lookup = mes_blocking::SchemaLookup::new(&host, port, &cc);
        lookup.columns("information_schema", "TABLES").map(|_| ())
    });
    res.map_err(|e| {
        let code =
            if e.contains("1045") || e.contains("authentication") || e.contains("Access denied") {
                CODE_AUTH
            } else {
                CODE_CONNECT
            };
        live_error(
            code,
            format!("{}: Failed to connect to {host}:{port}: {e}", prefix(code)),
        )
    })?;
    Ok((options.host.clone(), options.port, cc))
}
