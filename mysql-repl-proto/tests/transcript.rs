//! Transcript tests: a scripted server, in memory, answers the client's packets; its bytes reach
//! the client in random chunk sizes, time comes from a fake clock. Each test asserts the exact
//! outcome: which auth path ran, what the client sent, the events, the typed errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use mysql_repl_proto::packet::{self, PacketReader, put_lenenc_bytes, put_lenenc_int};
use mysql_repl_proto::{
    ConnEvent, ConnectConfig, Connection, Output, ProtoError, SslMode, StartPosition, TlsOptions,
    auth,
};
use rand::{Rng, SeedableRng};

const SCRAMBLE: &[u8; 20] = b"abcdefghij0123456789";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum AuthMode {
    /// caching_sha2 with a warm cache: fast path.
    Fast,
    /// caching_sha2 with a cold cache: full authentication.
    Full,
    /// mysql_native_password via an auth switch.
    SwitchToNative,
}

struct Script {
    password: String,
    auth: AuthMode,
    rsa: Option<rsa::RsaPrivateKey>,
    variables: Vec<(&'static str, &'static str)>,
    events: Vec<Vec<u8>>,
    /// Send ERR 1236 instead of the events.
    dump_error: bool,
    /// Stop answering after the dump (to test the read deadline).
    silent_after_dump: bool,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            password: "s3cret ☃".into(),
            auth: AuthMode::Fast,
            rsa: None,
            variables: vec![
                ("log_bin", "ON"),
                ("binlog_format", "ROW"),
                ("binlog_row_image", "FULL"),
                ("binlog_row_metadata", "FULL"),
                ("binlog_checksum", "CRC32"),
                ("gtid_mode", "ON"),
                ("gtid_purged", ""),
                ("version", "8.4.3"),
            ],
            events: Vec::new(),
            dump_error: false,
            silent_after_dump: false,
        }
    }
}

/// What the client did, as the scripted server saw it.
#[derive(Default, Debug)]
struct Seen {
    queries: Vec<String>,
    cleartext_password: Option<Vec<u8>>,
    rsa_password: Option<Vec<u8>>,
    asked_public_key: bool,
    dump_command: Option<Vec<u8>>,
}

struct Server {
    script: Script,
    reader: PacketReader,
    out: Vec<u8>,
    stage: u8,
    seen: Seen,
}

fn greeting() -> Vec<u8> {
    let mut g = vec![10];
    g.extend_from_slice(b"8.4.3\0");
    g.extend_from_slice(&7u32.to_le_bytes());
    g.extend_from_slice(&SCRAMBLE[..8]);
    g.push(0);
    let caps: u32 = packet::caps::LONG_PASSWORD
        | packet::caps::PROTOCOL_41
        | packet::caps::SECURE_CONNECTION
        | packet::caps::PLUGIN_AUTH
        | packet::caps::PLUGIN_AUTH_LENENC
        | packet::caps::CONNECT_ATTRS
        | packet::caps::DEPRECATE_EOF
        | packet::caps::TRANSACTIONS;
    g.extend_from_slice(&(caps as u16).to_le_bytes());
    g.push(255);
    g.extend_from_slice(&2u16.to_le_bytes());
    g.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    g.push(21);
    g.extend_from_slice(&[0; 10]);
    g.extend_from_slice(&SCRAMBLE[8..]);
    g.push(0);
    g.extend_from_slice(b"caching_sha2_password\0");
    g
}

fn ok() -> Vec<u8> {
    vec![0, 0, 0, 2, 0, 0, 0]
}

fn err(code: u16, state: &str, msg: &str) -> Vec<u8> {
    let mut e = vec![0xff];
    e.extend_from_slice(&code.to_le_bytes());
    e.push(b'#');
    e.extend_from_slice(state.as_bytes());
    e.extend_from_slice(msg.as_bytes());
    e
}

