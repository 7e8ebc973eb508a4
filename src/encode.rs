//! The encoder stage: one trait for the file formats, so the partition worker rolls, streams and
//! publishes Avro and Parquet files the same way.

pub mod avro;
pub mod format;
pub mod parquet;

use bytes::Bytes;

use crate::record::Record;

/// A file being written. Encoded bytes come out through [`take_output`](Self::take_output) as
/// they are ready (blocks, row groups), so the caller can stream them to storage.
pub trait FileEncoder: Send {
    /// Prepares `r` and returns about how many bytes it will add to the file (Avro: exactly its
    /// encoded size; Parquet: its raw size, an overestimate once compressed).
    fn prepare(&mut self, r: &Record<'_>) -> usize;
    /// Adds the record last given to [`prepare`](Self::prepare).
    fn push_prepared(&mut self, r: &Record<'_>) -> Result<(), EncodeError>;
    /// The file's size if closed now, plus `extra` bytes of records; never an underestimate.
    fn size_with(&self, extra: usize) -> u64;
    fn records(&self) -> u64;
    /// Bytes ready for storage.
    fn take_output(&mut self) -> Bytes;
    fn output_len(&self) -> usize;
    /// Memory the file holds now (open block or row groups, output not yet taken), for the
    /// memory budget.
    fn held_bytes(&self) -> usize;
    /// Closes the file: the remaining bytes and the file's total size.
    fn finish(self: Box<Self>) -> Result<(Bytes, u64), EncodeError>;
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("parquet encoding failed: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    #[error("arrow encoding failed: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}
