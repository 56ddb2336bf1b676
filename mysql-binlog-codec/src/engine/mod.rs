//! The change-event engine: binlog bytes in, INSERT / UPDATE / DELETE change events out, with
//! transaction boundaries, checkpoints and filters. Sans-IO like the rest of the crate: feed
//! bytes with [`Engine::handle_input`], pull with [`Engine::poll_event`], read
//! [`Engine::checkpoint`] to persist a resume point.
//!
//! It is **not** a network client: the drivers feed it what they read from a replication
//! connection; `mes decode` feeds it files. Column names come from TABLE_MAP metadata
//! (`binlog_row_metadata=FULL`) or from a pluggable [`SchemaSource`].
//!
//! Row images are not copied: a [`ChangeEvent`] keeps the bytes of its rows event (shared by
//! all the rows of that event; every value was checked when the event arrived) and
//! [`ChangeEvent::before`] / [`ChangeEvent::after`] decode them on demand, borrowing from it —
//! on the consumer's thread when the engine runs on a driver's reader thread.
//! [`EngineConfig::with_decoded_images`] decodes them on the engine's thread instead, and
//! [`spans`] lets another thread check rows ahead of the engine.
//!
//! Guarantees:
//! - a transaction's change events are queued only once its commit (XID, `COMMIT`, DDL,
//!   MariaDB standalone group end, XA COMMIT) has been decoded — rows of an unfinished
//!   transaction are never handed out (except that a transaction larger than
//!   [`EngineConfig::with_max_buffered_transaction_bytes`] is streamed, see there);
//! - the checkpoint advances only when every event of a transaction has been handed out by
//!   [`Engine::poll_event`], so persisting it after processing gives at-least-once delivery;
//! - nothing is silently dropped: unknown events, INCIDENT, rows for an unknown table id and a
//!   schema that disagrees with the TABLE_MAP are typed errors; statements that are not row
//!   events are surfaced as [`EngineEvent::Statement`].
//!
//! ```
//! use mysql_binlog_codec::engine::{Engine, EngineConfig, EngineEvent};
//!
//! let mut engine = Engine::new(EngineConfig::default().with_file_name("binlog.000001"));
//! # let bytes: Vec<u8> = mysql_binlog_codec::BINLOG_MAGIC.to_vec();
//! let mut input = &bytes[..];
//! loop {
//!     let used = engine.handle_input(input).expect("decode");
//!     input = &input[used..];
//!     while let Some(ev) = engine.poll_event() {
//!         if let EngineEvent::Change(change) = ev {
//!             let table = change.table();
//!             println!("{} {}.{}", change.kind().as_str(), table.database, table.table);
//!             // Decoded here, borrowing from the event.
//!             if let Some(row) = change.after().expect("row image") {
//!                 println!("  {} columns", row.values.len());
//!             }
//!         }
//!     }
//!     if input.is_empty() {
//!         break;
//!     }
//! }
//! engine.handle_eof().expect("clean end");
//! println!("resume from {:?}", engine.checkpoint());
//! ```

pub mod filter;
pub mod gtid_set;
pub mod json_lines;
pub mod spans;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::events::Query;
use crate::gtid::MariaGtid;
use crate::rows::{Row, RowsEvent, RowsKind};
use crate::table_map::TableMap;
use crate::value::{ColumnType, Value};
use crate::{
    BinlogDecoder, DecodeError, DecoderConfig, Event, EventData, EventHeader, FormatDescription,
    MagicMode,
};

pub use filter::TableFilter;
pub use gtid_set::{MariaGtidPos, MysqlGtidSet};
pub use spans::{Plan, PlannedRows, ScannedRows, SpanScanner, SpanSource};

/// Errors of the change-event layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The bytes could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A rows event refers to a table id with no TABLE_MAP.
    #[error("rows event at offset {offset} refers to table id {table_id}, which has no TABLE_MAP")]
    UnknownTable {
        /// The table id.
        table_id: u64,
        /// Offset of the rows event.
        offset: u64,
    },
    /// The source logged an INCIDENT: events may be missing; a consumer must resynchronise.
    #[error(
        "INCIDENT event at offset {offset} (kind {kind}): {message}; the source may have lost events"
    )]
    Incident {
        /// Incident kind (1 = LOST_EVENTS).
        kind: u16,
        /// The server's message.
        message: String,
        /// Offset of the event.
        offset: u64,
    },
    /// Column names from the schema source do not fit the TABLE_MAP.
    #[error(
        "schema of `{database}`.`{table}` does not match its TABLE_MAP at offset {offset}: {what}"
    )]
    SchemaMismatch {
        /// Schema.
        database: String,
        /// Table.
        table: String,
        /// What disagreed.
        what: String,
        /// Offset of the TABLE_MAP.
        offset: u64,
    },
    /// The schema source failed.
    #[error("schema source failed for `{database}`.`{table}`: {message}")]
    SchemaSource {
        /// Schema.
        database: String,
        /// Table.
        table: String,
        /// The source's message.
        message: String,
    },
    /// The engine failed earlier; call [`Engine::reset`] before feeding again.
    #[error("the engine failed earlier ({0}); call reset() before feeding again")]
    Failed(Box<EngineError>),
}

/// INSERT, UPDATE or DELETE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A new row (after image only).
    Insert,
    /// A changed row (before and after images).
    Update,
    /// A removed row (before image only).
    Delete,
}

impl ChangeKind {
    /// `"INSERT"`, `"UPDATE"` or `"DELETE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }
}

/// A mapped table with its resolved column names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Schema name.
    pub database: String,
    /// Table name.
    pub table: String,
    /// The TABLE_MAP (owned).
    pub map: TableMap<'static>,
    /// Column names (from metadata or the schema source); `None` → keys `"0"`, `"1"`, ….
    pub column_names: Option<Vec<String>>,
}

impl TableInfo {
    /// A table as its TABLE_MAP names it, with these column names.
    fn new(map: TableMap<'static>, column_names: Option<Vec<String>>) -> Self {
        Self {
            database: map.database.to_string(),
            table: map.table.to_string(),
            map,
            column_names,
        }
    }

    /// The key of column `i`: its name, or its index as text.
    pub fn column_key(&self, i: usize) -> String {
        self.column_names
            .as_ref()
            .and_then(|n| n.get(i).cloned())
            .unwrap_or_else(|| i.to_string())
    }
}

/// Where an event sits: binlog file name and the offset *after* the event (the header's
/// `log_pos`, which is what a replica resumes from).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Position {
    /// Binlog file name ("" until a ROTATE or [`EngineConfig::with_file_name`] names it).
    pub file: Arc<str>,
    /// Offset after the event.
    pub offset: u64,
}

