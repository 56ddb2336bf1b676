//! Change-event engine tests: checkpoints under every cut, backpressure, filters, XA, schema
//! sources, strictness — on real binlogs (corpus and MariaDB fixtures).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{corpus_dir, read_binlog};
use mysql_binlog_codec::engine::json_lines::{write_change, write_statement};
use mysql_binlog_codec::engine::{
    ColumnSchema, Engine, EngineConfig, EngineError, EngineEvent, GtidCheckpoint, ScannedRows,
    SchemaSource, SpanSource, TableFilter,
};
use mysql_binlog_codec::{BinlogDecoder, DecoderConfig};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mariadb")
        .join(name);
    std::fs::read(p).unwrap()
}

fn line(ev: &EngineEvent) -> String {
    let mut s = String::new();
    match ev {
        EngineEvent::Change(c) => write_change(&mut s, c).expect("row images decode"),
        EngineEvent::Statement(st) => write_statement(&mut s, st),
        _ => unreachable!(),
    }
    s
}

/// Feed everything (in `chunk`-byte pieces), polling all events.
fn run(engine: &mut Engine, bytes: &[u8], chunk: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let end = (pos + chunk).min(bytes.len());
        let used = engine.handle_input(&bytes[pos..end]).unwrap();
        pos += used;
        while let Some(ev) = engine.poll_event() {
            out.push(line(&ev));
        }
    }
    out
}

/// (start, end) of every top-level event.
fn boundaries(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut dec = BinlogDecoder::new(DecoderConfig::default());
    let mut pos = 0;
    let mut out = Vec::new();
    while let Some((ev, used)) = dec.decode(&bytes[pos..]).unwrap() {
        out.push((ev.offset as usize, ev.offset as usize + ev.raw.len()));
        pos += used;
    }
    out
}

/// Cut the input at every event boundary (and 7 bytes into every event): what was handed out
/// before the cut plus what a fresh engine yields when resumed from the checkpoint must equal
/// the uninterrupted run exactly — every committed row once, none of an unfinished transaction.
fn check_cuts(bytes: &[u8], name: &str) {
    let full = run(
        &mut Engine::new(EngineConfig::default().with_file_name(name)),
        bytes,
        usize::MAX,
    );
    assert!(!full.is_empty(), "{name}: no events");
    let events = boundaries(bytes);
    let header_end = events[0].1; // magic + FORMAT_DESCRIPTION
    let mut cuts: Vec<usize> = events.iter().map(|e| e.1).collect();
    cuts.extend(events.iter().map(|e| (e.0 + 7).min(e.1)));
    for cut in cuts {
        let mut a = Engine::new(EngineConfig::default().with_file_name(name));
        let first = run(&mut a, &bytes[..cut], usize::MAX);
        let cp = a.checkpoint().clone();
        assert!(
            full.starts_with(&first),
            "{name}: cut {cut}: handed out something the full run did not"
        );
        // Resume: the server would send its FORMAT_DESCRIPTION, then events from the offset.
        if &*cp.position.file != name {
            // The checkpoint is already in the next file: nothing of this one is left.
            assert_eq!(
                first, full,
                "{name}: cut {cut}: checkpoint moved to {cp:?} early"
            );
            continue;
        }
        let offset = cp.position.offset as usize;
        let mut b = Engine::new(EngineConfig::default().with_file_name(name));
        let mut second = run(&mut b, &bytes[..header_end], usize::MAX);
        if offset >= header_end {
            second.extend(run(&mut b, &bytes[offset..], usize::MAX));
        } else {
            second.extend(run(&mut b, &bytes[header_end..], usize::MAX));
        }
        let mut joined = first.clone();
        joined.extend(second);
        assert_eq!(
            joined.len(),
            full.len(),
            "{name}: cut {cut}, checkpoint {cp:?}"
        );
        assert_eq!(joined, full, "{name}: cut {cut}");
    }
}

#[test]
fn checkpoints_survive_every_cut_mariadb() {
    check_cuts(&fixture("types.000001"), "types.000001");
    check_cuts(&fixture("types.000002"), "types.000002");
}

#[test]
fn checkpoints_survive_every_cut_mysql() {
    let Some(dir) = corpus_dir() else { return };
    for f in [
        "mysql-binlog-connector-rust/mysql-bin.000057",
        "percona-binlog-server/data_80045_gtid__binlog.000001",
        "mysql-cdc-rs/8.0__32_delete_rows_v2__binlog.000001",
        "rust_mysql_common/binlog_transaction_with_GTID_TAG.000001",
        "mysql-binlog-connector-java/mysql-bin.checksum-crc32",
    ] {
        check_cuts(&read_binlog(&dir.join(f)), f);
    }
}

