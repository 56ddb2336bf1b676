//! The `mes` command line: decode binlog files, stream a server, check a server's configuration.
//!
//! **Status: not implemented yet** (tracked by the change-event engine and CLI issues). It
//! exposes nothing until then.
