//! Fuzz the binlog stream decoder end to end.
//!
//! Input layout: one control byte, then the binlog bytes.
//!
//! control byte bits:
//! - bit 0: prepend the `\xfebin` magic to the bytes (seeds from real files already have it);
//! - bit 1: verify CRC32 checksums (off lets mutations reach the event parsers);
//! - bits 2-3: magic mode (0/1 = Auto, 2 = None, 3 = Require);
//! - bits 4-7: chunk size for the split-invariance pass (index into `CHUNKS`).
//!
//! Pass 1 decodes the whole buffer and exercises everything reachable from an event: every rows
//! event's rows against the table maps seen so far (kept owned), every transaction payload's
//! inner events (and their rows), every value rendered with `text::write_row`. Pass 2 feeds the
//! same bytes N at a time into a growing buffer, dropping consumed prefixes as a socket reader
//! would. Both passes must yield the same `(offset, raw bytes)` sequence and the same final
//! error-or-ok. Pass 3 feeds the bytes to the change-event engine: every image of a change it
//! hands out must decode. Pass 4 feeds them to the engine again with every rows event checked
//! ahead by a `SpanScanner` (as a helper thread would): the engine must hand out the same events
//! and end the same way as when it checks the rows itself. Nothing may panic.

#![no_main]

use std::collections::HashMap;
use std::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use mysql_binlog_codec::engine::json_lines::write_change;
use mysql_binlog_codec::engine::{Engine, EngineConfig, EngineEvent, ScannedRows, SpanSource};
use mysql_binlog_codec::text::write_row;
use mysql_binlog_codec::{
    BINLOG_MAGIC, BinlogDecoder, DecodeError, DecoderConfig, Event, EventData, FormatDescription,
    MagicMode, RowsEvent, TableMap,
};

const CHUNKS: [usize; 16] = [
    1, 2, 3, 4, 5, 7, 8, 13, 16, 19, 23, 64, 100, 256, 1024, 4096,
];
/// Keep allocations bounded (libFuzzer's default RSS limit is 2 GiB).
const MAX_ALLOC: usize = 16 << 20;

type Trace = (Vec<(u64, Vec<u8>)>, Result<(), DecodeError>);

fn config(ctl: u8) -> DecoderConfig {
    let magic = match (ctl >> 2) & 3 {
        2 => MagicMode::None,
        3 => MagicMode::Require,
        _ => MagicMode::Auto,
    };
    DecoderConfig::default()
        .with_verify_checksum(ctl & 2 != 0)
        .with_magic(magic)
        .with_max_event_size(MAX_ALLOC as u64)
        .with_max_decompressed_size(MAX_ALLOC as u64)
}

/// Decode every row of a rows event and render it. A row must consume input, otherwise the
/// iterator would never end.
fn render_rows(rows: &RowsEvent<'_>, tables: &HashMap<u64, TableMap<'static>>, out: &mut String) {
    let Some(table) = tables.get(&rows.table_id) else {
        return;
    };
    let limit = rows.rows_data.len() + 1;
    let mut n = 0usize;
    for change in rows.rows(table).with_max_alloc(MAX_ALLOC) {
        n += 1;
        assert!(
            n <= limit,
            "rows iterator yields more rows ({n}) than rows_data has bytes ({}): it does not advance",
            rows.rows_data.len()
        );
        let Ok(change) = change else { break };
        out.clear();
        for image in [&change.before, &change.after].into_iter().flatten() {
            write_row(out, &image.values, &table.columns);
            for v in image.values.iter().flatten() {
                let _ = v.clone().into_owned();
            }
        }
    }
}