#[test]
fn checkpoint_moves_only_after_a_whole_transaction_is_handed_out() {
    let bytes = fixture("types.000001");
    let mut e = Engine::new(EngineConfig::default().with_file_name("types.000001"));
    e.handle_input(&bytes).unwrap();
    // Poll one event at a time and record (gtid, checkpoint before, checkpoint after).
    let mut seen = Vec::new();
    loop {
        let before = e.checkpoint().clone();
        let Some(ev) = e.poll_event() else { break };
        let gtid = match &ev {
            EngineEvent::Change(c) => c.gtid().map(|g| &**g).map(str::to_owned),
            EngineEvent::Statement(s) => s.gtid.as_deref().map(str::to_owned),
            _ => None,
        };
        seen.push((gtid, before, e.checkpoint().clone()));
    }
    assert!(seen.len() > 100);
    for w in seen.windows(2) {
        let (g0, before, after) = &w[0];
        if g0.is_some() && *g0 == w[1].0 {
            // Not the last event of its transaction: the checkpoint must not move.
            assert_eq!(before, after, "checkpoint moved inside transaction {g0:?}");
        }
    }
    assert!(
        seen.windows(2).any(|w| w[0].0 == w[1].0),
        "no multi-event transaction in the fixture"
    );
    let GtidCheckpoint::Maria(pos) = &e.checkpoint().gtid else {
        panic!("{:?}", e.checkpoint())
    };
    assert!(pos.to_string().starts_with("0-1-"), "{pos}");
}

#[test]
fn queue_limits_apply_backpressure_without_changing_output() {
    let bytes = fixture("types.000001");
    let full = run(
        &mut Engine::new(EngineConfig::default()),
        &bytes,
        usize::MAX,
    );
    for (events, qbytes) in [(1, usize::MAX), (3, usize::MAX), (10_000, 4096)] {
        let mut e = Engine::new(
            EngineConfig::default()
                .with_max_queue_events(events)
                .with_max_queue_bytes(qbytes),
        );
        let mut out = Vec::new();
        let mut pos = 0;
        let mut partial_feeds = 0;
        while pos < bytes.len() {
            let used = e.handle_input(&bytes[pos..]).unwrap();
            if used < bytes.len() - pos {
                partial_feeds += 1;
            }
            pos += used;
            while let Some(ev) = e.poll_event() {
                out.push(line(&ev));
            }
        }
        assert!(
            partial_feeds > 0,
            "limits {events}/{qbytes} never pushed back"
        );
        assert_eq!(out, full);
    }
    // Byte-at-a-time feeding gives the same events.
    assert_eq!(
        run(
            &mut Engine::new(EngineConfig::default()),
            &bytes[..40_000],
            1
        ),
        run(
            &mut Engine::new(EngineConfig::default()),
            &bytes[..40_000],
            usize::MAX
        )
    );
}

#[test]
fn xa_rollback_rows_are_not_delivered_and_xa_commit_rows_are() {
    let bytes = fixture("types.000001");
    let out = run(
        &mut Engine::new(EngineConfig::default()),
        &bytes,
        usize::MAX,
    );
    let txn: Vec<&String> = out
        .iter()
        .filter(|l| l.contains("\"table\":\"t_txn\""))
        .collect();
    let sql = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mariadb/types.sql"),
    )
    .unwrap();
    assert!(sql.contains("XA START 'xa-rollback'") && sql.contains("XA START 'xa-commit'"));
    // The final table (SELECT oracle) holds the XA-committed row and not the rolled-back one.
    let select: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mariadb/select.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let final_ids: Vec<String> = select["t_txn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    // Replay inserts/deletes by id and compare the id set.
    let mut ids = std::collections::BTreeSet::new();
    for l in &txn {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        match v["type"].as_str().unwrap() {
            "INSERT" => {
                ids.insert(v["after"]["id"].to_string());
            }
            "DELETE" => {
                ids.remove(&v["before"]["id"].to_string());
            }
            _ => {}
        }
    }
    let want: std::collections::BTreeSet<String> = final_ids.into_iter().collect();
    assert_eq!(ids, want, "t_txn ids after replay vs SELECT");
}

