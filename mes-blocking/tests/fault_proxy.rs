//! The blocking driver through a TCP proxy that cuts the connection after a random number of
//! bytes (inside the handshake, inside TLS records, inside packets) many times, while a
//! background thread writes a large workload. The consumer must end with exactly the rows
//! SELECT shows: every insert once, every update and delete applied to the row it saw last
//! (a duplicate or a gap fails at once), including across a restart from a checkpoint string.
//! Without a server: a loud SKIPPED, unless `MES_REQUIRE_SERVER=1` (then failure).
//!
//! The proxy, the workload and the model live in `mes_testkit::live` (shared with mes-tokio). This file also holds two regression tests of
//! the blocking driver: `stop()` with a full queue, and `stop_at_end`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use mes_blocking::{BinlogStream, Reconnect, StreamConfig, StreamError, start_from_string};
use mes_testkit::live::proxy::FaultProxy;
use mes_testkit::live::{CUTS, Model, ROWS, env, id_of, select_rows, server, sql, workload};
use mysql_binlog_codec::engine::{ChangeKind, EngineConfig, EngineEvent, TableFilter};
use mysql_repl_proto::{ProtoError, StartPosition};

fn current() -> StartPosition {
    let status = sql("SHOW MASTER STATUS");
    let mut p = status.split('\t');
    let file = p.next().unwrap().to_owned();
    StartPosition::FilePosition {
        file,
        position: p.next().unwrap().parse().unwrap(),
    }
}

fn config(port: u16, db: &str, start: StartPosition) -> StreamConfig {
    let connect = mes_testkit::live::repl_connect(
        env("MES_TEST_REPL_USER").unwrap(),
        env("MES_TEST_REPL_PASSWORD").unwrap(),
        start,
    );
    let mut c = StreamConfig::new("127.0.0.1", port, connect);
    c.engine =
        EngineConfig::default().with_filter(TableFilter::default().with_include_databases(&[db]));
    c.queue_events = 64;
    c.reconnect = Reconnect {
        max_attempts: 20,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        ..Reconnect::default()
    };
    c
}

