//! Events the corpus has no sample of (heartbeats, XA_PREPARE, stored and large transaction
//! payloads, encryption, unknown types), built byte by byte from the format description and
//! decoded. The FDE's post-header lengths are those of a real MySQL 9.6.0 server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mysql_binlog_codec::{
    BINLOG_MAGIC, BinlogDecoder, DecodeErrorKind, DecoderConfig, ENCRYPTED_BINLOG_MAGIC, EventData,
    FLAG_IGNORABLE, MagicMode, PayloadCompression,
};

/// Post-header lengths written by MySQL 9.6.0 (types 1..=42).
const POST_HEADERS: [u8; 42] = [
    0, 13, 0, 8, 0, 0, 0, 0, 4, 0, 4, 0, 0, 0, 99, 0, 4, 26, 8, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 10,
    10, 10, 42, 42, 0, 18, 52, 0, 10, 40, 0, 0,
];

/// An event with header and (when `crc`) a trailing CRC32.
fn event(type_code: u8, flags: u16, log_pos: u32, body: &[u8], crc: bool) -> Vec<u8> {
    let size = 19 + body.len() + if crc { 4 } else { 0 };
    let mut e = Vec::with_capacity(size);
    e.extend_from_slice(&1_700_000_000u32.to_le_bytes());
    e.push(type_code);
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(size as u32).to_le_bytes());
    e.extend_from_slice(&log_pos.to_le_bytes());
    e.extend_from_slice(&flags.to_le_bytes());
    e.extend_from_slice(body);
    if crc {
        let c = crc32fast::hash(&e);
        e.extend_from_slice(&c.to_le_bytes());
    }
    e
}

fn fde() -> Vec<u8> {
    let mut body = vec![4, 0];
    let mut v = [0u8; 50];
    v[..5].copy_from_slice(b"8.4.3");
    body.extend_from_slice(&v);
    body.extend_from_slice(&0u32.to_le_bytes());
    body.push(19);
    body.extend_from_slice(&POST_HEADERS);
    body.push(1); // CRC32
    event(15, 0, 0, &body, true)
}

fn file(events: &[Vec<u8>]) -> Vec<u8> {
    let mut f = BINLOG_MAGIC.to_vec();
    f.extend_from_slice(&fde());
    for e in events {
        f.extend_from_slice(e);
    }
    f
}

fn query_body(q: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&7u32.to_le_bytes()); // thread id
    b.extend_from_slice(&0u32.to_le_bytes()); // exec time
    b.push(2); // db length
    b.extend_from_slice(&0u16.to_le_bytes()); // error code
    b.extend_from_slice(&0u16.to_le_bytes()); // status vars length
    b.extend_from_slice(b"db\0");
    b.extend_from_slice(q.as_bytes());
    b
}

fn decode_all(bytes: &[u8]) -> (Vec<EventData<'_>>, Option<mysql_binlog_codec::DecodeError>) {
    let mut dec = BinlogDecoder::new(DecoderConfig::default().with_magic(MagicMode::Require));
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        match dec.decode(&bytes[pos..]) {
            Ok(Some((ev, used))) => {
                pos += used;
                out.push(ev.data);
            }
            Ok(None) => return (out, dec.finish(&bytes[pos..]).err()),
            Err(e) => return (out, Some(e)),
        }
    }
}

#[test]
fn heartbeat_v2_and_v1() {
    let mut body = vec![1, 13];
    body.extend_from_slice(b"binlog.000042");
    body.extend_from_slice(&[2, 3, 0xfc, 0x10, 0x27]); // position 10000 as a packed integer
    let bytes = file(&[
        event(41, 0, 0, &body, true),
        event(27, 0, 555, b"binlog.000042", true),
    ]);
    let (evs, err) = decode_all(&bytes);
    assert!(err.is_none(), "{err:?}");
    match &evs[1] {
        EventData::Heartbeat(h) => {
            assert_eq!(h.log_file, "binlog.000042");
            assert_eq!(h.log_position, Some(10_000));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&evs[2], EventData::Heartbeat(h) if h.log_file == "binlog.000042" && h.log_position.is_none())
    );
}

#[test]
fn xa_prepare() {
    let mut body = vec![0];
    body.extend_from_slice(&1i32.to_le_bytes());
    body.extend_from_slice(&3u32.to_le_bytes());
    body.extend_from_slice(&2u32.to_le_bytes());
    body.extend_from_slice(b"abcxy");
    let bytes = file(&[event(38, 0, 0, &body, true)]);
    let (evs, err) = decode_all(&bytes);
    assert!(err.is_none());
    match &evs[1] {
        EventData::XaPrepare(x) => {
            assert!(!x.one_phase);
            assert_eq!(
                (x.format_id, x.gtrid, x.bqual),
                (1, &b"abc"[..], &b"xy"[..])
            );
        }
        other => panic!("{other:?}"),
    }
}

