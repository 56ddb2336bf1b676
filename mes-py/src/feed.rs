//! The GIL-free part of `CdcEngine`: framing of fed bytes into whole binlog events, the
//! change-event [`Engine`] (which checks every row in `feed`), the decode-ahead helper thread
//! that decodes checked rows into values while earlier events are converted (`Ahead`) and,
//! during a large `feed` call, checks rows events of its later part while the engine works
//! through the earlier one (`Board`), the event queue with its count / byte limits, the
//! resume position, filters and the error latch.
//! Nothing here touches Python, so `feed` runs with the GIL released; the conversion into
//! Python objects is `convert`'s.
//!
//! Why the binding frames events itself instead of handing whole chunks to
//! [`Engine::handle_input`]: the original package checks its queue limits after every binlog
//! event, reports the position after every event (not only at transaction boundaries), and
//! lets every limit and filter change between two `feed` calls. Feeding the engine exactly one
//! event at a time gives all of that with the engine's public API, at the cost of one header
//! parse per event.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use mysql_binlog_codec::engine::{
    ChangeEvent, Engine, EngineConfig, EngineError, EngineEvent, ScannedRows, SpanScanner,
    SpanSource, TableFilter, TableInfo, json_lines,
};
use mysql_binlog_codec::value::JsonValue;
use mysql_binlog_codec::{
    AsciiText, BINLOG_MAGIC, BinlogDecoder, ChecksumAlg, ColumnType, DecodeErrorKind,
    DecoderConfig, EventData, HEADER_LEN, MagicMode, Value,
};

/// `feed` shares the rows checks of at most this many bytes at a time with the helper.
const SCAN_WINDOW: usize = 4 << 20;
/// ... and only of at least this many (below, the hand-off costs more than it saves).
pub const SCAN_MIN: usize = 128 << 10;
/// The engine's own share of a window at first, and how it adapts (see `FeedState::scan_skip`).
const SCAN_SKIP_START: f64 = 0.15;
const SCAN_SKIP_STEP_UP: f64 = 0.05;
const SCAN_SKIP_STEP_DOWN: f64 = 0.01;
const SCAN_SKIP_MAX: f64 = 0.8;

/// `MesErrorCode.PARSE`.
pub const CODE_PARSE: i32 = 100;
/// `MesErrorCode.CHECKSUM`.
pub const CODE_CHECKSUM: i32 = 101;
/// `MesErrorCode.DECODE_ROW`.
pub const CODE_DECODE_ROW: i32 = 202;

/// Default queue length (0 selects it), as in the original 1.6.0+.
pub const DEFAULT_QUEUE_SIZE: usize = 10_000;
/// Default decoded-queue byte budget (0 selects it).
pub const DEFAULT_QUEUE_BYTES: usize = 48 << 20;
/// Default per-event size limit of a standalone engine.
pub const DEFAULT_MAX_EVENT_SIZE: u64 = 64 << 20;
/// Hard cap (and what 0 resolves to).
pub const MAX_EVENT_SIZE_CAP: u64 = 1 << 30;
/// Smallest accepted limit: a header plus a checksum.
pub const MIN_EVENT_SIZE: u64 = HEADER_LEN as u64 + 4;

/// Log levels (the `LogLevel` values).
pub const LOG_ERROR: i32 = 0;
/// WARN.
pub const LOG_WARN: i32 = 1;
/// INFO.
pub const LOG_INFO: i32 = 2;

/// The most verbose level a Python handler wants (-1: no handler).
pub static LOG_LEVEL: AtomicI32 = AtomicI32::new(-1);

fn log_enabled(level: i32) -> bool {
    level <= LOG_LEVEL.load(Ordering::Relaxed)
}

/// A failed `feed`: the `MesErrorCode` and the message of the exception to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedError {
    /// 100 (ParseError), 101 (ChecksumError) or 202 (DecodeError).
    pub code: i32,
    /// Full message.
    pub message: String,
}

const FEED_OP: &str = "mes_feed (call reset() before feeding again) failed";

impl FeedError {
    fn new(code: i32, detail: impl std::fmt::Display) -> Self {
        let what = match code {
            CODE_CHECKSUM => "checksum mismatch",
            CODE_DECODE_ROW => "row decode error",
            _ => "binlog parse error",
        };
        Self {
            code,
            message: format!("{FEED_OP}: {what} (code {code}): {detail}"),
        }
    }

    pub(crate) fn from_engine(e: &EngineError) -> Self {
        match e {
            EngineError::Failed(inner) => Self::from_engine(inner),
            EngineError::Decode(d) => {
                let code = match d.kind {
                    DecodeErrorKind::ChecksumMismatch { .. } => CODE_CHECKSUM,
                    DecodeErrorKind::BadColumnValue { .. }
                    | DecodeErrorKind::UnsupportedColumnType { .. }
                    | DecodeErrorKind::TableMapMismatch { .. }
                    | DecodeErrorKind::Json(_)
                    | DecodeErrorKind::Decimal(_) => CODE_DECODE_ROW,
                    _ => CODE_PARSE,
                };
                Self::new(code, d)
            }
            EngineError::UnknownTable { .. }
            | EngineError::SchemaMismatch { .. }
            | EngineError::SchemaSource { .. } => Self::new(CODE_DECODE_ROW, e),
            other => Self::new(CODE_PARSE, other),
        }
    }
}

/// The user-settable knobs of a `CdcEngine`.
#[derive(Debug, Clone)]
pub struct Settings {
    max_queue_size: usize,
    max_queue_bytes: usize,
    max_event_size: u64,
    checksum: bool,
    pre_verified: bool,
    include_databases: Vec<String>,
    include_tables: Vec<String>,
    exclude_tables: Vec<String>,
    filter: TableFilter,
    /// `enable_metadata`: where to look column names up.
    schema: Option<(String, u16, mysql_repl_proto::ConnectConfig)>,
    /// `native_types`: which values the decode-ahead helper renders as text ([`text_of`]).
    native: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_queue_size: DEFAULT_QUEUE_SIZE,
            max_queue_bytes: DEFAULT_QUEUE_BYTES,
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            checksum: true,
            pre_verified: false,
            include_databases: Vec::new(),
            include_tables: Vec::new(),
            exclude_tables: Vec::new(),
            filter: TableFilter::default(),
            schema: None,
            native: false,
        }
    }
}

/// Which filter list a setter replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKind {
    /// `set_include_databases`.
    IncludeDatabases,
    /// `set_include_tables`.
    IncludeTables,
    /// `set_exclude_tables`.
    ExcludeTables,
}

/// A decoded row change waiting in the queue.
#[derive(Debug)]
pub struct Ready {
    /// The engine's event.
    pub event: ChangeEvent,
    /// JSON columns rendered as text, in order (before image first, then after image).
    pub json: Vec<String>,
    /// Whether `event.statement` came from a MariaDB ANNOTATE_ROWS event (the original's
    /// `source_sql` carries only those).
    pub annotate: bool,
    /// The texts of the values whose Python object is made from a text ([`text_of`]), rendered
    /// ahead by the decode-ahead helper, in image order (before image first); `None` when
    /// they are rendered during conversion.
    pub texts: Option<Vec<AsciiText>>,
    bytes: usize,
}