/// One row change. Its row images stay as the rows event's bytes (shared by all the rows of
/// that event) until [`ChangeEvent::before`] / [`ChangeEvent::after`] decode them, borrowing
/// from the event: no value is copied until a consumer asks for it. The engine decoded every
/// value once already, so decoding again does not fail on well-formed input.
///
/// What the rows of one rows event have in common (table, timestamp, position, GTID,
/// statement, the event's bytes) is kept once, behind one reference count, and read through
/// accessors: a change event is small to move and costs one reference-count update to make
/// and to drop, whichever thread drops it.
#[derive(Clone)]
pub struct ChangeEvent {
    kind: ChangeKind,
    shared: Arc<RowsShared>,
    images: Images,
}

/// What every change event of one rows event shares.
#[derive(Debug)]
struct RowsShared {
    table: Arc<TableInfo>,
    timestamp: u32,
    position: Position,
    gtid: Option<Arc<str>>,
    statement: Option<Arc<str>>,
    /// Event type code and offset of the rows event (for decode errors).
    type_code: u8,
    offset: u64,
    max_alloc: usize,
    /// The rows event (owned bytes) when images are decoded on demand; `None` when every
    /// image was decoded already.
    event: Option<RowsEvent<'static>>,
}

/// Where a change event's row images are.
#[derive(Debug, Clone)]
enum Images {
    /// Ranges of the shared rows event's bytes, decoded on demand.
    Lazy {
        before: Option<Range<usize>>,
        after: Option<Range<usize>>,
    },
    /// Decoded already (asked for, or partial JSON updates, whose after image needs the before
    /// image).
    Owned {
        before: Option<Row<'static>>,
        after: Option<Row<'static>>,
        /// `row_bytes` of both, counted once when they were made.
        bytes: usize,
    },
}

impl Images {
    /// Images decoded already, their size counted once.
    fn owned(before: Option<Row<'static>>, after: Option<Row<'static>>) -> Self {
        let bytes = row_bytes(&before) + row_bytes(&after);
        Self::Owned {
            before,
            after,
            bytes,
        }
    }
}

impl ChangeEvent {
    /// INSERT / UPDATE / DELETE.
    pub fn kind(&self) -> ChangeKind {
        self.kind
    }

    /// The table (names, column metadata).
    pub fn table(&self) -> &Arc<TableInfo> {
        &self.shared.table
    }

    /// Header timestamp of the rows event (seconds since the epoch).
    pub fn timestamp(&self) -> u32 {
        self.shared.timestamp
    }

    /// Position after the rows event.
    pub fn position(&self) -> &Position {
        &self.shared.position
    }

    /// The transaction's GTID (`uuid[:tag]:n` or MariaDB `d-s-n`), when it has one. Every
    /// event of a transaction shares one allocation (compare with [`Arc::ptr_eq`] to tell
    /// transactions apart cheaply).
    pub fn gtid(&self) -> Option<&Arc<str>> {
        self.shared.gtid.as_ref()
    }

    /// The statement that produced the row (MariaDB ANNOTATE_ROWS / MySQL ROWS_QUERY), if
    /// logged.
    pub fn statement(&self) -> Option<&Arc<str>> {
        self.shared.statement.as_ref()
    }

    /// The before image (UPDATE, DELETE; `None` for INSERT), decoded from the rows event's
    /// bytes on each call; absent columns (`binlog_row_image=MINIMAL/NOBLOB`) are `None`.
    pub fn before(&self) -> Result<Option<Row<'_>>, EngineError> {
        self.image(false)
    }

    /// The after image (INSERT, UPDATE; `None` for DELETE), decoded on each call.
    pub fn after(&self) -> Result<Option<Row<'_>>, EngineError> {
        self.image(true)
    }

    /// Whether the event has a before image (UPDATE, DELETE), without decoding it.
    pub fn has_before(&self) -> bool {
        match &self.images {
            Images::Lazy { before, .. } => before.is_some(),
            Images::Owned { before, .. } => before.is_some(),
        }
    }

    /// Whether the event has an after image (INSERT, UPDATE), without decoding it.
    pub fn has_after(&self) -> bool {
        match &self.images {
            Images::Lazy { after, .. } => after.is_some(),
            Images::Owned { after, .. } => after.is_some(),
        }
    }

    /// The images when they are decoded already ([`EngineConfig::with_decoded_images`], or a
    /// partial JSON update): references, no work. `None` when they are still bytes (then use
    /// [`Self::before`] / [`Self::after`]).
    pub fn decoded_images(&self) -> Option<(Option<&Row<'static>>, Option<&Row<'static>>)> {
        match &self.images {
            Images::Owned { before, after, .. } => Some((before.as_ref(), after.as_ref())),
            Images::Lazy { .. } => None,
        }
    }

    /// Decode images that are still bytes and keep them decoded, so that
    /// [`Self::decoded_images`] returns them without work afterwards (a no-op when they are
    /// decoded already). Call it where decoding is cheapest for you, e.g. on a helper thread
    /// before the event reaches its consumer. On error the event is left as it was.
    /// [`Self::approx_size`] then counts the decoded values instead of the byte ranges.
    pub fn decode_images(&mut self) -> Result<(), EngineError> {
        if let Images::Lazy { .. } = self.images {
            let (before, after) = self.to_owned_images()?;
            self.images = Images::owned(before, after);
        }
        Ok(())
    }

    /// Both images, decoded and owned (copies every borrowed value).
    pub fn to_owned_images(
        &self,
    ) -> Result<(Option<Row<'static>>, Option<Row<'static>>), EngineError> {
        Ok((self.before()?.map(own_row), self.after()?.map(own_row)))
    }

    fn image(&self, after: bool) -> Result<Option<Row<'_>>, EngineError> {
        match &self.images {
            Images::Lazy {
                before: b,
                after: a,
            } => {
                let Some(span) = (if after { a } else { b }) else {
                    return Ok(None);
                };
                let rows = &*self.shared;
                let decode_error = |kind| {
                    EngineError::Decode(DecodeError::new(kind, Some(rows.type_code), rows.offset))
                };
                // Lazy images always come with their rows event (see `Engine::rows`).
                let Some(event) = &rows.event else {
                    return Err(decode_error(crate::error::malformed(
                        "row image without its rows event",
                    )));
                };
                event
                    .image_at(&rows.table.map, span.clone(), after, rows.max_alloc)
                    .map(Some)
                    .map_err(decode_error)
            }
            Images::Owned {
                before, after: a, ..
            } => {
                let row = if after { a } else { before };
                Ok(row.as_ref().map(|r| Row {
                    values: r
                        .values
                        .iter()
                        .map(|v| v.as_ref().map(Value::borrowed))
                        .collect(),
                }))
            }
        }
    }

    /// A rough size of the event in memory (what the engine's and the drivers' byte-bounded
    /// queues count for it): a fixed part, the bytes of its images and 16 per column.
    pub fn approx_size(&self) -> usize {
        96 + self.image_bytes()
    }

    fn image_bytes(&self) -> usize {
        match &self.images {
            Images::Lazy { before, after } => {
                let columns = self.shared.event.as_ref().map_or(0, |e| e.column_count);
                [before, after]
                    .into_iter()
                    .flatten()
                    .map(|r| r.len() + 16 * columns)
                    .sum()
            }
            Images::Owned { bytes, .. } => *bytes,
        }
    }
}