fn payload_event(inner: &[u8], compression: u8) -> Vec<u8> {
    let data = if compression == 0 {
        zstd::bulk::compress(inner, 3).expect("zstd")
    } else {
        inner.to_vec()
    };
    payload_event_raw(&data, compression, inner.len())
}

fn payload_event_raw(data: &[u8], compression: u8, inner_len: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let packed = |v: u64| -> Vec<u8> {
        if v < 251 {
            vec![v as u8]
        } else if v < 1 << 16 {
            vec![252, v as u8, (v >> 8) as u8]
        } else if v < 1 << 24 {
            vec![253, v as u8, (v >> 8) as u8, (v >> 16) as u8]
        } else {
            let mut b = vec![254];
            b.extend_from_slice(&v.to_le_bytes());
            b
        }
    };
    for (field, value) in [
        (2u64, u64::from(compression)),
        (1, data.len() as u64),
        (3, inner_len as u64),
    ] {
        let v = packed(value);
        body.push(field as u8);
        body.extend_from_slice(&packed(v.len() as u64));
        body.extend_from_slice(&v);
    }
    body.push(0);
    body.extend_from_slice(data);
    event(40, 0, 0, &body, true)
}

#[test]
fn stored_transaction_payload_yields_inner_events() {
    let mut inner = event(2, 0, 0, &query_body("BEGIN"), false);
    inner.extend_from_slice(&event(16, 0, 0, &42u64.to_le_bytes(), false));
    let bytes = file(&[payload_event(&inner, 255)]);
    let mut dec = BinlogDecoder::default();
    let mut pos = 0;
    let mut seen = Vec::new();
    while let Some((ev, used)) = dec.decode(&bytes[pos..]).expect("decode") {
        pos += used;
        if let EventData::TransactionPayload(p) = &ev.data {
            assert_eq!(p.compression, PayloadCompression::None);
            let fde = dec.format_description().expect("fde").clone();
            let mut it = p.events(&fde, ev.offset);
            while let Some(iev) = it.next_event().expect("inner") {
                seen.push(format!("{:?}", iev.data));
            }
        }
    }
    assert_eq!(seen.len(), 2);
    assert!(seen[0].starts_with("Query("), "{}", seen[0]);
    assert!(seen[0].contains(&format!("{:?}", b"BEGIN")), "{}", seen[0]);
    assert_eq!(seen[1], "Xid(42)");
}

#[test]
fn large_compressed_payload_streams_in_a_small_window() {
    // 64 MiB of 8 KiB QUERY events inside one zstd payload.
    let one = event(2, 0, 0, &query_body(&"x".repeat(8 * 1024 - 40)), false);
    let count = (64 << 20) / one.len();
    let mut inner = Vec::with_capacity(count * one.len());
    for _ in 0..count {
        inner.extend_from_slice(&one);
    }
    let bytes = file(&[payload_event(&inner, 0)]);
    drop(inner);
    let mut dec = BinlogDecoder::default();
    let mut pos = 0;
    let mut n = 0;
    let mut max_window = 0;
    while let Some((ev, used)) = dec.decode(&bytes[pos..]).expect("decode") {
        pos += used;
        if let EventData::TransactionPayload(p) = &ev.data {
            let fde = dec.format_description().expect("fde").clone();
            let mut it = p.events(&fde, ev.offset);
            while let Some(iev) = it.next_event().expect("inner") {
                assert!(matches!(iev.data, EventData::Query(_)));
                n += 1;
                max_window = max_window.max(it.window_capacity());
            }
        }
    }
    assert_eq!(n, count);
    assert!(max_window <= 256 * 1024, "window grew to {max_window}");
}

#[test]
fn corrupt_payload_is_an_error() {
    let inner = event(16, 0, 0, &42u64.to_le_bytes(), false);
    let mut data = zstd::bulk::compress(&inner, 3).expect("zstd");
    data[0] ^= 0xff; // break the zstd frame magic
    let bytes = file(&[payload_event_raw(&data, 0, inner.len())]);
    let mut dec = BinlogDecoder::default();
    let mut pos = 0;
    let mut failed = false;
    while let Some((ev, used)) = dec.decode(&bytes[pos..]).expect("decode") {
        pos += used;
        if let EventData::TransactionPayload(p) = &ev.data {
            let fde = dec.format_description().expect("fde").clone();
            let mut it = p.events(&fde, ev.offset);
            loop {
                match it.next_event() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(e.offset, ev.offset);
                        failed = true;
                        break;
                    }
                }
            }
        }
    }
    assert!(failed);
}

