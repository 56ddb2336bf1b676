//! Connection bookkeeping shared by both drivers (this one and mes-tokio): where to (re)start,
//! and what a driver does with a connection's binlog events — a [`Mode`]: change events through
//! the engine ([`Changes`]) or raw events ([`Raw`]). The drivers only move bytes and queue what
//! a mode produces. Not a stable API.

use bytes::{Buf, Bytes};
use mysql_binlog_codec::engine::{
    Checkpoint, Engine, EngineError, EngineEvent, GtidCheckpoint, MariaGtidPos, MysqlGtidSet,
    Position, SchemaSource,
};
use mysql_binlog_codec::{
    BinlogDecoder, ChecksumAlg, DecodeError, DecodeErrorKind, DecoderConfig, EventData,
    EventHeader, EventType, MagicMode,
};
use mysql_repl_proto::{Flavor, ServerInfo, StartPosition};

use crate::obs::StreamLog;
use crate::{RawEvent, StreamConfig, StreamError};

/// Where to (re)start: the resume point a mode reports, else the configured start.
pub fn start_position(last: Option<&Checkpoint>, configured: &StartPosition) -> StartPosition {
    let Some(cp) = last else {
        return configured.clone();
    };
    match &cp.gtid {
        GtidCheckpoint::Mysql(s) if !s.is_empty() => StartPosition::MysqlGtidSet(s.to_string()),
        GtidCheckpoint::Maria(p) if !p.is_empty() => StartPosition::MariaGtid(p.to_string()),
        _ if !cp.position.file.is_empty() && cp.position.offset >= 4 => {
            StartPosition::FilePosition {
                file: cp.position.file.to_string(),
                position: cp.position.offset,
            }
        }
        _ => configured.clone(),
    }
}

/// What a mode hands to the driver for the consumer, in order.
#[derive(Debug)]
pub enum Out<T> {
    /// An item for the consumer.
    Item(T),
    /// Every item before this belongs to transactions up to this checkpoint.
    Checkpoint(Checkpoint),
}

/// What a driver does with the binlog events of its connections. Both drivers run the same
/// modes; a mode does no I/O.
pub trait Mode: Send + 'static {
    /// What the consumer receives.
    type Item: Send + 'static;

    /// Where a reconnection resumes (through [`start_position`]); `None` = the configured
    /// start.
    fn resume(&self) -> Option<&Checkpoint>;

    /// A connection's dump started from `start`.
    fn ready(&mut self, config: &StreamConfig, info: &ServerInfo, start: &StartPosition);

    /// Take (a prefix of) one binlog event from `event` and push what it produces to `out`.
    /// The driver queues `out` and calls again while `event` is not empty.
    fn feed(
        &mut self,
        event: &mut Bytes,
        out: &mut Vec<Out<Self::Item>>,
    ) -> Result<(), StreamError>;

    /// What an item counts against the queue's byte bound.
    fn size(item: &Self::Item) -> usize;
}

/// Logs a started dump (no secrets).
fn log_connected(config: &StreamConfig, info: &ServerInfo, start: &StartPosition, resume: bool) {
    tracing::info!(
        host = %config.host,
        port = config.port,
        tls = info.tls,
        tls_verified = info.tls_verified,
        auth_plugin = %info.auth_plugin,
        server_version = %info.server_version,
        flavor = ?info.flavor,
        connection_id = info.connection_id,
        checksum = info.checksum,
        start = %crate::obs::describe_start(start),
        resume,
        "connected; binlog dump started"
    );
}