impl fmt::Debug for ChangeEvent {
    /// The images decoded (not the rows event's bytes); a decode error is shown in place.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeEvent")
            .field("kind", &self.kind)
            .field("database", &self.table().database)
            .field("table", &self.table().table)
            .field("before", &self.before())
            .field("after", &self.after())
            .field("timestamp", &self.timestamp())
            .field("position", self.position())
            .field("gtid", &self.gtid())
            .field("statement", &self.statement())
            .finish()
    }
}

impl PartialEq for ChangeEvent {
    /// Equal when everything, the decoded row values included, is equal (two events decoded
    /// from different bytes compare by value).
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.table() == other.table()
            && self.timestamp() == other.timestamp()
            && self.position() == other.position()
            && self.gtid() == other.gtid()
            && self.statement() == other.statement()
            && self.before().map_err(drop) == other.before().map_err(drop)
            && self.after().map_err(drop) == other.after().map_err(drop)
    }
}

/// A statement the engine saw that is not a row change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementEvent {
    /// Whether it changes schema (CREATE / ALTER / DROP / RENAME / TRUNCATE …).
    pub is_ddl: bool,
    /// Default database of the statement.
    pub database: String,
    /// Statement text.
    pub statement: String,
    /// Header timestamp.
    pub timestamp: u32,
    /// Position after the event.
    pub position: Position,
    /// The transaction's GTID, when it has one.
    pub gtid: Option<Arc<str>>,
}

/// What [`Engine::poll_event`] hands out.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EngineEvent {
    /// A row change.
    Change(ChangeEvent),
    /// A DDL statement, or a statement-based DML statement (which cannot be turned into row
    /// changes: the server logged the SQL, not the rows). Boxed: statements are rare, and a
    /// row change, moved through the queues many times, stays small.
    Statement(Box<StatementEvent>),
}

impl EngineEvent {
    /// A rough size of the event in memory (what the engine's and the drivers' byte-bounded
    /// queues count).
    pub fn approx_size(&self) -> usize {
        match self {
            Self::Change(c) => c.approx_size(),
            Self::Statement(s) => 64 + s.statement.len(),
        }
    }
}

/// The executed-GTID part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GtidCheckpoint {
    /// No GTIDs seen.
    #[default]
    None,
    /// MySQL GTID set.
    Mysql(MysqlGtidSet),
    /// MariaDB GTID position.
    Maria(MariaGtidPos),
}

impl fmt::Display for GtidCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => Ok(()),
            Self::Mysql(s) => s.fmt(f),
            Self::Maria(p) => p.fmt(f),
        }
    }
}

/// A resume point: valid at a transaction boundary, after every earlier change was handed out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// Binlog file and offset to resume from.
    pub position: Position,
    /// Executed GTIDs (including the PREVIOUS_GTIDS / GTID_LIST the stream started with).
    pub gtid: GtidCheckpoint,
}

/// A source of column names for tables whose TABLE_MAP carries none (`binlog_row_metadata=MINIMAL`
/// or pre-8.0 servers). The drivers plug a side connection in.
pub trait SchemaSource {
    /// Columns of `database.table` in table order, or `Ok(None)` when unknown.
    fn columns(&mut self, database: &str, table: &str)
    -> Result<Option<Vec<ColumnSchema>>, String>;
}

/// One column as a schema source reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSchema {
    /// Column name.
    pub name: String,
    /// `information_schema.COLUMNS.DATA_TYPE` (e.g. `int`, `varchar`, `json`); empty = unchecked.
    pub data_type: String,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    decoder: DecoderConfig,
    filter: TableFilter,
    max_queue_events: usize,
    max_queue_bytes: usize,
    max_buffered_transaction_bytes: usize,
    file_name: String,
    decoded_images: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            decoder: DecoderConfig::default().with_magic(MagicMode::Auto),
            filter: TableFilter::default(),
            max_queue_events: 10_000,
            max_queue_bytes: 48 << 20,
            max_buffered_transaction_bytes: 16 << 20,
            file_name: String::new(),
            decoded_images: false,
        }
    }
}

impl EngineConfig {
    /// Decoder settings (checksums, size limits, magic handling).
    pub fn with_decoder(mut self, decoder: DecoderConfig) -> Self {
        self.decoder = decoder;
        self
    }

    /// Which tables to emit.
    pub fn with_filter(mut self, filter: TableFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Stop consuming input while this many events are queued (default 10 000; one rows event
    /// may overshoot).
    pub fn with_max_queue_events(mut self, n: usize) -> Self {
        self.max_queue_events = n.max(1);
        self
    }

    /// Stop consuming input while the queued events hold this many bytes (default 48 MiB).
    pub fn with_max_queue_bytes(mut self, n: usize) -> Self {
        self.max_queue_bytes = n.max(1);
        self
    }

    /// A transaction whose buffered changes exceed this (default 16 MiB, so a driver streaming a
    /// huge transaction stays well under 64 MiB of memory) is streamed: its
    /// changes are queued before its commit is seen, so memory stays bounded. Its rows can then
    /// be handed out before a cut-off at the end of the input; the checkpoint still only moves
    /// at the commit, so a resume re-delivers them (at-least-once, never lost).
    pub fn with_max_buffered_transaction_bytes(mut self, n: usize) -> Self {
        self.max_buffered_transaction_bytes = n;
        self
    }

    /// Decode each change event's row images when its rows event arrives and keep them as
    /// owned values (default `false`: keep the rows event's bytes and decode on
    /// [`ChangeEvent::before`] / [`ChangeEvent::after`]). Turn it on when the engine runs on a
    /// thread of its own and the consumer's thread is the scarce one (e.g. one that holds
    /// Python's GIL): the decoding then happens on the engine's thread, at the cost of a copy
    /// of every string value. `before()` / `after()` then only borrow.
    pub fn with_decoded_images(mut self, on: bool) -> Self {
        self.decoded_images = on;
        self
    }

    /// Name of the binlog file being fed (positions use it until a ROTATE names another).
    pub fn with_file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = name.into();
        self
    }
}

/// A transaction identifier for checkpoint bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TxnGtid {
    Mysql(crate::gtid::Uuid, String, u64),
    Maria(MariaGtid),
}

