//! Binlog dump checks: the streamed events equal the corpus file's events (checked with
//! mysql-binlog-codec's decoder), artificial ROTATE / FDE handling, multi-file streams,
//! COM_BINLOG_DUMP_GTID with tagged GTID sets, heartbeats v1/v2, >16 MiB packets, faults.

mod common;

use common::*;
use mes_testkit::{
    AuthPlugin, Command, Fault, GtidSet, PrimaryConfig, TestPrimary, gtid::format_uuid,
};
use mysql_binlog_codec::{
    BinlogDecoder, ChecksumAlg, DecoderConfig, EventData, FLAG_ARTIFICIAL, MagicMode,
};
use std::path::Path;
use std::time::{Duration, Instant};

const NON_BLOCK: u16 = 1;
const HEARTBEAT_V2: u16 = 2;

const F57: &str = "mysql-binlog-connector-rust/mysql-bin.000057";
const P1: &str = "percona-binlog-server/data_80045_gtid__binlog.000001";
const P2: &str = "percona-binlog-server/data_80045_gtid__binlog.000002";
const TAGGED: &str = "rust_mysql_common/binlog_transaction_with_GTID_TAG.000001";

fn primary(cfg: PrimaryConfig) -> TestPrimary {
    TestPrimary::start(
        cfg.account(USER, PASSWORD, AuthPlugin::CachingSha2Password)
            .warm_cache(USER),
    )
    .expect("start primary")
}

/// Log in and declare checksum support, like a MySQL replica.
fn replica(p: &TestPrimary) -> Client {
    let (mut c, seen) = Client::login(
        p.addr(),
        &Login {
            user: USER,
            password: PASSWORD,
            deprecate_eof: true,
            ..Login::default()
        },
    );
    assert_eq!(seen, AuthSeen::Fast);
    assert_eq!(
        c.query("SET @master_binlog_checksum = @@global.binlog_checksum"),
        QueryResult::Ok
    );
    c
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    Eof,
    Err(u16, String),
    Disconnected,
    /// Stopped reading after the requested number of heartbeats.
    Heartbeats,
}

/// Read a dump response: the events (without the 0x00 prefix) and how it ended.
fn read_dump(c: &mut Client, stop_after_heartbeats: Option<usize>) -> (Vec<Vec<u8>>, End) {
    let mut events = Vec::new();
    let mut heartbeats = 0;
    loop {
        let p = match c.try_read_packet() {
            Ok(p) => p,
            Err(_) => return (events, End::Disconnected),
        };
        match p.first() {
            Some(0x00) => {
                let ev = p[1..].to_vec();
                if matches!(ev.get(4), Some(27 | 41)) {
                    heartbeats += 1;
                }
                events.push(ev);
                if Some(heartbeats) == stop_after_heartbeats {
                    return (events, End::Heartbeats);
                }
            }
            Some(0xFE) if p.len() < 9 => return (events, End::Eof),
            Some(0xFF) => {
                let code = u16::from_le_bytes([p[1], p[2]]);
                return (
                    events,
                    End::Err(code, String::from_utf8_lossy(&p[9..]).into_owned()),
                );
            }
            other => panic!("unexpected dump packet starting with {other:?}"),
        }
    }
}

/// One decoded event of a stream or file.
#[derive(Debug, Clone)]
struct Ev {
    type_code: u8,
    log_pos: u32,
    flags: u16,
    offset: u64,
    raw: Vec<u8>,
    rotate: Option<(u64, String)>,
    heartbeat: Option<(String, Option<u64>)>,
    rows_query_len: Option<usize>,
}

