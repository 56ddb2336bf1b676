//! `mes-bench-live`: stream a live server's binlog from a given file position to its end through
//! `mes-blocking` or `mes-tokio`, count the row changes, and print one JSON line with the
//! streaming time, the counts and the process's peak RSS. Used by `benches/compare/run.sh`.
//!
//! ```text
//! MES_BENCH_PASSWORD=… mes-bench-live --driver blocking|tokio --host 127.0.0.1 --port 33075 \
//!     --user root --file bench-bin.000002 --expect-rows 60000 [--expect-kinds 20000:20000:20000]
//! ```
//!
//! The dump is started with `stop_at_end` (`BINLOG_DUMP_NON_BLOCK`), so the stream ends when the
//! server reaches the end of its binlog; the numbers of INSERT / UPDATE / DELETE row changes seen
//! must equal the expected ones, and each kind's values of the first column (`id`) must be
//! exactly 1..=count (checked by sum and sum of squares), otherwise the tool exits with status 1
//! and prints no speed.
//! TLS is off (the other contenders of the comparison stream in plain text too) and reconnection
//! is off (a lost connection must fail the run instead of re-delivering rows).
//!
//! Timed: from just before the connection is opened to the end of the stream. Peak RSS is the
//! kernel's `VmHWM` of this process at the end (the whole process, allocator included). The
//! queue limits are the libraries' defaults unless `--queue-bytes`, `--engine-queue-bytes` or
//! `--max-buffered-txn-bytes` say otherwise.

/// Like any binary built on the drivers, this one picks its allocator: mimalloc. Events are
/// allocated on the reader thread and freed on the consumer's; glibc serialises those frees on
/// its arena lock (futex wake-ups were ~6% of the reader's time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use mysql_binlog_codec::Value;
use mysql_binlog_codec::engine::{ChangeKind, EngineEvent};
use mysql_repl_proto::{ConnectConfig, SslMode, StartPosition, TlsOptions};

/// Which driver streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Driver {
    /// `mes_blocking::BinlogStream` (std::net, reader thread).
    Blocking,
    /// `mes_tokio::BinlogStream` on a multi-threaded tokio runtime.
    Tokio,
}

/// Stream a live binlog to its end and report rows/s and peak RSS (one JSON line).
#[derive(Debug, Parser)]
#[command(name = "mes-bench-live")]
struct Args {
    /// Driver to measure.
    #[arg(long, value_enum)]
    driver: Driver,
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long)]
    port: u16,
    /// User (the password is read from `$MES_BENCH_PASSWORD`).
    #[arg(long, default_value = "root")]
    user: String,
    /// Binlog file to start from (at offset 4).
    #[arg(long)]
    file: String,
    /// Start offset in that file.
    #[arg(long, default_value_t = 4)]
    pos: u64,
    /// Replica server id (unique among the server's replicas).
    #[arg(long, default_value_t = 4711)]
    server_id: u32,
    /// Row changes the stream must deliver (INSERT + UPDATE + DELETE).
    #[arg(long)]
    expect_rows: u64,
    /// Optionally the exact split `INSERTS:UPDATES:DELETES`.
    #[arg(long)]
    expect_kinds: Option<String>,
    /// Driver queue limit in bytes (default: the driver's, 48 MiB).
    #[arg(long)]
    queue_bytes: Option<usize>,
    /// Engine: stream a transaction once its buffered changes exceed this many bytes
    /// (default: the engine's, 64 MiB).
    #[arg(long)]
    max_buffered_txn_bytes: Option<usize>,
    /// Engine: stop consuming input while its queued events hold this many bytes (default:
    /// the engine's, 48 MiB).
    #[arg(long)]
    engine_queue_bytes: Option<usize>,
    /// Label printed in the JSON line (default `rust-<driver>`).
    #[arg(long)]
    label: Option<String>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    inserts: u64,
    updates: u64,
    deletes: u64,
    values: u64,
    statements: u64,
    /// Per kind (INSERT, UPDATE, DELETE): sum and sum of squares of the first column.
    id_sums: [(u128, u128); 3],
    /// Rows whose first column is not an integer, or whose images did not decode.
    bad_ids: u64,
}

impl Counts {
    fn total(&self) -> u64 {
        self.inserts + self.updates + self.deletes
    }

    fn add(&mut self, ev: &EngineEvent) {
        match ev {
            EngineEvent::Change(c) => {
                // Decode both images (every value, on this consumer thread).
                let (Ok(before), Ok(after)) = (c.before(), c.after()) else {
                    self.bad_ids += 1;
                    return;
                };
                let (slot, image) = match c.kind() {
                    ChangeKind::Insert => {
                        self.inserts += 1;
                        (0, &after)
                    }
                    ChangeKind::Update => {
                        self.updates += 1;
                        (1, &after)
                    }
                    ChangeKind::Delete => {
                        self.deletes += 1;
                        (2, &before)
                    }
                };
                let id = image
                    .as_ref()
                    .and_then(|r| r.values.first())
                    .and_then(|v| match v {
                        Some(Value::Int(i)) => u128::try_from(*i).ok(),
                        Some(Value::UInt(u)) => Some(u128::from(*u)),
                        _ => None,
                    });
                match id {
                    Some(id) => {
                        let sums = &mut self.id_sums[slot];
                        sums.0 += id;
                        sums.1 += id * id;
                    }
                    None => self.bad_ids += 1,
                }
                for image in [&before, &after].into_iter().flatten() {
                    self.values += image.values.iter().filter(|v| v.is_some()).count() as u64;
                    black_box(image);
                }
                black_box(c);
            }
            EngineEvent::Statement(_) => self.statements += 1,
            // `EngineEvent` is non-exhaustive: anything new is neither counted nor dropped
            // silently from the verification (it is not a row change).
            _ => {}
        }
    }
}

