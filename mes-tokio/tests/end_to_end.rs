//! End-to-end tests of the tokio driver (the drivers issue's list; the blocking driver has the
//! same in `mes-blocking/tests/end_to_end.rs`):
//!
//! * against the private MariaDB (`scripts/mariadb-test-server.sh`): a 100k-row burst with
//!   rows/s, one ~200 MB transaction streamed with bounded memory (peak RSS printed and
//!   bounded), binlog rotation mid-stream, DDL mid-stream;
//! * against the scripted MySQL 8.4 primary (`mes_testkit::TestPrimary`): misconfigured
//!   servers, a purged GTID start and a wrong CA fail `start` with typed errors; and
//!   caching_sha2 full auth over verified TLS + GTID dump + a heartbeat timeout + automatic
//!   reconnect delivers every change of the served corpus files exactly once.
//!
//! Without a server the MariaDB tests print a loud SKIPPED (a failure under
//! `MES_REQUIRE_SERVER=1`); without the corpus the scripted-primary tests print SKIPPED.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mes_testkit::live::{
    current_position, decode_changes, env, id_of, reset_peak_rss, rss_kib, server, sql, sql_stdin,
};
use mes_testkit::{AuthOutcome, AuthPlugin, Fault, PrimaryConfig, TestPrimary};
use mes_tokio::{BinlogStream, Reconnect, StreamConfig, StreamError};
use mysql_binlog_codec::Value;
use mysql_binlog_codec::engine::{ChangeEvent, ChangeKind, EngineConfig, EngineEvent, TableFilter};
use mysql_repl_proto::{ConnectConfig, ProtoError, SslMode, StartPosition, TlsOptions};

/// The MariaDB tests run one at a time: the peak-RSS measurement is process-wide.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn current() -> StartPosition {
    let (file, position) = current_position();
    StartPosition::FilePosition { file, position }
}

fn config(addr: &(String, u16), db: &str, start: StartPosition) -> StreamConfig {
    let server_id = mes_testkit::live::replica_server_id();
    let connect = ConnectConfig {
        user: env("MES_TEST_REPL_USER").unwrap(),
        password: env("MES_TEST_REPL_PASSWORD").unwrap(),
        server_id,
        tls: TlsOptions {
            mode: SslMode::Preferred,
            ..TlsOptions::default()
        },
        start,
        heartbeat_period: Duration::from_millis(500),
        read_timeout: Duration::from_secs(30),
        ..ConnectConfig::default()
    };
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

fn fresh_db(tag: &str, table: &str) -> String {
    let db = format!("mes_e2e_tok_{tag}_{}", std::process::id());
    sql(&format!("DROP DATABASE IF EXISTS {db}"));
    sql(&format!("CREATE DATABASE {db}"));
    sql(&format!("CREATE TABLE {db}.t ({table})"));
    db
}

/// The next change or statement, failing the test on an error, the end, or `deadline`.
async fn next_event(stream: &mut BinlogStream, deadline: Instant) -> EngineEvent {
    loop {
        assert!(Instant::now() < deadline, "timed out waiting for events");
        match tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
            Ok(Some(Ok(ev))) => return ev,
            Ok(Some(Err(e))) => panic!("stream failed: {e}"),
            Ok(None) => panic!("stream ended"),
            Err(_) => {}
        }
    }
}

/// Multi-row INSERT statements for ids `from..=to`, `per` rows each.
fn insert_statements(db: &str, from: i64, to: i64, per: i64) -> Vec<String> {
    let mut out = Vec::new();
    let mut id = from;
    while id <= to {
        let end = (id + per - 1).min(to);
        let values: Vec<String> = (id..=end).map(|i| format!("({i},'v{i}')")).collect();
        out.push(format!("INSERT INTO {db}.t VALUES {}", values.join(",")));
        id = end + 1;
    }
    out
}

