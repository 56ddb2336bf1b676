//! Row checks worked out ahead of the engine, on another thread.
//!
//! With lazy images ([`EngineConfig::with_decoded_images`]`(false)`) most of the engine's
//! work on a rows event is checking its rows: every value measured and checked as decoding
//! would check it, which finds where each row image lies. That work depends only on the rows
//! event's bytes and its TABLE_MAP, so a second thread can do it for part of a buffer while
//! the engine works through the rest:
//!
//! 1. before feeding a buffer, take a [`SpanScanner`] ([`Engine::span_scanner`]) — the
//!    decoder's state and the table maps in force — and hand it and a copy of the buffer to
//!    the other thread;
//! 2. there, [`SpanScanner::plan`] frames the buffer and lists its rows events
//!    ([`PlannedRows`]); [`PlannedRows::scan`] checks one and gives its [`ScannedRows`];
//! 3. the engine asks a [`SpanSource`] ([`Engine::set_span_source`]) for each rows event it
//!    meets and uses the answer instead of checking the rows itself.
//!
//! What this module is not: a scheduler. Who scans which event, and how the two threads meet
//! (e.g. the engine checks a buffer's first part itself and a helper the rest), is the
//! caller's. Nothing here changes what the engine produces: an answer is used only when it
//! was made from the same TABLE_MAP bytes and the same rows bytes (length and tiling checked),
//! and a rows event that fails its check never gets an answer (the engine checks it itself
//! and raises the error exactly as without a helper).
//!
//! [`EngineConfig::with_decoded_images`]: super::EngineConfig::with_decoded_images

use std::collections::HashMap;
use std::sync::Arc;

use super::{Engine, TableInfo};
use crate::rows::{RowSpans, RowsEvent, RowsKind};
use crate::{BinlogDecoder, EventData, HEADER_LEN};

/// More tables than this in force: no scanner (copying their handles for every buffer would
/// cost more than the scan saves).
const MAX_SNAPSHOT_TABLES: usize = 4096;

/// The decoder state and table maps the engine will meet a buffer with, for checking that
/// buffer's rows on another thread. Made by [`Engine::span_scanner`].
#[derive(Debug)]
pub struct SpanScanner {
    decoder: BinlogDecoder,
    tables: HashMap<u64, (Arc<[u8]>, Arc<TableInfo>)>,
    max_alloc: usize,
}

/// A rows event found by [`SpanScanner::plan`], borrowing from the planned buffer.
#[derive(Debug)]
pub struct PlannedRows<'a> {
    offset: u64,
    rows: RowsEvent<'a>,
    table: (Arc<[u8]>, Arc<TableInfo>),
    max_alloc: usize,
}

impl PlannedRows<'_> {
    /// Stream offset of the rows event (what [`SpanSource::take`] is asked with).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Check every row, as the engine would; `None` when a row fails (the engine will check
    /// that event itself and report the error).
    pub fn scan(&self) -> Option<ScannedRows> {
        let (raw, table) = &self.table;
        let mut spans = Vec::new();
        self.rows
            .check_rows(&table.map, self.max_alloc, &mut spans)
            .ok()?;
        Some(ScannedRows {
            table_map: raw.clone(),
            rows_len: self.rows.rows_data.len(),
            spans,
        })
    }
}

/// The checked rows of one rows event: where each row change's images lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedRows {
    table_map: Arc<[u8]>,
    rows_len: usize,
    spans: Vec<RowSpans>,
}

impl ScannedRows {
    /// The row changes found.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether no row change was found (never so for a scanned event).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// Where the engine gets rows events' checks made elsewhere. [`SpanSource::take`] is called
/// once for each rows event the engine checks, in stream order, with the event's stream
/// offset; `None` means "check it yourself".
pub trait SpanSource: Send {
    /// The check of the rows event at `offset`, if one was made.
    fn take(&mut self, offset: u64) -> Option<ScannedRows>;
}

/// The rows events of a buffer, in stream order (see [`SpanScanner::plan`]).
#[derive(Debug)]
pub struct Plan<'a, 's> {
    scanner: &'s mut SpanScanner,
    data: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Plan<'a, '_> {
    type Item = PlannedRows<'a>;

    fn next(&mut self) -> Option<PlannedRows<'a>> {
        let s = &mut *self.scanner;
        while self.at < self.data.len() {
            let Ok(Some((ev, used))) = s.decoder.decode(&self.data[self.at..]) else {
                self.at = self.data.len();
                return None;
            };
            self.at += used;
            match ev.data {
                EventData::FormatDescription(_) if !ev.header.is_artificial() => {
                    s.tables.clear();
                }
                EventData::TableMap(tm) => {
                    let body = &ev.raw[HEADER_LEN..];
                    let same = s
                        .tables
                        .get(&tm.table_id)
                        .is_some_and(|(raw, _)| raw.as_ref() == body);
                    if !same {
                        let info = TableInfo::new(tm.into_owned(), None);
                        s.tables
                            .insert(info.map.table_id, (Arc::from(body), Arc::new(info)));
                    }
                }
                EventData::Rows(rows) if rows.kind != RowsKind::PartialUpdate => {
                    if let Some(table) = s.tables.get(&rows.table_id) {
                        return Some(PlannedRows {
                            offset: ev.offset,
                            rows,
                            table: table.clone(),
                            max_alloc: s.max_alloc,
                        });
                    }
                }
                _ => {}
            }
        }
        None
    }
}

impl SpanScanner {
    /// The rows events of `data` — the bytes the engine is fed next, from the event boundary
    /// its decoder is at — in stream order, each with the TABLE_MAP in force for it; framed
    /// as the iteration goes. Ends at the first event that is incomplete or does not decode
    /// (the engine reports that one); events inside compressed transaction payloads are not
    /// listed.
    pub fn plan<'a, 's>(&'s mut self, data: &'a [u8]) -> Plan<'a, 's> {
        Plan {
            scanner: self,
            data,
            at: 0,
        }
    }

