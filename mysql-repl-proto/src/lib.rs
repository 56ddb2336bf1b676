//! Sans-IO client state machine for the MySQL / MariaDB replication protocol.
//!
//! [`Connection`] is the client side of one replication connection: handshake, TLS (rustls,
//! fed from memory), authentication (`caching_sha2_password` fast and full, `sha256_password`,
//! `mysql_native_password`, MariaDB `client_ed25519`), setup queries and a preflight of the
//! server's binlog settings, `COM_REGISTER_SLAVE`, `COM_BINLOG_DUMP` / `COM_BINLOG_DUMP_GTID`
//! and the event stream with heartbeats and a read deadline. It owns no socket, no thread and no
//! clock: bytes and time go in, bytes, events and deadlines come out. It does **not** decode
//! events (hand [`ConnEvent::Binlog`] bytes to `mysql_binlog_codec::engine::Engine`).
//!
//! # A complete run loop (blocking, std::net)
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use std::time::Instant;
//! use mysql_repl_proto::{ConnEvent, ConnectConfig, Connection, Output};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ConnectConfig { user: "repl".into(), password: "secret".into(), ..Default::default() };
//! let mut sock = TcpStream::connect(("127.0.0.1", 3306))?;
//! let mut conn = Connection::new(config, Instant::now())?;
//! let mut buf = vec![0u8; 64 * 1024];
//! loop {
//!     match conn.poll_output() {
//!         Output::Transmit(bytes) => sock.write_all(&bytes)?,
//!         Output::Event(ConnEvent::Binlog { event, .. }) => println!("event of {} bytes", event.len()),
//!         Output::Event(_) => {}
//!         Output::Wait(deadline) => {
//!             let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
//!             sock.set_read_timeout(timeout.filter(|t| !t.is_zero()))?;
//!             match sock.read(&mut buf) {
//!                 Ok(0) => conn.handle_eof(),
//!                 Ok(n) => conn.handle_input(Instant::now(), &buf[..n]),
//!                 Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
//!                     conn.handle_timeout(Instant::now())
//!                 }
//!                 Err(e) => return Err(e.into()),
//!             }
//!         }
//!         Output::Closed(result) => return Ok(result?),
//!         _ => {}
//!     }
//! }
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod auth;
mod config;
mod connection;
mod error;
pub mod packet;
mod tls;

pub use config::{ConnectConfig, SslMode, StartPosition, TlsOptions};
pub use connection::{ConnEvent, Connection, Flavor, Output, ServerInfo};
pub use error::ProtoError;
pub use tls::TlsLayer;
