//! `mes-bench-engine`: feed one binlog file to the sans-IO change-event engine on this thread
//! alone and count what it hands out — the engine's share of a live stream (framing, CRC, the
//! rows check, transaction bookkeeping) without the network, the second thread or a queue
//! between them. Made for counting instructions (`benches/callgrind-engine.sh` runs it under
//! valgrind's callgrind, whose counts repeat run to run where wall times on the project's VMs do
//! not); it also prints its own time.
//!
//! ```text
//! mes-bench-engine FILE [--decode] [--expect INSERTS:UPDATES:DELETES]
//! ```
//!
//! `--decode` also decodes both images of every change (what a consumer of the drivers does);
//! without it the images stay undecoded (the rows are still checked: the engine checks every
//! row before it queues any). `--expect` fails the run (status 1) unless the numbers of row
//! changes per kind are those. Prints one JSON line: row changes per kind, values decoded,
//! seconds.

/// The allocator the drivers' binaries use (see `mes-bench-live`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use mysql_binlog_codec::engine::{ChangeKind, Engine, EngineConfig, EngineEvent};

/// Bytes handed to the engine per call, as a socket reader would.
const CHUNK: usize = 64 << 10;

#[derive(Parser)]
#[command(about = "Feed a binlog file to the change-event engine and count its row changes")]
struct Args {
    /// The binlog file (starting with the binlog magic).
    file: std::path::PathBuf,
    /// Also decode both images of every change.
    #[arg(long)]
    decode: bool,
    /// Row changes expected per kind, `INSERTS:UPDATES:DELETES`.
    #[arg(long)]
    expect: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    let (counts, values) = match run(&bytes, args.decode) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    if let Some(want) = &args.expect {
        let got = format!("{}:{}:{}", counts[0], counts[1], counts[2]);
        if &got != want {
            eprintln!("row changes per kind {got}, expected {want}");
            return ExitCode::FAILURE;
        }
    }
    println!(
        "{{\"inserts\":{},\"updates\":{},\"deletes\":{},\"values\":{values},\"seconds\":{seconds:.6}}}",
        counts[0], counts[1], counts[2]
    );
    ExitCode::SUCCESS
}

/// Row changes per kind (INSERT, UPDATE, DELETE) and values decoded.
fn run(bytes: &[u8], decode: bool) -> Result<([u64; 3], u64), String> {
    let mut engine = Engine::new(EngineConfig::default().with_file_name("bench-bin.000001"));
    let (mut counts, mut values) = ([0u64; 3], 0u64);
    let mut take = |ev: EngineEvent| -> Result<(), String> {
        if let EngineEvent::Change(c) = &ev {
            counts[match c.kind() {
                ChangeKind::Insert => 0,
                ChangeKind::Update => 1,
                ChangeKind::Delete => 2,
            }] += 1;
            if decode {
                for row in [c.before(), c.after()] {
                    if let Some(row) = row.map_err(|e| e.to_string())? {
                        values += row.values.len() as u64;
                        black_box(&row);
                    }
                }
            }
        }
        drop(black_box(ev));
        Ok(())
    };
    let mut input = bytes;
    while !input.is_empty() {
        let piece = &input[..input.len().min(CHUNK)];
        let used = engine.handle_input(piece).map_err(|e| e.to_string())?;
        input = &input[used..];
        let mut polled = false;
        while let Some(ev) = engine.poll_event() {
            polled = true;
            take(ev)?;
        }
        if used == 0 && !polled {
            return Err("the engine consumed nothing and handed out nothing".into());
        }
    }
    engine.handle_eof().map_err(|e| e.to_string())?;
    while let Some(ev) = engine.poll_event() {
        take(ev)?;
    }
    Ok((counts, values))
}
