//! `RawBinlogStream` of the blocking driver against the real MariaDB the test script starts.
//!
//! The oracle (`mes_testkit::raw_check`, shared with mes-tokio) reads the server's binlog
//! files: every event that claims a place in the binlog must be the file's bytes at that place,
//! places follow each other without repeats or gaps (only the ANNOTATE_ROWS events MariaDB does
//! not send to a replica may lie between), events the server makes up do not move the
//! position, and the events decoded in order with `mysql_binlog_codec` give the rows `SELECT`
//! shows, every id once. The stream runs through a proxy that cuts the connection many times,
//! across binlog rotations and a restart from `resume_string`; `stop` with a full queue and
//! the stop handle end the reader thread.
//! Without a server: a loud SKIPPED, unless `MES_REQUIRE_SERVER=1` (then failure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mes_blocking::{
    RawBinlogStream, RawEvent, Reconnect, StreamConfig, StreamError, start_from_string,
};
use mes_testkit::live::proxy::FaultProxy;
use mes_testkit::live::{current_position, env, select_rows, server, sql};
use mes_testkit::raw_check::{RawCheck, RawRef, fresh_db, rotating_workload};
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
fn start(port: u16, from: StartPosition) -> RawBinlogStream {
    let mut tries = 0;
    loop {
        match RawBinlogStream::start(config(port, from.clone())) {
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
/// (then `false`), or 60 s passed.
fn consume(stream: &mut RawBinlogStream, c: &mut RawCheck, limit: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut taken = 0;
    while !c.model.rows.contains_key(&0) {
        assert!(Instant::now() < deadline, "timed out: {}", c.summary());
        if taken == limit {
            return false;
        }
        match stream.next_timeout(Duration::from_millis(500)) {
            Some(Ok(Some(ev))) => {
                check(c, &ev);
                assert_eq!(stream.resume_point(), &ev.resume, "position after next");
                taken += 1;
            }
            Some(Ok(None)) => {}
            Some(Err(e)) => panic!("stream failed: {e} ({})", c.summary()),
            None => panic!("stream ended ({})", c.summary()),
        }
    }
    true
}

#[test]
fn raw_events_are_the_binlog_and_decode_to_the_rows_written() {
    let Some((_, server_port)) = server() else {
        return;
    };
    let db = fresh_db("blk");
    let (file, offset) = current_position();
    let seed = rand::random::<u64>();
    eprintln!("raw stream test: seed {seed}, database {db}, from {file}:{offset}");
    let proxy = FaultProxy::start(server_port, 8, seed);
    let mut c = RawCheck::new(
        PathBuf::from(env("MES_TEST_BINLOG_DIR").expect("MES_TEST_BINLOG_DIR")),
        &db,
        Some((file.clone(), offset)),
    );
    let mut stream = start(
        proxy.port,
        StartPosition::FilePosition {
            file: file.clone(),
            position: offset,
        },
    );
    assert_eq!(
        (&*stream.resume_point().file, stream.resume_point().offset),
        (file.as_str(), offset),
        "before the first event the position is the start"
    );
    let cuts = proxy.cut_counter();
    let writer_db = db.clone();
    let writer =
        std::thread::spawn(move || rotating_workload(&writer_db, seed, 60, 20, || cuts() >= 8));
    // Part of the way, then a restart from the persisted position string.
    assert!(
        !consume(&mut stream, &mut c, 150),
        "the restart comes first"
    );
    let resume = stream.resume_string();
    stream.stop();
    assert!(stream.next().is_none(), "nothing after stop");
    assert_eq!(stream.resume_string(), resume, "stop keeps the position");
    drop(stream);
    let mut stream = start(proxy.port, start_from_string(&resume).unwrap());
    assert_eq!(stream.resume_string(), resume);
    // The iterator form too, for a while.
    for ev in stream.by_ref().take(20) {
        check(&mut c, &ev.unwrap());
    }
    assert!(consume(&mut stream, &mut c, usize::MAX));
    stream.stop();
    let txns = writer.join().unwrap();
    eprintln!(
        "raw stream test: {txns} transactions, {} cuts; {}",
        proxy.cuts().len(),
        c.summary()
    );
    assert!(
        c.rotations >= 3,
        "expected binlog rotations: {}",
        c.summary()
    );
    assert!(c.model.inserted.values().all(|&n| n == 1), "every row once");
    mes_testkit::live::assert_same_rows(&c.model.rows, &select_rows(&db), "decoded rows vs SELECT");
    assert!(!proxy.cuts().is_empty(), "the proxy cut no connection");
    sql(&format!("DROP DATABASE {db}"));
}

#[test]
fn stop_with_a_full_queue_and_the_stop_handle_end_the_reader() {
    let Some((_, port)) = server() else {
        return;
    };
    let db = fresh_db("bstop");
    let mut c = config(port, StartPosition::Current);
    c.queue_events = 2;
    let mut stream = RawBinlogStream::start(c).unwrap();
    // 300 transactions: over a thousand events for a queue of two.
    let mut stmts = String::new();
    for id in 1..=300 {
        stmts.push_str(&format!("INSERT INTO {db}.t VALUES ({id}, 0, 'x');"));
    }
    sql(&stmts);
    let first = stream.next().unwrap().unwrap();
    assert_eq!(stream.resume_point(), &first.resume);
    // Let the reader fill the queue and block on it.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    stream.stop();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stop() with a full queue hung"
    );
    assert!(stream.next().is_none());
    assert_eq!(
        stream.resume_point(),
        &first.resume,
        "stop keeps the position"
    );

    let mut stream = RawBinlogStream::start(config(port, StartPosition::Current)).unwrap();
    let handle = stream.stop_handle();
    let started = Instant::now();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        handle.stop();
    });
    for ev in stream.by_ref() {
        assert!(ev.is_ok(), "{ev:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the stop handle did not end the stream"
    );
    stopper.join().unwrap();
    sql(&format!("DROP DATABASE {db}"));
}
