//! `mes check` against the scripted MySQL 8.4 primary, misconfigured one variable at a time:
//! each problem is a FAIL line naming the variable and the fix, with exit status 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use mes_testkit::{AuthPlugin, PrimaryConfig, TestPrimary};

fn check(primary: &TestPrimary) -> (Option<i32>, String) {
    let url = format!("mysql://u:p@127.0.0.1:{}?ssl-mode=disabled", primary.port());
    let out = Command::new(env!("CARGO_BIN_EXE_mes"))
        .args(["check", &url])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn each_misconfiguration_is_reported() {
    let Some(file) = mes_testkit::corpus_file("mysql-binlog-connector-rust/mysql-bin.000057")
    else {
        eprintln!("SKIPPED: corpus not found (set MES_CORPUS_DIR)");
        return;
    };
    let base = || {
        PrimaryConfig::new()
            .account("u", "p", AuthPlugin::CachingSha2Password)
            .warm_cache("u")
            .binlog_file(&file)
    };
    let primary = TestPrimary::start(base()).unwrap();
    let (code, out) = check(&primary);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ready for change data capture"), "{out}");
    for (var, value, fix) in [
        ("log_bin", "OFF", "--log-bin"),
        (
            "binlog_format",
            "STATEMENT",
            "SET GLOBAL binlog_format='ROW'",
        ),
        (
            "binlog_row_image",
            "MINIMAL",
            "SET GLOBAL binlog_row_image='FULL'",
        ),
    ] {
        let primary = TestPrimary::start(base().variable(var, value)).unwrap();
        let (code, out) = check(&primary);
        assert_eq!(code, Some(2), "{var}: {out}");
        let line = out
            .lines()
            .find(|l| l.starts_with("FAIL") && l.contains(var))
            .unwrap_or_else(|| panic!("{var}: {out}"));
        assert!(line.contains(fix), "{line}");
    }
}
