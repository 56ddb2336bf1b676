//! [`TestPrimary`]: the listener, the per-connection threads, the handshake and
//! authentication, and the command loop.

use crate::auth;
use crate::binlog::BinlogFile;
use crate::config::{
    Account, AuthPlugin, Fault, HeartbeatVersion, PrimaryConfig, ScriptedResponse,
};
use crate::gtid::GtidSet;
use crate::log::{AuthOutcome, Command, ConnectionLog};
use crate::query::{self, Column, QueryCtx, Response, SessionState};
use crate::tls::{RsaKeys, TestPki};
use crate::wire::{PacketIo, Reader, STATUS_AUTOCOMMIT, put_lenenc_int, put_lenenc_str};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// Capability flags.
pub(crate) const CLIENT_LONG_PASSWORD: u32 = 1;
pub(crate) const CLIENT_FOUND_ROWS: u32 = 1 << 1;
pub(crate) const CLIENT_LONG_FLAG: u32 = 1 << 2;
pub(crate) const CLIENT_CONNECT_WITH_DB: u32 = 1 << 3;
pub(crate) const CLIENT_NO_SCHEMA: u32 = 1 << 4;
pub(crate) const CLIENT_ODBC: u32 = 1 << 6;
pub(crate) const CLIENT_IGNORE_SPACE: u32 = 1 << 8;
pub(crate) const CLIENT_PROTOCOL_41: u32 = 1 << 9;
pub(crate) const CLIENT_INTERACTIVE: u32 = 1 << 10;
pub(crate) const CLIENT_SSL: u32 = 1 << 11;
pub(crate) const CLIENT_IGNORE_SIGPIPE: u32 = 1 << 12;
pub(crate) const CLIENT_TRANSACTIONS: u32 = 1 << 13;
pub(crate) const CLIENT_RESERVED: u32 = 1 << 14;
pub(crate) const CLIENT_SECURE_CONNECTION: u32 = 1 << 15;
pub(crate) const CLIENT_MULTI_STATEMENTS: u32 = 1 << 16;
pub(crate) const CLIENT_MULTI_RESULTS: u32 = 1 << 17;
pub(crate) const CLIENT_PS_MULTI_RESULTS: u32 = 1 << 18;
pub(crate) const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
pub(crate) const CLIENT_CONNECT_ATTRS: u32 = 1 << 20;
pub(crate) const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
pub(crate) const CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS: u32 = 1 << 22;
pub(crate) const CLIENT_DEPRECATE_EOF: u32 = 1 << 24;

/// Capabilities the primary announces (plus `CLIENT_SSL` when TLS is on). Not announced:
/// compression, LOCAL INFILE, session tracking, query attributes, optional metadata.
pub(crate) const SERVER_CAPABILITIES: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_FOUND_ROWS
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_NO_SCHEMA
    | CLIENT_ODBC
    | CLIENT_IGNORE_SPACE
    | CLIENT_PROTOCOL_41
    | CLIENT_INTERACTIVE
    | CLIENT_IGNORE_SIGPIPE
    | CLIENT_TRANSACTIONS
    | CLIENT_RESERVED
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_STATEMENTS
    | CLIENT_MULTI_RESULTS
    | CLIENT_PS_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS
    | CLIENT_DEPRECATE_EOF;

/// `utf8mb4_0900_ai_ci`, MySQL 8's default collation.
const DEFAULT_COLLATION: u8 = 255;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// State shared by the listener and the connection threads.
pub(crate) struct Shared {
    pub accounts: Vec<Account>,
    pub server_version: String,
    pub server_id: u32,
    pub globals: BTreeMap<String, String>,
    pub binlogs: Vec<BinlogFile>,
    pub scripted: Vec<(String, ScriptedResponse)>,
    pub heartbeat_period: Option<Duration>,
    pub heartbeat_version: HeartbeatVersion,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub rsa: Option<Arc<RsaKeys>>,
    pub cache: Mutex<HashSet<String>>,
    pub faults: Mutex<VecDeque<Fault>>,
    pub fault_always: Option<Fault>,
    pub logs: Mutex<Vec<ConnectionLog>>,
    pub stop: AtomicBool,
    next_id: AtomicU32,
    conns: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
}