fn column(name: &str) -> Vec<u8> {
    let mut c = Vec::new();
    for s in ["def", "", "", ""] {
        put_lenenc_bytes(&mut c, s.as_bytes());
    }
    put_lenenc_bytes(&mut c, name.as_bytes());
    put_lenenc_bytes(&mut c, b"");
    c.extend_from_slice(&[0x0c, 0x21, 0, 0, 1, 0, 0xfd, 0, 0, 0, 0, 0]);
    c
}

impl Server {
    fn new(script: Script) -> Self {
        let mut s = Self {
            script,
            reader: PacketReader::default(),
            out: Vec::new(),
            stage: 0,
            seen: Seen::default(),
        };
        let g = greeting();
        packet::write_packet(&mut s.out, &g, 0);
        s
    }

    fn reply(&mut self, seq: u8, payloads: &[Vec<u8>]) {
        let mut seq = seq;
        for p in payloads {
            seq = packet::write_packet(&mut self.out, p, seq);
        }
    }

    fn handle(&mut self, bytes: &[u8]) {
        self.reader.handle_input(bytes);
        while let Some((seq, p)) = self.reader.next_packet(1 << 30).unwrap() {
            // A server checks nothing here: each command restarts the sequence at 0.
            self.reader.allow_any_seq();
            self.packet(seq, &p);
        }
    }

    fn packet(&mut self, seq: u8, p: &[u8]) {
        let next = seq.wrapping_add(1);
        match self.stage {
            0 => {
                // HandshakeResponse41: caps(4) max(4) charset(1) filler(23) user NUL auth(lenenc) …
                let user_end = 32 + p[32..].iter().position(|&b| b == 0).unwrap();
                let mut r = packet::Reader::new(&p[user_end + 1..], "test");
                let token = r.lenenc_bytes("auth").unwrap().unwrap().to_vec();
                match self.script.auth {
                    AuthMode::Fast => {
                        let hash = auth::sha256_sha256(self.script.password.as_bytes());
                        assert!(
                            auth::caching_sha2_verify(&token, SCRAMBLE, &hash),
                            "fast-auth token"
                        );
                        self.reply(next, &[vec![1, 3], ok()]);
                        self.stage = 2;
                    }
                    AuthMode::Full => {
                        self.reply(next, &[vec![1, 4]]);
                        self.stage = 1;
                    }
                    AuthMode::SwitchToNative => {
                        let mut sw = vec![0xfe];
                        sw.extend_from_slice(b"mysql_native_password\0");
                        sw.extend_from_slice(SCRAMBLE);
                        sw.push(0);
                        self.reply(next, &[sw]);
                        self.stage = 10;
                    }
                }
            }
            1 => {
                // Full auth: cleartext (verified TLS), a public-key request, or RSA data.
                if p == [2] {
                    self.seen.asked_public_key = true;
                    let key = self.script.rsa.as_ref().expect("rsa key");
                    use rsa::pkcs8::EncodePublicKey;
                    let pem = key
                        .to_public_key()
                        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                        .unwrap();
                    let mut more = vec![1];
                    more.extend_from_slice(pem.as_bytes());
                    self.reply(next, &[more]);
                    return;
                }
                if let Some(key) = &self.script.rsa {
                    let pw = auth::rsa_decrypt_password(p, SCRAMBLE, key).unwrap();
                    self.seen.rsa_password = Some(pw.clone());
                    let ok_pw = pw == self.script.password.as_bytes();
                    self.reply(
                        next,
                        &[if ok_pw {
                            ok()
                        } else {
                            err(1045, "28000", "Access denied")
                        }],
                    );
                } else {
                    self.seen.cleartext_password = Some(p.to_vec());
                    self.reply(next, &[ok()]);
                }
                self.stage = 2;
            }
            10 => {
                let want = auth::native_password(self.script.password.as_bytes(), SCRAMBLE);
                self.reply(
                    next,
                    &[if p == want.as_slice() {
                        ok()
                    } else {
                        err(1045, "28000", "Access denied")
                    }],
                );
                self.stage = 2;
            }
            2 => match p.first() {
                Some(0x03) => {
                    let q = String::from_utf8_lossy(&p[1..]).into_owned();
                    self.seen.queries.push(q.clone());
                    if q.starts_with("SHOW GLOBAL VARIABLES") {
                        let mut rows = vec![{
                            let mut c = Vec::new();
                            put_lenenc_int(&mut c, 2);
                            c
                        }];
                        rows.push(column("Variable_name"));
                        rows.push(column("Value"));
                        for (k, v) in &self.script.variables {
                            let mut r = Vec::new();
                            put_lenenc_bytes(&mut r, k.as_bytes());
                            put_lenenc_bytes(&mut r, v.as_bytes());
                            rows.push(r);
                        }
                        rows.push(vec![0xfe, 0, 0, 2, 0, 0, 0]);
                        self.reply(next, &rows);
                    } else if q.starts_with("SHOW BINARY LOG STATUS") {
                        let mut cnt = Vec::new();
                        put_lenenc_int(&mut cnt, 2);
                        let mut row = Vec::new();
                        put_lenenc_bytes(&mut row, b"binlog.000007");
                        put_lenenc_bytes(&mut row, b"1234");
                        self.reply(
                            next,
                            &[
                                cnt,
                                column("File"),
                                column("Position"),
                                row,
                                vec![0xfe, 0, 0, 2, 0, 0, 0],
                            ],
                        );
                    } else {
                        self.reply(next, &[ok()]);
                    }
                }
                Some(0x15) => self.reply(next, &[ok()]),
                Some(0x12 | 0x1e) => {
                    self.seen.dump_command = Some(p.to_vec());
                    if self.script.dump_error {
                        self.reply(
                            next,
                            &[err(
                                1236,
                                "HY000",
                                "Could not find first log file name in binary log index file",
                            )],
                        );
                        return;
                    }
                    if self.script.silent_after_dump {
                        return;
                    }
                    let mut payloads: Vec<Vec<u8>> = self
                        .script
                        .events
                        .iter()
                        .map(|e| {
                            let mut p = vec![0];
                            p.extend_from_slice(e);
                            p
                        })
                        .collect();
                    payloads.push(vec![0xfe, 0, 0, 2, 0]);
                    self.reply(next, &payloads);
                }
                other => panic!("unexpected command {other:?}"),
            },
            _ => {}
        }
    }
}