    /// Stream offset of the first byte of the buffer [`SpanScanner::plan`] is given.
    pub fn offset(&self) -> u64 {
        self.decoder.offset()
    }
}

impl Engine {
    /// A scanner for the bytes this engine is fed next (see the [module docs](self)); `None`
    /// when images are decoded on arrival (no checks to share), in the middle of an event,
    /// or with very many tables in force.
    pub fn span_scanner(&self) -> Option<SpanScanner> {
        if self.config.decoded_images
            || !self.pending.is_empty()
            || self.tables.len() > MAX_SNAPSHOT_TABLES
        {
            return None;
        }
        let mut decoder = self.decoder.clone();
        // The engine verifies checksums; the scanner only needs the framing.
        decoder.skip_checksum_checks();
        Some(SpanScanner {
            decoder,
            tables: self.tables.clone(),
            max_alloc: self.max_alloc(),
        })
    }

    /// Where to get rows events' checks made elsewhere (`None`: check every rows event here).
    pub fn set_span_source(&mut self, source: Option<Box<dyn SpanSource>>) {
        self.span_source = source;
    }

    /// The check of this rows event made elsewhere, if there is one and it was made from the
    /// TABLE_MAP in force and the same rows bytes; its spans tile the rows bytes exactly.
    pub(super) fn scanned(&mut self, offset: u64, rows: &RowsEvent<'_>) -> Option<Vec<RowSpans>> {
        let s = self.span_source.as_mut()?.take(offset)?;
        let (table_map, _) = self.tables.get(&rows.table_id)?;
        if s.table_map != *table_map || s.rows_len != rows.rows_data.len() {
            return None;
        }
        let (has_before, has_after) = rows.images();
        let mut end = 0usize;
        for span in &s.spans {
            for (want, image) in [(has_before, &span.before), (has_after, &span.after)] {
                match image {
                    Some(r) if want && r.start == end && r.end > r.start => end = r.end,
                    None if !want => {}
                    _ => return None,
                }
            }
        }
        (end == s.rows_len && !s.spans.is_empty()).then_some(s.spans)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::engine::EngineConfig;

    fn fixture() -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mariadb/types.000001");
        std::fs::read(p).unwrap()
    }

    fn rows_event(p: &PlannedRows<'_>) -> RowsEvent<'static> {
        p.rows.clone().into_owned()
    }

    #[test]
    fn a_check_is_used_only_for_the_rows_it_was_made_from() {
        let bytes = fixture();
        let mut scanner = Engine::new(EngineConfig::default()).span_scanner().unwrap();
        let plan: Vec<_> = scanner.plan(&bytes).collect();
        let mut tried = 0;
        for p in &plan {
            let s = p.scan().expect("the fixture's rows check");
            let mut engine = Engine::new(EngineConfig::default());
            let at = usize::try_from(p.offset()).unwrap();
            assert_eq!(engine.handle_input(&bytes[..at]).unwrap(), at);
            let rows = rows_event(p);
            let mut offer = |s: ScannedRows| {
                struct One(Option<ScannedRows>);
                impl SpanSource for One {
                    fn take(&mut self, _: u64) -> Option<ScannedRows> {
                        self.0.take()
                    }
                }
                engine.set_span_source(Some(Box::new(One(Some(s)))));
                engine.scanned(p.offset(), &rows)
            };
            // As made: used.
            assert_eq!(offer(s.clone()).as_ref(), Some(&s.spans));
            // Made from another TABLE_MAP, or from rows bytes of another length: not used.
            let mut other = s.clone();
            other.table_map = Arc::from(&b"another table map"[..]);
            assert_eq!(offer(other), None);
            let mut other = s.clone();
            other.rows_len += 1;
            assert_eq!(offer(other), None);
            // Spans that do not tile the rows bytes: not used.
            let mut gap = s.clone();
            let first = &mut gap.spans[0];
            let r = match first.before.as_mut() {
                Some(r) => r,
                None => first.after.as_mut().unwrap(),
            };
            if r.len() > 1 {
                r.start += 1;
            } else {
                r.end += 1;
            }
            assert_eq!(offer(gap), None);
            let mut short = s.clone();
            short.spans.pop();
            assert_eq!(offer(short), None);
            let mut swapped = s.clone();
            for sp in &mut swapped.spans {
                std::mem::swap(&mut sp.before, &mut sp.after);
            }
            assert_eq!(offer(swapped), None);
            let mut empty = s.clone();
            empty.spans.clear();
            assert_eq!(offer(empty), None);
            tried += 1;
        }
        assert!(tried > 3);
    }
}
