//! A MariaDB process restart mid-stream: the tokio driver rides out the downtime with its
//! reconnect policy and ends with exactly the rows the table holds (every id once).
//!
//! It never touches the shared test server: it starts a private second instance
//! (`mes_testkit::restart::PrivateServer`: build dir `build/restart-test-tokio`, port 33067 or
//! `MES_TOKIO_RESTART_TEST_PORT`, so it can run beside mes-blocking's restart test), stops it
//! (SIGTERM to its PID) while a writer inserts rows, starts it again on the same datadir (the
//! binlogs survive) and stops it at the end, also on a panic.
//! Without `mariadbd` installed: a loud SKIPPED, unless `MES_REQUIRE_SERVER=1` (then failure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mes_testkit::live::Model;
use mes_testkit::restart::{self, Capture, PrivateServer};
use mes_tokio::{BinlogStream, Reconnect, StreamConfig};
use mysql_binlog_codec::engine::{ChangeKind, EngineConfig, EngineEvent, TableFilter};
use mysql_repl_proto::StartPosition;

const DB: &str = "mes_restart_tokio";

fn stream_config(server: &PrivateServer, start: StartPosition) -> StreamConfig {
    let mut connect = mes_testkit::live::repl_connect(
        server.var("MES_TEST_REPL_USER"),
        server.var("MES_TEST_REPL_PASSWORD"),
        start,
    );
    connect.connect_timeout = Duration::from_secs(2);
    let mut c = StreamConfig::new("127.0.0.1", server.port(), connect);
    c.engine =
        EngineConfig::default().with_filter(TableFilter::default().with_include_databases(&[DB]));
    // Enough to ride out ~10 s and more of downtime.
    c.reconnect = Reconnect {
        max_attempts: 50,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        ..Reconnect::default()
    };
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restart_mid_stream_delivers_every_row_once() {
    if !restart::can_run() {
        return;
    }
    let started = Instant::now();
    let server = Arc::new(PrivateServer::new(
        "restart-test-tokio",
        "MES_TOKIO_RESTART_TEST_PORT",
        33067,
    ));
    let (file, position) = tokio::task::spawn_blocking({
        let server = server.clone();
        move || {
            server.start();
            server.fresh_db(DB)
        }
    })
    .await
    .unwrap();
    let logs = Arc::new(Mutex::new(String::new()));
    // The driver task logs to the subscriber current when the stream starts.
    let log_guard = tracing::subscriber::set_default(Capture(logs.clone()));
    let start = StartPosition::FilePosition { file, position };
    let mut stream = BinlogStream::start(stream_config(&server, start))
        .await
        .unwrap();
    drop(log_guard);

    // The writer stops and starts the server in a blocking thread meanwhile.
    let writer = tokio::task::spawn_blocking({
        let server = server.clone();
        move || restart::write_through_a_restart(&server, DB)
    });
    // The consumer: every change into the model (which refuses a duplicate or a gap) until the
    // sentinel row 0 arrives.
    let mut model = Model::default();
    let deadline = Instant::now() + Duration::from_secs(50);
    loop {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the sentinel"
        );
        match tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
            Ok(Some(Ok(EngineEvent::Change(c)))) => {
                let sentinel = c.kind() == ChangeKind::Insert
                    && mes_testkit::live::id_of(&c.after().unwrap()) == 0;
                model.apply(&c);
                if sentinel {
                    break;
                }
            }
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(Some(Err(e))) => panic!("stream failed: {e}"),
            Ok(None) => panic!("stream ended"),
        }
    }
    stream.stop().await;
    let writes = writer.await.unwrap();
    let logs = logs.lock().unwrap().clone();
    tokio::task::spawn_blocking(move || {
        restart::check(&server, DB, &model, &writes, &logs);
        eprintln!("restart test: {:.1} s", started.elapsed().as_secs_f64());
        server.sql(&format!("DROP DATABASE {DB}"));
    })
    .await
    .unwrap();
}
