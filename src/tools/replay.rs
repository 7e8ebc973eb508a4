//! `hubcap replay`: reads an archive back and produces its events into Kafka exactly once.

mod avro;
pub mod source;

#[cfg(test)]
mod tests;