#[test]
fn unknown_events_fail_unless_ignorable() {
    let bytes = file(&[event(99, FLAG_IGNORABLE, 0, b"vendor", true)]);
    let (evs, err) = decode_all(&bytes);
    assert!(err.is_none());
    assert!(matches!(evs[1], EventData::Ignorable(b"vendor")));
    let bytes = file(&[event(99, 0, 0, b"vendor", true)]);
    let (_, err) = decode_all(&bytes);
    let err = err.expect("error");
    assert_eq!(err.kind, DecodeErrorKind::UnknownEventType);
    assert_eq!(err.event_type, Some(99));
    assert_eq!(err.offset, 4 + fde().len() as u64);
}

#[test]
fn incident_is_decoded() {
    let mut body = 1u16.to_le_bytes().to_vec();
    body.push(11);
    body.extend_from_slice(b"LOST_EVENTS");
    let bytes = file(&[event(26, 0, 0, &body, true)]);
    let (evs, _) = decode_all(&bytes);
    assert!(matches!(&evs[1], EventData::Incident(i) if i.kind == 1 && i.message == "LOST_EVENTS"));
}

#[test]
fn encryption_is_refused_with_a_typed_error() {
    let mut body = vec![1];
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&[7; 12]);
    let bytes = file(&[
        event(164, 0, 0, &body, true),
        event(2, 0, 0, &[0x55; 40], true),
    ]);
    let (evs, err) = decode_all(&bytes);
    assert!(matches!(evs[1], EventData::MariaStartEncryption(s) if s.key_version == 1));
    assert_eq!(err.expect("error").kind, DecodeErrorKind::Encrypted);

    let mut enc = ENCRYPTED_BINLOG_MAGIC.to_vec();
    enc.extend_from_slice(&[0; 100]);
    assert_eq!(
        decode_all(&enc).1.expect("error").kind,
        DecodeErrorKind::Encrypted
    );
    let (_, err) = decode_all(b"GIF89a....");
    assert!(matches!(
        err.expect("error").kind,
        DecodeErrorKind::BadMagic { .. }
    ));
}

#[test]
fn sizes_are_bounded() {
    let mut bytes = file(&[]);
    let mut bad = event(2, 0, 0, &query_body("BEGIN"), true);
    bad[9..13].copy_from_slice(&5u32.to_le_bytes());
    bytes.extend_from_slice(&bad);
    let (_, err) = decode_all(&bytes);
    assert!(matches!(
        err.expect("error").kind,
        DecodeErrorKind::InvalidEventSize { size: 5 }
    ));

    let bytes = file(&[event(2, 0, 0, &query_body(&"y".repeat(5000)), true)]);
    let mut dec = BinlogDecoder::new(DecoderConfig::default().with_max_event_size(4096));
    let mut pos = 0;
    let err = loop {
        match dec.decode(&bytes[pos..]) {
            Ok(Some((_, used))) => pos += used,
            Ok(None) => panic!("expected an error"),
            Err(e) => break e,
        }
    };
    assert!(matches!(
        err.kind,
        DecodeErrorKind::EventTooLarge { max: 4096, .. }
    ));
}

/// Regression (fuzz): the magic check must not depend on how the first bytes arrive.
#[test]
fn magic_errors_do_not_depend_on_the_split() {
    for input in [
        &b"22\0\0rest of it"[..],
        &b"\xfdbi"[..],
        &b"\xfebi"[..],
        &b"\xfdbin...."[..],
        &b"x"[..],
    ] {
        for mode in [MagicMode::Require, MagicMode::Auto] {
            let run = |chunk: usize| {
                let mut dec = BinlogDecoder::new(DecoderConfig::default().with_magic(mode));
                let mut buf = Vec::new();
                for piece in input.chunks(chunk) {
                    buf.extend_from_slice(piece);
                    match dec.decode(&buf) {
                        Ok(None) => {}
                        Ok(Some(_)) => unreachable!("no event in these inputs"),
                        Err(e) => return Err(e),
                    }
                }
                dec.finish(&buf)
            };
            let whole = run(input.len());
            for chunk in 1..input.len() {
                assert_eq!(run(chunk), whole, "{input:?} {mode:?} chunk {chunk}");
            }
            assert!(whole.is_err(), "{input:?} {mode:?}");
        }
    }
}
