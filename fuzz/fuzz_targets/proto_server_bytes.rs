//! Fuzz the replication client with arbitrary server bytes: whatever the server sends, the
//! state machine must not panic and must not buffer more than its limits allow.
//!
//! Input: byte 0 picks options (TLS mode, start position kind, chunk size); the rest is what the
//! "server" sends, fed in chunks with a fake clock that advances per chunk.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mysql_repl_proto::{ConnectConfig, Connection, Output, SslMode, StartPosition, TlsOptions};

const CHUNKS: [usize; 8] = [1, 2, 3, 7, 19, 64, 512, 4096];

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let mode = match ctl & 3 {
        0 => SslMode::Disabled,
        1 => SslMode::Preferred,
        _ => SslMode::Required,
    };
    let start = match (ctl >> 2) & 3 {
        0 => StartPosition::Current,
        1 => StartPosition::FilePosition { file: "binlog.000001".into(), position: 4 },
        2 => StartPosition::MysqlGtidSet("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:tag:1".into()),
        _ => StartPosition::MariaGtid("0-1-5".into()),
    };
    let config = ConnectConfig {
        user: "u".into(),
        password: "p".into(),
        tls: TlsOptions { mode, ..TlsOptions::default() },
        start,
        allow_public_key_retrieval: ctl & 0x10 != 0,
        max_event_size: 1 << 20,
        ..ConnectConfig::default()
    };
    let chunk = CHUNKS[usize::from(ctl >> 5)];
    let mut now = Instant::now();
    let Ok(mut conn) = Connection::new(config, now) else { return };
    let mut closed = false;
    let drain = |conn: &mut Connection, closed: &mut bool| loop {
        match conn.poll_output() {
            Output::Wait(_) => break,
            Output::Closed(_) => *closed = true,
            _ => {}
        }
    };
    drain(&mut conn, &mut closed);
    for piece in rest.chunks(chunk) {
        if closed {
            break;
        }
        now += Duration::from_millis(10);
        conn.handle_input(now, piece);
        drain(&mut conn, &mut closed);
    }
    conn.handle_timeout(now + Duration::from_secs(3600));
    drain(&mut conn, &mut closed);
    conn.handle_eof();
    drain(&mut conn, &mut closed);
});
