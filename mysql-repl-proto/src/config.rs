//! Client settings: credentials, TLS mode, server id, where to start, timeouts, limits.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// TLS modes, as in MySQL clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SslMode {
    /// Never use TLS.
    Disabled,
    /// Use TLS when the server offers it; no certificate verification.
    #[default]
    Preferred,
    /// Require TLS; no certificate verification.
    Required,
    /// Require TLS and a certificate chain that verifies against the CA (file or system roots).
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyIdentity,
}

impl SslMode {
    /// Whether the server's certificate is verified (a "verified channel").
    pub fn verifies(self) -> bool {
        matches!(self, Self::VerifyCa | Self::VerifyIdentity)
    }
}

/// TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Mode.
    pub mode: SslMode,
    /// PEM file with CA certificates (verify modes); system roots when absent.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain (for `REQUIRE X509` accounts).
    pub cert_file: Option<PathBuf>,
    /// PEM client private key.
    pub key_file: Option<PathBuf>,
}

/// Where the binlog stream starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StartPosition {
    /// The server's current position (nothing already written is replayed).
    #[default]
    Current,
    /// A binlog file and offset (4 = start of the file).
    FilePosition {
        /// File name.
        file: String,
        /// Offset.
        position: u64,
    },
    /// MySQL: everything not in this executed GTID set (`uuid[:tag]:intervals`, "" = all retained).
    MysqlGtidSet(String),
    /// MariaDB: continue after this GTID position (`domain-server-seq,…`, "" = from the start).
    MariaGtid(String),
}

/// Connection settings. `password` is never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectConfig {
    /// Host name (for TLS identity checks and the handshake's connection attributes).
    pub host: String,
    /// User.
    pub user: String,
    /// Password (any bytes of UTF-8 text; empty allowed).
    pub password: String,
    /// Default database for the connection (usually empty).
    pub database: String,
    /// TLS settings.
    pub tls: TlsOptions,
    /// Allow requesting the server's RSA public key for `caching_sha2_password` full authentication
    /// over a connection that is not a verified TLS channel.
    pub allow_public_key_retrieval: bool,
    /// The server's RSA public key (PEM), if known in advance.
    pub server_public_key: Option<String>,
    /// Replica server id (must be unique among the source's replicas, non-zero).
    pub server_id: u32,
    /// Where to start.
    pub start: StartPosition,
    /// Heartbeat period requested from the server.
    pub heartbeat_period: Duration,
    /// No packet for this long (at least twice the heartbeat period) means the connection is dead.
    pub read_timeout: Duration,
    /// Deadline for connecting, TLS and authentication.
    pub connect_timeout: Duration,
    /// Largest event accepted (typed error beyond it).
    pub max_event_size: u64,
    /// End the stream with [`crate::ConnEvent::EndOfStream`] when the server reaches the end of
    /// its binlog (`BINLOG_DUMP_NON_BLOCK`) instead of waiting for new events.
    pub stop_at_end: bool,
    /// Open a plain query connection instead of a replication stream: after authentication the
    /// connection is ready for [`crate::Connection::query`] (used for schema lookups).
    pub query_only: bool,
    /// Check the server's variables (log_bin, binlog_format, row image/metadata, GTID mode) and
    /// refuse with a typed error naming the variable when they cannot serve CDC.
    pub preflight: bool,
}

impl fmt::Debug for ConnectConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectConfig")
            .field("host", &self.host)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("database", &self.database)
            .field("tls", &self.tls)
            .field(
                "allow_public_key_retrieval",
                &self.allow_public_key_retrieval,
            )
            .field("server_id", &self.server_id)
            .field("start", &self.start)
            .field("heartbeat_period", &self.heartbeat_period)
            .field("read_timeout", &self.read_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_event_size", &self.max_event_size)
            .field("stop_at_end", &self.stop_at_end)
            .field("query_only", &self.query_only)
            .field("preflight", &self.preflight)
            .finish()
    }
}

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            user: "root".into(),
            password: String::new(),
            database: String::new(),
            tls: TlsOptions::default(),
            allow_public_key_retrieval: false,
            server_public_key: None,
            server_id: 1,
            start: StartPosition::Current,
            heartbeat_period: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_event_size: 64 << 20,
            stop_at_end: false,
            query_only: false,
            preflight: true,
        }
    }
}
