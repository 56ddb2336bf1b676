//! The blocking driver through a TCP proxy that cuts the connection after a random number of
//! bytes (inside the handshake, inside TLS records, inside packets) many times, while a
//! background thread writes a large workload. The consumer must end with exactly the rows
//! SELECT shows: every insert once, every update and delete applied to the row it saw last
//! (a duplicate or a gap fails at once), including across a restart from a checkpoint string.
//! Without a server: a loud SKIPPED, unless `MES_REQUIRE_SERVER=1` (then failure).
//!
//! The proxy and the model are duplicated in `mes-tokio/tests/fault_proxy.rs` (the drivers are
//! independent crates); keep the two in step. This file also holds two regression tests of
//! the blocking driver: `stop()` with a full queue, and `stop_at_end`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use mes_blocking::{BinlogStream, Reconnect, StreamConfig, StreamError, start_from_string};
use mysql_binlog_codec::Value;
use mysql_binlog_codec::engine::{ChangeEvent, ChangeKind, EngineConfig, EngineEvent, TableFilter};
use mysql_repl_proto::{ConnectConfig, ProtoError, SslMode, StartPosition, TlsOptions};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Rows written at least (more while the proxy still has cuts to make).
const ROWS: i64 = 5_000;
/// Connection cuts the proxy makes.
const CUTS: usize = 20;

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn server() -> Option<(String, u16)> {
    let host = env("MES_TEST_HOST");
    let port = env("MES_TEST_PORT").and_then(|p| p.parse().ok());
    if let (Some(h), Some(p)) = (&host, port) {
        if TcpStream::connect((h.as_str(), p)).is_ok() {
            return Some((h.clone(), p));
        }
    }
    if env("MES_REQUIRE_SERVER").as_deref() == Some("1") {
        panic!("MES_REQUIRE_SERVER=1 but no test server answers (run scripts/test.sh)");
    }
    eprintln!(
        "SKIPPED: no test server (run scripts/test.sh, or scripts/mariadb-test-server.sh start and eval its env)"
    );
    None
}

fn sql(query: &str) -> String {
    let cnf = env("MES_TEST_CLIENT_CNF").unwrap();
    let out = Command::new("mariadb")
        .arg(format!("--defaults-file={cnf}"))
        .args(["-N", "-B", "-e", query])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
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

fn config(port: u16, db: &str, start: StartPosition) -> StreamConfig {
    // A distinct replica server_id per stream: the server refuses two dumps with the same id.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let server_id = 9000
        + (std::process::id() % 1000) * 10
        + NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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
        read_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        ..ConnectConfig::default()
    };
    let mut c = StreamConfig::new("127.0.0.1", port, connect);
    c.engine =
        EngineConfig::default().with_filter(TableFilter::default().with_include_databases(&[db]));
    c.queue_events = 64;
    c.reconnect = Reconnect {
        max_attempts: 20,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    };
    c
}

/// A TCP proxy on 127.0.0.1 (std threads) that cuts connections after random byte counts.
mod proxy {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use rand::{Rng, SeedableRng, rngs::StdRng};

    struct Shared {
        upstream: u16,
        stop: AtomicBool,
        /// Cuts still to make.
        cuts_left: AtomicUsize,
        /// Cuts made (total bytes the connection had forwarded at the cut).
        cut_at: Mutex<Vec<usize>>,
        connections: AtomicUsize,
        rng: Mutex<StdRng>,
        sockets: Mutex<Vec<TcpStream>>,
        pumps: Mutex<Vec<JoinHandle<()>>>,
    }

    struct Conn {
        client: TcpStream,
        server: TcpStream,
        /// Cut once this many bytes (both directions together) went through.
        budget: usize,
        bytes: AtomicUsize,
        decided: AtomicBool,
    }

    /// The proxy; dropping it stops it and joins every thread it started.
    pub struct FaultProxy {
        /// Port the proxy listens on (127.0.0.1).
        pub port: u16,
        shared: Arc<Shared>,
        accept: Option<JoinHandle<()>>,
    }

