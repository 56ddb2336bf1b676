//! Decode throughput of `mysql-binlog-codec` on a large real binlog (DESIGN.md §6).
//!
//! Input, first found:
//! 1. `$MES_BENCH_BINLOG` (a binlog file, optionally gzip-wrapped);
//! 2. `build/bench/bench.binlog`, written by `benches/gen-bench-binlog.sh N` (real MariaDB, the
//!    §6 reference table, N inserts + N updates + N deletes);
//! 3. otherwise the largest corpus binlog that decodes cleanly (`$MES_CORPUS_DIR`, default
//!    `../shared/corpus`), with a printed note: small, so only indicative.
//!
//! Benchmarks:
//! - `decode/full`: every event framed, CRC32 verified, every rows event's rows decoded with
//!   every value, transaction payloads iterated — throughput in bytes;
//! - `decode/no_crc`: the same without CRC verification;
//! - `decode/framing_only`: events framed, CRC verified and typed, rows not decoded;
//! - `decode_rows/full`: `decode/full` again, throughput in row changes (an UPDATE's
//!   before + after pair counts once).
//!
//! `cargo bench -p mes-benches --bench decode`

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mysql_binlog_codec::{
    BinlogDecoder, DecodeError, DecoderConfig, EventData, RowsEvent, TableMap,
};

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

fn load_input() -> (String, Vec<u8>) {
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

fn bench_decode(c: &mut Criterion) {
    let (name, bytes) = load_input();
    let start = Instant::now();
    let stats = decode_all(&bytes, Mode::Full)
        .unwrap_or_else(|e| panic!("{name} does not decode cleanly: {e}"));
    let one_pass = start.elapsed();
    eprintln!(
        "bench input: {name}: {} bytes ({:.1} MiB), {} events, {} row changes, {} values; \
         one full pass {:.3} s",
        bytes.len(),
        bytes.len() as f64 / (1024.0 * 1024.0),
        stats.events,
        stats.rows,
        stats.values,
        one_pass.as_secs_f64()
    );
    // Ten samples of at least one pass each, whatever the input size.
    let measure = (one_pass * 12).max(Duration::from_secs(5));
    let warm_up = one_pass.max(Duration::from_secs(1));

    let mut group = c.benchmark_group("decode");
    group
        .sample_size(10)
        .measurement_time(measure)
        .warm_up_time(warm_up)
        .throughput(Throughput::Bytes(bytes.len() as u64));
    for (id, mode) in [
        ("full", Mode::Full),
        ("no_crc", Mode::NoCrc),
        ("framing_only", Mode::FramingOnly),
    ] {
        group.bench_function(id, |b| {
            b.iter(|| decode_all(black_box(&bytes), mode).map(|s| s.events))
        });
    }
    group.finish();

    if stats.rows > 0 {
        let mut group = c.benchmark_group("decode_rows");
        group
            .sample_size(10)
            .measurement_time(measure)
            .warm_up_time(warm_up)
            .throughput(Throughput::Elements(stats.rows));
        group.bench_function("full", |b| {
            b.iter(|| decode_all(black_box(&bytes), Mode::Full).map(|s| s.rows))
        });
        group.finish();
    }
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
