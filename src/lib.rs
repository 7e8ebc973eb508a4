//! hubcap: an Event Hubs Capture-style archiver.
//!
//! The data path, one module per stage: [`source`] (Kafka consumer, rebalance) →
//! [`partition`] (one worker per partition) → [`window`] (roll policy) → [`encoder`] ([`avro`], [`parquet`]) →
//! [`path`] (object names) → [`upload`] (object_store) → [`checkpoint`] (compare-and-swap
//! checkpoints), mirrored for the Azure SDKs by [`sdk_checkpoint`]. [`run`] wires them together;
//! [`config`] is the command line; [`metrics`] and [`progress`] observe the workers.

pub mod audit;
pub mod avro;
pub mod budget;
pub mod checkpoint;
pub mod config;
pub mod config_file;
pub mod demo;
pub mod encoder;
pub mod event;
pub mod eventhubs;
pub mod faults;
pub mod inspect;
pub mod manifest;
pub mod metrics;
pub mod parquet;
pub mod partition;
pub mod path;
pub mod progress;
pub mod retry;
pub mod run;
pub mod sdk_checkpoint;
pub mod source;
pub mod store;
pub mod upload;
pub mod window;