impl Shared {
    pub(crate) fn rsa_keys(&self) -> io::Result<Arc<RsaKeys>> {
        match &self.rsa {
            Some(k) => Ok(k.clone()),
            None => RsaKeys::shared_generated(),
        }
    }

    pub(crate) fn next_fault(&self) -> Option<Fault> {
        lock(&self.faults)
            .pop_front()
            .or_else(|| self.fault_always.clone())
    }
}

/// A scripted MySQL 8.4 primary listening on `127.0.0.1` (ephemeral port). Stops (and joins
/// its threads) on [`TestPrimary::stop`] or drop.
///
/// ```no_run
/// use mes_testkit::{AuthPlugin, PrimaryConfig, TestPrimary, corpus_file};
/// # fn main() -> std::io::Result<()> {
/// let file = corpus_file("mysql-binlog-connector-rust/mysql-bin.000057").expect("corpus");
/// let primary = TestPrimary::start(
///     PrimaryConfig::new()
///         .account("repl", "secret", AuthPlugin::CachingSha2Password)
///         .tls(true)
///         .binlog_file(file),
/// )?;
/// println!("connect to {} (CA: {:?})", primary.addr(), primary.ca_pem_path());
/// # Ok(())
/// # }
/// ```
pub struct TestPrimary {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    pki: Option<TestPki>,
}

impl std::fmt::Debug for TestPrimary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPrimary")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The global variables before per-test overrides.
fn default_globals(cfg: &PrimaryConfig, binlogs: &[BinlogFile]) -> BTreeMap<String, String> {
    let mut executed = GtidSet::new();
    if let Some(first) = binlogs.first() {
        executed.union_with(&first.previous_gtids);
    }
    for f in binlogs {
        executed.union_with(&f.gtids);
    }
    let purged = binlogs
        .first()
        .map(|f| f.previous_gtids.clone())
        .unwrap_or_default();
    let checksum = match binlogs.first() {
        Some(f) if !f.crc32 => "NONE",
        _ => "CRC32",
    };
    let pairs: Vec<(&str, String)> = vec![
        ("autocommit", "1".into()),
        ("binlog_checksum", checksum.into()),
        ("binlog_expire_logs_seconds", "2592000".into()),
        ("binlog_format", "ROW".into()),
        ("binlog_gtid_simple_recovery", "ON".into()),
        ("binlog_row_image", "FULL".into()),
        ("binlog_row_metadata", "FULL".into()),
        ("binlog_row_value_options", "".into()),
        ("binlog_rows_query_log_events", "OFF".into()),
        ("binlog_transaction_compression", "OFF".into()),
        ("character_set_client", "utf8mb4".into()),
        ("character_set_connection", "utf8mb4".into()),
        ("character_set_database", "utf8mb4".into()),
        ("character_set_results", "utf8mb4".into()),
        ("character_set_server", "utf8mb4".into()),
        ("collation_connection", "utf8mb4_0900_ai_ci".into()),
        ("collation_server", "utf8mb4_0900_ai_ci".into()),
        ("enforce_gtid_consistency", "ON".into()),
        ("gtid_executed", executed.to_string()),
        ("gtid_mode", "ON".into()),
        ("gtid_purged", purged.to_string()),
        ("hostname", "mes-testkit".into()),
        ("init_connect", "".into()),
        ("interactive_timeout", "28800".into()),
        ("license", "GPL".into()),
        ("log_bin", "1".into()),
        ("log_bin_basename", "/var/lib/mysql/binlog".into()),
        ("log_replica_updates", "1".into()),
        ("lower_case_table_names", "0".into()),
        ("max_allowed_packet", "67108864".into()),
        ("net_buffer_length", "16384".into()),
        ("net_write_timeout", "60".into()),
        ("performance_schema", "1".into()),
        ("port", "3306".into()),
        ("server_id", cfg.server_id.to_string()),
        ("server_uuid", cfg.server_uuid.clone()),
        ("sql_mode", "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION".into()),
        ("system_time_zone", "UTC".into()),
        ("time_zone", "SYSTEM".into()),
        ("transaction_isolation", "REPEATABLE-READ".into()),
        ("transaction_read_only", "0".into()),
        ("version", cfg.server_version.clone()),
        ("version_comment", "MySQL Community Server - GPL".into()),
        ("version_compile_machine", "x86_64".into()),
        ("version_compile_os", "Linux".into()),
        ("wait_timeout", "28800".into()),
    ];
    let mut globals: BTreeMap<String, String> =
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    for (name, value) in &cfg.variables {
        match value {
            Some(v) => globals.insert(name.clone(), v.clone()),
            None => globals.remove(name),
        };
    }
    globals
}