struct Outcome {
    counts: Counts,
    elapsed: Duration,
    checkpoint: String,
}

/// A `/proc/self/status` field in KiB (Linux); 0 elsewhere.
fn status_kib(field: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn stream_config(args: &Args) -> mes_blocking::StreamConfig {
    let connect = ConnectConfig {
        user: args.user.clone(),
        password: std::env::var("MES_BENCH_PASSWORD").unwrap_or_default(),
        tls: TlsOptions {
            mode: SslMode::Disabled,
            ..TlsOptions::default()
        },
        server_id: args.server_id,
        start: StartPosition::FilePosition {
            file: args.file.clone(),
            position: args.pos,
        },
        stop_at_end: true,
        ..ConnectConfig::default()
    };
    let mut config = mes_blocking::StreamConfig::new(&args.host, args.port, connect);
    config.reconnect.max_attempts = 0;
    if let Some(n) = args.queue_bytes {
        config.queue_bytes = n;
    }
    if let Some(n) = args.max_buffered_txn_bytes {
        config.engine = config.engine.with_max_buffered_transaction_bytes(n);
    }
    if let Some(n) = args.engine_queue_bytes {
        config.engine = config.engine.with_max_queue_bytes(n);
    }
    config
}

fn run_blocking(args: &Args) -> Result<Outcome, String> {
    let start = Instant::now();
    let mut stream =
        mes_blocking::BinlogStream::start(stream_config(args)).map_err(|e| e.to_string())?;
    let mut counts = Counts::default();
    for ev in stream.by_ref() {
        counts.add(&ev.map_err(|e| e.to_string())?);
    }
    let elapsed = start.elapsed();
    let checkpoint = stream.checkpoint_string();
    stream.stop();
    Ok(Outcome {
        counts,
        elapsed,
        checkpoint,
    })
}

fn run_tokio(args: &Args) -> Result<Outcome, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let start = Instant::now();
        let mut stream = mes_tokio::BinlogStream::start(stream_config(args))
            .await
            .map_err(|e| e.to_string())?;
        let mut counts = Counts::default();
        while let Some(ev) = stream.next().await {
            counts.add(&ev.map_err(|e| e.to_string())?);
        }
        let elapsed = start.elapsed();
        let checkpoint = stream.checkpoint_string();
        stream.stop().await;
        Ok(Outcome {
            counts,
            elapsed,
            checkpoint,
        })
    })
}

/// Whether each kind's first-column values can be exactly `1..=count` (sum and sum of squares).
fn ids_ok(c: &Counts) -> bool {
    let counts = [c.inserts, c.updates, c.deletes];
    c.bad_ids == 0
        && counts.iter().zip(c.id_sums).all(|(&n, (sum, squares))| {
            let n = u128::from(n);
            sum == n * (n + 1) / 2 && squares == n * (n + 1) * (2 * n + 1) / 6
        })
}

/// Parse `I:U:D`.
fn parse_kinds(s: &str) -> Option<[u64; 3]> {
    let mut it = s.split(':').map(|p| p.trim().parse::<u64>().ok());
    let kinds = [it.next()??, it.next()??, it.next()??];
    it.next().is_none().then_some(kinds)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let label = args.label.clone().unwrap_or_else(|| match args.driver {
        Driver::Blocking => "rust-blocking".into(),
        Driver::Tokio => "rust-tokio".into(),
    });
    let expected_kinds = match args.expect_kinds.as_deref().map(parse_kinds) {
        Some(None) => {
            eprintln!("mes-bench-live: --expect-kinds must be INSERTS:UPDATES:DELETES");
            return ExitCode::from(2);
        }
        Some(Some(k)) => Some(k),
        None => None,
    };
    let rss_start = status_kib("VmRSS");
    let outcome = match args.driver {
        Driver::Blocking => run_blocking(&args),
        Driver::Tokio => run_tokio(&args),
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mes-bench-live ({label}): stream failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let peak = status_kib("VmHWM");
    let c = outcome.counts;
    let seen = [c.inserts, c.updates, c.deletes];
    let kinds_ok = expected_kinds.is_none_or(|k| k == seen);
    if c.total() != args.expect_rows || !kinds_ok || !ids_ok(&c) {
        eprintln!(
            "mes-bench-live ({label}): ROW MISMATCH: saw {} row changes \
             ({} inserts, {} updates, {} deletes; ids 1..=count per kind: {}), expected {}{}; \
             checkpoint {}",
            c.total(),
            c.inserts,
            c.updates,
            c.deletes,
            if ids_ok(&c) { "yes" } else { "NO" },
            args.expect_rows,
            args.expect_kinds
                .as_deref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default(),
            outcome.checkpoint
        );
        return ExitCode::FAILURE;
    }
    println!(
        "{{\"contender\":\"{label}\",\"rows\":{},\"inserts\":{},\"updates\":{},\"deletes\":{},\
         \"values\":{},\"statements\":{},\"seconds\":{:.6},\"rss_start_kib\":{rss_start},\
         \"peak_rss_kib\":{peak},\"checkpoint\":\"{}\"}}",
        c.total(),
        c.inserts,
        c.updates,
        c.deletes,
        c.values,
        c.statements,
        outcome.elapsed.as_secs_f64(),
        outcome
            .checkpoint
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    );
    ExitCode::SUCCESS
}
