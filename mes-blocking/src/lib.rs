//! Blocking driver for `mysql-repl-proto`: `std::net` + a reader thread + a bounded queue. It
//! never depends on tokio.
//!
//! **Status: not implemented yet** (tracked by the drivers issue). It exposes no API until then.
