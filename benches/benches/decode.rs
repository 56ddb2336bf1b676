//! Decode and change-event assembly throughput of `mysql-binlog-codec` on large real binlogs
//! (DESIGN.md §6).
//!
//! Inputs (generate them with `bash benches/gen-bench-binlog.sh N all`, real MariaDB 10.11):
//! - **ref**, first found: `$MES_BENCH_BINLOG` (a binlog file, optionally gzip-wrapped);
//!   `build/bench/bench.binlog` (the §6 reference table, N inserts + N updates + N deletes);
//!   otherwise the largest corpus binlog that decodes cleanly (`$MES_CORPUS_DIR`, default
//!   `../shared/corpus`), with a printed note: small, so only indicative;
//! - **wide**: `build/bench/bench-wide.binlog`, a 30-column table of mixed types;
//! - **json**: `build/bench/bench-json.binlog`, a JSON-heavy table (~1 KB documents; MariaDB
//!   logs JSON as text);
//! - **compressed**: `build/bench/bench-compressed.binlog`, the reference workload written with
//!   MariaDB's `log_bin_compress=ON` (compressed rows events, zlib).
//!
//! A missing optional input is skipped with a printed note.
//!
//! Benchmarks:
//! - `decode/{full,no_crc,framing_only}` (ref): every event framed, CRC32 verified (not in
//!   `no_crc`), every rows event's rows decoded with every value, transaction payloads
//!   iterated (not in `framing_only`, which only frames, verifies and types events) —
//!   throughput in bytes; `decode_rows/full`: the same full decode in row changes (an
//!   UPDATE's before + after pair counts once);
//! - `decode_{wide,json,compressed}/full` and `decode_{wide,json,compressed}_rows/full`: the
//!   full decode of the other inputs, in bytes and in row changes;
//! - `engine/<input>` and `engine_rows/<input>`: change-event assembly — the sans-IO
//!   [`Engine`] fed the whole binlog (`handle_input` / `poll_event`, CRC on), every row change
//!   handed out as an owned event with its table, position and GTID; bytes and row changes;
//! - `json_binary/to_text`: MySQL binary JSON documents (no MySQL server is available here, so
//!   they are built with the codec's own encoder, `JsonDom::to_binary`) rendered as text the way
//!   `SELECT` prints them — throughput in bytes of binary JSON.
//!
//! Guard: before measuring, the full decode of the reference input (when it has at least 10 000
//! row changes) must reach 1 M row changes/s — ten times the 100 k events/s the original
//! `mysql-event-stream` advertises — best of three passes, or the bench panics. The engine's
//! rate is printed beside it (not enforced).
//!
//! `cargo bench -p mes-benches --bench decode` (a filter selects benchmarks, e.g. `-- engine`).

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use mysql_binlog_codec::engine::{Engine, EngineConfig, EngineEvent};
use mysql_binlog_codec::json::{JsonBinary, JsonDom};
use mysql_binlog_codec::{
    BinlogDecoder, DecodeError, DecoderConfig, EventData, RowsEvent, TableMap,
};

/// The original package's advertised rate (events/s); the guard requires ten times it.
const ORIGINAL_ADVERTISED_PER_SEC: f64 = 100_000.0;
const GUARD_FACTOR: f64 = 10.0;
const GUARD_MIN_ROWS: u64 = 10_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Full,
    NoCrc,
    FramingOnly,
}

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    events: u64,
    rows: u64,
    values: u64,
}

type Tables = HashMap<u64, TableMap<'static>>;

fn keep_table(tables: &mut Tables, tm: &TableMap<'_>) {
    // MariaDB/MySQL repeat the TABLE_MAP before every statement; re-own it only when it changed.
    if tables.get(&tm.table_id) != Some(tm) {
        tables.insert(tm.table_id, tm.clone().into_owned());
    }
}

fn decode_rows(rows: &RowsEvent<'_>, tables: &Tables, stats: &mut Stats) -> Result<(), String> {
    let table = tables
        .get(&rows.table_id)
        .ok_or_else(|| format!("rows event for unknown table id {}", rows.table_id))?;
    for change in rows.rows(table) {
        let change = change.map_err(|k| k.to_string())?;
        for image in [&change.before, &change.after].into_iter().flatten() {
            stats.values += image.values.len() as u64;
        }
        black_box(&change);
        stats.rows += 1;
    }
    Ok(())
}