/// The text a value's Python object is made from, for the values whose text is rendered by us
/// (DECIMAL always — `str` or `Decimal(str)`; temporal values when not `native`); `None` for
/// every other value. The decode-ahead helper renders these ahead ([`Ready::texts`]) and the
/// conversion takes one text per such value, so both sides decide with this function.
pub fn text_of(v: &Value<'_>, native: bool) -> Option<AsciiText> {
    // `has_text` decides which values have one; the match only renders.
    if !has_text(v, native) {
        return None;
    }
    match v {
        Value::Decimal(d) => Some(d.as_decimal().to_text()),
        Value::Date(d) => Some(d.to_text()),
        Value::Time(t) => Some(t.to_text()),
        Value::DateTime(dt) => Some(dt.to_text()),
        Value::Timestamp(t) => Some(t.to_epoch_text()),
        _ => None,
    }
}

/// Whether [`text_of`] gives `v` a text (without rendering it).
pub fn has_text(v: &Value<'_>, native: bool) -> bool {
    matches!(v, Value::Decimal(_))
        || (!native
            && matches!(
                v,
                Value::Date(_) | Value::Time(_) | Value::DateTime(_) | Value::Timestamp(_)
            ))
}

/// Render the texts of a decoded event ([`Ready::texts`]); nothing for an event still lazy.
fn render_texts(ready: &mut Ready, native: bool) {
    let Some((before, after)) = ready.event.decoded_images() else {
        return;
    };
    let texts = [before, after]
        .into_iter()
        .flatten()
        .flat_map(|row| row.values.iter().flatten())
        .filter_map(|v| text_of(v, native))
        .collect();
    ready.texts = Some(texts);
}

/// Events a `feed` call decodes itself (when nothing is at the helper) before it hands the
/// rest of its events to the decode-ahead helper: a feed of a few events never waits for a
/// thread, and the helper only starts for streams that keep it busy.
const INLINE_EVENTS: usize = 64;
/// Events per batch sent to the helper (the first batch is sent before `feed` has checked all
/// of its bytes, so the helper starts early; `next_event` takes back whole batches).
const AHEAD_BATCH: usize = 128;

/// Converted events handed to the helper to drop at once, at most (by count and by their queue
/// bytes): few enough to bound the memory they hold, many enough that waking the idle helper
/// (a futex call) is rare.
const TRASH_EVENTS: usize = 1024;
/// See [`TRASH_EVENTS`].
const TRASH_BYTES: usize = 4 << 20;

/// The decode-ahead helper: a thread that decodes the row images of events `feed` has checked
/// (lazy images, see [`ChangeEvent::decode_images`]) while the caller converts earlier events
/// into Python objects. It only decodes: checking (and so every error `feed` raises) stays in
/// `feed`, Python objects are only built by `next_event`, and batches come back in the order
/// they were sent (one thread, two FIFO channels). It stops when the engine is dropped (its
/// channel closes).
///
/// Why a thread: the sync benchmark's caller spent ~3 k instructions per row change on
/// decoding and copying the values into owned rows, a fifth of its work; overlapped with the
/// conversion of the previous events, that time leaves the caller's path. Python objects are not
/// built ahead (measured slower: cold objects and GC passes over the pending ones).
struct Ahead {
    to: mpsc::Sender<Job>,
    from: mpsc::Receiver<Vec<Ready>>,
    /// The process that started the thread: a child made by `fork()` has no helper thread
    /// (so nothing to wait for).
    pid: u32,
}

/// Work for the decode-ahead helper.
enum Job {
    /// Decode these events' images and send them back.
    Decode(Vec<Ready>),
    /// Drop these converted events: their values were allocated by the helper, and freeing
    /// memory on the thread that allocated it is the allocator's fast path (freeing it on the
    /// caller's thread cost the caller ~400 instructions per row change, callgrind).
    Drop(Vec<Ready>),
    /// Check rows events of a window of `feed`'s bytes for the engine (see [`Board`]).
    Scan(Box<ScanJob>),
}

/// A window of a `feed` call's bytes whose rows events the helper checks.
struct ScanJob {
    /// A copy of the window (the caller's bytes are only borrowed for the call).
    data: Vec<u8>,
    scanner: SpanScanner,
    board: Arc<Board>,
}

/// Where the helper leaves its rows checks for one window and the engine takes them.
///
/// The engine walks the window forward and checks the rows events before `from` itself; the
/// helper frames the window and checks the rows events from `from` on, forward. Neither ever
/// waits for the other: when the engine reaches a rows event the helper has not passed yet, it
/// closes the board (the helper stops) and checks the rest itself. `from` is chosen so that
/// the helper usually stays ahead to the window's end (see `FeedState::scan_skip`): the
/// engine's own work per row (framing, queueing) is then all the rows cost the caller.
struct Board {
    from: u64,
    state: Mutex<BoardState>,
}

#[derive(Default)]
struct BoardState {
    /// Checks made, by rows event offset.
    done: HashMap<u64, ScannedRows>,
    /// Offset of the last rows event the helper passed (checked or not).
    helper_at: u64,
    /// The helper stops at its next rows event.
    closed: bool,
    /// The engine reached a rows event at or after `from` that the helper had not passed.
    caught_up: bool,
}

impl Board {
    fn state(&self) -> std::sync::MutexGuard<'_, BoardState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The helper's side: check the window's rows events from `from` on, until closed.
    fn scan(&self, mut scanner: SpanScanner, data: &[u8]) {
        // Closed while queued (the engine already went through the window): nothing to frame.
        if self.state().closed {
            return;
        }
        for planned in scanner.plan(data) {
            if planned.offset() < self.from {
                continue;
            }
            if self.state().closed {
                return;
            }
            let checked = planned.scan();
            let mut st = self.state();
            if let Some(c) = checked {
                st.done.insert(planned.offset(), c);
            }
            st.helper_at = planned.offset();
            if st.closed {
                return;
            }
        }
    }
}

/// The engine's side of a [`Board`].
struct BoardSource(Arc<Board>);

impl SpanSource for BoardSource {
    fn take(&mut self, offset: u64) -> Option<ScannedRows> {
        if offset < self.0.from {
            return None;
        }
        let mut st = self.0.state();
        if let Some(c) = st.done.remove(&offset) {
            return Some(c);
        }
        if offset > st.helper_at {
            st.closed = true;
            st.caught_up = true;
        }
        None
    }
}

impl Ahead {
    /// Whether the helper thread runs in this process (not so in a child made by `fork()`).
    fn in_this_process(&self) -> bool {
        self.pid == std::process::id()
    }

