//! tokio driver: stream a live MySQL / MariaDB server's change events with `tokio::net`.
//!
//! One spawned task moves bytes between a [`tokio::net::TcpStream`] and the sans-IO
//! [`mysql_repl_proto::Connection`], feeds the binlog events to the change-event
//! [`Engine`](mysql_binlog_codec::engine::Engine), and hands change events to the consumer
//! in batches (of up to 256, sent whenever the task would wait for the socket) through a queue
//! bounded by count and by bytes: a slow consumer stops the task, whose socket then stops being
//! read, so the server is throttled by TCP instead of the connection being lost. A batch's room
//! is taken when it is sent and given back when its last event is taken, so the task may hold
//! one batch more than the count limit says. Network failures reconnect with capped, jittered
//! backoff and resume from the last transaction boundary the task finished, so committed
//! transactions are delivered at least once, and never half.
//!
//! The semantics are those of the blocking driver (`mes-blocking`), whose settings, errors,
//! checkpoint strings and event handling (`mes_blocking::session`) this driver shares; only the
//! I/O loop is its own.
//!
//! [`RawBinlogStream`] is the same driver for consumers that decode binlog events themselves:
//! it hands out every event undecoded ([`RawEvent`]: header, bytes, binlog file and offset) and
//! resumes by file and offset right after the last event it queued.
//!
//! Logs go through [`tracing`] (target `mes_tokio`; rotation and lag lines `mes_blocking::obs`):
//! INFO on connect (host, port, TLS on / verified, auth plugin, server version, flavor, start
//! position), on each reconnect attempt (reason, delay, resume position), on reconnecting, on
//! binlog rotation and at the end or stop; WARN when a connection is lost; ERROR on a fatal
//! error; DEBUG for the replication lag (at most every 5 s). Passwords, auth data and packets
//! are never logged. The driver's background work logs to the subscriber that was current
//! when the stream was started.
//!
//! ```no_run
//! use mes_tokio::{BinlogStream, StreamConfig};
//! use mysql_repl_proto::ConnectConfig;
//!
//! # async fn run() -> Result<(), mes_tokio::StreamError> {
//! let config = StreamConfig::new("127.0.0.1", 3306, ConnectConfig {
//!     user: "repl".into(),
//!     password: "secret".into(),
//!     ..ConnectConfig::default()
//! });
//! let mut stream = BinlogStream::start(config).await?;
//! while let Some(event) = stream.next().await {
//!     println!("{:?}", event?);
//!     // Persist this after processing and pass it back as the start position to resume.
//!     let _resume_from = stream.checkpoint_string();
//! }
//! stream.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! [`BinlogStream::next`] is cancel-safe: dropping its future (e.g. in `tokio::select!` or
//! `tokio::time::timeout`) loses no event and no checkpoint.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use mysql_binlog_codec::engine::{Checkpoint, EngineEvent, GtidCheckpoint, Position, SchemaSource};
use mysql_repl_proto::{ConnEvent, Connection, Output, ProtoError, StartPosition};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

/// The column-name lookup of the blocking driver, run so that it does not stall the runtime:
/// on a multi-threaded runtime through `block_in_place`; on a current-thread runtime it blocks
/// briefly (it is only used for TABLE_MAPs without column names, once per table definition).
struct BlockingLookup(mes_blocking::SchemaLookup);

impl SchemaSource for BlockingLookup {
    fn columns(
        &mut self,
        database: &str,
        table: &str,
    ) -> Result<Option<Vec<mysql_binlog_codec::engine::ColumnSchema>>, String> {
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi {
            tokio::task::block_in_place(|| self.0.columns(database, table))
        } else {
            self.0.columns(database, table)
        }
    }
}

/// The column-name lookup this driver plugs into the engine.
fn schema_lookup(config: &StreamConfig) -> Box<dyn SchemaSource + Send> {
    Box::new(BlockingLookup(mes_blocking::SchemaLookup::new(
        &config.host,
        config.port,
        &config.connect,
    )))
}

