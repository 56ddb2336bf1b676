//! A minimal raw MySQL client for the protocol tests, written independently of the server
//! code (its own framing, hashing, RSA and TLS).
#![allow(dead_code)]

use rsa::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub const CLIENT_CONNECT_WITH_DB: u32 = 1 << 3;
pub const CLIENT_PROTOCOL_41: u32 = 1 << 9;
pub const CLIENT_SSL: u32 = 1 << 11;
pub const CLIENT_TRANSACTIONS: u32 = 1 << 13;
pub const CLIENT_SECURE_CONNECTION: u32 = 1 << 15;
pub const CLIENT_MULTI_RESULTS: u32 = 1 << 17;
pub const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
pub const CLIENT_CONNECT_ATTRS: u32 = 1 << 20;
pub const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
pub const CLIENT_DEPRECATE_EOF: u32 = 1 << 24;

pub const PASSWORD: &str = "Repl-Pa55";
pub const USER: &str = "repl";

/// The corpus file, or a loud skip (None).
pub fn corpus(rel: &str) -> Option<std::path::PathBuf> {
    match mes_testkit::corpus_file(rel) {
        Some(p) => Some(p),
        None => {
            eprintln!(
                "\n*** SKIPPED: corpus file {rel} not found under {} (set MES_CORPUS_DIR) ***\n",
                mes_testkit::corpus_dir().display()
            );
            None
        }
    }
}

trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

/// One physical packet.
#[derive(Debug)]
pub struct RawPacket {
    pub len: usize,
    pub seq: u8,
    pub payload: Vec<u8>,
}

pub struct Client {
    io: Box<dyn Io>,
    pub tcp: TcpStream,
    pub seq: u8,
    pub caps: u32,
    pub greeting: Greeting,
}

#[derive(Debug, Clone)]
pub struct Greeting {
    pub raw: Vec<u8>,
    pub version: String,
    pub conn_id: u32,
    pub caps: u32,
    pub charset: u8,
    pub status: u16,
    pub scramble: Vec<u8>,
    pub plugin: String,
}

/// Parse a HandshakeV10 strictly (panics with a message on any deviation).
pub fn parse_greeting(p: &[u8]) -> Greeting {
    assert_eq!(p[0], 10, "protocol version");
    let nul = p[1..].iter().position(|&b| b == 0).expect("version NUL") + 1;
    let version = String::from_utf8(p[1..nul].to_vec()).expect("utf8 version");
    let mut i = nul + 1;
    let conn_id = u32::from_le_bytes(p[i..i + 4].try_into().expect("4"));
    i += 4;
    let mut scramble = p[i..i + 8].to_vec();
    i += 8;
    assert_eq!(p[i], 0, "filler after auth-plugin-data-part-1");
    i += 1;
    let caps_lo = u16::from_le_bytes([p[i], p[i + 1]]);
    i += 2;
    let charset = p[i];
    i += 1;
    let status = u16::from_le_bytes([p[i], p[i + 1]]);
    i += 2;
    let caps_hi = u16::from_le_bytes([p[i], p[i + 1]]);
    i += 2;
    let caps = u32::from(caps_lo) | u32::from(caps_hi) << 16;
    let data_len = usize::from(p[i]);
    i += 1;
    assert_eq!(&p[i..i + 10], &[0u8; 10], "reserved");
    i += 10;
    let part2 = data_len.saturating_sub(8).max(13);
    scramble.extend_from_slice(&p[i..i + part2 - 1]);
    assert_eq!(p[i + part2 - 1], 0, "scramble NUL");
    i += part2;
    let end = p[i..].iter().position(|&b| b == 0).expect("plugin NUL") + i;
    let plugin = String::from_utf8(p[i..end].to_vec()).expect("plugin utf8");
    assert_eq!(end + 1, p.len(), "greeting ends after the plugin name");
    Greeting {
        raw: p.to_vec(),
        version,
        conn_id,
        caps,
        charset,
        status,
        scramble,
        plugin,
    }
}

pub fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

/// XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) || nonce)).
pub fn sha2_token(password: &str, nonce: &[u8]) -> Vec<u8> {
    let s1 = sha256(&[password.as_bytes()]);
    let s2 = sha256(&[&s1]);
    let h = sha256(&[&s2, nonce]);
    s1.iter().zip(h).map(|(a, b)| a ^ b).collect()
}

fn put_lenenc(out: &mut Vec<u8>, v: usize) {
    assert!(v < 251);
    out.push(v as u8);
}

/// Login options.
#[derive(Debug, Clone, Default)]
pub struct Login<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub deprecate_eof: bool,
    /// Use TLS, trusting this CA.
    pub tls_ca: Option<&'a Path>,
    pub database: Option<&'a str>,
}

/// What the server did during login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSeen {
    Fast,
    FullTls,
    FullRsa,
    Error(u16, String),
}

pub fn tls_client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(cert.expect("CA cert")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

impl Client {
    /// Connect and read the greeting.
    pub fn connect(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let io: Box<dyn Io> = Box::new(tcp.try_clone().expect("clone"));
        let mut c = Client {
            io,
            tcp,
            seq: 0,
            caps: 0,
            greeting: Greeting {
                raw: Vec::new(),
                version: String::new(),
                conn_id: 0,
                caps: 0,
                charset: 0,
                status: 0,
                scramble: Vec::new(),
                plugin: String::new(),
            },
        };
        let g = c.read_packet();
        c.greeting = parse_greeting(&g);
        c
    }

    /// Connect and authenticate; returns the client (logged in or not) and what happened.
    pub fn login(addr: SocketAddr, opts: &Login<'_>) -> (Client, AuthSeen) {
        let mut c = Client::connect(addr);
        let mut caps = CLIENT_PROTOCOL_41
            | CLIENT_SECURE_CONNECTION
            | CLIENT_PLUGIN_AUTH
            | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
            | CLIENT_CONNECT_ATTRS
            | CLIENT_TRANSACTIONS;
        if opts.deprecate_eof {
            caps |= CLIENT_DEPRECATE_EOF;
        }
        if opts.database.is_some() {
            caps |= CLIENT_CONNECT_WITH_DB;
        }
        if let Some(ca) = opts.tls_ca {
            caps |= CLIENT_SSL;
            let mut ssl = Vec::new();
            ssl.extend_from_slice(&caps.to_le_bytes());
            ssl.extend_from_slice(&(16u32 << 20).to_le_bytes());
            ssl.push(255);
            ssl.extend_from_slice(&[0u8; 23]);
            c.write_packet(&ssl);
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            let conn = rustls::ClientConnection::new(tls_client_config(ca), name).expect("tls");
            let tcp = c.tcp.try_clone().expect("clone");
            c.io = Box::new(rustls::StreamOwned::new(conn, tcp));
        }
        c.caps = caps;
        let token = sha2_token(opts.password, &c.greeting.scramble);
        let mut p = Vec::new();
        p.extend_from_slice(&caps.to_le_bytes());
        p.extend_from_slice(&(16u32 << 20).to_le_bytes());
        p.push(255);
        p.extend_from_slice(&[0u8; 23]);
        p.extend_from_slice(opts.user.as_bytes());
        p.push(0);
        put_lenenc(&mut p, token.len());
        p.extend_from_slice(&token);
        if let Some(db) = opts.database {
            p.extend_from_slice(db.as_bytes());
            p.push(0);
        }
        p.extend_from_slice(b"caching_sha2_password\0");
        let mut attrs = Vec::new();
        for (k, v) in [("_client_name", "mes-testkit-raw"), ("_pid", "1")] {
            put_lenenc(&mut attrs, k.len());
            attrs.extend_from_slice(k.as_bytes());
            put_lenenc(&mut attrs, v.len());
            attrs.extend_from_slice(v.as_bytes());
        }
        put_lenenc(&mut p, attrs.len());
        p.extend_from_slice(&attrs);
        c.write_packet(&p);

        let r = c.read_packet();
        let seen = match r.as_slice() {
            [0x01, 0x03] => {
                let ok = c.read_packet();
                assert_eq!(ok[0], 0x00, "OK after fast auth");
                AuthSeen::Fast
            }
            [0x01, 0x04] => {
                if opts.tls_ca.is_some() {
                    let mut pw = opts.password.as_bytes().to_vec();
                    pw.push(0);
                    c.write_packet(&pw);
                    match c.read_packet() {
                        ok if ok[0] == 0 => AuthSeen::FullTls,
                        err => err_of(&err),
                    }
                } else {
                    c.write_packet(&[0x02]);
                    let key = c.read_packet();
                    assert_eq!(key[0], 0x01, "AuthMoreData with the key");
                    let pem = std::str::from_utf8(&key[1..]).expect("pem utf8");
                    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
                    let public = rsa::RsaPublicKey::from_public_key_pem(pem).expect("public key");
                    let mut plain = opts.password.as_bytes().to_vec();
                    plain.push(0);
                    let nonce = c.greeting.scramble.clone();
                    for (i, b) in plain.iter_mut().enumerate() {
                        *b ^= nonce[i % nonce.len()];
                    }
                    let ct = public
                        .encrypt(
                            &mut rand::thread_rng(),
                            rsa::Oaep::new::<sha1::Sha1>(),
                            &plain,
                        )
                        .expect("encrypt");
                    c.write_packet(&ct);
                    match c.read_packet() {
                        ok if ok[0] == 0 => AuthSeen::FullRsa,
                        err => err_of(&err),
                    }
                }
            }
            err if err.first() == Some(&0xFF) => err_of(err),
            other => panic!("unexpected auth packet {other:?}"),
        };
        (c, seen)
    }

    /// Read one physical packet.
    pub fn read_raw(&mut self) -> io::Result<RawPacket> {
        let mut h = [0u8; 4];
        self.io.read_exact(&mut h)?;
        let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
        let mut payload = vec![0u8; len];
        self.io.read_exact(&mut payload)?;
        Ok(RawPacket {
            len,
            seq: h[3],
            payload,
        })
    }

    /// Read one logical packet, checking sequence ids.
    pub fn try_read_packet(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let p = self.read_raw()?;
            assert_eq!(p.seq, self.seq, "sequence id");
            self.seq = self.seq.wrapping_add(1);
            out.extend_from_slice(&p.payload);
            if p.len < 0xFF_FFFF {
                return Ok(out);
            }
        }
    }

    pub fn read_packet(&mut self) -> Vec<u8> {
        self.try_read_packet().expect("read packet")
    }

    pub fn write_packet(&mut self, payload: &[u8]) {
        assert!(payload.len() < 0xFF_FFFF);
        let mut buf = (payload.len() as u32).to_le_bytes()[..3].to_vec();
        buf.push(self.seq);
        self.seq = self.seq.wrapping_add(1);
        buf.extend_from_slice(payload);
        self.io.write_all(&buf).expect("write");
        self.io.flush().expect("flush");
    }

    /// Send a command (sequence id restarts at 0).
    pub fn command(&mut self, payload: &[u8]) {
        self.seq = 0;
        self.write_packet(payload);
    }

    /// COM_QUERY and read the whole response.
    pub fn query(&mut self, sql: &str) -> QueryResult {
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        self.command(&p);
        let first = self.read_packet();
        match first[0] {
            0x00 => return QueryResult::Ok,
            0xFF => {
                let code = u16::from_le_bytes([first[1], first[2]]);
                return QueryResult::Err(code, String::from_utf8_lossy(&first[9..]).into_owned());
            }
            _ => {}
        }
        let ncols = usize::from(first[0]);
        assert!(ncols < 251);
        let mut columns = Vec::new();
        for _ in 0..ncols {
            let def = self.read_packet();
            columns.push(parse_column(&def));
        }
        let deprecate = self.caps & CLIENT_DEPRECATE_EOF != 0;
        if !deprecate {
            let eof = self.read_packet();
            assert_eq!(eof.len(), 5, "EOF after column definitions");
            assert_eq!(eof[0], 0xFE);
        }
        let mut rows = Vec::new();
        loop {
            let p = self.read_packet();
            if p[0] == 0xFE && p.len() < 9 {
                if deprecate {
                    assert_eq!(p.len(), 7, "OK packet with 0xFE header");
                } else {
                    assert_eq!(p.len(), 5, "EOF packet");
                }
                break;
            }
            let mut i = 0;
            let mut row = Vec::new();
            for _ in 0..ncols {
                if p[i] == 0xFB {
                    row.push(None);
                    i += 1;
                } else {
                    let (n, used) = lenenc(&p[i..]);
                    i += used;
                    row.push(Some(String::from_utf8_lossy(&p[i..i + n]).into_owned()));
                    i += n;
                }
            }
            assert_eq!(i, p.len(), "row length");
            rows.push(row);
        }
        QueryResult::Rows(columns, rows)
    }
}

