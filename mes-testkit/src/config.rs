//! [`PrimaryConfig`]: what the test primary knows (accounts, TLS, variables, binlogs) and
//! which faults it injects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Authentication plugin of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPlugin {
    /// `caching_sha2_password` (MySQL 8.4's default): fast auth from the cache, else full
    /// auth over TLS (cleartext) or RSA.
    CachingSha2Password,
    /// `mysql_native_password` (SHA-1 scramble).
    MysqlNativePassword,
}

impl AuthPlugin {
    /// The plugin name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            AuthPlugin::CachingSha2Password => "caching_sha2_password",
            AuthPlugin::MysqlNativePassword => "mysql_native_password",
        }
    }
}

/// One account of the primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// User name.
    pub user: String,
    /// Cleartext password (empty = no password).
    pub password: String,
    /// Authentication plugin.
    pub plugin: AuthPlugin,
}

/// A fault injected into a binlog dump (`COM_BINLOG_DUMP` / `COM_BINLOG_DUMP_GTID`).
///
/// Event numbers count every event packet of one dump response, starting at 0 with the
/// artificial ROTATE (then the FORMAT_DESCRIPTION_EVENT is 1, and so on; heartbeats count too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer the dump command with this ERR packet instead of events (see
    /// [`Fault::purged_binlogs`] for MySQL's usual 1236).
    DumpError {
        /// Error code, e.g. 1236 (`ER_SOURCE_FATAL_ERROR_READING_BINLOG`).
        code: u16,
        /// Error message.
        message: String,
    },
    /// Cut the TCP connection (no TLS close_notify) after exactly this many bytes of the dump
    /// response: packet headers included, counted from the dump's first packet. Cuts inside
    /// a packet (mid-event) when the count falls there.
    DisconnectAfterBytes(u64),
    /// Send the 4-byte header and the first half of the payload of the packet carrying event
    /// number `n`, then cut the connection.
    DisconnectMidEvent(usize),
    /// Close the connection cleanly just before event number `n`.
    DisconnectBeforeEvent(usize),
    /// Stop streaming just before event number `event` and keep the connection open; when
    /// `heartbeats` is true heartbeats continue (the stream looks idle), else it goes silent.
    StallBeforeEvent {
        /// Event number.
        event: usize,
        /// Keep sending heartbeats while stalled.
        heartbeats: bool,
    },
}

impl Fault {
    /// MySQL's ERR 1236 for a replica that needs purged GTIDs.
    pub fn purged_binlogs() -> Self {
        Fault::DumpError {
            code: 1236,
            message: "Cannot replicate because the source purged required binary logs. \
                      Replicate the missing transactions from elsewhere, or provision a new \
                      replica from backup. Consider increasing the source's binary log \
                      expiration period. The GTID set sent by the replica is '', and the \
                      missing transactions are 'injected by mes-testkit'"
                .into(),
        }
    }
}

/// Which heartbeat event the primary sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeartbeatVersion {
    /// Like MySQL 8.0.26+: HEARTBEAT_LOG_EVENT_V2 (type 41) when the dump command set
    /// `USE_HEARTBEAT_EVENT_V2` (flag 0x02), else HEARTBEAT_LOG_EVENT (type 27).
    #[default]
    FromClientFlag,
    /// Always type 27.
    V1,
    /// Always type 41.
    V2,
}

/// A scripted answer to a query (see [`PrimaryConfig::script_query`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptedResponse {
    /// An OK packet.
    Ok,
    /// An ERR packet.
    Error {
        /// Error code.
        code: u16,
        /// SQL state (5 characters).
        state: String,
        /// Message.
        message: String,
    },
    /// A text result set (all columns VARCHAR).
    Rows {
        /// Column names.
        columns: Vec<String>,
        /// Rows; `None` is SQL NULL.
        rows: Vec<Vec<Option<String>>>,
    },
}

/// Configuration of a [`crate::TestPrimary`]; a builder (`PrimaryConfig::new().account(..)...`).
#[derive(Debug, Clone)]
pub struct PrimaryConfig {
    pub(crate) accounts: Vec<Account>,
    pub(crate) warm: Vec<String>,
    pub(crate) tls: bool,
    pub(crate) rsa_private_pem: Option<String>,
    pub(crate) server_version: String,
    pub(crate) server_uuid: String,
    pub(crate) server_id: u32,
    pub(crate) variables: BTreeMap<String, Option<String>>,
    pub(crate) binlogs: Vec<(PathBuf, String)>,
    pub(crate) large_event: Option<usize>,
    pub(crate) heartbeat_period: Option<Duration>,
    pub(crate) heartbeat_version: HeartbeatVersion,
    pub(crate) faults: Vec<Fault>,
    pub(crate) fault_always: Option<Fault>,
    pub(crate) scripted: Vec<(String, ScriptedResponse)>,
}

impl Default for PrimaryConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl PrimaryConfig {
    /// No accounts, no TLS, no binlogs, server version `8.4.3`, server_id 1, a fixed
    /// server_uuid, no heartbeats unless the client asks for them, no faults.
    pub fn new() -> Self {
        Self {
            accounts: Vec::new(),
            warm: Vec::new(),
            tls: false,
            rsa_private_pem: None,
            server_version: "8.4.3".into(),
            server_uuid: "5b2f1c3e-8d4a-11ef-9c1e-0242ac120002".into(),
            server_id: 1,
            variables: BTreeMap::new(),
            binlogs: Vec::new(),
            large_event: None,
            heartbeat_period: None,
            heartbeat_version: HeartbeatVersion::default(),
            faults: Vec::new(),
            fault_always: None,
            scripted: Vec::new(),
        }
    }