struct Outcome {
    events: Vec<Bytes>,
    ready: bool,
    result: Option<Result<(), ProtoError>>,
    seen: Seen,
}

/// Run client and scripted server, delivering server bytes in random chunks.
fn converse(config: ConnectConfig, script: Script, seed: u64) -> Outcome {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let start = Instant::now();
    let mut now = start;
    let mut client = Connection::new(config, now).unwrap();
    let mut server = Server::new(script);
    let mut o = Outcome {
        events: Vec::new(),
        ready: false,
        result: None,
        seen: Seen::default(),
    };
    for _ in 0..100_000 {
        // Client → server.
        loop {
            match client.poll_output() {
                Output::Transmit(b) => server.handle(&b),
                Output::Event(ConnEvent::Binlog { event, .. }) => o.events.push(event),
                Output::Event(ConnEvent::Ready(_)) => o.ready = true,
                Output::Event(_) => {}
                Output::Closed(r) => {
                    o.result = Some(r);
                    o.seen = std::mem::take(&mut server.seen);
                    return o;
                }
                Output::Wait(deadline) => {
                    if server.out.is_empty() {
                        // Nothing in flight: let time pass to the deadline.
                        now = deadline.expect("a deadline while waiting");
                        client.handle_timeout(now);
                    }
                    break;
                }
                _ => {}
            }
        }
        if !server.out.is_empty() {
            let cap = if rng.gen_bool(0.5) { 97 } else { 1 << 20 };
            let n = rng.gen_range(1..=server.out.len().min(cap));
            let chunk: Vec<u8> = server.out.drain(..n).collect();
            now += Duration::from_millis(1);
            client.handle_input(now, &chunk);
        }
    }
    panic!("conversation did not finish");
}

