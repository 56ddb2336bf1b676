//! Column names from the side connection on both runtime flavours (a MySQL 5.7 binlog without
//! names, served by the scripted primary with a scripted information_schema answer).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mes_testkit::{AuthPlugin, PrimaryConfig, ScriptedResponse, TestPrimary};
use mes_tokio::{BinlogStream, StreamConfig};
use mysql_binlog_codec::engine::EngineEvent;
use mysql_repl_proto::{ConnectConfig, SslMode, StartPosition, TlsOptions};

async fn first_change_names() -> Option<Option<Vec<String>>> {
    let file = mes_testkit::corpus_file("mysql-binlog-connector-rust/mysql-bin.000080")?;
    let p = TestPrimary::start(
        PrimaryConfig::new()
            .account("u", "p", AuthPlugin::CachingSha2Password)
            .warm_cache("u")
            .binlog_file(&file)
            .script_query(
                "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS",
                ScriptedResponse::Rows {
                    columns: vec!["COLUMN_NAME".into(), "DATA_TYPE".into()],
                    rows: vec![vec![Some("id".into()), Some("int".into())]],
                },
            ),
    )
    .unwrap();
    let connect = ConnectConfig {
        user: "u".into(),
        password: "p".into(),
        tls: TlsOptions {
            mode: SslMode::Disabled,
            ..TlsOptions::default()
        },
        start: StartPosition::FilePosition {
            file: "mysql-bin.000080".into(),
            position: 4,
        },
        read_timeout: Duration::from_secs(5),
        ..ConnectConfig::default()
    };
    let mut config = StreamConfig::new("127.0.0.1", p.port(), connect);
    config.reconnect.max_attempts = 0;
    let mut stream = BinlogStream::start(config).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
        {
            Some(Ok(EngineEvent::Change(c))) => {
                stream.stop().await;
                return Some(c.table().column_names.clone());
            }
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_on_a_multi_threaded_runtime() {
    let Some(names) = first_change_names().await else {
        return eprintln!("SKIPPED: corpus not found");
    };
    assert_eq!(names.as_deref(), Some(&["id".to_owned()][..]));
}

#[tokio::test(flavor = "current_thread")]
async fn names_on_a_current_thread_runtime() {
    let Some(names) = first_change_names().await else {
        return eprintln!("SKIPPED: corpus not found");
    };
    assert_eq!(names.as_deref(), Some(&["id".to_owned()][..]));
}
