//! `RawBinlogStream` of the tokio driver against the real MariaDB the test script starts.
//!
//! The oracle (`mes_testkit::raw_check`) reads the server's binlog files: every event that
//! claims a place in the binlog must be the file's bytes at that place, places follow each
//! other without repeats or gaps (only the ANNOTATE_ROWS events MariaDB does not send to a
//! replica may lie between), events the server makes up do not move the position, and the
//! events decoded in order with `mysql_binlog_codec` give the rows `SELECT` shows, every id
//! once. The streams run through a proxy that cuts the connection many times, across binlog
//! rotations, a restart from `resume_string`, cancelled `next()` calls and a GTID start;
//! `stop`, the stop handle and dropping end the task.
//! Without a server: a loud SKIPPED, unless `MES_REQUIRE_SERVER=1` (then failure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_core::Stream as _;
use mes_testkit::live::proxy::FaultProxy;
use mes_testkit::live::{current_position, env, select_rows, server, sql};
use mes_testkit::raw_check::{RawCheck, RawRef, fresh_db, rotating_workload};
use mes_tokio::{
    RawBinlogStream, RawEvent, Reconnect, StreamConfig, StreamError, start_from_string,
};
use mysql_repl_proto::{ProtoError, StartPosition};

fn config(port: u16, start: StartPosition) -> StreamConfig {
    let connect = mes_testkit::live::repl_connect(
        env("MES_TEST_REPL_USER").unwrap(),
        env("MES_TEST_REPL_PASSWORD").unwrap(),
        start,
    );
    let mut c = StreamConfig::new("127.0.0.1", port, connect);
    c.queue_events = 16;
    c.queue_bytes = 64 << 10;
    c.reconnect = Reconnect {
        max_attempts: 30,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        ..Reconnect::default()
    };
    c
}

