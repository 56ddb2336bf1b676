//! `mes decode` end to end: every well-formed corpus file exits 0; the ones that must fail fail
//! with a message naming the problem; output lines have the DESIGN §4 shape; values agree with
//! the zalora/binlog-parser expected JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("MES_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    if dir.join("census.json").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: binlog corpus not found at {} (set MES_CORPUS_DIR)",
            dir.display()
        );
        None
    }
}

fn mes(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mes"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Files that must fail, and a word their error message must contain.
fn expected_failure(file: &str) -> Option<&'static str> {
    Some(match file {
        "rust_mysql_common/binlog_truncated_event.000001" => "truncated",
        "rust_mysql_common/binlog_truncated_prev_gtid_event.000001" => "truncated",
        "rust_mysql_common/corrupt-relay-bin.000624" => "offset 91204",
        "rust_mysql_common/ver_5_1-wl2325_r.001" => "pre-GA",
        // The source logged an INCIDENT (events may be lost): never silently continued.
        "rust_mysql_common/bug40482-bin.000001" => "INCIDENT",
        _ => return None,
    })
}

#[test]
fn every_corpus_file() {
    let Some(dir) = corpus() else { return };
    let census: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("census.json")).unwrap()).unwrap();
    let mut lines = 0;
    for entry in census.as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        let path = dir.join(file);
        let (ok, stdout, stderr) = mes(&["decode", path.to_str().unwrap()]);
        match expected_failure(file) {
            Some(word) => {
                assert!(!ok, "{file}: expected a failure");
                assert!(stderr.contains(word), "{file}: {stderr}");
            }
            None => assert!(ok, "{file}: {stderr}"),
        }
        for l in stdout.lines() {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{file}: {e}: {l}"));
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                [
                    "type",
                    "database",
                    "table",
                    "before",
                    "after",
                    "timestamp",
                    "position",
                    "gtid"
                ],
                "{l}"
            );
            lines += 1;
        }
    }
    assert!(lines > 40_000, "{lines} lines");
}

fn scalars(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => m.values().for_each(|x| scalars(x, out)),
        serde_json::Value::Array(a) => a.iter().for_each(|x| scalars(x, out)),
        serde_json::Value::String(s) => out.push(s.clone()),
        other => out.push(other.to_string()),
    }
}

/// zalora/binlog-parser's expected rows: same schema, table, end position, time, kind and the
/// same multiset of values (its column names came from a live schema, ours are positional).
#[test]
fn zalora_expected_rows() {
    let Some(dir) = corpus() else { return };
    let z = dir.join("zalora-binlog-parser");
    for n in ["01", "02", "03", "07"] {
        let text = std::fs::read_to_string(z.join(format!("{n}.json"))).unwrap();
        let expected: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&text)
            .into_iter::<serde_json::Value>()
            .map(Result::unwrap)
            .filter(|v| matches!(v["Type"].as_str(), Some("Insert" | "Update" | "Delete")))
            .collect();
        let (ok, stdout, stderr) =
            mes(&["decode", z.join(format!("mysql-bin.{n}")).to_str().unwrap()]);
        assert!(ok, "{n}: {stderr}");
        let ours: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(ours.len(), expected.len(), "{n}: row count");
        for (o, e) in ours.iter().zip(&expected) {
            assert_eq!(o["database"], e["Header"]["Schema"], "{n}");
            assert_eq!(o["table"], e["Header"]["Table"], "{n}");
            assert_eq!(
                o["position"]["offset"], e["Header"]["BinlogPosition"],
                "{n}"
            );
            assert_eq!(
                o["type"].as_str().unwrap().to_ascii_lowercase(),
                e["Type"].as_str().unwrap().to_ascii_lowercase()
            );
            let mut want = Vec::new();
            for key in ["Data", "OldData", "NewData"] {
                scalars(&e[key]["Row"], &mut want);
            }
            let mut got = Vec::new();
            scalars(&o["before"], &mut got);
            scalars(&o["after"], &mut got);
            got.retain(|s| s != "null");
            want.retain(|s| s != "null");
            // zalora prints integers as JSON numbers and everything else as strings; so do we,
            // except DECIMAL (a string here, as DESIGN §4 says) and temporal values.
            got.sort();
            want.sort();
            assert_eq!(got, want, "{n}: {o}");
        }
    }
}

#[test]
fn filters_and_text_format() {
    let Some(dir) = corpus() else { return };
    let f = dir.join("zalora-binlog-parser/mysql-bin.01");
    let (ok, stdout, _) = mes(&["decode", "--include", "test_db.rooms", f.to_str().unwrap()]);
    assert!(ok);
    assert!(!stdout.is_empty() && stdout.lines().all(|l| l.contains("\"table\":\"rooms\"")));
    let (ok, stdout, _) = mes(&["decode", "--exclude", "room*", f.to_str().unwrap()]);
    assert!(ok);
    assert!(!stdout.is_empty() && stdout.lines().all(|l| !l.contains("\"table\":\"rooms\"")));
    let (ok, stdout, _) = mes(&["decode", "--format", "text", f.to_str().unwrap()]);
    assert!(ok);
    assert!(
        stdout
            .lines()
            .next()
            .unwrap()
            .starts_with("INSERT test_db.buildings @mysql-bin.01:397")
    );
    let (ok, _, stderr) = mes(&["decode", "/nonexistent/file"]);
    assert!(!ok && stderr.contains("/nonexistent/file"));
}

#[test]
fn several_files_in_order_and_gzip() {
    let Some(dir) = corpus() else { return };
    let a = dir.join("percona-binlog-server/data_80045_gtid__binlog.000001");
    let b = dir.join("percona-binlog-server/data_80045_gtid__binlog.000002");
    let (ok, both, stderr) = mes(&["decode", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let (_, first, _) = mes(&["decode", a.to_str().unwrap()]);
    let (_, second, _) = mes(&["decode", b.to_str().unwrap()]);
    assert_eq!(
        both.lines().count(),
        first.lines().count() + second.lines().count()
    );
    assert!(
        both.lines().all(|l| l.contains("\"gtid\":\"")),
        "GTIDs on every row"
    );
    let gz = dir.join("mysql-binlog-connector-java/mysql-bin.sakila.gz");
    let (ok, out, stderr) = mes(&["decode", gz.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(out.lines().count() > 40_000);
}
