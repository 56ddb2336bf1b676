//! Benchmarks of the workspace (DESIGN.md §6); this library itself is empty.
//!
//! - `benches/decode.rs`: criterion benches — codec decode of the reference, wide (30
//!   columns), JSON-heavy and compressed MariaDB binlogs (MB/s and row changes/s, every value
//!   decoded, CRC on), change-event assembly by the engine, binary JSON to text; with a guard
//!   that the full decode stays at ≥ 10× the original's advertised 100 k events/s. Inputs:
//!   `benches/gen-bench-binlog.sh N all` (real MariaDB; SQL in `benches/workload.sh`).
//! - `src/bin/live.rs` (`mes-bench-live`): streams a live binlog through `mes-blocking` or
//!   `mes-tokio` and prints rows, time and peak RSS as one JSON line.
//! - `compare/run.sh` (with `compare/compare.py`): the side-by-side comparison against the raw
//!   wire floor, the original `mysql-event-stream` 1.8.0 and python-mysql-replication.
