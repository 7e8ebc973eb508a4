//! The commands beside `run`: `audit` and `inspect` read an archive (and never depend on the
//! archiver's run or command line); `repair` writes missing files again from Kafka; `replay`
//! produces an archive back into Kafka; `demo` runs the archiver on an in-process cluster.

pub mod audit;
pub mod demo;
pub mod inspect;
pub mod repair;
pub mod replay;
