//! MariaDB process-restart tests of the drivers, without touching the shared test server: a
//! private second instance ([`PrivateServer`], its own build dir and port, started and stopped
//! with `scripts/mariadb-test-server.sh`, stopped on drop — also when a test panics), a writer
//! that keeps committing small transactions while the instance is stopped (SIGTERM to its PID)
//! and started again on the same datadir ([`write_through_a_restart`]), a `tracing` subscriber
//! that keeps the driver's log lines ([`Capture`]), and the final checks ([`check`]).
//! Test support: a failed step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::live::{Model, env};

/// Whether `mariadbd` (or `mysqld`) is installed, so a private instance can be started.
pub fn mariadbd_installed() -> bool {
    let in_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let dirs = ["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"];
    in_path
        .iter()
        .map(PathBuf::as_path)
        .chain(dirs.iter().map(Path::new))
        .any(|d| d.join("mariadbd").is_file() || d.join("mysqld").is_file())
}

/// `true` when a restart test can run; else prints a loud SKIPPED (or panics under
/// `MES_REQUIRE_SERVER=1`).
pub fn can_run() -> bool {
    if mariadbd_installed() {
        return true;
    }
    if env("MES_REQUIRE_SERVER").as_deref() == Some("1") {
        panic!("MES_REQUIRE_SERVER=1 but mariadbd is not installed");
    }
    eprintln!("SKIPPED: mariadbd is not installed (the restart test starts its own server)");
    false
}

/// A private MariaDB instance; `Drop` stops it (so does a panic unwinding through the test).
pub struct PrivateServer {
    script: PathBuf,
    build_dir: PathBuf,
    port: u16,
    env: BTreeMap<String, String>,
}

impl PrivateServer {
    /// An instance in `<repo>/build/<name>` on port `port_var`'s value, else `default_port`
    /// (not started yet). Tests that may run at the same time need distinct names and ports.
    pub fn new(name: &str, port_var: &str, default_port: u16) -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let port = env(port_var)
            .and_then(|p| p.parse().ok())
            .unwrap_or(default_port);
        let mut s = Self {
            script: repo.join("scripts/mariadb-test-server.sh"),
            build_dir: repo.join("build").join(name),
            port,
            env: BTreeMap::new(),
        };
        let out = s.script("env");
        s.env = out
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        s
    }

    fn command(&self, cmd: &str) -> Command {
        let mut c = Command::new("bash");
        c.arg(&self.script)
            .arg(cmd)
            .env("MES_BUILD_DIR", &self.build_dir)
            .env("MES_TEST_PORT", self.port.to_string())
            .env_remove("MES_BINLOG_BASENAME");
        c
    }

    /// Run the script with this instance's build dir and port; its stdout.
    fn script(&self, cmd: &str) -> String {
        let out = self.command(cmd).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "mariadb-test-server.sh {cmd}: {stderr}"
        );
        eprint!("{stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Start the instance (a fresh datadir the first time, the same one afterwards).
    pub fn start(&self) {
        self.script("start");
    }

    /// Stop the instance (SIGTERM to the PID the script started).
    pub fn stop(&self) {
        self.script("stop");
    }

    /// The instance's port (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// One of the script's `MES_TEST_*` variables for this instance ("" when unknown).
    pub fn var(&self, k: &str) -> String {
        self.env.get(k).cloned().unwrap_or_default()
    }

    /// Run SQL as root through the `mariadb` client; `Err` with its message on failure.
    pub fn try_sql(&self, query: &str) -> Result<String, String> {
        let out = Command::new("mariadb")
            .arg(format!(
                "--defaults-file={}",
                self.var("MES_TEST_CLIENT_CNF")
            ))
            .args(["-N", "-B", "--connect-timeout=2", "-e", query])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Run SQL as root; the trimmed tab-separated output.
    pub fn sql(&self, query: &str) -> String {
        self.try_sql(query)
            .unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    /// `SELECT * FROM db.t` keyed by id, values as the client prints them.
    pub fn select_rows(&self, db: &str) -> BTreeMap<i64, Vec<String>> {
        self.sql(&format!("SELECT * FROM {db}.t ORDER BY id"))
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let cols: Vec<String> = l.split('\t').map(str::to_owned).collect();
                (cols[0].parse().unwrap(), cols)
            })
            .collect()
    }

    /// A fresh database `db` with `t (id BIGINT PRIMARY KEY, v VARCHAR(40) NOT NULL)`; the
    /// binlog position after it (`SHOW MASTER STATUS`), where a stream of the test starts.
    pub fn fresh_db(&self, db: &str) -> (String, u64) {
        self.sql(&format!("DROP DATABASE IF EXISTS {db}"));
        self.sql(&format!("CREATE DATABASE {db}"));
        self.sql(&format!(
            "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, v VARCHAR(40) NOT NULL)"
        ));
        let status = self.sql("SHOW MASTER STATUS");
        let mut p = status.split('\t');
        let file = p.next().unwrap().to_owned();
        (file, p.next().unwrap().parse().unwrap())
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = self.command("stop").status();
    }
}

