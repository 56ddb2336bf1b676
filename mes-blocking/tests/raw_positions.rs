//! The raw mode (`mes_blocking::session::Raw`, shared by both drivers' `RawBinlogStream`)
//! without a server, on the events of a real MariaDB 10.11 binlog file (the codec's fixture
//! `types.000002`): where each event sits, the resume point after it (a GTID start until the
//! first GTID event, then file and offset; made-up events do not move it), and typed errors for
//! bytes that cannot be an event. (Its own binary: the library's log-capturing unit test must
//! not share `tracing` callsites with other tests running at the same time.)
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use mes_blocking::session::{Mode, Out, Raw, start_position};
use mes_blocking::{RawEvent, ServerInfo, StreamConfig, StreamError};
use mysql_binlog_codec::engine::EngineError;
use mysql_binlog_codec::{DecodeErrorKind, EventHeader, EventType};
use mysql_repl_proto::{ConnectConfig, Flavor, StartPosition};

/// A MariaDB 10.11 binlog file of the codec's fixtures (CRC32, GTIDs, ANNOTATE_ROWS,
/// compressed events, a closing ROTATE), split into events.
fn fixture() -> (String, Vec<Bytes>) {
    let name = "types.000002";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mysql-binlog-codec/tests/fixtures/mariadb")
        .join(name);
    let bytes = Bytes::from(std::fs::read(&path).unwrap());
    let mut events = Vec::new();
    let mut at = 4;
    while at < bytes.len() {
        let size = EventHeader::parse(&bytes[at..]).unwrap().event_size as usize;
        events.push(bytes.slice(at..at + size));
        at += size;
    }
    (name.to_owned(), events)
}

/// `event` with its CRC32 trailer recomputed.
fn with_crc(mut event: Vec<u8>) -> Bytes {
    let n = event.len() - 4;
    let crc = crc32fast::hash(&event[..n]);
    event[n..].copy_from_slice(&crc.to_le_bytes());
    Bytes::from(event)
}

/// The artificial ROTATE a dump starts with.
fn fake_rotate(file: &str, position: u64) -> Bytes {
    let size = 19 + 8 + file.len() + 4;
    let mut e = Vec::with_capacity(size);
    e.extend_from_slice(&0u32.to_le_bytes()); // timestamp
    e.push(4); // ROTATE
    e.extend_from_slice(&1u32.to_le_bytes()); // server id
    e.extend_from_slice(&(size as u32).to_le_bytes());
    e.extend_from_slice(&0u32.to_le_bytes()); // log_pos
    e.extend_from_slice(&mysql_binlog_codec::FLAG_ARTIFICIAL.to_le_bytes());
    e.extend_from_slice(&position.to_le_bytes());
    e.extend_from_slice(file.as_bytes());
    e.extend_from_slice(&[0; 4]);
    with_crc(e)
}

fn server_info() -> ServerInfo {
    ServerInfo {
        server_version: "10.11.19-MariaDB".into(),
        flavor: Flavor::MariaDb,
        connection_id: 1,
        checksum: true,
        tls: false,
        tls_verified: false,
        auth_plugin: "mysql_native_password".into(),
        variables: Default::default(),
        start_file: None,
    }
}

fn feed(raw: &mut Raw, event: Bytes) -> RawEvent {
    let mut event = event;
    let mut out = Vec::new();
    raw.feed(&mut event, &mut out).unwrap();
    assert!(event.is_empty());
    match out.pop() {
        Some(Out::Item(ev)) if out.is_empty() => ev,
        other => panic!("{other:?}"),
    }
}