/// The stream settings, errors, reconnection policy, checkpoint strings and raw events are the
/// blocking driver's, and so is what the task does with binlog events (`session::Mode`): one
/// definition for both drivers (`mes-blocking` has no tokio dependency).
use mes_blocking::session::{self, Mode, Out};
pub use mes_blocking::{
    RawEvent, Reconnect, StreamConfig, StreamError, checkpoint_to_string, start_from_string,
};

use mes_blocking::obs;
use tracing::instrument::WithSubscriber;

enum Msg<T> {
    /// A batch of items; its permits (count and bytes) go back to the budgets when the
    /// consumer has taken the last of them.
    Items(Vec<T>, Permits),
    /// Every item before this message belongs to transactions up to this checkpoint.
    Checkpoint(Checkpoint),
    /// Final error.
    Error(StreamError),
}

/// Budget permits held by a batch of queued items (count, bytes).
struct Permits {
    _count: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

/// Items the task sends in one message at most: one channel operation, and at most one
/// wake-up of the consumer, per batch instead of per item.
const BATCH: usize = 256;

/// A handle that stops the stream from any task or thread.
#[derive(Debug, Clone)]
pub struct StopHandle {
    stop: Arc<watch::Sender<bool>>,
}

impl StopHandle {
    /// Ask the stream to stop; a consumer waiting in `next` gets `None` soon after.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

/// The consumer end of a driver task: the channel, the stop flag, the task. Both stream kinds
/// are one of these around their mode's items. Dropping it stops the task.
struct Receiving<T> {
    rx: mpsc::UnboundedReceiver<Msg<T>>,
    stop: StopHandle,
    task: Option<JoinHandle<()>>,
    finished: bool,
    /// Items of the batch being handed out, and its permits (released with its last item).
    ready: VecDeque<T>,
    held: Option<Permits>,
}

impl<T: Send + 'static> Receiving<T> {
    /// Connect (the first connection is made before this returns) and spawn the driver task on
    /// the current runtime. Also returns the mode's resume point after connecting (the
    /// resolved start).
    async fn start<M: Mode<Item = T>>(
        config: StreamConfig,
        mode: M,
    ) -> Result<(Self, Option<Checkpoint>), StreamError> {
        // Unbounded transport; the bounds (count and bytes) are the budgets'.
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let budget_max = config.queue_bytes.clamp(1, u32::MAX as usize);
        let count_max = config.queue_events.clamp(1, u32::MAX as usize);
        let mut driver = Driver {
            out: Outbox {
                budget: Arc::new(Semaphore::new(budget_max)),
                budget_max: u32::try_from(budget_max).unwrap_or(u32::MAX),
                count: Arc::new(Semaphore::new(count_max)),
                count_max: u32::try_from(count_max).unwrap_or(u32::MAX),
                pending: Vec::new(),
                pending_bytes: 0,
                tx,
                stop: stop_rx,
            },
            config,
            mode,
            progressed: false,
        };
        let session = match driver.connect().await {
            Ok(s) => s,
            Err(Exit::Failed(e)) => {
                tracing::error!(addr = %driver.addr(), error = %e, "connect failed");
                return Err(e);
            }
            // Nobody can stop a stream that is not started yet.
            Err(Exit::Stopped | Exit::Ended) => return Err(ProtoError::Eof("setup").into()),
        };
        let resume = driver.mode.resume().cloned();
        // The task logs to the subscriber that is current here.
        let task = tokio::spawn(driver.run(session).with_current_subscriber());
        let receiving = Self {
            rx,
            stop: StopHandle {
                stop: Arc::new(stop_tx),
            },
            task: Some(task),
            finished: false,
            ready: VecDeque::new(),
            held: None,
        };
        Ok((receiving, resume))
    }
}

impl<T> Receiving<T> {
    async fn stop(&mut self) {
        self.stop.stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.finished = true;
    }

