//! Raw-protocol checks of the primary: greeting bytes, the three `caching_sha2_password`
//! paths, errors, text result sets with and without `CLIENT_DEPRECATE_EOF`, and the queries
//! a replication client's preflight sends.

mod common;

use common::*;
use mes_testkit::{AuthOutcome, AuthPlugin, PrimaryConfig, ScriptedResponse, TestPrimary};
use std::time::Duration;

fn primary(cfg: PrimaryConfig) -> TestPrimary {
    TestPrimary::start(cfg.account(USER, PASSWORD, AuthPlugin::CachingSha2Password))
        .expect("start primary")
}

fn login<'a>(user: &'a str, password: &'a str) -> Login<'a> {
    Login {
        user,
        password,
        deprecate_eof: true,
        ..Login::default()
    }
}

#[test]
fn greeting_is_a_mysql_84_handshake_v10() {
    for tls in [false, true] {
        let p = primary(PrimaryConfig::new().tls(tls));
        let c = Client::connect(p.addr());
        let g = c.greeting.clone();
        assert_eq!(g.version, "8.4.3");
        assert_eq!(g.plugin, "caching_sha2_password");
        assert_eq!(g.scramble.len(), 20);
        assert!(g.scramble.iter().all(|&b| b != 0));
        assert_eq!(g.charset, 255, "utf8mb4_0900_ai_ci");
        assert_eq!(g.status, 0x0002, "SERVER_STATUS_AUTOCOMMIT");
        for (bit, name) in [
            (CLIENT_PROTOCOL_41, "PROTOCOL_41"),
            (CLIENT_SECURE_CONNECTION, "SECURE_CONNECTION"),
            (CLIENT_PLUGIN_AUTH, "PLUGIN_AUTH"),
            (
                CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
                "PLUGIN_AUTH_LENENC_CLIENT_DATA",
            ),
            (CLIENT_CONNECT_ATTRS, "CONNECT_ATTRS"),
            (CLIENT_CONNECT_WITH_DB, "CONNECT_WITH_DB"),
            (CLIENT_DEPRECATE_EOF, "DEPRECATE_EOF"),
            (CLIENT_TRANSACTIONS, "TRANSACTIONS"),
        ] {
            assert!(g.caps & bit != 0, "capability {name} missing");
        }
        assert_eq!(g.caps & CLIENT_SSL != 0, tls, "CLIENT_SSL iff TLS");
        // Auth data length 21 and the exact layout (parse_greeting checks reserved bytes,
        // the scramble's NUL and that the packet ends after the plugin name).
        let data_len_at = 1 + g.version.len() + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2;
        assert_eq!(g.raw[data_len_at], 21);
        assert_eq!(
            g.raw.len(),
            data_len_at + 1 + 10 + 13 + "caching_sha2_password\0".len()
        );
        // A second connection gets a new id and a new scramble.
        let c2 = Client::connect(p.addr());
        assert_ne!(c2.greeting.conn_id, g.conn_id);
        assert_ne!(c2.greeting.scramble, g.scramble);
        drop(c);
    }
}

#[test]
fn caching_sha2_fast_full_rsa_and_tls() {
    let p = primary(PrimaryConfig::new().tls(true));
    // Cold cache over plain TCP: full auth with the public key requested.
    let (_c, seen) = Client::login(p.addr(), &login(USER, PASSWORD));
    assert_eq!(seen, AuthSeen::FullRsa);
    assert!(p.is_cache_warm(USER));
    // Warm: fast auth.
    let (_c, seen) = Client::login(p.addr(), &login(USER, PASSWORD));
    assert_eq!(seen, AuthSeen::Fast);
    // Flushed: full auth over TLS with the cleartext password.
    p.set_cache_warm(USER, false);
    let ca = p.ca_pem_path().expect("ca").to_path_buf();
    let mut opts = login(USER, PASSWORD);
    opts.tls_ca = Some(&ca);
    let (mut c, seen) = Client::login(p.addr(), &opts);
    assert_eq!(seen, AuthSeen::FullTls);
    let (_, rows) = c.query("SELECT @@version").rows();
    assert_eq!(rows, vec![vec![Some("8.4.3".to_string())]]);
    let log = p.log();
    let outcomes: Vec<_> = log.iter().map(|l| l.auth.clone()).collect();
    assert_eq!(
        outcomes,
        vec![
            Some(AuthOutcome::FullAuthRsa {
                key_requested: true
            }),
            Some(AuthOutcome::FastAuth),
            Some(AuthOutcome::FullAuthTls),
        ]
    );
    assert!(log[2].tls);
    assert_eq!(
        log[0].attrs,
        vec![
            ("_client_name".to_string(), "mes-testkit-raw".to_string()),
            ("_pid".to_string(), "1".to_string())
        ]
    );
}

#[test]
fn wrong_password_and_unknown_user_are_1045() {
    let p = primary(PrimaryConfig::new().warm_cache(USER));
    for (user, pw) in [(USER, "nope"), ("ghost", PASSWORD)] {
        let (_c, seen) = Client::login(p.addr(), &login(user, pw));
        match seen {
            AuthSeen::Error(1045, msg) => assert_eq!(
                msg,
                format!("Access denied for user '{user}'@'localhost' (using password: YES)")
            ),
            other => panic!("expected 1045, got {other:?}"),
        }
    }
}

