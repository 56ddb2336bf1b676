//! The primary's server-side handshake, proven against real clients: PyMySQL and Oracle's
//! mysql-connector-python log in with `caching_sha2_password` (fast auth, full auth over TLS,
//! full auth over plain TCP with RSA) and `mysql_native_password`, and are refused with
//! ERR 1045 for a wrong password.
//!
//! Python: `$MES_PYTHON`, else `${MES_BUILD_DIR:-<repo>/build}/venv/bin/python`, else
//! `python3`. Without PyMySQL / mysql-connector-python / cryptography the tests print a loud
//! SKIPPED and pass, unless `MES_REQUIRE_SERVER=1` (scripts/test.sh), where they fail.
//!
//! mysql-connector-python's C extension (libmysqlclient) is exercised too when it loads
//! (recent wheels need OpenSSL >= 3.2 from the system); its pure-Python implementation is
//! always exercised.

use mes_testkit::{AuthOutcome, AuthPlugin, ConnectionLog, PrimaryConfig, TestPrimary};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-Pw!";
const NATIVE_USER: &str = "nat";
const NATIVE_PASSWORD: &str = "n4tive-Pw";

fn python() -> Option<PathBuf> {
    let exe = std::env::var_os("MES_PYTHON")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let build = std::env::var_os("MES_BUILD_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../build"));
            let p = build.join("venv/bin/python");
            p.exists().then_some(p)
        })
        .unwrap_or_else(|| PathBuf::from("python3"));
    let probe = Command::new(&exe)
        .args(["-c", "import pymysql, mysql.connector, cryptography"])
        .output();
    let why = match probe {
        Ok(o) if o.status.success() => return Some(exe),
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => e.to_string(),
    };
    if std::env::var("MES_REQUIRE_SERVER").as_deref() == Ok("1") {
        panic!(
            "PyMySQL, mysql-connector-python and cryptography are not importable with {} \
             ({why}). Run scripts/test.sh, which installs them into build/venv and exports \
             MES_PYTHON.",
            exe.display()
        );
    }
    eprintln!(
        "\n*************************************************************************\n\
         *** SKIPPED: PyMySQL / mysql-connector-python not importable with {}\n\
         *** ({why})\n\
         *** run scripts/test.sh (installs them into build/venv) to run these tests\n\
         *************************************************************************\n",
        exe.display()
    );
    None
}

fn primary(tls: bool, warm: bool) -> TestPrimary {
    let mut cfg = PrimaryConfig::new()
        .account(USER, PASSWORD, AuthPlugin::CachingSha2Password)
        .account(
            NATIVE_USER,
            NATIVE_PASSWORD,
            AuthPlugin::MysqlNativePassword,
        )
        .tls(tls);
    if warm {
        cfg = cfg.warm_cache(USER);
    }
    TestPrimary::start(cfg).expect("start the test primary")
}

/// One login attempt for clients.py.
fn attempt(driver: &str, user: &str, password: &str) -> Value {
    json!({ "driver": driver, "user": user, "password": password })
}

fn with_ca(mut a: Value, p: &TestPrimary) -> Value {
    let ca = p.ca_pem_path().expect("TLS is on").display().to_string();
    a["ssl_ca"] = json!(ca);
    a
}