/// A GTID start resumes by that start until the first GTID event, then by file and offset
/// right after each event; events the server makes up do not move the position; every
/// event of the file sits where the file has it.
#[test]
fn raw_positions_and_resume_points() {
    let (file, events) = fixture();
    let start = StartPosition::MariaGtid("0-1-164".into());
    let config = StreamConfig::new(
        "127.0.0.1",
        3306,
        ConnectConfig {
            start: start.clone(),
            ..ConnectConfig::default()
        },
    );
    let mut raw = Raw::default();
    raw.ready(&config, &server_info(), &start);
    assert_eq!(raw.resume(), None);

    let rotate = feed(&mut raw, fake_rotate(&file, 4));
    assert_eq!((&*rotate.file, rotate.offset), (file.as_str(), 4));
    assert_eq!(rotate.event_type(), EventType::Rotate);
    assert_eq!(
        start_position(raw.resume(), &start),
        start,
        "still the GTID start"
    );

    let mut expected = 4u64;
    let (mut gtid_seen, mut rotated) = (false, false);
    for data in &events {
        let ev = feed(&mut raw, data.clone());
        assert_eq!(&ev.data, data);
        assert!(ev.checksum);
        assert_eq!(ev.body(), &data[19..data.len() - 4]);
        if ev.event_type() == EventType::Rotate {
            assert_eq!((&*ev.file, ev.offset), (file.as_str(), expected));
            assert_eq!((&*ev.resume.file, ev.resume.offset), ("types.000003", 4));
            assert_eq!(
                start_position(raw.resume(), &start),
                StartPosition::FilePosition {
                    file: "types.000003".into(),
                    position: 4
                }
            );
            assert!(std::ptr::eq(data, events.last().unwrap()), "ROTATE is last");
            rotated = true;
            continue;
        }
        assert_eq!((&*ev.file, ev.offset), (file.as_str(), expected), "{ev:?}");
        expected += data.len() as u64;
        assert_eq!(
            (&*ev.resume.file, ev.resume.offset),
            (file.as_str(), expected)
        );
        gtid_seen |= ev.event_type() == EventType::MariaGtid;
        let want = if gtid_seen {
            StartPosition::FilePosition {
                file: file.clone(),
                position: expected,
            }
        } else {
            start.clone()
        };
        assert_eq!(start_position(raw.resume(), &start), want, "{ev:?}");

        if ev.event_type() == EventType::TableMap && gtid_seen {
            // A reconnection here: the new dump's artificial ROTATE and the
            // FORMAT_DESCRIPTION it repeats (log_pos 0) do not move the position.
            let again = feed(&mut raw, fake_rotate(&file, expected));
            assert_eq!((&*again.file, again.offset), (file.as_str(), expected));
            let mut fde = events[0].to_vec();
            fde[13..17].copy_from_slice(&0u32.to_le_bytes());
            let fde = feed(&mut raw, with_crc(fde));
            assert_eq!((&*fde.file, fde.offset), (file.as_str(), expected));
            assert_eq!(fde.resume, ev.resume);
        }
    }
    assert!(gtid_seen && rotated);
}

#[test]
fn raw_events_that_cannot_be_events_are_typed_errors() {
    let mut raw = Raw::default();
    let config = StreamConfig::new("127.0.0.1", 3306, ConnectConfig::default());
    raw.ready(&config, &server_info(), &StartPosition::Current);
    let mut out = Vec::new();
    let mut short = Bytes::from_static(&[0u8; 10]);
    assert!(matches!(
        raw.feed(&mut short, &mut out),
        Err(StreamError::Engine(EngineError::Decode(e)))
            if matches!(e.kind, DecodeErrorKind::InvalidEventSize { size: 10 })
    ));
    let (_, events) = fixture();
    let mut cut = events[1].slice(..events[1].len() - 1);
    assert!(matches!(
        raw.feed(&mut cut, &mut out),
        Err(StreamError::Engine(EngineError::Decode(e)))
            if matches!(e.kind, DecodeErrorKind::Malformed { .. })
    ));
    // A ROTATE with a bad checksum is refused, not trusted for the position.
    let mut rotate = fake_rotate("x.000001", 4).to_vec();
    let n = rotate.len();
    rotate[n - 1] ^= 0xff;
    let mut rotate = Bytes::from(rotate);
    assert!(matches!(
        raw.feed(&mut rotate, &mut out),
        Err(StreamError::Engine(EngineError::Decode(e)))
            if matches!(e.kind, DecodeErrorKind::ChecksumMismatch { .. })
    ));
    assert!(out.is_empty());
}