/// A `tracing` subscriber that keeps the driver's log lines (INFO and above) in a buffer.
pub struct Capture(pub Arc<Mutex<String>>);

struct Line<'a>(&'a mut String);

impl tracing::field::Visit for Line<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() <= tracing::Level::INFO
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = format!("{}", event.metadata().level());
        event.record(&mut Line(&mut line));
        line.push('\n');
        self.0.lock().unwrap().push_str(&line);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// What the writer did around the restart.
#[derive(Debug, Clone, Copy)]
pub struct Writes {
    /// Rows committed before the server was stopped.
    pub before_stop: i64,
    /// Rows committed in all.
    pub committed: i64,
    /// Transactions that failed (and were retried) while the server was down.
    pub failures: i64,
}

/// Commit small transactions of 1–3 rows into `db.t` (retried while the server is down;
/// `INSERT IGNORE`, so a commit whose answer was lost is not doubled); after 1.5 s stop the
/// server, 2 s later start it again, go on until 20 more rows are in, then insert the sentinel
/// row 0. Blocks until done: the stream under test must be consumed concurrently.
pub fn write_through_a_restart(server: &PrivateServer, db: &str) -> Writes {
    let stop_writing = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicI64::new(0));
    let failures = Arc::new(AtomicI64::new(0));
    let writer = {
        let (stop_writing, committed, failures) =
            (stop_writing.clone(), committed.clone(), failures.clone());
        let cnf = server.var("MES_TEST_CLIENT_CNF");
        let db = db.to_owned();
        std::thread::spawn(move || {
            let mut id = 1i64;
            while !stop_writing.load(Ordering::SeqCst) {
                let k = id % 3 + 1;
                let values: Vec<String> = (id..id + k).map(|i| format!("({i},'v{i}')")).collect();
                let q = format!(
                    "BEGIN; INSERT IGNORE INTO {db}.t VALUES {}; COMMIT;",
                    values.join(",")
                );
                let ok = Command::new("mariadb")
                    .arg(format!("--defaults-file={cnf}"))
                    .args(["-N", "-B", "--connect-timeout=1", "-e", &q])
                    .output()
                    .is_ok_and(|o| o.status.success());
                if ok {
                    id += k;
                    committed.fetch_add(k, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                } else {
                    failures.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    let before_stop = committed.load(Ordering::SeqCst);
    assert!(
        before_stop > 0,
        "the writer wrote nothing before the restart"
    );
    eprintln!("restart test: {before_stop} rows committed; stopping the private server");
    server.stop();
    std::thread::sleep(Duration::from_secs(2));
    let down = committed.load(Ordering::SeqCst);
    eprintln!("restart test: starting the private server again");
    server.start();
    // Wait until the writer got rows in after the restart.
    let deadline = Instant::now() + Duration::from_secs(15);
    while committed.load(Ordering::SeqCst) < down + 20 {
        assert!(
            Instant::now() < deadline,
            "the writer made no progress after the restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop_writing.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    server.sql(&format!("INSERT INTO {db}.t VALUES (0, 'sentinel')"));
    Writes {
        before_stop,
        committed: committed.load(Ordering::SeqCst),
        failures: failures.load(Ordering::SeqCst),
    }
}

/// The end of a restart test: the writer saw the server down, the model (every change the
/// stream delivered) holds exactly the table's rows, every id once, and the driver logged the
/// loss, the reconnection and the stop — never the password.
pub fn check(server: &PrivateServer, db: &str, model: &Model, writes: &Writes, logs: &str) {
    let table = server.select_rows(db);
    eprintln!(
        "restart test: {} rows in the table ({} committed before the stop, {} write failures \
         while down), {} changes streamed",
        table.len(),
        writes.before_stop,
        writes.failures,
        model.changes,
    );
    assert!(writes.failures > 0, "the writer never saw the server down");
    assert!(model.inserted.values().all(|&n| n == 1));
    assert_eq!(
        model.rows.keys().collect::<Vec<_>>(),
        table.keys().collect::<Vec<_>>(),
        "the stream's ids differ from the table's"
    );
    assert_eq!(
        model.rows, table,
        "the stream's rows differ from the table's"
    );
    eprint!("driver logs:\n{logs}");
    for line in [
        "connected; binlog dump started",
        "connection lost; reconnecting",
        "reconnect attempt",
        "reconnected; resuming",
        "stream stopped",
    ] {
        assert!(logs.contains(line), "no {line:?} logged");
    }
    let password = server.var("MES_TEST_REPL_PASSWORD");
    assert!(
        !password.is_empty() && !logs.contains(&password),
        "the password was logged"
    );
}
