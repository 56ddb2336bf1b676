//! Corpus tests: every real binlog in `$MES_CORPUS_DIR` decodes (every row, every payload) with
//! zero errors and the census's event counts; the truncated / corrupt ones fail with the
//! expected typed error; decoding does not depend on how the input is split; and the expected
//! values the corpus manifest points to are asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{census, corpus_dir, decode_all, read_binlog};
use mysql_binlog_codec::{
    BinlogDecoder, DecodeErrorKind, DecoderConfig, EventData, MagicMode, TableMap, Value,
};

fn census_name(raw: u8) -> &'static str {
    match raw {
        2 => "QUERY",
        3 => "STOP",
        4 => "ROTATE",
        5 => "INTVAR",
        9 => "APPEND_BLOCK",
        13 => "RAND",
        14 => "USER_VAR",
        15 => "FORMAT_DESCRIPTION",
        16 => "XID",
        17 => "BEGIN_LOAD_QUERY",
        18 => "EXECUTE_LOAD_QUERY",
        19 => "TABLE_MAP",
        20 => "PRE_GA_WRITE_ROWS",
        21 => "PRE_GA_UPDATE_ROWS",
        22 => "PRE_GA_DELETE_ROWS",
        23 => "WRITE_ROWS_V1",
        24 => "UPDATE_ROWS_V1",
        25 => "DELETE_ROWS_V1",
        26 => "INCIDENT",
        29 => "ROWS_QUERY",
        30 => "WRITE_ROWS_V2",
        31 => "UPDATE_ROWS_V2",
        32 => "DELETE_ROWS_V2",
        33 => "GTID",
        34 => "ANONYMOUS_GTID",
        35 => "PREVIOUS_GTIDS",
        39 => "PARTIAL_UPDATE_ROWS",
        40 => "TRANSACTION_PAYLOAD",
        42 => "GTID_TAGGED",
        100 => "AURORA_PADDING(vendor, ignorable)",
        160 => "MARIA_ANNOTATE_ROWS",
        161 => "MARIA_BINLOG_CHECKPOINT",
        162 => "MARIA_GTID",
        163 => "MARIA_GTID_LIST",
        _ => "OTHER",
    }
}

/// Files that must fail, with (offset, raw event type, kind check).
type ExpectedError = (u64, Option<u8>, fn(&DecodeErrorKind) -> bool);

fn expected_error(file: &str) -> Option<ExpectedError> {
    Some(match file {
        // 10 bytes after the magic: a truncated header.
        "rust_mysql_common/binlog_truncated_event.000001" => (4, Some(15), |k| {
            matches!(
                k,
                DecodeErrorKind::Truncated {
                    needed: 19,
                    available: 10
                }
            )
        }),
        // Ends 9 bytes into the PREVIOUS_GTIDS header.
        "rust_mysql_common/binlog_truncated_prev_gtid_event.000001" => (120, Some(35), |k| {
            matches!(
                k,
                DecodeErrorKind::Truncated {
                    needed: 19,
                    available: 9
                }
            )
        }),
        // The 171-byte QUERY event's body was overwritten by a fragment of another statement.
        "rust_mysql_common/corrupt-relay-bin.000624" => (91204, Some(2), |k| {
            matches!(
                k,
                DecodeErrorKind::ShortBody { .. } | DecodeErrorKind::Malformed { .. }
            )
        }),
        // A MySQL 5.1 preview build ("5.2.2-a_drop6p13"): after the type permutation the events
        // frame and parse, but its rows use the pre-GA row image format, which is refused.
        "rust_mysql_common/ver_5_1-wl2325_r.001" => (466, Some(20), |k| {
            matches!(k, DecodeErrorKind::UnsupportedFormat { .. })
        }),
        _ => return None,
    })
}

