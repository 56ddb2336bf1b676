//! Raw binlog events, for consumers that decode events themselves ([`crate::RawBinlogStream`],
//! and `mes_tokio::RawBinlogStream`).

use std::sync::Arc;

use bytes::Bytes;
use mysql_binlog_codec::engine::Position;
use mysql_binlog_codec::{EventHeader, EventType, HEADER_LEN};

/// One binlog event exactly as the server sent it, with where it sits in the binlog.
///
/// `data` is the whole event (the 19-byte header, the body and, when `checksum`, the CRC32
/// trailer); it is not decoded and its checksum is not verified by the raw stream (feed it to
/// `mysql_binlog_codec::BinlogDecoder` with `MagicMode::None` for that). Cloning is cheap (the
/// bytes are reference counted).
///
/// A raw stream delivers the events the server sends, in order. That is not every event of the
/// binlog: MariaDB sends no ANNOTATE_ROWS to a replica that does not ask for them (the drivers
/// do not), and a GTID start skips the transactions it excludes. Besides binlog events the
/// server sends events it makes up for the connection, which carry `log_pos` 0 or
/// `FLAG_ARTIFICIAL`, or are heartbeats: the ROTATE every dump starts with (naming the file
/// the dump continues in), the FORMAT_DESCRIPTION repeated when a dump starts inside a file (a
/// decoder that already has one can skip it), MariaDB's GTID_LIST after a GTID start skipped
/// transactions. They do not move [`RawEvent::resume`].
///
/// Reconnections resume by file and offset right after the last event the driver queued, so
/// across reconnections no binlog event is delivered twice or lost; only the made-up events
/// of each new connection come again. With a GTID start, reconnections use that start until
/// the first GTID event arrived (before it the server may still be skipping transactions the
/// start excludes, and a dump by position would not skip them); after it they are by file and
/// offset, which skips nothing: a transaction of the start's set that comes later in the
/// binlog (a MySQL GTID set with gaps, several MariaDB domains) is delivered after a
/// reconnection. A consumer that persists [`RawEvent::resume`] (or the stream's resume string)
/// after processing an event and restarts from it continues with the next event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// The common header: type code, timestamp, server id, event size, `log_pos` (the position
    /// after the event in the server's binlog, 0 for made-up events) and flags.
    pub header: EventHeader,
    /// The whole event as sent (header, body, CRC32 trailer when `checksum`).
    pub data: Bytes,
    /// Whether `data` ends in a CRC32 trailer (from the FORMAT_DESCRIPTION in force, or the
    /// connection's `binlog_checksum` before the first one).
    pub checksum: bool,
    /// The binlog file the event is in. A ROTATE read from the binlog is the last event of its
    /// file; the artificial ROTATE a dump starts with names the file that follows.
    pub file: Arc<str>,
    /// Where the event starts in `file` (`log_pos - event_size`); for made-up events and
    /// heartbeats, the current position (where the next binlog event starts).
    pub offset: u64,
    /// The resume point after this event: a dump from this file and offset continues with the
    /// event that follows it. Persist it (as `file:NAME:OFFSET`, see
    /// [`crate::start_from_string`]) once the event is processed.
    pub resume: Position,
}

impl RawEvent {
    /// The event type.
    pub fn event_type(&self) -> EventType {
        self.header.event_type()
    }

    /// The event body: `data` without the header and the CRC32 trailer.
    pub fn body(&self) -> &[u8] {
        let end = if self.checksum {
            self.data.len().saturating_sub(4)
        } else {
            self.data.len()
        };
        self.data.get(HEADER_LEN..end).unwrap_or_default()
    }
}
