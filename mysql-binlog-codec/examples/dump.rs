//! Print every event of one or more binlog files, one line per event:
//! `OFFSET<TAB>TYPE_CODE<TAB>TYPE_NAME<TAB>details`, with rows decoded. Events inside a
//! TRANSACTION_PAYLOAD are printed with the payload's offset and `payload:` before the name.
//! Files may be gzip-wrapped. On a decode error: the error on stderr, exit status 1.
//!
//! `cargo run -p mysql-binlog-codec --example dump -- FILE...`

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufWriter, Read, Write};
use std::process::ExitCode;

use mysql_binlog_codec::text::write_row;
use mysql_binlog_codec::{
    BinlogDecoder, DecodeError, DecoderConfig, Event, EventData, MagicMode, TableMap,
};

fn read_file(path: &str) -> std::io::Result<Vec<u8>> {
    let raw = std::fs::read(path)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn details(
    ev: &Event<'_>,
    tables: &HashMap<u64, TableMap<'static>>,
) -> Result<String, DecodeError> {
    let mut s = String::new();
    let fail = |kind| DecodeError::new(kind, Some(ev.header.type_code), ev.offset);
    match &ev.data {
        EventData::FormatDescription(f) => {
            let _ = write!(
                s,
                "server={} binlog_version={} checksum={:?}",
                f.server_version, f.binlog_version, f.checksum
            );
        }
        EventData::Rotate(r) => {
            let _ = write!(s, "next={} pos={}", r.next_file, r.position);
        }
        EventData::Query(q) => {
            let _ = write!(
                s,
                "db={} query={}",
                q.schema_str(),
                q.query_str().replace('\n', " ")
            );
        }
        EventData::Xid(x) => {
            let _ = write!(s, "xid={x}");
        }
        EventData::Gtid(g) => {
            let _ = write!(
                s,
                "gtid={g} last_committed={:?} seq={:?}",
                g.last_committed, g.sequence_number
            );
        }
        EventData::PreviousGtids(set) => {
            let _ = write!(s, "{set}");
        }
        EventData::TableMap(t) => {
            let _ = write!(
                s,
                "table_id={} {}.{} columns={}",
                t.table_id,
                t.database,
                t.table,
                t.columns.len()
            );
            if t.has_column_names() {
                let names: Vec<&str> = t.columns.iter().filter_map(|c| c.name.as_deref()).collect();
                let _ = write!(s, " names={}", names.join(","));
            }
        }
        EventData::Rows(r) => {
            let table = tables.get(&r.table_id).ok_or_else(|| {
                fail(mysql_binlog_codec::DecodeErrorKind::TableMapMismatch {
                    table_id: r.table_id,
                    what: "no TABLE_MAP for this table id".into(),
                })
            })?;
            let _ = write!(s, "{:?} {}.{}", r.kind, table.database, table.table);
            for change in r.rows(table) {
                let change = change.map_err(fail)?;
                if let Some(b) = &change.before {
                    s.push_str(" before=");
                    write_row(&mut s, &b.values, &table.columns);
                }
                if let Some(a) = &change.after {
                    s.push_str(" after=");
                    write_row(&mut s, &a.values, &table.columns);
                }
                s.push(';');
            }
        }
        EventData::TransactionPayload(p) => {
            let _ = write!(
                s,
                "compression={:?} compressed={} uncompressed={}",
                p.compression, p.compressed_size, p.uncompressed_size
            );
        }
        EventData::MariaGtid(g) => {
            let _ = write!(s, "gtid={} flags={:#x}", g.gtid, g.flags);
        }
        EventData::MariaGtidList(l) => {
            let list: Vec<String> = l.iter().map(|g| g.to_string()).collect();
            let _ = write!(s, "[{}]", list.join(","));
        }
        EventData::MariaAnnotateRows(q) | EventData::RowsQuery(q) => {
            let _ = write!(s, "query={}", q.replace('\n', " "));
        }
        EventData::MariaBinlogCheckpoint(f) => {
            let _ = write!(s, "file={f}");
        }
        EventData::Incident(i) => {
            let _ = write!(s, "incident={} message={}", i.kind, i.message);
        }
        EventData::Ignorable(b) => {
            let _ = write!(s, "ignored {} bytes", b.len());
        }
        other => {
            let _ = write!(s, "{other:?}");
        }
    }
    Ok(s)
}

fn dump(path: &str, out: &mut impl Write) -> Result<(), String> {
    let bytes = read_file(path).map_err(|e| format!("{path}: {e}"))?;
    let mut decoder = BinlogDecoder::new(DecoderConfig::default().with_magic(MagicMode::Require));
    let mut tables: HashMap<u64, TableMap<'static>> = HashMap::new();
    let mut pos = 0usize;
    let show = |e: DecodeError| {
        format!(
            "{path}: decode error: {} (kind={:?}, type={:?}, offset={})",
            e, e.kind, e.event_type, e.offset
        )
    };
    while let Some((ev, used)) = decoder.decode(&bytes[pos..]).map_err(show)? {
        pos += used;
        let name = ev.header.event_type().name();
        let line = details(&ev, &tables).map_err(show)?;
        writeln!(
            out,
            "{}\t{}\t{}\t{}",
            ev.offset, ev.header.type_code, name, line
        )
        .map_err(|e| e.to_string())?;
        match &ev.data {
            EventData::TableMap(t) => {
                tables.insert(t.table_id, t.clone().into_owned());
            }
            EventData::TransactionPayload(p) => {
                let fde = decoder
                    .format_description()
                    .cloned()
                    .ok_or("payload before FORMAT_DESCRIPTION")?;
                let mut inner = p.events(&fde, ev.offset);
                while let Some(iev) = inner.next_event().map_err(show)? {
                    let line = details(&iev, &tables).map_err(show)?;
                    writeln!(
                        out,
                        "{}\t{}\tpayload:{}\t{}",
                        iev.offset,
                        iev.header.type_code,
                        iev.header.event_type().name(),
                        line
                    )
                    .map_err(|e| e.to_string())?;
                    if let EventData::TableMap(t) = &iev.data {
                        tables.insert(t.table_id, t.clone().into_owned());
                    }
                }
            }
            _ => {}
        }
    }
    decoder.finish(&bytes[pos..]).map_err(show)
}

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: dump FILE...");
        return ExitCode::from(2);
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for f in &files {
        if let Err(e) = dump(f, &mut out) {
            let _ = out.flush();
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}