#[test]
fn filters_select_tables() {
    let bytes = fixture("types.000001");
    let cfg = |f: TableFilter| EngineConfig::default().with_filter(f);
    let only_int = run(
        &mut Engine::new(cfg(
            TableFilter::default().with_include_tables(&["mes_fixture.t_int"])
        )),
        &bytes,
        usize::MAX,
    );
    assert!(!only_int.is_empty());
    assert!(only_int.iter().all(|l| l.contains("\"table\":\"t_int\"")
        || l.starts_with("{\"type\":\"DDL\"")
        || l.starts_with("{\"type\":\"QUERY\"")));
    let no_t = run(
        &mut Engine::new(cfg(TableFilter::default().with_exclude_tables(&["t_*"]))),
        &bytes,
        usize::MAX,
    );
    assert!(no_t.iter().all(|l| !l.starts_with("{\"type\":\"INSERT\"")
        && !l.starts_with("{\"type\":\"UPDATE\"")
        && !l.starts_with("{\"type\":\"DELETE\"")));
    let other_db = run(
        &mut Engine::new(cfg(TableFilter::default().with_include_databases(&["nope"]))),
        &bytes,
        usize::MAX,
    );
    assert!(
        other_db.iter().all(|l| !l.contains("mes_fixture")),
        "{:?}",
        other_db.first()
    );
}

struct Names(Vec<ColumnSchema>);

impl SchemaSource for Names {
    fn columns(&mut self, _db: &str, _table: &str) -> Result<Option<Vec<ColumnSchema>>, String> {
        Ok(Some(self.0.clone()))
    }
}

#[test]
fn schema_source_names_columns_and_mismatches_are_refused() {
    let Some(dir) = corpus_dir() else { return };
    // zalora mysql-bin.02 (5.6, no column names in the binlog): table `rooms`? Use its first table.
    let bytes = read_binlog(&dir.join("zalora-binlog-parser/mysql-bin.02"));
    let plain = run(
        &mut Engine::new(EngineConfig::default()),
        &bytes,
        usize::MAX,
    );
    let first: serde_json::Value =
        serde_json::from_str(plain.iter().find(|l| l.contains("INSERT")).unwrap()).unwrap();
    let n = first["after"].as_object().unwrap().len();
    assert!(first["after"].get("0").is_some());

    let names: Vec<ColumnSchema> = (0..n)
        .map(|i| ColumnSchema {
            name: format!("col{i}"),
            data_type: String::new(),
        })
        .collect();
    let mut e = Engine::new(EngineConfig::default());
    e.set_schema_source(Box::new(Names(names.clone())));
    let named = run(&mut e, &bytes, usize::MAX);
    let v: serde_json::Value =
        serde_json::from_str(named.iter().find(|l| l.contains("INSERT")).unwrap()).unwrap();
    assert!(v["after"].get("col0").is_some(), "{v}");

    // One column too many: refused, never guessed.
    let mut wrong = names.clone();
    wrong.push(ColumnSchema {
        name: "extra".into(),
        data_type: String::new(),
    });
    let mut e = Engine::new(EngineConfig::default());
    e.set_schema_source(Box::new(Names(wrong)));
    let err = e.handle_input(&bytes).unwrap_err();
    assert!(matches!(err, EngineError::SchemaMismatch { .. }), "{err}");
    // After an error the engine refuses input until reset.
    assert!(matches!(
        e.handle_input(&bytes).unwrap_err(),
        EngineError::Failed(_)
    ));

    // Wrong type for the first column.
    let mut typed = names;
    typed[0].data_type = "json".into();
    let mut e = Engine::new(EngineConfig::default());
    e.set_schema_source(Box::new(Names(typed)));
    assert!(matches!(
        e.handle_input(&bytes).unwrap_err(),
        EngineError::SchemaMismatch { .. }
    ));
}

#[test]
fn rows_for_an_unknown_table_and_incidents_are_errors() {
    let bytes = fixture("types.000001");
    let events = boundaries(&bytes);
    // Find the first rows event (type 23) and feed the header plus that event alone.
    let (start, end) = *events.iter().find(|(s, _)| bytes[*s + 4] == 23).unwrap();
    let mut input = bytes[..events[0].1].to_vec();
    input.extend_from_slice(&bytes[start..end]);
    let mut e = Engine::new(EngineConfig::default());
    let err = e.handle_input(&input).unwrap_err();
    assert!(
        matches!(err, EngineError::UnknownTable { offset, .. } if offset == events[0].1 as u64),
        "{err}"
    );

    let Some(dir) = corpus_dir() else { return };
    let bytes = read_binlog(&dir.join("rust_mysql_common/bug40482-bin.000001"));
    let err = Engine::new(EngineConfig::default())
        .handle_input(&bytes)
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Incident { offset: 106, .. }),
        "{err}"
    );
}