fn exercise(
    fde: Option<&FormatDescription<'static>>,
    ev: &Event<'_>,
    tables: &mut HashMap<u64, TableMap<'static>>,
    out: &mut String,
) {
    out.clear();
    let _ = write!(out, "{:?} {}", ev.data, ev.header.event_type().name());
    match &ev.data {
        EventData::TableMap(tm) => {
            tables.insert(tm.table_id, tm.clone().into_owned());
        }
        EventData::Rows(rows) => render_rows(rows, tables, out),
        EventData::TransactionPayload(p) => {
            let Some(fde) = fde.cloned() else { return };
            let mut inner = p.events(&fde, ev.offset).with_max_event_size(MAX_ALLOC);
            loop {
                match inner.next_event() {
                    Ok(Some(iev)) => {
                        out.clear();
                        let _ = write!(out, "{:?}", iev.data);
                        match &iev.data {
                            EventData::TableMap(tm) => {
                                tables.insert(tm.table_id, tm.clone().into_owned());
                            }
                            EventData::Rows(rows) => render_rows(rows, tables, out),
                            _ => {}
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = write!(out, "{e}");
                        // After an error the iterator is done.
                        assert!(
                            matches!(inner.next_event(), Ok(None)),
                            "payload iterator continued after an error"
                        );
                        break;
                    }
                }
            }
        }
        _ => {}
    }
}

/// Pass 1: the whole input at once, with everything exercised.
fn whole(ctl: u8, input: &[u8]) -> Trace {
    let mut dec = BinlogDecoder::new(config(ctl));
    let mut tables = HashMap::new();
    let mut out = String::new();
    let mut events = Vec::new();
    let mut pos = 0usize;
    let end = loop {
        match dec.decode(&input[pos..]) {
            Ok(Some((ev, used))) => {
                assert!(
                    used > 0 && used <= input.len() - pos,
                    "bad consumed count {used}"
                );
                assert!(
                    used == ev.raw.len() || used == ev.raw.len() + 4,
                    "consumed {used} for an event of {} bytes",
                    ev.raw.len()
                );
                assert_eq!(
                    dec.offset(),
                    ev.offset + ev.raw.len() as u64,
                    "offset bookkeeping"
                );
                events.push((ev.offset, ev.raw.to_vec()));
                exercise(dec.format_description(), &ev, &mut tables, &mut out);
                pos += used;
            }
            Ok(None) => break dec.finish(&input[pos..]),
            Err(e) => {
                let _ = write!(out, "{e}");
                break Err(e);
            }
        }
    };
    (events, end)
}

/// Pass 2: feed `chunk` bytes at a time into a growing buffer; drop what was consumed.
fn chunked(ctl: u8, input: &[u8], chunk: usize) -> Trace {
    let mut dec = BinlogDecoder::new(config(ctl));
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut fed = 0usize;
    loop {
        loop {
            match dec.decode(&buf) {
                Ok(Some((ev, used))) => {
                    events.push((ev.offset, ev.raw.to_vec()));
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(e) => return (events, Err(e)),
            }
        }
        if fed == input.len() {
            break;
        }
        let n = chunk.min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + n]);
        fed += n;
    }
    let end = dec.finish(&buf);
    (events, end)
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, body)) = data.split_first() else {
        return;
    };
    let input: Vec<u8> = if ctl & 1 != 0 {
        BINLOG_MAGIC.iter().chain(body).copied().collect()
    } else {
        body.to_vec()
    };
    let chunk = CHUNKS[usize::from(ctl >> 4)];

    let (whole_events, whole_end) = whole(ctl, &input);
    let (chunk_events, chunk_end) = chunked(ctl, &input, chunk);

    for (i, (w, c)) in whole_events.iter().zip(&chunk_events).enumerate() {
        assert!(
            w == c,
            "split variance (chunk {chunk}): event #{i} whole=(offset {}, {} bytes) chunked=(offset {}, {} bytes)",
            w.0,
            w.1.len(),
            c.0,
            c.1.len()
        );
    }
    assert!(
        whole_events.len() == chunk_events.len(),
        "split variance (chunk {chunk}): {} events whole, {} chunked; whole end {:?}, chunked end {:?}",
        whole_events.len(),
        chunk_events.len(),
        whole_end,
        chunk_end
    );
    assert!(
        whole_end == chunk_end,
        "split variance (chunk {chunk}) in the final result: whole {whole_end:?}, chunked {chunk_end:?}"
    );

    engine_pass(ctl, &input);
    assert_eq!(
        checked_elsewhere_pass(ctl, &input, false),
        checked_elsewhere_pass(ctl, &input, true),
        "rows checked ahead changed the engine's output"
    );
});