/// Item 1: a 100k-row burst in a few big multi-row INSERTs, streamed completely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_100k_rows_streams_completely() {
    let Some(addr) = server() else { return };
    let _serial = SERIAL.lock().await;
    const N: i64 = 100_000;
    let db = fresh_db("burst", "id BIGINT PRIMARY KEY, v VARCHAR(40) NOT NULL");
    let mut stream = BinlogStream::start(config(&addr, &db, current()))
        .await
        .unwrap();
    let started = Instant::now();
    let writer = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            for s in insert_statements(&db, 1, N, 25_000) {
                sql_stdin(&s);
            }
            started.elapsed()
        })
    };
    let mut seen = vec![false; N as usize + 1];
    let mut n = 0i64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while n < N {
        if let EngineEvent::Change(c) = next_event(&mut stream, deadline).await {
            assert_eq!(c.kind(), ChangeKind::Insert);
            let id = id_of(&c.after().unwrap());
            assert!(
                !std::mem::replace(&mut seen[id as usize], true),
                "id {id} twice"
            );
            n += 1;
        }
    }
    let elapsed = started.elapsed();
    let write_time = writer.await.unwrap();
    if let Ok(Some(Ok(EngineEvent::Change(c)))) =
        tokio::time::timeout(Duration::from_millis(300), stream.next()).await
    {
        panic!("unexpected extra change {:?}", c.kind());
    }
    eprintln!(
        "tokio burst: {N} rows in 4 INSERTs streamed in {:.2} s ({:.0} rows/s end to end; the server took {:.2} s to insert)",
        elapsed.as_secs_f64(),
        N as f64 / elapsed.as_secs_f64(),
        write_time.as_secs_f64()
    );
    stream.stop().await;
    sql(&format!("DROP DATABASE {db}"));
}

/// Item 2: one transaction of `ROWS` rows × 1000 bytes (~200 MB of binlog) streams with
/// bounded memory: the engine streams a transaction bigger than its buffer limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_200mb_transaction_streams_with_bounded_memory() {
    let Some(addr) = server() else { return };
    let _serial = SERIAL.lock().await;
    const ROWS: usize = 200_000;
    const PAD: usize = 1000;
    let db = fresh_db(
        "bigtxn",
        "id INT PRIMARY KEY, pad VARCHAR(1000) CHARACTER SET latin1 NOT NULL",
    );
    let from = current();
    let t = Instant::now();
    sql(&format!(
        "BEGIN; INSERT INTO {db}.t SELECT seq, LPAD(seq, {PAD}, 'x') FROM mes_test.seq_1_to_{ROWS}; COMMIT"
    ));
    let insert_time = t.elapsed();
    eprintln!(
        "tokio big transaction: {ROWS} rows × {PAD} B inserted in {:.1} s",
        insert_time.as_secs_f64()
    );
    let can_reset = reset_peak_rss();
    let (rss_before, hwm_before) = rss_kib();
    let mut c = config(&addr, &db, from);
    c.engine = c
        .engine
        .with_max_buffered_transaction_bytes(16 << 20)
        .with_max_queue_events(1_000)
        .with_max_queue_bytes(8 << 20);
    c.queue_events = 256;
    c.queue_bytes = 4 << 20;
    let mut stream = BinlogStream::start(c).await.unwrap();
    let started = Instant::now();
    let mut seen = vec![false; ROWS + 1];
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while n < ROWS {
        if let EngineEvent::Change(c) = next_event(&mut stream, deadline).await {
            let id = id_of(&c.after().unwrap()) as usize;
            assert!(!std::mem::replace(&mut seen[id], true), "id {id} twice");
            match &c.after().unwrap().unwrap().values[1] {
                Some(Value::String { bytes, .. }) => assert_eq!(bytes.len(), PAD),
                other => panic!("{other:?}"),
            }
            n += 1;
        }
    }
    let elapsed = started.elapsed();
    let (rss_after, hwm_after) = rss_kib();
    stream.stop().await;
    let base = if can_reset { rss_before } else { hwm_before };
    let growth_mb = hwm_after.saturating_sub(base) / 1024;
    eprintln!(
        "tokio big transaction: streamed in {:.1} s ({:.0} rows/s, {:.0} MB/s); RSS before {} MB, after {} MB, peak {} MB (peak reset: {can_reset}); peak growth {growth_mb} MB",
        elapsed.as_secs_f64(),
        ROWS as f64 / elapsed.as_secs_f64(),
        (ROWS * PAD) as f64 / 1e6 / elapsed.as_secs_f64(),
        rss_before / 1024,
        rss_after / 1024,
        hwm_after / 1024,
    );
    assert!(
        growth_mb < 150,
        "peak RSS grew by {growth_mb} MB for a ~{} MB transaction",
        ROWS * PAD / 1_000_000
    );
    sql(&format!("DROP DATABASE {db}"));
}

