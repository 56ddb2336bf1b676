//! The protocol layer's one error type.

/// Why a connection failed or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The server sent bytes that are not valid protocol.
    #[error("protocol violation in {phase}: {what}")]
    Protocol {
        /// Connection phase (handshake, auth, query, binlog stream …).
        phase: &'static str,
        /// What was wrong.
        what: String,
    },
    /// A packet (or a reassembled event) exceeds the configured maximum.
    #[error(
        "packet of {size} bytes exceeds the configured maximum of {max} bytes (max_event_size)"
    )]
    PacketTooLarge {
        /// Size announced or reached.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The server answered with an ERR packet.
    #[error("server error {code} ({sql_state}) during {phase}: {message}")]
    Server {
        /// MySQL error code (e.g. 1045 access denied, 1236 binlog read error).
        code: u16,
        /// SQL state.
        sql_state: String,
        /// The server's message.
        message: String,
        /// Connection phase.
        phase: &'static str,
    },
    /// Authentication failed or could not be done safely.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// TLS failed (handshake, certificate verification) or was required but not offered.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server's configuration cannot serve row-based change data capture.
    #[error("server configuration: {0}")]
    Config(String),
    /// The requested start position is no longer available (purged binlogs / GTIDs).
    #[error("start position unavailable: {0}")]
    PositionUnavailable(String),
    /// Invalid client settings.
    #[error("invalid client configuration: {0}")]
    InvalidConfig(String),
    /// No packet (not even a heartbeat) arrived within the deadline.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The peer closed the connection.
    #[error("connection closed by the server during {0}")]
    Eof(&'static str),
    /// A binlog event could not be decoded.
    #[error(transparent)]
    Decode(#[from] mysql_binlog_codec::DecodeError),
}

impl ProtoError {
    /// Whether a reconnect may succeed (network-level failures), as opposed to errors that will
    /// repeat (authentication, configuration, purged positions, protocol violations).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Eof(_) => true,
            // 1236 "could not find first log file" etc. will not heal by reconnecting, but
            // "server shutdown in progress" (1053), connection kills (1927) and MariaDB's
            // "a replica with the same server_id is already connected" (4052, while the server
            // has not yet noticed that our previous connection died) will.
            Self::Server { code, .. } => matches!(
                code,
                1053 | 1077 | 1152 | 1153 | 1158 | 1159 | 1160 | 1161 | 1927 | 2013 | 4052
            ),
            _ => false,
        }
    }
}