#[test]
fn statements_and_gtids_are_surfaced() {
    let bytes = fixture("types.000001");
    let out = run(
        &mut Engine::new(EngineConfig::default()),
        &bytes,
        usize::MAX,
    );
    assert!(
        out.iter()
            .any(|l| l.starts_with("{\"type\":\"DDL\"") && l.contains("CREATE TABLE"))
    );
    // Statement-based DML of t_stmt is surfaced as QUERY, not dropped.
    assert!(
        out.iter()
            .any(|l| l.starts_with("{\"type\":\"QUERY\"") && l.contains("t_stmt"))
    );
    // Every row event carries its MariaDB GTID.
    assert!(
        out.iter()
            .filter(|l| l.starts_with("{\"type\":\"INSERT\""))
            .all(|l| l.contains("\"gtid\":\"0-1-"))
    );
}

/// Every event, or the error that stopped the engine, fed in one piece.
fn all_events(config: EngineConfig, bytes: &[u8]) -> (Vec<EngineEvent>, Option<EngineError>) {
    let mut engine = Engine::new(config);
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        match engine.handle_input(&bytes[pos..]) {
            Ok(used) => pos += used,
            Err(e) => return (out, Some(e)),
        }
        let before = out.len();
        while let Some(ev) = engine.poll_event() {
            out.push(ev);
        }
        if pos >= bytes.len() && out.len() == before {
            return (out, None);
        }
    }
}

/// The MariaDB fixtures and every corpus file (when the corpus is there), by name.
fn every_file() -> Vec<(String, Vec<u8>)> {
    let mut inputs = vec![
        ("types.000001".to_owned(), fixture("types.000001")),
        ("types.000002".to_owned(), fixture("types.000002")),
    ];
    if let Some(dir) = corpus_dir() {
        for entry in common::census(&dir) {
            let file = entry["file"].as_str().expect("file").to_owned();
            let bytes = read_binlog(&dir.join(&file));
            inputs.push((file, bytes));
        }
    }
    inputs
}

#[test]
fn decoded_images_equal_lazy_images_on_every_file() {
    let inputs = every_file();
    let mut changes = 0;
    for (name, bytes) in &inputs {
        let (lazy, lazy_err) = all_events(EngineConfig::default(), bytes);
        let (eager, eager_err) =
            all_events(EngineConfig::default().with_decoded_images(true), bytes);
        assert_eq!(lazy_err, eager_err, "{name}");
        assert_eq!(lazy.len(), eager.len(), "{name}");
        for (l, e) in lazy.iter().zip(&eager) {
            // Equal as events (values compared decoded) and as JSON lines.
            assert_eq!(l, e, "{name}");
            assert_eq!(line(l), line(e), "{name}");
            if let EngineEvent::Change(c) = l {
                changes += 1;
                assert_eq!(c.has_before(), c.before().unwrap().is_some(), "{name}");
                assert_eq!(c.has_after(), c.after().unwrap().is_some(), "{name}");
                let (b, a) = c.to_owned_images().unwrap();
                assert_eq!((b, a), (c.before().unwrap(), c.after().unwrap()), "{name}");
                // Decoded in place: the same event, now with decoded images.
                let mut d = c.clone();
                d.decode_images().unwrap();
                let (db, da) = d.decoded_images().expect("decoded in place");
                assert_eq!(db.cloned(), c.before().unwrap(), "{name}");
                assert_eq!(da.cloned(), c.after().unwrap(), "{name}");
                assert_eq!(&EngineEvent::Change(d), e, "{name}");
            }
            if let EngineEvent::Change(c) = e {
                let (b, a) = c.decoded_images().expect("decoded images");
                assert_eq!(b.cloned(), c.before().unwrap(), "{name}");
                assert_eq!(a.cloned(), c.after().unwrap(), "{name}");
            }
        }
    }
    assert!(changes > 1000, "only {changes} change events compared");
}

#[test]
fn change_event_debug_shows_decoded_values_not_bytes() {
    let bytes = fixture("types.000001");
    let (events, err) = all_events(EngineConfig::default(), &bytes);
    assert!(err.is_none(), "{err:?}");
    let change = events
        .iter()
        .find_map(|e| match e {
            EngineEvent::Change(c) => Some(c),
            _ => None,
        })
        .expect("a change event");
    let text = format!("{change:?}");
    let after = change.after().unwrap().expect("after image");
    assert!(text.contains(&format!("{:?}", after.values[0])), "{text}");
    assert!(text.contains(&change.table().table), "{text}");
    assert!(
        text.len() < 4096,
        "Debug dumps the rows event's bytes ({} chars)",
        text.len()
    );
}

