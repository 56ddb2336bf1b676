//! A MariaDB process restart mid-stream: the blocking driver rides out the downtime with its
//! reconnect policy and ends with exactly the rows the table holds (every id once).
//!
//! It never touches the shared test server: it starts a private second instance with
//! `scripts/mariadb-test-server.sh` (its own build dir `build/restart-test`, port 33066 or
//! `MES_RESTART_TEST_PORT`), stops it (SIGTERM to its PID) while a writer inserts rows, starts
//! it again on the same datadir (the binlogs survive) and stops it at the end, also on a panic.
//! Without `mariadbd` installed: a loud SKIPPED, unless `MES_REQUIRE_SERVER=1` (then failure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mes_blocking::{BinlogStream, Reconnect, StreamConfig};
use mes_testkit::live::{Model, env};
use mysql_binlog_codec::engine::{ChangeKind, EngineConfig, EngineEvent, TableFilter};
use mysql_repl_proto::{ConnectConfig, SslMode, StartPosition, TlsOptions};

const DB: &str = "mes_restart";

fn mariadbd_installed() -> bool {
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

/// The private server; `Drop` stops it (so does a panic unwinding through the test).
struct PrivateServer {
    script: PathBuf,
    build_dir: PathBuf,
    port: u16,
    env: BTreeMap<String, String>,
}

impl PrivateServer {
    fn new() -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let port = env("MES_RESTART_TEST_PORT")
            .and_then(|p| p.parse().ok())
            .unwrap_or(33066);
        let mut s = Self {
            script: repo.join("scripts/mariadb-test-server.sh"),
            build_dir: repo.join("build/restart-test"),
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

    /// Run the script with this instance's build dir and port; its stdout.
    fn script(&self, cmd: &str) -> String {
        let out = Command::new("bash")
            .arg(&self.script)
            .arg(cmd)
            .env("MES_BUILD_DIR", &self.build_dir)
            .env("MES_TEST_PORT", self.port.to_string())
            .env_remove("MES_BINLOG_BASENAME")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "mariadb-test-server.sh {cmd}: {stderr}"
        );
        eprint!("{stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn start(&self) {
        self.script("start");
    }

    fn stop(&self) {
        self.script("stop");
    }

    fn var(&self, k: &str) -> String {
        self.env.get(k).cloned().unwrap_or_default()
    }

    /// Run SQL as root through the `mariadb` client; `Err` with its message on failure.
    fn try_sql(&self, query: &str) -> Result<String, String> {
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

    fn sql(&self, query: &str) -> String {
        self.try_sql(query)
            .unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    /// `SELECT * FROM t` keyed by id, values as the client prints them.
    fn select_rows(&self) -> BTreeMap<i64, Vec<String>> {
        self.sql(&format!("SELECT * FROM {DB}.t ORDER BY id"))
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let cols: Vec<String> = l.split('\t').map(str::to_owned).collect();
                (cols[0].parse().unwrap(), cols)
            })
            .collect()
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .env("MES_BUILD_DIR", &self.build_dir)
            .env("MES_TEST_PORT", self.port.to_string())
            .env_remove("MES_BINLOG_BASENAME")
            .status();
    }
}

/// A `tracing` subscriber that keeps the driver's log lines (INFO and above) in a buffer.
struct Capture(Arc<Mutex<String>>);

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

fn stream_config(server: &PrivateServer, start: StartPosition) -> StreamConfig {
    let connect = ConnectConfig {
        user: server.var("MES_TEST_REPL_USER"),
        password: server.var("MES_TEST_REPL_PASSWORD"),
        server_id: 30_000 + std::process::id() % 1000,
        tls: TlsOptions {
            mode: SslMode::Preferred,
            ..TlsOptions::default()
        },
        start,
        heartbeat_period: Duration::from_millis(500),
        read_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        ..ConnectConfig::default()
    };
    let mut c = StreamConfig::new("127.0.0.1", server.port, connect);
    c.engine =
        EngineConfig::default().with_filter(TableFilter::default().with_include_databases(&[DB]));
    // Enough to ride out ~10 s and more of downtime.
    c.reconnect = Reconnect {
        max_attempts: 50,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
    };
    c
}

#[test]
fn mariadb_restart_mid_stream_delivers_every_row_once() {
    if !mariadbd_installed() {
        if env("MES_REQUIRE_SERVER").as_deref() == Some("1") {
            panic!("MES_REQUIRE_SERVER=1 but mariadbd is not installed");
        }
        eprintln!("SKIPPED: mariadbd is not installed (the restart test starts its own server)");
        return;
    }
    let started = Instant::now();
    let server = PrivateServer::new();
    server.start();
    server.sql(&format!("DROP DATABASE IF EXISTS {DB}"));
    server.sql(&format!("CREATE DATABASE {DB}"));
    server.sql(&format!(
        "CREATE TABLE {DB}.t (id BIGINT PRIMARY KEY, v VARCHAR(40) NOT NULL)"
    ));
    let status = server.sql("SHOW MASTER STATUS");
    let mut p = status.split('\t');
    let start = StartPosition::FilePosition {
        file: p.next().unwrap().to_owned(),
        position: p.next().unwrap().parse().unwrap(),
    };
    let logs = Arc::new(Mutex::new(String::new()));
    // The stream's reader thread logs to the subscriber current when it starts.
    let log_guard = tracing::subscriber::set_default(Capture(logs.clone()));
    let mut stream = BinlogStream::start(stream_config(&server, start)).unwrap();
    drop(log_guard);

    // The consumer: every change into the model (which refuses a duplicate or a gap) until the
    // sentinel row 0 arrives.
    let consumer = std::thread::spawn(move || {
        let mut model = Model::default();
        let deadline = Instant::now() + Duration::from_secs(50);
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the sentinel"
            );
            match stream.next_timeout(Duration::from_millis(500)) {
                Some(Ok(Some(EngineEvent::Change(c)))) => {
                    let sentinel =
                        c.kind == ChangeKind::Insert && mes_testkit::live::id_of(&c.after) == 0;
                    model.apply(&c);
                    if sentinel {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("stream failed: {e}"),
                None => panic!("stream ended"),
            }
        }
        stream.stop();
        model
    });

    // The writer: small transactions of 1–3 rows, retried (INSERT IGNORE: a commit whose
    // answer was lost is not doubled) while the server is down.
    let stop_writing = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicI64::new(0));
    let failures = Arc::new(AtomicI64::new(0));
    let writer = {
        let (stop_writing, committed, failures) =
            (stop_writing.clone(), committed.clone(), failures.clone());
        let cnf = server.var("MES_TEST_CLIENT_CNF");
        std::thread::spawn(move || {
            let mut id = 1i64;
            while !stop_writing.load(Ordering::SeqCst) {
                let k = id % 3 + 1;
                let values: Vec<String> = (id..id + k).map(|i| format!("({i},'v{i}')")).collect();
                let q = format!(
                    "BEGIN; INSERT IGNORE INTO {DB}.t VALUES {}; COMMIT;",
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
    server.sql(&format!("INSERT INTO {DB}.t VALUES (0, 'sentinel')"));
    let model = consumer.join().unwrap();

    let table = server.select_rows();
    eprintln!(
        "restart test: {} rows in the table ({} committed before the stop, {} write failures \
         while down), {} changes streamed, {:.1} s",
        table.len(),
        before_stop,
        failures.load(Ordering::SeqCst),
        model.changes,
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.load(Ordering::SeqCst) > 0,
        "the writer never saw the server down"
    );
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
    let logs = logs.lock().unwrap().clone();
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
    server.sql(&format!("DROP DATABASE {DB}"));
    drop(server);
}
