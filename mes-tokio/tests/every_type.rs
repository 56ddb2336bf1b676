//! Every MariaDB column type through the tokio driver: edge values inserted, updated to other
//! rows' values and deleted; every value of every change event, rendered as `mes stream`
//! prints it, equals what the server's own `SELECT` returns (`mes_testkit::every_type`, shared
//! with mes-blocking).
//! Without a server: a loud SKIPPED, unless `MES_REQUIRE_SERVER=1` (then failure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use mes_testkit::every_type::EveryType;
use mes_testkit::live::{current_position, env, server};
use mes_tokio::{BinlogStream, StreamConfig};
use mysql_binlog_codec::engine::{EngineConfig, EngineEvent, TableFilter};
use mysql_repl_proto::{ConnectConfig, SslMode, StartPosition, TlsOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_type_equals_select() {
    let Some((host, port)) = server() else {
        return;
    };
    let mut table = tokio::task::spawn_blocking(|| EveryType::create("tok"))
        .await
        .unwrap();
    let (file, position) = current_position();
    let connect = ConnectConfig {
        user: env("MES_TEST_REPL_USER").unwrap(),
        password: env("MES_TEST_REPL_PASSWORD").unwrap(),
        server_id: mes_testkit::live::replica_server_id(),
        tls: TlsOptions {
            mode: SslMode::Required,
            ..TlsOptions::default()
        },
        start: StartPosition::FilePosition { file, position },
        ..ConnectConfig::default()
    };
    let mut config = StreamConfig::new(&host, port, connect);
    config.engine = EngineConfig::default()
        .with_filter(TableFilter::default().with_include_databases(&[&table.db]));
    let mut stream = BinlogStream::start(config).await.unwrap();
    loop {
        let (t, phase) = tokio::task::spawn_blocking(move || {
            let n = table.next_phase();
            (table, n)
        })
        .await
        .unwrap();
        table = t;
        if phase.is_none() {
            break;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !table.phase_done() {
            assert!(Instant::now() < deadline, "timed out waiting for changes");
            match tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
                Ok(Some(Ok(EngineEvent::Change(c)))) => table.check(&c),
                Ok(Some(Ok(other))) => panic!("unexpected event {other:?}"),
                Ok(Some(Err(e))) => panic!("stream failed: {e}"),
                Ok(None) => panic!("stream ended"),
                Err(_) => {}
            }
        }
    }
    stream.stop().await;
    tokio::task::spawn_blocking(move || table.finish())
        .await
        .unwrap();
}