#[derive(Debug, Default)]
struct Txn {
    gtid: Option<TxnGtid>,
    gtid_text: Option<Arc<str>>,
    events: Vec<(EngineEvent, usize)>,
    bytes: usize,
    /// MariaDB FL_STANDALONE group: ends after its one statement.
    standalone: bool,
    /// GTIDs of XA groups resolved by this one (added to the checkpoint with it).
    resolved_gtids: Vec<TxnGtid>,
    /// Explicitly opened (GTID, BEGIN, XA START).
    open: bool,
}

#[derive(Debug)]
enum Queued {
    Event(EngineEvent, usize),
    Commit(Box<CommitMark>),
}

#[derive(Debug)]
struct CommitMark {
    /// `None` while an XA transaction prepared earlier is unresolved: the file position must
    /// not move past it (its GTID set entry is added only when it is resolved).
    position: Option<Position>,
    gtids: Vec<TxnGtid>,
}

/// An XA transaction prepared but not yet committed or rolled back.
#[derive(Debug)]
struct PreparedXa {
    xid: Vec<u8>,
    txn: Txn,
}

/// The sans-IO change-event engine.
pub struct Engine {
    config: EngineConfig,
    decoder: BinlogDecoder,
    pending: Vec<u8>,
    /// Table maps in force: the TABLE_MAP body (to spot a re-sent one) and what it says.
    tables: HashMap<u64, (Arc<[u8]>, Arc<TableInfo>)>,
    schema: Option<Box<dyn SchemaSource + Send>>,
    file: Arc<str>,
    last_offset: u64,
    txn: Txn,
    /// The event buffer of the last committed transaction, emptied, kept for the next one (a
    /// fresh buffer per transaction meant a large allocation and free per commit, which made
    /// glibc consolidate its small-chunk bins every time).
    spare_events: Vec<(EngineEvent, usize)>,
    /// Where one rows event's rows lie while they are checked (reused; cleared before use).
    spans: Vec<crate::rows::RowSpans>,
    /// One rows event's decoded images while the rest of its rows are decoded (reused; cleared
    /// before use).
    decoded: Vec<Images>,
    prepared: Vec<PreparedXa>,
    queue: VecDeque<Queued>,
    queued_events: usize,
    queued_bytes: usize,
    checkpoint: Checkpoint,
    statement: Option<Arc<str>>,
    failed: Option<EngineError>,
    /// Rows checks made elsewhere ([`SpanSource`]); consulted for top-level rows events only.
    span_source: Option<Box<dyn SpanSource>>,
    /// Inside a compressed transaction payload (its events are never checked elsewhere).
    in_payload: bool,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("file", &self.file)
            .field("offset", &self.decoder.offset())
            .field("queued_events", &self.queued_events)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

const MAX_TABLES: usize = 65_536;

impl Engine {
    /// A new engine.
    pub fn new(config: EngineConfig) -> Self {
        let file: Arc<str> = Arc::from(config.file_name.as_str());
        Self {
            decoder: BinlogDecoder::new(config.decoder.clone()),
            pending: Vec::new(),
            tables: HashMap::new(),
            schema: None,
            checkpoint: Checkpoint {
                position: Position {
                    file: file.clone(),
                    offset: 0,
                },
                gtid: GtidCheckpoint::None,
            },
            file,
            last_offset: 0,
            txn: Txn::default(),
            spare_events: Vec::new(),
            spans: Vec::new(),
            decoded: Vec::new(),
            prepared: Vec::new(),
            queue: VecDeque::new(),
            queued_events: 0,
            queued_bytes: 0,
            statement: None,
            failed: None,
            span_source: None,
            in_payload: false,
            config,
        }
    }

    /// Plug in a schema source for tables whose TABLE_MAP has no column names.
    pub fn set_schema_source(&mut self, source: Box<dyn SchemaSource + Send>) {
        self.schema = Some(source);
    }

    /// Start a new binlog file (the next `handle_input` bytes begin with its magic or first
    /// event). Positions use `name`. Call between files when decoding several in a row.
    pub fn start_file(&mut self, name: &str) {
        self.file = Arc::from(name);
        let mut cfg = self.config.decoder.clone();
        cfg = cfg.with_magic(MagicMode::Auto);
        self.decoder = BinlogDecoder::new(cfg);
        self.pending.clear();
    }

    /// The resume point: advances only when a whole transaction has been handed out.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Seed the checkpoint's file position (where a stream starts).
    pub fn set_start_position(&mut self, position: Position) {
        self.file = position.file.clone();
        self.last_offset = position.offset;
        self.checkpoint.position = position;
    }

    /// Seed the checkpoint's GTID part (the start position of a stream).
    pub fn set_start_gtid(&mut self, gtid: GtidCheckpoint) {
        self.checkpoint.gtid = gtid;
    }

    /// Number of queued events.
    pub fn queued_events(&self) -> usize {
        self.queued_events
    }

    /// Bytes held by queued events (an estimate of their decoded size).
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Whether the queue is at its limit (feeding consumes nothing until events are polled).
    pub fn is_queue_full(&self) -> bool {
        self.queued_events >= self.config.max_queue_events
            || self.queued_bytes >= self.config.max_queue_bytes
    }

    /// Clear the parser state (buffered bytes, table maps, the open transaction, the error).
    /// Already queued events stay queued.
    pub fn reset(&mut self) {
        self.decoder = BinlogDecoder::new(self.config.decoder.clone());
        self.pending.clear();
        self.tables.clear();
        self.span_source = None;
        self.txn = Txn::default();
        self.prepared.clear();
        self.statement = None;
        self.failed = None;
    }

    /// Feed bytes. Returns how many were consumed: all of them, unless the queue filled up —
    /// then poll events and feed the rest again. Partial events are kept across calls.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<usize, EngineError> {
        if let Some(e) = &self.failed {
            return Err(EngineError::Failed(Box::new(e.clone())));
        }
        let r = self.feed(data);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    /// The input ended: an error if it ended inside an event. An open transaction simply stays
    /// unfinished (its rows are not handed out; the checkpoint stays before it).
    pub fn handle_eof(&mut self) -> Result<(), EngineError> {
        if let Some(e) = &self.failed {
            return Err(EngineError::Failed(Box::new(e.clone())));
        }
        self.decoder
            .finish(&self.pending)
            .map_err(EngineError::from)
    }