    /// Start the helper; `None` when the thread cannot be started.
    fn start(native: bool) -> Option<Self> {
        let (to, jobs) = mpsc::channel::<Job>();
        let (done, from) = mpsc::channel();
        std::thread::Builder::new()
            .name("mes-decode-ahead".into())
            .spawn(move || {
                while let Ok(job) = jobs.recv() {
                    let mut batch = match job {
                        Job::Decode(batch) => batch,
                        Job::Drop(done) => {
                            drop(done);
                            continue;
                        }
                        Job::Scan(job) => {
                            let ScanJob {
                                data,
                                scanner,
                                board,
                            } = *job;
                            // Should it panic, the engine checks what is left itself (it
                            // catches up with the last event the helper passed).
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                board.scan(scanner, &data);
                            }));
                            continue;
                        }
                    };
                    for r in &mut batch {
                        // Checked by `feed`, so this succeeds; should it fail (or panic), the
                        // event stays lazy and `next_event` decodes it again and raises.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            if r.event.decode_images().is_ok() {
                                render_texts(r, native);
                            }
                        }));
                    }
                    if done.send(batch).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Self {
            to,
            from,
            pid: std::process::id(),
        })
    }
}

/// Where an unfinished event is being assembled.
#[derive(Debug, Default)]
struct Partial {
    buf: Vec<u8>,
}

/// The engine state of one `CdcEngine`.
pub struct FeedState {
    settings: Settings,
    engine: Engine,
    /// Decodes only FORMAT_DESCRIPTION and ROTATE events, for the position and the flavor.
    meta: BinlogDecoder,
    partial: Partial,
    /// No byte decided yet since creation / reset: a leading `\xfebin` is skipped.
    at_start: bool,
    /// An event went into `engine` since it was built (decoder settings are then fixed).
    fed_any: bool,
    /// The batch the helper handed back last, popped first (kept as it came: no copy).
    front: std::vec::IntoIter<Ready>,
    /// Events ready for `pop` after `front`, in stream order. Order: `front`, `queue`, the
    /// events at the decode-ahead helper, `outgoing`.
    queue: VecDeque<Ready>,
    /// Bytes of every queued event (in `queue`, at the helper and in `outgoing`).
    queue_bytes: usize,
    /// The decode-ahead helper, started on first need; `None` also when it could not start.
    ahead: Option<Ahead>,
    /// The helper could not be started: every image is decoded in `feed`.
    ahead_unavailable: bool,
    /// Events sent to the helper and not received back yet, and their bytes.
    in_flight: usize,
    in_flight_bytes: usize,
    /// Events checked by this `feed` call, waiting to be sent to the helper as one batch.
    outgoing: Vec<Ready>,
    /// Events queued by the current `feed` call.
    produced: usize,
    /// Events a `feed` call decodes itself before using the helper ([`INLINE_EVENTS`]).
    inline_events: usize,
    /// Converted events to be dropped by the helper (see [`Job::Drop`]), and their bytes.
    trash: Vec<Ready>,
    trash_bytes: usize,
    /// The window of the current `feed` call whose rows the helper checks (see [`Board`]).
    board: Option<Arc<Board>>,
    /// Index in the current `feed` call's bytes where its scan window ends: no new window is
    /// opened before it.
    window_end: usize,
    /// The share of a window whose rows the engine checks itself before the helper's part
    /// begins: raised when the engine caught up with the helper, lowered when it did not.
    scan_skip: f64,
    /// See [`FeedState::set_decode_ahead`].
    scan_min: Option<usize>,
    file: Arc<str>,
    offset: u64,
    /// File offset of the next event (the contract feeds files without their 4-byte magic,
    /// so the first event is at 4), for error messages.
    stream_offset: u64,
    failed: Option<FeedError>,
    mariadb: bool,
    warned_tables: HashSet<usize>,
    /// The last table an event came from: whether the filters let it through and whether it
    /// has JSON columns (cleared when a filter changes).
    table_memo: Option<(Arc<TableInfo>, bool, bool)>,
    /// Log records produced while the GIL was released, delivered by the caller.
    pub logs: Vec<(i32, String)>,
}

impl std::fmt::Debug for FeedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedState")
            .field("file", &self.file)
            .field("offset", &self.offset)
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

fn decoder_config(s: &Settings) -> DecoderConfig {
    DecoderConfig::default()
        .with_magic(MagicMode::None)
        // The contract feeds a file without its 4-byte magic: offsets in error messages are
        // then file offsets.
        .with_start_offset(4)
        .with_max_event_size(MAX_EVENT_SIZE_CAP)
        .with_verify_checksum(!s.pre_verified)
        .with_initial_checksum(if s.checksum {
            ChecksumAlg::Crc32
        } else {
            ChecksumAlg::Off
        })
}