/// Run the attempts in one Python process; one result object per attempt.
fn run(py: &Path, p: &TestPrimary, attempts: Vec<Value>) -> Vec<Value> {
    let attempts: Vec<Value> = attempts
        .into_iter()
        .map(|mut a| {
            a["host"] = json!("127.0.0.1");
            a["port"] = json!(p.port());
            a
        })
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/clients.py");
    let out = Command::new(py)
        .arg(&script)
        .arg(Value::Array(attempts.clone()).to_string())
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "clients.py failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let results: Vec<Value> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .map(|l| serde_json::from_str(l).expect("result JSON"))
        .collect();
    assert_eq!(
        results.len(),
        attempts.len(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for r in &results {
        println!("{r}");
    }
    results
}

fn assert_logged_in(r: &Value, log: &ConnectionLog) {
    assert_eq!(
        r["ok"],
        json!(true),
        "login failed: {r}\nserver log: {log:#?}"
    );
    assert_eq!(
        r["rows"][0][0],
        json!(["8.4.3", "MySQL Community Server - GPL"]),
        "{r}"
    );
    assert!(
        log.queries
            .iter()
            .any(|q| q == "SELECT @@version, @@version_comment"),
        "queries: {:?}",
        log.queries
    );
}

fn assert_denied(r: &Value, log: &ConnectionLog) {
    assert_eq!(r["ok"], json!(false), "{r}");
    assert_eq!(r["errno"], json!(1045), "{r}");
    let msg = r["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&format!("Access denied for user '{USER}'@'localhost'")),
        "{msg}"
    );
    assert!(
        matches!(log.auth, Some(AuthOutcome::Denied { .. })),
        "server log: {log:#?}"
    );
}

/// True when the attempt was skipped because the connector's C extension does not load.
fn cext_skipped(r: &Value) -> bool {
    if let Some(why) = r.get("skipped").and_then(Value::as_str) {
        eprintln!("note: mysql-connector-python C extension not exercised: {why}");
        return true;
    }
    false
}

#[test]
fn pymysql_fast_auth_with_warm_cache() {
    let Some(py) = python() else { return };
    let p = primary(false, true);
    let r = run(&py, &p, vec![attempt("pymysql", USER, PASSWORD)]);
    let log = p.log();
    assert_logged_in(&r[0], &log[0]);
    assert_eq!(log[0].auth, Some(AuthOutcome::FastAuth));
    assert!(!log[0].tls);
    assert_eq!(
        log[0].client_plugin.as_deref(),
        Some("caching_sha2_password")
    );
    assert!(log[0].auth_switch.is_none());
}

#[test]
fn pymysql_full_auth_over_tls_then_fast_auth() {
    let Some(py) = python() else { return };
    let p = primary(true, false);
    assert!(!p.is_cache_warm(USER));
    let r = run(
        &py,
        &p,
        vec![
            with_ca(attempt("pymysql", USER, PASSWORD), &p),
            attempt("pymysql", USER, PASSWORD),
        ],
    );
    let log = p.log();
    assert_logged_in(&r[0], &log[0]);
    assert!(log[0].tls, "first login must use TLS");
    assert_eq!(log[0].auth, Some(AuthOutcome::FullAuthTls));
    // The full auth warmed the cache: the plain-TCP login takes the fast path.
    assert!(p.is_cache_warm(USER));
    assert_logged_in(&r[1], &log[1]);
    assert!(!log[1].tls);
    assert_eq!(log[1].auth, Some(AuthOutcome::FastAuth));
}

#[test]
fn pymysql_full_auth_over_plain_tcp_with_rsa() {
    let Some(py) = python() else { return };
    let p = primary(false, false);
    let key_path = std::env::temp_dir().join(format!("mes-testkit-pubkey-{}.pem", p.port()));
    std::fs::write(&key_path, p.rsa_public_key_pem().expect("rsa key")).expect("write key");
    let mut known_key = attempt("pymysql", USER, PASSWORD);
    known_key["server_public_key"] = json!(key_path.display().to_string());
    let r = run(&py, &p, vec![attempt("pymysql", USER, PASSWORD)]);
    p.set_cache_warm(USER, false);
    let r2 = run(&py, &p, vec![known_key]);
    let _ = std::fs::remove_file(&key_path);
    let log = p.log();
    // Cold cache, no key: the client asks for it (0x02), then sends RSA-OAEP ciphertext.
    assert_logged_in(&r[0], &log[0]);
    assert_eq!(
        log[0].auth,
        Some(AuthOutcome::FullAuthRsa {
            key_requested: true
        })
    );
    // With the key configured the client encrypts straight away.
    assert_logged_in(&r2[0], &log[1]);
    assert_eq!(
        log[1].auth,
        Some(AuthOutcome::FullAuthRsa {
            key_requested: false
        })
    );
}

#[test]
fn pymysql_wrong_password_is_1045() {
    let Some(py) = python() else { return };
    // Cold cache over RSA, cold cache over TLS, then warm cache (fast path mismatch falls
    // back to full auth, which fails).
    let p = primary(true, false);
    let r = run(
        &py,
        &p,
        vec![
            attempt("pymysql", USER, "wrong"),
            with_ca(attempt("pymysql", USER, "wrong"), &p),
        ],
    );
    p.set_cache_warm(USER, true);
    let r2 = run(&py, &p, vec![attempt("pymysql", USER, "wrong")]);
    let log = p.log();
    assert_denied(&r[0], &log[0]);
    assert_denied(&r[1], &log[1]);
    assert!(log[1].tls);
    assert_denied(&r2[0], &log[2]);
    assert!(
        !p.log()
            .iter()
            .any(|l| matches!(l.auth, Some(AuthOutcome::FastAuth)))
    );
}

#[test]
fn pymysql_native_password_via_auth_switch() {
    let Some(py) = python() else { return };
    let p = primary(false, false);
    let r = run(
        &py,
        &p,
        vec![
            attempt("pymysql", NATIVE_USER, NATIVE_PASSWORD),
            attempt("pymysql", NATIVE_USER, "wrong"),
        ],
    );
    let log = p.log();
    assert_logged_in(&r[0], &log[0]);
    assert_eq!(log[0].auth_switch.as_deref(), Some("mysql_native_password"));
    assert_eq!(log[0].auth, Some(AuthOutcome::NativePassword));
    assert_eq!(r[1]["errno"], json!(1045), "{}", r[1]);
}

#[test]
fn connector_fast_auth_with_warm_cache() {
    let Some(py) = python() else { return };
    let p = primary(false, true);
    let r = run(
        &py,
        &p,
        vec![
            attempt("connector-pure", USER, PASSWORD),
            attempt("connector-cext", USER, PASSWORD),
        ],
    );
    let log = p.log();
    assert_logged_in(&r[0], &log[0]);
    assert_eq!(log[0].auth, Some(AuthOutcome::FastAuth));
    assert!(
        log[0].attrs.iter().any(|(k, _)| k == "_client_name"),
        "connect attributes: {:?}",
        log[0].attrs
    );
    if !cext_skipped(&r[1]) {
        assert_logged_in(&r[1], &log[1]);
        assert_eq!(log[1].auth, Some(AuthOutcome::FastAuth));
    }
}

#[test]
fn connector_full_auth_over_tls_then_fast_auth() {
    let Some(py) = python() else { return };
    let p = primary(true, false);
    let r = run(
        &py,
        &p,
        vec![
            with_ca(attempt("connector-pure", USER, PASSWORD), &p),
            attempt("connector-pure", USER, PASSWORD),
        ],
    );
    let log = p.log();
    assert_logged_in(&r[0], &log[0]);
    assert!(log[0].tls);
    assert_eq!(log[0].auth, Some(AuthOutcome::FullAuthTls));
    assert_logged_in(&r[1], &log[1]);
    assert!(!log[1].tls);
    assert_eq!(log[1].auth, Some(AuthOutcome::FastAuth));

    // libmysqlclient (the C extension), when it loads.
    let q = primary(true, false);
    let r = run(
        &py,
        &q,
        vec![
            with_ca(attempt("connector-cext", USER, PASSWORD), &q),
            attempt("connector-cext", USER, PASSWORD),
        ],
    );
    if !cext_skipped(&r[0]) {
        let log = q.log();
        assert_logged_in(&r[0], &log[0]);
        assert!(log[0].tls);
        assert_eq!(log[0].auth, Some(AuthOutcome::FullAuthTls));
        assert_logged_in(&r[1], &log[1]);
        assert_eq!(log[1].auth, Some(AuthOutcome::FastAuth));
    }
}

#[test]
fn connector_plain_tcp_full_auth_without_rsa_is_refused() {
    // Connector/Python's pure implementation has no RSA: on plain TCP with a cold cache it
    // sends the password in cleartext, which MySQL (and the primary) refuse with 1045.
    let Some(py) = python() else { return };
    let p = primary(false, false);
    let r = run(&py, &p, vec![attempt("connector-pure", USER, PASSWORD)]);
    let log = p.log();
    assert_denied(&r[0], &log[0]);
    match &log[0].auth {
        Some(AuthOutcome::Denied { reason }) => assert!(reason.contains("cleartext"), "{reason}"),
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[test]
fn connector_wrong_password_is_1045() {
    let Some(py) = python() else { return };
    let p = primary(true, true);
    let r = run(
        &py,
        &p,
        vec![
            with_ca(attempt("connector-pure", USER, "wrong"), &p),
            with_ca(attempt("connector-cext", USER, "wrong"), &p),
        ],
    );
    let log = p.log();
    assert_denied(&r[0], &log[0]);
    if !cext_skipped(&r[1]) {
        assert_denied(&r[1], &log[1]);
    }
}

#[test]
fn connector_native_password() {
    let Some(py) = python() else { return };
    let p = primary(false, false);
    let r = run(
        &py,
        &p,
        vec![attempt("connector-pure", NATIVE_USER, NATIVE_PASSWORD)],
    );
    let log = p.log();
    assert_logged_in(&r[0], &log[0]);
    assert_eq!(log[0].auth, Some(AuthOutcome::NativePassword));
}
