//! The commands beside `run`: `audit`, `inspect` and `replay` read an archive (and never depend
//! on the archiver's run or command line); `demo` runs the archiver on an in-process cluster.

pub mod audit;
pub mod demo;
pub mod inspect;
pub mod repair;
pub mod replay;
