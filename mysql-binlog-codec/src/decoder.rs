//! Framing and event dispatch: [`BinlogDecoder`] turns a byte stream into [`Event`]s.
//!
//! It frames by `event_size` first, verifies the CRC32 (switchable), tracks the most recent
//! FORMAT_DESCRIPTION_EVENT (post-header lengths, checksum algorithm) and parses the framed
//! slice with complete parsers. It does no I/O and keeps no input: the caller owns the buffer,
//! feeds whatever it has, and drops the consumed prefix.

use crate::error::{DecodeError, DecodeErrorKind, PResult};
use crate::events::{self, *};
use crate::fde::{ChecksumAlg, FormatDescription, parse_fde};
use crate::gtid::{GtidSet, MariaGtid};
use crate::header::{EventHeader, FLAG_BINLOG_IN_USE, HEADER_LEN};
use crate::payload::{TransactionPayload, parse_transaction_payload};
use crate::rows::{RowsEvent, RowsKind, parse_rows};
use crate::table_map::{TableMap, parse_table_map};
use std::borrow::Cow;

/// The binlog file magic.
pub const BINLOG_MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];
/// Magic of a MySQL encrypted binlog file (`binlog_encryption=ON`).
pub const ENCRYPTED_BINLOG_MAGIC: [u8; 4] = [0xfd, b'b', b'i', b'n'];

/// A decoded event: header, typed body, its stream offset and its raw bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// The common header.
    pub header: EventHeader,
    /// Absolute offset of the event's first byte in the stream.
    pub offset: u64,
    /// The typed body.
    pub data: EventData<'a>,
    /// The whole event as framed (header, body and checksum).
    pub raw: &'a [u8],
}