#[test]
fn every_corpus_file_decodes_with_census_counts() {
    let Some(dir) = corpus_dir() else { return };
    let mut files = 0;
    let mut rows = 0;
    for entry in census(&dir) {
        let file = entry["file"].as_str().expect("file");
        let bytes = read_binlog(&dir.join(file));
        let result = decode_all(
            &bytes,
            DecoderConfig::default().with_magic(MagicMode::Require),
        );
        files += 1;
        rows += result.rows;
        if let Some((offset, ty, kind_ok)) = expected_error(file) {
            let err = result
                .error
                .unwrap_or_else(|| panic!("{file}: expected an error"));
            assert_eq!(err.offset, offset, "{file}: {err}");
            assert_eq!(err.event_type, ty, "{file}: {err}");
            assert!(kind_ok(&err.kind), "{file}: unexpected kind {err}");
            continue;
        }
        if let Some(err) = result.error {
            panic!("{file}: {err}");
        }
        let mut top: BTreeMap<&str, u64> = BTreeMap::new();
        let mut inner: BTreeMap<&str, u64> = BTreeMap::new();
        for ev in &result.events {
            let m = if ev.in_payload { &mut inner } else { &mut top };
            *m.entry(census_name(ev.raw_type)).or_default() += 1;
        }
        let want = |key: &str| -> BTreeMap<&str, u64> {
            entry[key]
                .as_object()
                .expect("counts")
                .iter()
                .map(|(k, v)| (census_name_static(k), v.as_u64().expect("count")))
                .collect()
        };
        assert_eq!(top, want("event_counts"), "{file}: top-level event counts");
        assert_eq!(
            inner,
            want("inner_payload_event_counts"),
            "{file}: payload event counts"
        );
    }
    assert_eq!(files, 93, "corpus file count");
    eprintln!("decoded {files} corpus files, {rows} rows");
}

/// Map a census name back to the &'static str used by `census_name`.
fn census_name_static(name: &str) -> &'static str {
    (0..=255u8)
        .map(census_name)
        .find(|n| *n == name)
        .unwrap_or("UNKNOWN-IN-CENSUS")
}

/// Top-level events (offset, raw bytes) and the final error, feeding `chunk` bytes at a time.
fn decode_chunked(bytes: &[u8], chunk: usize) -> (Vec<(u64, Vec<u8>)>, Option<String>) {
    let mut dec = BinlogDecoder::new(DecoderConfig::default());
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0usize;
    loop {
        loop {
            match dec.decode(&buf) {
                Ok(Some((ev, used))) => {
                    out.push((ev.offset, ev.raw.to_vec()));
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(e) => return (out, Some(e.to_string())),
            }
        }
        if fed == bytes.len() {
            return (out, dec.finish(&buf).err().map(|e| e.to_string()));
        }
        let n = chunk.min(bytes.len() - fed);
        buf.extend_from_slice(&bytes[fed..fed + n]);
        fed += n;
    }
}

#[test]
fn decoding_does_not_depend_on_input_split() {
    let Some(dir) = corpus_dir() else { return };
    for entry in census(&dir) {
        let file = entry["file"].as_str().expect("file");
        let bytes = read_binlog(&dir.join(file));
        let whole = decode_chunked(&bytes, usize::MAX);
        // Byte-by-byte on small files; larger chunks on all.
        let chunks: &[usize] = if bytes.len() <= 200_000 {
            &[1, 7, 4096]
        } else {
            &[13, 65_536]
        };
        for &chunk in chunks {
            assert_eq!(
                decode_chunked(&bytes, chunk),
                whole,
                "{file}: chunk size {chunk}"
            );
        }
    }
}

#[test]
fn checksum_mismatch_is_a_typed_error_with_offset() {
    let Some(dir) = corpus_dir() else { return };
    let mut bytes = read_binlog(&dir.join("mysql-binlog-connector-java/mysql-bin.checksum-crc32"));
    // Flip one byte of the stored CRC of the fifth event.
    let clean = decode_all(&bytes, DecoderConfig::default());
    let second = &clean.events[4];
    let at = second.offset as usize + second.raw.len() - 2;
    bytes[at] ^= 0x55;
    let r = decode_all(&bytes, DecoderConfig::default());
    let err = r.error.expect("checksum error");
    assert!(
        matches!(err.kind, DecodeErrorKind::ChecksumMismatch { .. }),
        "{err}"
    );
    assert_eq!(err.offset, second.offset);
    // With verification off everything decodes.
    let r = decode_all(&bytes, DecoderConfig::default().with_verify_checksum(false));
    assert!(r.error.is_none());
    assert_eq!(r.events.len(), clean.events.len());
}

fn table_maps(bytes: &[u8]) -> Vec<TableMap<'static>> {
    let mut dec = BinlogDecoder::default();
    let mut pos = 0;
    let mut out = Vec::new();
    while let Some((ev, used)) = dec.decode(&bytes[pos..]).expect("decode") {
        pos += used;
        if let EventData::TableMap(t) = ev.data {
            out.push(t.into_owned());
        }
    }
    out
}