    /// The next item; checkpoint messages met on the way update `checkpoint`. Cancel-safe: a
    /// message is only taken out of the channel when it is handled right away.
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        checkpoint: &mut Checkpoint,
    ) -> Poll<Option<Result<T, StreamError>>> {
        loop {
            if self.finished {
                return Poll::Ready(None);
            }
            if let Some(item) = self.ready.pop_front() {
                if self.ready.is_empty() {
                    // The batch's last item: its room goes back to the task.
                    self.held = None;
                }
                return Poll::Ready(Some(Ok(item)));
            }
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                // Taken out of the channel and handed out in the same poll: cancel-safe.
                Poll::Ready(Some(Msg::Items(items, permits))) => {
                    self.ready.extend(items);
                    self.held = Some(permits);
                }
                Poll::Ready(Some(Msg::Checkpoint(cp))) => *checkpoint = cp,
                Poll::Ready(Some(Msg::Error(e))) => {
                    self.finished = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => self.finished = true,
            }
        }
    }
}

impl<T> Drop for Receiving<T> {
    fn drop(&mut self) {
        // The task sees the stop (or the closed channel), sends COM_QUIT and ends by itself.
        self.stop.stop();
    }
}

/// A running stream of change events (also a [`futures_core::Stream`]).
///
/// Dropping it stops the driver task (which sends `COM_QUIT` and exits).
pub struct BinlogStream {
    inner: Receiving<EngineEvent>,
    checkpoint: Checkpoint,
}

impl std::fmt::Debug for BinlogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinlogStream")
            .field("checkpoint", &self.checkpoint)
            .field("finished", &self.inner.finished)
            .finish_non_exhaustive()
    }
}

impl BinlogStream {
    /// Connect (the first connection is made before this returns, so bad addresses,
    /// credentials, TLS or server configuration fail here) and spawn the driver task on the
    /// current tokio runtime.
    pub async fn start(config: StreamConfig) -> Result<Self, StreamError> {
        let (inner, resume) =
            Receiving::start(config, session::Changes::new(schema_lookup)).await?;
        Ok(Self {
            inner,
            checkpoint: resume.unwrap_or_default(),
        })
    }

    /// A handle to stop the stream from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        self.inner.stop.clone()
    }

    /// Stop the driver task and wait for it to end (it closes the connection with `COM_QUIT`).
    /// Events not yet taken are dropped; [`BinlogStream::checkpoint`] stays at what was handed out.
    pub async fn stop(&mut self) {
        self.inner.stop().await;
    }

    /// The checkpoint of what was handed out: every transaction up to it has been returned by
    /// `next`. Persist it after processing.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// [`BinlogStream::checkpoint`] as a persistable string (see [`start_from_string`]).
    pub fn checkpoint_string(&self) -> String {
        checkpoint_to_string(&self.checkpoint)
    }

    /// The next event; `None` once the stream stopped or ended. An error is final.
    ///
    /// Cancel-safe: if the future is dropped before it completes, no event is lost.
    pub async fn next(&mut self) -> Option<Result<EngineEvent, StreamError>> {
        std::future::poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// Poll form of [`BinlogStream::next`].
    pub fn poll_next_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<EngineEvent, StreamError>>> {
        self.inner.poll_next(cx, &mut self.checkpoint)
    }
}

impl futures_core::Stream for BinlogStream {
    type Item = Result<EngineEvent, StreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_event(cx)
    }
}

