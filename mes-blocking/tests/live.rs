//! The blocking driver against the real MariaDB the test script starts: streaming, killed
//! connections (reconnect + resume, every row exactly once), stop from another thread, bad
//! addresses. Without a server: a loud SKIPPED, unless `MES_REQUIRE_SERVER=1` (then failure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use mes_blocking::{BinlogStream, Reconnect, StreamConfig, StreamError};
use mes_testkit::live::{env, server, sql};
use mysql_binlog_codec::Value;
use mysql_binlog_codec::engine::{ChangeKind, EngineConfig, EngineEvent, TableFilter};
use mysql_repl_proto::StartPosition;

fn config(addr: &(String, u16), db: &str, start: StartPosition) -> StreamConfig {
    let connect = mes_testkit::live::repl_connect(
        env("MES_TEST_REPL_USER").unwrap(),
        env("MES_TEST_REPL_PASSWORD").unwrap(),
        start,
    );
    let mut c = StreamConfig::new(&addr.0, addr.1, connect);
    c.engine =
        EngineConfig::default().with_filter(TableFilter::default().with_include_databases(&[db]));
    c.reconnect = Reconnect {
        max_attempts: 20,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
        ..Reconnect::default()
    };
    c
}

fn current() -> StartPosition {
    let status = sql("SHOW MASTER STATUS");
    let mut p = status.split('\t');
    let file = p.next().unwrap().to_owned();
    StartPosition::FilePosition {
        file,
        position: p.next().unwrap().parse().unwrap(),
    }
}

/// Collect INSERTed ids until `n` arrived (or the deadline).
fn collect(stream: &mut BinlogStream, n: usize, ids: &mut BTreeMap<i64, usize>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ids.values().sum::<usize>() < n && Instant::now() < deadline {
        match stream.next_timeout(Duration::from_millis(500)) {
            Some(Ok(Some(EngineEvent::Change(c)))) if c.kind() == ChangeKind::Insert => {
                let after = c.after().unwrap().unwrap();
                let Some(Value::Int(id)) = after.values[0] else {
                    panic!("{after:?}")
                };
                *ids.entry(id).or_default() += 1;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("stream failed: {e}"),
            None => panic!("stream ended"),
        }
    }
}

fn kill_dump_threads() -> usize {
    let ids =
        sql("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'");
    let mut n = 0;
    for id in ids.lines().filter(|l| !l.is_empty()) {
        let _ = Command::new("mariadb")
            .arg(format!(
                "--defaults-file={}",
                env("MES_TEST_CLIENT_CNF").unwrap()
            ))
            .args(["-e", &format!("KILL {id}")])
            .output();
        n += 1;
    }
    n
}

#[test]
fn streams_and_survives_killed_connections_exactly_once() {
    let Some(addr) = server() else { return };
    let db = format!("mes_blk_{}", std::process::id());
    sql(&format!("CREATE DATABASE {db}"));
    sql(&format!(
        "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, v VARCHAR(40))"
    ));
    let mut stream = BinlogStream::start(config(&addr, &db, current())).unwrap();
    let mut ids = BTreeMap::new();
    let mut next_id = 0i64;
    for round in 0..5 {
        // A batch of single-row transactions and one multi-row transaction.
        let mut stmts = String::new();
        for _ in 0..40 {
            next_id += 1;
            stmts.push_str(&format!(
                "INSERT INTO {db}.t VALUES ({next_id}, 'r{round}');"
            ));
        }
        stmts.push_str("BEGIN;");
        for _ in 0..30 {
            next_id += 1;
            stmts.push_str(&format!(
                "INSERT INTO {db}.t VALUES ({next_id}, 'txn{round}');"
            ));
        }
        stmts.push_str("COMMIT;");
        sql(&stmts);
        if round % 2 == 1 {
            assert!(kill_dump_threads() >= 1, "a dump thread to kill");
        }
        collect(&mut stream, next_id as usize, &mut ids);
    }
    assert_eq!(ids.len(), next_id as usize, "every row arrived");
    let dups: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicates after resume: {dups:?}");
    let cp = stream.checkpoint_string();
    assert!(
        cp.starts_with("mariadb:0-") || cp.starts_with("file:"),
        "{cp}"
    );
    stream.stop();
    sql(&format!("DROP DATABASE {db}"));
}

#[test]
fn stop_from_another_thread_unblocks_the_consumer() {
    let Some(addr) = server() else { return };
    let mut stream = BinlogStream::start(config(&addr, "mes_nothing_here", current())).unwrap();
    let handle = stream.stop_handle();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        handle.stop();
    });
    let started = Instant::now();
    // Whatever arrives first, the iterator must end soon after the stop.
    for ev in stream.by_ref() {
        assert!(ev.is_ok(), "{ev:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "stop did not end the stream"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    t.join().unwrap();
}

#[test]
fn bad_addresses_and_credentials_fail_fast_and_typed() {
    let Some(addr) = server() else { return };
    let started = Instant::now();
    let mut c = config(&addr, "x", StartPosition::Current);
    c.port = 1;
    match BinlogStream::start(c) {
        Err(StreamError::Io { addr, .. }) => assert!(addr.ends_with(":1")),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected to port 1?"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut c = config(&addr, "x", StartPosition::Current);
    c.connect.password = "wrong".into();
    assert!(matches!(
        BinlogStream::start(c),
        Err(StreamError::Proto(mysql_repl_proto::ProtoError::Auth(_)))
    ));
}

/// Regression: MariaDB counts GEOMETRY columns in the TABLE_MAP charset metadata (MySQL does
/// not); a table with GEOMETRY and CHAR columns used to fail with "charset metadata has 2
/// entries for 1 columns".
#[test]
fn mariadb_geometry_and_char_columns() {
    let Some(addr) = server() else { return };
    let db = format!("mes_geo_{}", std::process::id());
    sql(&format!("CREATE DATABASE {db}"));
    sql(&format!(
        "CREATE TABLE {db}.g (id INT PRIMARY KEY, g GEOMETRY, c CHAR(3) CHARACTER SET latin1)"
    ));
    let mut stream = BinlogStream::start(config(&addr, &db, current())).unwrap();
    sql(&format!(
        "INSERT INTO {db}.g VALUES (1, ST_GeomFromText('POINT(1 2)', 4326), 'é')"
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    let change = loop {
        assert!(Instant::now() < deadline, "no change event");
        match stream.next_timeout(Duration::from_millis(500)) {
            Some(Ok(Some(EngineEvent::Change(c)))) => break c,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("{e}"),
            None => panic!("stream ended"),
        }
    };
    let cols = &change.table().map.columns;
    assert_eq!(
        cols[1].collation,
        Some(63),
        "GEOMETRY carries the binary charset"
    );
    assert_eq!(
        cols[2].collation,
        Some(8),
        "CHAR latin1 (latin1_swedish_ci)"
    );
    let after = change.after().unwrap().unwrap();
    assert!(
        matches!(&after.values[1], Some(Value::Geometry(b)) if b.len() == 25 && b[..4] == 4326u32.to_le_bytes())
    );
    assert!(matches!(&after.values[2], Some(Value::String { bytes, .. }) if bytes[..] == [0xe9]));
    stream.stop();
    sql(&format!("DROP DATABASE {db}"));
}