/// Typed event bodies.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventData<'a> {
    /// FORMAT_DESCRIPTION_EVENT.
    FormatDescription(FormatDescription<'a>),
    /// START_EVENT_V3 (only in pre-5.0 logs): binlog version and server version.
    StartV3 {
        /// Binlog version.
        binlog_version: u16,
        /// Server version.
        server_version: Cow<'a, str>,
    },
    /// ROTATE_EVENT.
    Rotate(Rotate<'a>),
    /// QUERY_EVENT or MariaDB QUERY_COMPRESSED_EVENT.
    Query(Query<'a>),
    /// XID_EVENT: commit of an XA-capable (InnoDB) transaction.
    Xid(u64),
    /// GTID / ANONYMOUS_GTID / GTID_TAGGED.
    Gtid(Gtid),
    /// PREVIOUS_GTIDS_LOG_EVENT.
    PreviousGtids(GtidSet),
    /// TABLE_MAP_EVENT.
    TableMap(TableMap<'a>),
    /// Any rows event (v0/v1/v2, partial, MariaDB compressed).
    Rows(RowsEvent<'a>),
    /// TRANSACTION_PAYLOAD_EVENT: iterate its inner events with
    /// [`TransactionPayload::events`].
    TransactionPayload(TransactionPayload<'a>),
    /// HEARTBEAT_LOG_EVENT / HEARTBEAT_LOG_EVENT_V2.
    Heartbeat(Heartbeat<'a>),
    /// ROWS_QUERY_LOG_EVENT: the statement that produced the following rows.
    RowsQuery(Cow<'a, str>),
    /// INTVAR_EVENT: (type: 1 LAST_INSERT_ID, 2 INSERT_ID; value).
    IntVar {
        /// 1 = LAST_INSERT_ID, 2 = INSERT_ID.
        kind: u8,
        /// The value.
        value: u64,
    },
    /// RAND_EVENT seeds.
    Rand {
        /// First seed.
        seed1: u64,
        /// Second seed.
        seed2: u64,
    },
    /// USER_VAR_EVENT.
    UserVar(UserVar<'a>),
    /// STOP_EVENT.
    Stop,
    /// INCIDENT_EVENT.
    Incident(Incident<'a>),
    /// XA_PREPARE_LOG_EVENT.
    XaPrepare(XaPrepare<'a>),
    /// VIEW_CHANGE_EVENT.
    ViewChange(ViewChange<'a>),
    /// TRANSACTION_CONTEXT_EVENT.
    TransactionContext(TransactionContext<'a>),
    /// LOAD_EVENT / NEW_LOAD_EVENT.
    Load(Load<'a>),
    /// CREATE_FILE_EVENT, APPEND_BLOCK_EVENT, BEGIN_LOAD_QUERY_EVENT.
    FileBlock(FileBlock<'a>),
    /// EXEC_LOAD_EVENT / DELETE_FILE_EVENT: the file id.
    FileId(u32),
    /// EXECUTE_LOAD_QUERY_EVENT.
    ExecuteLoadQuery(ExecuteLoadQuery<'a>),
    /// MariaDB ANNOTATE_ROWS_EVENT: the statement of the following rows.
    MariaAnnotateRows(Cow<'a, str>),
    /// MariaDB BINLOG_CHECKPOINT_EVENT: the oldest binlog still needed for crash recovery.
    MariaBinlogCheckpoint(Cow<'a, str>),
    /// MariaDB GTID_EVENT (starts an event group).
    MariaGtid(MariaGtidEvent<'a>),
    /// MariaDB GTID_LIST_EVENT.
    MariaGtidList(Vec<MariaGtid>),
    /// MariaDB START_ENCRYPTION_EVENT.
    MariaStartEncryption(StartEncryption),
    /// An event the reader may skip: IGNORABLE_LOG_EVENT, SLAVE_EVENT, or an unknown type that
    /// carries `LOG_EVENT_IGNORABLE_F` (e.g. Aurora's type 100). The body is kept raw.
    Ignorable(&'a [u8]),
}

/// Decoder settings.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    verify_checksum: bool,
    max_event_size: u64,
    max_decompressed_size: u64,
    start_offset: u64,
    magic: MagicMode,
    initial_checksum: ChecksumAlg,
}

/// How the decoder treats the 4-byte file magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MagicMode {
    /// The stream must start with `\xfebin` (binlog files).
    Require,
    /// Consume the magic when the stream starts with it; otherwise start with an event.
    Auto,
    /// The stream starts directly with an event (replication stream).
    None,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            verify_checksum: true,
            max_event_size: 1 << 30,
            max_decompressed_size: 1 << 30,
            start_offset: 0,
            magic: MagicMode::Auto,
            initial_checksum: ChecksumAlg::Undefined,
        }
    }
}

impl DecoderConfig {
    /// Verify CRC32 checksums (default true).
    pub fn with_verify_checksum(mut self, on: bool) -> Self {
        self.verify_checksum = on;
        self
    }

    /// Refuse events larger than this (default 1 GiB; MySQL's own maximum).
    pub fn with_max_event_size(mut self, max: u64) -> Self {
        self.max_event_size = max;
        self
    }

    /// Cap on any decompressed block (MariaDB compressed events and columns; default 1 GiB).
    pub fn with_max_decompressed_size(mut self, max: u64) -> Self {
        self.max_decompressed_size = max;
        self
    }

    /// Offset of the first byte fed (e.g. the dump start position; default 0).
    pub fn with_start_offset(mut self, offset: u64) -> Self {
        self.start_offset = offset;
        self
    }

    /// File-magic handling (default [`MagicMode::Auto`]).
    pub fn with_magic(mut self, magic: MagicMode) -> Self {
        self.magic = magic;
        self
    }

    /// Checksum algorithm of events that arrive before the first FORMAT_DESCRIPTION_EVENT (the
    /// artificial ROTATE of a replication stream carries a CRC when the connection negotiated
    /// `@master_binlog_checksum`). Default: none.
    pub fn with_initial_checksum(mut self, alg: ChecksumAlg) -> Self {
        self.initial_checksum = alg;
        self
    }
}

/// Streaming binlog decoder.
///
/// Call [`BinlogDecoder::decode`] with the unconsumed input; it returns the next event and
/// the number of bytes it used, or `Ok(None)` when the input holds no complete event yet. At
/// end of input call [`BinlogDecoder::finish`] with what is left to learn whether the stream
/// ended cleanly.
#[derive(Debug, Clone)]
pub struct BinlogDecoder {
    config: DecoderConfig,
    fde: Option<FormatDescription<'static>>,
    offset: u64,
    magic_done: bool,
    encrypted: bool,
    /// Servers 5.1.0–5.1.15 (and the 5.1/5.2 "a_drop" preview builds) numbered events
    /// 16–22 differently; MySQL maps them through a permutation, and so do we.
    old_numbering: bool,
}

/// Whether an FDE comes from a server with the pre-5.1.16 event numbering: version 5.1.0–5.1.15
/// or an `a_drop` preview build, and exactly 22 post-header lengths (types 1–22).
fn has_old_numbering(fde: &FormatDescription<'_>) -> bool {
    let (a, b, c) = fde.version_triple();
    let preview = fde.server_version.contains("-a_drop");
    let old = (a, b) == (5, 1) && c <= 15 || (a == 5 && preview);
    old && fde.post_header_lengths.len() == 22
}

/// The pre-5.1.16 → current type-code mapping (identity outside 16–22).
fn map_old_type(code: u8) -> u8 {
    match code {
        16 => 19, // TABLE_MAP
        17 => 20, // PRE_GA_WRITE_ROWS
        18 => 21, // PRE_GA_UPDATE_ROWS
        19 => 22, // PRE_GA_DELETE_ROWS
        20 => 16, // XID
        21 => 17, // BEGIN_LOAD_QUERY
        22 => 18, // EXECUTE_LOAD_QUERY
        other => other,
    }
}

impl Default for BinlogDecoder {
    fn default() -> Self {
        Self::new(DecoderConfig::default())
    }
}

impl BinlogDecoder {
    /// A decoder with the given settings.
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            offset: config.start_offset,
            magic_done: config.magic == MagicMode::None,
            config,
            fde: None,
            encrypted: false,
            old_numbering: false,
        }
    }

    /// Frame and parse without verifying checksums (for a second pass over bytes whose
    /// checksums another decoder verifies).
    pub(crate) fn skip_checksum_checks(&mut self) {
        self.config.verify_checksum = false;
    }

    /// Absolute offset of the next byte to be fed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The FORMAT_DESCRIPTION_EVENT in force.
    pub fn format_description(&self) -> Option<&FormatDescription<'static>> {
        self.fde.as_ref()
    }

    /// The checksum algorithm in force for the next event.
    pub fn checksum(&self) -> ChecksumAlg {
        self.fde
            .as_ref()
            .map_or(self.config.initial_checksum, |f| f.checksum)
    }

    /// Reset the stream position (e.g. after a ROTATE on a replication stream, where offsets
    /// restart in the next file).
    pub fn set_offset(&mut self, offset: u64) {
        self.offset = offset;
    }

    /// Decode the next event from `buf` (the input not yet consumed).
    ///
    /// Returns `Ok(Some((event, consumed)))`, or `Ok(None)` when `buf` does not yet hold a
    /// whole event (feed more and call again with the same prefix). The result never depends
    /// on how the input was split.
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(Event<'a>, usize)>, DecodeError> {
        let mut skip = 0usize;
        if !self.magic_done {
            let n = buf.len().min(4);
            let is_magic_prefix = buf[..n] == BINLOG_MAGIC[..n];
            let is_encrypted_prefix = buf[..n] == ENCRYPTED_BINLOG_MAGIC[..n];
            if n < 4
                && (is_magic_prefix
                    || is_encrypted_prefix
                    || self.config.magic == MagicMode::Require)
            {
                // Decide only on whole magic bytes so the result never depends on the split.
                return Ok(None);
            }
            if is_magic_prefix {
                skip = 4;
            } else if is_encrypted_prefix {
                return Err(DecodeError::new(
                    DecodeErrorKind::Encrypted,
                    None,
                    self.offset,
                ));
            } else if self.config.magic == MagicMode::Require {
                return Err(DecodeError::new(
                    DecodeErrorKind::BadMagic {
                        found: buf[..4].to_vec(),
                    },
                    None,
                    self.offset,
                ));
            } else {
                self.magic_done = true;
            }
        }
        let offset = self.offset + skip as u64;
        let rest = &buf[skip..];
        let Some(header) = EventHeader::parse(rest) else {
            return Ok(None);
        };
        let err = |kind| DecodeError::new(kind, Some(header.type_code), offset);
        let size = u64::from(header.event_size);
        if size > self.config.max_event_size {
            return Err(err(DecodeErrorKind::EventTooLarge {
                size,
                max: self.config.max_event_size,
            }));
        }
        if size < HEADER_LEN as u64 {
            return Err(err(DecodeErrorKind::InvalidEventSize { size }));
        }
        let size = size as usize;
        let Some(frame) = rest.get(..size) else {
            return Ok(None);
        };
        let event = self.decode_frame(header, frame, offset).map_err(err)?;
        if skip > 0 {
            self.magic_done = true;
        }
        self.offset = offset + size as u64;
        Ok(Some((event, skip + size)))
    }

    /// Report whether the stream may end here: `leftover` are the bytes not consumed. An empty
    /// leftover (or only a complete magic) is a clean end; anything else is a truncated event.
    pub fn finish(&self, leftover: &[u8]) -> Result<(), DecodeError> {
        if leftover.is_empty() {
            return Ok(());
        }
        if !self.magic_done && leftover.len() < 4 {
            let found = leftover.to_vec();
            let kind = if self.config.magic == MagicMode::Require
                && BINLOG_MAGIC[..found.len()] != found[..]
            {
                DecodeErrorKind::BadMagic { found }
            } else {
                DecodeErrorKind::Truncated {
                    needed: 4,
                    available: leftover.len() as u64,
                }
            };
            return Err(DecodeError::new(kind, None, self.offset));
        }
        let (skip, offset) = if !self.magic_done && leftover.starts_with(&BINLOG_MAGIC) {
            (4, self.offset + 4)
        } else {
            (0, self.offset)
        };
        let rest = &leftover[skip..];
        if rest.is_empty() {
            return Ok(());
        }
        let (needed, event_type) = match EventHeader::parse(rest) {
            Some(h) => (u64::from(h.event_size), Some(h.type_code)),
            None => (HEADER_LEN as u64, rest.get(4).copied()),
        };
        Err(DecodeError::new(
            DecodeErrorKind::Truncated {
                needed,
                available: rest.len() as u64,
            },
            event_type,
            offset,
        ))
    }

    fn decode_frame<'a>(
        &mut self,
        mut header: EventHeader,
        frame: &'a [u8],
        offset: u64,
    ) -> PResult<Event<'a>> {
        if self.old_numbering {
            header.type_code = map_old_type(header.type_code);
        }
        let after_header = &frame[HEADER_LEN..];
        if header.type_code == 15 {
            let (fde, has_crc) = parse_fde(after_header)?;
            if has_crc && self.config.verify_checksum {
                verify_crc(frame, true)?;
            }
            let mut own = fde.clone().into_owned();
            self.old_numbering = has_old_numbering(&own);
            if self.old_numbering {
                let old = own.post_header_lengths.to_vec();
                let mut canon = old.clone();
                for (i, &len) in old.iter().enumerate() {
                    let code = map_old_type(i as u8 + 1);
                    canon[usize::from(code) - 1] = len;
                }
                own.post_header_lengths = Cow::Owned(canon);
            }
            self.fde = Some(own);
            self.encrypted = false;
            return Ok(Event {
                header,
                offset,
                data: EventData::FormatDescription(fde),
                raw: frame,
            });
        }
        let checksum = self.checksum();
        let body = if checksum == ChecksumAlg::Crc32 {
            if frame.len() < HEADER_LEN + 4 {
                return Err(DecodeErrorKind::InvalidEventSize {
                    size: frame.len() as u64,
                });
            }
            if self.config.verify_checksum {
                verify_crc(frame, false)?;
            }
            &frame[HEADER_LEN..frame.len() - 4]
        } else {
            after_header
        };
        if self.encrypted {
            return Err(DecodeErrorKind::Encrypted);
        }
        let data = {
            let fde = match &self.fde {
                Some(f) => f,
                None if matches!(header.type_code, 4 | 1 | 27 | 41) => {
                    &FormatDescription::default_v4()
                }
                None => return Err(DecodeErrorKind::MissingFormatDescription),
            };
            parse_body(
                header,
                body,
                fde,
                self.config.max_decompressed_size as usize,
            )?
        };
        if matches!(data, EventData::MariaStartEncryption(_)) {
            self.encrypted = true;
        }
        Ok(Event {
            header,
            offset,
            data,
            raw: frame,
        })
    }
}

/// Whether a whole event (header, body, 4-byte CRC32 trailer) carries the right checksum, the
/// way the server computes it (a FORMAT_DESCRIPTION_EVENT's with its "binlog in use" flag
/// cleared). For clients that pass events on undecoded and only count corruption. A frame too
/// short to hold a header and a trailer does not match.
pub fn crc32_matches(frame: &[u8]) -> bool {
    if frame.len() < HEADER_LEN + 4 {
        return false;
    }
    verify_crc(frame, frame[4] == 15).is_ok()
}

fn verify_crc(frame: &[u8], clear_in_use: bool) -> PResult<()> {
    let n = frame.len() - 4;
    let stored = u32::from_le_bytes([frame[n], frame[n + 1], frame[n + 2], frame[n + 3]]);
    let mut h = crc32fast::Hasher::new();
    if clear_in_use {
        h.update(&frame[..17]);
        let flags = u16::from_le_bytes([frame[17], frame[18]]) & !FLAG_BINLOG_IN_USE;
        h.update(&flags.to_le_bytes());
        h.update(&frame[HEADER_LEN..n]);
    } else {
        h.update(&frame[..n]);
    }
    let computed = h.finalize();
    if computed != stored {
        return Err(DecodeErrorKind::ChecksumMismatch { stored, computed });
    }
    Ok(())
}

/// Parse an event body (checksum already stripped) under the given format description. Used for
/// top-level events and for the events inside a TRANSACTION_PAYLOAD.
pub(crate) fn parse_body<'a>(
    header: EventHeader,
    body: &'a [u8],
    fde: &FormatDescription<'_>,
    max_alloc: usize,
) -> PResult<EventData<'a>> {
    use crate::cursor::Cursor;
    let code = header.type_code;
    let phl = fde.post_header_len(code);
    // Defaults for streams without a description yet (artificial ROTATE, heartbeats).
    let ph = |default: usize| phl.unwrap_or(default);
    let rows = |kind, version, compressed| {
        let default = if version == 2 { 10 } else { 8 };
        parse_rows(body, ph(default), kind, version, compressed, max_alloc).map(EventData::Rows)
    };
    Ok(match code {
        1 => {
            let mut c = Cursor::new(body);
            let binlog_version = c.u16("start v3 binlog version")?;
            let v = c.bytes(50, "start v3 server version")?;
            let nul = v.iter().position(|&b| b == 0).unwrap_or(v.len());
            EventData::StartV3 {
                binlog_version,
                server_version: String::from_utf8_lossy(&v[..nul]),
            }
        }
        2 => EventData::Query(parse_query(body, ph(13))?),
        3 => EventData::Stop,
        4 => EventData::Rotate(parse_rotate(body, ph(8))?),
        5 => {
            let mut c = Cursor::new(body);
            EventData::IntVar {
                kind: c.u8("intvar type")?,
                value: c.u64("intvar value")?,
            }
        }
        6 | 12 => EventData::Load(parse_load(body, ph(18))?),
        7 | 28 => EventData::Ignorable(body),
        8 | 9 | 17 => EventData::FileBlock(parse_file_block(body, ph(4))?),
        10 | 11 => EventData::FileId(events::parse_file_id(body)?),
        13 => {
            let mut c = Cursor::new(body);
            EventData::Rand {
                seed1: c.u64("rand seed1")?,
                seed2: c.u64("rand seed2")?,
            }
        }
        14 => EventData::UserVar(parse_user_var(body)?),
        16 => {
            if body.len() != 8 {
                return Err(crate::error::malformed(format!(
                    "XID body of {} bytes (expected 8)",
                    body.len()
                )));
            }
            EventData::Xid(Cursor::new(body).u64("xid")?)
        }
        18 => EventData::ExecuteLoadQuery(parse_execute_load_query(body, ph(26))?),
        19 => EventData::TableMap(parse_table_map(body, ph(8), fde.is_mariadb())?),
        20 => rows(RowsKind::Write, 0, false)?,
        21 => rows(RowsKind::Update, 0, false)?,
        22 => rows(RowsKind::Delete, 0, false)?,
        23 => rows(RowsKind::Write, 1, false)?,
        24 => rows(RowsKind::Update, 1, false)?,
        25 => rows(RowsKind::Delete, 1, false)?,
        26 => EventData::Incident(parse_incident(body)?),
        27 => EventData::Heartbeat(Heartbeat {
            log_file: String::from_utf8_lossy(body),
            log_position: None,
        }),
        29 => {
            // One length byte (truncated to 255), then the full statement.
            let text = body.get(1..).unwrap_or_default();
            EventData::RowsQuery(String::from_utf8_lossy(text))
        }
        30 => rows(RowsKind::Write, 2, false)?,
        31 => rows(RowsKind::Update, 2, false)?,
        32 => rows(RowsKind::Delete, 2, false)?,
        33 | 34 => EventData::Gtid(parse_gtid(body)?),
        35 => EventData::PreviousGtids(parse_previous_gtids(body)?),
        36 => EventData::TransactionContext(parse_transaction_context(body)?),
        37 => EventData::ViewChange(parse_view_change(body)?),
        38 => EventData::XaPrepare(parse_xa_prepare(body)?),
        39 => rows(RowsKind::PartialUpdate, 2, false)?,
        40 => EventData::TransactionPayload(parse_transaction_payload(body, max_alloc)?),
        41 => EventData::Heartbeat(parse_heartbeat_v2(body)?),
        42 => EventData::Gtid(parse_gtid_tagged(body)?),
        160 => EventData::MariaAnnotateRows(String::from_utf8_lossy(body)),
        161 => EventData::MariaBinlogCheckpoint(parse_maria_checkpoint(body)?),
        162 => EventData::MariaGtid(parse_maria_gtid(body, header.server_id)?),
        163 => EventData::MariaGtidList(parse_maria_gtid_list(body)?),
        164 => EventData::MariaStartEncryption(parse_start_encryption(body)?),
        165 => {
            let mut q = parse_query(body, ph(13))?;
            let plain = maria_uncompress(&q.query, max_alloc)?;
            q.query = Cow::Owned(plain);
            EventData::Query(q)
        }
        166 => rows(RowsKind::Write, 1, true)?,
        167 => rows(RowsKind::Update, 1, true)?,
        168 => rows(RowsKind::Delete, 1, true)?,
        169 => rows(RowsKind::Write, 2, true)?,
        170 => rows(RowsKind::Update, 2, true)?,
        171 => rows(RowsKind::Delete, 2, true)?,
        _ if header.is_ignorable() => EventData::Ignorable(body),
        _ => return Err(DecodeErrorKind::UnknownEventType),
    })
}
