//! Blocking driver: stream a live MySQL / MariaDB server's change events with `std::net` and one
//! reader thread — no tokio.
//!
//! The reader thread moves bytes between a `TcpStream` and the sans-IO
//! [`mysql_repl_proto::Connection`], feeds the binlog events to the change-event
//! [`Engine`](mysql_binlog_codec::engine::Engine), and hands change events to the consumer
//! through a queue bounded by count and by bytes: a slow consumer stops the reader, whose socket
//! then stops being read, so the server is throttled by TCP instead of the connection being
//! lost. Events travel in batches of up to 256 (sent before the reader would block), and the
//! consumer gives their room back every 32 events and whenever it has taken all it received:
//! the queue never holds more than its limits, but a waiting reader may be let go up to 31
//! events late. Network failures reconnect with capped, jittered backoff and resume from the last
//! transaction boundary the reader finished, so committed transactions are delivered at least
//! once, and never half.
//!
//! [`RawBinlogStream`] is the same driver for consumers that decode binlog events themselves:
//! it hands out every event undecoded ([`RawEvent`]: header, bytes, binlog file and offset) and
//! resumes by file and offset right after the last event it queued.
//!
//! Logs go through [`tracing`] (target `mes_blocking`; rotation and lag lines `mes_blocking::obs`):
//! INFO on connect (host, port, TLS on / verified, auth plugin, server version, flavor, start
//! position), on each reconnect attempt (reason, delay, resume position), on reconnecting, on
//! binlog rotation and at the end or stop; WARN when a connection is lost; ERROR on a fatal
//! error; DEBUG for the replication lag (at most every 5 s). Passwords, auth data and packets
//! are never logged. The driver's background work logs to the subscriber that was current
//! when the stream was started.
//!
//! ```no_run
//! use mes_blocking::{BinlogStream, StreamConfig};
//! use mysql_repl_proto::ConnectConfig;
//!
//! let config = StreamConfig::new("127.0.0.1", 3306, ConnectConfig {
//!     user: "repl".into(),
//!     password: "secret".into(),
//!     ..ConnectConfig::default()
//! });
//! let mut stream = BinlogStream::start(config).expect("connect");
//! for event in stream.by_ref().take(10) {
//!     let event = event.expect("stream");
//!     println!("{event:?}");
//! }
//! // Persist this and pass it back as the start position to resume after a restart.
//! println!("resume from {}", stream.checkpoint_string());
//! stream.stop();
//! ```

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mysql_binlog_codec::engine::{
    Checkpoint, EngineConfig, EngineEvent, GtidCheckpoint, Position, SchemaSource,
};
pub use mysql_repl_proto::ServerInfo;
use mysql_repl_proto::{ConnEvent, ConnectConfig, Connection, Output, ProtoError, StartPosition};
use session::{Mode, Out};

#[doc(hidden)]
pub mod session;

mod raw;
pub use raw::RawEvent;

/// Helpers shared by the drivers' structured logs (`tracing`): a start position as text, binlog
/// rotation detection and a rate-limited replication-lag report. Not a stable API.
#[doc(hidden)]
pub mod obs {
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use mysql_binlog_codec::engine::{Checkpoint, EngineEvent, Position};
    use mysql_repl_proto::StartPosition;

    /// How often the lag is logged at most.
    pub const LAG_EVERY: Duration = Duration::from_secs(5);

    /// A start position as text (`current`, `file:<name>:<offset>`, `gtid:<set>`,
    /// `mariadb:<pos>`); never anything secret.
    pub fn describe_start(start: &StartPosition) -> String {
        match start {
            StartPosition::Current => "current".into(),
            StartPosition::FilePosition { file, position } => format!("file:{file}:{position}"),
            StartPosition::MysqlGtidSet(s) => format!("gtid:{s}"),
            StartPosition::MariaGtid(p) => format!("mariadb:{p}"),
            other => format!("{other:?}"),
        }
    }

    /// Logs binlog rotations (the checkpoint's file changes) and, at debug level and at most
    /// every [`LAG_EVERY`], the lag behind the last change event's timestamp.
    #[derive(Default)]
    pub struct StreamLog {
        file: Option<Arc<str>>,
        last_lag: Option<Instant>,
    }

    impl StreamLog {
        /// A checkpoint was reached: log a rotation when its binlog file changed.
        pub fn checkpoint(&mut self, cp: &Checkpoint) {
            self.position(&cp.position);
        }

        /// The stream reached `position`: log a rotation when its binlog file changed.
        pub fn position(&mut self, position: &Position) {
            let file = &position.file;
            if file.is_empty() || self.file.as_deref() == Some(&**file) {
                return;
            }
            match self.file.replace(file.clone()) {
                Some(from) => tracing::info!(
                    from = %from,
                    to = %file,
                    offset = position.offset,
                    "binlog rotated"
                ),
                None => tracing::debug!(file = %file, offset = position.offset, "binlog file"),
            }
        }

        /// A change event was handed on: log the lag now and then.
        pub fn event(&mut self, ev: &EngineEvent) {
            match ev {
                EngineEvent::Change(c) => self.timestamp(c.timestamp()),
                EngineEvent::Statement(s) => self.timestamp(s.timestamp),
                _ => {}
            }
        }

        /// An event written at `ts` (seconds since the epoch; 0 = unknown) was handed on: log
        /// the lag now and then.
        pub fn timestamp(&mut self, ts: u32) {
            if ts == 0 || !tracing::enabled!(tracing::Level::DEBUG) {
                return;
            }
            let now = Instant::now();
            if self
                .last_lag
                .is_some_and(|t| now.duration_since(t) < LAG_EVERY)
            {
                return;
            }
            self.last_lag = Some(now);
            let unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let lag_secs = i64::try_from(unix).unwrap_or(i64::MAX) - i64::from(ts);
            tracing::debug!(lag_secs, event_timestamp = ts, "replication lag");
        }
    }
}

/// Errors of the blocking driver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// TCP connect or I/O failure.
    #[error("I/O error talking to {addr}: {message}")]
    Io {
        /// Server address.
        addr: String,
        /// The OS message.
        message: String,
    },
    /// The protocol layer failed (auth, TLS, configuration, server error, timeout …).
    #[error(transparent)]
    Proto(#[from] ProtoError),
    /// The change-event engine failed (decode error, unknown table, INCIDENT …).
    #[error(transparent)]
    Engine(#[from] mysql_binlog_codec::engine::EngineError),
    /// Reconnecting failed too many times; the last error is attached.
    #[error("gave up after {attempts} reconnect attempts; last error: {last}")]
    ReconnectExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<StreamError>,
    },
}

impl StreamError {
    /// Whether reconnecting may help (network failures, timeouts, a server shutting down), as
    /// opposed to errors that would repeat (credentials, configuration, decode errors).
    pub fn retryable(&self) -> bool {
        match self {
            Self::Io { .. } => true,
            Self::Proto(p) => p.is_retryable(),
            _ => false,
        }
    }
}