    impl FaultProxy {
        pub fn start(upstream: u16, cuts: usize, seed: u64) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let port = listener.local_addr().unwrap().port();
            let shared = Arc::new(Shared {
                upstream,
                stop: AtomicBool::new(false),
                cuts_left: AtomicUsize::new(cuts),
                cut_at: Mutex::new(Vec::new()),
                connections: AtomicUsize::new(0),
                rng: Mutex::new(StdRng::seed_from_u64(seed)),
                sockets: Mutex::new(Vec::new()),
                pumps: Mutex::new(Vec::new()),
            });
            let s = shared.clone();
            let accept = std::thread::spawn(move || {
                while !s.stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => s.clone().serve(client),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                }
            });
            Self {
                port,
                shared,
                accept: Some(accept),
            }
        }

        /// Bytes forwarded on the connection at each cut made so far.
        pub fn cuts(&self) -> Vec<usize> {
            self.shared.cut_at.lock().unwrap().clone()
        }

        /// A counter of cuts made, for another thread.
        pub fn cut_counter(&self) -> impl Fn() -> usize + Send + 'static {
            let s = self.shared.clone();
            move || s.cut_at.lock().unwrap().len()
        }

        pub fn connections(&self) -> usize {
            self.shared.connections.load(Ordering::SeqCst)
        }
    }

    impl Drop for FaultProxy {
        fn drop(&mut self) {
            self.shared.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.accept.take() {
                let _ = t.join();
            }
            for s in self.shared.sockets.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
            let pumps: Vec<_> = self.shared.pumps.lock().unwrap().drain(..).collect();
            for t in pumps {
                let _ = t.join();
            }
        }
    }

    impl Shared {
        fn serve(self: Arc<Self>, client: TcpStream) {
            client.set_nonblocking(false).unwrap();
            let Ok(server) = TcpStream::connect(("127.0.0.1", self.upstream)) else {
                return;
            };
            self.connections.fetch_add(1, Ordering::SeqCst);
            let budget = {
                let mut rng = self.rng.lock().unwrap();
                if rng.gen_bool(0.3) {
                    // Inside the greeting, the TLS handshake, authentication or setup.
                    rng.gen_range(1..6_000)
                } else {
                    // Inside the event stream.
                    rng.gen_range(6_000..80_000)
                }
            };
            let conn = Arc::new(Conn {
                client: client.try_clone().unwrap(),
                server: server.try_clone().unwrap(),
                budget,
                bytes: AtomicUsize::new(0),
                decided: AtomicBool::new(false),
            });
            {
                let mut socks = self.sockets.lock().unwrap();
                socks.push(client.try_clone().unwrap());
                socks.push(server.try_clone().unwrap());
            }
            let mut pumps = self.pumps.lock().unwrap();
            let directions = [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ];
            for (from, to) in directions {
                let (me, conn) = (self.clone(), conn.clone());
                pumps.push(std::thread::spawn(move || me.pump(from, to, &conn)));
            }
        }

        fn pump(&self, mut from: TcpStream, mut to: TcpStream, conn: &Conn) {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let before = conn.bytes.fetch_add(n, Ordering::SeqCst);
                let mut forward = n;
                let mut cut = false;
                if before + n >= conn.budget
                    && !conn.decided.swap(true, Ordering::SeqCst)
                    && self
                        .cuts_left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1))
                        .is_ok()
                {
                    forward = conn.budget.saturating_sub(before).min(n);
                    cut = true;
                }
                if to.write_all(&buf[..forward]).is_err() {
                    if cut {
                        // The peer had closed already: that was no cut; make it on another.
                        self.cuts_left.fetch_add(1, Ordering::SeqCst);
                    }
                    break;
                }
                if cut {
                    self.cut_at.lock().unwrap().push(before + forward);
                    let _ = conn.client.shutdown(Shutdown::Both);
                    let _ = conn.server.shutdown(Shutdown::Both);
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        }
    }
}

/// A value as the `mariadb -B` client prints it.
fn text(v: &Option<Value<'_>>) -> String {
    match v {
        None | Some(Value::Null) => "NULL".into(),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::String { bytes, .. }) => String::from_utf8_lossy(bytes).into_owned(),
        Some(other) => panic!("unexpected value {other:?}"),
    }
}

fn row_text(r: &Option<mysql_binlog_codec::Row<'static>>) -> Vec<String> {
    r.as_ref().unwrap().values.iter().map(text).collect()
}

fn id_of(r: &Option<mysql_binlog_codec::Row<'static>>) -> i64 {
    match r.as_ref().unwrap().values[0] {
        Some(Value::Int(id)) => id,
        ref other => panic!("{other:?}"),
    }
}

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

/// The table as the change events say it is; refuses duplicates and gaps at once.
#[derive(Clone, Default)]
struct Model {
    rows: BTreeMap<i64, Vec<String>>,
    inserted: BTreeMap<i64, usize>,
    changes: usize,
}

