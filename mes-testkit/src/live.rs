//! Helpers for tests that use the private MariaDB the test script starts (`scripts/test.sh`
//! exports `MES_TEST_*`): finding the server (a loud SKIPPED without one, a failure under
//! `MES_REQUIRE_SERVER=1`), running SQL through the `mariadb` client, a TCP proxy that cuts
//! connections, and a model of a test table that refuses duplicated or missing changes.
//! Test support: a failed step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use mysql_binlog_codec::Value;
use mysql_binlog_codec::engine::{ChangeEvent, ChangeKind};
use mysql_repl_proto::{ConnectConfig, SslMode, StartPosition, TlsOptions};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Rows the chaos workload writes at least.
pub const ROWS: i64 = 5_000;
/// Connection cuts the chaos tests ask of the proxy.
pub const CUTS: usize = 20;

/// An environment variable.
pub fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// The test server `(host, port)`, or `None` after printing why (panics under
/// `MES_REQUIRE_SERVER=1`).
pub fn server() -> Option<(String, u16)> {
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

/// Run SQL through the `mariadb` client; the trimmed tab-separated output.
pub fn sql(query: &str) -> String {
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

/// A replica `server_id` for one test stream: unique within this process, and in a range of its
/// own per process id. The server refuses two dumps with the same id (MariaDB error 4052), and
/// tests stream in parallel.
pub fn replica_server_id() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 64;
    10_000 + (std::process::id() % 50_000) * 64 + n
}

/// The connection settings the driver tests share for the replication account: TLS preferred,
/// a fresh [`replica_server_id`], 500 ms heartbeats, 5 s read and connect timeouts.
pub fn repl_connect(user: String, password: String, start: StartPosition) -> ConnectConfig {
    ConnectConfig {
        user,
        password,
        server_id: replica_server_id(),
        tls: TlsOptions {
            mode: SslMode::Preferred,
            ..TlsOptions::default()
        },
        start,
        heartbeat_period: Duration::from_millis(500),
        read_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        ..ConnectConfig::default()
    }
}

/// The server's current binlog file and position (`SHOW MASTER STATUS`).
pub fn current_position() -> (String, u64) {
    let status = sql("SHOW MASTER STATUS");
    let mut p = status.split('\t');
    let file = p.next().unwrap_or_default().to_owned();
    (file, p.next().and_then(|p| p.parse().ok()).unwrap_or(4))
}

/// A TCP proxy on 127.0.0.1 (std threads) that cuts connections after random byte counts.
pub mod proxy {
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
        /// Listen on 127.0.0.1 and forward to `upstream`, cutting `cuts` connections.
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

        /// Connections accepted so far.
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
pub fn text(v: &Option<Value<'_>>) -> String {
    match v {
        None | Some(Value::Null) => "NULL".into(),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::String { bytes, .. }) => String::from_utf8_lossy(bytes).into_owned(),
        Some(other) => panic!("unexpected value {other:?}"),
    }
}

/// A row image as text values.
pub fn row_text(r: &Option<mysql_binlog_codec::Row<'_>>) -> Vec<String> {
    r.as_ref().unwrap().values.iter().map(text).collect()
}

/// The integer id in column 0.
pub fn id_of(r: &Option<mysql_binlog_codec::Row<'_>>) -> i64 {
    match r.as_ref().unwrap().values[0] {
        Some(Value::Int(id)) => id,
        ref other => panic!("{other:?}"),
    }
}

/// `SELECT * FROM db.t` keyed by id.
pub fn select_rows(db: &str) -> BTreeMap<i64, Vec<String>> {
    sql(&format!("SELECT * FROM {db}.t ORDER BY id"))
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let cols: Vec<String> = l.split('\t').map(str::to_owned).collect();
            (cols[0].parse().unwrap(), cols)
        })
        .collect()
}

/// Panics, listing the differing ids (at most 20 of each kind), unless `got` equals `want`.
pub fn assert_same_rows(
    got: &BTreeMap<i64, Vec<String>>,
    want: &BTreeMap<i64, Vec<String>>,
    what: &str,
) {
    if got == want {
        return;
    }
    let missing: Vec<_> = want
        .keys()
        .filter(|k| !got.contains_key(k))
        .take(20)
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !want.contains_key(k))
        .take(20)
        .collect();
    let differ: Vec<_> = want
        .iter()
        .filter_map(|(k, v)| got.get(k).filter(|g| *g != v).map(|g| (k, g, v)))
        .take(20)
        .collect();
    panic!(
        "{what}: {} rows vs {} expected; missing ids {missing:?}; extra ids {extra:?}; \
         differing rows (got, expected) {differ:?}",
        got.len(),
        want.len()
    );
}

/// The table as the change events say it is; refuses duplicates and gaps at once.
#[derive(Clone, Default)]
pub struct Model {
    /// Current rows by id.
    pub rows: BTreeMap<i64, Vec<String>>,
    /// Insert count per id (always 1 unless something was duplicated).
    pub inserted: BTreeMap<i64, usize>,
    /// Changes applied.
    pub changes: usize,
}

impl Model {
    /// Apply one change, panicking on a duplicate or a gap.
    pub fn apply(&mut self, c: &ChangeEvent) {
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

/// Transactions of 1–50 inserted rows (single-row and multi-row statements), some with updates
/// and deletes of earlier rows, until `ROWS` rows and the proxy's cuts are done (40 s at most);
/// then the sentinel row 0. Returns (transactions, rows inserted).
pub fn workload(db: &str, seed: u64, cuts_made: impl Fn() -> usize) -> (usize, i64) {
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

/// Run SQL through the `mariadb` client's standard input (for statements longer than one
/// command-line argument may be, 128 KiB on Linux); the trimmed tab-separated output.
pub fn sql_stdin(query: &str) -> String {
    use std::io::Write;
    let cnf = env("MES_TEST_CLIENT_CNF").unwrap();
    let mut child = Command::new("mariadb")
        .arg(format!("--defaults-file={cnf}"))
        .args(["-N", "-B"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let q = query.to_owned();
    // Write from another thread so a large output cannot deadlock against a large input.
    let writer = std::thread::spawn(move || {
        stdin.write_all(q.as_bytes()).unwrap();
        stdin.write_all(b";\n").unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{}…: {}",
        &query[..query.len().min(200)],
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// This process's resident set size now and its peak (`VmRSS`, `VmHWM` of
/// `/proc/self/status`), in KiB; `(0, 0)` where there is no such file.
pub fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Reset the peak resident set size (`VmHWM`) to the current one (Linux:
/// `echo 5 > /proc/self/clear_refs`); false when the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

/// The change events of binlog files decoded directly, one engine per file (positions named
/// after the file): what a driver streaming these files must deliver.
pub fn decode_changes(files: &[std::path::PathBuf]) -> Vec<ChangeEvent> {
    use mysql_binlog_codec::engine::{Engine, EngineConfig, EngineEvent};
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let mut engine = Engine::new(EngineConfig::default().with_file_name(name));
        let mut rest = &bytes[..];
        loop {
            let used = engine.handle_input(rest).unwrap();
            rest = &rest[used..];
            let mut polled = 0;
            while let Some(ev) = engine.poll_event() {
                polled += 1;
                if let EngineEvent::Change(c) = ev {
                    out.push(c);
                }
            }
            if rest.is_empty() {
                break;
            }
            assert!(used > 0 || polled > 0, "the engine is stuck");
        }
    }
    out
}