/// Item 3: `FLUSH BINARY LOGS` between batches: every row once, the positions' files change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_rotation_mid_stream() {
    let Some(addr) = server() else { return };
    let _serial = SERIAL.lock().await;
    let db = fresh_db("rotate", "id BIGINT PRIMARY KEY, v VARCHAR(40) NOT NULL");
    let (first_file, _) = current_position();
    let mut stream = BinlogStream::start(config(&addr, &db, current()))
        .await
        .unwrap();
    const BATCHES: i64 = 5;
    const PER: i64 = 400;
    let mut files = Vec::<String>::new();
    let mut ids = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for b in 0..BATCHES {
        let stmts = insert_statements(&db, b * PER + 1, (b + 1) * PER, 100);
        sql_stdin(&stmts.join(";"));
        sql("FLUSH BINARY LOGS");
        while (ids.len() as i64) < (b + 1) * PER {
            if let EngineEvent::Change(c) = next_event(&mut stream, deadline).await {
                assert!(
                    ids.insert(id_of(&c.after().unwrap())),
                    "a row arrived twice"
                );
                let file = c.position().file.to_string();
                if files.last() != Some(&file) {
                    files.push(file);
                }
            }
        }
    }
    sql(&format!("INSERT INTO {db}.t VALUES (0, 'last')"));
    let last = loop {
        if let EngineEvent::Change(c) = next_event(&mut stream, deadline).await {
            break c;
        }
    };
    assert_eq!(id_of(&last.after().unwrap()), 0);
    files.push(last.position().file.to_string());
    assert_eq!(ids.len() as i64, BATCHES * PER);
    assert_eq!(
        files.len() as i64,
        BATCHES + 1,
        "one binlog file per batch: {files:?}"
    );
    assert_eq!(files[0], first_file);
    let distinct: BTreeSet<_> = files.iter().collect();
    assert_eq!(distinct.len(), files.len(), "{files:?}");
    stream.stop().await;
    sql(&format!("DROP DATABASE {db}"));
}