impl TestPrimary {
    /// Load the binlogs, generate the TLS material when asked, bind `127.0.0.1:0` and start
    /// accepting connections.
    pub fn start(config: PrimaryConfig) -> io::Result<TestPrimary> {
        let mut binlogs = Vec::new();
        for (path, name) in &config.binlogs {
            binlogs.push(BinlogFile::load(path, name)?);
        }
        if let Some(size) = config.large_event {
            let last = binlogs.last().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "large_event needs at least one binlog file",
                )
            })?;
            let mut all = GtidSet::new();
            if let Some(first) = binlogs.first() {
                all.union_with(&first.previous_gtids);
            }
            for f in &binlogs {
                all.union_with(&f.gtids);
            }
            let synthetic = BinlogFile::synthetic_large(last, &all, size)?;
            binlogs.push(synthetic);
        }
        let globals = default_globals(&config, &binlogs);
        let pki = if config.tls {
            Some(crate::tls::generate_pki()?)
        } else {
            None
        };
        let rsa = match &config.rsa_private_pem {
            Some(pem) => Some(Arc::new(RsaKeys::from_pem(pem)?)),
            None => None,
        };
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            accounts: config.accounts.clone(),
            server_version: config.server_version.clone(),
            server_id: config.server_id,
            globals,
            binlogs,
            scripted: config.scripted.clone(),
            heartbeat_period: config.heartbeat_period,
            heartbeat_version: config.heartbeat_version,
            tls: pki.as_ref().map(|p| p.server_config.clone()),
            rsa,
            cache: Mutex::new(config.warm.iter().cloned().collect()),
            faults: Mutex::new(config.faults.iter().cloned().collect()),
            fault_always: config.fault_always.clone(),
            logs: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            next_id: AtomicU32::new(8),
            conns: Mutex::new(Vec::new()),
        });
        let accept_shared = shared.clone();
        let accept = std::thread::Builder::new()
            .name("mes-testkit-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))?;
        Ok(TestPrimary {
            addr,
            shared,
            accept: Some(accept),
            pki,
        })
    }

    /// The listening address (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Path of the CA certificate (PEM) that signed the server certificate, when TLS is on.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.pki.as_ref().map(|p| p.ca_path.as_path())
    }

    /// The CA certificate (PEM), when TLS is on.
    pub fn ca_pem(&self) -> Option<&str> {
        self.pki.as_ref().map(|p| p.ca_pem.as_str())
    }

    /// The directory holding `ca.pem`, `server-cert.pem` and `server-key.pem` (TLS on).
    pub fn tls_dir(&self) -> Option<&Path> {
        self.pki.as_ref().map(|p| p.dir.path())
    }

    /// The RSA public key (PEM) the server sends for `caching_sha2_password` full auth
    /// (generates the process-wide key on first use when none was configured).
    pub fn rsa_public_key_pem(&self) -> io::Result<String> {
        Ok(self.shared.rsa_keys()?.public_pem.clone())
    }

    /// Snapshot of every connection's record, in accept order.
    pub fn log(&self) -> Vec<ConnectionLog> {
        lock(&self.shared.logs).clone()
    }

    /// Wait until `pred` holds for the log (polling every 10 ms); false on timeout.
    pub fn wait_for_log(&self, timeout: Duration, pred: impl Fn(&[ConnectionLog]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&lock(&self.shared.logs)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the `caching_sha2_password` fast-auth cache is warm for `user`.
    pub fn is_cache_warm(&self, user: &str) -> bool {
        lock(&self.shared.cache).contains(user)
    }

    /// Warm or flush the fast-auth cache entry of `user` (like `FLUSH PRIVILEGES` when false).
    pub fn set_cache_warm(&self, user: &str, warm: bool) {
        let mut cache = lock(&self.shared.cache);
        if warm {
            cache.insert(user.into());
        } else {
            cache.remove(user);
        }
    }

    /// Queue another dump fault at runtime (same semantics as [`PrimaryConfig::fault`]).
    pub fn push_fault(&self, fault: Fault) {
        lock(&self.shared.faults).push_back(fault);
    }

    /// The served binlog files: (name, size), in order.
    pub fn binlog_files(&self) -> Vec<(String, u64)> {
        self.shared
            .binlogs
            .iter()
            .map(|f| (f.name.clone(), f.size()))
            .collect()
    }

    /// The bytes of a served binlog file (including a synthetic large-event file).
    pub fn binlog_bytes(&self, name: &str) -> Option<&[u8]> {
        self.shared
            .binlogs
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.bytes.as_slice())
    }

    /// The global variables as answered to `SELECT @@...`.
    pub fn variables(&self) -> &BTreeMap<String, String> {
        &self.shared.globals
    }

    /// Stop accepting, close every connection and join all threads. Idempotent.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let conns: Vec<_> = lock(&self.shared.conns).drain(..).collect();
        for (stream, _) in &conns {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        for (_, handle) in conns {
            let _ = handle.join();
        }
    }
}