    /// Pop the next event; `None` when the queue is empty.
    pub fn poll_event(&mut self) -> Option<EngineEvent> {
        self.apply_marks();
        let out = match self.queue.pop_front()? {
            Queued::Event(ev, bytes) => {
                self.queued_events -= 1;
                self.queued_bytes -= bytes;
                ev
            }
            Queued::Commit(_) => return None,
        };
        self.apply_marks();
        Some(out)
    }

    fn apply_marks(&mut self) {
        while let Some(Queued::Commit(_)) = self.queue.front() {
            if let Some(Queued::Commit(mark)) = self.queue.pop_front() {
                self.apply_commit(*mark);
            }
        }
    }

    fn apply_commit(&mut self, mark: CommitMark) {
        if let Some(position) = mark.position {
            self.checkpoint.position = position;
        }
        for g in mark.gtids {
            self.add_gtid(g);
        }
    }

    fn add_gtid(&mut self, g: TxnGtid) {
        match g {
            TxnGtid::Mysql(uuid, tag, gno) => {
                if !matches!(self.checkpoint.gtid, GtidCheckpoint::Mysql(_)) {
                    self.checkpoint.gtid = GtidCheckpoint::Mysql(MysqlGtidSet::default());
                }
                if let GtidCheckpoint::Mysql(s) = &mut self.checkpoint.gtid {
                    s.add(uuid, &tag, gno);
                }
            }
            TxnGtid::Maria(m) => {
                if !matches!(self.checkpoint.gtid, GtidCheckpoint::Maria(_)) {
                    self.checkpoint.gtid = GtidCheckpoint::Maria(MariaGtidPos::default());
                }
                if let GtidCheckpoint::Maria(p) = &mut self.checkpoint.gtid {
                    p.add(m);
                }
            }
        }
    }