/// Item 4: ALTER TABLE ADD COLUMN between batches: column counts and names before and after,
/// the DDL as a statement event in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_mid_stream() {
    let Some(addr) = server() else { return };
    let _serial = SERIAL.lock().await;
    let db = fresh_db("ddl", "id BIGINT PRIMARY KEY, a VARCHAR(20) NOT NULL");
    let mut stream = BinlogStream::start(config(&addr, &db, current()))
        .await
        .unwrap();
    sql(&format!(
        "INSERT INTO {db}.t VALUES (1,'one'),(2,'two'),(3,'three')"
    ));
    // With `db` as the default database: the engine filters statements by their default
    // database only (see the blocking driver's test).
    sql(&format!(
        "USE {db}; ALTER TABLE t ADD COLUMN b INT NOT NULL DEFAULT 7"
    ));
    sql(&format!(
        "INSERT INTO {db}.t VALUES (4,'four',40),(5,'five',50); UPDATE {db}.t SET b = 8 WHERE id = 1"
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut events = Vec::new();
    while events.len() < 7 {
        events.push(next_event(&mut stream, deadline).await);
    }
    let names = |c: &ChangeEvent| c.table().column_names.clone().unwrap();
    for ev in &events[..3] {
        let EngineEvent::Change(c) = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(c.after().unwrap().unwrap().values.len(), 2);
        assert_eq!(names(c), ["id", "a"]);
    }
    let EngineEvent::Statement(s) = &events[3] else {
        panic!("expected the DDL, got {:?}", events[3])
    };
    assert!(s.is_ddl, "{s:?}");
    assert_eq!(s.database, db);
    assert!(s.statement.to_uppercase().contains("ADD COLUMN"), "{s:?}");
    for ev in &events[4..] {
        let EngineEvent::Change(c) = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(c.after().unwrap().unwrap().values.len(), 3);
        assert_eq!(names(c), ["id", "a", "b"]);
    }
    stream.stop().await;
    sql(&format!("DROP DATABASE {db}"));
}

// ---- The scripted MySQL 8.4 primary ----

const GTID_FILES: [&str; 2] = [
    "percona-binlog-server/data_80045_gtid__binlog.000001",
    "percona-binlog-server/data_80045_gtid__binlog.000002",
];

fn corpus(rel: &str) -> Option<std::path::PathBuf> {
    let p = mes_testkit::corpus_file(rel);
    if p.is_none() {
        eprintln!("SKIPPED: corpus file {rel} not found (set MES_CORPUS_DIR)");
    }
    p
}

fn primary_config(file: &std::path::Path) -> PrimaryConfig {
    PrimaryConfig::new()
        .account("u", "p", AuthPlugin::CachingSha2Password)
        .warm_cache("u")
        .binlog_file(file)
}

fn primary_stream_config(p: &TestPrimary, start: StartPosition) -> StreamConfig {
    let connect = ConnectConfig {
        user: "u".into(),
        password: "p".into(),
        tls: TlsOptions {
            mode: SslMode::Disabled,
            ..TlsOptions::default()
        },
        start,
        stop_at_end: true,
        read_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        ..ConnectConfig::default()
    };
    let mut c = StreamConfig::new("127.0.0.1", p.port(), connect);
    c.schema_lookup = false;
    c.reconnect.max_attempts = 0;
    c
}

fn file_start(file: &std::path::Path) -> StartPosition {
    StartPosition::FilePosition {
        file: file.file_name().unwrap().to_string_lossy().into_owned(),
        position: 4,
    }
}

/// Item 5: misconfigured servers, a purged GTID start and a wrong CA: typed `start` errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_fails_start_typed() {
    let Some(file) = corpus(GTID_FILES[0]) else {
        return;
    };
    for (var, value) in [
        ("log_bin", "OFF"),
        ("binlog_format", "STATEMENT"),
        ("binlog_row_image", "MINIMAL"),
    ] {
        let p = TestPrimary::start(primary_config(&file).variable(var, value)).unwrap();
        match BinlogStream::start(primary_stream_config(&p, file_start(&file))).await {
            Err(StreamError::Proto(ProtoError::Config(m))) => {
                assert!(m.contains(var) && m.contains(value), "{var}: {m}");
            }
            Err(e) => panic!("{var}={value}: unexpected error {e:?}"),
            Ok(_) => panic!("{var}={value}: started"),
        }
    }
    // Purged GTIDs the start set has not seen.
    let uuid = "5b2f1c3e-8d4a-11ef-9c1e-0242ac120002";
    let p = TestPrimary::start(
        primary_config(&file)
            .variable("gtid_mode", "ON")
            .variable("gtid_purged", &format!("{uuid}:1-100")),
    )
    .unwrap();
    let start = StartPosition::MysqlGtidSet(format!("{uuid}:1-50"));
    match BinlogStream::start(primary_stream_config(&p, start)).await {
        Err(StreamError::Proto(ProtoError::PositionUnavailable(m))) => {
            assert!(m.contains("gtid_purged"), "{m}")
        }
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("started"),
    }
    // ERR 1236 from the dump.
    let p = TestPrimary::start(primary_config(&file).fault(Fault::purged_binlogs())).unwrap();
    let purged = p
        .variables()
        .get("gtid_purged")
        .cloned()
        .unwrap_or_default();
    let err = match BinlogStream::start(primary_stream_config(
        &p,
        StartPosition::MysqlGtidSet(purged),
    ))
    .await
    {
        Err(e) => e,
        Ok(mut s) => match s.next().await {
            Some(Err(e)) => e,
            other => panic!("{other:?}"),
        },
    };
    assert!(
        matches!(&err, StreamError::Proto(ProtoError::PositionUnavailable(m)) if m.contains("1236")),
        "{err:?}"
    );
    // A wrong CA (another primary's).
    let p = TestPrimary::start(primary_config(&file).tls(true)).unwrap();
    let other = TestPrimary::start(primary_config(&file).tls(true)).unwrap();
    let mut c = primary_stream_config(&p, file_start(&file));
    c.connect.tls = TlsOptions {
        mode: SslMode::VerifyCa,
        ca_file: other.ca_pem_path().map(Into::into),
        ..TlsOptions::default()
    };
    match BinlogStream::start(c.clone()).await {
        Err(StreamError::Proto(ProtoError::Tls(_))) => {}
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("connected with a wrong CA"),
    }
    c.connect.tls.ca_file = p.ca_pem_path().map(Into::into);
    let mut s = BinlogStream::start(c).await.unwrap();
    s.stop().await;
}