/// A running stream of raw binlog events ([`RawEvent`]): every event the server sends, with
/// its binlog file and offset, undecoded — for consumers that decode events themselves (also
/// a [`futures_core::Stream`]).
///
/// It runs like [`BinlogStream`] (one task, a channel bounded by count and by bytes,
/// reconnection with backoff, cancel-safe [`RawBinlogStream::next`], stop) and resumes by file
/// and offset right after the last event it queued; [`RawEvent`] says exactly what that
/// guarantees.
///
/// The stream's `engine` and `schema_lookup` settings are not used. Dropping it stops the
/// driver task.
///
/// ```no_run
/// use mes_tokio::{RawBinlogStream, StreamConfig};
/// use mysql_binlog_codec::{BinlogDecoder, ChecksumAlg, DecoderConfig, MagicMode};
/// use mysql_repl_proto::ConnectConfig;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = StreamConfig::new("127.0.0.1", 3306, ConnectConfig {
///     user: "repl".into(),
///     password: "secret".into(),
///     ..ConnectConfig::default()
/// });
/// let mut stream = RawBinlogStream::start(config).await?;
/// let mut decoder = BinlogDecoder::new(
///     DecoderConfig::default().with_magic(MagicMode::None).with_initial_checksum(ChecksumAlg::Crc32),
/// );
/// while let Some(raw) = stream.next().await {
///     let raw = raw?;
///     if let Some((event, _)) = decoder.decode(&raw.data)? {
///         println!("{}:{} {:?}", raw.file, raw.offset, event.header.event_type());
///     }
///     // Persist this after processing and pass it back as the start position to resume.
///     let _resume_from = stream.resume_string();
/// }
/// # Ok(())
/// # }
/// ```
pub struct RawBinlogStream {
    inner: Receiving<RawEvent>,
    position: Position,
}

impl std::fmt::Debug for RawBinlogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawBinlogStream")
            .field("position", &self.position)
            .field("finished", &self.inner.finished)
            .finish_non_exhaustive()
    }
}

impl RawBinlogStream {
    /// Connect (the first connection is made before this returns, so bad addresses,
    /// credentials, TLS or server configuration fail here) and spawn the driver task on the
    /// current tokio runtime.
    pub async fn start(config: StreamConfig) -> Result<Self, StreamError> {
        let (inner, resume) = Receiving::start(config, session::Raw::default()).await?;
        Ok(Self {
            inner,
            position: resume.map(|cp| cp.position).unwrap_or_default(),
        })
    }

    /// A handle to stop the stream from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        self.inner.stop.clone()
    }

    /// Stop the driver task and wait for it to end (it closes the connection with `COM_QUIT`).
    /// Events not yet taken are dropped; [`RawBinlogStream::resume_point`] stays at what was
    /// handed out.
    pub async fn stop(&mut self) {
        self.inner.stop().await;
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

    /// The next event; `None` once the stream stopped or ended. An error is final.
    ///
    /// Cancel-safe: if the future is dropped before it completes, no event is lost.
    pub async fn next(&mut self) -> Option<Result<RawEvent, StreamError>> {
        std::future::poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// Poll form of [`RawBinlogStream::next`].
    pub fn poll_next_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<RawEvent, StreamError>>> {
        let mut unused = Checkpoint::default();
        let got = self.inner.poll_next(cx, &mut unused);
        if let Poll::Ready(Some(Ok(ev))) = &got {
            self.position = ev.resume.clone();
        }
        got
    }
}

impl futures_core::Stream for RawBinlogStream {
    type Item = Result<RawEvent, StreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_event(cx)
    }
}

/// One connection.
struct Session {
    sock: TcpStream,
    conn: Connection,
    /// The start position this connection asked for (handed to the mode at `Ready`).
    start: StartPosition,
    buf: Vec<u8>,
}

/// Why the driver task leaves a connection (other than at `Ready`).
enum Exit {
    /// Stop requested, the handle dropped, or the consumer went away.
    Stopped,
    /// The server ended the stream (`stop_at_end`).
    Ended,
    /// The connection failed.
    Failed(StreamError),
}

impl<E: Into<StreamError>> From<E> for Exit {
    fn from(e: E) -> Self {
        Self::Failed(e.into())
    }
}

enum Woke {
    Stop,
    Read(std::io::Result<usize>),
    Deadline,
}

/// The consumer side as the driver task sees it: the channel, the budgets (bytes and count),
/// the batch being filled, the stop flag.
struct Outbox<T> {
    tx: mpsc::UnboundedSender<Msg<T>>,
    budget: Arc<Semaphore>,
    budget_max: u32,
    count: Arc<Semaphore>,
    count_max: u32,
    /// Items not sent yet, each with the bytes it counts (clamped to the byte budget).
    pending: Vec<T>,
    pending_bytes: u32,
    stop: watch::Receiver<bool>,
}

