//! The output format and its settings: which encoder a file gets, and how big its blocks or row
//! groups are for the memory it may hold.

use crate::encode::avro::{sync_marker, AvroEncoder, Codec};
use crate::encode::parquet::{ParquetCompression, ParquetFile};
use crate::encode::FileEncoder;

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

/// Uncompressed size at which an Avro block closes, when memory does not limit it.
pub const AVRO_BLOCK: usize = 1 << 20;
/// The smallest Avro block a tight memory budget sizes a file for.
const MIN_BLOCK: usize = 64 << 10;
/// The smallest Parquet row group hubcap sizes for itself. Each row group compresses each of its
/// payload columns with fresh zstd contexts: below this, setting those up costs more than
/// encoding.
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

    /// This format with its Avro block or Parquet row group at `bytes`: what a file was written
    /// with (its intent and manifest line record it), so that writing its records again gives
    /// the same blocks.
    pub fn with_block_bytes(self, bytes: usize) -> Format {
        match self {
            Format::Avro { codec, .. } => Format::Avro {
                codec,
                block_target: bytes.max(1),
            },
            Format::Parquet { compression, .. } => Format::Parquet {
                compression,
                row_group_bytes: bytes.max(1),
            },
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
            } => Box::new(AvroEncoder::new(
                codec,
                sync_marker(topic, partition, first_offset),
                block_target,
            )),
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