/// Item 6: caching_sha2 full auth over verified TLS, a GTID dump, a silent stall that the
/// read deadline turns into a reconnect, and the stream ends (`stop_at_end`) with every change
/// of the served files exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_gtid_heartbeat_timeout_and_reconnect_deliver_everything_once() {
    let files: Vec<_> = match GTID_FILES
        .iter()
        .map(|f| corpus(f))
        .collect::<Option<Vec<_>>>()
    {
        Some(f) => f,
        None => return,
    };
    let expected = decode_changes(&files);
    assert!(expected.len() >= 8, "corpus has {} changes", expected.len());
    let p = TestPrimary::start(
        PrimaryConfig::new()
            .tls(true)
            .account("cold", "sesame ☃", AuthPlugin::CachingSha2Password)
            .binlog_file(&files[0])
            .binlog_file(&files[1])
            .fault(Fault::StallBeforeEvent {
                event: 9,
                heartbeats: false,
            }),
    )
    .unwrap();
    let purged = p
        .variables()
        .get("gtid_purged")
        .cloned()
        .unwrap_or_default();
    let mut c = primary_stream_config(&p, StartPosition::MysqlGtidSet(purged));
    c.connect.user = "cold".into();
    c.connect.password = "sesame ☃".into();
    c.connect.tls = TlsOptions {
        mode: SslMode::VerifyIdentity,
        ca_file: p.ca_pem_path().map(Into::into),
        ..TlsOptions::default()
    };
    c.connect.heartbeat_period = Duration::from_millis(200);
    c.connect.read_timeout = Duration::from_millis(1500);
    c.reconnect = Reconnect {
        max_attempts: 5,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        ..Reconnect::default()
    };
    let started = Instant::now();
    let mut stream = BinlogStream::start(c).await.unwrap();
    let mut got = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("the stream did not end");
        match ev {
            None => break,
            Some(Ok(EngineEvent::Change(c))) => got.push(c),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("stream failed: {e}"),
        }
    }
    let log = p.log();
    let dumps: Vec<_> = log.iter().flat_map(|l| l.dumps().cloned()).collect();
    assert_eq!(dumps.len(), 2, "a stalled dump and the resumed one");
    assert!(dumps.iter().all(|d| d.gtid_protocol), "GTID dumps");
    let auth: Vec<_> = log
        .iter()
        .filter(|l| l.user.as_deref() == Some("cold"))
        .filter_map(|l| l.auth.clone())
        .collect();
    assert_eq!(auth, [AuthOutcome::FullAuthTls, AuthOutcome::FastAuth]);
    eprintln!(
        "tokio scripted primary: {} changes over 2 dumps in {:.1} s",
        got.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(got.len(), expected.len(), "every change once");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(
            (
                &g.position(),
                g.kind(),
                &g.gtid(),
                &g.before().unwrap(),
                &g.after().unwrap()
            ),
            (
                &e.position(),
                e.kind(),
                &e.gtid(),
                &e.before().unwrap(),
                &e.after().unwrap()
            )
        );
    }
    assert!(stream.checkpoint_string().starts_with("gtid:"));
}