/// How the reconnect delay grows with the attempt number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backoff {
    /// `base_delay * 2^(n-1)` before attempt `n`.
    #[default]
    Doubling,
    /// `base_delay * n` before attempt `n` (the Python package's documented policy with a
    /// 1 s base and a 10 s cap).
    Linear,
}

/// Reconnection policy. The delay before attempt `n` is [`Reconnect::delay_before`] times a
/// uniform random factor in [0.5, 1). The attempt counter resets once the new connection
/// delivers something, so a connection that keeps failing right after connecting backs off
/// further instead of starting over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconnect {
    /// Attempts after a failure (0 disables reconnection).
    pub max_attempts: u32,
    /// Delay before the first attempt.
    pub base_delay: Duration,
    /// Cap of the delay.
    pub max_delay: Duration,
    /// How the delay grows.
    pub backoff: Backoff,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            backoff: Backoff::Doubling,
        }
    }
}

impl Reconnect {
    /// The delay before attempt `attempt` (1-based), before jitter, capped at `max_delay`.
    pub fn delay_before(&self, attempt: u32) -> Duration {
        let n = attempt.max(1);
        let d = match self.backoff {
            Backoff::Doubling => self
                .base_delay
                .checked_mul(1u32.checked_shl(n - 1).unwrap_or(u32::MAX))
                .unwrap_or(self.max_delay),
            Backoff::Linear => self.base_delay.checked_mul(n).unwrap_or(self.max_delay),
        };
        d.min(self.max_delay)
    }

    /// [`Reconnect::delay_before`] with the jitter applied (`factor` in [0, 1) maps to
    /// [0.5, 1)).
    pub fn jittered_delay(&self, attempt: u32, factor: f64) -> Duration {
        self.delay_before(attempt)
            .mul_f64(0.5 + factor.clamp(0.0, 1.0) * 0.5)
    }
}

/// Everything the stream needs.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Protocol settings (credentials, TLS, server id, start position, timeouts).
    pub connect: ConnectConfig,
    /// Engine settings (filters, queue limits inside the engine).
    pub engine: EngineConfig,
    /// Queue between the reader thread and the consumer: at most this many events…
    pub queue_events: usize,
    /// …and at most about this many bytes.
    pub queue_bytes: usize,
    /// Reconnection policy.
    pub reconnect: Reconnect,
    /// Name columns from `information_schema` over a side connection when a TABLE_MAP carries
    /// no names (`binlog_row_metadata=MINIMAL`, pre-8.0 servers). Opened only when needed.
    pub schema_lookup: bool,
}

impl StreamConfig {
    /// Defaults for `host:port` with the given protocol settings.
    pub fn new(host: &str, port: u16, connect: ConnectConfig) -> Self {
        let mut connect = connect;
        connect.host = host.to_owned();
        Self {
            host: host.to_owned(),
            port,
            connect,
            engine: EngineConfig::default(),
            queue_events: 10_000,
            queue_bytes: 48 << 20,
            reconnect: Reconnect::default(),
            schema_lookup: true,
        }
    }
}

/// The checkpoint as a string a user can persist and pass back:
/// `gtid:<MySQL set>`, `mariadb:<d-s-n,…>` or `file:<name>:<offset>`.
pub fn checkpoint_to_string(cp: &Checkpoint) -> String {
    match &cp.gtid {
        GtidCheckpoint::Mysql(s) if !s.is_empty() => format!("gtid:{s}"),
        GtidCheckpoint::Maria(p) if !p.is_empty() => format!("mariadb:{p}"),
        _ => format!("file:{}:{}", cp.position.file, cp.position.offset),
    }
}

/// Parse [`checkpoint_to_string`]'s form into a start position.
pub fn start_from_string(s: &str) -> Option<StartPosition> {
    if let Some(g) = s.strip_prefix("gtid:") {
        return Some(StartPosition::MysqlGtidSet(g.to_owned()));
    }
    if let Some(p) = s.strip_prefix("mariadb:") {
        return Some(StartPosition::MariaGtid(p.to_owned()));
    }
    let rest = s.strip_prefix("file:")?;
    let (file, pos) = rest.rsplit_once(':')?;
    Some(StartPosition::FilePosition {
        file: file.to_owned(),
        position: pos.parse().ok()?,
    })
}

/// Connect, authenticate, read the server's variables and start a dump (with the preflight
/// off), then close: what `mes check` reports from. Returns the server facts and the outcome of
/// starting the dump (privilege errors show up there).
pub fn probe(
    host: &str,
    port: u16,
    connect: &ConnectConfig,
) -> Result<(ServerInfo, Result<(), ProtoError>), StreamError> {
    let mut cc = connect.clone();
    cc.host = host.to_owned();
    cc.preflight = false;
    cc.stop_at_end = true;
    cc.start = StartPosition::Current;
    let addr = format!("{host}:{port}");
    let io = |e: std::io::Error| StreamError::Io {
        addr: addr.clone(),
        message: e.to_string(),
    };
    let sock_addr = (host, port)
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or_else(|| StreamError::Io {
            addr: addr.clone(),
            message: "no address".into(),
        })?;
    let mut sock = TcpStream::connect_timeout(&sock_addr, cc.connect_timeout).map_err(io)?;
    let mut conn = Connection::new(cc, Instant::now())?;
    let mut info: Option<ServerInfo> = None;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match conn.poll_output() {
            Output::Transmit(b) => sock.write_all(&b).map_err(io)?,
            Output::Event(ConnEvent::Ready(i)) => info = Some(*i),
            Output::Event(ConnEvent::Binlog { .. }) => {
                // The dump started: privileges are fine.
                if let Some(i) = info.take() {
                    conn.close();
                    while let Output::Transmit(b) = conn.poll_output() {
                        let _ = sock.write_all(&b);
                    }
                    return Ok((i, Ok(())));
                }
            }
            Output::Event(_) => {}
            Output::Closed(r) => {
                return match (info, r) {
                    (Some(i), r) => Ok((i, r)),
                    (None, Err(e)) => Err(e.into()),
                    (None, Ok(())) => Err(StreamError::Proto(ProtoError::Eof("probe"))),
                };
            }
            Output::Wait(deadline) => {
                let wait = deadline.map_or(Duration::from_secs(5), |d| {
                    d.saturating_duration_since(Instant::now())
                });
                sock.set_read_timeout(Some(wait.max(Duration::from_millis(1))))
                    .map_err(io)?;
                match sock.read(&mut buf) {
                    Ok(0) => conn.handle_eof(),
                    Ok(n) => conn.handle_input(Instant::now(), &buf[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        conn.handle_timeout(Instant::now())
                    }
                    Err(e) => return Err(io(e)),
                }
            }
            _ => {}
        }
    }
}