/// The driver task: moves bytes between the socket and the protocol state machine, hands
/// binlog events to its mode and queues what the mode produces.
struct Driver<M: Mode> {
    config: StreamConfig,
    out: Outbox<M::Item>,
    mode: M,
    /// A binlog event arrived since the last (re)connect.
    progressed: bool,
}

impl<T: Send + 'static> Outbox<T> {
    /// Resolves when a stop was requested, the stream handle was dropped, or the consumer went
    /// away.
    fn stopped(&self) -> impl Future<Output = ()> + 'static {
        let mut stop = self.stop.clone();
        let tx = self.tx.clone();
        async move {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => {}
                () = tx.closed() => {}
            }
        }
    }

    /// Queue a checkpoint or an error, after the items before it.
    async fn send(&mut self, msg: Msg<T>) -> Result<(), Exit> {
        self.flush().await?;
        self.tx.send(msg).map_err(|_| Exit::Stopped)
    }

    /// Add an item of `size` bytes to the batch; a full batch (by count, or by bytes) is sent.
    async fn push_item(&mut self, item: T, size: usize) -> Result<(), Exit> {
        let n = u32::try_from(size)
            .unwrap_or(u32::MAX)
            .clamp(1, self.budget_max);
        if !self.pending.is_empty() && self.pending_bytes.saturating_add(n) > self.budget_max {
            self.flush().await?;
        }
        self.pending.push(item);
        self.pending_bytes += n;
        if self.pending.len() >= BATCH.min(self.count_max as usize) {
            self.flush().await?;
        }
        Ok(())
    }

    /// Send the batch once both budgets have room for it (waits; a stop ends the wait). Called
    /// before the task waits for the socket, so the consumer never waits for items the task
    /// holds back.
    async fn flush(&mut self) -> Result<(), Exit> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let count = u32::try_from(self.pending.len()).unwrap_or(u32::MAX);
        let count = Self::acquire(&self.count, count, self.stopped()).await?;
        let bytes = Self::acquire(&self.budget, self.pending_bytes, self.stopped()).await?;
        self.pending_bytes = 0;
        let items = std::mem::take(&mut self.pending);
        let permits = Permits {
            _count: count,
            _bytes: bytes,
        };
        self.tx
            .send(Msg::Items(items, permits))
            .map_err(|_| Exit::Stopped)
    }

    /// `n` permits of `sem`, waiting for them unless `stopped` (see [`Self::stopped`]) resolves
    /// first.
    async fn acquire(
        sem: &Arc<Semaphore>,
        n: u32,
        stopped: impl Future<Output = ()>,
    ) -> Result<OwnedSemaphorePermit, Exit> {
        if let Ok(p) = sem.clone().try_acquire_many_owned(n) {
            return Ok(p);
        }
        tokio::select! {
            biased;
            () = stopped => Err(Exit::Stopped),
            p = sem.clone().acquire_many_owned(n) => p.map_err(|_| Exit::Stopped),
        }
    }
}

impl<M: Mode> Driver<M> {
    fn addr(&self) -> String {
        format!("{}:{}", self.config.host, self.config.port)
    }

    fn io(&self, e: impl std::fmt::Display) -> StreamError {
        StreamError::Io {
            addr: self.addr(),
            message: e.to_string(),
        }
    }

    /// Where the next connection starts.
    fn start_position(&self) -> StartPosition {
        session::start_position(self.mode.resume(), &self.config.connect.start)
    }

    /// The resume point as text (for logs).
    fn checkpoint_text(&self) -> String {
        self.mode
            .resume()
            .map_or_else(|| "none".into(), checkpoint_to_string)
    }

