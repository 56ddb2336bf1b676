//! tokio driver for `mysql-repl-proto`: a thin loop moving bytes between a `TcpStream` and the
//! protocol state machine.
//!
//! **Status: not implemented yet** (tracked by the drivers issue). It exposes no API until then.
