//! The tokio driver against the real MariaDB the test script starts: values of inserts /
//! updates / deletes, killed dump connections (reconnect + resume, every row exactly once),
//! resume from a checkpoint string, cancel-safety of `next`, stop / drop, bad addresses.
//! Without a server: a loud SKIPPED, unless `MES_REQUIRE_SERVER=1` (then failure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use mes_testkit::live::{env, server, sql};
use mes_tokio::{BinlogStream, Reconnect, StreamConfig, StreamError, start_from_string};
use mysql_binlog_codec::Value;
use mysql_binlog_codec::engine::{ChangeEvent, ChangeKind, EngineConfig, EngineEvent, TableFilter};
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

/// A fresh database with `t (id BIGINT PRIMARY KEY, v VARCHAR(40), n INT, d DECIMAL(10,2),
/// ts DATETIME(6))`.
fn fresh_db(tag: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let db = format!("mes_tok_{tag}_{}_{n}", std::process::id());
    sql(&format!("DROP DATABASE IF EXISTS {db}"));
    sql(&format!("CREATE DATABASE {db}"));
    sql(&format!(
        "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, v VARCHAR(40), n INT, d DECIMAL(10,2), ts DATETIME(6))"
    ));
    db
}

/// A value as the `mariadb -B` client prints it.
fn text(v: &Option<Value<'_>>) -> String {
    match v {
        None | Some(Value::Null) => "NULL".into(),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::UInt(i)) => i.to_string(),
        Some(Value::Decimal(d)) => d.to_string(),
        Some(Value::DateTime(t)) => t.to_string(),
        Some(Value::String { bytes, .. }) => String::from_utf8_lossy(bytes).into_owned(),
        Some(other) => panic!("unexpected value {other:?}"),
    }
}

fn row_text(r: &Option<mysql_binlog_codec::Row<'_>>) -> Vec<String> {
    r.as_ref().unwrap().values.iter().map(text).collect()
}

fn id_of(r: &Option<mysql_binlog_codec::Row<'_>>) -> i64 {
    match r.as_ref().unwrap().values[0] {
        Some(Value::Int(id)) => id,
        ref other => panic!("{other:?}"),
    }
}

/// The table as SELECT shows it: id → the row's columns as text.
fn select_rows(db: &str) -> BTreeMap<i64, Vec<String>> {
    sql(&format!("SELECT * FROM {db}.t ORDER BY id"))
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let cols: Vec<String> = l.split('\t').map(str::to_owned).collect();
            (cols[0].parse().unwrap(), cols)
        })
        .collect()
}

/// Applies change events to a model of the table, refusing any duplicate or gap: an insert
/// of an id already seen, an update or delete whose before image is not the model's row.
#[derive(Default)]
struct Model {
    rows: BTreeMap<i64, Vec<String>>,
    inserted: BTreeMap<i64, usize>,
    changes: usize,
}

impl Model {
    fn apply(&mut self, c: &ChangeEvent) {
        self.changes += 1;
        // Each image decoded once.
        let (before, after) = (c.before().unwrap(), c.after().unwrap());
        match c.kind() {
            ChangeKind::Insert => {
                let id = id_of(&after);
                *self.inserted.entry(id).or_default() += 1;
                assert_eq!(self.inserted[&id], 1, "id {id} inserted twice");
                self.rows.insert(id, row_text(&after));
            }
            ChangeKind::Update => {
                let id = id_of(&before);
                assert_eq!(
                    self.rows.get(&id),
                    Some(&row_text(&before)),
                    "update of {id}: before image is not the current row (duplicate or gap)"
                );
                self.rows.insert(id, row_text(&after));
            }
            ChangeKind::Delete => {
                let id = id_of(&before);
                assert_eq!(
                    self.rows.remove(&id),
                    Some(row_text(&before)),
                    "delete of {id}: before image is not the current row (duplicate or gap)"
                );
            }
        }
    }
}

