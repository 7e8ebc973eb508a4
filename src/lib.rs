//! hubcap: an Event Hubs Capture-style archiver.
//!
//! The modules, in the order data flows:
//! - [`cli`]: the command line and the TOML file, turned into a [`run::RunConfig`];
//! - [`kafka`]: client settings, metadata and watermarks, Event Hubs connection strings, and the
//!   consumer, which copies records into [`record`] batches and hands them to
//! - [`partition`]: one worker per partition, which rolls files by its [`partition::window`]
//!   policy, encodes them with [`encode`] (Avro, Parquet), names them by [`layout`], writes them
//!   through [`store`] and records them in [`state`] (manifests, compare-and-swap checkpoints,
//!   Azure SDK checkpoints);
//! - [`run`]: wiring and lifecycle; [`budget`] bounds the memory of it all, and [`observe`]
//!   (metrics, health, progress) watches it;
//! - [`tools`]: the read side (`audit`, `inspect`) and `demo`.

pub mod budget;
pub mod cli;
pub mod encode;
pub mod kafka;
pub mod layout;
pub mod observe;
pub mod partition;
pub mod record;
pub mod run;
pub mod state;
pub mod store;
pub mod tools;
pub mod units;