#[test]
fn change_events_share_their_rows_event_context_and_stay_small() {
    use std::sync::Arc;
    // What the rows of one rows event have in common is one allocation, read through
    // accessors; a change event is small to move through the queues.
    assert!(
        std::mem::size_of::<EngineEvent>() <= 80,
        "EngineEvent grew to {} bytes",
        std::mem::size_of::<EngineEvent>()
    );
    for config in [
        EngineConfig::default(),
        EngineConfig::default().with_decoded_images(true),
    ] {
        let (events, err) = all_events(config, &fixture("types.000001"));
        assert!(err.is_none(), "{err:?}");
        let changes: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::Change(c) => Some(c),
                _ => None,
            })
            .collect();
        let mut same_event_pairs = 0;
        for pair in changes.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.position() != b.position() {
                continue;
            }
            // Two rows of one rows event: one table, one position, one GTID and statement.
            same_event_pairs += 1;
            assert!(Arc::ptr_eq(a.table(), b.table()));
            assert!(Arc::ptr_eq(&a.position().file, &b.position().file));
            assert_eq!(a.timestamp(), b.timestamp());
            assert_eq!(a.kind(), b.kind());
            match (a.gtid(), b.gtid()) {
                (Some(x), Some(y)) => assert!(Arc::ptr_eq(x, y)),
                (x, y) => assert_eq!(x, y),
            }
            assert_eq!(a.statement(), b.statement());
        }
        assert!(
            same_event_pairs > 0,
            "no rows event with two rows in the fixture"
        );
    }
}

/// A span source with the checks a `SpanScanner` made beforehand, keyed by stream offset.
struct Scanned(HashMap<u64, ScannedRows>, Arc<AtomicUsize>);

impl SpanSource for Scanned {
    fn take(&mut self, offset: u64) -> Option<ScannedRows> {
        let s = self.0.remove(&offset);
        if s.is_some() {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
        s
    }
}

/// Like `all_events`, fed `chunk` bytes at a time, with every `every`-th rows event of each
/// chunk checked beforehand by a `SpanScanner` (as a helper thread would; none when `every`
/// is 0). Returns the events, the error and how many checks the engine took.
fn all_events_scanned(
    bytes: &[u8],
    chunk: usize,
    every: usize,
) -> (Vec<EngineEvent>, Option<EngineError>, usize) {
    let mut engine = Engine::new(EngineConfig::default());
    let taken = Arc::new(AtomicUsize::new(0));
    let mut out = Vec::new();
    let mut pos = 0usize;
    loop {
        let data = &bytes[pos..pos.saturating_add(chunk).min(bytes.len())];
        let source = engine
            .span_scanner()
            .filter(|_| every > 0)
            .map(|mut scanner| {
                let checks = scanner
                    .plan(data)
                    .step_by(every)
                    .filter_map(|p| Some((p.offset(), p.scan()?)))
                    .collect();
                Box::new(Scanned(checks, taken.clone())) as Box<dyn SpanSource>
            });
        engine.set_span_source(source);
        let r = engine.handle_input(data);
        engine.set_span_source(None);
        match r {
            Ok(used) => pos += used,
            Err(e) => return (out, Some(e), taken.load(Ordering::Relaxed)),
        }
        let before = out.len();
        while let Some(ev) = engine.poll_event() {
            out.push(ev);
        }
        if pos >= bytes.len() && out.len() == before {
            return (out, None, taken.load(Ordering::Relaxed));
        }
    }
}

#[test]
fn rows_checked_elsewhere_give_the_same_events_on_every_file() {
    let inputs = every_file();
    let mut used = 0;
    for (name, bytes) in &inputs {
        for (chunk, every) in [(usize::MAX, 1), (64 << 10, 2), (4096, 1)] {
            let (want, want_err, _) = all_events_scanned(bytes, chunk, 0);
            let (got, err, taken) = all_events_scanned(bytes, chunk, every);
            used += taken;
            assert_eq!(err, want_err, "{name} chunk {chunk}");
            assert_eq!(got.len(), want.len(), "{name} chunk {chunk}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g, w, "{name} chunk {chunk}");
                assert_eq!(line(g), line(w), "{name} chunk {chunk}");
            }
        }
    }
    assert!(
        used > 1000,
        "only {used} rows events were checked elsewhere"
    );
}
