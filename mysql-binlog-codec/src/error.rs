//! The codec's one error type: [`DecodeError`] = what went wrong ([`DecodeErrorKind`]), in which
//! event type, at which byte offset of the stream.

use std::fmt;

/// A decoding failure with its context.
///
/// `offset` is the absolute stream offset (file offset when decoding a file, including the 4-byte
/// magic) of the *start of the event* that failed, or of the bytes that could not be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} ({}at offset {offset})", EventTypeCtx(*event_type))]
#[non_exhaustive]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// The raw type code of the event being decoded, when known.
    pub event_type: Option<u8>,
    /// Absolute offset of the event (or unframed bytes) in the stream.
    pub offset: u64,
}

struct EventTypeCtx(Option<u8>);

impl fmt::Display for EventTypeCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(code) => write!(
                f,
                "event type {code} {}, ",
                crate::EventType::from_code(code).name()
            ),
            None => Ok(()),
        }
    }
}

impl DecodeError {
    /// Build an error.
    pub fn new(kind: DecodeErrorKind, event_type: Option<u8>, offset: u64) -> Self {
        Self {
            kind,
            event_type,
            offset,
        }
    }
}

/// The kinds of decoding failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The stream does not start with the binlog magic `\xfebin`.
    #[error("not a binlog: bad magic {found:02x?}")]
    BadMagic {
        /// The first bytes found.
        found: Vec<u8>,
    },
    /// The input ended inside an event (only reported at end of input).
    #[error("truncated: event needs {needed} bytes, only {available} available")]
    Truncated {
        /// Bytes the event (or header) needs.
        needed: u64,
        /// Bytes that were available.
        available: u64,
    },
    /// An event's body is shorter than its fields require.
    #[error("event body too short: {what}")]
    ShortBody {
        /// The field that did not fit.
        what: &'static str,
    },
    /// The header's `event_size` is impossible (smaller than the header and checksum).
    #[error("invalid event size {size}")]
    InvalidEventSize {
        /// The size found in the header.
        size: u64,
    },
    /// The event is larger than the configured maximum.
    #[error("event of {size} bytes exceeds the configured maximum of {max}")]
    EventTooLarge {
        /// The size in the header.
        size: u64,
        /// The configured limit.
        max: u64,
    },
    /// CRC32 of the event does not match its trailing checksum.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The CRC stored at the end of the event.
        stored: u32,
        /// The CRC computed over the event.
        computed: u32,
    },
    /// An event type that is not known and lacks `LOG_EVENT_IGNORABLE_F`.
    #[error("unknown event type without the ignorable flag")]
    UnknownEventType,
    /// An event that is not a FORMAT_DESCRIPTION_EVENT arrived before any.
    #[error("event before the first FORMAT_DESCRIPTION_EVENT")]
    MissingFormatDescription,
    /// The FORMAT_DESCRIPTION_EVENT is unusable.
    #[error("unsupported format: {what}")]
    UnsupportedFormat {
        /// Why.
        what: String,
    },
    /// A field holds a value that cannot be right.
    #[error("malformed {what}")]
    Malformed {
        /// Which field and why.
        what: String,
    },
    /// A column type code this decoder does not know.
    #[error("unsupported column type {type_code} in column {column}")]
    UnsupportedColumnType {
        /// The type code from the TABLE_MAP.
        type_code: u8,
        /// The column index.
        column: usize,
    },
    /// A column value could not be decoded.
    #[error("column {column} (type {type_code}): {what}")]
    BadColumnValue {
        /// Column index.
        column: usize,
        /// Column type code.
        type_code: u8,
        /// What was wrong.
        what: String,
    },
    /// A rows event's table id has no TABLE_MAP, or the map does not match the event.
    #[error("rows event for table id {table_id}: {what}")]
    TableMapMismatch {
        /// The table id in the rows event.
        table_id: u64,
        /// What was wrong.
        what: String,
    },
    /// A compressed payload could not be decompressed.
    #[error("decompression failed: {what}")]
    Decompress {
        /// The decompressor's message.
        what: String,
    },
    /// Decompressed data would exceed the configured limit.
    #[error("decompressed size {size} exceeds the limit of {max}")]
    DecompressedTooLarge {
        /// Size announced or reached.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The binlog is encrypted (MariaDB START_ENCRYPTION / MySQL `\xfdbin` magic) and no key is available.
    #[error("encrypted binlog: events after START_ENCRYPTION cannot be decoded without the key")]
    Encrypted,
    /// A binary JSON value is malformed.
    #[error("JSON: {0}")]
    Json(#[from] crate::json::JsonError),
    /// A binary DECIMAL value is malformed.
    #[error("DECIMAL: {0}")]
    Decimal(#[from] crate::decimal::DecimalError),
}

/// Shorthand used inside event parsers: errors that still lack the event type and offset.
pub(crate) type PResult<T> = Result<T, DecodeErrorKind>;

pub(crate) fn malformed(what: impl Into<String>) -> DecodeErrorKind {
    DecodeErrorKind::Malformed { what: what.into() }
}
