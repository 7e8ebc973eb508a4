//! Bounds on settings that parse but cannot work: checked before anything runs, so that a typo
//! is a usage error naming the flag, not a run that fails later with another exit code.

use std::time::Duration;

use super::{ConfigError, RunArgs};

/// The largest `--memory-limit`: a budget is what one archiver's buffers may hold, and a
/// terabyte of them is a typo (TiB for GiB).
const MAX_MEMORY_LIMIT: u64 = 1 << 40;

/// The shortest `--shutdown-timeout` and `--retry-for`: `0s` made every run fail ("reading
/// checkpoints took longer than 0ns"), and a store request needs about a second.
const MIN_TIME: Duration = Duration::from_secs(1);

pub(super) fn check(args: &RunArgs) -> Result<(), ConfigError> {
    let limit = args.memory_limit.0;
    if limit > MAX_MEMORY_LIMIT || usize::try_from(limit).is_err() {
        return Err(ConfigError::MemoryLimitHuge(limit));
    }
    for (flag, d) in [
        ("shutdown-timeout", args.shutdown_timeout.0),
        ("retry-for", args.retry_for.0),
    ] {
        if d < MIN_TIME {
            return Err(ConfigError::TooShort { flag });
        }
    }
    Ok(())
}