    fn feed(&mut self, data: &[u8]) -> Result<usize, EngineError> {
        let mut consumed = 0usize;
        while !self.is_queue_full() {
            if self.pending.is_empty() {
                match self.decoder.decode(&data[consumed..])? {
                    Some((ev, used)) => {
                        consumed += used;
                        let fde = self.payload_fde(&ev);
                        self.process(&ev, fde.as_ref())?;
                    }
                    None => {
                        self.pending.extend_from_slice(&data[consumed..]);
                        consumed = data.len();
                        break;
                    }
                }
            } else {
                let want = self.wanted();
                let take = want.min(data.len() - consumed);
                self.pending
                    .extend_from_slice(&data[consumed..consumed + take]);
                consumed += take;
                let pending = std::mem::take(&mut self.pending);
                let result = self.decoder.decode(&pending);
                match result {
                    Ok(Some((ev, used))) => {
                        let fde = self.payload_fde(&ev);
                        let r = self.process(&ev, fde.as_ref());
                        self.pending = pending;
                        self.pending.drain(..used);
                        r?;
                    }
                    Ok(None) => {
                        self.pending = pending;
                        if consumed == data.len() {
                            break;
                        }
                    }
                    Err(e) => {
                        self.pending = pending;
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(consumed)
    }

    /// The format description a TRANSACTION_PAYLOAD's inner events need (cloned, as `process`
    /// borrows `self` mutably); None for every other event — cloning it per event cost two
    /// allocations each.
    fn payload_fde(&self, ev: &Event<'_>) -> Option<FormatDescription<'static>> {
        match ev.data {
            EventData::TransactionPayload(_) => self.decoder.format_description().cloned(),
            _ => None,
        }
    }

    /// Bytes still needed to complete the event at the start of `pending`.
    fn wanted(&self) -> usize {
        let p = &self.pending;
        let skip = if self.decoder.offset() == 0 && p.len() >= 4 && p[..4] == crate::BINLOG_MAGIC {
            4
        } else {
            0
        };
        match EventHeader::parse(&p[skip.min(p.len())..]) {
            Some(h) => (h.event_size as usize + skip)
                .saturating_sub(p.len())
                .max(1),
            None => (skip.max(if self.decoder.offset() == 0 { 4 } else { 0 }) + crate::HEADER_LEN)
                .saturating_sub(p.len())
                .max(1),
        }
    }

    fn position(&mut self, header: &EventHeader) -> Position {
        if header.log_pos != 0 {
            self.last_offset = u64::from(header.log_pos);
        }
        Position {
            file: self.file.clone(),
            offset: self.last_offset,
        }
    }

    fn process(
        &mut self,
        ev: &Event<'_>,
        fde: Option<&FormatDescription<'static>>,
    ) -> Result<(), EngineError> {
        match &ev.data {
            EventData::FormatDescription(_) if !ev.header.is_artificial() => self.tables.clear(),
            EventData::Rotate(r) => {
                self.file = Arc::from(r.next_file.as_ref());
                self.last_offset = r.position;
                if !ev.header.is_artificial() && self.txn.events.is_empty() && !self.txn.open {
                    // A real rotate is itself a transaction boundary for the file position.
                    let position = self.prepared.is_empty().then(|| Position {
                        file: self.file.clone(),
                        offset: r.position,
                    });
                    self.queue.push_back(Queued::Commit(Box::new(CommitMark {
                        position,
                        gtids: Vec::new(),
                    })));
                }
            }
            EventData::PreviousGtids(set) => {
                if let GtidCheckpoint::None = self.checkpoint.gtid {
                    let mut s = MysqlGtidSet::default();
                    s.add_set(set);
                    self.checkpoint.gtid = GtidCheckpoint::Mysql(s);
                }
            }
            EventData::MariaGtidList(list) => {
                if let GtidCheckpoint::None = self.checkpoint.gtid {
                    let mut p = MariaGtidPos::default();
                    for g in list {
                        p.add(*g);
                    }
                    self.checkpoint.gtid = GtidCheckpoint::Maria(p);
                }
            }
            EventData::Gtid(g) => {
                self.begin_group();
                if !g.is_anonymous() {
                    self.txn.gtid = Some(TxnGtid::Mysql(g.uuid, g.tag.clone(), g.gno));
                    self.txn.gtid_text = Some(Arc::from(g.to_string()));
                }
            }
            EventData::MariaGtid(g) => {
                self.begin_group();
                self.txn.gtid = Some(TxnGtid::Maria(g.gtid));
                self.txn.gtid_text = Some(Arc::from(g.gtid.to_string()));
                self.txn.standalone = g.is_standalone();
            }
            EventData::Query(q) => self.query(ev, q)?,
            EventData::Xid(_) => self.commit(ev),
            EventData::XaPrepare(x) => {
                let mut xid = x.format_id.to_le_bytes().to_vec();
                xid.extend_from_slice(x.gtrid);
                xid.push(0xff);
                xid.extend_from_slice(x.bqual);
                let txn = std::mem::take(&mut self.txn);
                self.statement = None;
                if x.one_phase {
                    // XA COMMIT ... ONE PHASE: committed right here.
                    self.txn = txn;
                    self.commit(ev);
                } else {
                    self.prepared.push(PreparedXa { xid, txn });
                }
            }
            EventData::TableMap(tm) => self.table_map(ev, tm)?,
            EventData::Rows(rows) => self.rows(ev, rows)?,
            EventData::TransactionPayload(p) => {
                let Some(fde) = fde else {
                    return Err(EngineError::Decode(DecodeError::new(
                        crate::DecodeErrorKind::MissingFormatDescription,
                        Some(40),
                        ev.offset,
                    )));
                };
                let mut inner = p.events(fde, ev.offset);
                self.in_payload = true;
                let r = (|| -> Result<(), EngineError> {
                    while let Some(mut iev) = inner.next_event()? {
                        // Inner events carry no useful log_pos: report the payload's.
                        iev.header.log_pos = ev.header.log_pos;
                        iev.header.timestamp = ev.header.timestamp;
                        self.process(&iev, Some(fde))?;
                    }
                    Ok(())
                })();
                self.in_payload = false;
                r?;
            }
            EventData::RowsQuery(q) | EventData::MariaAnnotateRows(q) => {
                self.statement = Some(Arc::from(q.as_ref()));
            }
            EventData::Incident(i) => {
                return Err(EngineError::Incident {
                    kind: i.kind,
                    message: i.message.to_string(),
                    offset: ev.offset,
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn begin_group(&mut self) {
        // A new GTID while a group is open means the open one was never committed (it cannot
        // be: GTIDs only start groups). Its buffered rows are dropped as unfinished.
        self.txn = Txn {
            open: true,
            events: self.take_spare(),
            ..Txn::default()
        };
        self.statement = None;
    }

    /// An empty event buffer for a new transaction (the previous one's allocation).
    fn take_spare(&mut self) -> Vec<(EngineEvent, usize)> {
        std::mem::take(&mut self.spare_events)
    }

    fn query(&mut self, ev: &Event<'_>, q: &Query<'_>) -> Result<(), EngineError> {
        let text = q.query_str();
        let stmt = text.trim_start();
        let upper: String = stmt
            .chars()
            .take(24)
            .collect::<String>()
            .to_ascii_uppercase();
        let word = |w: &str| {
            upper.starts_with(w)
                && upper[w.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_')
        };
        if word("BEGIN") || (word("XA") && upper[2..].trim_start().starts_with("START")) {
            if !self.txn.open {
                self.txn = Txn {
                    open: true,
                    events: self.take_spare(),
                    ..Txn::default()
                };
            }
            self.txn.open = true;
            return Ok(());
        }
        if word("COMMIT") || word("ROLLBACK") && !upper.contains(" TO ") {
            // A logged ROLLBACK only follows changes to non-transactional tables, which did
            // happen: they are delivered.
            self.commit(ev);
            return Ok(());
        }
        if word("SAVEPOINT") || word("ROLLBACK") || word("RELEASE") {
            return Ok(());
        }
        if word("XA") {
            let rest = upper[2..].trim_start();
            if rest.starts_with("END") {
                return Ok(());
            }
            let commit = rest.starts_with("COMMIT");
            let rollback = rest.starts_with("ROLLBACK");
            if commit || rollback {
                let key = parse_xa_xid(stmt);
                let idx = key.and_then(|k| self.prepared.iter().position(|p| p.xid == k));
                let prepared = idx.map(|i| self.prepared.remove(i));
                let mut txn = std::mem::take(&mut self.txn);
                if let Some(p) = prepared {
                    // The prepared group's GTID counts as executed together with this one.
                    txn.resolved_gtids.extend(p.txn.gtid.clone());
                    if commit {
                        let mut events = p.txn.events;
                        events.append(&mut txn.events);
                        txn.events = events;
                        txn.bytes += p.txn.bytes;
                    }
                }
                self.txn = txn;
                self.commit(ev);
                return Ok(());
            }
        }
        // Any other statement: DDL or statement-based DML. Surface it.
        let is_ddl = [
            "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE", "GRANT", "REVOKE", "ANALYZE",
            "OPTIMIZE", "REPAIR",
        ]
        .iter()
        .any(|w| word(w));
        let database = q.schema_str().into_owned();
        if self.allows_statement(&database, stmt) {
            let position = self.position(&ev.header);
            let sev = StatementEvent {
                is_ddl,
                database,
                statement: stmt.to_owned(),
                timestamp: ev.header.timestamp,
                position,
                gtid: self.txn.gtid_text.clone(),
            };
            let ev = EngineEvent::Statement(Box::new(sev));
            let bytes = ev.approx_size();
            self.txn.events.push((ev, bytes));
            self.txn.bytes += bytes;
        }
        if is_ddl {
            // DDL tables may change: drop cached maps (servers re-send them anyway).
            self.tables.clear();
        }
        if !self.txn.open || self.txn.standalone || is_ddl {
            self.commit(ev);
        }
        Ok(())
    }

    fn allows_statement(&self, database: &str, statement: &str) -> bool {
        // Statements have no table; apply the database part of the filter to the default
        // database and to every database the statement names (`ALTER TABLE db.t` issued from
        // another database concerns `db`).
        self.config.filter.allows_database(database)
            || qualified_databases(statement)
                .iter()
                .any(|db| self.config.filter.allows_database(db))
    }

    fn commit(&mut self, ev: &Event<'_>) {
        let position = self.position(&ev.header);
        let mut txn = std::mem::take(&mut self.txn);
        self.statement = None;
        for (e, bytes) in txn.events.drain(..) {
            self.queued_events += 1;
            self.queued_bytes += bytes;
            self.queue.push_back(Queued::Event(e, bytes));
        }
        // Keep the buffer unless a huge transaction made it big.
        if txn.events.capacity() <= 16_384 {
            self.spare_events = txn.events;
        }
        let position = self.prepared.is_empty().then_some(position);
        self.queue.push_back(Queued::Commit(Box::new(CommitMark {
            position,
            gtids: txn.gtid.into_iter().collect(),
        })));
    }

    fn table_map(&mut self, ev: &Event<'_>, tm: &TableMap<'_>) -> Result<(), EngineError> {
        let body = &ev.raw[crate::HEADER_LEN..];
        if let Some((raw, _)) = self.tables.get(&tm.table_id) {
            if raw.as_ref() == body {
                return Ok(());
            }
        }
        let map = tm.clone().into_owned();
        let column_names = if map.has_column_names() {
            Some(
                map.columns
                    .iter()
                    .map(|c| c.name.as_deref().unwrap_or_default().to_owned())
                    .collect(),
            )
        } else if let Some(src) = self.schema.as_mut() {
            let db = map.database.to_string();
            let table = map.table.to_string();
            match src.columns(&db, &table) {
                Ok(Some(cols)) => {
                    check_schema(&map, &cols).map_err(|what| EngineError::SchemaMismatch {
                        database: db.clone(),
                        table: table.clone(),
                        what,
                        offset: ev.offset,
                    })?;
                    Some(cols.into_iter().map(|c| c.name).collect())
                }
                Ok(None) => None,
                Err(message) => {
                    return Err(EngineError::SchemaSource {
                        database: db,
                        table,
                        message,
                    });
                }
            }
        } else {
            None
        };
        if self.tables.len() >= MAX_TABLES {
            self.tables.clear();
        }
        let info = TableInfo::new(map, column_names);
        self.tables
            .insert(tm.table_id, (Arc::from(body), Arc::new(info)));
        Ok(())
    }

    /// The allocation limit rows are checked and decoded with.
    fn max_alloc(&self) -> usize {
        self.config.max_buffered_transaction_bytes.max(1 << 30)
    }

    fn rows(&mut self, ev: &Event<'_>, rows: &RowsEvent<'_>) -> Result<(), EngineError> {
        let Some((_, table)) = self.tables.get(&rows.table_id) else {
            return Err(EngineError::UnknownTable {
                table_id: rows.table_id,
                offset: ev.offset,
            });
        };
        let table = table.clone();
        let position = self.position(&ev.header);
        if self.config.filter.allows(&table.database, &table.table) {
            let kind = match rows.kind {
                RowsKind::Write => ChangeKind::Insert,
                RowsKind::Update | RowsKind::PartialUpdate => ChangeKind::Update,
                RowsKind::Delete => ChangeKind::Delete,
            };
            let max_alloc = self.max_alloc();
            // Decoded now: asked for, or a partial JSON update (its after image needs the
            // before image's JSON). Else only checked, possibly elsewhere (see `spans`).
            let decode_now = rows.kind == RowsKind::PartialUpdate || self.config.decoded_images;
            let scanned = if decode_now || self.in_payload {
                None
            } else {
                self.scanned(ev.offset, rows)
            };
            let err = |kind| DecodeError::new(kind, Some(ev.header.type_code), ev.offset);
            let txn = &mut self.txn;
            // One shared part per rows event, made once its rows have all decoded.
            let shared = |event| {
                Arc::new(RowsShared {
                    table: table.clone(),
                    timestamp: ev.header.timestamp,
                    position: position.clone(),
                    gtid: txn.gtid_text.clone(),
                    statement: self.statement.clone(),
                    type_code: ev.header.type_code,
                    offset: ev.offset,
                    max_alloc,
                    event,
                })
            };
            let push = |txn: &mut Txn, shared: &Arc<RowsShared>, images| {
                let ev = EngineEvent::Change(ChangeEvent {
                    kind,
                    shared: shared.clone(),
                    images,
                });
                let bytes = ev.approx_size();
                txn.events.push((ev, bytes));
                txn.bytes += bytes;
            };
            if decode_now {
                // Every row is decoded before any is queued: a rows event that fails part-way
                // queues none of its rows.
                let decoded = &mut self.decoded;
                decoded.clear();
                for change in rows.rows(&table.map).with_max_alloc(max_alloc) {
                    let change = change.map_err(err)?;
                    decoded.push(Images::owned(
                        change.before.map(own_row),
                        change.after.map(own_row),
                    ));
                }
                if !decoded.is_empty() {
                    let shared = shared(None);
                    for images in decoded.drain(..) {
                        push(txn, &shared, images);
                    }
                }
            } else {
                // Every row is checked before any is queued, so the rows bytes are copied once
                // and only for an event that decodes.
                let spans = &mut self.spans;
                match scanned {
                    // Checked elsewhere (see `spans`): the same rows, the same table map.
                    Some(s) => *spans = s,
                    None => rows.check_rows(&table.map, max_alloc, spans).map_err(err)?,
                }
                if !spans.is_empty() {
                    let shared = shared(Some(rows.clone().into_owned()));
                    for s in spans.drain(..) {
                        push(
                            txn,
                            &shared,
                            Images::Lazy {
                                before: s.before,
                                after: s.after,
                            },
                        );
                    }
                }
            }
        }
        if !self.txn.open && rows.is_stmt_end() {
            // Rows outside any BEGIN/GTID group (very old servers): the statement is the unit.
            self.commit(ev);
        } else if self.txn.bytes > self.config.max_buffered_transaction_bytes {
            // Stream a huge transaction: queue what we have; the commit mark comes later.
            // Drained, not taken: the vector keeps its capacity for the next rows event.
            self.txn.bytes = 0;
            for (e, bytes) in self.txn.events.drain(..) {
                self.queued_events += 1;
                self.queued_bytes += bytes;
                self.queue.push_back(Queued::Event(e, bytes));
            }
        }
        Ok(())
    }
}

/// Database names a statement qualifies objects with: `db.t` or `` `db`.`t` ``.
fn qualified_databases(stmt: &str) -> Vec<String> {
    let b = stmt.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let (name, end) = if b[i] == b'`' {
            match stmt[i + 1..].find('`') {
                Some(n) => (&stmt[i + 1..i + 1 + n], i + 2 + n),
                None => break,
            }
        } else if b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' {
            let n = b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'$')
                .count();
            (&stmt[i..i + n], i + n)
        } else {
            i += 1;
            continue;
        };
        if b.get(end) == Some(&b'.')
            && !name.is_empty()
            && !name.bytes().all(|c| c.is_ascii_digit())
        {
            out.push(name.to_owned());
        }
        i = end.max(i + 1);
    }
    out
}

fn own_row(r: Row<'_>) -> Row<'static> {
    Row {
        values: r
            .values
            .into_iter()
            .map(|v| v.map(Value::into_owned))
            .collect(),
    }
}

fn row_bytes(r: &Option<Row<'static>>) -> usize {
    r.as_ref().map_or(0, |r| {
        r.values
            .iter()
            .map(|v| {
                16 + match v {
                    Some(Value::String { bytes, .. }) | Some(Value::Bytes(bytes)) => bytes.len(),
                    Some(Value::Geometry(b)) | Some(Value::Vector(b)) => b.len(),
                    Some(Value::Json(crate::value::JsonValue::Binary(b))) => b.len(),
                    _ => 0,
                }
            })
            .sum()
    })
}

/// The XID of an `XA COMMIT` / `XA ROLLBACK` statement, in the key form used for
/// XA_PREPARE events: format id (LE), gtrid, 0xff, bqual. Accepts `'text'`, `X'hex'` and
/// `0xhex` parts, with optional bqual and format id (default 1).
fn parse_xa_xid(stmt: &str) -> Option<Vec<u8>> {
    let mut s = stmt.trim_start();
    for word in ["XA", "COMMIT", "ROLLBACK"] {
        if s.get(..word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
        {
            s = s[word.len()..].trim_start();
        }
    }
    fn part(s: &str) -> Option<(Vec<u8>, &str)> {
        let s = s.trim_start();
        let hex = |h: &str| -> Option<Vec<u8>> {
            if h.len() % 2 != 0 || !h.is_ascii() {
                return None;
            }
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).ok())
                .collect()
        };
        if let Some(rest) = s.strip_prefix("X'").or_else(|| s.strip_prefix("x'")) {
            let end = rest.find('\'')?;
            return Some((hex(&rest[..end])?, &rest[end + 1..]));
        }
        if let Some(rest) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            let end = rest
                .find(|c: char| !c.is_ascii_hexdigit())
                .unwrap_or(rest.len());
            return Some((hex(&rest[..end])?, &rest[end..]));
        }
        let q = s.chars().next()?;
        if q == '\'' || q == '"' {
            let rest = &s[1..];
            let end = rest.find(q)?;
            return Some((rest.as_bytes()[..end].to_vec(), &rest[end + 1..]));
        }
        None
    }
    let (gtrid, rest) = part(s)?;
    let mut bqual = Vec::new();
    let mut format_id: i32 = 1;
    let mut rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix(',') {
        let (b, r2) = part(r)?;
        bqual = b;
        rest = r2.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            let digits: String = r
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect();
            format_id = digits.parse().ok()?;
        }
    }
    let mut xid = format_id.to_le_bytes().to_vec();
    xid.extend_from_slice(&gtrid);
    xid.push(0xff);
    xid.extend_from_slice(&bqual);
    Some(xid)
}

/// Refuse a schema whose column count or types disagree with the TABLE_MAP.
fn check_schema(map: &TableMap<'_>, cols: &[ColumnSchema]) -> Result<(), String> {
    if cols.len() != map.columns.len() {
        return Err(format!(
            "schema source has {} columns, TABLE_MAP has {}",
            cols.len(),
            map.columns.len()
        ));
    }
    for (i, (c, def)) in cols.iter().zip(&map.columns).enumerate() {
        if c.data_type.is_empty() {
            continue;
        }
        if !type_compatible(&c.data_type.to_ascii_lowercase(), def.column_type) {
            return Err(format!(
                "column {i} `{}` is `{}` in the schema but {:?} in the TABLE_MAP",
                c.name, c.data_type, def.column_type
            ));
        }
    }
    Ok(())
}

fn type_compatible(data_type: &str, t: ColumnType) -> bool {
    use ColumnType as C;
    let base = data_type.split(['(', ' ']).next().unwrap_or_default();
    match base {
        "tinyint" | "bool" | "boolean" => t == C::Tiny,
        "smallint" => t == C::Short,
        "mediumint" => t == C::Int24,
        "int" | "integer" => t == C::Long,
        "bigint" => t == C::LongLong,
        "float" => t == C::Float,
        "double" | "real" => t == C::Double,
        "decimal" | "numeric" | "dec" | "fixed" => matches!(t, C::NewDecimal | C::Decimal),
        "date" => matches!(t, C::Date | C::NewDate),
        "time" => matches!(t, C::Time | C::Time2),
        "datetime" => matches!(t, C::DateTime | C::DateTime2),
        "timestamp" => matches!(t, C::Timestamp | C::Timestamp2),
        "year" => t == C::Year,
        "char" | "binary" | "inet6" | "uuid" | "inet4" => matches!(t, C::String | C::VarString),
        "varchar" | "varbinary" => matches!(t, C::VarChar | C::VarString | C::VarCharCompressed),
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob"
        | "longblob" => {
            matches!(t, C::Blob | C::BlobCompressed)
        }
        "json" => matches!(t, C::Json | C::Blob),
        "enum" => t == C::Enum,
        "set" => t == C::Set,
        "bit" => t == C::Bit,
        "vector" => t == C::Vector,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => t == C::Geometry,
        // Unknown type names are not refused: the server may have types this table lacks.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xa_xids() {
        let mut a = 1i32.to_le_bytes().to_vec();
        a.extend_from_slice(b"abc\xffxy");
        assert_eq!(parse_xa_xid("XA COMMIT 'abc','xy'"), Some(a.clone()));
        assert_eq!(parse_xa_xid("XA COMMIT X'616263',X'7879',1"), Some(a));
        let mut b = 7i32.to_le_bytes().to_vec();
        b.extend_from_slice(b"xa-1\xff");
        assert_eq!(parse_xa_xid("xa rollback 'xa-1','',7"), Some(b));
        assert_eq!(parse_xa_xid("XA COMMIT"), None);
        // Regression: multi-byte text must not be sliced inside a character.
        assert_eq!(parse_xa_xid("Xé COMMIT X'é1'"), None);
        assert_eq!(parse_xa_xid("XA COMMIT X'éé'"), None);
    }

    #[test]
    fn qualified_names() {
        assert_eq!(
            qualified_databases("ALTER TABLE shop.orders ADD c INT"),
            ["shop"]
        );
        assert_eq!(
            qualified_databases("RENAME TABLE `a b`.`t` TO x.`u`"),
            ["a b", "x"]
        );
        assert!(qualified_databases("UPDATE t SET v = 1.5").is_empty());
        assert!(qualified_databases("CREATE TABLE t (c CHAR(3))").is_empty());
    }

    #[test]
    fn schema_checks() {
        assert!(type_compatible("int", ColumnType::Long));
        assert!(!type_compatible("varchar", ColumnType::Long));
        assert!(type_compatible("decimal(10,2)", ColumnType::NewDecimal));
    }
}
