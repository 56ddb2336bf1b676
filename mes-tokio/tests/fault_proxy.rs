//! The tokio driver through a TCP proxy that cuts the connection after a random number of
//! bytes (inside the handshake, inside TLS records, inside packets) many times, while a
//! background thread writes a large workload. The consumer must end with exactly the rows
//! SELECT shows: every insert once, every update and delete applied to the row it saw last
//! (a duplicate or a gap fails at once), including across a restart from a checkpoint string.
//! Without a server: a loud SKIPPED, unless `MES_REQUIRE_SERVER=1` (then failure).
//!
//! The proxy, the workload and the model live in `mes_testkit::live` (shared with mes-blocking).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use mes_testkit::live::proxy::FaultProxy;
use mes_testkit::live::{CUTS, Model, ROWS, env, id_of, select_rows, server, sql, workload};
use mes_tokio::{BinlogStream, Reconnect, StreamConfig, StreamError, start_from_string};
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
async fn start(port: u16, db: &str, from: StartPosition) -> BinlogStream {
    let mut tries = 0;
    loop {
        match BinlogStream::start(config(port, db, from.clone())).await {
            Ok(s) => return s,
            Err(
                e @ (StreamError::Io { .. }
                | StreamError::Proto(ProtoError::Eof(_) | ProtoError::Timeout(_))),
            ) if tries < 20 => {
                tries += 1;
                eprintln!("start through the proxy failed ({e}); again");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_exactly_once_through_a_cutting_proxy() {
    let Some((_, server_port)) = server() else {
        return;
    };
    let seed: u64 = env("MES_FAULT_SEED")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("fault proxy seed {seed} (MES_FAULT_SEED to replay)");
    let db = format!("mes_tok_fault_{}", std::process::id());
    sql(&format!("DROP DATABASE IF EXISTS {db}"));
    sql(&format!("CREATE DATABASE {db}"));
    sql(&format!(
        "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, n INT NOT NULL, v VARCHAR(64) NOT NULL, pad VARCHAR(200) NOT NULL)"
    ));
    let proxy = FaultProxy::start(server_port, CUTS, seed);
    let started = Instant::now();
    let mut stream = start(proxy.port, &db, current()).await;

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
        let c = match tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
            Ok(Some(Ok(EngineEvent::Change(c)))) => c,
            Ok(Some(Ok(_))) | Err(_) => continue,
            Ok(Some(Err(e))) => panic!("stream failed: {e}"),
            Ok(None) => panic!("stream ended"),
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
            stream.stop().await;
            redelivered = model.changes - snapshot.1.changes;
            model = snapshot.1.clone();
            stream = start(proxy.port, &db, start_from_string(&snapshot.0).unwrap()).await;
        }
    }
    let (txns, rows) = writer.join().unwrap();
    stream.stop().await;
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
        "tokio: {rows} rows in {txns} txns, {} changes, {} rows at the end; {} cuts at bytes {:?}; \
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