fn find<'a>(r: &'a common::FileDecode, needle: &str) -> Vec<&'a str> {
    r.events
        .iter()
        .map(|e| e.text.as_str())
        .filter(|t| t.contains(needle))
        .collect()
}

#[test]
fn manifest_values_rust_mysql_common() {
    let Some(dir) = corpus_dir() else { return };
    let rmc = dir.join("rust_mysql_common");

    // vector.binlog: dimensionality metadata and float32 values.
    let bytes = read_binlog(&rmc.join("vector.binlog"));
    let maps = table_maps(&bytes);
    let foo = maps.iter().find(|t| t.table == "foo").expect("foo");
    let dims: Vec<Option<u32>> = foo.columns.iter().map(|c| c.vector_dimension).collect();
    assert_eq!(dims, [None, Some(3)]);
    let bar = maps.iter().find(|t| t.table == "bar").expect("bar");
    let dims: Vec<u32> = bar
        .columns
        .iter()
        .filter_map(|c| c.vector_dimension)
        .collect();
    assert_eq!(dims, [2, 4]);
    let r = decode_all(&bytes, DecoderConfig::default());
    assert!(r.error.is_none());
    assert!(
        !find(
            &r,
            "Write dtb.foo [1, [1.1, 2.2, 3.3]] [2, [1.0, -1.0, 0.0]]"
        )
        .is_empty()
    );

    // json-opaque.binlog (9.0.1): opaque, temporal and decimal JSON scalars as SELECT shows them.
    let r = decode_all(
        &read_binlog(&rmc.join("json-opaque.binlog")),
        DecoderConfig::default(),
    );
    assert!(r.error.is_none());
    let rows: Vec<&str> = find(&r, "Write foo.test");
    assert_eq!(
        rows,
        [
            r#"Write foo.test [{"a": "base64:type15:VQ=="}]"#,
            r#"Write foo.test [{"b": "2012-03-18"}]"#,
            r#"Write foo.test [{"c": "2012-03-18 11:30:45.000000"}]"#,
            r#"Write foo.test [{"c": "87:31:46.654321"}]"#,
            r#"Write foo.test [{"d": 123.456}]"#,
            r#"Write foo.test [{"e": 9.00}]"#,
            r#"Write foo.test [{"e": [0, 1, true, false]}]"#,
            r#"Write foo.test [{"e": null}]"#,
        ]
    );

    // json.binlog.000001 (8.0.22, PARTIAL_JSON with a MINIMAL before image): the diff cannot be
    // applied without the before value, so it is surfaced unapplied, never invented.
    let r = decode_all(
        &read_binlog(&rmc.join("json.binlog.000001")),
        DecoderConfig::default(),
    );
    assert!(r.error.is_none());
    let partial = find(&r, "PartialUpdate mysql.t");
    assert_eq!(partial.len(), 1);
    assert!(
        partial[0].starts_with(
            "PartialUpdate mysql.t [1, -, -, -] [-, JSON_DIFF(Replace $.age 26), 'Joe', 26]"
        ),
        "{}",
        partial[0]
    );

    // mysql_type_bit.000001: BIT b'100', 'foo', BIT b'100000'.
    let r = decode_all(
        &read_binlog(&rmc.join("mysql_type_bit.000001")),
        DecoderConfig::default(),
    );
    assert_eq!(find(&r, "Write ").len(), 1);
    assert!(
        find(&r, "Write ")[0].ends_with("[b'100', 'foo', b'100000']"),
        "{:?}",
        find(&r, "Write ")
    );

    // time_issue.000001: a negative TIME of -507:48:27.
    let r = decode_all(
        &read_binlog(&rmc.join("time_issue.000001")),
        DecoderConfig::default(),
    );
    assert!(
        !find(&r, "'-507:48:27'").is_empty(),
        "{:?}",
        find(&r, "Write")
    );

    // minimal_row_metadata.000001 (0-based column numbers): column 2 utf8mb4_0900_ai_ci (255),
    // column 4 the unsigned INT 3230202323.
    let bytes = read_binlog(&rmc.join("minimal_row_metadata.000001"));
    let maps = table_maps(&bytes);
    assert_eq!(maps[0].columns[2].collation, Some(255));
    assert_eq!(maps[0].columns[4].unsigned, Some(true));
    let r = decode_all(&bytes, DecoderConfig::default());
    assert!(!find(&r, "3230202323").is_empty());

    // transaction_compression.000001: QUERY, TABLE_MAP, WRITE_ROWS v2, XID inside the payload.
    let r = decode_all(
        &read_binlog(&rmc.join("transaction_compression.000001")),
        DecoderConfig::default(),
    );
    let inner: Vec<u8> = r
        .events
        .iter()
        .filter(|e| e.in_payload)
        .map(|e| e.type_code)
        .collect();
    assert_eq!(inner, [2, 19, 30, 16]);

    // mariadb-bin.000001: FULL metadata.
    let bytes = read_binlog(&rmc.join("mariadb-bin.000001"));
    let maps = table_maps(&bytes);
    let outbox = maps.iter().find(|t| t.table == "outbox").expect("outbox");
    assert_eq!(outbox.database, "toddy_test");
    let names: Vec<&str> = outbox
        .columns
        .iter()
        .filter_map(|c| c.name.as_deref())
        .collect();
    assert_eq!(names, ["id", "topic", "event_type", "event", "created"]);
    assert_eq!(outbox.columns[0].primary_key_prefix, Some(0));
    assert!(
        outbox.columns[1..]
            .iter()
            .all(|c| c.primary_key_prefix.is_none())
    );
    assert!(outbox.columns.iter().any(|c| c.collation.is_some()));
    let r = decode_all(&bytes, DecoderConfig::default());
    // The checkpoint file name carries no trailing bytes.
    let cp = find(&r, "MariaBinlogCheckpoint(");
    assert_eq!(cp, ["MariaBinlogCheckpoint(\"mariadb-bin.000001\")"]);
    assert_eq!(r.rows, 2);
    assert!(!find(&r, "Write toddy_test.outbox [62, 'foo', 'JSON', x'7b22666f6f223a317d', '2022-04-20 22:18:04'").is_empty());

    // GTID tags (9.6.0).
    let bytes = read_binlog(&rmc.join("binlog_transaction_with_GTID_TAG.000001"));
    let mut dec = BinlogDecoder::default();
    let mut pos = 0;
    let (mut prev, mut gtid) = (None, None);
    while let Some((ev, used)) = dec.decode(&bytes[pos..]).expect("decode") {
        pos += used;
        match ev.data {
            EventData::PreviousGtids(s) => prev = Some(s),
            EventData::Gtid(g) => gtid = Some(g),
            _ => {}
        }
    }
    let prev = prev.expect("previous gtids");
    assert_eq!(
        prev.to_string(),
        "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-2"
    );
    let gtid = gtid.expect("gtid");
    assert_eq!(gtid.tag, "mytag");
    assert_eq!(gtid.gno, 3);
    assert_eq!(
        gtid.to_string(),
        "55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3"
    );
    assert_eq!(gtid.immediate_server_version, Some(90600));

    let bytes = read_binlog(&rmc.join("binlog_transaction_previous_GTID_no_tag.000001"));
    let r = decode_all(&bytes, DecoderConfig::default());
    assert!(!find(&r, "PreviousGtids").is_empty());
    let mut dec = BinlogDecoder::default();
    let mut pos = 0;
    while let Some((ev, used)) = dec.decode(&bytes[pos..]).expect("decode") {
        pos += used;
        if let EventData::PreviousGtids(s) = ev.data {
            assert_eq!(s.to_string(), "b9b88c66-0755-11f1-9899-4a9da94c4d71:1-2");
        }
    }

    // binlog_transaction.000001 (5.0.86): 20 events, the last a ROTATE ending at 1670.
    let r = decode_all(
        &read_binlog(&rmc.join("binlog_transaction.000001")),
        DecoderConfig::default(),
    );
    assert_eq!(r.events.len(), 20);
    let last = r.events.last().expect("last");
    assert_eq!(last.type_code, 4);
    assert_eq!(last.offset + last.raw.len() as u64, 1670);
}

