//! Zero-copy, sans-IO decoder for MySQL (5.0 – 9.x, 8.4 LTS) and MariaDB binary logs.
//!
//! This crate turns binlog bytes — a file (with its `\xfebin` magic) or the event stream of a
//! replication connection — into typed [`Event`]s, and rows events into column [`Value`]s. It
//! does no I/O, reads no clock and keeps no input: values borrow from the bytes you pass in
//! (`into_owned()` where you need `'static`). It is **not** a change-event engine (no
//! transaction tracking, no table-map registry beyond what you keep) and **not** a network
//! client.
//!
//! What it decodes: every event type MySQL and MariaDB write (FORMAT_DESCRIPTION with
//! post-header lengths and checksum algorithm, QUERY, XID, GTID / ANONYMOUS_GTID /
//! GTID_TAGGED, PREVIOUS_GTIDS (tagged too), TABLE_MAP with every optional-metadata field,
//! rows v0/v1/v2, PARTIAL_UPDATE_ROWS with the JSON diff applied, TRANSACTION_PAYLOAD streamed,
//! heartbeats, LOAD family, MariaDB 160–171 including compressed events), and every column
//! type, with MySQL binary JSON rendered exactly as `SELECT` prints it. Unknown events without
//! `LOG_EVENT_IGNORABLE_F` are an error, never skipped.
//!
//! # A complete run loop
//!
//! ```no_run
//! use std::collections::HashMap;
//! use mysql_binlog_codec::{BinlogDecoder, DecoderConfig, EventData, TableMap};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bytes = std::fs::read("binlog.000001")?;
//! let mut decoder = BinlogDecoder::new(DecoderConfig::default());
//! let mut tables: HashMap<u64, TableMap<'static>> = HashMap::new();
//! let mut pos = 0;
//! // `decode` returns Ok(None) when it needs more bytes: with a socket you would read more
//! // and call again with the unconsumed input.
//! while let Some((event, used)) = decoder.decode(&bytes[pos..])? {
//!     pos += used;
//!     match &event.data {
//!         EventData::TableMap(tm) => {
//!             tables.insert(tm.table_id, tm.clone().into_owned());
//!         }
//!         EventData::Rows(rows) => {
//!             let table = tables.get(&rows.table_id).ok_or("rows for an unknown table")?;
//!             for change in rows.rows(table) {
//!                 let change = change.map_err(|kind| {
//!                     mysql_binlog_codec::DecodeError::new(kind, Some(event.header.type_code), event.offset)
//!                 })?;
//!                 println!("{}.{}: {:?} -> {:?}", table.database, table.table, change.before, change.after);
//!             }
//!         }
//!         EventData::TransactionPayload(payload) => {
//!             let fde = decoder.format_description().ok_or("payload before FDE")?.clone();
//!             let mut inner = payload.events(&fde, event.offset);
//!             while let Some(ev) = inner.next_event()? {
//!                 println!("inner {}", ev.header.event_type().name());
//!             }
//!         }
//!         _ => {}
//!     }
//! }
//! decoder.finish(&bytes[pos..])?; // error if the file ends inside an event
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod charset;
mod cursor;
pub mod decimal;
mod decoder;
pub mod engine;
mod error;
mod event_type;
pub mod events;
mod fde;
pub mod gtid;
mod header;
pub mod json;
pub mod json_diff;
mod payload;
pub mod rows;
pub mod table_map;
pub mod text;
pub mod value;

pub use decoder::{
    BINLOG_MAGIC, BinlogDecoder, DecoderConfig, ENCRYPTED_BINLOG_MAGIC, Event, EventData,
    MagicMode, crc32_matches,
};
pub use error::{DecodeError, DecodeErrorKind};
pub use event_type::EventType;
pub use fde::{ChecksumAlg, FormatDescription};
pub use header::{
    EventHeader, FLAG_ARTIFICIAL, FLAG_BINLOG_IN_USE, FLAG_IGNORABLE, FLAG_RELAY_LOG, HEADER_LEN,
};
pub use payload::{PayloadCompression, PayloadEvents, TransactionPayload};
pub use rows::{Row, RowChange, RowSpans, Rows, RowsEvent, RowsKind};
pub use table_map::{ColumnDef, TableMap};
pub use value::{AsciiText, ColumnType, Date, DateTime, JsonValue, Time, Timestamp, Value};
