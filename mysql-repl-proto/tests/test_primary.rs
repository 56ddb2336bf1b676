//! Our client against the scripted MySQL 8.4 primary (mes-testkit, whose handshake PyMySQL and
//! mysql-connector-python accept): caching_sha2_password fast and full auth (TLS and RSA), the
//! refusal to send a password without a safe path, COM_BINLOG_DUMP_GTID with tagged GTID sets
//! over real MySQL binlogs, heartbeats and the read deadline, 16 MiB+ events, injected faults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mes_testkit::{AuthOutcome, AuthPlugin, Fault, PrimaryConfig, TestPrimary};
use mysql_repl_proto::{
    ConnEvent, ConnectConfig, Connection, Output, ProtoError, SslMode, StartPosition, TlsOptions,
};

struct Run {
    events: Vec<bytes::Bytes>,
    ready: bool,
    result: Result<(), ProtoError>,
}

fn run(primary: &TestPrimary, config: ConnectConfig, max_events: usize) -> Run {
    let mut sock = TcpStream::connect(primary.addr()).unwrap();
    let mut conn = Connection::new(config, Instant::now()).unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut r = Run {
        events: Vec::new(),
        ready: false,
        result: Ok(()),
    };
    loop {
        match conn.poll_output() {
            Output::Transmit(b) => {
                let _ = sock.write_all(&b).map_err(|_| conn.handle_eof());
            }
            Output::Event(ConnEvent::Ready(_)) => r.ready = true,
            Output::Event(ConnEvent::Binlog { event, .. }) => {
                r.events.push(event);
                if r.events.len() >= max_events {
                    conn.close();
                }
            }
            Output::Event(_) => {}
            Output::Wait(deadline) => {
                let t = deadline.map_or(Duration::from_secs(10), |d| {
                    d.saturating_duration_since(Instant::now())
                });
                sock.set_read_timeout(Some(t.max(Duration::from_millis(1))))
                    .unwrap();
                match sock.read(&mut buf) {
                    Ok(0) => conn.handle_eof(),
                    Ok(n) => conn.handle_input(Instant::now(), &buf[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        conn.handle_timeout(Instant::now())
                    }
                    Err(_) => conn.handle_eof(),
                }
            }
            Output::Closed(res) => {
                r.result = res;
                return r;
            }
            _ => {}
        }
    }
}

fn corpus(rel: &str) -> Option<std::path::PathBuf> {
    let p = mes_testkit::corpus_file(rel);
    if p.is_none() {
        eprintln!("SKIPPED: corpus file {rel} not found (set MES_CORPUS_DIR)");
    }
    p
}

fn cfg(user: &str, pw: &str) -> ConnectConfig {
    ConnectConfig {
        user: user.into(),
        password: pw.into(),
        tls: TlsOptions {
            mode: SslMode::Disabled,
            ..TlsOptions::default()
        },
        start: StartPosition::FilePosition {
            file: "mysql-bin.000057".into(),
            position: 4,
        },
        stop_at_end: true,
        read_timeout: Duration::from_secs(10),
        ..ConnectConfig::default()
    }
}

fn auth_of(primary: &TestPrimary, user: &str) -> Vec<AuthOutcome> {
    primary
        .log()
        .into_iter()
        .filter(|l| l.user.as_deref() == Some(user))
        .filter_map(|l| l.auth)
        .collect()
}

#[test]
fn caching_sha2_fast_full_tls_and_rsa() {
    let Some(file) = corpus("mysql-binlog-connector-rust/mysql-bin.000057") else {
        return;
    };
    let primary = TestPrimary::start(
        PrimaryConfig::new()
            .tls(true)
            .account("cold", "pw ☃ 1", AuthPlugin::CachingSha2Password)
            .account("warm", "pw2", AuthPlugin::CachingSha2Password)
            .warm_cache("warm")
            .binlog_file(&file),
    )
    .unwrap();
    let n_file_events = {
        let bytes = std::fs::read(&file).unwrap();
        let mut dec = mysql_binlog_codec::BinlogDecoder::default();
        let mut pos = 0;
        let mut n = 0;
        while let Some((_, used)) = dec.decode(&bytes[pos..]).unwrap() {
            pos += used;
            n += 1;
        }
        n
    };

    // Fast path.
    let r = run(&primary, cfg("warm", "pw2"), usize::MAX);
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert_eq!(auth_of(&primary, "warm"), [AuthOutcome::FastAuth]);
    // Artificial ROTATE + the file's events.
    assert_eq!(r.events.len(), n_file_events + 1);

    // Cold cache, plain TCP, no consent: refused before any password leaves.
    let r = run(&primary, cfg("cold", "pw ☃ 1"), usize::MAX);
    assert!(
        matches!(&r.result, Err(ProtoError::Auth(m)) if m.contains("never sent in clear")),
        "{:?}",
        r.result
    );
    // Cold cache over *unverified* TLS: also refused (the channel is not verified).
    let mut c = cfg("cold", "pw ☃ 1");
    c.tls.mode = SslMode::Required;
    let r = run(&primary, c, usize::MAX);
    assert!(
        matches!(&r.result, Err(ProtoError::Auth(_))),
        "{:?}",
        r.result
    );
    // Cold cache over verified TLS: full auth with the password inside TLS.
    let mut c = cfg("cold", "pw ☃ 1");
    c.tls = TlsOptions {
        mode: SslMode::VerifyIdentity,
        ca_file: primary.ca_pem_path().map(Into::into),
        ..TlsOptions::default()
    };
    let r = run(&primary, c, usize::MAX);
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert!(auth_of(&primary, "cold").contains(&AuthOutcome::FullAuthTls));
    // Now warm: fast.
    let r = run(&primary, cfg("cold", "pw ☃ 1"), usize::MAX);
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert_eq!(
        auth_of(&primary, "cold").last(),
        Some(&AuthOutcome::FastAuth)
    );

    // Cold again, plain TCP with consent: RSA with the retrieved key.
    primary.set_cache_warm("cold", false);
    let mut c = cfg("cold", "pw ☃ 1");
    c.allow_public_key_retrieval = true;
    let r = run(&primary, c, usize::MAX);
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert_eq!(
        auth_of(&primary, "cold").last(),
        Some(&AuthOutcome::FullAuthRsa {
            key_requested: true
        })
    );
    // With the key configured in advance: no request.
    primary.set_cache_warm("cold", false);
    let mut c = cfg("cold", "pw ☃ 1");
    c.server_public_key = Some(primary.rsa_public_key_pem().unwrap());
    let r = run(&primary, c, usize::MAX);
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert_eq!(
        auth_of(&primary, "cold").last(),
        Some(&AuthOutcome::FullAuthRsa {
            key_requested: false
        })
    );

    // Wrong password: the fast-path token does not match, so the server asks for full
    // authentication (as MySQL does); without a safe path the client refuses to go on, and with
    // RSA allowed the server answers 1045.
    let r = run(&primary, cfg("warm", "nope"), usize::MAX);
    assert!(
        matches!(&r.result, Err(ProtoError::Auth(m)) if m.contains("never sent in clear")),
        "{:?}",
        r.result
    );
    let mut c = cfg("warm", "nope");
    c.allow_public_key_retrieval = true;
    let r = run(&primary, c, usize::MAX);
    assert!(
        matches!(&r.result, Err(ProtoError::Auth(m)) if m.contains("access denied")),
        "{:?}",
        r.result
    );
}

#[test]
fn gtid_dump_with_tagged_sets_skips_executed_transactions() {
    let Some(file) = corpus("rust_mysql_common/binlog_transaction_with_GTID_TAG.000001") else {
        return;
    };
    let primary = TestPrimary::start(
        PrimaryConfig::new()
            .account("u", "p", AuthPlugin::CachingSha2Password)
            .warm_cache("u")
            .binlog_file(&file),
    )
    .unwrap();
    let purged = primary
        .variables()
        .get("gtid_purged")
        .cloned()
        .unwrap_or_default();
    // Everything before the file plus the file's own tagged GTID: nothing left to send but
    // the control events.
    let mut c = cfg("u", "p");
    let executed = primary.variables().get("gtid_executed").cloned().unwrap();
    c.start = StartPosition::MysqlGtidSet(executed.clone());
    let r_all = run(&primary, c, usize::MAX);
    assert!(r_all.result.is_ok(), "{:?}", r_all.result);
    let dump = primary
        .log()
        .iter()
        .flat_map(|l| l.dumps().cloned().collect::<Vec<_>>())
        .last()
        .unwrap();
    assert!(dump.gtid_protocol);
    assert_eq!(
        dump.gtid_set.as_ref().map(|s| s.to_string()).unwrap(),
        executed,
        "the primary decoded our tagged set"
    );

    // Only the purged part: the tagged transaction is streamed.
    let mut c = cfg("u", "p");
    c.start = StartPosition::MysqlGtidSet(purged.clone());
    let r = run(&primary, c, usize::MAX);
    assert!(r.result.is_ok(), "{:?}", r.result);
    let tagged = r.events.iter().filter(|e| e.get(4) == Some(&42)).count();
    assert_eq!(tagged, 1, "the GTID_TAGGED transaction is sent");
    assert!(
        r.events.len()
            > r_all
                .events
                .iter()
                .filter(|e| e.get(4) != Some(&27) && e.get(4) != Some(&41))
                .count()
    );
}

#[test]
fn heartbeats_keep_an_idle_stream_alive_and_silence_times_out() {
    let Some(file) = corpus("mysql-binlog-connector-rust/mysql-bin.000057") else {
        return;
    };
    let primary = TestPrimary::start(
        PrimaryConfig::new()
            .account("u", "p", AuthPlugin::CachingSha2Password)
            .warm_cache("u")
            .binlog_file(&file)
            .fault(Fault::StallBeforeEvent {
                event: 3,
                heartbeats: true,
            })
            .fault(Fault::StallBeforeEvent {
                event: 3,
                heartbeats: false,
            }),
    )
    .unwrap();
    // Stalled with heartbeats: the connection stays up; we collect a few heartbeats.
    let mut c = cfg("u", "p");
    c.stop_at_end = false;
    c.heartbeat_period = Duration::from_millis(100);
    c.read_timeout = Duration::from_millis(600);
    let r = run(&primary, c.clone(), 10);
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert!(
        r.events
            .iter()
            .filter(|e| matches!(e.get(4), Some(27 | 41)))
            .count()
            >= 3,
        "heartbeats arrived"
    );
    // Silent: the read deadline declares the connection dead, typed and retryable.
    let r = run(&primary, c, usize::MAX);
    match &r.result {
        Err(e @ ProtoError::Timeout(m)) => {
            assert!(m.contains("read_timeout"));
            assert!(e.is_retryable());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn large_events_and_faults() {
    let Some(file) = corpus("mysql-binlog-connector-rust/mysql-bin.000057") else {
        return;
    };
    let big = 17 << 20;
    let primary = TestPrimary::start(
        PrimaryConfig::new()
            .account("u", "p", AuthPlugin::CachingSha2Password)
            .warm_cache("u")
            .binlog_file(&file)
            .large_event(big),
    )
    .unwrap();
    let mut c = cfg("u", "p");
    c.max_event_size = 64 << 20;
    let r = run(&primary, c.clone(), usize::MAX);
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert!(
        r.events.iter().any(|e| e.len() == big),
        "the 17 MiB event arrives whole"
    );
    // The same with a smaller limit: a typed refusal, no unbounded buffering.
    let mut small = c.clone();
    small.max_event_size = 1 << 20;
    let r = run(&primary, small, usize::MAX);
    assert!(
        matches!(r.result, Err(ProtoError::PacketTooLarge { .. })),
        "{:?}",
        r.result
    );

    // Faults: a cut mid-event is a retryable end of stream; ERR 1236 is typed.
    primary.push_fault(Fault::DisconnectMidEvent(4));
    let r = run(&primary, c.clone(), usize::MAX);
    assert!(
        matches!(&r.result, Err(e) if e.is_retryable()),
        "{:?}",
        r.result
    );
    assert_eq!(
        r.events.len(),
        4,
        "events before the cut arrive; the cut one does not"
    );
    primary.push_fault(Fault::purged_binlogs());
    let r = run(&primary, c, usize::MAX);
    assert!(
        matches!(r.result, Err(ProtoError::PositionUnavailable(_))),
        "{:?}",
        r.result
    );
}
