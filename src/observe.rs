//! Watching a run: Prometheus metrics and the health endpoints, `--once` progress, and the clock
//! the workers read.

pub mod clock;
pub mod metrics;
pub mod progress;