impl Drop for TestPrimary {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = spawn_connection(stream, &shared) {
                    eprintln!("mes-testkit: could not start a connection thread: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                eprintln!("mes-testkit: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn spawn_connection(stream: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    let _ = stream.set_nodelay(true);
    let handle_copy = stream.try_clone()?;
    let handle_socket = stream.try_clone()?;
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let log_idx = {
        let mut logs = lock(&shared.logs);
        logs.push(ConnectionLog {
            id,
            ..ConnectionLog::default()
        });
        logs.len() - 1
    };
    let thread_shared = shared.clone();
    let handle = std::thread::Builder::new()
        .name(format!("mes-testkit-conn-{id}"))
        .spawn(move || {
            let session_shared = thread_shared.clone();
            let run = std::panic::AssertUnwindSafe(move || {
                PacketIo::new(stream).and_then(|io| {
                    let mut session = Session::new(session_shared, io, id, log_idx);
                    let result = session.run();
                    // The listener keeps a clone of the socket (for stop()): close it here.
                    session.io.shutdown();
                    result
                })
            });
            // A bug must not take the test process down: record it and close.
            let result = std::panic::catch_unwind(run).unwrap_or_else(|_| {
                let _ = handle_socket.shutdown(std::net::Shutdown::Both);
                Err(io::Error::other(
                    "mes-testkit bug: the connection thread panicked",
                ))
            });
            let mut logs = lock(&thread_shared.logs);
            if let Some(l) = logs.get_mut(log_idx) {
                if let Err(e) = result {
                    l.notes.push(format!("connection ended: {e}"));
                }
                l.closed = true;
            }
        })?;
    // Join finished connection threads (and drop their socket clones) as we go, so a test
    // that reconnects thousands of times does not pile up threads and descriptors.
    let finished: Vec<_> = {
        let mut conns = lock(&shared.conns);
        let (done, live): (Vec<_>, Vec<_>) = conns.drain(..).partition(|(_, h)| h.is_finished());
        *conns = live;
        conns.push((handle_copy, handle));
        done
    };
    for (_, h) in finished {
        let _ = h.join();
    }
    Ok(())
}

/// The client's HandshakeResponse41.
struct ClientHello {
    caps: u32,
    charset: u8,
    user: String,
    auth_response: Vec<u8>,
    database: Option<String>,
    plugin: Option<String>,
    attrs: Vec<(String, String)>,
}

fn parse_hello(pkt: &[u8]) -> Option<ClientHello> {
    let mut r = Reader::new(pkt);
    let caps = r.u32()?;
    let _max_packet = r.u32()?;
    let charset = r.u8()?;
    r.bytes(23)?;
    let user = String::from_utf8_lossy(r.nul_str()).into_owned();
    let auth_response = if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        r.lenenc_bytes()?.to_vec()
    } else if caps & CLIENT_SECURE_CONNECTION != 0 {
        let n = r.u8()?;
        r.bytes(usize::from(n))?.to_vec()
    } else {
        r.nul_str().to_vec()
    };
    let database = if caps & CLIENT_CONNECT_WITH_DB != 0 && r.remaining() > 0 {
        Some(String::from_utf8_lossy(r.nul_str()).into_owned())
    } else {
        None
    };
    let plugin = if caps & CLIENT_PLUGIN_AUTH != 0 && r.remaining() > 0 {
        Some(String::from_utf8_lossy(r.nul_str()).into_owned())
    } else {
        None
    };
    let mut attrs = Vec::new();
    if caps & CLIENT_CONNECT_ATTRS != 0 && r.remaining() > 0 {
        let total = usize::try_from(r.lenenc_int()?).ok()?;
        let block = r.bytes(total)?;
        let mut a = Reader::new(block);
        while a.remaining() > 0 {
            let k = a.lenenc_bytes()?;
            let v = a.lenenc_bytes()?;
            attrs.push((
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ));
        }
    }
    Some(ClientHello {
        caps,
        charset,
        user,
        auth_response,
        database: database.filter(|d| !d.is_empty()),
        plugin,
        attrs,
    })
}

/// How a dump ended, for the command loop.
pub(crate) enum After {
    /// Back to the command phase.
    Continue,
    /// Close the connection.
    Close,
}

/// One client connection.
pub(crate) struct Session {
    pub shared: Arc<Shared>,
    pub io: PacketIo,
    pub id: u32,
    log_idx: usize,
    /// Negotiated capabilities (server & client).
    pub caps: u32,
    pub charset: u8,
    pub user: String,
    pub sql: SessionState,
}

impl Session {
    fn new(shared: Arc<Shared>, io: PacketIo, id: u32, log_idx: usize) -> Self {
        Self {
            shared,
            io,
            id,
            log_idx,
            caps: 0,
            charset: DEFAULT_COLLATION,
            user: String::new(),
            sql: SessionState::new(),
        }
    }