fn config() -> ConnectConfig {
    ConnectConfig {
        user: "repl".into(),
        password: "s3cret ☃".into(),
        tls: TlsOptions {
            mode: SslMode::Disabled,
            ..TlsOptions::default()
        },
        start: StartPosition::FilePosition {
            file: "binlog.000001".into(),
            position: 4,
        },
        stop_at_end: true,
        ..ConnectConfig::default()
    }
}

/// A few real events (FDE, …) from an 8.x corpus file, or small synthetic ones.
fn some_events() -> Vec<Vec<u8>> {
    let mut evs = Vec::new();
    for i in 0..5u32 {
        let mut e = Vec::new();
        e.extend_from_slice(&(1_700_000_000 + i).to_le_bytes());
        e.push(27); // heartbeat: harmless for the client
        e.extend_from_slice(&1u32.to_le_bytes());
        let body = b"binlog.000001";
        e.extend_from_slice(&((19 + body.len()) as u32).to_le_bytes());
        e.extend_from_slice(&(100 * i).to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(body);
        evs.push(e);
    }
    // One event larger than a packet chunk (16 MiB + 10).
    let mut big = vec![0u8; packet::MAX_CHUNK + 10];
    big[4] = 29;
    big[9..13].copy_from_slice(&((packet::MAX_CHUNK + 10) as u32).to_le_bytes());
    evs.push(big);
    evs
}

#[test]
fn fast_auth_setup_and_dump_in_random_chunks() {
    for seed in 0..8 {
        let script = Script {
            events: some_events(),
            ..Script::default()
        };
        let o = converse(config(), script, seed);
        assert!(matches!(o.result, Some(Ok(()))), "{:?}", o.result);
        assert!(o.ready);
        assert_eq!(o.events.len(), 6);
        assert_eq!(
            o.events[5].len(),
            packet::MAX_CHUNK + 10,
            "16 MiB+ event reassembled"
        );
        assert!(
            o.seen
                .queries
                .iter()
                .any(|q| q.contains("@source_binlog_checksum"))
        );
        assert!(
            o.seen
                .queries
                .iter()
                .any(|q| q.contains("@source_heartbeat_period"))
        );
        let dump = o.seen.dump_command.unwrap();
        assert_eq!(dump[0], 0x12);
        assert_eq!(&dump[11..], b"binlog.000001");
        assert_eq!(
            u16::from_le_bytes([dump[5], dump[6]]),
            packet::BINLOG_DUMP_NON_BLOCK
        );
    }
}

#[test]
fn full_auth_over_plain_tcp_needs_consent_then_uses_rsa() {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    // Without consent: refused, password never sent.
    let script = Script {
        auth: AuthMode::Full,
        rsa: Some(key.clone()),
        ..Script::default()
    };
    let o = converse(config(), script, 1);
    assert!(
        matches!(&o.result, Some(Err(ProtoError::Auth(m))) if m.contains("never sent in clear")),
        "{:?}",
        o.result
    );
    assert!(o.seen.cleartext_password.is_none() && o.seen.rsa_password.is_none());
    // With allow_public_key_retrieval: the key is requested and the password RSA-encrypted.
    let script = Script {
        auth: AuthMode::Full,
        rsa: Some(key),
        ..Script::default()
    };
    let o = converse(
        ConnectConfig {
            allow_public_key_retrieval: true,
            ..config()
        },
        script,
        2,
    );
    assert!(matches!(o.result, Some(Ok(()))), "{:?}", o.result);
    assert!(o.seen.asked_public_key);
    assert_eq!(o.seen.rsa_password.unwrap(), "s3cret ☃".as_bytes());
}

#[test]
fn auth_switch_to_native_and_wrong_password() {
    let o = converse(
        config(),
        Script {
            auth: AuthMode::SwitchToNative,
            ..Script::default()
        },
        3,
    );
    assert!(matches!(o.result, Some(Ok(()))), "{:?}", o.result);
    let bad = ConnectConfig {
        password: "nope".into(),
        ..config()
    };
    let o = converse(
        bad,
        Script {
            auth: AuthMode::SwitchToNative,
            ..Script::default()
        },
        4,
    );
    assert!(
        matches!(&o.result, Some(Err(ProtoError::Auth(m))) if m.contains("access denied")),
        "{:?}",
        o.result
    );
}

#[test]
fn preflight_names_the_variable() {
    for (var, val, word) in [
        ("binlog_format", "STATEMENT", "binlog_format"),
        ("log_bin", "OFF", "log_bin"),
        ("binlog_row_image", "MINIMAL", "binlog_row_image"),
    ] {
        let mut script = Script::default();
        for v in &mut script.variables {
            if v.0 == var {
                v.1 = val;
            }
        }
        let o = converse(config(), script, 5);
        match o.result {
            Some(Err(ProtoError::Config(m))) => assert!(
                m.contains(word) && m.contains("SET GLOBAL") || m.contains("--log-bin"),
                "{m}"
            ),
            other => panic!("{var}: {other:?}"),
        }
    }
    // A GTID start that misses purged GTIDs.
    let mut script = Script::default();
    for v in &mut script.variables {
        if v.0 == "gtid_purged" {
            v.1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-100";
        }
    }
    let cfg = ConnectConfig {
        start: StartPosition::MysqlGtidSet("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5".into()),
        ..config()
    };
    let o = converse(cfg, script, 6);
    assert!(
        matches!(o.result, Some(Err(ProtoError::PositionUnavailable(_)))),
        "{:?}",
        o.result
    );
}

#[test]
fn gtid_dump_encodes_tagged_sets() {
    let cfg = ConnectConfig {
        start: StartPosition::MysqlGtidSet(
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:mytag:1-2".into(),
        ),
        ..config()
    };
    let o = converse(cfg, Script::default(), 7);
    assert!(matches!(o.result, Some(Ok(()))), "{:?}", o.result);
    let dump = o.seen.dump_command.unwrap();
    assert_eq!(dump[0], 0x1e);
    // flags(2) server_id(4) name_len(4) name(0) pos(8) data_len(4) data.
    let data = &dump[1 + 2 + 4 + 4 + 8 + 4..];
    let head = u64::from_le_bytes(data[..8].try_into().unwrap());
    assert_eq!(head & 0xff, 1, "tagged format");
    assert_eq!(
        (head >> 8) & 0xffff_ffff_ffff,
        2,
        "two entries (untagged + mytag)"
    );
}

#[test]
fn error_1236_and_read_deadline_are_typed() {
    let o = converse(
        config(),
        Script {
            dump_error: true,
            ..Script::default()
        },
        8,
    );
    assert!(
        matches!(o.result, Some(Err(ProtoError::PositionUnavailable(_)))),
        "{:?}",
        o.result
    );
    let cfg = ConnectConfig {
        stop_at_end: false,
        read_timeout: Duration::from_secs(30),
        ..config()
    };
    let o = converse(
        cfg,
        Script {
            silent_after_dump: true,
            ..Script::default()
        },
        9,
    );
    assert!(
        matches!(&o.result, Some(Err(ProtoError::Timeout(m))) if m.contains("read_timeout")),
        "{:?}",
        o.result
    );
}

#[test]
fn oversized_events_are_refused() {
    let cfg = ConnectConfig {
        max_event_size: 1 << 20,
        ..config()
    };
    let o = converse(
        cfg,
        Script {
            events: some_events(),
            ..Script::default()
        },
        10,
    );
    assert!(
        matches!(o.result, Some(Err(ProtoError::PacketTooLarge { .. }))),
        "{:?}",
        o.result
    );
}

#[test]
fn at_current_position_uses_binary_log_status() {
    let cfg = ConnectConfig {
        start: StartPosition::Current,
        ..config()
    };
    let o = converse(cfg, Script::default(), 11);
    assert!(matches!(o.result, Some(Ok(()))), "{:?}", o.result);
    let dump = o.seen.dump_command.unwrap();
    assert_eq!(u32::from_le_bytes(dump[1..5].try_into().unwrap()), 1234);
    assert_eq!(&dump[11..], b"binlog.000007");
}