/// Decode the whole input; errors are reported as text (the input is validated before timing).
fn decode_all(bytes: &[u8], mode: Mode) -> Result<Stats, String> {
    let show = |e: DecodeError| e.to_string();
    let config = DecoderConfig::default().with_verify_checksum(mode != Mode::NoCrc);
    let mut decoder = BinlogDecoder::new(config);
    let mut tables: Tables = HashMap::new();
    let mut stats = Stats::default();
    let mut pos = 0usize;
    while let Some((event, used)) = decoder.decode(&bytes[pos..]).map_err(show)? {
        pos += used;
        stats.events += 1;
        if mode == Mode::FramingOnly {
            black_box(&event);
            continue;
        }
        match &event.data {
            EventData::TableMap(tm) => keep_table(&mut tables, tm),
            EventData::Rows(rows) => decode_rows(rows, &tables, &mut stats)?,
            EventData::TransactionPayload(payload) => {
                let fde = decoder
                    .format_description()
                    .ok_or("transaction payload before FORMAT_DESCRIPTION")?
                    .clone();
                let mut inner = payload.events(&fde, event.offset);
                while let Some(iev) = inner.next_event().map_err(show)? {
                    stats.events += 1;
                    match &iev.data {
                        EventData::TableMap(tm) => keep_table(&mut tables, tm),
                        EventData::Rows(rows) => decode_rows(rows, &tables, &mut stats)?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    decoder.finish(&bytes[pos..]).map_err(show)?;
    Ok(stats)
}

/// Count one engine event; a change's images are decoded (every value, as a consumer would:
/// the engine keeps them as bytes until asked).
fn count(ev: &EngineEvent, rows: &mut u64, others: &mut u64) -> Result<(), String> {
    match ev {
        EngineEvent::Change(c) => {
            *rows += 1;
            let images = (c.before(), c.after());
            black_box(&images.0.map_err(|e| e.to_string())?);
            black_box(&images.1.map_err(|e| e.to_string())?);
        }
        _ => *others += 1,
    }
    Ok(())
}

/// Change-event assembly: feed the whole binlog to the engine and take every event out, its
/// images decoded. Returns (row changes, other events handed out).
fn assemble(bytes: &[u8]) -> Result<(u64, u64), String> {
    let mut engine = Engine::new(EngineConfig::default().with_file_name("bench-bin.000001"));
    let (mut rows, mut others) = (0u64, 0u64);
    let mut input = bytes;
    loop {
        let used = engine.handle_input(input).map_err(|e| e.to_string())?;
        input = &input[used..];
        let mut polled = 0u64;
        while let Some(ev) = engine.poll_event() {
            polled += 1;
            count(&ev, &mut rows, &mut others)?;
        }
        if input.is_empty() {
            break;
        }
        if used == 0 && polled == 0 {
            return Err("the engine consumed nothing and handed out nothing".into());
        }
    }
    engine.handle_eof().map_err(|e| e.to_string())?;
    while let Some(ev) = engine.poll_event() {
        count(&ev, &mut rows, &mut others)?;
    }
    Ok((rows, others))
}

fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

fn read_binlog(path: &Path) -> std::io::Result<Vec<u8>> {
    let raw = std::fs::read(path)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The largest corpus file that is a binlog and decodes without error.
fn corpus_fallback() -> Option<(String, Vec<u8>)> {
    let dir = std::env::var_os("MES_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/corpus"));
    let mut files = Vec::new();
    walk(&dir, &mut files);
    let mut best: Option<(String, Vec<u8>)> = None;
    for path in files {
        let Ok(bytes) = read_binlog(&path) else {
            continue;
        };
        if !bytes.starts_with(&mysql_binlog_codec::BINLOG_MAGIC)
            || best.as_ref().is_some_and(|(_, b)| b.len() >= bytes.len())
        {
            continue;
        }
        if decode_all(&bytes, Mode::Full).is_ok() {
            best = Some((path.display().to_string(), bytes));
        }
    }
    best
}

fn load_reference() -> (String, Vec<u8>) {
    if let Some(path) = std::env::var_os("MES_BENCH_BINLOG") {
        let path = PathBuf::from(path);
        let bytes = read_binlog(&path)
            .unwrap_or_else(|e| panic!("MES_BENCH_BINLOG={}: {e}", path.display()));
        return (path.display().to_string(), bytes);
    }
    let generated = repo_root().join("build/bench/bench.binlog");
    if generated.is_file() {
        let bytes =
            read_binlog(&generated).unwrap_or_else(|e| panic!("{}: {e}", generated.display()));
        return (generated.display().to_string(), bytes);
    }
    eprintln!(
        "note: neither $MES_BENCH_BINLOG nor {} exists (run benches/gen-bench-binlog.sh); \
         falling back to the largest decodable corpus binlog: numbers are only indicative",
        generated.display()
    );
    corpus_fallback()
        .expect("no bench input: set MES_BENCH_BINLOG or run benches/gen-bench-binlog.sh")
}

/// An optional generated input, or `None` with a printed note.
fn load_optional(short: &str, file: &str, kind: &str) -> Option<(String, Vec<u8>)> {
    let path = repo_root().join("build/bench").join(file);
    if !path.is_file() {
        eprintln!(
            "note: {} missing: the `{short}` benchmarks are skipped \
             (bash benches/gen-bench-binlog.sh N {kind})",
            path.display()
        );
        return None;
    }
    let bytes = read_binlog(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some((path.display().to_string(), bytes))
}

/// One bench input, validated (decoded fully once, assembled once) before any timing.
struct Input {
    short: &'static str,
    bytes: Vec<u8>,
    stats: Stats,
    /// One full decode pass (sizes the measurement time).
    one_pass: Duration,
}

fn validate(short: &'static str, name: &str, bytes: Vec<u8>) -> Input {
    let start = Instant::now();
    let stats = decode_all(&bytes, Mode::Full)
        .unwrap_or_else(|e| panic!("{name} does not decode cleanly: {e}"));
    let one_pass = start.elapsed();
    let (rows, _) = assemble(&bytes).unwrap_or_else(|e| panic!("{name}: the engine failed: {e}"));
    assert_eq!(
        rows, stats.rows,
        "{name}: the engine handed out {rows} row changes, the decoder saw {}",
        stats.rows
    );
    eprintln!(
        "bench input {short}: {name}: {} bytes ({:.1} MiB), {} events, {} row changes, {} values; \
         one full pass {:.3} s",
        bytes.len(),
        bytes.len() as f64 / (1024.0 * 1024.0),
        stats.events,
        stats.rows,
        stats.values,
        one_pass.as_secs_f64()
    );
    Input {
        short,
        bytes,
        stats,
        one_pass,
    }
}

/// Best of three passes of `f` in row changes per second.
fn best_rate(rows: u64, mut f: impl FnMut()) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        f();
        best = best.min(start.elapsed());
    }
    rows as f64 / best.as_secs_f64().max(1e-9)
}

/// The full decode must stay far above the original's advertised rate (the engine's rate is
/// printed beside it).
fn guard(input: &Input) {
    if cfg!(debug_assertions) {
        // `cargo test --all-targets` runs the benches once, unoptimized: no speed to guard.
        eprintln!("note: guard skipped: unoptimized build (run `cargo bench`)");
        return;
    }
    if input.stats.rows < GUARD_MIN_ROWS {
        eprintln!(
            "note: guard skipped: {} has only {} row changes (< {GUARD_MIN_ROWS})",
            input.short, input.stats.rows
        );
        return;
    }
    let floor = ORIGINAL_ADVERTISED_PER_SEC * GUARD_FACTOR;
    let decode = best_rate(input.stats.rows, || {
        black_box(decode_all(black_box(&input.bytes), Mode::Full).ok());
    });
    let engine = best_rate(input.stats.rows, || {
        black_box(assemble(black_box(&input.bytes)).ok());
    });
    eprintln!(
        "guard: full decode {:.2} M row changes/s = {:.1}x the original's advertised {:.0} k \
         events/s (required: >= {GUARD_FACTOR}x); engine {:.2} M row changes/s = {:.1}x",
        decode / 1e6,
        decode / ORIGINAL_ADVERTISED_PER_SEC,
        ORIGINAL_ADVERTISED_PER_SEC / 1e3,
        engine / 1e6,
        engine / ORIGINAL_ADVERTISED_PER_SEC,
    );
    assert!(
        decode >= floor,
        "GUARD FAILED: the full decode's {decode:.0} row changes/s is below {floor:.0} \
         ({GUARD_FACTOR}x the original's advertised rate)"
    );
}

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, one_pass: Duration) {
    // Ten samples of at least one pass each, whatever the input size.
    group
        .sample_size(10)
        .measurement_time((one_pass * 12).max(Duration::from_secs(5)))
        .warm_up_time(one_pass.max(Duration::from_secs(1)));
}

fn bench_full_decode(c: &mut Criterion, input: &Input, group: &str, all_modes: bool) {
    let bytes = &input.bytes;
    let mut g = c.benchmark_group(group);
    configure(&mut g, input.one_pass);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    let modes: &[(&str, Mode)] = if all_modes {
        &[
            ("full", Mode::Full),
            ("no_crc", Mode::NoCrc),
            ("framing_only", Mode::FramingOnly),
        ]
    } else {
        &[("full", Mode::Full)]
    };
    for &(id, mode) in modes {
        g.bench_function(id, |b| {
            b.iter(|| decode_all(black_box(bytes), mode).map(|s| s.events))
        });
    }
    g.finish();

    if input.stats.rows > 0 {
        let mut g = c.benchmark_group(format!("{group}_rows"));
        configure(&mut g, input.one_pass);
        g.throughput(Throughput::Elements(input.stats.rows));
        g.bench_function("full", |b| {
            b.iter(|| decode_all(black_box(bytes), Mode::Full).map(|s| s.rows))
        });
        g.finish();
    }
}

fn bench_engine(c: &mut Criterion, inputs: &[Input]) {
    let mut g = c.benchmark_group("engine");
    for input in inputs {
        configure(&mut g, input.one_pass * 2);
        g.throughput(Throughput::Bytes(input.bytes.len() as u64));
        g.bench_function(input.short, |b| {
            b.iter(|| assemble(black_box(&input.bytes)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("engine_rows");
    for input in inputs.iter().filter(|i| i.stats.rows > 0) {
        configure(&mut g, input.one_pass * 2);
        g.throughput(Throughput::Elements(input.stats.rows));
        g.bench_function(input.short, |b| {
            b.iter(|| assemble(black_box(&input.bytes)))
        });
    }
    g.finish();
}

/// A customer-like document of roughly 1 KB (the shape of the `json` workload's documents).
fn json_doc(i: u64) -> JsonDom {
    let s = |v: String| JsonDom::String(v);
    let hex = |x: u64| format!("{:016x}{:016x}", x.wrapping_mul(0x9e37_79b9_7f4a_7c15), !x);
    let orders = (0..3)
        .map(|k| {
            JsonDom::Object(vec![
                ("sku".into(), s(hex(i * 3 + k))),
                ("qty".into(), JsonDom::Int(((i + k) % 9) as i64)),
                (
                    "price".into(),
                    JsonDom::Double(((i * 7 + k) % 10_000) as f64 / 100.0),
                ),
            ])
        })
        .collect();
    JsonDom::Object(vec![
        ("id".into(), JsonDom::Int(i as i64)),
        ("name".into(), s(format!("customer {i}"))),
        ("email".into(), s(format!("user{i}@example.com"))),
        ("active".into(), JsonDom::Bool(i % 2 == 0)),
        ("score".into(), JsonDom::Double(i as f64 / 7.0)),
        (
            "balance".into(),
            JsonDom::Decimal(format!("{}.{:02}", i % 10_000, i % 100)),
        ),
        ("note".into(), JsonDom::Null),
        (
            "address".into(),
            JsonDom::Object(vec![
                ("street".into(), s(format!("{} Main Street", i % 999))),
                (
                    "city".into(),
                    s(["Berlin", "Paris", "Lisbon", "Oslo"][(i % 4) as usize].into()),
                ),
                ("zip".into(), s(format!("{:05}", i % 100_000))),
                (
                    "geo".into(),
                    JsonDom::Array(vec![
                        JsonDom::Int((i % 90) as i64),
                        JsonDom::Int((i % 180) as i64),
                    ]),
                ),
            ]),
        ),
        ("orders".into(), JsonDom::Array(orders)),
        (
            "history".into(),
            JsonDom::Array((0..8).map(|k| JsonDom::UInt(i + k)).collect()),
        ),
        ("bio".into(), s(format!("{} ", hex(i)).repeat(6))),
    ])
}

fn bench_json_binary(c: &mut Criterion) {
    let docs: Vec<Vec<u8>> = (1..=2000).map(|i| json_doc(i).to_binary()).collect();
    let total: usize = docs.iter().map(Vec::len).sum();
    let mut text = String::new();
    for d in &docs {
        text.clear();
        JsonBinary::new(d)
            .write_text(&mut text)
            .unwrap_or_else(|e| panic!("the encoder's own document does not decode: {e}"));
    }
    eprintln!(
        "bench input json_binary: 2000 documents built with JsonDom::to_binary, {total} bytes \
         of binary JSON (~{} bytes each; last as text: {} bytes)",
        total / docs.len(),
        text.len()
    );
    let mut g = c.benchmark_group("json_binary");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("to_text", |b| {
        let mut out = String::with_capacity(4096);
        b.iter(|| {
            for d in &docs {
                out.clear();
                let r = JsonBinary::new(black_box(d)).write_text(&mut out);
                black_box((&r, &out));
            }
        })
    });
    g.finish();
}

fn bench_all(c: &mut Criterion) {
    let (name, bytes) = load_reference();
    let mut inputs = vec![validate("ref", &name, bytes)];
    guard(&inputs[0]);
    for (short, file, kind) in [
        ("wide", "bench-wide.binlog", "wide"),
        ("json", "bench-json.binlog", "json"),
        ("compressed", "bench-compressed.binlog", "ref-compressed"),
    ] {
        if let Some((name, bytes)) = load_optional(short, file, kind) {
            inputs.push(validate(short, &name, bytes));
        }
    }

    bench_full_decode(c, &inputs[0], "decode", true);
    for input in &inputs[1..] {
        bench_full_decode(c, input, &format!("decode_{}", input.short), false);
    }
    bench_engine(c, &inputs);
    bench_json_binary(c);
}

criterion_group!(benches, bench_all);
criterion_main!(benches);