    /// Update this connection's log record.
    pub(crate) fn log(&self, f: impl FnOnce(&mut ConnectionLog)) {
        if let Some(l) = lock(&self.shared.logs).get_mut(self.log_idx) {
            f(l);
        }
    }

    pub(crate) fn note(&self, msg: impl Into<String>) {
        let msg = msg.into();
        self.log(|l| l.notes.push(msg));
    }

    pub(crate) fn status(&self) -> u16 {
        if self.sql.autocommit {
            STATUS_AUTOCOMMIT
        } else {
            0
        }
    }

    fn run(&mut self) -> io::Result<()> {
        if !self.handshake()? {
            return Ok(());
        }
        self.command_loop()
    }

    /// Greeting, optional TLS, HandshakeResponse41, authentication. Ok(false) when the
    /// client was refused (ERR already sent).
    fn handshake(&mut self) -> io::Result<bool> {
        let scramble = auth::new_scramble();
        let mut server_caps = SERVER_CAPABILITIES;
        if self.shared.tls.is_some() {
            server_caps |= CLIENT_SSL;
        }
        let mut g = vec![10u8];
        g.extend_from_slice(self.shared.server_version.as_bytes());
        g.push(0);
        g.extend_from_slice(&self.id.to_le_bytes());
        g.extend_from_slice(&scramble[..8]);
        g.push(0);
        g.extend_from_slice(&(server_caps as u16).to_le_bytes());
        g.push(DEFAULT_COLLATION);
        g.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
        g.extend_from_slice(&((server_caps >> 16) as u16).to_le_bytes());
        g.push((auth::SCRAMBLE_LEN + 1) as u8);
        g.extend_from_slice(&[0u8; 10]);
        g.extend_from_slice(&scramble[8..]);
        g.push(0);
        g.extend_from_slice(b"caching_sha2_password\0");
        self.io.write_packet(&g)?;

        let mut pkt = self.io.read_packet()?;
        let caps = Reader::new(&pkt).u32().unwrap_or(0);
        if caps & CLIENT_SSL != 0 && pkt.len() == 32 {
            let Some(cfg) = self.shared.tls.clone() else {
                self.note("client sent SSLRequest but TLS is off");
                return Ok(false);
            };
            self.io.upgrade_tls(cfg)?;
            self.log(|l| l.tls = true);
            pkt = self.io.read_packet()?;
        }
        let Some(hello) = parse_hello(&pkt) else {
            self.note("malformed HandshakeResponse41");
            self.io.write_err(1043, "08S01", "Bad handshake")?;
            return Ok(false);
        };
        self.log(|l| {
            l.client_capabilities = hello.caps;
            l.client_charset = hello.charset;
            l.user = Some(hello.user.clone());
            l.database = hello.database.clone();
            l.client_plugin = hello.plugin.clone();
            l.attrs = hello.attrs.clone();
        });
        if hello.caps & CLIENT_PROTOCOL_41 == 0 {
            self.io.write_err(1043, "08S01", "Bad handshake")?;
            self.log(|l| {
                l.auth = Some(AuthOutcome::Denied {
                    reason: "client lacks CLIENT_PROTOCOL_41".into(),
                })
            });
            return Ok(false);
        }
        self.caps = hello.caps & server_caps;
        self.charset = hello.charset;
        self.user = hello.user.clone();
        self.sql.database = hello.database.clone();
        self.authenticate(&hello, &scramble)
    }