/// `BinlogStream::start` through the proxy: the first connection may be cut too, so a
/// network-level failure is retried.
fn start(port: u16, db: &str, from: StartPosition) -> BinlogStream {
    let mut tries = 0;
    loop {
        match BinlogStream::start(config(port, db, from.clone())) {
            Ok(s) => return s,
            Err(
                e @ (StreamError::Io { .. }
                | StreamError::Proto(ProtoError::Eof(_) | ProtoError::Timeout(_))),
            ) if tries < 20 => {
                tries += 1;
                eprintln!("start through the proxy failed ({e}); again");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn every_row_exactly_once_through_a_cutting_proxy() {
    let Some((_, server_port)) = server() else {
        return;
    };
    let seed: u64 = env("MES_FAULT_SEED")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("fault proxy seed {seed} (MES_FAULT_SEED to replay)");
    let db = format!("mes_blk_fault_{}", std::process::id());
    sql(&format!("DROP DATABASE IF EXISTS {db}"));
    sql(&format!("CREATE DATABASE {db}"));
    sql(&format!(
        "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, n INT NOT NULL, v VARCHAR(64) NOT NULL, pad VARCHAR(200) NOT NULL)"
    ));
    let proxy = FaultProxy::start(server_port, CUTS, seed);
    let started = Instant::now();
    let mut stream = start(proxy.port, &db, current());

    let writer = {
        let (db, cuts) = (db.clone(), proxy.cut_counter());
        std::thread::spawn(move || workload(&db, seed, cuts))
    };

    let mut model = Model::default();
    // The model as of the consumer's checkpoint (what a restart from it must continue).
    let mut snapshot = (stream.checkpoint_string(), Model::default());
    let (mut restarted, mut redelivered) = (false, 0);
    let deadline = Instant::now() + Duration::from_secs(55);
    loop {
        assert!(
            Instant::now() < deadline,
            "timed out with {} rows, {} cuts",
            model.rows.len(),
            proxy.cuts().len()
        );
        let c = match stream.next_timeout(Duration::from_millis(500)) {
            Some(Ok(Some(EngineEvent::Change(c)))) => c,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("stream failed: {e}"),
            None => panic!("stream ended"),
        };
        if stream.checkpoint_string() != snapshot.0 {
            snapshot = (stream.checkpoint_string(), model.clone());
        }
        model.apply(&c);
        if c.kind() == ChangeKind::Insert && id_of(&c.after().unwrap()) == 0 {
            break;
        }
        if !restarted && model.inserted.len() as i64 >= ROWS / 2 {
            // Stop, and resume a new stream from the persisted checkpoint string: what was
            // delivered after the checkpoint comes again and must apply to the snapshot.
            restarted = true;
            stream.stop();
            redelivered = model.changes - snapshot.1.changes;
            model = snapshot.1.clone();
            stream = start(proxy.port, &db, start_from_string(&snapshot.0).unwrap());
        }
    }
    let (txns, rows) = writer.join().unwrap();
    stream.stop();
    let expected = select_rows(&db);
    assert_eq!(model.rows.len(), expected.len());
    assert!(
        model.rows == expected,
        "the stream's table differs from SELECT"
    );
    assert_eq!(
        model.inserted.len() as i64,
        rows + 1,
        "every inserted id exactly once"
    );
    let cuts = proxy.cuts();
    assert_eq!(
        cuts.len(),
        CUTS,
        "the proxy made every cut: cuts at {cuts:?}, {} connections, {rows} rows in {txns} txns",
        proxy.connections()
    );
    assert!(restarted);
    eprintln!(
        "blocking: {rows} rows in {txns} txns, {} changes, {} rows at the end; {} cuts at bytes {:?}; \
         {} proxied connections (1 start + 1 restart + reconnects); restart re-delivered {redelivered}; {:.1} s",
        model.changes,
        expected.len(),
        cuts.len(),
        cuts,
        proxy.connections(),
        started.elapsed().as_secs_f64()
    );
    drop(proxy);
    sql(&format!("DROP DATABASE {db}"));
}

/// Regression: `stop()` (and so `Drop`) while the reader thread is blocked on a full queue in
/// the middle of handing out a transaction bigger than the queue must not hang.
#[test]
fn stop_with_a_full_queue_does_not_hang() {
    let Some((_, server_port)) = server() else {
        return;
    };
    let db = format!("mes_blk_fullq_{}", std::process::id());
    sql(&format!("DROP DATABASE IF EXISTS {db}"));
    sql(&format!("CREATE DATABASE {db}"));
    sql(&format!(
        "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, n INT NOT NULL, v VARCHAR(64) NOT NULL, pad VARCHAR(200) NOT NULL)"
    ));
    let mut c = config(server_port, &db, current());
    c.queue_events = 2;
    let mut stream = BinlogStream::start(c).unwrap();
    let mut stmts = String::from("BEGIN;");
    for id in 1..=300 {
        stmts.push_str(&format!("INSERT INTO {db}.t VALUES ({id}, 0, 'x', '');"));
    }
    stmts.push_str("COMMIT;");
    sql(&stmts);
    assert!(matches!(
        stream.next_timeout(Duration::from_secs(10)),
        Some(Ok(Some(EngineEvent::Change(_))))
    ));
    // Let the reader fill the queue and block on it.
    std::thread::sleep(Duration::from_millis(200));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let stopper = std::thread::spawn(move || {
        stream.stop();
        let _ = done_tx.send(());
    });
    let stopped = done_rx.recv_timeout(Duration::from_secs(5)).is_ok();
    assert!(stopped, "stop() hung with a full queue");
    stopper.join().unwrap();
    sql(&format!("DROP DATABASE {db}"));
}

/// Regression: with `stop_at_end` the stream ends after the server's last event (it used to
/// take the server's EOF for a lost connection and reconnect forever).
#[test]
fn stop_at_end_ends_the_stream() {
    let Some((_, server_port)) = server() else {
        return;
    };
    let db = format!("mes_blk_end_{}", std::process::id());
    sql(&format!("DROP DATABASE IF EXISTS {db}"));
    sql(&format!("CREATE DATABASE {db}"));
    sql(&format!(
        "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, n INT NOT NULL, v VARCHAR(64) NOT NULL, pad VARCHAR(200) NOT NULL)"
    ));
    let from = current();
    let mut stmts = String::new();
    for id in 1..=10 {
        stmts.push_str(&format!("INSERT INTO {db}.t VALUES ({id}, 0, 'e', '');"));
    }
    sql(&stmts);
    let mut c = config(server_port, &db, from);
    c.connect.stop_at_end = true;
    let mut stream = BinlogStream::start(c).unwrap();
    let mut model = Model::default();
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a stop_at_end stream must end (not reconnect forever)"
        );
        match stream.next_timeout(Duration::from_millis(200)) {
            None => break,
            Some(Ok(Some(EngineEvent::Change(c)))) => model.apply(&c),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("{e}"),
        }
    }
    assert_eq!(model.inserted.len(), 10);
    sql(&format!("DROP DATABASE {db}"));
}