pub fn err_of(p: &[u8]) -> AuthSeen {
    assert_eq!(p[0], 0xFF, "expected ERR, got {p:?}");
    assert_eq!(p[3], b'#');
    AuthSeen::Error(
        u16::from_le_bytes([p[1], p[2]]),
        String::from_utf8_lossy(&p[9..]).into_owned(),
    )
}

pub fn lenenc(p: &[u8]) -> (usize, usize) {
    match p[0] {
        0xFC => (usize::from(u16::from_le_bytes([p[1], p[2]])), 3),
        0xFD => (
            usize::from(p[1]) | usize::from(p[2]) << 8 | usize::from(p[3]) << 16,
            4,
        ),
        0xFE => (
            u64::from_le_bytes(p[1..9].try_into().expect("8")) as usize,
            9,
        ),
        v => (usize::from(v), 1),
    }
}

/// Column name and type of a ColumnDefinition41.
pub fn parse_column(p: &[u8]) -> (String, u8) {
    let mut i = 0;
    let mut strs = Vec::new();
    for _ in 0..6 {
        let (n, used) = lenenc(&p[i..]);
        i += used;
        strs.push(String::from_utf8_lossy(&p[i..i + n]).into_owned());
        i += n;
    }
    assert_eq!(strs[0], "def");
    assert_eq!(p[i], 0x0c, "length of fixed fields");
    let ty = p[i + 1 + 2 + 4];
    assert_eq!(p.len(), i + 13, "column definition length");
    (strs[4].clone(), ty)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryResult {
    Ok,
    Err(u16, String),
    Rows(Vec<(String, u8)>, Vec<Vec<Option<String>>>),
}

impl QueryResult {
    pub fn rows(self) -> (Vec<String>, Vec<Vec<Option<String>>>) {
        match self {
            QueryResult::Rows(c, r) => (c.into_iter().map(|(n, _)| n).collect(), r),
            other => panic!("expected rows, got {other:?}"),
        }
    }
}

/// COM_BINLOG_DUMP payload.
pub fn com_binlog_dump(pos: u32, flags: u16, server_id: u32, file: &str) -> Vec<u8> {
    let mut p = vec![0x12];
    p.extend_from_slice(&pos.to_le_bytes());
    p.extend_from_slice(&flags.to_le_bytes());
    p.extend_from_slice(&server_id.to_le_bytes());
    p.extend_from_slice(file.as_bytes());
    p
}

/// COM_BINLOG_DUMP_GTID payload.
pub fn com_binlog_dump_gtid(
    flags: u16,
    server_id: u32,
    file: &str,
    pos: u64,
    set: &[u8],
) -> Vec<u8> {
    let mut p = vec![0x1e];
    p.extend_from_slice(&(flags | 4).to_le_bytes());
    p.extend_from_slice(&server_id.to_le_bytes());
    p.extend_from_slice(&(file.len() as u32).to_le_bytes());
    p.extend_from_slice(file.as_bytes());
    p.extend_from_slice(&pos.to_le_bytes());
    p.extend_from_slice(&(set.len() as u32).to_le_bytes());
    p.extend_from_slice(set);
    p
}

impl Client {
    /// Read raw bytes until the server closes the connection (or an error); returns them.
    pub fn read_until_closed(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match self.io.read(&mut buf) {
                Ok(0) | Err(_) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    }
}
