//! Python binding (PyO3 + maturin) providing the `mysql_event_stream` package.
//!
//! **Status: not implemented yet** (tracked by the Python issue). It exposes no API until then.