impl Model {
    fn apply(&mut self, c: &ChangeEvent) {
        self.changes += 1;
        match c.kind {
            ChangeKind::Insert => {
                let id = id_of(&c.after);
                *self.inserted.entry(id).or_default() += 1;
                assert_eq!(self.inserted[&id], 1, "id {id} inserted twice");
                self.rows.insert(id, row_text(&c.after));
            }
            ChangeKind::Update => {
                let id = id_of(&c.before);
                assert_eq!(
                    self.rows.get(&id),
                    Some(&row_text(&c.before)),
                    "update of {id}: before image is not the current row (duplicate or gap)"
                );
                self.rows.insert(id, row_text(&c.after));
            }
            ChangeKind::Delete => {
                let id = id_of(&c.before);
                assert_eq!(
                    self.rows.remove(&id),
                    Some(row_text(&c.before)),
                    "delete of {id}: before image is not the current row (duplicate or gap)"
                );
            }
        }
    }
}

/// Transactions of 1–50 inserted rows (single-row and multi-row statements), some with updates
/// and deletes of earlier rows, until `ROWS` rows and the proxy's cuts are done (40 s at most);
/// then the sentinel row 0. Returns (transactions, rows inserted).
fn workload(db: &str, seed: u64, cuts_made: impl Fn() -> usize) -> (usize, i64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut live: Vec<i64> = Vec::new();
    let mut next_id = 1i64;
    let mut txns = 0;
    let started = Instant::now();
    let pad = |rng: &mut StdRng| -> String {
        let n = rng.gen_range(0..200);
        (0..n)
            .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
            .collect()
    };
    while (next_id <= ROWS || cuts_made() < CUTS) && started.elapsed() < Duration::from_secs(40) {
        let k = rng.gen_range(1..=50);
        let mut s = String::from("BEGIN;");
        let ids: Vec<i64> = (next_id..next_id + k).collect();
        next_id += k;
        if rng.gen_bool(0.5) {
            let values: Vec<String> = ids
                .iter()
                .map(|id| format!("({id}, 0, 'i{id}', '{}')", pad(&mut rng)))
                .collect();
            s.push_str(&format!("INSERT INTO {db}.t VALUES {};", values.join(",")));
        } else {
            for id in &ids {
                s.push_str(&format!(
                    "INSERT INTO {db}.t VALUES ({id}, 0, 'i{id}', '{}');",
                    pad(&mut rng)
                ));
            }
        }
        if !live.is_empty() && rng.gen_bool(0.3) {
            let pick: Vec<String> = (0..rng.gen_range(1..=5))
                .map(|_| live[rng.gen_range(0..live.len())].to_string())
                .collect();
            s.push_str(&format!(
                "UPDATE {db}.t SET n = n + 1, v = CONCAT('u', id, '-', n) WHERE id IN ({});",
                pick.join(",")
            ));
        }
        if live.len() > 10 && rng.gen_bool(0.15) {
            let mut gone = Vec::new();
            for _ in 0..rng.gen_range(1..=3) {
                gone.push(live.swap_remove(rng.gen_range(0..live.len())).to_string());
            }
            s.push_str(&format!(
                "DELETE FROM {db}.t WHERE id IN ({});",
                gone.join(",")
            ));
        }
        s.push_str("COMMIT;");
        sql(&s);
        live.extend(ids);
        txns += 1;
    }
    sql(&format!("INSERT INTO {db}.t VALUES (0, 0, 'sentinel', '')"));
    (txns, next_id - 1)
}