/// The engine for a connection whose dump just started from `start`: checksum framing as
/// negotiated, the schema source, and a checkpoint seeded with where the dump starts (the
/// resume point, or the resolved start), so a connection lost before the first transaction
/// resumes there — a "current" start must not become a later "current".
fn engine_for(
    config: &StreamConfig,
    info: &ServerInfo,
    start: &StartPosition,
    last: Option<&Checkpoint>,
    schema: Option<Box<dyn SchemaSource + Send>>,
) -> Engine {
    let checksum = if info.checksum {
        ChecksumAlg::Crc32
    } else {
        ChecksumAlg::Off
    };
    let dec = DecoderConfig::default()
        .with_magic(MagicMode::None)
        .with_initial_checksum(checksum);
    let mut engine = Engine::new(config.engine.clone().with_decoder(dec));
    if let Some(schema) = schema {
        engine.set_schema_source(schema);
    }
    if let Some(cp) = last {
        engine.set_start_gtid(cp.gtid.clone());
        engine.set_start_position(cp.position.clone());
        return engine;
    }
    match (start, &info.start_file) {
        (StartPosition::MysqlGtidSet(s), _) if info.flavor == Flavor::Mysql => {
            if let Some(set) = MysqlGtidSet::parse(s) {
                engine.set_start_gtid(GtidCheckpoint::Mysql(set));
            }
        }
        (StartPosition::MariaGtid(p), _) => {
            if let Some(pos) = MariaGtidPos::parse(p) {
                engine.set_start_gtid(GtidCheckpoint::Maria(pos));
            }
        }
        (_, Some((file, pos))) => engine.set_start_position(Position {
            file: file.as_str().into(),
            offset: *pos,
        }),
        _ => {}
    }
    engine
}

/// Builds the column-name lookup a driver plugs into the engine (`schema_lookup`).
pub type SchemaFactory = fn(&StreamConfig) -> Box<dyn SchemaSource + Send>;

/// Change events: binlog events through the [`Engine`]; resumes from the last transaction
/// boundary queued.
pub struct Changes {
    engine: Option<Engine>,
    /// The checkpoint after the last transaction queued (where a reconnect resumes).
    last: Option<Checkpoint>,
    schema: SchemaFactory,
    log: StreamLog,
}

impl Changes {
    /// A mode whose engines look column names up through `schema` when the stream's
    /// `schema_lookup` is on.
    pub fn new(schema: SchemaFactory) -> Self {
        Self {
            engine: None,
            last: None,
            schema,
            log: StreamLog::default(),
        }
    }
}

impl Mode for Changes {
    type Item = EngineEvent;

    fn resume(&self) -> Option<&Checkpoint> {
        self.last.as_ref()
    }

    fn ready(&mut self, config: &StreamConfig, info: &ServerInfo, start: &StartPosition) {
        log_connected(config, info, start, self.last.is_some());
        let schema = config.schema_lookup.then(|| (self.schema)(config));
        let engine = engine_for(config, info, start, self.last.as_ref(), schema);
        if self.last.is_none() {
            self.last = Some(engine.checkpoint().clone());
        }
        self.engine = Some(engine);
    }

    fn feed(
        &mut self,
        event: &mut Bytes,
        out: &mut Vec<Out<EngineEvent>>,
    ) -> Result<(), StreamError> {
        let Some(engine) = self.engine.as_mut() else {
            event.clear();
            return Ok(());
        };
        let used = engine.handle_input(event)?;
        event.advance(used);
        while let Some(ev) = engine.poll_event() {
            self.log.event(&ev);
            out.push(Out::Item(ev));
        }
        let cp = engine.checkpoint();
        if self.last.as_ref() != Some(cp) {
            self.log.checkpoint(cp);
            self.last = Some(cp.clone());
            out.push(Out::Checkpoint(cp.clone()));
        }
        Ok(())
    }

    fn size(item: &EngineEvent) -> usize {
        item.approx_size()
    }
}

/// Raw events: every binlog event as sent, with its file and offset. Resumes by file and
/// offset right after the last event queued; with a GTID start, by that GTID start until the
/// first transaction (GTID event) arrived — before it the server may still be skipping the
/// transactions the start excludes, which a dump by position would not skip.
pub struct Raw {
    /// The position after the last event queued (file and offset; no GTIDs).
    position: Option<Checkpoint>,
    /// The configured start is a GTID start and no GTID event was queued yet.
    gtid_start: bool,
    /// Whether events carry a CRC32 now.
    checksum: bool,
    /// Decodes the FORMAT_DESCRIPTION and ROTATE events (checksum algorithm, next file).
    decoder: BinlogDecoder,
    log: StreamLog,
}

impl Default for Raw {
    fn default() -> Self {
        Self {
            position: None,
            gtid_start: false,
            checksum: false,
            decoder: BinlogDecoder::new(DecoderConfig::default().with_magic(MagicMode::None)),
            log: StreamLog::default(),
        }
    }
}

impl Mode for Raw {
    type Item = RawEvent;

    fn resume(&self) -> Option<&Checkpoint> {
        if self.gtid_start {
            return None;
        }
        self.position.as_ref()
    }