/// `RawBinlogStream::start` through the proxy: the first connection may be cut too, so a
/// network-level failure is retried.
async fn start(port: u16, from: StartPosition) -> RawBinlogStream {
    let mut tries = 0;
    loop {
        match RawBinlogStream::start(config(port, from.clone())).await {
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

fn binlog_dir() -> PathBuf {
    PathBuf::from(env("MES_TEST_BINLOG_DIR").expect("MES_TEST_BINLOG_DIR"))
}

fn check(c: &mut RawCheck, ev: &RawEvent) {
    c.event(RawRef {
        header: ev.header,
        data: &ev.data,
        checksum: ev.checksum,
        file: &ev.file,
        offset: ev.offset,
        resume_file: &ev.resume.file,
        resume_offset: ev.resume.offset,
    });
}

/// Feed events to the check until the sentinel row 0 was decoded, `limit` events were taken
/// (then `false`), or 60 s passed. Some `next()` calls are cancelled by short timeouts.
async fn consume(
    stream: &mut RawBinlogStream,
    c: &mut RawCheck,
    limit: usize,
    cancelled: &mut usize,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut taken = 0;
    let mut rng = 7u64;
    while !c.model.rows.contains_key(&0) {
        assert!(Instant::now() < deadline, "timed out: {}", c.summary());
        if taken == limit {
            return false;
        }
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = if rng >> 60 == 0 {
            Duration::from_micros((rng >> 33) % 200)
        } else {
            Duration::from_millis(500)
        };
        match tokio::time::timeout(wait, stream.next()).await {
            Ok(Some(Ok(ev))) => {
                check(c, &ev);
                assert_eq!(stream.resume_point(), &ev.resume, "position after next()");
                taken += 1;
            }
            Ok(Some(Err(e))) => panic!("stream failed: {e} ({})", c.summary()),
            Ok(None) => panic!("stream ended ({})", c.summary()),
            Err(_) => *cancelled += 1,
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_events_are_the_binlog_and_decode_to_the_rows_written() {
    let Some((_, server_port)) = server() else {
        return;
    };
    let db = fresh_db("tok");
    let (file, offset) = current_position();
    let seed = rand::random::<u64>();
    eprintln!("raw stream test: seed {seed}, database {db}, from {file}:{offset}");
    let proxy = FaultProxy::start(server_port, 8, seed);
    let mut c = RawCheck::new(binlog_dir(), &db, Some((file.clone(), offset)));
    let mut stream = start(
        proxy.port,
        StartPosition::FilePosition {
            file: file.clone(),
            position: offset,
        },
    )
    .await;
    assert_eq!(
        (&*stream.resume_point().file, stream.resume_point().offset),
        (file.as_str(), offset),
        "before the first event the position is the start"
    );
    let cuts = proxy.cut_counter();
    let writer_db = db.clone();
    let writer = tokio::task::spawn_blocking(move || {
        rotating_workload(&writer_db, seed, 60, 20, || cuts() >= 8)
    });
    let mut cancelled = 0;
    // Part of the way, then a restart from the persisted position string.
    assert!(
        !consume(&mut stream, &mut c, 150, &mut cancelled).await,
        "the restart comes first"
    );
    let resume = stream.resume_string();
    stream.stop().await;
    assert!(stream.next().await.is_none(), "nothing after stop");
    assert_eq!(stream.resume_string(), resume, "stop keeps the position");
    drop(stream);
    let mut stream = start(proxy.port, start_from_string(&resume).unwrap()).await;
    assert_eq!(stream.resume_string(), resume);
    // The futures_core::Stream form too, for a while.
    for _ in 0..20 {
        let ev = std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx))
            .await
            .unwrap()
            .unwrap();
        check(&mut c, &ev);
    }
    assert!(consume(&mut stream, &mut c, usize::MAX, &mut cancelled).await);
    stream.stop().await;
    let txns = writer.await.unwrap();
    let table = select_rows(&db);
    eprintln!(
        "raw stream test: {txns} transactions, {} cuts, 1 restart, {cancelled} cancelled \
         next() calls; {}",
        proxy.cuts().len(),
        c.summary()
    );
    assert!(
        c.rotations >= 3,
        "expected binlog rotations: {}",
        c.summary()
    );
    assert!(c.model.inserted.values().all(|&n| n == 1), "every row once");
    mes_testkit::live::assert_same_rows(&c.model.rows, &table, "decoded rows vs SELECT");
    assert!(!proxy.cuts().is_empty(), "the proxy cut no connection");
    sql(&format!("DROP DATABASE {db}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gtid_start_through_cuts_delivers_every_transaction_once() {
    let Some((_, server_port)) = server() else {
        return;
    };
    let db = fresh_db("gtid");
    let gtid = sql("SELECT @@gtid_binlog_pos");
    let seed = rand::random::<u64>();
    eprintln!("raw GTID start test: seed {seed}, database {db}, from mariadb:{gtid}");
    let proxy = FaultProxy::start(server_port, 6, seed);
    let mut c = RawCheck::new(binlog_dir(), &db, None);
    let mut stream = start(proxy.port, StartPosition::MariaGtid(gtid)).await;
    let cuts = proxy.cut_counter();
    let writer_db = db.clone();
    let writer = tokio::task::spawn_blocking(move || {
        rotating_workload(&writer_db, seed, 30, 25, || cuts() >= 6)
    });
    let mut cancelled = 0;
    assert!(consume(&mut stream, &mut c, usize::MAX, &mut cancelled).await);
    stream.stop().await;
    writer.await.unwrap();
    eprintln!(
        "raw GTID start test: {} cuts; {}",
        proxy.cuts().len(),
        c.summary()
    );
    assert!(c.model.inserted.values().all(|&n| n == 1), "every row once");
    mes_testkit::live::assert_same_rows(&c.model.rows, &select_rows(&db), "decoded rows vs SELECT");
    sql(&format!("DROP DATABASE {db}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_the_stop_handle_and_drop_end_the_task() {
    let Some((_, port)) = server() else {
        return;
    };
    let db = fresh_db("stop");
    let metrics = tokio::runtime::Handle::current().metrics();

    // stop() while the task waits on a full queue.
    let mut c = config(port, StartPosition::Current);
    c.queue_events = 2;
    let mut stream = RawBinlogStream::start(c).await.unwrap();
    // 300 transactions: over a thousand events for a queue of two.
    let mut stmts = String::new();
    for id in 1..=300 {
        stmts.push_str(&format!("INSERT INTO {db}.t VALUES ({id}, 0, 'x');"));
    }
    sql(&stmts);
    let first = stream.next().await.unwrap().unwrap();
    let position = stream.resume_point().clone();
    assert_eq!(position, first.resume);
    tokio::time::timeout(Duration::from_secs(5), stream.stop())
        .await
        .expect("stop() with a full queue must not hang");
    assert!(stream.next().await.is_none());
    assert_eq!(stream.resume_point(), &position, "stop keeps the position");

    // A stop handle from another task unblocks a waiting consumer (heartbeats keep coming).
    let mut stream = RawBinlogStream::start(config(port, StartPosition::Current))
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
    let stream = RawBinlogStream::start(config(port, StartPosition::Current))
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