    fn deny(&mut self, used_password: bool, reason: &str) -> io::Result<bool> {
        let msg = format!(
            "Access denied for user '{}'@'localhost' (using password: {})",
            self.user,
            if used_password { "YES" } else { "NO" }
        );
        let reason = reason.to_string();
        self.log(|l| l.auth = Some(AuthOutcome::Denied { reason }));
        self.io.write_err(1045, "28000", &msg)?;
        Ok(false)
    }

    fn accept(&mut self, outcome: AuthOutcome) -> io::Result<bool> {
        self.log(|l| l.auth = Some(outcome));
        self.io.write_ok(self.status())?;
        Ok(true)
    }

    fn authenticate(&mut self, hello: &ClientHello, scramble: &[u8; 20]) -> io::Result<bool> {
        let account = self
            .shared
            .accounts
            .iter()
            .find(|a| a.user == hello.user)
            .cloned();
        let Some(account) = account else {
            return self.deny(!hello.auth_response.is_empty(), "unknown user");
        };
        let client_plugin = hello
            .plugin
            .clone()
            .unwrap_or_else(|| "mysql_native_password".into());
        let mut response = hello.auth_response.clone();
        if client_plugin != account.plugin.name() {
            let mut p = vec![0xFE];
            p.extend_from_slice(account.plugin.name().as_bytes());
            p.push(0);
            p.extend_from_slice(scramble);
            p.push(0);
            self.io.write_packet(&p)?;
            let name = account.plugin.name().to_string();
            self.log(|l| l.auth_switch = Some(name));
            response = self.io.read_packet()?;
        }
        match account.plugin {
            AuthPlugin::MysqlNativePassword => {
                if auth::verify_native_token(&account.password, scramble, &response) {
                    self.accept(AuthOutcome::NativePassword)
                } else {
                    self.deny(!response.is_empty(), "mysql_native_password mismatch")
                }
            }
            AuthPlugin::CachingSha2Password => self.caching_sha2(&account, scramble, response),
        }
    }

