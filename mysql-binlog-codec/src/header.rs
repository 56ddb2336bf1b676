//! The 19-byte common event header (binlog v4) and its flags.

use crate::EventType;

/// Length of the v4 common header.
pub const HEADER_LEN: usize = 19;

/// `LOG_EVENT_BINLOG_IN_USE_F`: set in the FORMAT_DESCRIPTION of a file that was not closed.
pub const FLAG_BINLOG_IN_USE: u16 = 0x0001;
/// `LOG_EVENT_ARTIFICIAL_F`: the event was made up by the server (e.g. the ROTATE at dump start).
pub const FLAG_ARTIFICIAL: u16 = 0x0020;
/// `LOG_EVENT_RELAY_LOG_F`: the event was written by a replica's I/O thread.
pub const FLAG_RELAY_LOG: u16 = 0x0040;
/// `LOG_EVENT_IGNORABLE_F`: a reader that does not know the event type may skip it.
pub const FLAG_IGNORABLE: u16 = 0x0080;

/// The common header every v4 event starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventHeader {
    /// Seconds since the epoch when the statement started (`time_written`).
    pub timestamp: u32,
    /// Raw event type code.
    pub type_code: u8,
    /// Server id of the originating server.
    pub server_id: u32,
    /// Total size of the event including header and checksum.
    pub event_size: u32,
    /// Position of the next event in the originating server's binlog (0 for some artificial events).
    pub log_pos: u32,
    /// Header flags (`FLAG_*`).
    pub flags: u16,
}

impl EventHeader {
    /// Parse the header from the first 19 bytes; `None` when fewer are given.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let h = buf.get(..HEADER_LEN)?;
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        Some(Self {
            timestamp: u32_at(0),
            type_code: h[4],
            server_id: u32_at(5),
            event_size: u32_at(9),
            log_pos: u32_at(13),
            flags: u16::from_le_bytes([h[17], h[18]]),
        })
    }

    /// The event type.
    pub fn event_type(&self) -> EventType {
        EventType::from_code(self.type_code)
    }

    /// Whether `LOG_EVENT_IGNORABLE_F` is set.
    pub fn is_ignorable(&self) -> bool {
        self.flags & FLAG_IGNORABLE != 0
    }

    /// Whether `LOG_EVENT_ARTIFICIAL_F` is set.
    pub fn is_artificial(&self) -> bool {
        self.flags & FLAG_ARTIFICIAL != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header() {
        let b = [
            0x9b, 0xae, 0x85, 0x69, 0x0f, 0x01, 0, 0, 0, 0x7b, 0, 0, 0, 0x7f, 0, 0, 0, 0x01, 0x00,
        ];
        let h = EventHeader::parse(&b).unwrap();
        assert_eq!(h.timestamp, 0x6985ae9b);
        assert_eq!(h.event_type(), EventType::FormatDescription);
        assert_eq!(h.server_id, 1);
        assert_eq!(h.event_size, 123);
        assert_eq!(h.log_pos, 127);
        assert_eq!(h.flags, FLAG_BINLOG_IN_USE);
        assert!(EventHeader::parse(&b[..18]).is_none());
    }
}