    /// Add an account (a later account with the same user replaces an earlier one).
    pub fn account(mut self, user: &str, password: &str, plugin: AuthPlugin) -> Self {
        self.accounts.retain(|a| a.user != user);
        self.accounts.push(Account {
            user: user.into(),
            password: password.into(),
            plugin,
        });
        self
    }

    /// Start with the `caching_sha2_password` fast-auth cache warm for `user` (as if the user
    /// had already logged in once with full auth). Cold by default.
    pub fn warm_cache(mut self, user: &str) -> Self {
        self.warm.push(user.into());
        self
    }

    /// Offer TLS (`CLIENT_SSL`) with a CA and a server certificate for `localhost` /
    /// `127.0.0.1` generated at start; see [`crate::TestPrimary::ca_pem_path`]. Off by default.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Use this RSA private key (PKCS#1 or PKCS#8 PEM) for `caching_sha2_password` full auth
    /// over plain TCP. Default: a 2048-bit key generated once per process on first use.
    pub fn rsa_private_key_pem(mut self, pem: &str) -> Self {
        self.rsa_private_pem = Some(pem.into());
        self
    }

    /// Server version of the greeting and `@@version` (default `8.4.3`).
    pub fn server_version(mut self, version: &str) -> Self {
        self.server_version = version.into();
        self
    }

    /// `@@server_uuid`.
    pub fn server_uuid(mut self, uuid: &str) -> Self {
        self.server_uuid = uuid.into();
        self
    }

    /// `@@server_id`, also the server id of the events the primary makes up (default 1).
    pub fn server_id(mut self, id: u32) -> Self {
        self.server_id = id;
        self
    }

    /// Set a global variable answered by `SELECT @@name` and `SHOW VARIABLES` (overrides the
    /// defaults and the values derived from the binlogs, e.g. `gtid_mode=OFF` or
    /// `binlog_row_image=MINIMAL` to test a client's preflight).
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables
            .insert(name.to_ascii_lowercase(), Some(value.into()));
        self
    }

    /// Remove a variable: `SELECT @@name` then answers NULL and `SHOW VARIABLES` omits it.
    pub fn unset_variable(mut self, name: &str) -> Self {
        self.variables.insert(name.to_ascii_lowercase(), None);
        self
    }

    /// Serve a binlog file under its own file name. Files are served in the order added (the
    /// last one is the "active" binlog). The file is read at start; it is never modified.
    pub fn binlog_file(self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "binlog.000001".into());
        self.binlog_file_as(path, &name)
    }

    /// Serve a binlog file under another name.
    pub fn binlog_file_as(mut self, path: impl AsRef<Path>, name: &str) -> Self {
        self.binlogs
            .push((path.as_ref().to_path_buf(), name.into()));
        self
    }

    /// Serve, after the configured files, one more binlog file holding a single valid
    /// ROWS_QUERY_LOG_EVENT of exactly `event_size` bytes (header and CRC included) after an
    /// FDE and a PREVIOUS_GTIDS. Use more than 16 MiB to exercise the 0xFFFFFF packet split
    /// (an event of 0xFFFFFE bytes makes the packet payload exactly 0xFFFFFF, which must be
    /// followed by an empty packet). Needs at least one configured file (its FDE is reused).
    pub fn large_event(mut self, event_size: usize) -> Self {
        self.large_event = Some(event_size);
        self
    }

    /// Heartbeat period when the client did not set `@source_heartbeat_period` /
    /// `@master_heartbeat_period` (nanoseconds, as MySQL replicas do). Default: none.
    pub fn heartbeat_period(mut self, period: Duration) -> Self {
        self.heartbeat_period = Some(period);
        self
    }

    /// Heartbeat event version (default: per the client's dump flag, like MySQL).
    pub fn heartbeat_version(mut self, version: HeartbeatVersion) -> Self {
        self.heartbeat_version = version;
        self
    }

    /// Queue a fault: the first dump command gets the first queued fault, the second dump the
    /// second, and so on; dumps after the queue is empty run clean (unless
    /// [`PrimaryConfig::fault_always`]).
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Inject this fault into every dump once the queue of [`PrimaryConfig::fault`] is empty.
    pub fn fault_always(mut self, fault: Fault) -> Self {
        self.fault_always = Some(fault);
        self
    }

    /// Answer queries that start with `prefix` (compared case-insensitively, runs of
    /// whitespace as one space, a trailing `;` ignored) with `response`, before any built-in
    /// answer. E.g. refuse `SHOW BINARY LOG STATUS` with ERR 1227 to test a missing privilege.
    pub fn script_query(mut self, prefix: &str, response: ScriptedResponse) -> Self {
        self.scripted
            .push((crate::query::normalize(prefix), response));
        self
    }
}

/// Where the corpus of real binlogs lives: `$MES_CORPUS_DIR`, else `shared/corpus` beside
/// the repository (`<repo>/../shared/corpus`).
pub fn corpus_dir() -> PathBuf {
    match std::env::var_os("MES_CORPUS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    }
}

/// A corpus file by its path relative to [`corpus_dir`], if it exists.
pub fn corpus_file(relative: &str) -> Option<PathBuf> {
    let p = corpus_dir().join(relative);
    p.is_file().then_some(p)
}