#[test]
fn queries_with_and_without_deprecate_eof() {
    let p = primary(
        PrimaryConfig::new()
            .warm_cache(USER)
            .variable("binlog_row_image", "MINIMAL")
            .unset_variable("gtid_mode")
            .script_query(
                "show replicas",
                ScriptedResponse::Error {
                    code: 1227,
                    state: "42000".into(),
                    message: "Access denied; you need the REPLICATION SLAVE privilege".into(),
                },
            ),
    );
    for deprecate_eof in [true, false] {
        let mut opts = login(USER, PASSWORD);
        opts.deprecate_eof = deprecate_eof;
        opts.database = Some("test");
        let (mut c, seen) = Client::login(p.addr(), &opts);
        assert_eq!(seen, AuthSeen::Fast);
        assert_eq!(c.query("SET NAMES utf8mb4"), QueryResult::Ok);
        assert_eq!(
            c.query("SET @source_binlog_checksum = @@global.binlog_checksum, @x := 'y'"),
            QueryResult::Ok
        );
        let (cols, rows) = c
            .query(
                "SELECT @@GLOBAL.binlog_row_image AS image, @@gtid_mode, @source_binlog_checksum, \
                 @@server_id, VERSION(), DATABASE() LIMIT 1",
            )
            .rows();
        assert_eq!(
            cols,
            vec![
                "image",
                "@@gtid_mode",
                "@source_binlog_checksum",
                "@@server_id",
                "VERSION()",
                "DATABASE()"
            ]
        );
        assert_eq!(
            rows,
            vec![vec![
                Some("MINIMAL".into()),
                None,
                Some("CRC32".into()),
                Some("1".into()),
                Some("8.4.3".into()),
                Some("test".into())
            ]]
        );
        match c.query("SELECT @@server_id") {
            QueryResult::Rows(cols, _) => assert_eq!(cols[0].1, 0x08, "LONGLONG column"),
            other => panic!("{other:?}"),
        }
        let (cols, rows) = c.query("SHOW BINARY LOG STATUS").rows();
        assert_eq!(
            cols,
            vec![
                "File",
                "Position",
                "Binlog_Do_DB",
                "Binlog_Ignore_DB",
                "Executed_Gtid_Set"
            ]
        );
        assert!(rows.is_empty(), "no binlogs configured");
        let (_, rows) = c
            .query("show global variables like 'binlog\\_row\\_%'")
            .rows();
        let names: Vec<_> = rows
            .iter()
            .map(|r| r[0].clone().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            vec![
                "binlog_row_image",
                "binlog_row_metadata",
                "binlog_row_value_options"
            ]
        );
        match c.query("SHOW REPLICAS") {
            QueryResult::Err(1227, _) => {}
            other => panic!("{other:?}"),
        }
        match c.query("SELECT * FROM mysql.user") {
            QueryResult::Err(1064, _) => {}
            other => panic!("{other:?}"),
        }
        // COM_PING, COM_REGISTER_SLAVE.
        c.command(&[0x0e]);
        assert_eq!(c.read_packet()[0], 0x00);
        let mut reg = vec![0x15];
        reg.extend_from_slice(&77u32.to_le_bytes());
        reg.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        c.command(&reg);
        assert_eq!(c.read_packet()[0], 0x00);
        c.command(&[0x01]); // COM_QUIT
    }
    assert!(p.wait_for_log(Duration::from_secs(5), |l| l.len() == 2
        && l.iter().all(|c| c.closed)));
    let log = p.log();
    assert_eq!(log[0].database.as_deref(), Some("test"));
    assert!(log[0].queries.iter().any(|q| q == "SHOW BINARY LOG STATUS"));
    assert!(
        log[0]
            .commands
            .contains(&mes_testkit::Command::RegisterSlave { server_id: 77 })
    );
    assert_eq!(log[0].commands.last(), Some(&mes_testkit::Command::Quit));
}

#[test]
fn malformed_input_closes_the_connection_without_panicking() {
    let p = primary(PrimaryConfig::new());
    // Garbage handshake response.
    let mut c = Client::connect(p.addr());
    c.write_packet(&[1, 2, 3]);
    let err = c.try_read_packet().expect("ERR packet");
    assert_eq!(err_of(&err), AuthSeen::Error(1043, "Bad handshake".into()));
    // Out-of-order sequence id.
    let mut c = Client::connect(p.addr());
    c.seq = 9;
    c.write_packet(&[0u8; 40]);
    assert!(c.try_read_packet().is_err(), "connection closed");
    assert!(p.wait_for_log(Duration::from_secs(5), |l| l.len() == 2
        && l.iter().all(|c| c.closed)));
    // The server still accepts logins.
    let (_c, seen) = Client::login(p.addr(), &login(USER, PASSWORD));
    assert_eq!(seen, AuthSeen::FullRsa);
}