    /// The sans-IO loop for one connection: `Ok` once the dump started (`Ready`), else why the
    /// connection is left.
    async fn drive(&mut self, s: &mut Session) -> Result<(), Exit> {
        loop {
            match s.conn.poll_output() {
                Output::Transmit(bytes) => {
                    s.sock.write_all(&bytes).await.map_err(|e| self.io(e))?
                }
                Output::Event(ConnEvent::Binlog { event, .. }) => self.feed(event).await?,
                Output::Event(ConnEvent::Ready(info)) => {
                    self.mode.ready(&self.config, &info, &s.start);
                    return Ok(());
                }
                // Without `stop_at_end` the dump blocks at the end, so an EOF means the server
                // ended it early (a shutdown, a killed dump thread): a lost connection.
                Output::Closed(Ok(())) if !self.config.connect.stop_at_end => {
                    return Err(ProtoError::Eof("binlog stream ended by the server").into());
                }
                Output::Closed(Ok(())) => return Err(Exit::Ended),
                Output::Closed(Err(e)) => return Err(e.into()),
                Output::Wait(deadline) => {
                    // Hand over what is decoded before waiting for more.
                    self.out.flush().await?;
                    let woke = tokio::select! {
                        biased;
                        () = self.out.stopped() => Woke::Stop,
                        r = s.sock.read(&mut s.buf) => Woke::Read(r),
                        () = sleep_until(deadline) => Woke::Deadline,
                    };
                    match woke {
                        Woke::Stop => return Err(Exit::Stopped),
                        Woke::Read(Ok(0)) => s.conn.handle_eof(),
                        Woke::Read(Ok(n)) => s.conn.handle_input(Instant::now(), &s.buf[..n]),
                        Woke::Read(Err(e)) => return Err(self.io(e).into()),
                        Woke::Deadline => s.conn.handle_timeout(Instant::now()),
                    }
                }
                // EndOfStream (`Closed(Ok)` follows) and future outputs.
                _ => {}
            }
        }
    }

    /// Connect and run the protocol until the dump started.
    async fn connect(&mut self) -> Result<Session, Exit> {
        let start = self.start_position();
        tracing::debug!(
            host = %self.config.host,
            port = self.config.port,
            user = %self.config.connect.user,
            tls_mode = ?self.config.connect.tls.mode,
            start = %obs::describe_start(&start),
            "connecting"
        );
        let connect = TcpStream::connect((self.config.host.as_str(), self.config.port));
        let sock = tokio::time::timeout(self.config.connect.connect_timeout, connect)
            .await
            .map_err(|_| self.io("TCP connect timed out (connect_timeout)"))?
            .map_err(|e| self.io(e))?;
        let _ = sock.set_nodelay(true);
        let mut cc = self.config.connect.clone();
        cc.start = start;
        let mut s = Session {
            sock,
            conn: Connection::new(cc.clone(), Instant::now())?,
            start: cc.start,
            buf: vec![0u8; 64 * 1024],
        };
        self.progressed = false;
        match self.drive(&mut s).await {
            Ok(()) => Ok(s),
            Err(Exit::Ended) => Err(ProtoError::Eof("setup").into()),
            Err(e) => Err(e),
        }
    }

    /// Hand one binlog event to the mode and queue what it produces.
    async fn feed(&mut self, mut event: bytes::Bytes) -> Result<(), Exit> {
        self.progressed = true;
        let mut out = Vec::new();
        loop {
            self.mode.feed(&mut event, &mut out)?;
            for o in out.drain(..) {
                match o {
                    Out::Item(item) => {
                        let size = M::size(&item);
                        self.out.push_item(item, size).await?;
                    }
                    Out::Checkpoint(cp) => self.out.send(Msg::Checkpoint(cp)).await?,
                }
            }
            if event.is_empty() {
                return Ok(());
            }
        }
    }

