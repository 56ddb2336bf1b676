//! The protocol state machine against the real MariaDB the test script starts: logins with each
//! auth plugin, TLS in each mode, wrong credentials, missing privileges, dumps by position and by
//! GTID — each asserting the typed outcome. Without a server these tests print a loud SKIPPED
//! line, unless `MES_REQUIRE_SERVER=1`, where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mes_testkit::live::{env, server, sql};
use mysql_binlog_codec::engine::{Engine, EngineConfig, EngineEvent, TableFilter};
use mysql_binlog_codec::{ChecksumAlg, DecoderConfig, MagicMode};
use mysql_repl_proto::{
    ConnEvent, ConnectConfig, Connection, Flavor, Output, ProtoError, ServerInfo, SslMode,
    StartPosition, TlsOptions,
};

struct Run {
    info: Option<ServerInfo>,
    events: Vec<(bytes::Bytes, bool)>,
    result: Result<(), ProtoError>,
}

/// A minimal blocking driver: the loop from the crate docs.
fn run(config: ConnectConfig, addr: &(String, u16), max_events: usize) -> Run {
    let mut sock = TcpStream::connect((addr.0.as_str(), addr.1)).unwrap();
    let mut conn = Connection::new(config, Instant::now()).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut r = Run {
        info: None,
        events: Vec::new(),
        result: Ok(()),
    };
    loop {
        match conn.poll_output() {
            Output::Transmit(b) => {
                // A server that already hung up: report it like end of file.
                let _ = sock.write_all(&b).map_err(|_| conn.handle_eof());
            }
            Output::Event(ConnEvent::Ready(info)) => r.info = Some(*info),
            Output::Event(ConnEvent::Binlog { event, checksum }) => {
                r.events.push((event, checksum));
                if r.events.len() >= max_events {
                    conn.close();
                }
            }
            Output::Event(_) => {}
            Output::Wait(deadline) => {
                let t = deadline
                    .map(|d| d.saturating_duration_since(Instant::now()))
                    .unwrap_or(Duration::from_secs(5));
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
                    Err(e) => panic!("{e}"),
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

fn cfg(user_var: &str, pw_var: &str) -> ConnectConfig {
    ConnectConfig {
        host: env("MES_TEST_HOST").unwrap_or_default(),
        user: env(user_var).unwrap_or_default(),
        password: env(pw_var).unwrap_or_default(),
        server_id: mes_testkit::live::replica_server_id(),
        start: StartPosition::MariaGtid(String::new()),
        stop_at_end: true,
        connect_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(10),
        ..ConnectConfig::default()
    }
}

fn tls(mode: SslMode, ca: Option<String>) -> TlsOptions {
    TlsOptions {
        mode,
        ca_file: ca.map(Into::into),
        cert_file: None,
        key_file: None,
    }
}

/// Decode what a run received with the engine; returns the number of change events of
/// `table` (`mes_proto_live.NAME`: the tests of this file run in parallel on one server and each
/// writes its own table, so one test's rows can reach another's stream).
fn decode(run: &Run, table: &str) -> usize {
    let checksum = run.info.as_ref().map(|i| i.checksum).unwrap_or(false);
    let dec = DecoderConfig::default()
        .with_magic(MagicMode::None)
        .with_initial_checksum(if checksum {
            ChecksumAlg::Crc32
        } else {
            ChecksumAlg::Off
        });
    // Only the asking test's table: the shared test server's binlog holds other tests' tables.
    let filter = TableFilter::default().with_include_tables(&[table]);
    let mut engine = Engine::new(
        EngineConfig::default()
            .with_decoder(dec)
            .with_filter(filter),
    );
    let mut n = 0;
    for (ev, _) in &run.events {
        engine.handle_input(ev).unwrap();
        while let Some(e) = engine.poll_event() {
            if matches!(e, EngineEvent::Change(_)) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn logins_with_each_plugin_and_dump_by_gtid() {
    let Some(addr) = server() else { return };
    sql("CREATE DATABASE IF NOT EXISTS mes_proto_live");
    sql("CREATE TABLE IF NOT EXISTS mes_proto_live.t (id INT PRIMARY KEY, v VARCHAR(20))");
    // Start from the GTID position before our rows: a GTID dump from the beginning would
    // replay everything other tests wrote to the shared server.
    let from = sql("SELECT @@global.gtid_binlog_pos");
    // Fresh rows every run (a REPLACE of identical rows logs nothing).
    sql("DELETE FROM mes_proto_live.t; INSERT INTO mes_proto_live.t VALUES (1, 'one'), (2, 'two')");
    for (user, pw, plugin) in [
        (
            "MES_TEST_REPL_USER",
            "MES_TEST_REPL_PASSWORD",
            "mysql_native_password",
        ),
        (
            "MES_TEST_NATIVE_USER",
            "MES_TEST_NATIVE_PASSWORD",
            "mysql_native_password",
        ),
        (
            "MES_TEST_ED25519_USER",
            "MES_TEST_ED25519_PASSWORD",
            "client_ed25519",
        ),
        (
            "MES_TEST_USER",
            "MES_TEST_PASSWORD",
            "mysql_native_password",
        ),
    ] {
        let mut c = cfg(user, pw);
        c.start = StartPosition::MariaGtid(from.clone());
        let r = run(c, &addr, usize::MAX);
        assert!(r.result.is_ok(), "{user}: {:?}", r.result);
        let info = r.info.as_ref().unwrap();
        assert_eq!(info.flavor, Flavor::MariaDb);
        assert_eq!(info.auth_plugin, plugin, "{user}");
        assert!(info.checksum);
        assert!(!r.events.is_empty());
        assert!(
            decode(&r, "mes_proto_live.t") >= 2,
            "{user}: rows decoded from the stream"
        );
    }
}

#[test]
fn wrong_password_and_missing_privileges_are_typed() {
    let Some(addr) = server() else { return };
    let mut c = cfg("MES_TEST_NATIVE_USER", "MES_TEST_NATIVE_PASSWORD");
    c.password = "definitely wrong".into();
    let r = run(c, &addr, usize::MAX);
    assert!(
        matches!(&r.result, Err(ProtoError::Auth(m)) if m.contains("access denied")),
        "{:?}",
        r.result
    );

    sql("CREATE USER IF NOT EXISTS 'mes_noprivs'@'%' IDENTIFIED BY 'np_pw'");
    let mut c = cfg("MES_TEST_NATIVE_USER", "MES_TEST_NATIVE_PASSWORD");
    c.user = "mes_noprivs".into();
    c.password = "np_pw".into();
    let r = run(c, &addr, usize::MAX);
    match &r.result {
        Err(ProtoError::Server { message, .. }) => {
            assert!(message.contains("REPLICATION SLAVE"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tls_modes() {
    let Some(addr) = server() else { return };
    let ca = env("MES_TEST_TLS_CA");
    let cases: Vec<(TlsOptions, &str, Result<bool, &str>)> = vec![
        (tls(SslMode::Disabled, None), "127.0.0.1", Ok(false)),
        (tls(SslMode::Preferred, None), "127.0.0.1", Ok(false)),
        (tls(SslMode::Required, None), "127.0.0.1", Ok(false)),
        (
            tls(SslMode::VerifyCa, ca.clone()),
            "wrong.example",
            Ok(true),
        ),
        (
            tls(SslMode::VerifyIdentity, ca.clone()),
            "127.0.0.1",
            Ok(true),
        ),
        (
            tls(SslMode::VerifyIdentity, ca.clone()),
            "wrong.example",
            Err("name"),
        ),
        // A CA that did not sign the server certificate: the client cert's own PEM is no CA.
        (
            tls(SslMode::VerifyCa, env("MES_TEST_TLS_CERT")),
            "127.0.0.1",
            Err(""),
        ),
    ];
    for (opts, host, want) in cases {
        let mut c = cfg("MES_TEST_TLS_USER", "MES_TEST_TLS_PASSWORD");
        c.host = host.into();
        let mode = opts.mode;
        c.tls = opts;
        let r = run(c, &addr, 3);
        match want {
            Ok(verified) => {
                if mode == SslMode::Disabled {
                    // mes_tls REQUIRE SSL: refused without TLS.
                    assert!(
                        r.result.is_err(),
                        "{mode:?}: plain login of a REQUIRE SSL account must fail"
                    );
                    continue;
                }
                assert!(r.result.is_ok(), "{mode:?} {host}: {:?}", r.result);
                let info = r.info.unwrap();
                assert!(info.tls, "{mode:?}");
                assert_eq!(info.tls_verified, verified, "{mode:?}");
            }
            Err(word) => match &r.result {
                Err(ProtoError::Tls(m)) => assert!(m.contains(word), "{mode:?} {host}: {m}"),
                other => panic!("{mode:?} {host}: expected a TLS error, got {other:?}"),
            },
        }
    }
}

#[test]
fn dump_by_file_and_position_and_at_current() {
    let Some(addr) = server() else { return };
    let status = sql("SHOW MASTER STATUS");
    let mut parts = status.split('\t');
    let file = parts.next().unwrap().to_owned();
    let pos: u64 = parts.next().unwrap().parse().unwrap();
    sql("CREATE DATABASE IF NOT EXISTS mes_proto_live");
    sql("CREATE TABLE IF NOT EXISTS mes_proto_live.p (id INT PRIMARY KEY)");
    sql("INSERT INTO mes_proto_live.p VALUES (1000 + FLOOR(RAND() * 1000000))");
    let mut c = cfg("MES_TEST_REPL_USER", "MES_TEST_REPL_PASSWORD");
    c.start = StartPosition::FilePosition {
        file: file.clone(),
        position: pos,
    };
    let r = run(c, &addr, usize::MAX);
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert!(decode(&r, "mes_proto_live.p") >= 1);
    // The first event is the artificial ROTATE naming the file.
    let first = &r.events[0].0;
    assert_eq!(first[4], 4);

    // At current: nothing of the past is replayed; the stream ends at once.
    let mut c = cfg("MES_TEST_REPL_USER", "MES_TEST_REPL_PASSWORD");
    c.start = StartPosition::Current;
    let r = run(c, &addr, usize::MAX);
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert_eq!(decode(&r, "mes_proto_live.p"), 0);

    // A position in a file that does not exist: the server's 1236, typed.
    let mut c = cfg("MES_TEST_REPL_USER", "MES_TEST_REPL_PASSWORD");
    c.start = StartPosition::FilePosition {
        file: "no-such-file.000999".into(),
        position: 4,
    };
    let r = run(c, &addr, usize::MAX);
    assert!(
        matches!(r.result, Err(ProtoError::PositionUnavailable(_))),
        "{:?}",
        r.result
    );
}