/// Column names from `information_schema.COLUMNS` over a side query connection, opened on the
/// first lookup and reopened after a failure. The engine refuses names whose count or types do
/// not fit the TABLE_MAP (e.g. the table changed since the event was written).
pub struct SchemaLookup {
    host: String,
    port: u16,
    connect: ConnectConfig,
    session: Option<(TcpStream, Connection)>,
}

impl SchemaLookup {
    /// A lookup that connects to `host:port` with these credentials and TLS settings.
    pub fn new(host: &str, port: u16, connect: &ConnectConfig) -> Self {
        let mut connect = connect.clone();
        connect.query_only = true;
        connect.host = host.to_owned();
        Self {
            host: host.to_owned(),
            port,
            connect,
            session: None,
        }
    }

    fn drive(&mut self, want_ready: bool) -> Result<Option<ConnEvent>, String> {
        let Some((sock, conn)) = self.session.as_mut() else {
            return Err("not connected".into());
        };
        let mut buf = [0u8; 16 * 1024];
        loop {
            match conn.poll_output() {
                Output::Transmit(b) => sock.write_all(&b).map_err(|e| e.to_string())?,
                Output::Event(ev @ ConnEvent::Ready(_)) if want_ready => return Ok(Some(ev)),
                Output::Event(ev @ ConnEvent::QueryResult(_)) => return Ok(Some(ev)),
                Output::Event(_) => {}
                Output::Closed(r) => {
                    return Err(r
                        .err()
                        .map_or("connection closed".into(), |e| e.to_string()));
                }
                Output::Wait(deadline) => {
                    let wait = deadline.map_or(Duration::from_secs(30), |d| {
                        d.saturating_duration_since(Instant::now())
                    });
                    sock.set_read_timeout(Some(wait.max(Duration::from_millis(1))))
                        .map_err(|e| e.to_string())?;
                    match sock.read(&mut buf) {
                        Ok(0) => conn.handle_eof(),
                        Ok(n) => conn.handle_input(Instant::now(), &buf[..n]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            conn.handle_timeout(Instant::now())
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
                _ => {}
            }
        }
    }

    fn ensure_connected(&mut self) -> Result<(), String> {
        if self.session.is_some() {
            return Ok(());
        }
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("no address")?;
        let sock = TcpStream::connect_timeout(&addr, self.connect.connect_timeout)
            .map_err(|e| e.to_string())?;
        let conn =
            Connection::new(self.connect.clone(), Instant::now()).map_err(|e| e.to_string())?;
        self.session = Some((sock, conn));
        match self.drive(true) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.session = None;
                Err(e)
            }
        }
    }

    fn sql_string(s: &str) -> String {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    }
}

impl mysql_binlog_codec::engine::SchemaSource for SchemaLookup {
    fn columns(
        &mut self,
        database: &str,
        table: &str,
    ) -> Result<Option<Vec<mysql_binlog_codec::engine::ColumnSchema>>, String> {
        self.ensure_connected()?;
        let sql = format!(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
            Self::sql_string(database),
            Self::sql_string(table)
        );
        let result = {
            let Some((_, conn)) = self.session.as_mut() else {
                return Err("not connected".into());
            };
            conn.query(Instant::now(), &sql)
                .map_err(|e| e.to_string())?;
            self.drive(false)
        };
        let rs = match result {
            Ok(Some(ConnEvent::QueryResult(r))) => r.map_err(|e| e.to_string())?,
            Ok(_) => return Err("no result".into()),
            Err(e) => {
                self.session = None;
                return Err(e);
            }
        };
        if rs.rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            rs.rows
                .into_iter()
                .map(|r| mysql_binlog_codec::engine::ColumnSchema {
                    name: r.first().cloned().flatten().unwrap_or_default(),
                    data_type: r.get(1).cloned().flatten().unwrap_or_default(),
                })
                .collect(),
        ))
    }
}

enum Msg<T> {
    /// Items, each with the bytes it counts against the budget (sent in batches: one channel
    /// operation, and at most one wake-up of a waiting consumer, per batch).
    Items(Vec<(T, usize)>),
    /// Every item before this message belongs to transactions up to this checkpoint.
    Checkpoint(Checkpoint),
    /// Final error.
    Error(StreamError),
}

/// Items the reader collects before sending them as one message (also sent before it blocks
/// on the socket, before a checkpoint or error, and before it would wait for queue room).
const SEND_BATCH: usize = 256;

/// What a queued checkpoint counts for in the byte budget.
const CHECKPOINT_BYTES: usize = 128;

/// What the queue holds: events and their approximate bytes.
#[derive(Default)]
struct Fill {
    events: usize,
    bytes: usize,
    /// The reader is blocked until the queue drains to the low-water mark.
    reader_waiting: bool,
}

/// The queue's count and byte budget, shared by the reader (waits) and the consumer (releases).
///
/// With hysteresis: a reader that finds the queue full waits until it has drained to half of
/// both limits, so a consumer slower than the server wakes it once per half-queue instead of
/// once per event (a wake-up per event — a futex call and two context switches — cost more than
/// decoding the event).
#[derive(Default)]
struct Budget {
    fill: Mutex<Fill>,
    freed: Condvar,
    max_events: usize,
    max_bytes: usize,
}

impl Budget {
    fn new(max_events: usize, max_bytes: usize) -> Self {
        Self {
            max_events: max_events.max(1),
            max_bytes,
            ..Self::default()
        }
    }

    /// Whether the queue is at or below the low-water mark the reader waits for.
    fn drained(&self, f: &Fill) -> bool {
        f.events <= self.max_events / 2 && f.bytes <= self.max_bytes / 2
    }

    /// Consumer: `events` items of `bytes` in all left the queue.
    fn release(&self, events: usize, bytes: usize) {
        let Ok(mut f) = self.fill.lock() else { return };
        f.events = f.events.saturating_sub(events);
        f.bytes = f.bytes.saturating_sub(bytes);
        if f.reader_waiting && self.drained(&f) {
            f.reader_waiting = false;
            self.freed.notify_all();
        }
    }

    /// Reader: wait for room for one event of `bytes` (an event larger than the byte limit
    /// still passes alone), then count it in. Returns early when `stop` is set.
    fn acquire(&self, bytes: usize, stop: &AtomicBool) {
        let Ok(mut f) = self.fill.lock() else { return };
        if self.full_for(&f, bytes) {
            f.reader_waiting = true;
            while f.reader_waiting && !stop.load(Ordering::SeqCst) {
                match self.freed.wait_timeout(f, Duration::from_millis(200)) {
                    Ok((g, _)) => f = g,
                    Err(_) => return,
                }
                // Robust against a missed release: re-checked on every wake-up and timeout.
                if self.drained(&f) {
                    f.reader_waiting = false;
                }
            }
            f.reader_waiting = false;
        }
        f.events += 1;
        f.bytes += bytes;
    }