    /// The task: stream, reconnect with capped jittered backoff, stop.
    async fn run(mut self, mut session: Session) {
        let mut attempts = 0u32;
        loop {
            let error = match self.drive(&mut session).await {
                Ok(()) => continue, // `Ready` comes once per connection, inside `connect`.
                Err(Exit::Stopped) => {
                    tracing::info!(addr = %self.addr(), "stream stopped");
                    return close(session).await;
                }
                Err(Exit::Ended) => {
                    // Items of the last events still go out before the channel closes.
                    let _ = self.out.flush().await;
                    tracing::info!(
                        addr = %self.addr(),
                        checkpoint = %self.checkpoint_text(),
                        "binlog stream ended (end of the binlog reached)"
                    );
                    return;
                }
                Err(Exit::Failed(e)) => e,
            };
            // Every item decoded before the failure is good: hand it over first.
            if self.out.flush().await.is_err() {
                tracing::info!(addr = %self.addr(), "stream stopped");
                return;
            }
            if self.progressed {
                attempts = 0;
            }
            if !error.retryable() || self.config.reconnect.max_attempts == 0 {
                tracing::error!(addr = %self.addr(), error = %error, "stream failed");
                let _ = self.out.send(Msg::Error(error)).await;
                return;
            }
            tracing::warn!(
                addr = %self.addr(),
                error = %error,
                checkpoint = %self.checkpoint_text(),
                "connection lost; reconnecting"
            );
            let mut last = error;
            session = loop {
                attempts += 1;
                if attempts > self.config.reconnect.max_attempts {
                    let error = StreamError::ReconnectExhausted {
                        attempts: attempts - 1,
                        last: Box::new(last),
                    };
                    tracing::error!(addr = %self.addr(), error = %error, "stream failed");
                    let _ = self.out.send(Msg::Error(error)).await;
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
                tokio::select! {
                    biased;
                    () = self.out.stopped() => {
                        tracing::info!(addr = %self.addr(), "stream stopped");
                        return;
                    }
                    () = tokio::time::sleep(sleep) => {}
                }
                match self.connect().await {
                    Ok(s) => {
                        tracing::info!(
                            addr = %self.addr(),
                            attempt = attempts,
                            resume = %self.checkpoint_text(),
                            "reconnected; resuming"
                        );
                        break s;
                    }
                    Err(Exit::Failed(e)) if e.retryable() => {
                        tracing::warn!(
                            addr = %self.addr(),
                            attempt = attempts,
                            error = %e,
                            "reconnect attempt failed"
                        );
                        last = e;
                    }
                    Err(Exit::Failed(e)) => {
                        tracing::error!(addr = %self.addr(), error = %e, "stream failed");
                        let _ = self.out.send(Msg::Error(e)).await;
                        return;
                    }
                    Err(Exit::Stopped | Exit::Ended) => {
                        tracing::info!(addr = %self.addr(), "stream stopped");
                        return;
                    }
                }
            };
        }
    }
}

/// `COM_QUIT` (and TLS close_notify), best effort and briefly.
async fn close(mut s: Session) {
    s.conn.close();
    let flush = async {
        while let Output::Transmit(b) = s.conn.poll_output() {
            s.sock.write_all(&b).await?;
        }
        s.sock.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), flush).await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mysql_repl_proto::ConnectConfig;

    #[tokio::test]
    async fn refused_port_fails_fast_and_typed() {
        // Bind then drop a listener: its port is (almost certainly) closed now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = Instant::now();
        let config = StreamConfig::new("127.0.0.1", port, ConnectConfig::default());
        match BinlogStream::start(config).await {
            Err(StreamError::Io { addr, .. }) => assert!(addr.ends_with(&format!(":{port}"))),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_silent_server_hits_connect_timeout() {
        // A listener that accepts and never speaks: the handshake deadline must fire.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(sock);
        });
        let mut config = StreamConfig::new("127.0.0.1", port, ConnectConfig::default());
        config.connect.connect_timeout = Duration::from_millis(300);
        let started = Instant::now();
        match BinlogStream::start(config).await {
            Err(StreamError::Proto(ProtoError::Timeout(_))) => {}
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        accept.abort();
    }
}
