//! `hubcap replay`: an archive's events produced back into Kafka, exactly once for read_committed
//! consumers. [`source`] reads the archive (hubcap's in every format and layout, and Event Hubs
//! Capture's own files); [`job`] selects, maps and produces them through a transactional
//! producer ([`target`]) whose transactions carry the replay's progress ([`progress`]).

mod avro;
pub mod job;
mod meter;
mod produce;
mod progress;
pub mod source;
mod target;
pub mod verify;

pub use job::{replay, replay_shown, ReplayArgs, ReplaySummary};

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The command line cannot be used: exit 2.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Source(#[from] source::SourceError),
    /// Kafka failed or refused: exit 4.
    #[error("{0}")]
    Kafka(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl ReplayError {
    fn kafka(e: impl Into<KafkaFailure>) -> ReplayError {
        ReplayError::Kafka(e.into().0)
    }

    /// The process exit code (see [`crate::run::exit`]).
    pub fn exit_code(&self) -> u8 {
        use crate::run::exit;
        match self {
            ReplayError::Usage(_) => exit::USAGE,
            ReplayError::Kafka(_) => exit::KAFKA,
            ReplayError::Source(_) => exit::FAILED,
            ReplayError::Store(_) => exit::USAGE,
        }
    }
}

/// A Kafka error as one line without secrets.
struct KafkaFailure(String);

impl From<rdkafka::error::KafkaError> for KafkaFailure {
    fn from(e: rdkafka::error::KafkaError) -> KafkaFailure {
        KafkaFailure(crate::kafka::client_error(&e))
    }
}

impl From<rdkafka::error::RDKafkaError> for KafkaFailure {
    fn from(e: rdkafka::error::RDKafkaError) -> KafkaFailure {
        KafkaFailure(e.to_string())
    }
}

#[cfg(test)]
mod tests;
