//! Shared helpers for the corpus tests: locating the corpus, reading (gzip-wrapped) files, and
//! decoding a whole file into an owned summary.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use mysql_binlog_codec::{BinlogDecoder, DecodeError, DecoderConfig, EventData, TableMap};

/// The corpus directory, or `None` (after printing a loud skip line) when it is absent.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("MES_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    if dir.join("census.json").is_file() {
        Some(dir)
    } else {
        if std::env::var("MES_REQUIRE_CORPUS").as_deref() == Ok("1") {
            panic!(
                "corpus not found at {} and MES_REQUIRE_CORPUS=1",
                dir.display()
            );
        }
        eprintln!(
            "SKIPPED: binlog corpus not found at {} (set MES_CORPUS_DIR)",
            dir.display()
        );
        None
    }
}

/// Read a corpus file, gunzipping it when it is gzip-wrapped.
pub fn read_binlog(path: &std::path::Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    } else {
        raw
    }
}

/// The census entries: (relative file name, parsed JSON object).
pub fn census(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("census.json")).expect("census.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("census json");
    v.as_array().expect("census array").clone()
}

/// One decoded event, owned, with its rows rendered as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub offset: u64,
    /// Raw type code as stored in the file.
    pub raw_type: u8,
    /// Type code after any old-numbering permutation.
    pub type_code: u8,
    pub in_payload: bool,
    pub raw: Vec<u8>,
    pub text: String,
}

/// Result of decoding a whole file: the events before any error, and the error.
#[derive(Debug)]
pub struct FileDecode {
    pub events: Vec<Decoded>,
    pub error: Option<DecodeError>,
    pub rows: usize,
}

fn describe(
    ev: &mysql_binlog_codec::Event<'_>,
    tables: &HashMap<u64, TableMap<'static>>,
    rows: &mut usize,
) -> Result<String, DecodeError> {
    let fail = |kind| DecodeError::new(kind, Some(ev.header.type_code), ev.offset);
    Ok(match &ev.data {
        EventData::Rows(r) => {
            let table = tables.get(&r.table_id).ok_or_else(|| {
                fail(mysql_binlog_codec::DecodeErrorKind::TableMapMismatch {
                    table_id: r.table_id,
                    what: "unknown table id".into(),
                })
            })?;
            let mut s = format!("{:?} {}.{}", r.kind, table.database, table.table);
            for change in r.rows(table) {
                let change = change.map_err(fail)?;
                *rows += 1;
                for img in [&change.before, &change.after].into_iter().flatten() {
                    s.push(' ');
                    mysql_binlog_codec::text::write_row(&mut s, &img.values, &table.columns);
                }
            }
            s
        }
        other => format!("{other:?}"),
    })
}

/// Decode a whole buffer, payload inner events included, every row decoded.
pub fn decode_all(bytes: &[u8], config: DecoderConfig) -> FileDecode {
    let mut dec = BinlogDecoder::new(config);
    let mut tables: HashMap<u64, TableMap<'static>> = HashMap::new();
    let mut events = Vec::new();
    let mut rows = 0usize;
    let mut pos = 0usize;
    let mut error = None;
    loop {
        match dec.decode(&bytes[pos..]) {
            Ok(Some((ev, used))) => {
                pos += used;
                let text = match describe(&ev, &tables, &mut rows) {
                    Ok(t) => t,
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                };
                events.push(Decoded {
                    offset: ev.offset,
                    raw_type: ev.raw[4],
                    type_code: ev.header.type_code,
                    in_payload: false,
                    raw: ev.raw.to_vec(),
                    text,
                });
                match &ev.data {
                    EventData::TableMap(t) => {
                        tables.insert(t.table_id, t.clone().into_owned());
                    }
                    EventData::TransactionPayload(p) => {
                        let fde = dec.format_description().cloned().expect("fde");
                        let mut inner = p.events(&fde, ev.offset);
                        loop {
                            match inner.next_event() {
                                Ok(Some(iev)) => {
                                    let text = match describe(&iev, &tables, &mut rows) {
                                        Ok(t) => t,
                                        Err(e) => {
                                            error = Some(e);
                                            break;
                                        }
                                    };
                                    if let EventData::TableMap(t) = &iev.data {
                                        tables.insert(t.table_id, t.clone().into_owned());
                                    }
                                    events.push(Decoded {
                                        offset: iev.offset,
                                        raw_type: iev.raw[4],
                                        type_code: iev.header.type_code,
                                        in_payload: true,
                                        raw: iev.raw.to_vec(),
                                        text,
                                    });
                                }
                                Ok(None) => break,
                                Err(e) => {
                                    error = Some(e);
                                    break;
                                }
                            }
                        }
                        if error.is_some() {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            Ok(None) => {
                if let Err(e) = dec.finish(&bytes[pos..]) {
                    error = Some(e);
                }
                break;
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    FileDecode {
        events,
        error,
        rows,
    }
}