    fn caching_sha2(
        &mut self,
        account: &Account,
        scramble: &[u8; 20],
        response: Vec<u8>,
    ) -> io::Result<bool> {
        if account.password.is_empty() {
            return if response.is_empty() {
                self.accept(AuthOutcome::EmptyPassword)
            } else {
                self.deny(true, "account has no password")
            };
        }
        if response.is_empty() {
            return self.deny(false, "no password given");
        }
        let warm = lock(&self.shared.cache).contains(&account.user);
        if warm && auth::verify_caching_sha2_token(&account.password, scramble, &response) {
            self.io.write_packet(&[0x01, 0x03])?;
            return self.accept(AuthOutcome::FastAuth);
        }
        // Cache cold or scramble mismatch: ask for the full password.
        self.io.write_packet(&[0x01, 0x04])?;
        let mut pkt = self.io.read_packet()?;
        if self.io.is_tls() {
            let password = pkt.strip_suffix(&[0]).unwrap_or(&pkt);
            if password == account.password.as_bytes() {
                lock(&self.shared.cache).insert(account.user.clone());
                return self.accept(AuthOutcome::FullAuthTls);
            }
            return self.deny(true, "wrong password (full auth over TLS)");
        }
        let keys = self.shared.rsa_keys()?;
        let mut key_requested = false;
        if pkt == [0x02] {
            let mut p = vec![0x01];
            p.extend_from_slice(keys.public_pem.as_bytes());
            self.io.write_packet(&p)?;
            key_requested = true;
            pkt = self.io.read_packet()?;
        }
        if pkt.len() != keys.size() {
            return self.deny(
                true,
                "full auth over plain TCP without RSA (cleartext password refused)",
            );
        }
        let Some(plain) = keys.decrypt(&pkt) else {
            return self.deny(true, "RSA decryption failed");
        };
        let mut password: Vec<u8> = plain
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ scramble[i % scramble.len()])
            .collect();
        if password.last() == Some(&0) {
            password.pop();
        }
        if password == account.password.as_bytes() {
            lock(&self.shared.cache).insert(account.user.clone());
            self.accept(AuthOutcome::FullAuthRsa { key_requested })
        } else {
            self.deny(true, "wrong password (full auth over RSA)")
        }
    }

    fn command_loop(&mut self) -> io::Result<()> {
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            self.io.reset_seq();
            let pkt = match self.io.read_packet() {
                Ok(p) => p,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.note("client closed the connection");
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let Some((&cmd, body)) = pkt.split_first() else {
                self.note("empty command packet");
                return Ok(());
            };
            match cmd {
                0x01 => {
                    self.log(|l| l.commands.push(Command::Quit));
                    return Ok(());
                }
                0x02 => {
                    let db = String::from_utf8_lossy(body).into_owned();
                    self.log(|l| l.commands.push(Command::InitDb(db.clone())));
                    self.sql.database = Some(db);
                    self.io.write_ok(self.status())?;
                }
                0x03 => {
                    let sql = String::from_utf8_lossy(body).into_owned();
                    self.log(|l| {
                        l.commands.push(Command::Query(sql.clone()));
                        l.queries.push(sql.clone());
                    });
                    self.query(&sql)?;
                }
                0x0e => {
                    self.log(|l| l.commands.push(Command::Ping));
                    self.io.write_ok(self.status())?;
                }
                0x15 => {
                    let server_id = Reader::new(body).u32().unwrap_or(0);
                    self.log(|l| l.commands.push(Command::RegisterSlave { server_id }));
                    self.io.write_ok(self.status())?;
                }
                0x12 | 0x1e => match self.binlog_dump(&pkt)? {
                    After::Continue => {}
                    After::Close => return Ok(()),
                },
                0x1f => {
                    self.log(|l| l.commands.push(Command::Other(cmd)));
                    self.sql = SessionState {
                        database: self.sql.database.clone(),
                        ..SessionState::new()
                    };
                    self.io.write_ok(self.status())?;
                }
                _ => {
                    self.log(|l| l.commands.push(Command::Other(cmd)));
                    self.io.write_err(1047, "08S01", "Unknown command")?;
                }
            }
        }
    }

