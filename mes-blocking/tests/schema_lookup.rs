//! Column names from a side connection when the binlog has none (a MySQL 5.7 binlog served by
//! the scripted primary, whose information_schema answer is scripted), and the refusal of names
//! that do not fit the TABLE_MAP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mes_blocking::{BinlogStream, StreamConfig, StreamError};
use mes_testkit::{AuthPlugin, PrimaryConfig, ScriptedResponse, TestPrimary};
use mysql_binlog_codec::engine::{EngineError, EngineEvent};
use mysql_repl_proto::{ConnectConfig, SslMode, StartPosition, TlsOptions};

fn primary(names: &[(&str, &str)]) -> Option<TestPrimary> {
    let file = mes_testkit::corpus_file("mysql-binlog-connector-rust/mysql-bin.000080")?;
    let rows = names
        .iter()
        .map(|(n, t)| vec![Some((*n).to_owned()), Some((*t).to_owned())])
        .collect();
    Some(
        TestPrimary::start(
            PrimaryConfig::new()
                .account("u", "p", AuthPlugin::CachingSha2Password)
                .warm_cache("u")
                .binlog_file(&file)
                .script_query(
                    "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS",
                    ScriptedResponse::Rows {
                        columns: vec!["COLUMN_NAME".into(), "DATA_TYPE".into()],
                        rows,
                    },
                ),
        )
        .unwrap(),
    )
}

fn config(p: &TestPrimary) -> StreamConfig {
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
    let mut c = StreamConfig::new("127.0.0.1", p.port(), connect);
    c.reconnect.max_attempts = 0;
    c
}

#[test]
fn names_come_from_information_schema() {
    let Some(p) = primary(&[("id", "int")]) else {
        eprintln!("SKIPPED: corpus not found (set MES_CORPUS_DIR)");
        return;
    };
    let mut stream = BinlogStream::start(config(&p)).unwrap();
    let ev = loop {
        match stream.next_timeout(Duration::from_secs(10)).unwrap() {
            Ok(Some(EngineEvent::Change(c))) => break c,
            Ok(Some(_)) => {}
            Ok(None) => panic!("no change event"),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(
        ev.table().column_names.as_deref(),
        Some(&["id".to_owned()][..])
    );
    assert!(p.log().iter().any(|l| {
        l.queries
            .iter()
            .any(|q| q.contains("TABLE_SCHEMA = 'a' AND TABLE_NAME = 'b'"))
    }));
    stream.stop();
}

#[test]
fn names_that_do_not_fit_are_refused() {
    let Some(p) = primary(&[("id", "int"), ("extra", "int")]) else {
        return;
    };
    let mut stream = BinlogStream::start(config(&p)).unwrap();
    let err = loop {
        match stream.next_timeout(Duration::from_secs(10)).unwrap() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("expected an error"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, StreamError::Engine(EngineError::SchemaMismatch { .. })),
        "{err}"
    );
}