fn decode_all(bytes: &[u8], config: DecoderConfig) -> Vec<Ev> {
    let mut d = BinlogDecoder::new(config);
    let mut pos = 0;
    let mut out = Vec::new();
    while let Some((e, used)) = d.decode(&bytes[pos..]).expect("decodes") {
        pos += used;
        out.push(Ev {
            type_code: e.header.type_code,
            log_pos: e.header.log_pos,
            flags: e.header.flags,
            offset: e.offset,
            raw: e.raw.to_vec(),
            rotate: match &e.data {
                EventData::Rotate(r) => Some((r.position, r.next_file.to_string())),
                _ => None,
            },
            heartbeat: match &e.data {
                EventData::Heartbeat(h) => Some((h.log_file.to_string(), h.log_position)),
                _ => None,
            },
            rows_query_len: match &e.data {
                EventData::RowsQuery(q) => Some(q.len()),
                _ => None,
            },
        });
    }
    d.finish(&bytes[pos..]).expect("ends cleanly");
    out
}

/// Decode a replication stream (events as sent, checksummed since we declared CRC32).
fn decode_stream(events: &[Vec<u8>]) -> Vec<Ev> {
    let all: Vec<u8> = events.concat();
    decode_all(
        &all,
        DecoderConfig::default()
            .with_magic(MagicMode::None)
            .with_initial_checksum(ChecksumAlg::Crc32),
    )
}

fn decode_file(path: &Path) -> Vec<Ev> {
    let bytes = std::fs::read(path).expect("read corpus file");
    decode_all(
        &bytes,
        DecoderConfig::default().with_magic(MagicMode::Require),
    )
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned()
}

fn assert_artificial_rotate(ev: &Ev, file: &str, pos: u64) {
    assert_eq!(ev.type_code, 4, "ROTATE");
    assert_ne!(ev.flags & FLAG_ARTIFICIAL, 0, "LOG_EVENT_ARTIFICIAL_F");
    assert_eq!(ev.log_pos, 0);
    assert_eq!(ev.rotate, Some((pos, file.to_string())));
    assert_eq!(&ev.raw[..4], &[0, 0, 0, 0], "timestamp 0");
}

fn raws(evs: &[Ev]) -> Vec<Vec<u8>> {
    evs.iter().map(|e| e.raw.clone()).collect()
}

#[test]
fn dump_by_position_streams_the_files_events() {
    let Some(path) = corpus(F57) else { return };
    let name = name_of(&path);
    let p = primary(PrimaryConfig::new().binlog_file(&path));
    let mut c = replica(&p);

    let (_, rows) = c.query("SHOW BINARY LOG STATUS").rows();
    let size = std::fs::metadata(&path).expect("stat").len();
    assert_eq!(rows[0][0].as_deref(), Some(name.as_str()));
    assert_eq!(rows[0][1], Some(size.to_string()));
    assert_eq!(
        rows[0][4].as_deref(),
        Some(p.variables()["gtid_executed"].as_str())
    );
    let (_, rows) = c.query("SHOW BINARY LOGS").rows();
    assert_eq!(
        rows,
        vec![vec![
            Some(name.clone()),
            Some(size.to_string()),
            Some("No".into())
        ]]
    );

    c.command(&com_binlog_dump(4, NON_BLOCK, 99, &name));
    let (events, end) = read_dump(&mut c, None);
    assert_eq!(end, End::Eof);
    let streamed = decode_stream(&events);
    let file = decode_file(&path);
    assert_artificial_rotate(&streamed[0], &name, 4);
    assert_eq!(
        raws(&streamed[1..]),
        raws(&file),
        "streamed events equal the file's"
    );

    // The connection is back in the command phase.
    assert_eq!(c.query("SELECT 1").rows().1, vec![vec![Some("1".into())]]);
    let log = p.log();
    let dump = log[0].dumps().next().expect("dump logged").clone();
    assert!(!dump.gtid_protocol);
    assert_eq!(
        (
            dump.flags,
            dump.server_id,
            dump.file.as_str(),
            dump.position
        ),
        (1, 99, name.as_str(), 4)
    );
    assert_eq!(log[0].events_sent, events.len() as u64);
}

