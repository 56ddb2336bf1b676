//! What each connection did, recorded for assertions ([`crate::TestPrimary::log`]).

use crate::gtid::GtidSet;

/// How a connection authenticated (or why it did not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// `caching_sha2_password` fast path: the cache was warm and the scramble matched
    /// (`0x01 0x03` then OK).
    FastAuth,
    /// `caching_sha2_password` full auth over TLS: cleartext password (`0x01 0x04`, password).
    FullAuthTls,
    /// `caching_sha2_password` full auth over plain TCP with RSA-OAEP; `key_requested` is true
    /// when the client asked for the public key (`0x02`) instead of already having it.
    FullAuthRsa {
        /// The client sent `0x02` and got the PEM.
        key_requested: bool,
    },
    /// `mysql_native_password` scramble verified.
    NativePassword,
    /// The account has an empty password and the client sent no auth data.
    EmptyPassword,
    /// ERR 1045 (or a protocol error during authentication).
    Denied {
        /// Why, for test diagnostics.
        reason: String,
    },
}

/// A binlog dump command as decoded by the primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpRequest {
    /// `COM_BINLOG_DUMP_GTID` (true) or `COM_BINLOG_DUMP` (false).
    pub gtid_protocol: bool,
    /// Flags (`BINLOG_DUMP_NON_BLOCK` = 1, `USE_HEARTBEAT_EVENT_V2` = 2, `BINLOG_THROUGH_GTID` = 4).
    pub flags: u16,
    /// The replica's server id.
    pub server_id: u32,
    /// Requested file name (may be empty).
    pub file: String,
    /// Requested position.
    pub position: u64,
    /// The decoded GTID set (`COM_BINLOG_DUMP_GTID` only).
    pub gtid_set: Option<GtidSet>,
    /// The raw encoded GTID set bytes (`COM_BINLOG_DUMP_GTID` only).
    pub gtid_set_bytes: Vec<u8>,
}

/// A command received in the command phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// COM_QUERY with its text.
    Query(String),
    /// COM_PING.
    Ping,
    /// COM_QUIT.
    Quit,
    /// COM_INIT_DB with the schema name.
    InitDb(String),
    /// COM_REGISTER_SLAVE with the replica's server id.
    RegisterSlave {
        /// The replica's server id.
        server_id: u32,
    },
    /// COM_BINLOG_DUMP / COM_BINLOG_DUMP_GTID.
    BinlogDump(DumpRequest),
    /// Any other command byte (answered with ERR 1047).
    Other(u8),
}

/// The record of one client connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionLog {
    /// Connection id sent in the greeting.
    pub id: u32,
    /// Whether the connection switched to TLS.
    pub tls: bool,
    /// Capability flags the client sent.
    pub client_capabilities: u32,
    /// Character set id the client sent.
    pub client_charset: u8,
    /// User name from the handshake response.
    pub user: Option<String>,
    /// Schema from the handshake response (`CLIENT_CONNECT_WITH_DB`).
    pub database: Option<String>,
    /// Auth plugin named by the client in its handshake response.
    pub client_plugin: Option<String>,
    /// Plugin the server switched the client to (AuthSwitchRequest), if any.
    pub auth_switch: Option<String>,
    /// Connection attributes (`CLIENT_CONNECT_ATTRS`).
    pub attrs: Vec<(String, String)>,
    /// Result of authentication (`None` while it runs or if the client left before).
    pub auth: Option<AuthOutcome>,
    /// Every command, in order.
    pub commands: Vec<Command>,
    /// Just the query texts, in order.
    pub queries: Vec<String>,
    /// Event packets sent by dumps (including artificial and heartbeat events).
    pub events_sent: u64,
    /// Heartbeat events sent.
    pub heartbeats_sent: u64,
    /// Protocol errors, injected faults and other notes, in order.
    pub notes: Vec<String>,
    /// The connection has ended.
    pub closed: bool,
}

impl ConnectionLog {
    /// The dump commands of this connection.
    pub fn dumps(&self) -> impl Iterator<Item = &DumpRequest> {
        self.commands.iter().filter_map(|c| match c {
            Command::BinlogDump(d) => Some(d),
            _ => None,
        })
    }
}
