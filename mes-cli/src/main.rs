//! `mes`: the mysql-event-stream command line.
//!
//! - `mes decode [--format jsonl|text] [--include P]... [--exclude P]... FILE...` — decode binlog
//!   files (in order; gzip-wrapped accepted) into change events, one per line on stdout.
//!   Errors go to stderr with a non-zero exit status.
//!
//! Streaming a live server (`mes stream`) and checking a server's configuration (`mes check`)
//! arrive with the protocol and driver crates.

use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use mysql_binlog_codec::engine::json_lines::{write_change, write_statement};
use mysql_binlog_codec::engine::{ChangeEvent, Engine, EngineConfig, EngineEvent, TableFilter};
use mysql_binlog_codec::{DecoderConfig, MagicMode};

#[derive(Parser, Debug)]
#[command(
    name = "mes",
    version,
    about = "MySQL / MariaDB change data capture: binlog → row change events"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode binlog files into change events (JSON lines by default).
    Decode(DecodeArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Format {
    /// One JSON object per line (see DESIGN §4).
    Jsonl,
    /// A short human-readable line per event.
    Text,
}

#[derive(clap::Args, Debug)]
struct DecodeArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// Only these tables: `db.table`, `table`, or a prefix ending in `*` (repeatable).
    #[arg(long = "include", value_name = "PATTERN")]
    include: Vec<String>,
    /// Never these tables (same syntax; exclusion wins; repeatable).
    #[arg(long = "exclude", value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Only these databases (exact or `prefix*`; repeatable).
    #[arg(long = "include-db", value_name = "PATTERN")]
    include_db: Vec<String>,
    /// Also print statements that are not row changes (DDL, and statement-based DML, which a
    /// row-based reader cannot turn into rows).
    #[arg(long)]
    statements: bool,
    /// Do not verify CRC32 checksums.
    #[arg(long)]
    no_verify_checksum: bool,
    /// Binlog files, decoded in the order given.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("{path}: gunzip: {e}"))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn write_text(out: &mut String, ev: &ChangeEvent) {
    use std::fmt::Write as _;
    let _ = write!(
        out,
        "{} {}.{} @{}:{}",
        ev.kind.as_str(),
        ev.table.database,
        ev.table.table,
        ev.position.file,
        ev.position.offset
    );
    if let Some(g) = &ev.gtid {
        let _ = write!(out, " gtid={g}");
    }
    for (label, img) in [(" before=", &ev.before), (" after=", &ev.after)] {
        if let Some(row) = img {
            out.push_str(label);
            mysql_binlog_codec::text::write_row(out, &row.values, &ev.table.map.columns);
        }
    }
}

/// A progress line on stderr, only when stderr is a terminal and the input is large.
struct Progress {
    enabled: bool,
    last: Instant,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            enabled: std::io::stderr().is_terminal() && total > 8 << 20,
            last: Instant::now(),
        }
    }

    fn update(&mut self, file: &str, done: usize, total: usize) {
        if self.enabled && self.last.elapsed() > Duration::from_millis(200) {
            self.last = Instant::now();
            eprint!(
                "\r{file}: {:>5.1}% ({} / {} MiB)",
                done as f64 * 100.0 / total as f64,
                done >> 20,
                total >> 20
            );
        }
    }

    fn finish(&self) {
        if self.enabled {
            eprint!("\r\x1b[K");
        }
    }
}

fn decode(args: &DecodeArgs) -> Result<(), String> {
    let filter = TableFilter::default()
        .with_include_tables(&args.include)
        .with_exclude_tables(&args.exclude)
        .with_include_databases(&args.include_db);
    let decoder = DecoderConfig::default()
        .with_magic(MagicMode::Auto)
        .with_verify_checksum(!args.no_verify_checksum);
    let mut engine = Engine::new(
        EngineConfig::default()
            .with_filter(filter)
            .with_decoder(decoder),
    );
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut line = String::with_capacity(1024);
    let mut skipped_statements = 0usize;
    for path in &args.files {
        let bytes = read_file(path)?;
        let name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        engine.start_file(&name);
        let mut progress = Progress::new(bytes.len());
        let mut pos = 0usize;
        loop {
            let used = engine
                .handle_input(&bytes[pos..])
                .map_err(|e| format!("{path}: {e}"))?;
            pos += used;
            while let Some(ev) = engine.poll_event() {
                line.clear();
                match &ev {
                    EngineEvent::Change(c) => match args.format {
                        Format::Jsonl => write_change(&mut line, c),
                        Format::Text => write_text(&mut line, c),
                    },
                    EngineEvent::Statement(s) if args.statements => match args.format {
                        Format::Jsonl => write_statement(&mut line, s),
                        Format::Text => line.push_str(&format!(
                            "{} {}: {}",
                            if s.is_ddl { "DDL" } else { "QUERY" },
                            s.database,
                            s.statement
                        )),
                    },
                    EngineEvent::Statement(s) => {
                        if !s.is_ddl {
                            skipped_statements += 1;
                        }
                        continue;
                    }
                    _ => continue,
                }
                line.push('\n');
                out.write_all(line.as_bytes())
                    .map_err(|e| format!("stdout: {e}"))?;
            }
            progress.update(&name, pos, bytes.len());
            if pos >= bytes.len() {
                break;
            }
        }
        progress.finish();
        engine.handle_eof().map_err(|e| format!("{path}: {e}"))?;
    }
    out.flush().map_err(|e| format!("stdout: {e}"))?;
    if skipped_statements > 0 {
        eprintln!(
            "note: {skipped_statements} statement-based DML statement(s) carry no row images (binlog_format was not ROW); \
             pass --statements to print them"
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Decode(args) => decode(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mes: error: {e}");
            ExitCode::from(1)
        }
    }
}