#[test]
fn dump_from_a_middle_position_clears_the_fde_log_pos() {
    let Some(path) = corpus(F57) else { return };
    let name = name_of(&path);
    let file = decode_file(&path);
    let start = &file[3];
    let p = primary(PrimaryConfig::new().binlog_file(&path));
    let mut c = replica(&p);
    c.command(&com_binlog_dump(start.offset as u32, NON_BLOCK, 99, &name));
    let (events, end) = read_dump(&mut c, None);
    assert_eq!(end, End::Eof);
    let streamed = decode_stream(&events); // also verifies the recomputed FDE checksum
    assert_artificial_rotate(&streamed[0], &name, start.offset);
    assert_eq!(streamed[1].type_code, 15);
    assert_eq!(streamed[1].log_pos, 0, "FDE log_pos cleared");
    assert_ne!(file[0].log_pos, 0);
    assert_eq!(raws(&streamed[2..]), raws(&file[3..]));

    // A position that is not an event boundary, and one past the end, are ERR 1236.
    for pos in [start.offset as u32 + 1, 1_000_000] {
        c.command(&com_binlog_dump(pos, NON_BLOCK, 99, &name));
        let (_, end) = read_dump(&mut c, None);
        assert!(matches!(end, End::Err(1236, _)), "{end:?}");
    }
    c.command(&com_binlog_dump(4, NON_BLOCK, 99, "no-such-file.000001"));
    match read_dump(&mut c, None).1 {
        End::Err(1236, msg) => assert!(msg.contains("Could not find first log file"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn dump_continues_into_the_next_file() {
    let (Some(f1), Some(f2)) = (corpus(P1), corpus(P2)) else {
        return;
    };
    let (n1, n2) = (name_of(&f1), name_of(&f2));
    let p = primary(PrimaryConfig::new().binlog_file(&f1).binlog_file(&f2));
    let mut c = replica(&p);
    for file in [n1.as_str(), ""] {
        c.command(&com_binlog_dump(4, NON_BLOCK, 99, file));
        let (events, end) = read_dump(&mut c, None);
        assert_eq!(end, End::Eof);
        let s = decode_stream(&events);
        let (e1, e2) = (decode_file(&f1), decode_file(&f2));
        assert_artificial_rotate(&s[0], &n1, 4);
        assert_eq!(raws(&s[1..1 + e1.len()]), raws(&e1));
        // Even after the file's own ROTATE, MySQL sends an artificial one for the next file.
        assert_eq!(e1.last().map(|e| e.type_code), Some(4));
        assert_artificial_rotate(&s[1 + e1.len()], &n2, 4);
        assert_eq!(raws(&s[2 + e1.len()..]), raws(&e2));
    }
}

/// The file's PREVIOUS_GTIDS and its transactions' GTIDs, as testkit GTID sets.
fn file_gtids(path: &Path) -> (GtidSet, Vec<(mysql_binlog_codec::gtid::Uuid, String, u64)>) {
    let bytes = std::fs::read(path).expect("read");
    let mut d = BinlogDecoder::new(DecoderConfig::default());
    let mut pos = 0;
    let mut prev = GtidSet::new();
    let mut gtids = Vec::new();
    while let Some((e, used)) = d.decode(&bytes[pos..]).expect("decodes") {
        pos += used;
        match &e.data {
            EventData::PreviousGtids(set) => {
                prev = GtidSet::parse(&set.to_string()).expect("testkit parses codec text")
            }
            EventData::Gtid(g) if !g.is_anonymous() => gtids.push((g.uuid, g.tag.clone(), g.gno)),
            _ => {}
        }
    }
    (prev, gtids)
}

#[test]
fn gtid_dump_with_a_tagged_set_skips_transactions() {
    let Some(path) = corpus(TAGGED) else { return };
    let name = name_of(&path);
    let (prev, gtids) = file_gtids(&path);
    assert_eq!(gtids.len(), 1);
    let (uuid, tag, gno) = gtids[0].clone();
    assert!(!tag.is_empty(), "the corpus file has a tagged GTID");
    let file = decode_file(&path);
    let p = primary(PrimaryConfig::new().binlog_file(&path));
    let mut c = replica(&p);

    // 1. The set holds the tagged transaction: it is skipped and replaced by a heartbeat.
    let mut set = prev.clone();
    set.add(uuid.0, &tag, gno);
    let encoded = set.encode();
    assert_eq!((encoded[0], encoded[7]), (1, 1), "tagged format");
    c.command(&com_binlog_dump_gtid(NON_BLOCK, 99, "", 4, &encoded));
    let (events, end) = read_dump(&mut c, None);
    assert_eq!(end, End::Eof);
    let s = decode_stream(&events);
    assert_artificial_rotate(&s[0], &name, 4);
    assert_eq!(s[1].type_code, 15);
    assert_eq!(
        s[1].log_pos, 0,
        "FDE log_pos cleared: the first transaction is skipped"
    );
    let gtid_idx = file
        .iter()
        .position(|e| e.type_code == 42)
        .expect("GTID_TAGGED event");
    let after = file[gtid_idx..]
        .iter()
        .position(|e| e.type_code == 16)
        .map(|i| gtid_idx + i)
        .expect("XID");
    // PREVIOUS_GTIDS etc. up to the GTID, one heartbeat at the end of the skipped group,
    // then the rest (the trailing ROTATE).
    assert_eq!(raws(&s[2..1 + gtid_idx]), raws(&file[1..gtid_idx]));
    let hb = &s[1 + gtid_idx];
    assert_eq!(hb.type_code, 27);
    assert_eq!(
        u64::from(hb.log_pos),
        file[after].offset + file[after].raw.len() as u64
    );
    assert_eq!(
        hb.heartbeat.as_ref().map(|h| h.0.as_str()),
        Some(name.as_str())
    );
    assert_eq!(raws(&s[2 + gtid_idx..]), raws(&file[after + 1..]));
    let logged = p.log()[0].dumps().next().expect("logged").clone();
    assert!(logged.gtid_protocol);
    assert_eq!(logged.gtid_set.as_ref(), Some(&set));
    assert!(set.contains(&uuid.0, &tag, gno));
    assert!(set.to_string().starts_with(&format_uuid(&uuid.0)), "{set}");
    assert!(set.to_string().contains(&format!(":{tag}:")), "{set}");

    // 2. The set lacks it: everything is streamed.
    c.command(&com_binlog_dump_gtid(NON_BLOCK, 99, "", 4, &prev.encode()));
    let (events, end) = read_dump(&mut c, None);
    assert_eq!(end, End::Eof);
    let s = decode_stream(&events);
    assert_eq!(raws(&s[1..]), raws(&file));

    // 3. The set lacks purged GTIDs (the first file's PREVIOUS_GTIDS): ERR 1236.
    if !prev.is_empty() {
        c.command(&com_binlog_dump_gtid(
            NON_BLOCK,
            99,
            "",
            4,
            &GtidSet::new().encode(),
        ));
        match read_dump(&mut c, None).1 {
            End::Err(1236, msg) => assert!(msg.contains("purged required binary logs"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn heartbeats_v1_and_v2_while_idle() {
    let Some(path) = corpus(F57) else { return };
    let name = name_of(&path);
    let size = std::fs::metadata(&path).expect("stat").len();
    let file_len = decode_file(&path).len();
    let p = primary(
        PrimaryConfig::new()
            .binlog_file(&path)
            .heartbeat_period(Duration::from_millis(40)),
    );
    for (flags, client_period, ty) in [(0u16, false, 27u8), (HEARTBEAT_V2, true, 41)] {
        let mut c = replica(&p);
        if client_period {
            // A replica sets the period in nanoseconds; it overrides the configured one.
            assert_eq!(
                c.query("SET @source_heartbeat_period = 30000000"),
                QueryResult::Ok
            );
        }
        let t0 = Instant::now();
        c.command(&com_binlog_dump(4, flags, 99, &name));
        let (events, end) = read_dump(&mut c, Some(3));
        assert_eq!(end, End::Heartbeats);
        assert!(t0.elapsed() >= Duration::from_millis(80));
        let s = decode_stream(&events);
        assert_eq!(s.len(), 1 + file_len + 3);
        for hb in &s[1 + file_len..] {
            assert_eq!(hb.type_code, ty);
            assert_eq!(u64::from(hb.log_pos), size);
            let (file, position) = hb.heartbeat.clone().expect("heartbeat decoded");
            assert_eq!(file, name);
            if ty == 41 {
                assert_eq!(position, Some(size));
            }
        }
    }
    // Both replicas left; their connections end.
    assert!(p.wait_for_log(Duration::from_secs(10), |l| l.len() == 2
        && l.iter().all(|c| c.closed)));
    assert!(p.log().iter().all(|l| l.heartbeats_sent >= 3));
}

#[test]
fn err_1236_fault_then_a_clean_dump() {
    let Some(path) = corpus(F57) else { return };
    let name = name_of(&path);
    let p = primary(
        PrimaryConfig::new()
            .binlog_file(&path)
            .fault(Fault::purged_binlogs()),
    );
    let mut c = replica(&p);
    c.command(&com_binlog_dump_gtid(
        NON_BLOCK,
        99,
        &name,
        4,
        &GtidSet::new().encode(),
    ));
    match read_dump(&mut c, None) {
        (events, End::Err(1236, msg)) => {
            assert!(events.is_empty());
            assert!(msg.contains("purged required binary logs"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    c.command(&com_binlog_dump(4, NON_BLOCK, 99, &name));
    assert_eq!(read_dump(&mut c, None).1, End::Eof);
}

#[test]
fn undeclared_checksum_support_is_1236() {
    let Some(path) = corpus(F57) else { return };
    let name = name_of(&path);
    let p = primary(PrimaryConfig::new().binlog_file(&path));
    let (mut c, _) = Client::login(
        p.addr(),
        &Login {
            user: USER,
            password: PASSWORD,
            ..Login::default()
        },
    );
    c.command(&com_binlog_dump(4, NON_BLOCK, 99, &name));
    let (events, end) = read_dump(&mut c, None);
    // The artificial ROTATE (without CRC) goes out first, then the error.
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].len(), 19 + 8 + name.len());
    match end {
        End::Err(1236, msg) => assert!(
            msg.starts_with("Replica can not handle replication events with the checksum"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn disconnect_faults() {
    let Some(path) = corpus(F57) else { return };
    let name = name_of(&path);
    let p = primary(
        PrimaryConfig::new()
            .binlog_file(&path)
            .fault(Fault::DisconnectAfterBytes(150))
            .fault(Fault::DisconnectMidEvent(3))
            .fault(Fault::DisconnectBeforeEvent(2)),
    );
    // Exactly 150 bytes, then the connection is cut.
    let mut c = replica(&p);
    c.command(&com_binlog_dump(4, NON_BLOCK, 99, &name));
    assert_eq!(c.read_until_closed().len(), 150);

    // Events 0..3 complete, then half of event 3.
    let mut c = replica(&p);
    c.command(&com_binlog_dump(4, NON_BLOCK, 99, &name));
    let (events, end) = read_dump(&mut c, None);
    assert_eq!((events.len(), end), (3, End::Disconnected));

    // Clean close before event 2.
    let mut c = replica(&p);
    c.command(&com_binlog_dump(4, NON_BLOCK, 99, &name));
    let (events, end) = read_dump(&mut c, None);
    assert_eq!((events.len(), end), (2, End::Disconnected));

    // The queue is empty: the next dump is clean.
    let mut c = replica(&p);
    c.command(&com_binlog_dump(4, NON_BLOCK, 99, &name));
    assert_eq!(read_dump(&mut c, None).1, End::Eof);
    let notes: Vec<String> = p.log().into_iter().flat_map(|l| l.notes).collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("disconnected after 150 bytes")),
        "{notes:?}"
    );
}

#[test]
fn events_over_16_mib_are_split_into_0xffffff_packets() {
    let Some(path) = corpus(F57) else { return };
    for (event_size, chunks) in [
        (
            17 * 1024 * 1024 + 123,
            vec![0xFF_FFFF, 17 * 1024 * 1024 + 124 - 0xFF_FFFF],
        ),
        // Payload (0x00 + event) exactly 0xFFFFFF: an empty packet must follow.
        (0xFF_FFFE, vec![0xFF_FFFF, 0]),
    ] {
        let p = primary(
            PrimaryConfig::new()
                .binlog_file(&path)
                .large_event(event_size),
        );
        let files = p.binlog_files();
        assert_eq!(files.len(), 2);
        // The synthetic file is named after the corpus file.
        assert_eq!(files[1].0, "mysql-bin.000058");
        let bytes = p
            .binlog_bytes(&files[1].0)
            .expect("synthetic file")
            .to_vec();
        let file = decode_all(
            &bytes,
            DecoderConfig::default().with_magic(MagicMode::Require),
        );
        let big = file.last().expect("event");
        assert_eq!(big.raw.len(), event_size);
        assert_eq!(big.type_code, 29, "ROWS_QUERY_LOG_EVENT");

        let mut c = replica(&p);
        c.command(&com_binlog_dump(
            big.offset as u32,
            NON_BLOCK,
            99,
            &files[1].0,
        ));
        let mut events = Vec::new();
        for _ in 0..2 {
            let ev = c.read_packet();
            assert_eq!(ev[0], 0);
            events.push(ev[1..].to_vec());
        }
        // The big event, physical packet by physical packet.
        let mut sizes = Vec::new();
        let mut payload = Vec::new();
        loop {
            let raw = c.read_raw().expect("packet");
            assert_eq!(raw.seq, c.seq, "sequence id per chunk");
            c.seq = c.seq.wrapping_add(1);
            sizes.push(raw.len);
            payload.extend_from_slice(&raw.payload);
            if raw.len < 0xFF_FFFF {
                break;
            }
        }
        assert_eq!(sizes, chunks);
        assert_eq!(payload[0], 0);
        assert_eq!(&payload[1..], big.raw.as_slice());
        events.push(payload[1..].to_vec());
        let eof = c.read_packet();
        assert_eq!(eof[0], 0xFE);
        let s = decode_stream(&events);
        assert_eq!(s[2].rows_query_len, Some(event_size - 19 - 1 - 4));
    }
}

#[test]
fn stall_fault_then_stop_joins_threads() {
    let Some(path) = corpus(F57) else { return };
    let name = name_of(&path);
    let mut p = primary(
        PrimaryConfig::new()
            .binlog_file(&path)
            .fault(Fault::StallBeforeEvent {
                event: 2,
                heartbeats: false,
            }),
    );
    let mut c = replica(&p);
    c.tcp
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    c.command(&com_binlog_dump(4, 0, 99, &name));
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(c.read_packet());
    }
    // Nothing more arrives while stalled.
    assert!(c.read_raw().is_err());
    let t0 = Instant::now();
    p.stop();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "stop() took {:?}",
        t0.elapsed()
    );
    assert!(p.log()[0].closed);
    assert!(matches!(
        p.log()[0].commands.last(),
        Some(Command::BinlogDump(_))
    ));
}

#[test]
fn dump_over_tls_with_heartbeats() {
    let Some(path) = corpus(F57) else { return };
    let name = name_of(&path);
    let p = primary(
        PrimaryConfig::new()
            .tls(true)
            .binlog_file(&path)
            .heartbeat_period(Duration::from_millis(30)),
    );
    let ca = p.ca_pem_path().expect("ca").to_path_buf();
    let (mut c, seen) = Client::login(
        p.addr(),
        &Login {
            user: USER,
            password: PASSWORD,
            deprecate_eof: true,
            tls_ca: Some(&ca),
            ..Login::default()
        },
    );
    assert_eq!(seen, AuthSeen::Fast);
    assert_eq!(
        c.query("SET @source_binlog_checksum = 'CRC32'"),
        QueryResult::Ok
    );
    c.command(&com_binlog_dump(4, 0, 99, &name));
    let (events, end) = read_dump(&mut c, Some(2));
    assert_eq!(end, End::Heartbeats);
    let s = decode_stream(&events);
    assert_eq!(raws(&s[1..s.len() - 2]), raws(&decode_file(&path)));
    drop(c);
    assert!(p.wait_for_log(Duration::from_secs(10), |l| l[0].closed));
    assert!(p.log()[0].tls);
}
