//! Test-only helpers (scripted MySQL 8.4 primary). Being written.
