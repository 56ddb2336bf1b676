//! `mes stream` and `mes check` against the real MariaDB the test script starts: resume with
//! `--checkpoint` (Ctrl-C, then restart: every committed row exactly once; SIGKILL: nothing
//! lost), `check` verdicts, one-line errors. Without a server: SKIPPED (fails under
//! `MES_REQUIRE_SERVER=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mes_testkit::live::{env, server, sql};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn url(user: &str, pw: &str, server_id: u32) -> String {
    format!(
        "mysql://{user}:{pw}@{}:{}?server-id={server_id}&heartbeat=0.5&read-timeout=5",
        env("MES_TEST_HOST").unwrap(),
        env("MES_TEST_PORT").unwrap()
    )
}

fn repl_url(server_id: u32) -> String {
    url(
        &env("MES_TEST_REPL_USER").unwrap(),
        &env("MES_TEST_REPL_PASSWORD").unwrap(),
        server_id,
    )
}

fn current() -> String {
    let s = sql("SHOW MASTER STATUS");
    let mut p = s.split('\t');
    format!("file:{}:{}", p.next().unwrap(), p.next().unwrap())
}

fn spawn_stream(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mes"))
        .arg("stream")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Read ids from a running `mes stream` until `want` lines arrived or the time is up.
fn read_ids(child: &mut Child, want: usize, ids: &mut BTreeMap<i64, usize>) {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    while n < want && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            if v["type"] == "INSERT" {
                *ids.entry(v["after"]["id"].as_i64().unwrap()).or_default() += 1;
                n += 1;
            }
        }
    }
    // Keep draining in the background so the child never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
}

/// Collect the ids of every INSERT line until the child's stdout closes.
fn collect_all(
    child: &mut Child,
    ids: std::sync::Arc<std::sync::Mutex<BTreeMap<i64, usize>>>,
) -> std::thread::JoinHandle<()> {
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v["type"] == "INSERT" {
                *ids.lock()
                    .unwrap()
                    .entry(v["after"]["id"].as_i64().unwrap())
                    .or_default() += 1;
            }
        }
    })
}

fn insert(db: &str, from: i64, to: i64) {
    let mut q = String::new();
    for id in from..=to {
        q.push_str(&format!("INSERT INTO {db}.t VALUES ({id});"));
    }
    sql(&q);
}

#[test]
fn checkpoint_resume_is_exactly_once_after_ctrl_c() {
    if server().is_none() {
        return;
    }
    let db = format!("mes_cli_{}", std::process::id());
    sql(&format!("CREATE DATABASE {db}"));
    sql(&format!("CREATE TABLE {db}.t (id BIGINT PRIMARY KEY)"));
    let cp = std::env::temp_dir().join(format!("mes-cp-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&cp);
    let from = current();
    let sid = mes_testkit::live::replica_server_id();
    let u = repl_url(sid);
    let base = [
        "--include-db",
        db.as_str(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--from",
        from.as_str(),
    ];
    let mut ids = BTreeMap::new();
    let mut next = 1i64;
    for round in 0..3 {
        let mut child = spawn_stream(&[&[u.as_str()][..], &base[..]].concat());
        insert(&db, next, next + 24);
        next += 25;
        // The 10 rows committed while no stream ran come first, then these 25.
        read_ids(&mut child, if round == 0 { 25 } else { 35 }, &mut ids);
        // Ctrl-C: a clean stop that flushes the checkpoint.
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "round {round}: {status:?}");
        // Rows committed while no stream runs are picked up by the next one.
        insert(&db, next, next + 9);
        next += 10;
    }
    // A last run catches up and idles out.
    let mut child = spawn_stream(&[&[u.as_str(), "--idle-exit", "3"][..], &base[..]].concat());
    read_ids(&mut child, 10, &mut ids);
    assert!(child.wait().unwrap().success());
    assert_eq!(ids.len() as i64, next - 1, "every row delivered");
    let dups: Vec<_> = ids.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    assert!(
        std::fs::read_to_string(&cp)
            .unwrap()
            .starts_with("mariadb:0-")
    );

    // SIGKILL: nothing is lost (at-least-once: the last transaction may repeat).
    let mut child = spawn_stream(&[&[u.as_str()][..], &base[..]].concat());
    insert(&db, next, next + 19);
    let first = next;
    next += 20;
    // Count every line the killed process printed (not only the first ten): rows it printed
    // may already be covered by its checkpoint, so they are not printed again.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let reader = collect_all(&mut child, seen.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
    reader.join().unwrap();
    // The restarted run idles out: everything it prints is collected.
    let mut child = spawn_stream(&[&[u.as_str(), "--idle-exit", "3"][..], &base[..]].concat());
    let reader = collect_all(&mut child, seen.clone());
    let _ = child.wait();
    reader.join().unwrap();
    let seen = seen.lock().unwrap();
    for id in first..next {
        assert!(seen.contains_key(&id), "row {id} lost after SIGKILL");
    }
    let _ = std::fs::remove_file(&cp);
    sql(&format!("DROP DATABASE {db}"));
}

#[test]
fn check_reports_and_errors_are_one_line() {
    if server().is_none() {
        return;
    }
    let ok = Command::new(env!("CARGO_BIN_EXE_mes"))
        .args(["check", &repl_url(7001)])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ready for change data capture"));

    sql("CREATE USER IF NOT EXISTS 'mes_noprivs'@'%' IDENTIFIED BY 'np_pw'");
    let out = Command::new(env!("CARGO_BIN_EXE_mes"))
        .args(["check", &url("mes_noprivs", "np_pw", 7002)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL replication privileges"));

    for (args, word) in [
        (
            vec!["check".to_owned(), "http://nope".to_owned()],
            "not a mysql:// URL",
        ),
        (
            vec!["check".to_owned(), "mysql://u@127.0.0.1:1".to_owned()],
            "127.0.0.1:1",
        ),
        (
            vec!["stream".to_owned(), url("nobody", "x", 7003)],
            "access denied",
        ),
        (
            vec![
                "stream".to_owned(),
                repl_url(7004),
                "--from".to_owned(),
                "sometime".to_owned(),
            ],
            "--from",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mes"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(word), "{args:?}: {err}");
    }
}