fn build_engine(s: &Settings) -> (Engine, BinlogDecoder) {
    let config = EngineConfig::default()
        .with_decoder(decoder_config(s))
        // The binding keeps its own queue (limits can change at any time); the engine's is
        // drained after every event.
        .with_max_queue_events(usize::MAX)
        .with_max_queue_bytes(usize::MAX)
        // Rows are handed out as soon as their rows event is decoded, like the original
        // (which has no transaction buffering).
        .with_max_buffered_transaction_bytes(0)
        // `feed` only checks each row (every value measured and checked exactly as decoding
        // would check it, so every decode error still raises from `feed`); the images are
        // decoded afterwards, by `feed` itself for a few events or by the decode-ahead helper
        // (see `Ahead`), and `next_event` converts them.
        .with_decoded_images(false);
    let meta = BinlogDecoder::new(decoder_config(s).with_verify_checksum(false));
    let mut engine = Engine::new(config);
    if let Some((host, port, cc)) = &s.schema {
        engine.set_schema_source(Box::new(mes_blocking::SchemaLookup::new(host, *port, cc)));
    }
    (engine, meta)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn event_bytes(ev: &ChangeEvent, json: &[String]) -> usize {
    ev.approx_size() + json.iter().map(String::len).sum::<usize>()
}

/// The JSON columns of a change event rendered as text, in order (before image first).
pub fn render_json(event: &ChangeEvent) -> Result<Vec<String>, FeedError> {
    let mut json = Vec::new();
    let columns = &event.table().map.columns;
    if !columns.iter().any(|c| c.column_type == ColumnType::Json) {
        return Ok(json);
    }
    let decode = |e: EngineError| FeedError::from_engine(&e);
    for row in [
        event.before().map_err(decode)?,
        event.after().map_err(decode)?,
    ]
    .into_iter()
    .flatten()
    {
        for (i, v) in row.values.iter().enumerate() {
            if let Some(v @ Value::Json(JsonValue::UnappliedDiff(_))) = v {
                // A partial JSON update whose before image lacks the column
                // (binlog_row_image=MINIMAL): the document cannot be rebuilt. The diff
                // itself is surfaced, in the same shape as `mes decode`:
                // {"$partial_json_diff": [{"op": ..., "path": ..., "value": ...}]}.
                let mut text = String::new();
                json_lines::write_value(&mut text, v, event.table().map.columns.get(i));
                json.push(text);
            } else if let Some(Value::Json(j)) = v {
                let text = j.to_text().map_err(|kind| {
                    FeedError::new(
                        CODE_DECODE_ROW,
                        format!(
                            "JSON column {i} of `{}`.`{}` (row event ending at {}): {kind}",
                            event.table().database,
                            event.table().table,
                            event.position().offset
                        ),
                    )
                })?;
                json.push(text);
            }
        }
    }
    Ok(json)
}

/// A change event from a live stream, ready for conversion (`mariadb`: its statement came from
/// an ANNOTATE_ROWS event).
pub fn ready_from_change(event: ChangeEvent, mariadb: bool) -> Result<Ready, FeedError> {
    let json = render_json(&event)?;
    let bytes = event_bytes(&event, &json);
    Ok(Ready {
        event,
        json,
        annotate: mariadb,
        texts: None,
        bytes,
    })
}

impl Default for FeedState {
    fn default() -> Self {
        Self::new()
    }
}

impl FeedState {
    /// A fresh engine with the original's defaults.
    pub fn new() -> Self {
        let settings = Settings::default();
        let (engine, meta) = build_engine(&settings);
        Self {
            settings,
            engine,
            meta,
            partial: Partial::default(),
            at_start: true,
            fed_any: false,
            front: Vec::new().into_iter(),
            queue: VecDeque::new(),
            queue_bytes: 0,
            ahead: None,
            ahead_unavailable: false,
            in_flight: 0,
            in_flight_bytes: 0,
            outgoing: Vec::new(),
            produced: 0,
            inline_events: INLINE_EVENTS,
            trash: Vec::new(),
            trash_bytes: 0,
            board: None,
            window_end: 0,
            scan_skip: SCAN_SKIP_START,
            scan_min: Some(SCAN_MIN),
            file: Arc::from(""),
            offset: 0,
            stream_offset: 4,
            failed: None,
            mariadb: false,
            warned_tables: HashSet::new(),
            table_memo: None,
            logs: Vec::new(),
        }
    }

    /// Whether images may be decoded by the decode-ahead helper (on by default), and after
    /// how many events of one `feed` call (default [`INLINE_EVENTS`]); off, every image is
    /// decoded by `feed` itself. `scan_min`: the fewest bytes a `feed` call shares with the
    /// helper for checking rows (default [`SCAN_MIN`]; `None`: never). For comparisons and
    /// tests: the events are the same.
    pub fn set_decode_ahead(&mut self, on: bool, inline_events: usize, scan_min: Option<usize>) {
        self.inline_events = inline_events;
        self.scan_min = scan_min;
        if !on {
            self.send_ahead();
            self.end_ahead();
            self.trash.clear();
            self.trash_bytes = 0;
        }
        self.ahead_unavailable = !on;
    }

    /// An engine whose events become `native_types` objects (see [`text_of`]).
    pub fn with_native_types(mut self, native: bool) -> Self {
        self.settings.native = native;
        self
    }

    fn log(&mut self, level: i32, message: impl FnOnce() -> String) {
        if log_enabled(level) {
            self.logs.push((level, message()));
        }
    }

    /// Clear the parser state, table maps, position and error; keep queued events, filters
    /// and settings.
    pub fn reset(&mut self) {
        self.close_window(false);
        let (engine, meta) = build_engine(&self.settings);
        self.engine = engine;
        self.meta = meta;
        self.partial.buf.clear();
        self.at_start = true;
        self.fed_any = false;
        self.file = Arc::from("");
        self.offset = 0;
        self.stream_offset = 4;
        self.failed = None;
        self.mariadb = false;
        self.table_memo = None;
    }

    /// Rebuild the engine when no event has gone into it yet, so decoder settings apply now.
    fn apply_decoder_settings(&mut self) {
        if !self.fed_any {
            let (engine, meta) = build_engine(&self.settings);
            self.engine = engine;
            self.meta = meta;
        }
    }

    /// `set_max_queue_size` (0 = default 10 000).
    pub fn set_max_queue_size(&mut self, n: u64) {
        self.settings.max_queue_size = if n == 0 {
            DEFAULT_QUEUE_SIZE
        } else {
            usize::try_from(n).unwrap_or(usize::MAX)
        };
    }

    /// `set_max_queue_bytes` (0 = default 48 MiB).
    pub fn set_max_queue_bytes(&mut self, n: u64) {
        self.settings.max_queue_bytes = if n == 0 {
            DEFAULT_QUEUE_BYTES
        } else {
            usize::try_from(n).unwrap_or(usize::MAX)
        };
    }

    /// The queue byte budget.
    pub fn max_queue_bytes(&self) -> u64 {
        self.settings.max_queue_bytes as u64
    }

    /// `set_max_event_size`: 0 → 1 GiB, clamped to `[23, 1 GiB]`.
    pub fn set_max_event_size(&mut self, n: u64) {
        self.settings.max_event_size = if n == 0 {
            MAX_EVENT_SIZE_CAP
        } else {
            n.clamp(MIN_EVENT_SIZE, MAX_EVENT_SIZE_CAP)
        };
    }

    /// The per-event size limit.
    pub fn max_event_size(&self) -> u64 {
        self.settings.max_event_size
    }

    /// Whether events before the first FORMAT_DESCRIPTION_EVENT carry a CRC32 trailer. A
    /// FORMAT_DESCRIPTION_EVENT in the stream decides for the events after it. Takes effect
    /// immediately before the first event, otherwise at the next `reset()`.
    pub fn set_checksum_enabled(&mut self, on: bool) {
        if self.settings.checksum != on {
            self.settings.checksum = on;
            self.apply_decoder_settings();
        }
    }

    /// Skip CRC32 verification (framing unchanged). Takes effect immediately before the first
    /// event, otherwise at the next `reset()`.
    pub fn set_trailer_pre_verified(&mut self, on: bool) {
        if self.settings.pre_verified != on {
            self.settings.pre_verified = on;
            self.apply_decoder_settings();
        }
    }

    /// Name columns through a side connection when a TABLE_MAP carries none.
    pub fn set_schema_lookup(
        &mut self,
        host: String,
        port: u16,
        cc: mysql_repl_proto::ConnectConfig,
    ) {
        self.engine
            .set_schema_source(Box::new(mes_blocking::SchemaLookup::new(&host, port, &cc)));
        self.settings.schema = Some((host, port, cc));
    }

    /// The pre-verified flag.
    pub fn trailer_pre_verified(&self) -> bool {
        self.settings.pre_verified
    }

    /// Replace one filter list (`[]` clears it).
    pub fn set_filter(&mut self, kind: FilterKind, names: Vec<String>) {
        let s = &mut self.settings;
        match kind {
            FilterKind::IncludeDatabases => s.include_databases = names,
            FilterKind::IncludeTables => s.include_tables = names,
            FilterKind::ExcludeTables => s.exclude_tables = names,
        }
        self.table_memo = None;
        // Databases match exactly (checked in `allows`); table entries use the codec's
        // `db.table` / `table` / trailing-`*` rules, which are the original's.
        s.filter = TableFilter::default()
            .with_include_tables(&s.include_tables)
            .with_exclude_tables(&s.exclude_tables);
    }

    fn allows(&self, db: &str, table: &str) -> bool {
        let s = &self.settings;
        (s.include_databases.is_empty() || s.include_databases.iter().any(|d| d == db))
            && s.filter.allows(db, table)
    }

    /// Whether a change event is queued (ready, or at the decode-ahead helper).
    pub fn has_events(&self) -> bool {
        self.queued() > 0
    }

    /// Events queued: ready, at the helper or about to be sent to it.
    fn queued(&self) -> usize {
        self.front.len() + self.queue.len() + self.in_flight + self.outgoing.len()
    }

    /// Nothing is ready to pop (events may be at the helper).
    fn none_ready(&self) -> bool {
        self.front.len() == 0 && self.queue.is_empty()
    }

    /// Pop the next queued change event when it is ready. `None` either when nothing is queued
    /// or when the next one is still at the decode-ahead helper: call [`Self::must_wait`] first
    /// and, when it says so, [`Self::wait_ahead`] (with the GIL released).
    pub fn pop(&mut self) -> Option<Ready> {
        if self.none_ready() {
            self.collect_ahead();
        }
        let r = match self.front.next() {
            Some(r) => r,
            None => self.queue.pop_front()?,
        };
        self.queue_bytes -= r.bytes;
        Some(r)
    }

    /// Whether the next event is still being decoded by the helper (so `pop` would return
    /// `None` although events are queued). Takes whatever the helper has finished first.
    pub fn must_wait(&mut self) -> bool {
        if self.none_ready() {
            self.collect_ahead();
        }
        self.none_ready() && self.in_flight > 0
    }

    /// Block until the helper hands back its next batch (call without the GIL).
    pub fn wait_ahead(&mut self) {
        if self.in_flight == 0 {
            return;
        }
        let Some(ahead) = &self.ahead else { return };
        if !ahead.in_this_process() {
            // A forked child: the helper (and the events it holds) stayed in the parent.
            return self.lose_ahead();
        }
        match ahead.from.recv() {
            Ok(batch) => self.accept_ahead(batch),
            // The helper ends only when its job channel closes, which `self` holds open; were
            // it gone anyway, nothing more can come back.
            Err(mpsc::RecvError) => self.lose_ahead(),
        }
    }

    /// Done with a popped event: dropped by the helper when there is one (in batches).
    pub fn recycle(&mut self, ready: Ready) {
        let Some(ahead) = &self.ahead else { return };
        self.trash_bytes += ready.bytes;
        self.trash.push(ready);
        if self.trash.len() >= TRASH_EVENTS || self.trash_bytes >= TRASH_BYTES {
            // A helper that has ended hands the batch back inside the error: dropped here.
            let full = std::mem::replace(&mut self.trash, Vec::with_capacity(TRASH_EVENTS));
            self.trash_bytes = 0;
            if ahead.in_this_process() {
                let _ = ahead.to.send(Job::Drop(full));
            }
        }
    }

    /// Take the next batch the helper has finished, if any, without blocking.
    fn collect_ahead(&mut self) {
        if self.in_flight == 0 {
            return;
        }
        let Some(ahead) = &self.ahead else { return };
        match ahead.from.try_recv() {
            Ok(batch) => self.accept_ahead(batch),
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => self.lose_ahead(),
        }
    }

    /// A batch back from the helper: it follows everything ready (and precedes what is still
    /// at the helper).
    fn accept_ahead(&mut self, batch: Vec<Ready>) {
        self.in_flight -= batch.len();
        self.in_flight_bytes -= batch.iter().map(|r| r.bytes).sum::<usize>();
        if self.none_ready() {
            self.front = batch.into_iter();
        } else {
            self.queue.extend(batch);
        }
    }

    /// The helper is gone with events: only in a child made by `fork()` (the thread stayed in
    /// the parent) or if it ended, which it does not (it catches panics and ends only when its
    /// channel closes). Said loudly rather than waited on forever.
    fn lose_ahead(&mut self) {
        let lost = self.in_flight;
        self.queue_bytes -= self.in_flight_bytes;
        self.in_flight = 0;
        self.in_flight_bytes = 0;
        self.ahead = None;
        self.ahead_unavailable = true;
        if lost > 0 {
            let e = FeedError::new(
                CODE_PARSE,
                format!(
                    "{lost} checked events were lost with the engine's decode thread, which is \
                     not in this process (used after fork()?); feed the stream again from the \
                     last position you processed"
                ),
            );
            self.log(LOG_ERROR, || {
                format!(
                    "event=decode_ahead_lost events={lost} message={:?}",
                    e.message
                )
            });
            // Raised by the next feed: never a silent gap.
            self.failed = Some(e);
        }
    }

    /// Queue a checked event: decoded here while the helper holds nothing and this `feed` call
    /// has queued few events, else batched for the helper (order kept: see `queue`).
    fn enqueue(&mut self, mut ready: Ready) {
        self.queue_bytes += ready.bytes;
        self.produced += 1;
        if self.in_flight == 0
            && self.outgoing.is_empty()
            && (self.produced <= self.inline_events || self.ahead_unavailable)
        {
            // Checked by `feed`, so this succeeds; should it not, `next_event` decodes the
            // still lazy event again and raises the error.
            let _ = ready.event.decode_images();
            self.queue.push_back(ready);
            return;
        }
        self.outgoing.push(ready);
        if self.outgoing.len() >= AHEAD_BATCH {
            self.send_ahead();
        }
    }

    /// Hand `outgoing` to the helper (started on first use), or decode it here when there is
    /// no helper.
    fn send_ahead(&mut self) {
        if self.outgoing.is_empty() {
            return;
        }
        self.start_ahead();
        if self.ahead.as_ref().is_some_and(|a| !a.in_this_process()) {
            // A forked child: no helper thread here; what the parent's held is lost to us.
            self.lose_ahead();
        }
        let batch = std::mem::replace(&mut self.outgoing, Vec::with_capacity(AHEAD_BATCH));
        let n = batch.len();
        let bytes: usize = batch.iter().map(|r| r.bytes).sum();
        let unsent = match &self.ahead {
            Some(ahead) => match ahead.to.send(Job::Decode(batch)) {
                Ok(()) => {
                    self.in_flight += n;
                    self.in_flight_bytes += bytes;
                    return;
                }
                Err(mpsc::SendError(Job::Decode(batch) | Job::Drop(batch))) => batch,
                Err(mpsc::SendError(Job::Scan(_))) => Vec::new(),
            },
            None => batch,
        };
        // No helper (any more): take back what it finished, then decode here, in order.
        self.end_ahead();
        self.ahead_unavailable = true;
        for mut r in unsent {
            let _ = r.event.decode_images();
            self.queue.push_back(r);
        }
    }

    /// Start the helper unless it runs or cannot run.
    fn start_ahead(&mut self) {
        if self.ahead.is_none() && !self.ahead_unavailable {
            self.ahead = Ahead::start(self.settings.native);
            self.ahead_unavailable = self.ahead.is_none();
        }
    }

    /// Take back every batch the helper still holds, then let it go (its thread ends).
    fn end_ahead(&mut self) {
        while self.in_flight > 0 && self.ahead.is_some() {
            self.wait_ahead();
        }
        self.ahead = None;
    }

    /// The resume position: file of the last ROTATE, offset after the last event.
    pub fn position(&self) -> (&str, u64) {
        (&self.file, self.offset)
    }

    fn queue_full(&self) -> bool {
        self.queued() >= self.settings.max_queue_size
            || self.queue_bytes >= self.settings.max_queue_bytes
    }

    /// Feed bytes; returns how many were consumed (fewer than `data.len()` only when the queue
    /// filled up). After an error, only `reset()` makes feeding possible again.
    pub fn feed(&mut self, data: &[u8]) -> Result<usize, FeedError> {
        if let Some(e) = &self.failed {
            return Err(FeedError {
                code: e.code,
                message: format!("{} [the engine failed earlier; call reset()]", e.message),
            });
        }
        self.produced = 0;
        self.window_end = 0;
        let r = self.feed_inner(data);
        let completed = matches!(r, Ok(n) if n >= self.window_end);
        self.close_window(completed);
        // Events queued before an error stay deliverable, as without the helper.
        self.send_ahead();
        match r {
            Ok(n) => Ok(n),
            Err(e) => {
                let (code, message) = (e.code, e.message.clone());
                self.log(LOG_ERROR, || {
                    let name = if code == CODE_DECODE_ROW {
                        "row_decode_failed"
                    } else {
                        "binlog_parse_failed"
                    };
                    format!("event={name} code={code} message={message:?}")
                });
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Share `data[pos..]` (up to [`SCAN_WINDOW`] bytes, at an event boundary) with the
    /// helper, which checks the rows events of its later part while the engine works through
    /// it (see [`Board`]). Nothing when the rest is short, the helper is off or not in this
    /// process, or the engine cannot give a scanner.
    fn open_window(&mut self, data: &[u8], pos: usize) {
        self.close_window(true);
        self.window_end = data.len();
        let rest = data.len() - pos;
        if self.scan_min.is_none_or(|min| rest < min.max(1)) || self.ahead_unavailable {
            return;
        }
        let Some(scanner) = self.engine.span_scanner() else {
            return;
        };
        self.start_ahead();
        let Some(ahead) = self.ahead.as_ref().filter(|a| a.in_this_process()) else {
            return;
        };
        let len = rest.min(SCAN_WINDOW);
        self.window_end = pos + len;
        // The engine's part first, the helper's from `from` on.
        let skip = (len as f64 * self.scan_skip) as u64;
        let board = Arc::new(Board {
            from: scanner.offset() + skip,
            state: Mutex::default(),
        });
        let job = ScanJob {
            data: data[pos..pos + len].to_vec(),
            scanner,
            board: board.clone(),
        };
        if ahead.to.send(Job::Scan(Box::new(job))).is_ok() {
            self.engine
                .set_span_source(Some(Box::new(BoardSource(board.clone()))));
            self.board = Some(board);
        }
    }

    /// End the current scan window (the helper stops at its next rows event) and learn from
    /// it: `completed` when the engine went through the whole window.
    fn close_window(&mut self, completed: bool) {
        let Some(board) = self.board.take() else {
            return;
        };
        self.engine.set_span_source(None);
        let mut st = board.state();
        st.closed = true;
        if st.caught_up {
            self.scan_skip = (self.scan_skip + SCAN_SKIP_STEP_UP).min(SCAN_SKIP_MAX);
        } else if completed {
            self.scan_skip = (self.scan_skip - SCAN_SKIP_STEP_DOWN).max(0.0);
        }
    }

    fn frame_size(&self, header: &[u8]) -> Result<usize, FeedError> {
        let size = u64::from(u32_at(header, 9));
        let type_code = header[4];
        if size < HEADER_LEN as u64 {
            return Err(FeedError::new(
                CODE_PARSE,
                format!(
                    "invalid event size {size} (event type {type_code}) at offset {}; the bytes \
                     must start at an event boundary (skip the 4-byte file magic)",
                    self.stream_offset
                ),
            ));
        }
        if size > self.settings.max_event_size {
            return Err(FeedError::new(
                CODE_PARSE,
                format!(
                    "event of {size} bytes (event type {type_code}) at offset {} exceeds \
                     max_event_size {}; raise it with set_max_event_size()",
                    self.stream_offset, self.settings.max_event_size
                ),
            ));
        }
        Ok(size as usize)
    }

    fn feed_inner(&mut self, data: &[u8]) -> Result<usize, FeedError> {
        let mut pos = 0usize;
        while pos < data.len() && !self.queue_full() {
            if self.at_start {
                // Skip a leading binlog file magic (decided on whole magic bytes only).
                let have = self.partial.buf.len();
                let need = 4usize.saturating_sub(have);
                let avail = (data.len() - pos).min(need);
                let mut head = self.partial.buf.clone();
                head.extend_from_slice(&data[pos..pos + avail]);
                if head.len() < 4 {
                    if BINLOG_MAGIC[..head.len()] == head[..] {
                        self.partial.buf.extend_from_slice(&data[pos..pos + avail]);
                        pos += avail;
                        continue;
                    }
                    self.at_start = false;
                    continue;
                }
                self.at_start = false;
                if head[..4] == BINLOG_MAGIC {
                    self.partial.buf.clear();
                    pos += avail;
                }
                continue;
            }
            if self.partial.buf.is_empty() {
                let rest = &data[pos..];
                if rest.len() < HEADER_LEN {
                    self.partial.buf.extend_from_slice(rest);
                    pos = data.len();
                    break;
                }
                let size = self.frame_size(rest)?;
                if rest.len() < size {
                    self.partial.buf.extend_from_slice(rest);
                    pos = data.len();
                    break;
                }
                if pos >= self.window_end {
                    self.open_window(data, pos);
                }
                self.process(&rest[..size])?;
                pos += size;
            } else {
                let buf = &mut self.partial.buf;
                if buf.len() < HEADER_LEN {
                    let take = (HEADER_LEN - buf.len()).min(data.len() - pos);
                    buf.extend_from_slice(&data[pos..pos + take]);
                    pos += take;
                    if buf.len() < HEADER_LEN {
                        break;
                    }
                }
                let size = self.frame_size(&self.partial.buf)?;
                let buf = &mut self.partial.buf;
                if buf.len() < size {
                    let take = (size - buf.len()).min(data.len() - pos);
                    buf.extend_from_slice(&data[pos..pos + take]);
                    pos += take;
                    if buf.len() < size {
                        break;
                    }
                }
                let frame = std::mem::take(&mut self.partial.buf);
                let r = self.process(&frame);
                self.partial.buf = frame;
                self.partial.buf.clear();
                r?;
            }
        }
        Ok(pos)
    }

    fn process(&mut self, frame: &[u8]) -> Result<(), FeedError> {
        let type_code = frame[4];
        let log_pos = u64::from(u32_at(frame, 13));
        let used = self
            .engine
            .handle_input(frame)
            .map_err(|e| FeedError::from_engine(&e))?;
        debug_assert_eq!(used, frame.len());
        self.fed_any = true;
        self.stream_offset += frame.len() as u64;
        if type_code == 4 || type_code == 15 {
            self.meta_event(frame, log_pos);
        } else if log_pos != 0 {
            self.offset = log_pos;
        }
        self.drain()
    }

    fn meta_event(&mut self, frame: &[u8], log_pos: u64) {
        let mut rotated = None;
        match self.meta.decode(frame) {
            Ok(Some((ev, _))) => match &ev.data {
                EventData::Rotate(r) => {
                    self.file = Arc::from(r.next_file.as_ref());
                    self.offset = r.position;
                    rotated = Some((r.next_file.to_string(), r.position));
                }
                EventData::FormatDescription(f) => {
                    self.mariadb = f.server_version.contains("MariaDB");
                    if log_pos != 0 {
                        self.offset = log_pos;
                    }
                }
                _ => {}
            },
            _ => {
                if log_pos != 0 {
                    self.offset = log_pos;
                }
            }
        }
        if let Some((file, position)) = rotated {
            self.log(LOG_INFO, || {
                format!("event=binlog_rotate file={file} position={position}")
            });
        }
    }

    fn drain(&mut self) -> Result<(), FeedError> {
        while let Some(ev) = self.engine.poll_event() {
            let EngineEvent::Change(event) = ev else {
                continue;
            };
            // What depends only on the table, worked out once per table in a row (the memo
            // holds the table, so its address cannot be reused meanwhile).
            let (allowed, has_json) = match &self.table_memo {
                Some((t, allowed, has_json)) if Arc::ptr_eq(t, event.table()) => {
                    (*allowed, *has_json)
                }
                _ => {
                    let t = event.table();
                    let allowed = self.allows(&t.database, &t.table);
                    let has_json = t
                        .map
                        .columns
                        .iter()
                        .any(|c| c.column_type == ColumnType::Json);
                    self.table_memo = Some((t.clone(), allowed, has_json));
                    (allowed, has_json)
                }
            };
            if !allowed {
                continue;
            }
            self.check_signedness(event.table());
            let json = if has_json {
                render_json(&event)?
            } else {
                Vec::new()
            };
            // Counted twice: a queued event holds its images both as the rows event's bytes
            // (shared with the other rows of that event) and, once decoded, as values.
            let bytes = 2 * event_bytes(&event, &json);
            self.enqueue(Ready {
                event,
                json,
                annotate: self.mariadb,
                texts: None,
                bytes,
            });
        }
        Ok(())
    }

    fn check_signedness(&mut self, table: &Arc<TableInfo>) {
        if !log_enabled(LOG_WARN) {
            return;
        }
        let key = Arc::as_ptr(table) as usize;
        if self.warned_tables.contains(&key) {
            return;
        }
        if self.warned_tables.len() > 4096 {
            self.warned_tables.clear();
        }
        self.warned_tables.insert(key);
        let missing = table.map.columns.iter().any(|c| {
            matches!(
                c.column_type,
                ColumnType::Tiny
                    | ColumnType::Short
                    | ColumnType::Int24
                    | ColumnType::Long
                    | ColumnType::LongLong
            ) && c.unsigned.is_none()
        });
        if missing {
            let (db, t) = (table.database.clone(), table.table.clone());
            self.log(LOG_WARN, || {
                format!("event=table_map_missing_signedness db={db} table={t}")
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal v4 event: header + body, no checksum.
    fn event(type_code: u8, log_pos: u32, body: &[u8]) -> Vec<u8> {
        let size = (HEADER_LEN + body.len()) as u32;
        let mut e = Vec::new();
        e.extend_from_slice(&0u32.to_le_bytes());
        e.push(type_code);
        e.extend_from_slice(&1u32.to_le_bytes());
        e.extend_from_slice(&size.to_le_bytes());
        e.extend_from_slice(&log_pos.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(body);
        e
    }

    fn rotate(name: &str, pos: u64) -> Vec<u8> {
        let mut body = pos.to_le_bytes().to_vec();
        body.extend_from_slice(name.as_bytes());
        // Artificial ROTATE (log_pos 0) before any FDE; checksums off for this stream.
        event(4, 0, &body)
    }

    fn state() -> FeedState {
        let mut s = FeedState::new();
        s.set_checksum_enabled(false);
        s
    }

    #[test]
    fn rotate_sets_position_whatever_the_split() {
        let ev = rotate("binlog.000007", 4);
        for chunk in [1, 3, 19, ev.len()] {
            let mut s = state();
            let mut fed = 0;
            for piece in ev.chunks(chunk) {
                fed += s.feed(piece).expect("feed");
            }
            assert_eq!(fed, ev.len());
            assert_eq!(s.position(), ("binlog.000007", 4));
        }
    }

    #[test]
    fn magic_is_skipped_only_at_the_start() {
        let mut s = state();
        let mut data = BINLOG_MAGIC.to_vec();
        data.extend(rotate("b.000001", 4));
        assert_eq!(s.feed(&data).expect("feed"), data.len());
        assert_eq!(s.position(), ("b.000001", 4));
        // Not at the start any more: a magic is an invalid event header.
        let mut more = BINLOG_MAGIC.to_vec();
        more.extend([0u8; 19]);
        let e = s.feed(&more).expect_err("must fail");
        assert_eq!(e.code, CODE_PARSE);
        // Latched until reset.
        assert!(s.feed(&rotate("x", 4)).is_err());
        s.reset();
        assert_eq!(s.position(), ("", 0));
        assert!(s.feed(&rotate("x", 4)).is_ok());
    }

    #[test]
    fn sizes_are_checked_before_buffering() {
        let mut s = state();
        s.set_max_event_size(30);
        assert_eq!(s.max_event_size(), 30);
        let e = s
            .feed(&rotate("a-long-file-name.000001", 4))
            .expect_err("oversize");
        assert_eq!(e.code, CODE_PARSE);
        assert!(e.message.contains("max_event_size"), "{}", e.message);
        s.set_max_event_size(1);
        assert_eq!(s.max_event_size(), MIN_EVENT_SIZE);
        s.set_max_event_size(0);
        assert_eq!(s.max_event_size(), MAX_EVENT_SIZE_CAP);
    }

    /// A CRC32-checked stream: FDE (MySQL 9.6.0 post-header lengths), a TABLE_MAP of
    /// `db`.`t` (one INT column) and `events` WRITE_ROWS events of `rows` rows each, ids
    /// counting up from 0. With `bad_at`, the rows event of that index names an unknown table.
    fn int_stream(events: usize, rows: usize, bad_at: Option<usize>) -> Vec<u8> {
        const POST_HEADERS: [u8; 42] = [
            0, 13, 0, 8, 0, 0, 0, 0, 4, 0, 4, 0, 0, 0, 99, 0, 4, 26, 8, 0, 0, 0, 0, 0, 0, 2, 0, 0,
            0, 10, 10, 10, 42, 42, 0, 18, 52, 0, 10, 40, 0, 0,
        ];
        fn crc(type_code: u8, body: &[u8]) -> Vec<u8> {
            let mut e = event(type_code, 0, body);
            let size = (e.len() + 4) as u32;
            e[9..13].copy_from_slice(&size.to_le_bytes());
            let c = crc32fast::hash(&e);
            e.extend_from_slice(&c.to_le_bytes());
            e
        }
        let mut fde = vec![4, 0];
        let mut version = [0u8; 50];
        version[..5].copy_from_slice(b"9.6.0");
        fde.extend_from_slice(&version);
        fde.extend_from_slice(&0u32.to_le_bytes());
        fde.push(19);
        fde.extend_from_slice(&POST_HEADERS);
        fde.push(1);
        let mut out = crc(15, &fde);
        let mut tm = vec![7, 0, 0, 0, 0, 0, 0, 0, 2];
        tm.extend_from_slice(b"db\0");
        tm.push(1);
        tm.extend_from_slice(b"t\0");
        tm.extend_from_slice(&[1, 3, 0, 0]); // 1 column, LONG, no metadata, NOT NULL
        out.extend(crc(19, &tm));
        let mut id = 0i32;
        for e in 0..events {
            let table_id = if bad_at == Some(e) { 8 } else { 7 };
            let mut body = vec![table_id, 0, 0, 0, 0, 0, 1, 0, 2, 0, 1, 1];
            for _ in 0..rows {
                body.push(0);
                body.extend_from_slice(&id.to_le_bytes());
                id += 1;
            }
            out.extend(crc(30, &body));
        }
        out
    }

    /// Pop every ready event (waiting for the helper as `next_event` does): the INT of each
    /// after image, and whether every popped event was decoded already.
    fn drain_ids(s: &mut FeedState) -> (Vec<i64>, bool) {
        let (mut ids, mut decoded) = (Vec::new(), true);
        loop {
            if s.must_wait() {
                s.wait_ahead();
            }
            let Some(r) = s.pop() else { break };
            decoded &= r.event.decoded_images().is_some();
            let after = r.event.after().expect("decode").expect("after image");
            match after.values.first() {
                Some(Some(Value::Int(i))) => ids.push(*i),
                other => panic!("unexpected value {other:?}"),
            }
            s.recycle(r);
        }
        (ids, decoded)
    }

    #[test]
    fn decode_ahead_keeps_order_and_count() {
        let data = int_stream(300, 7, None);
        let expected: Vec<i64> = (0..2100).collect();
        // Whole stream at once: 64 events decoded in `feed`, the rest by the helper.
        let mut s = FeedState::new();
        assert_eq!(s.feed(&data).expect("feed"), data.len());
        assert!(s.has_events());
        let (ids, decoded) = drain_ids(&mut s);
        assert_eq!(ids, expected);
        assert!(decoded, "the helper hands back decoded images");
        assert!(s.ahead.is_some() && s.queued() == 0 && !s.has_events());
        assert_eq!((s.queue_bytes, s.in_flight_bytes), (0, 0));
        // Small pieces: no feed call queues more than a rows event, nothing goes to a thread.
        let mut s = FeedState::new();
        let mut ids = Vec::new();
        for piece in data.chunks(13) {
            assert_eq!(s.feed(piece).expect("feed"), piece.len());
            ids.extend(drain_ids(&mut s).0);
        }
        assert_eq!(ids, expected);
        assert!(s.ahead.is_none());
        // Queue limit: events at the helper count; feeding resumes where it stopped.
        let mut s = FeedState::new();
        s.set_max_queue_size(500);
        let (mut ids, mut at) = (Vec::new(), 0);
        while at < data.len() {
            at += s.feed(&data[at..]).expect("feed");
            assert!(s.queued() <= 500 + 7);
            ids.extend(drain_ids(&mut s).0);
        }
        assert_eq!(ids, expected);
        assert_eq!((s.queue_bytes, s.in_flight_bytes), (0, 0));
    }

    #[test]
    fn decode_ahead_keeps_events_before_an_error() {
        let data = int_stream(300, 3, Some(250));
        let mut s = FeedState::new();
        let e = s.feed(&data).expect_err("unknown table");
        assert_eq!(e.code, CODE_DECODE_ROW);
        // The 250 rows events before the bad one are all delivered, in order.
        let (ids, _) = drain_ids(&mut s);
        assert_eq!(ids, (0..750).collect::<Vec<i64>>());
        assert!(!s.has_events());
    }

    #[test]
    fn rows_checked_by_the_helper_keep_order_count_and_errors() {
        let data = int_stream(3000, 7, None);
        let expected: Vec<i64> = (0..21000).collect();
        for (scan_min, chunk) in [(Some(1), data.len()), (Some(1), 20_000), (None, data.len())] {
            let mut s = FeedState::new();
            s.set_decode_ahead(true, 64, scan_min);
            let (mut ids, mut at) = (Vec::new(), 0);
            while at < data.len() {
                let end = (at + chunk).min(data.len());
                at += s.feed(&data[at..end]).expect("feed");
                ids.extend(drain_ids(&mut s).0);
            }
            assert_eq!(ids, expected, "scan_min {scan_min:?}, chunk {chunk}");
            assert!(s.board.is_none());
        }
        // An unknown table in the helper's part: the engine raises it, with every event before.
        let data = int_stream(3000, 3, Some(2500));
        let mut s = FeedState::new();
        s.set_decode_ahead(true, 64, Some(1));
        let e = s.feed(&data).expect_err("unknown table");
        assert_eq!(e.code, CODE_DECODE_ROW);
        assert_eq!(drain_ids(&mut s).0, (0..7500).collect::<Vec<i64>>());
    }

    /// Feed `data` after its first two events (FDE, TABLE_MAP) with the rows checks a helper
    /// made of the first `scanned` parts in 100 of the rest, from `skip` parts in 100 on, before
    /// feeding (so it is ahead all along); returns the board.
    fn feed_with_checks(data: &[u8], scanned: usize, skip: usize) -> (Vec<i64>, Arc<Board>) {
        let mut s = FeedState::new();
        s.set_decode_ahead(true, 64, None);
        let head = {
            let fde = u32_at(data, 9) as usize;
            fde + u32_at(data, fde + 9) as usize
        };
        assert_eq!(s.feed(&data[..head]).expect("feed"), head);
        let scanner = s.engine.span_scanner().expect("a scanner");
        let rest = data.len() - head;
        let board = Arc::new(Board {
            from: scanner.offset() + (rest * skip / 100) as u64,
            state: Mutex::default(),
        });
        board.scan(scanner, &data[head..head + rest * scanned / 100]);
        s.engine
            .set_span_source(Some(Box::new(BoardSource(board.clone()))));
        assert_eq!(s.feed(&data[head..]).expect("feed"), data.len() - head);
        (drain_ids(&mut s).0, board)
    }

    #[test]
    fn the_engine_takes_the_helpers_checks_and_catches_up_where_they_end() {
        let data = int_stream(400, 5, None);
        let expected: Vec<i64> = (0..2000).collect();
        // Every rows event checked ahead: the engine takes every check, never catches up.
        let (ids, board) = feed_with_checks(&data, 100, 0);
        assert_eq!(ids, expected);
        let st = board.state();
        assert!(st.helper_at > board.from, "the helper checked rows events");
        assert!(st.done.is_empty() && !st.caught_up && !st.closed);
        drop(st);
        // The first third is the engine's, the helper checked up to the middle: the engine
        // takes what it finds, catches up in the middle, and the helper is told to stop.
        let (ids, board) = feed_with_checks(&data, 50, 33);
        assert_eq!(ids, expected);
        let st = board.state();
        assert!(st.done.is_empty() && st.caught_up && st.closed);
        assert!(st.helper_at >= board.from);
    }

    #[test]
    fn limits_resolve_zero_to_defaults() {
        let mut s = state();
        s.set_max_queue_bytes(0);
        assert_eq!(s.max_queue_bytes(), DEFAULT_QUEUE_BYTES as u64);
        s.set_max_queue_bytes(10);
        assert_eq!(s.max_queue_bytes(), 10);
        s.set_max_queue_size(0);
        assert!(!s.queue_full());
    }
}
