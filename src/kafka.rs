//! Kafka: the client settings hubcap uses (its defaults, the user's `-X` settings, the ones it
//! relies on), client errors without secrets, topic metadata and watermarks (shared by `run` and
//! `audit`), Event Hubs connection strings, and the consumer that feeds the partition workers.

pub mod consumer;
pub mod eventhubs;