    /// Wake a waiting reader (stop).
    fn wake(&self) {
        if let Ok(mut f) = self.fill.lock() {
            f.reader_waiting = false;
        }
        self.freed.notify_all();
    }

    /// Reader: count in one item of `bytes` if there is room now (one lock, the common case);
    /// `false`, with nothing counted, when [`Self::acquire`] would have to wait.
    fn try_acquire(&self, bytes: usize) -> bool {
        let Ok(mut f) = self.fill.lock() else {
            return false;
        };
        if self.full_for(&f, bytes) {
            return false;
        }
        f.events += 1;
        f.bytes += bytes;
        true
    }

    /// Whether `f` has no room for one more item of `bytes` (an item larger than the byte
    /// limit still passes alone, into an empty queue).
    fn full_for(&self, f: &Fill, bytes: usize) -> bool {
        f.events >= self.max_events || (f.bytes > 0 && f.bytes + bytes > self.max_bytes)
    }

    /// Approximate bytes queued.
    fn bytes(&self) -> usize {
        self.fill.lock().map(|f| f.bytes).unwrap_or(0)
    }
}

/// A handle that stops the stream from any thread.
#[derive(Clone)]
pub struct StopHandle {
    stop: Arc<AtomicBool>,
    budget: Arc<Budget>,
}

impl StopHandle {
    /// Ask the stream to stop; a consumer waiting in `next` returns `None` soon after.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.budget.wake();
    }
}

/// The consumer end of a reader thread: the queue, the byte budget, the stop flag. Both
/// stream kinds are one of these around their mode's items.
struct Queue<T> {
    rx: Receiver<Msg<T>>,
    budget: Arc<Budget>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    finished: bool,
    queue_bytes: usize,
    /// Items of a received batch not handed out yet (still counted in the budget).
    ready: VecDeque<(T, usize)>,
    /// Items (and their bytes) handed out but not yet released from the budget: released
    /// together, every [`RELEASE_EVERY`] items and whenever `ready` runs empty (so always
    /// before the consumer can wait), instead of one lock of the shared budget per item.
    unreleased: (usize, usize),
}

/// See [`Queue::unreleased`].
const RELEASE_EVERY: usize = 32;

impl<T: Send + 'static> Queue<T> {
    /// Connect (the first connection is made before this returns) and start the reader thread.
    /// Also returns the mode's resume point after connecting (the resolved start).
    fn start<M: Mode<Item = T>>(
        config: StreamConfig,
        mode: M,
    ) -> Result<(Self, Option<Checkpoint>), StreamError> {
        // Unbounded transport; the bound (count and bytes) is the budget's.
        let (tx, rx) = mpsc::channel();
        let queue_bytes = config.queue_bytes;
        let budget = Arc::new(Budget::new(config.queue_events, config.queue_bytes));
        let stop = Arc::new(AtomicBool::new(false));
        let mut reader = Reader {
            config,
            tx,
            budget: budget.clone(),
            stop: stop.clone(),
            mode,
            pending: Vec::new(),
        };
        let session = reader.connect().inspect_err(|e| {
            tracing::error!(addr = %reader.addr(), error = %e, "connect failed");
        })?;
        let resume = reader.mode.resume().cloned();
        // The reader thread logs to the subscriber that is current here.
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let thread = std::thread::Builder::new()
            .name("mes-blocking-reader".into())
            .spawn(move || tracing::dispatcher::with_default(&dispatch, || reader.run(session)))
            .map_err(|e| StreamError::Io {
                addr: String::new(),
                message: e.to_string(),
            })?;
        let queue = Self {
            rx,
            budget,
            stop,
            thread: Some(thread),
            finished: false,
            queue_bytes,
            ready: VecDeque::new(),
            unreleased: (0, 0),
        };
        Ok((queue, resume))
    }
}

impl<T> Queue<T> {
    fn stop_handle(&self) -> StopHandle {
        StopHandle {
            stop: self.stop.clone(),
            budget: self.budget.clone(),
        }
    }

