//! The encoder stage: one trait for the file formats, so the partition worker rolls, streams and
//! publishes Avro and Parquet files the same way.

use crate::avro::{sync_marker, AvroFile, Codec, RecordEncoder};
use crate::event::Event;
use crate::parquet::{ParquetCompression, ParquetFile};

/// A file being written. Encoded bytes come out through [`take_output`](Self::take_output) as
/// they are ready (blocks, row groups), so the caller can stream them to storage.
pub trait FileEncoder: Send {
    /// Prepares `e` and returns about how many bytes it will add to the file (Avro: exactly its
    /// encoded size; Parquet: its raw size, an overestimate once compressed).
    fn prepare(&mut self, e: &Event) -> usize;
    /// Adds the record last given to [`prepare`](Self::prepare).
    fn push_prepared(&mut self, e: &Event) -> Result<(), EncodeError>;
    /// The file's size if closed now, plus `extra` bytes of records; never an underestimate.
    fn size_with(&self, extra: usize) -> u64;
    fn records(&self) -> u64;
    /// Bytes ready for storage.
    fn take_output(&mut self) -> Vec<u8>;
    fn output_len(&self) -> usize;
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

/// Parquet row groups in progress, all open files together, when no size is given: each open
/// file holds about 2.5 row groups, so this bounds that part of memory near 80 MiB.
pub const ROW_GROUP_BUDGET: usize = 32 << 20;

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

    /// The format for a file opened while `open_files` partitions are being archived: a Parquet
    /// row group size left to hubcap is [`ROW_GROUP_BUDGET`] shared by them, 1 to 8 MiB each.
    pub fn sized_for(self, open_files: usize) -> Format {
        match self {
            Format::Parquet {
                compression,
                row_group_bytes: 0,
            } => Format::Parquet {
                compression,
                row_group_bytes: (ROW_GROUP_BUDGET / open_files.max(1)).clamp(1 << 20, 8 << 20),
            },
            other => other,
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
                    8 << 20
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
    fn prepare(&mut self, e: &Event) -> usize {
        self.scratch.clear();
        self.records.encode(e, &mut self.scratch);
        self.scratch.len()
    }

    fn push_prepared(&mut self, _e: &Event) -> Result<(), EncodeError> {
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

    fn finish(self: Box<Self>) -> Result<(Vec<u8>, u64), EncodeError> {
        Ok(self.file.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_groups_left_to_hubcap_share_a_budget() {
        let auto = Format::Parquet {
            compression: ParquetCompression::Zstd,
            row_group_bytes: 0,
        };
        let size = |n| match auto.sized_for(n) {
            Format::Parquet {
                row_group_bytes, ..
            } => row_group_bytes,
            Format::Avro { .. } => unreachable!(),
        };
        assert_eq!(size(1), 8 << 20);
        assert_eq!(size(4), 8 << 20);
        assert_eq!(size(16), 2 << 20);
        assert_eq!(size(1000), 1 << 20);
        let given = Format::Parquet {
            compression: ParquetCompression::Zstd,
            row_group_bytes: 3 << 20,
        };
        assert!(matches!(
            given.sized_for(64),
            Format::Parquet {
                row_group_bytes, ..
            } if row_group_bytes == 3 << 20
        ));
    }
}
