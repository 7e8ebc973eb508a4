//! The encoder stage: one trait for the file formats, so the partition worker rolls, streams and
//! publishes Avro and Parquet files the same way.

use crate::avro::{sync_marker, AvroFile, Codec, RecordEncoder};
use crate::event::Record;
use crate::parquet::{ParquetCompression, ParquetFile};

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
    fn take_output(&mut self) -> Vec<u8>;
    fn output_len(&self) -> usize;
    /// Memory the file holds now (open block or row groups, output not yet taken), for the
    /// memory budget.
    fn held_bytes(&self) -> usize;
    /// Closes the file: the remaining bytes and the file's total size.
    fn finish(self: Box<Self>) -> Result<(Vec<u8>, u64), EncodeError>;
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("parquet encoding failed: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    #[error("arrow encoding failed: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// The output format, with its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Avro {
        codec: Codec,
        block_target: usize,
    },
    Parquet {
        compression: ParquetCompression,
        /// 0: sized by [`Format::sized_for`].
        row_group_bytes: usize,
    },
}

/// The smallest Avro block a tight memory budget sizes a file for.
const MIN_BLOCK: usize = 64 << 10;
/// The smallest Parquet row group hubcap sizes for itself. Each row group compresses each column
/// with a fresh zstd context: below this, setting those up costs more than encoding (at 256
/// partitions, 96 KiB row groups take twice the CPU of 512 KiB ones, 256 KiB a quarter more).
const MIN_ROW_GROUP: usize = 256 << 10;
/// A Parquet row group's size when neither `--row-group-size` nor the memory budget limits it.
const ROW_GROUP: usize = 8 << 20;

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Avro { .. } => "avro",
            Format::Parquet { .. } => "parquet",
        }
    }

    /// `avro` / `parquet`, for manifests.
    pub fn name(self) -> &'static str {
        self.extension()
    }

    /// The codec or compression, for manifests.
    pub fn codec_name(self) -> &'static str {
        match self {
            Format::Avro { codec, .. } => codec.name(),
            Format::Parquet { compression, .. } => compression.name(),
        }
    }

    /// The format for a file that may hold about `share` bytes of memory (its part of the
    /// memory budget): an Avro block of at most an eighth of it (never more than the block
    /// size given, at least 64 KiB), a Parquet row group left to hubcap of a quarter (its rows
    /// wait in memory until they make a row group), at least 256 KiB, at most 8 MiB.
    pub fn sized_for(self, share: usize) -> Format {
        let eighth = (share / 8).max(MIN_BLOCK);
        match self {
            Format::Parquet {
                compression,
                row_group_bytes: 0,
            } => Format::Parquet {
                compression,
                row_group_bytes: (share / 4).clamp(MIN_ROW_GROUP, ROW_GROUP),
            },
            Format::Avro {
                codec,
                block_target,
            } => Format::Avro {
                codec,
                block_target: block_target.min(eighth),
            },
            other => other,
        }
    }

    /// The bytes an open file holds for its block or row group.
    pub fn block_bytes(self) -> usize {
        match self {
            Format::Avro { block_target, .. } => block_target,
            Format::Parquet {
                row_group_bytes, ..
            } => row_group_bytes,
        }
    }

    /// Starts a file whose first record is `first_offset` of `topic`/`partition`. The identity
    /// seeds Avro's sync marker, so re-writing the same records gives the same bytes.
    pub fn create(self, topic: &str, partition: i32, first_offset: i64) -> Box<dyn FileEncoder> {
        match self {
            Format::Avro {
                codec,
                block_target,
            } => Box::new(AvroEncoder {
                file: AvroFile::new(
                    codec,
                    sync_marker(topic, partition, first_offset),
                    block_target,
                ),
                records: RecordEncoder::default(),
                scratch: Vec::new(),
            }),
            Format::Parquet {
                compression,
                row_group_bytes,
            } => Box::new(ParquetFile::new(
                compression,
                if row_group_bytes == 0 {
                    ROW_GROUP
                } else {
                    row_group_bytes
                },
            )),
        }
    }
}

struct AvroEncoder {
    file: AvroFile,
    records: RecordEncoder,
    scratch: Vec<u8>,
}

impl FileEncoder for AvroEncoder {
    fn prepare(&mut self, r: &Record<'_>) -> usize {
        self.scratch.clear();
        self.records.encode(r, &mut self.scratch);
        self.scratch.len()
    }

    fn push_prepared(&mut self, _r: &Record<'_>) -> Result<(), EncodeError> {
        self.file.append_encoded(&self.scratch);
        Ok(())
    }

    fn size_with(&self, extra: usize) -> u64 {
        self.file.size_with(extra)
    }

    fn records(&self) -> u64 {
        self.file.records()
    }

    fn take_output(&mut self) -> Vec<u8> {
        self.file.take_output()
    }

    fn output_len(&self) -> usize {
        self.file.output_len()
    }

    fn held_bytes(&self) -> usize {
        self.file.held_bytes() + self.scratch.capacity()
    }

    fn finish(self: Box<Self>) -> Result<(Vec<u8>, u64), EncodeError> {
        Ok(self.file.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_row_groups_follow_the_memory_share() {
        let auto = Format::Parquet {
            compression: ParquetCompression::Zstd,
            row_group_bytes: 0,
        };
        let row_group = |share| match auto.sized_for(share) {
            Format::Parquet {
                row_group_bytes, ..
            } => row_group_bytes,
            Format::Avro { .. } => unreachable!(),
        };
        assert_eq!(row_group(256 << 20), 8 << 20);
        assert_eq!(row_group(16 << 20), 4 << 20);
        assert_eq!(row_group(4 << 20), 1 << 20);
        assert_eq!(row_group(1 << 20), 256 << 10);
        assert_eq!(row_group(0), 256 << 10);
        let given = Format::Parquet {
            compression: ParquetCompression::Zstd,
            row_group_bytes: 3 << 20,
        };
        assert_eq!(given.sized_for(1 << 20), given);
        let avro = Format::Avro {
            codec: Codec::Null,
            block_target: 1 << 20,
        };
        let block = |share| match avro.sized_for(share) {
            Format::Avro { block_target, .. } => block_target,
            Format::Parquet { .. } => unreachable!(),
        };
        assert_eq!(block(256 << 20), 1 << 20);
        assert_eq!(block(2 << 20), 256 << 10);
        assert_eq!(block(0), 64 << 10);
    }
}