/// Checks made ahead, by stream offset.
struct Ahead(HashMap<u64, ScannedRows>);

impl SpanSource for Ahead {
    fn take(&mut self, offset: u64) -> Option<ScannedRows> {
        self.0.remove(&offset)
    }
}

/// Pass 4: the engine's events (as their Debug text, which shows decoded values; a NaN would
/// make `==` on values fail) and its error, fed 4 KiB at a time; with `ahead`, every rows event
/// of each piece is first checked by a `SpanScanner` taken from the engine.
fn checked_elsewhere_pass(ctl: u8, input: &[u8], ahead: bool) -> (Vec<String>, Option<String>) {
    let mut engine = Engine::new(
        EngineConfig::default()
            .with_decoder(config(ctl))
            .with_max_buffered_transaction_bytes(MAX_ALLOC),
    );
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let piece = &input[pos..(pos + 4096).min(input.len())];
        let source = engine.span_scanner().filter(|_| ahead).map(|mut scanner| {
            let checks = scanner
                .plan(piece)
                .filter_map(|p| Some((p.offset(), p.scan()?)))
                .collect();
            Box::new(Ahead(checks)) as Box<dyn SpanSource>
        });
        engine.set_span_source(source);
        let r = engine.handle_input(piece);
        engine.set_span_source(None);
        let used = match r {
            Ok(used) => used,
            Err(e) => return (out, Some(format!("{e:?}"))),
        };
        pos += used;
        let mut polled = false;
        while let Some(ev) = engine.poll_event() {
            polled = true;
            out.push(format!("{ev:?}"));
        }
        if pos >= input.len() || (used == 0 && !polled) {
            return (out, None);
        }
    }
}

/// Pass 3: the change-event engine over the same bytes (lazy images, then decoded images).
/// Nothing may panic, every image of a change it hands out decodes (the engine checked each
/// row when its rows event arrived), and both ways hand out the same events (as their Debug
/// text, which shows decoded values) and end alike: the rows check (its fast path included)
/// finds the images where the rows iterator finds them and refuses what it refuses.
fn engine_pass(ctl: u8, input: &[u8]) {
    let mut runs: Vec<(Vec<String>, bool)> = Vec::new();
    for decoded in [false, true] {
        let mut seen = Vec::new();
        let mut failed = false;
        let mut engine = Engine::new(
            EngineConfig::default()
                .with_decoder(config(ctl))
                .with_max_buffered_transaction_bytes(MAX_ALLOC)
                .with_decoded_images(decoded),
        );
        let mut pos = 0;
        loop {
            let Ok(used) = engine.handle_input(&input[pos..]) else {
                failed = true;
                break;
            };
            pos += used;
            let mut polled = false;
            while let Some(ev) = engine.poll_event() {
                polled = true;
                seen.push(format!("{ev:?}"));
                if let EngineEvent::Change(c) = ev {
                    let before = c.before().expect("a checked before image decodes");
                    let after = c.after().expect("a checked after image decodes");
                    assert_eq!(before.is_some(), c.has_before());
                    assert_eq!(after.is_some(), c.has_after());
                    let mut line = String::new();
                    write_change(&mut line, &c).expect("a checked change renders");
                }
            }
            if pos >= input.len() || (used == 0 && !polled) {
                break;
            }
        }
        runs.push((seen, failed));
    }
    assert!(
        runs[0] == runs[1],
        "lazy images (rows checked) and decoded images (rows iterated) differ: {} events{} against {} events{}",
        runs[0].0.len(),
        if runs[0].1 { " then an error" } else { "" },
        runs[1].0.len(),
        if runs[1].1 { " then an error" } else { "" },
    );
}