    fn ready(&mut self, config: &StreamConfig, info: &ServerInfo, start: &StartPosition) {
        log_connected(config, info, start, self.position.is_some());
        if self.position.is_none() {
            self.gtid_start = matches!(
                config.connect.start,
                StartPosition::MysqlGtidSet(_) | StartPosition::MariaGtid(_)
            );
            self.position = info.start_file.as_ref().map(|(file, offset)| Checkpoint {
                position: Position {
                    file: file.as_str().into(),
                    offset: *offset,
                },
                gtid: GtidCheckpoint::None,
            });
        }
        self.checksum = info.checksum;
        let alg = if info.checksum {
            ChecksumAlg::Crc32
        } else {
            ChecksumAlg::Off
        };
        self.decoder = BinlogDecoder::new(
            DecoderConfig::default()
                .with_magic(MagicMode::None)
                .with_initial_checksum(alg),
        );
    }

    fn feed(&mut self, event: &mut Bytes, out: &mut Vec<Out<RawEvent>>) -> Result<(), StreamError> {
        let data = std::mem::take(event);
        let current = self
            .position
            .as_ref()
            .map(|cp| cp.position.clone())
            .unwrap_or_default();
        let error = |kind, event_type| {
            StreamError::Engine(EngineError::Decode(DecodeError::new(
                kind,
                event_type,
                current.offset,
            )))
        };
        let Some(header) = EventHeader::parse(&data) else {
            return Err(error(
                DecodeErrorKind::InvalidEventSize {
                    size: data.len() as u64,
                },
                None,
            ));
        };
        if header.event_size as usize != data.len() {
            return Err(error(
                DecodeErrorKind::Malformed {
                    what: format!(
                        "event_size {} but the server sent {} bytes",
                        header.event_size,
                        data.len()
                    ),
                },
                Some(header.type_code),
            ));
        }
        let kind = header.event_type();
        let made_up = header.log_pos == 0
            || header.is_artificial()
            || matches!(kind, EventType::Heartbeat | EventType::HeartbeatV2);
        let mut rotate = None;
        let mut checksum = self.checksum;
        if matches!(kind, EventType::FormatDescription | EventType::Rotate) {
            match self.decoder.decode(&data).map_err(EngineError::from)? {
                Some((ev, _)) => match ev.data {
                    EventData::FormatDescription(fde) => {
                        // The FDE ends in a CRC32 whenever it has the algorithm field; the
                        // events after it only with CRC32 on.
                        checksum = fde.checksum != ChecksumAlg::Undefined;
                        self.checksum = fde.checksum == ChecksumAlg::Crc32;
                    }
                    EventData::Rotate(r) => {
                        rotate = Some(Position {
                            file: r.next_file.as_ref().into(),
                            offset: r.position,
                        });
                    }
                    _ => {}
                },
                None => {
                    return Err(error(
                        DecodeErrorKind::Truncated {
                            needed: u64::from(header.event_size),
                            available: data.len() as u64,
                        },
                        Some(header.type_code),
                    ));
                }
            }
        }
        let start_in_file = |end: u64| end.saturating_sub(u64::from(header.event_size));
        let (file, offset, resume) = match rotate {
            Some(next) if made_up => (next.file.clone(), next.offset, next),
            Some(next) => (
                current.file.clone(),
                start_in_file(u64::from(header.log_pos)),
                next,
            ),
            None if made_up => (current.file.clone(), current.offset, current),
            None => {
                let end = u64::from(header.log_pos);
                let resume = Position {
                    file: current.file.clone(),
                    offset: end,
                };
                (current.file, start_in_file(end), resume)
            }
        };
        if matches!(
            kind,
            EventType::Gtid | EventType::GtidTagged | EventType::MariaGtid
        ) {
            self.gtid_start = false;
        }
        if !made_up {
            self.log.timestamp(header.timestamp);
        }
        self.log.position(&resume);
        self.position = Some(Checkpoint {
            position: resume.clone(),
            gtid: GtidCheckpoint::None,
        });
        out.push(Out::Item(RawEvent {
            header,
            data,
            checksum,
            file,
            offset,
            resume,
        }));
        Ok(())
    }

    fn size(item: &RawEvent) -> usize {
        64 + item.data.len()
    }
}
