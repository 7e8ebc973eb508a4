//! Watching a run: Prometheus metrics and the health endpoints, and `--once` progress.

pub mod metrics;
pub mod progress;