/// Apply events until `done` holds (or fail after 60 s).
async fn consume_until(
    stream: &mut BinlogStream,
    model: &mut Model,
    done: impl Fn(&Model) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(model) {
        assert!(
            Instant::now() < deadline,
            "timed out; model has {:?}",
            model.rows.keys()
        );
        match tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
            Ok(Some(Ok(EngineEvent::Change(c)))) => model.apply(&c),
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(Some(Err(e))) => panic!("stream failed: {e}"),
            Ok(None) => panic!("stream ended"),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_inserts_updates_deletes_with_the_values_select_shows() {
    let Some(addr) = server() else { return };
    let db = fresh_db("values");
    let mut stream = BinlogStream::start(config(&addr, &db, current()))
        .await
        .unwrap();
    sql(&format!(
        "INSERT INTO {db}.t VALUES (1, 'one', 10, 1.50, '2024-01-02 03:04:05.123456');
         INSERT INTO {db}.t VALUES (2, 'two', NULL, -2.25, NULL), (3, 'thrée', 30, 0.00, '1999-12-31 23:59:59.000001');
         BEGIN; UPDATE {db}.t SET v = 'ONE', n = n + 1 WHERE id = 1; DELETE FROM {db}.t WHERE id = 2; COMMIT;
         UPDATE {db}.t SET d = 99999999.99, ts = '2038-01-19 03:14:08' WHERE id = 3;"
    ));
    let mut model = Model::default();
    let mut kinds = Vec::new();
    let mut last_gtid = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while kinds.len() < 6 {
        assert!(Instant::now() < deadline, "got only {kinds:?}");
        match tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
            Ok(Some(Ok(EngineEvent::Change(c)))) => {
                assert_eq!(
                    (c.table().database.as_str(), c.table().table.as_str()),
                    (db.as_str(), "t")
                );
                assert_eq!(
                    c.table().column_names.as_deref(),
                    Some(&["id", "v", "n", "d", "ts"].map(String::from)[..])
                );
                assert!(
                    c.gtid().map(|g| &**g).is_some_and(|g| g.starts_with("0-")),
                    "{:?}",
                    c.gtid()
                );
                kinds.push((
                    c.kind(),
                    id_of(&if c.kind() == ChangeKind::Insert {
                        c.after().unwrap()
                    } else {
                        c.before().unwrap()
                    }),
                ));
                model.apply(&c);
                last_gtid = c.gtid().map(|g| &**g).unwrap().to_owned();
            }
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(Some(Err(e))) => panic!("{e}"),
            Ok(None) => panic!("ended"),
        }
    }
    use ChangeKind::*;
    assert_eq!(
        kinds,
        [
            (Insert, 1),
            (Insert, 2),
            (Insert, 3),
            (Update, 1),
            (Delete, 2),
            (Update, 3)
        ]
    );
    assert_eq!(model.rows, select_rows(&db));
    assert_eq!(
        model.rows[&3],
        [
            "3",
            "thrée",
            "30",
            "99999999.99",
            "2038-01-19 03:14:08.000000"
        ]
        .map(String::from)
    );
    // The checkpoint covers the last transaction once its marker was read.
    let _ = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    // (Other tests write to the binlog concurrently: compare with our last transaction's GTID.)
    let cp = stream.checkpoint_string();
    let seq = |g: &str| -> u64 { g.rsplit('-').next().unwrap().parse().unwrap() };
    let cp_gtid = cp
        .strip_prefix("mariadb:")
        .unwrap_or_else(|| panic!("{cp}"));
    assert!(
        seq(cp_gtid) >= seq(&last_gtid),
        "{cp} does not cover {last_gtid}"
    );
    stream.stop().await;
    assert!(stream.next().await.is_none(), "nothing after stop");
    sql(&format!("DROP DATABASE {db}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_killed_dump_connections_exactly_once() {
    let Some(addr) = server() else { return };
    let db = fresh_db("kill");
    let mut stream = BinlogStream::start(config(&addr, &db, current()))
        .await
        .unwrap();
    let mut model = Model::default();
    let mut next_id = 0i64;
    let mut kills = 0;
    for round in 0..6 {
        // Single-row transactions, one multi-row transaction, an update and a delete.
        let mut stmts = String::new();
        for _ in 0..40 {
            next_id += 1;
            stmts.push_str(&format!(
                "INSERT INTO {db}.t (id, v, n) VALUES ({next_id}, 'r{round}', 0);"
            ));
        }
        stmts.push_str("BEGIN;");
        for _ in 0..30 {
            next_id += 1;
            stmts.push_str(&format!(
                "INSERT INTO {db}.t (id, v, n) VALUES ({next_id}, 'txn{round}', 0);"
            ));
        }
        stmts.push_str(&format!(
            "UPDATE {db}.t SET n = n + 1 WHERE id % 7 = {round}; COMMIT; DELETE FROM {db}.t WHERE id = {};",
            next_id - 5
        ));
        sql(&stmts);
        if round % 2 == 1 {
            tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 50)).await;
            let n = tokio::task::spawn_blocking(kill_dump_threads)
                .await
                .unwrap();
            assert!(n >= 1, "a dump thread to kill");
            kills += n;
        }
        let expected = select_rows(&db);
        consume_until(&mut stream, &mut model, |m| m.rows == expected).await;
    }
    assert_eq!(
        model.inserted.len(),
        next_id as usize,
        "every row arrived once"
    );
    eprintln!(
        "killed {kills} dump threads; {} changes for {} rows, each exactly once",
        model.changes, next_id
    );
    stream.stop().await;
    sql(&format!("DROP DATABASE {db}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_from_a_checkpoint_string_without_gaps_or_duplicates() {
    let Some(addr) = server() else { return };
    let db = fresh_db("resume");
    let mut stream = BinlogStream::start(config(&addr, &db, current()))
        .await
        .unwrap();
    let mut stmts = String::new();
    for id in 1..=100 {
        stmts.push_str(&format!("INSERT INTO {db}.t (id, v) VALUES ({id}, 'a');"));
    }
    sql(&stmts);
    let mut model = Model::default();
    consume_until(&mut stream, &mut model, |m| m.rows.len() == 100).await;
    // Read the checkpoint marker that follows the last transaction (next is cancel-safe).
    let _ = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    let cp = stream.checkpoint_string();
    stream.stop().await;
    drop(stream);
    let mut stmts = String::new();
    for id in 101..=150 {
        stmts.push_str(&format!("INSERT INTO {db}.t (id, v) VALUES ({id}, 'b');"));
    }
    stmts.push_str(&format!("UPDATE {db}.t SET v = 'c' WHERE id <= 3;"));
    sql(&stmts);
    let mut stream = BinlogStream::start(config(&addr, &db, start_from_string(&cp).unwrap()))
        .await
        .unwrap();
    assert_eq!(
        stream.checkpoint_string(),
        cp,
        "a new stream starts at its start position"
    );
    let expected = select_rows(&db);
    consume_until(&mut stream, &mut model, |m| m.rows == expected).await;
    assert_eq!(model.inserted.len(), 150);
    assert_eq!(model.changes, 153);
    stream.stop().await;
    sql(&format!("DROP DATABASE {db}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_is_cancel_safe_and_tiny_queues_still_flow() {
    let Some(addr) = server() else { return };
    let db = fresh_db("cancel");
    let mut c = config(&addr, &db, current());
    c.queue_events = 3;
    c.queue_bytes = 1; // every event passes alone
    let mut stream = BinlogStream::start(c).await.unwrap();
    // Written while the consumer waits, so many next() futures are dropped mid-wait.
    let writer_db = db.clone();
    let writer = tokio::task::spawn_blocking(move || {
        for batch in 0..20 {
            let mut stmts = String::new();
            for id in batch * 20 + 1..=batch * 20 + 20 {
                stmts.push_str(&format!(
                    "INSERT INTO {writer_db}.t (id, v) VALUES ({id}, 'x');"
                ));
            }
            sql(&stmts);
        }
        sql(&format!("UPDATE {writer_db}.t SET n = id;"));
    });
    let mut model = Model::default();
    let (mut timeouts, mut rng) = (0u32, 1u64);
    let deadline = Instant::now() + Duration::from_secs(40);
    while model.changes < 800 {
        assert!(Instant::now() < deadline, "{} changes", model.changes);
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Futures dropped mid-wait (often while the driver is pushing into a full channel).
        let wait = Duration::from_micros((rng >> 33) % 300);
        match tokio::time::timeout(wait, stream.next()).await {
            Ok(Some(Ok(EngineEvent::Change(c)))) => model.apply(&c),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => panic!("{e}"),
            Ok(None) => panic!("ended"),
            Err(_) => timeouts += 1,
        }
    }
    writer.await.unwrap();
    assert!(timeouts > 0, "some next() futures were cancelled");
    assert_eq!(model.rows, select_rows(&db));
    eprintln!("800 changes exactly once across {timeouts} cancelled next() calls");
    stream.stop().await;
    sql(&format!("DROP DATABASE {db}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_handle_and_drop_end_the_task_even_with_a_full_queue() {
    let Some(addr) = server() else { return };
    let db = fresh_db("stop");
    let metrics = tokio::runtime::Handle::current().metrics();

    // stop() while the driver waits on a full queue in the middle of a 300-row transaction.
    let mut c = config(&addr, &db, current());
    c.queue_events = 2;
    let mut stream = BinlogStream::start(c).await.unwrap();
    let mut stmts = String::from("BEGIN;");
    for id in 1..=300 {
        stmts.push_str(&format!("INSERT INTO {db}.t (id, v) VALUES ({id}, 'x');"));
    }
    stmts.push_str("COMMIT;");
    sql(&stmts);
    assert!(matches!(
        stream.next().await,
        Some(Ok(EngineEvent::Change(_)))
    ));
    let cp = stream.checkpoint_string();
    tokio::time::timeout(Duration::from_secs(5), stream.stop())
        .await
        .expect("stop() with a full queue must not hang");
    assert!(stream.next().await.is_none());
    assert_eq!(
        stream.checkpoint_string(),
        cp,
        "a half-delivered transaction is not checkpointed"
    );

    // A stop handle from another task unblocks a waiting consumer.
    let mut stream = BinlogStream::start(config(&addr, &db, StartPosition::Current))
        .await
        .unwrap();
    let handle = stream.stop_handle();
    let started = Instant::now();
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        handle.stop();
    });
    while let Some(ev) = stream.next().await {
        assert!(ev.is_ok(), "{ev:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stop did not end the stream"
    );
    stopper.await.unwrap();
    drop(stream);

    // Dropping a stream ends its task.
    let stream = BinlogStream::start(config(&addr, &db, StartPosition::Current))
        .await
        .unwrap();
    assert!(metrics.num_alive_tasks() >= 1);
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(5);
    while metrics.num_alive_tasks() > 0 {
        assert!(
            Instant::now() < deadline,
            "the driver task outlived its stream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sql(&format!("DROP DATABASE {db}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_addresses_and_credentials_fail_fast_and_typed() {
    let Some(addr) = server() else { return };
    let started = Instant::now();
    let mut c = config(&addr, "x", StartPosition::Current);
    c.port = 1;
    match BinlogStream::start(c).await {
        Err(StreamError::Io { addr, .. }) => assert!(addr.ends_with(":1")),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected to port 1?"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut c = config(&addr, "x", StartPosition::Current);
    c.connect.password = "wrong".into();
    assert!(matches!(
        BinlogStream::start(c).await,
        Err(StreamError::Proto(mysql_repl_proto::ProtoError::Auth(_)))
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_at_end_ends_the_stream_after_the_last_event() {
    let Some(addr) = server() else { return };
    let db = fresh_db("end");
    let from = current();
    let mut stmts = String::new();
    for id in 1..=10 {
        stmts.push_str(&format!("INSERT INTO {db}.t (id, v) VALUES ({id}, 'e');"));
    }
    sql(&stmts);
    let mut c = config(&addr, &db, from);
    c.connect.stop_at_end = true;
    let mut stream = BinlogStream::start(c).await.unwrap();
    let mut model = Model::default();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = stream.next().await {
            if let EngineEvent::Change(c) = ev.unwrap() {
                model.apply(&c);
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "a stop_at_end stream must end (not reconnect forever)"
    );
    assert_eq!(model.inserted.len(), 10);
    sql(&format!("DROP DATABASE {db}"));
}