    fn query(&mut self, sql: &str) -> io::Result<()> {
        let shared = self.shared.clone();
        let user = self.user.clone();
        let ctx = QueryCtx {
            globals: &shared.globals,
            binlogs: &shared.binlogs,
            scripted: &shared.scripted,
            user: &user,
            connection_id: self.id,
        };
        match query::handle_query(sql, &ctx, &mut self.sql) {
            Response::Ok => self.io.write_ok(self.status()),
            Response::Err {
                code,
                state,
                message,
            } => self.io.write_err(code, &state, &message),
            Response::Rows { columns, rows } => self.write_rows(&columns, &rows),
        }
    }

    /// A text result set; classic EOF packets unless the client set `CLIENT_DEPRECATE_EOF`.
    fn write_rows(&mut self, columns: &[Column], rows: &[Vec<Option<String>>]) -> io::Result<()> {
        let deprecate_eof = self.caps & CLIENT_DEPRECATE_EOF != 0;
        let mut count = Vec::new();
        put_lenenc_int(&mut count, columns.len() as u64);
        self.io.write_packet(&count)?;
        for (i, col) in columns.iter().enumerate() {
            let max_len = rows
                .iter()
                .filter_map(|r| r.get(i).and_then(|v| v.as_ref()))
                .map(|v| v.len())
                .max()
                .unwrap_or(0);
            let mut d = Vec::new();
            put_lenenc_str(&mut d, b"def");
            put_lenenc_str(&mut d, b"");
            put_lenenc_str(&mut d, b"");
            put_lenenc_str(&mut d, b"");
            put_lenenc_str(&mut d, col.name.as_bytes());
            put_lenenc_str(&mut d, b"");
            d.push(0x0c);
            if col.int {
                d.extend_from_slice(&63u16.to_le_bytes()); // binary
                d.extend_from_slice(&21u32.to_le_bytes());
                d.push(0x08); // MYSQL_TYPE_LONGLONG
                d.extend_from_slice(&(0x0080u16 | 0x8000).to_le_bytes()); // BINARY | NUM
                d.push(0);
            } else {
                d.extend_from_slice(&u16::from(self.charset).to_le_bytes());
                d.extend_from_slice(&((max_len.max(1) * 4) as u32).to_le_bytes());
                d.push(0xFD); // MYSQL_TYPE_VAR_STRING
                d.extend_from_slice(&0u16.to_le_bytes());
                d.push(0x1f);
            }
            d.extend_from_slice(&[0, 0]);
            self.io.write_packet(&d)?;
        }
        if !deprecate_eof {
            self.io
                .write_packet(&crate::wire::eof_payload(self.status()))?;
        }
        for row in rows {
            let mut r = Vec::new();
            for v in row {
                match v {
                    Some(s) => put_lenenc_str(&mut r, s.as_bytes()),
                    None => r.push(0xFB),
                }
            }
            self.io.write_packet(&r)?;
        }
        self.io.write_eof(deprecate_eof, self.status())
    }
}