    fn stop(&mut self) {
        self.stop_handle().stop();
        if let Some(t) = self.thread.take() {
            // Drain until the reader has ended: it checks the stop flag only between batches,
            // so it may block on the full queue again while sending the rest of one (a single
            // drain before joining deadlocked when a transaction exceeded `queue_events`).
            while !t.is_finished() {
                while self.rx.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = t.join();
        }
        while self.rx.try_recv().is_ok() {}
        self.ready.clear();
        self.finished = true;
    }

    fn queue_fill(&self) -> (usize, usize) {
        (self.budget.bytes(), self.queue_bytes)
    }

    /// The next item, waiting at most `timeout`; `Ok(None)` on timeout. Checkpoint messages
    /// met on the way update `checkpoint`. What is already queued is taken without reading the
    /// clock; a zero timeout takes only that.
    fn next_timeout(
        &mut self,
        timeout: Duration,
        checkpoint: &mut Checkpoint,
    ) -> Option<Result<Option<T>, StreamError>> {
        if self.finished {
            return None;
        }
        if let Some((item, bytes)) = self.ready.pop_front() {
            self.handed_out(bytes);
            return Some(Ok(Some(item)));
        }
        // Then what is already queued: no clock reads on the busy path.
        loop {
            if self.finished {
                return None;
            }
            match self.rx.try_recv() {
                Ok(msg) => {
                    if let Some(out) = self.handle_msg(msg, checkpoint) {
                        return Some(out);
                    }
                }
                Err(TryRecvError::Empty) => {
                    if self.stop.load(Ordering::SeqCst) {
                        self.finished = true;
                        return None;
                    }
                    if timeout.is_zero() {
                        return Some(Ok(None));
                    }
                    break;
                }
                Err(TryRecvError::Disconnected) => {
                    self.finished = true;
                    return None;
                }
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            if self.finished {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(msg) => {
                    if let Some(out) = self.handle_msg(msg, checkpoint) {
                        return Some(out);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.stop.load(Ordering::SeqCst) {
                        self.finished = true;
                        return None;
                    }
                    if Instant::now() >= deadline {
                        return Some(Ok(None));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.finished = true;
                    return None;
                }
            }
        }
    }

    /// One message from the reader: what `next_timeout` returns, or `None` for a checkpoint
    /// (taken into `checkpoint`; keep reading).
    fn handle_msg(
        &mut self,
        msg: Msg<T>,
        checkpoint: &mut Checkpoint,
    ) -> Option<Result<Option<T>, StreamError>> {
        match msg {
            Msg::Items(items) => {
                self.ready.extend(items);
                let (item, bytes) = self.ready.pop_front()?;
                self.handed_out(bytes);
                Some(Ok(Some(item)))
            }
            Msg::Checkpoint(cp) => {
                self.budget.release(1, CHECKPOINT_BYTES);
                *checkpoint = cp;
                None
            }
            Msg::Error(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }

    /// An item of `bytes` was handed out: count it for release (see `unreleased`).
    fn handed_out(&mut self, bytes: usize) {
        self.unreleased.0 += 1;
        self.unreleased.1 += bytes;
        if self.unreleased.0 >= RELEASE_EVERY || self.ready.is_empty() {
            let (events, bytes) = std::mem::take(&mut self.unreleased);
            self.budget.release(events, bytes);
        }
    }

    /// The next item, however long it takes; `None` once the stream stopped or ended.
    fn next(&mut self, checkpoint: &mut Checkpoint) -> Option<Result<T, StreamError>> {
        loop {
            match self.next_timeout(Duration::from_secs(3600), checkpoint)? {
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running stream: an iterator of change events.
pub struct BinlogStream {
    queue: Queue<EngineEvent>,
    checkpoint: Checkpoint,
}

/// The column-name lookup the blocking driver plugs into the engine.
fn schema_lookup(config: &StreamConfig) -> Box<dyn SchemaSource + Send> {
    Box::new(SchemaLookup::new(
        &config.host,
        config.port,
        &config.connect,
    ))
}

impl BinlogStream {
    /// Connect (the first connection is made before this returns, so bad credentials, TLS or
    /// server configuration fail here) and start the reader thread.
    pub fn start(config: StreamConfig) -> Result<Self, StreamError> {
        // Before anything is handed out, the checkpoint is the resolved start (as in mes-tokio):
        // persisting it and resuming from it loses nothing.
        let (queue, resume) = Queue::start(config, session::Changes::new(schema_lookup))?;
        Ok(Self {
            queue,
            checkpoint: resume.unwrap_or_default(),
        })
    }

    /// A handle to stop the stream from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.queue.stop_handle()
    }

    /// Stop the reader thread and wait for it.
    pub fn stop(&mut self) {
        self.queue.stop();
    }

    /// The checkpoint of what was handed out: every transaction up to it has been returned by
    /// `next`. Persist it after processing.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Bytes of events waiting in the queue (approximate), and the queue's byte limit.
    pub fn queue_fill(&self) -> (usize, usize) {
        self.queue.queue_fill()
    }

    /// [`BinlogStream::checkpoint`] as a persistable string.
    pub fn checkpoint_string(&self) -> String {
        checkpoint_to_string(&self.checkpoint)
    }

    /// The next event, waiting at most `timeout`; `Ok(None)` on timeout.
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Option<Result<Option<EngineEvent>, StreamError>> {
        self.queue.next_timeout(timeout, &mut self.checkpoint)
    }
}

impl Iterator for BinlogStream {
    type Item = Result<EngineEvent, StreamError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.queue.next(&mut self.checkpoint)
    }
}

/// A running stream of raw binlog events ([`RawEvent`]): every event the server sends, with
/// its binlog file and offset, undecoded — for consumers that decode events themselves.
///
/// It runs like [`BinlogStream`] (reader thread, queue bounded by count and by bytes,
/// reconnection with backoff, stop) and resumes by file and offset right after the last event
/// it queued; [`RawEvent`] says exactly what that guarantees.
///
/// The stream's `engine` and `schema_lookup` settings are not used.
pub struct RawBinlogStream {
    queue: Queue<RawEvent>,
    position: Position,
}

impl RawBinlogStream {
    /// Connect (the first connection is made before this returns, so bad credentials, TLS or
    /// server configuration fail here) and start the reader thread.
    pub fn start(config: StreamConfig) -> Result<Self, StreamError> {
        let (queue, resume) = Queue::start(config, session::Raw::default())?;
        Ok(Self {
            queue,
            position: resume.map(|cp| cp.position).unwrap_or_default(),
        })
    }

    /// A handle to stop the stream from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.queue.stop_handle()
    }

    /// Stop the reader thread and wait for it.
    pub fn stop(&mut self) {
        self.queue.stop();
    }

    /// The resume point after the last event handed out ([`RawEvent::resume`]); before the
    /// first, the resolved start position (empty for a GTID start).
    pub fn resume_point(&self) -> &Position {
        &self.position
    }

    /// [`RawBinlogStream::resume_point`] as a persistable string, `file:<name>:<offset>` (see
    /// [`start_from_string`]).
    pub fn resume_string(&self) -> String {
        checkpoint_to_string(&Checkpoint {
            position: self.position.clone(),
            gtid: GtidCheckpoint::None,
        })
    }

    /// Bytes of events waiting in the queue (approximate), and the queue's byte limit.
    pub fn queue_fill(&self) -> (usize, usize) {
        self.queue.queue_fill()
    }

    /// The next event, waiting at most `timeout`; `Ok(None)` on timeout.
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Option<Result<Option<RawEvent>, StreamError>> {
        let mut unused = Checkpoint::default();
        let got = self.queue.next_timeout(timeout, &mut unused);
        if let Some(Ok(Some(ev))) = &got {
            self.position = ev.resume.clone();
        }
        got
    }
}

impl Iterator for RawBinlogStream {
    type Item = Result<RawEvent, StreamError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut unused = Checkpoint::default();
        let got = self.queue.next(&mut unused);
        if let Some(Ok(ev)) = &got {
            self.position = ev.resume.clone();
        }
        got
    }
}

struct Session {
    sock: TcpStream,
    conn: Connection,
    /// Read buffer, allocated once per connection (`step` runs once per binlog event).
    buf: Box<[u8]>,
    /// The socket's current read timeout (set only when it changes: one syscall less per read).
    read_timeout: Option<Duration>,
}

/// The reader thread: moves bytes between the socket and the protocol state machine, hands
/// binlog events to its mode and queues what the mode produces.
struct Reader<M: Mode> {
    config: StreamConfig,
    tx: Sender<Msg<M::Item>>,
    budget: Arc<Budget>,
    stop: Arc<AtomicBool>,
    mode: M,
    /// Items counted in the budget, not sent yet.
    pending: Vec<(M::Item, usize)>,
}

impl<M: Mode> Drop for Reader<M> {
    fn drop(&mut self) {
        // Whatever the reader ends with (end of the binlog, stop), queued items go out.
        let _ = self.flush();
    }
}

impl<M: Mode> Reader<M> {
    fn addr(&self) -> String {
        format!("{}:{}", self.config.host, self.config.port)
    }

    fn io(&self, e: std::io::Error) -> StreamError {
        StreamError::Io {
            addr: self.addr(),
            message: e.to_string(),
        }
    }

    /// Where the next connection starts.
    fn start_position(&self) -> StartPosition {
        session::start_position(self.mode.resume(), &self.config.connect.start)
    }

    /// Connect and run the protocol until the dump started.
    fn connect(&mut self) -> Result<Session, StreamError> {
        let addr = self.addr();
        let timeout = self.config.connect.connect_timeout;
        let start = self.start_position();
        tracing::debug!(
            host = %self.config.host,
            port = self.config.port,
            user = %self.config.connect.user,
            tls_mode = ?self.config.connect.tls.mode,
            start = %obs::describe_start(&start),
            "connecting"
        );
        let sock_addr = (self.config.host.as_str(), self.config.port)
            .to_socket_addrs()
            .map_err(|e| self.io(e))?
            .next()
            .ok_or_else(|| StreamError::Io {
                addr: addr.clone(),
                message: "no address".into(),
            })?;
        let sock = TcpStream::connect_timeout(&sock_addr, timeout).map_err(|e| self.io(e))?;
        let _ = sock.set_nodelay(true);
        let mut cc = self.config.connect.clone();
        cc.start = start;
        let conn = Connection::new(cc.clone(), Instant::now())?;
        let mut s = Session {
            sock,
            conn,
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            read_timeout: None,
        };
        // Drive until Ready.
        loop {
            if let Some(ConnEvent::Ready(info)) = self.step(&mut s)? {
                self.mode.ready(&self.config, &info, &cc.start);
                return Ok(s);
            }
            // `step` returns at once once a stop is requested: a reconnect that had not
            // finished its handshake then spun here for ever (and `stop()` waited for ever).
            if self.stop.load(Ordering::SeqCst) {
                return Err(StreamError::Io {
                    addr,
                    message: "stop requested while connecting".into(),
                });
            }
        }
    }

    /// Drain the connection's outputs once; read from the socket when it waits. Returns the
    /// first protocol event met (binlog events go to the mode directly).
    fn step(&mut self, s: &mut Session) -> Result<Option<ConnEvent>, StreamError> {
        loop {
            match s.conn.poll_output() {
                Output::Transmit(bytes) => s.sock.write_all(&bytes).map_err(|e| self.io(e))?,
                Output::Event(ConnEvent::Binlog { event, .. }) => {
                    self.feed(event)?;
                    return Ok(None);
                }
                Output::Event(ev) => return Ok(Some(ev)),
                Output::Closed(Ok(())) => {
                    return Err(StreamError::Proto(ProtoError::Eof("binlog stream")));
                }
                Output::Closed(Err(e)) => return Err(e.into()),
                Output::Wait(deadline) => {
                    // Nothing more to decode without reading: hand out what was collected.
                    self.flush()?;
                    if self.stop.load(Ordering::SeqCst) {
                        return Ok(None);
                    }
                    let now = Instant::now();
                    let wait = deadline.map_or(Duration::from_millis(200), |d| {
                        d.saturating_duration_since(now)
                    });
                    // Wake at least every 200 ms to notice a stop request. Rounded to whole
                    // milliseconds so that a steady deadline does not change it every read.
                    let timeout = Duration::from_millis(
                        u64::try_from(
                            wait.clamp(Duration::from_millis(1), Duration::from_millis(200))
                                .as_millis(),
                        )
                        .unwrap_or(200),
                    );
                    if s.read_timeout != Some(timeout) {
                        s.sock
                            .set_read_timeout(Some(timeout))
                            .map_err(|e| self.io(e))?;
                        s.read_timeout = Some(timeout);
                    }
                    match s.sock.read(&mut s.buf) {
                        Ok(0) => s.conn.handle_eof(),
                        Ok(n) => s.conn.handle_input(Instant::now(), &s.buf[..n]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            s.conn.handle_timeout(Instant::now());
                        }
                        Err(e) => return Err(self.io(e)),
                    }
                }
                _ => {}
            }
        }
    }

    /// Hand one binlog event to the mode and queue what it produces.
    fn feed(&mut self, mut event: bytes::Bytes) -> Result<(), StreamError> {
        let mut out = Vec::new();
        loop {
            self.mode.feed(&mut event, &mut out)?;
            for o in out.drain(..) {
                match o {
                    Out::Item(item) => self.send_item(item)?,
                    Out::Checkpoint(cp) => {
                        // Counted like an item, so a filtered stream whose consumer pauses
                        // does not pile up checkpoints without bound. The items before it go
                        // first (and must be out before waiting for room).
                        self.flush()?;
                        self.budget.acquire(CHECKPOINT_BYTES, &self.stop);
                        self.send(Msg::Checkpoint(cp))?;
                    }
                }
            }
            if event.is_empty() {
                return Ok(());
            }
        }
    }

    /// Send a message, after the items collected so far (order is kept).
    fn send(&mut self, msg: Msg<M::Item>) -> Result<(), StreamError> {
        self.flush()?;
        self.send_now(msg)
    }

    fn send_now(&self, msg: Msg<M::Item>) -> Result<(), StreamError> {
        self.tx.send(msg).map_err(|_| StreamError::Io {
            addr: self.addr(),
            message: "consumer went away".into(),
        })
    }

    /// Send the collected items as one message.
    fn flush(&mut self) -> Result<(), StreamError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // The next batch starts with room for as many items as this one had (a full batch in
        // a backlog), instead of growing from empty through several reallocations.
        let room = self.pending.len().max(16);
        let items = std::mem::replace(&mut self.pending, Vec::with_capacity(room));
        self.send_now(Msg::Items(items))
    }

    fn send_item(&mut self, item: M::Item) -> Result<(), StreamError> {
        let bytes = M::size(&item);
        if !self.budget.try_acquire(bytes) {
            // The consumer can only make room for items it has: send ours before waiting.
            self.flush()?;
            self.budget.acquire(bytes, &self.stop);
        }
        self.pending.push((item, bytes));
        if self.pending.len() >= SEND_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn run(&mut self, mut session: Session) {
        let mut attempts = 0u32;
        loop {
            let result = loop {
                if self.stop.load(Ordering::SeqCst) {
                    tracing::info!(addr = %self.addr(), "stream stopped");
                    session.conn.close();
                    let _ = self.flush_close(&mut session);
                    return;
                }
                match self.step(&mut session) {
                    // `stop_at_end`: the server ended the dump; so does the stream (the
                    // `Closed(Ok)` that follows must not be taken for a lost connection).
                    // Without it the dump blocks at the end, so an EOF means the server ended
                    // it early (a shutdown, a killed dump thread): the connection is lost and
                    // the `Closed(Ok)` that follows reconnects.
                    Ok(Some(ConnEvent::EndOfStream)) if !self.config.connect.stop_at_end => {
                        tracing::debug!(addr = %self.addr(), "the server ended the binlog dump");
                    }
                    Ok(Some(ConnEvent::EndOfStream)) => {
                        tracing::info!(
                            addr = %self.addr(),
                            checkpoint = %self.checkpoint_text(),
                            "binlog stream ended (end of the binlog reached)"
                        );
                        return;
                    }
                    Ok(_) => attempts = 0,
                    Err(e) => break e,
                }
            };
            if self.stop.load(Ordering::SeqCst) {
                tracing::info!(addr = %self.addr(), "stream stopped");
                return;
            }
            if !result.retryable() || self.config.reconnect.max_attempts == 0 {
                tracing::error!(addr = %self.addr(), error = %result, "stream failed");
                let _ = self.send(Msg::Error(result));
                return;
            }
            tracing::warn!(
                addr = %self.addr(),
                error = %result,
                checkpoint = %self.checkpoint_text(),
                "connection lost; reconnecting"
            );
            // Reconnect with capped, jittered backoff, resuming from the last checkpoint.
            let mut last = result;
            loop {
                attempts += 1;
                if attempts > self.config.reconnect.max_attempts {
                    let error = StreamError::ReconnectExhausted {
                        attempts: attempts - 1,
                        last: Box::new(last),
                    };
                    tracing::error!(addr = %self.addr(), error = %error, "stream failed");
                    let _ = self.send(Msg::Error(error));
                    return;
                }
                let sleep = self
                    .config
                    .reconnect
                    .jittered_delay(attempts, rand::random::<f64>());
                tracing::info!(
                    addr = %self.addr(),
                    attempt = attempts,
                    max_attempts = self.config.reconnect.max_attempts,
                    delay_ms = u64::try_from(sleep.as_millis()).unwrap_or(u64::MAX),
                    reason = %last,
                    resume = %obs::describe_start(&self.start_position()),
                    "reconnect attempt"
                );
                let until = Instant::now() + sleep;
                while Instant::now() < until {
                    if self.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(
                        Duration::from_millis(20)
                            .min(until.saturating_duration_since(Instant::now())),
                    );
                }
                match self.connect() {
                    Err(_) if self.stop.load(Ordering::SeqCst) => {
                        tracing::info!(addr = %self.addr(), "stream stopped while reconnecting");
                        return;
                    }
                    Ok(s) => {
                        tracing::info!(
                            addr = %self.addr(),
                            attempt = attempts,
                            resume = %self.checkpoint_text(),
                            "reconnected; resuming"
                        );
                        session = s;
                        break;
                    }
                    Err(e) if e.retryable() => {
                        tracing::warn!(
                            addr = %self.addr(),
                            attempt = attempts,
                            error = %e,
                            "reconnect attempt failed"
                        );
                        last = e;
                    }
                    Err(e) => {
                        tracing::error!(addr = %self.addr(), error = %e, "stream failed");
                        let _ = self.send(Msg::Error(e));
                        return;
                    }
                }
            }
        }
    }

    /// The last checkpoint as text (for logs).
    fn checkpoint_text(&self) -> String {
        self.mode
            .resume()
            .map_or_else(|| "none".into(), checkpoint_to_string)
    }

    fn flush_close(&self, s: &mut Session) -> Result<(), StreamError> {
        while let Output::Transmit(b) = s.conn.poll_output() {
            s.sock.write_all(&b).map_err(|e| self.io(e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mysql_binlog_codec::engine::Position;

    #[test]
    fn reconnect_delays() {
        let doubling = Reconnect {
            max_attempts: 10,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            backoff: Backoff::Doubling,
        };
        let ms = |r: &Reconnect, n| r.delay_before(n).as_millis();
        assert_eq!(
            (1..=8).map(|n| ms(&doubling, n)).collect::<Vec<_>>(),
            [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        assert_eq!(ms(&doubling, 1000), 10_000, "no overflow");
        // The Python package's documented policy: min(1000 * N, 10000) ms.
        let linear = Reconnect {
            base_delay: Duration::from_secs(1),
            backoff: Backoff::Linear,
            ..doubling
        };
        assert_eq!(
            (1..=12).map(|n| ms(&linear, n)).collect::<Vec<_>>(),
            [
                1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10_000, 10_000, 10_000
            ]
        );
        // Jitter: uniform(0.5, 1.0) of the delay.
        assert_eq!(linear.jittered_delay(3, 0.0).as_millis(), 1500);
        assert_eq!(linear.jittered_delay(3, 0.999_999).as_millis(), 2999);
    }

    #[test]
    fn checkpoint_strings_round_trip() {
        for s in [
            "gtid:3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5",
            "mariadb:0-1-5,1-2-9",
            "file:binlog.000003:3611",
        ] {
            let start = start_from_string(s).unwrap();
            match (&start, s.split(':').next()) {
                (StartPosition::MysqlGtidSet(_), Some("gtid"))
                | (StartPosition::MariaGtid(_), Some("mariadb"))
                | (StartPosition::FilePosition { .. }, Some("file")) => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(start_from_string("nonsense").is_none());
        let cp = Checkpoint {
            position: Position {
                file: "b.000001".into(),
                offset: 99,
            },
            gtid: GtidCheckpoint::None,
        };
        assert_eq!(checkpoint_to_string(&cp), "file:b.000001:99");
    }

    /// A `tracing` subscriber that writes every event (and span field) as a text line into a
    /// shared buffer.
    struct Capture {
        out: Arc<Mutex<String>>,
        next_id: std::sync::atomic::AtomicU64,
    }

    struct Line<'a>(&'a mut String);

    impl tracing::field::Visit for Line<'_> {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            use std::fmt::Write as _;
            let _ = write!(self.0, " {}={value:?}", field.name());
        }

        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            use std::fmt::Write as _;
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }

        fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            let mut line = format!("SPAN {}", span.metadata().name());
            span.record(&mut Line(&mut line));
            line.push('\n');
            self.out.lock().unwrap().push_str(&line);
            tracing::span::Id::from_u64(self.next_id.fetch_add(1, Ordering::SeqCst) + 1)
        }

        fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
            let mut line = String::from("RECORD");
            values.record(&mut Line(&mut line));
            line.push('\n');
            self.out.lock().unwrap().push_str(&line);
        }

        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

        fn event(&self, event: &tracing::Event<'_>) {
            let mut line = format!("{} {}", event.metadata().level(), event.metadata().target());
            event.record(&mut Line(&mut line));
            line.push('\n');
            self.out.lock().unwrap().push_str(&line);
        }

        fn enter(&self, _: &tracing::span::Id) {}

        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// The connect, rotation, lag and end lines are logged (from the caller's and the reader
    /// thread), and neither the password nor anything derived from the auth exchange is.
    #[test]
    fn logs_connect_rotation_lag_and_end_without_the_password() {
        const FILES: [&str; 2] = [
            "percona-binlog-server/data_80045_gtid__binlog.000001",
            "percona-binlog-server/data_80045_gtid__binlog.000002",
        ];
        let (Some(f1), Some(f2)) = (
            mes_testkit::corpus_file(FILES[0]),
            mes_testkit::corpus_file(FILES[1]),
        ) else {
            eprintln!("SKIPPED: corpus files {FILES:?} not found (set MES_CORPUS_DIR)");
            return;
        };
        const PASSWORD: &str = "Sup3r-S3cret-pw-7f3a";
        let primary = mes_testkit::TestPrimary::start(
            mes_testkit::PrimaryConfig::new()
                .account(
                    "logger",
                    PASSWORD,
                    mes_testkit::AuthPlugin::CachingSha2Password,
                )
                .warm_cache("logger")
                .binlog_file(&f1)
                .binlog_file(&f2),
        )
        .unwrap();
        let connect = ConnectConfig {
            user: "logger".into(),
            password: PASSWORD.into(),
            start: StartPosition::FilePosition {
                file: f1.file_name().unwrap().to_string_lossy().into_owned(),
                position: 4,
            },
            stop_at_end: true,
            read_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            ..ConnectConfig::default()
        };
        let mut config = StreamConfig::new("127.0.0.1", primary.port(), connect);
        config.schema_lookup = false;
        config.reconnect.max_attempts = 0;
        // Also log the whole config the way a careless caller might: Debug redacts.
        let out = Arc::new(Mutex::new(String::new()));
        let subscriber = Capture {
            out: out.clone(),
            next_id: std::sync::atomic::AtomicU64::new(0),
        };
        let events = tracing::subscriber::with_default(subscriber, || {
            tracing::info!(config = ?config, "starting");
            let mut stream = BinlogStream::start(config).unwrap();
            let mut n = 0usize;
            for ev in stream.by_ref() {
                ev.unwrap();
                n += 1;
            }
            stream.stop();
            n
        });
        assert!(events > 0, "no events streamed");
        let logs = out.lock().unwrap().clone();
        eprintln!("{logs}");
        let connect_line = logs
            .lines()
            .find(|l| l.contains("connected; binlog dump started"))
            .unwrap_or_else(|| panic!("no connect line in:\n{logs}"));
        assert!(
            connect_line.starts_with("INFO mes_blocking"),
            "{connect_line}"
        );
        for field in [
            "host=127.0.0.1",
            &format!("port={}", primary.port()),
            "tls=false",
            "tls_verified=false",
            "auth_plugin=caching_sha2_password",
            "server_version=8.4.3",
            "flavor=Mysql",
            "start=file:",
        ] {
            assert!(
                connect_line.contains(field),
                "{field} missing: {connect_line}"
            );
        }
        assert!(
            logs.contains("binlog rotated"),
            "no rotation line in:\n{logs}"
        );
        assert!(logs.contains("replication lag"), "no lag line in:\n{logs}");
        assert!(
            logs.contains("binlog stream ended"),
            "no end line in:\n{logs}"
        );
        assert!(!logs.contains(PASSWORD), "the password was logged:\n{logs}");
        assert!(
            !logs.contains("Sup3r"),
            "part of the password was logged:\n{logs}"
        );
    }
}

#[cfg(test)]
mod budget_tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::Budget;

    /// A full queue blocks the reader until it has drained to half of the count limit — not
    /// after every single release — and then lets it go on.
    #[test]
    fn reader_resumes_at_the_low_water_mark() {
        let budget = Arc::new(Budget::new(4, 1 << 20));
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..4 {
            budget.acquire(10, &stop);
        }
        let (tx, rx) = mpsc::channel();
        let reader = {
            let (budget, stop) = (budget.clone(), stop.clone());
            std::thread::spawn(move || {
                budget.acquire(10, &stop);
                tx.send(()).expect("test alive");
            })
        };
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "full queue let it pass"
        );
        budget.release(1, 10); // 3 queued: above the low-water mark (2)
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "woken above half"
        );
        budget.release(1, 10); // 2 queued
        rx.recv_timeout(Duration::from_secs(2))
            .expect("woken at half");
        reader.join().expect("reader");
        assert_eq!(budget.fill.lock().expect("lock").events, 3);
    }

    /// try_acquire counts an item in when there is room, and refuses (counting nothing) when
    /// acquire would wait.
    #[test]
    fn try_acquire_counts_only_when_there_is_room() {
        let budget = Budget::new(2, 100);
        assert!(budget.try_acquire(10));
        assert!(!budget.try_acquire(95), "over the byte limit");
        assert!(budget.try_acquire(10));
        assert!(!budget.try_acquire(1), "over the count limit");
        assert_eq!(budget.fill.lock().expect("lock").events, 2);
        assert_eq!(budget.bytes(), 20);
    }

    /// The byte limit blocks the same way; an event larger than the limit passes alone.
    #[test]
    fn byte_limit_and_oversized_events() {
        let budget = Budget::new(1000, 100);
        let stop = AtomicBool::new(false);
        budget.acquire(500, &stop); // alone: passes although over the limit
        assert_eq!(budget.bytes(), 500);
        budget.release(1, 500);
        budget.acquire(60, &stop);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        budget.acquire(60, &stop); // would block (120 > 100); stop lets it return
        assert_eq!(budget.bytes(), 120);
    }
}

#[cfg(test)]
mod release_tests {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;
    use std::time::Duration;

    use mysql_binlog_codec::engine::Checkpoint;

    use super::{Budget, Msg, Queue, RELEASE_EVERY};

    /// The consumer releases handed-out items in bulk, and always releases everything before it
    /// has nothing left to hand out (so a reader waiting for room is never stranded).
    #[test]
    fn handed_out_items_are_released_in_bulk_and_before_running_dry() {
        let budget = Arc::new(Budget::new(1000, 1 << 20));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let mut queue: Queue<u32> = Queue {
            rx,
            budget: budget.clone(),
            stop: stop.clone(),
            thread: None,
            finished: false,
            queue_bytes: 1 << 20,
            ready: VecDeque::new(),
            unreleased: (0, 0),
        };
        let n = RELEASE_EVERY * 3 + 5;
        for _ in 0..n {
            budget.acquire(10, &stop);
        }
        tx.send(Msg::Items((0..n as u32).map(|i| (i, 10)).collect()))
            .expect("send");
        let fill = || budget.fill.lock().expect("lock").events;
        let mut cp = Checkpoint::default();
        for i in 0..n {
            let got = queue.next_timeout(Duration::ZERO, &mut cp);
            assert!(matches!(got, Some(Ok(Some(v))) if v == i as u32), "{i}");
            let taken = i + 1;
            let released = if taken == n {
                n
            } else {
                taken / RELEASE_EVERY * RELEASE_EVERY
            };
            assert_eq!(fill(), n - released, "after {taken} items");
        }
        assert_eq!(budget.bytes(), 0);
        assert!(matches!(
            queue.next_timeout(Duration::ZERO, &mut cp),
            Some(Ok(None))
        ));
        queue.finished = true;
    }
}
