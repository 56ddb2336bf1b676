//! Sans-IO client state machine for the MySQL / MariaDB replication protocol.
//!
//! **Status: not implemented yet** (tracked by the protocol issue). This crate will hold the
//! handshake, in-memory TLS (rustls), authentication plugins, setup queries, `COM_BINLOG_DUMP`
//! / `COM_BINLOG_DUMP_GTID`, packet framing, heartbeats and checkpoints, with no sockets, no
//! threads and time passed in as `now: Instant`. It exposes no API until that work lands.
#![forbid(unsafe_code)]
