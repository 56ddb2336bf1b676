//! Test-only helpers: a scripted MySQL 8.4 **primary** ([`TestPrimary`]) that speaks the
//! server side of the client/server protocol and serves real binlog files.
//!
//! It exists to test MySQL 8.4 protocol paths that a MariaDB server cannot exercise:
//!
//! * Handshake v10 (`CLIENT_PROTOCOL_41`, `SECURE_CONNECTION`, `PLUGIN_AUTH`,
//!   `PLUGIN_AUTH_LENENC_CLIENT_DATA`, `CONNECT_ATTRS`, `CONNECT_WITH_DB`, `DEPRECATE_EOF`,
//!   `SSL` when TLS is on), a 20-byte scramble and `caching_sha2_password` as the default
//!   plugin; SSLRequest then TLS (rustls, certificates generated per primary); auth switch.
//! * `caching_sha2_password` fast auth (warm cache: `0x01 0x03`, OK) and full auth
//!   (`0x01 0x04`; over TLS the cleartext password, over plain TCP RSA-OAEP with the public
//!   key sent on request `0x02`); a successful full auth warms the cache; wrong passwords get
//!   ERR 1045 `28000`. `mysql_native_password` accounts too.
//! * COM_QUERY for what replication clients and connectors send (the list is below);
//!   COM_PING, COM_QUIT, COM_INIT_DB, COM_REGISTER_SLAVE, COM_RESET_CONNECTION.
//! * COM_BINLOG_DUMP and COM_BINLOG_DUMP_GTID (classic and tagged GTID sets) streaming the
//!   configured files like MySQL's `Binlog_sender`: artificial ROTATE before each file, the
//!   FDE, the events (checksums as in the files), skipped transactions replaced by a
//!   heartbeat, EOF in non-blocking mode, else heartbeats (v1 or v2) every period; events
//!   bigger than 16 MiB split per the 0xFFFFFF rule.
//! * Injected [`Fault`]s: ERR 1236 on dump, disconnect after N bytes or mid-event, clean
//!   close or stall before an event.
//!
//! Every connection is recorded ([`TestPrimary::log`]): handshake fields, auth outcome,
//! queries and decoded dump commands.
//!
//! Queries answered: `SET ...` (OK; user variables such as `@source_binlog_checksum` and
//! `@source_heartbeat_period` and session variables such as `autocommit` are remembered);
//! `SELECT` of `@@[global.|session.]var`, `@uservar`, literals, `VERSION()`, `DATABASE()`,
//! `USER()`, `CONNECTION_ID()`, `UNIX_TIMESTAMP()` with optional aliases and `LIMIT n`
//! (unknown variables are NULL); `SHOW BINARY LOG STATUS` / `SHOW MASTER STATUS`;
//! `SHOW BINARY LOGS` / `SHOW MASTER LOGS`; `SHOW [GLOBAL|SESSION] VARIABLES [LIKE ... |
//! WHERE Variable_name = / LIKE / IN ...]`; `SHOW WARNINGS`; `USE db`; `BEGIN` / `COMMIT` /
//! `ROLLBACK`; plus [`PrimaryConfig::script_query`] answers. Everything else is ERR 1064.
//!
//! Threads and `std::net` only; no unsafe code; malformed client input is logged and closes
//! the connection, it never panics the server.
#![forbid(unsafe_code)]

pub mod auth;
mod binlog;
mod config;
mod dump;
pub mod every_type;
pub mod gtid;
pub mod live;
mod log;
mod query;
pub mod raw_check;
pub mod restart;
mod server;
mod tls;
mod wire;

pub use config::{
    Account, AuthPlugin, Fault, HeartbeatVersion, PrimaryConfig, ScriptedResponse, corpus_dir,
    corpus_file,
};
pub use gtid::GtidSet;
pub use log::{AuthOutcome, Command, ConnectionLog, DumpRequest};
pub use server::TestPrimary;