/// `BinlogStream::start` through the proxy: the first connection may be cut too, so a
/// network-level failure is retried.
fn start(port: u16, db: &str, from: StartPosition) -> BinlogStream {
    let mut tries = 0;
    loop {
        match BinlogStream::start(config(port, db, from.clone())) {
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

#[test]
fn every_row_exactly_once_through_a_cutting_proxy() {
    let Some((_, server_port)) = server() else {
        return;
    };
    let seed: u64 = env("MES_FAULT_SEED")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("fault proxy seed {seed} (MES_FAULT_SEED to replay)");
    let db = format!("mes_blk_fault_{}", std::process::id());
    sql(&format!("DROP DATABASE IF EXISTS {db}"));
    sql(&format!("CREATE DATABASE {db}"));
    sql(&format!(
        "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, n INT NOT NULL, v VARCHAR(64) NOT NULL, pad VARCHAR(200) NOT NULL)"
    ));
    let proxy = proxy::FaultProxy::start(server_port, CUTS, seed);
    let started = Instant::now();
    let mut stream = start(proxy.port, &db, current());

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
        let c = match stream.next_timeout(Duration::from_millis(500)) {
            Some(Ok(Some(EngineEvent::Change(c)))) => c,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("stream failed: {e}"),
            None => panic!("stream ended"),
        };
        if stream.checkpoint_string() != snapshot.0 {
            snapshot = (stream.checkpoint_string(), model.clone());
        }
        model.apply(&c);
        if c.kind == ChangeKind::Insert && id_of(&c.after) == 0 {
            break;
        }
        if !restarted && model.inserted.len() as i64 >= ROWS / 2 {
            // Stop, and resume a new stream from the persisted checkpoint string: what was
            // delivered after the checkpoint comes again and must apply to the snapshot.
            restarted = true;
            stream.stop();
            redelivered = model.changes - snapshot.1.changes;
            model = snapshot.1.clone();
            stream = start(proxy.port, &db, start_from_string(&snapshot.0).unwrap());
        }
    }
    let (txns, rows) = writer.join().unwrap();
    stream.stop();
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
        "blocking: {rows} rows in {txns} txns, {} changes, {} rows at the end; {} cuts at bytes {:?}; \
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

/// Regression: `stop()` (and so `Drop`) while the reader thread is blocked on a full queue in
/// the middle of handing out a transaction bigger than the queue must not hang.
#[test]
fn stop_with_a_full_queue_does_not_hang() {
    let Some((_, server_port)) = server() else {
        return;
    };
    let db = format!("mes_blk_fullq_{}", std::process::id());
    sql(&format!("DROP DATABASE IF EXISTS {db}"));
    sql(&format!("CREATE DATABASE {db}"));
    sql(&format!(
        "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, n INT NOT NULL, v VARCHAR(64) NOT NULL, pad VARCHAR(200) NOT NULL)"
    ));
    let mut c = config(server_port, &db, current());
    c.queue_events = 2;
    let mut stream = BinlogStream::start(c).unwrap();
    let mut stmts = String::from("BEGIN;");
    for id in 1..=300 {
        stmts.push_str(&format!("INSERT INTO {db}.t VALUES ({id}, 0, 'x', '');"));
    }
    stmts.push_str("COMMIT;");
    sql(&stmts);
    assert!(matches!(
        stream.next_timeout(Duration::from_secs(10)),
        Some(Ok(Some(EngineEvent::Change(_))))
    ));
    // Let the reader fill the queue and block on it.
    std::thread::sleep(Duration::from_millis(200));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let stopper = std::thread::spawn(move || {
        stream.stop();
        let _ = done_tx.send(());
    });
    let stopped = done_rx.recv_timeout(Duration::from_secs(5)).is_ok();
    assert!(stopped, "stop() hung with a full queue");
    stopper.join().unwrap();
    sql(&format!("DROP DATABASE {db}"));
}

/// Regression: with `stop_at_end` the stream ends after the server's last event (it used to
/// take the server's EOF for a lost connection and reconnect forever).
#[test]
fn stop_at_end_ends_the_stream() {
    let Some((_, server_port)) = server() else {
        return;
    };
    let db = format!("mes_blk_end_{}", std::process::id());
    sql(&format!("DROP DATABASE IF EXISTS {db}"));
    sql(&format!("CREATE DATABASE {db}"));
    sql(&format!(
        "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, n INT NOT NULL, v VARCHAR(64) NOT NULL, pad VARCHAR(200) NOT NULL)"
    ));
    let from = current();
    let mut stmts = String::new();
    for id in 1..=10 {
        stmts.push_str(&format!("INSERT INTO {db}.t VALUES ({id}, 0, 'e', '');"));
    }
    sql(&stmts);
    let mut c = config(server_port, &db, from);
    c.connect.stop_at_end = true;
    let mut stream = BinlogStream::start(c).unwrap();
    let mut model = Model::default();
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a stop_at_end stream must end (not reconnect forever)"
        );
        match stream.next_timeout(Duration::from_millis(200)) {
            None => break,
            Some(Ok(Some(EngineEvent::Change(c)))) => model.apply(&c),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("{e}"),
        }
    }
    assert_eq!(model.inserted.len(), 10);
    sql(&format!("DROP DATABASE {db}"));
}