#[test]
fn manifest_values_other_sources() {
    let Some(dir) = corpus_dir() else { return };

    // mariadb-poc GTID_LIST and GTIDs.
    for (file, list, first, last) in [
        (
            "domain_id_0__mariadb-repl-bin.000004",
            "[0-10-262175]",
            "0-10-262176",
            "0-10-262580",
        ),
        (
            "domain_id_0__mariadb-repl-bin.000005",
            "[0-10-262580]",
            "0-10-262581",
            "0-10-262667",
        ),
    ] {
        let bytes = read_binlog(&dir.join("mariadb-poc").join(file));
        let mut dec = BinlogDecoder::default();
        let mut pos = 0;
        let mut gtids = Vec::new();
        let mut lists = Vec::new();
        while let Some((ev, used)) = dec.decode(&bytes[pos..]).expect("decode") {
            pos += used;
            match ev.data {
                EventData::MariaGtid(g) => gtids.push(g.gtid.to_string()),
                EventData::MariaGtidList(l) => lists.push(format!(
                    "[{}]",
                    l.iter()
                        .map(|g| g.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                )),
                _ => {}
            }
        }
        assert_eq!(lists, [list], "{file}");
        assert_eq!(gtids.first().map(String::as_str), Some(first), "{file}");
        assert_eq!(gtids.last().map(String::as_str), Some(last), "{file}");
    }

    // ybinlogp: the last three events are QUERY (db foobar), XID, ROTATE to mysql-bin.000008 @4.
    let bytes = read_binlog(&dir.join("ybinlogp/mysql-bin.default-path"));
    let mut dec = BinlogDecoder::default();
    let mut pos = 0;
    let mut evs = Vec::new();
    while let Some((ev, used)) = dec.decode(&bytes[pos..]).expect("decode") {
        pos += used;
        evs.push(match ev.data {
            EventData::Query(q) => format!("Q {}", q.schema_str()),
            EventData::Xid(_) => "X".into(),
            EventData::Rotate(r) => format!("R {} {}", r.next_file, r.position),
            _ => "-".into(),
        });
    }
    assert_eq!(evs.len(), 39);
    assert_eq!(&evs[36..], ["Q foobar", "X", "R mysql-bin.000008 4"]);

    // Aurora padding (type 100, ignorable): skipped between 281 and 1209, then a QUERY.
    let bytes = read_binlog(&dir.join("mysql-binlog-connector-java/mysql-bin.aurora-padding"));
    let r = decode_all(&bytes, DecoderConfig::default());
    let offs: Vec<(u64, u8)> = r.events.iter().map(|e| (e.offset, e.raw_type)).collect();
    assert_eq!(offs, [(4, 15), (185, 35), (216, 34), (281, 100), (1209, 2)]);

    // Event counts asserted by mysql-binlog-connector-java and -rust.
    for (file, count) in [
        ("mysql-binlog-connector-java/mysql-bin.sakila.gz", 1462),
        ("mysql-binlog-connector-java/mysql-bin.checksum-none", 191),
        ("mysql-binlog-connector-java/mysql-bin.checksum-crc32", 303),
        ("mysql-binlog-connector-rust/mysql-bin.000057", 8),
        ("mysql-binlog-connector-rust/mysql-bin.000080", 37),
    ] {
        let r = decode_all(&read_binlog(&dir.join(file)), DecoderConfig::default());
        assert!(r.error.is_none(), "{file}");
        assert_eq!(
            r.events.iter().filter(|e| !e.in_payload).count(),
            count,
            "{file}"
        );
    }
}

#[test]
fn enum_set_values_mysql_8_0_28() {
    let Some(dir) = corpus_dir() else { return };
    let bytes = read_binlog(&dir.join("rust_mysql_common/mysql-enum-string-set.000001"));
    let mut dec = BinlogDecoder::default();
    let mut pos = 0;
    let mut tables = std::collections::HashMap::new();
    let mut images = Vec::new();
    while let Some((ev, used)) = dec.decode(&bytes[pos..]).expect("decode") {
        pos += used;
        match &ev.data {
            EventData::TableMap(t) => {
                tables.insert(t.table_id, t.clone().into_owned());
            }
            EventData::Rows(r) => {
                let t = &tables[&r.table_id];
                for ch in r.rows(t) {
                    let ch = ch.expect("row");
                    for img in [ch.before, ch.after].into_iter().flatten() {
                        let kinds: Vec<&'static str> = img
                            .values
                            .iter()
                            .map(|v| match v {
                                Some(Value::String { .. }) => "str",
                                Some(Value::Enum(_)) => "enum",
                                Some(Value::Set(_)) => "set",
                                _ => "other",
                            })
                            .collect();
                        images.push(kinds);
                    }
                }
            }
            _ => {}
        }
    }
    assert!(!images.is_empty());
    for kinds in &images {
        assert_eq!(kinds, &["str", "str", "enum", "set", "str"]);
    }
}
