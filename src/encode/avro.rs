//! The Avro encoder: Capture-exact container files, written block by block.
//!
//! The schema is fixed, so records are encoded straight into bytes instead of through
//! apache-avro's generic `Value` tree (apache-avro still parses the schema and reads files back;
//! a test proves both encodings are byte-equal). The header carries exactly the two metadata keys
//! real Capture files carry, with the schema string byte for byte as Capture writes it.

use flate2::{Compress, Compression, FlushCompress, Status};

use crate::encode::{EncodeError, FileEncoder};
use crate::record::{EnqueuedTimeText, Record, ENQUEUED_TIME_KEY, PARTITION_KEY_KEY};

/// The Capture `EventData` schema, byte for byte as real Capture files carry it.
pub const CAPTURE_SCHEMA: &str = include_str!("../../schemas/capture.avsc");

const MAGIC: &[u8; 4] = b"Obj\x01";
/// Union branches of the `SystemProperties` / `Properties` map values.
const BRANCH_LONG: i64 = 0;
const BRANCH_STRING: i64 = 2;
const BRANCH_BYTES: i64 = 3;
const BRANCH_NULL_PROPERTY: i64 = 4;

/// The container codec. Capture writes `null`; `deflate` is Avro's raw-deflate codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Null,
    Deflate,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Null => "null",
            Codec::Deflate => "deflate",
        }
    }
}

/// Encodes records of the Capture schema.
#[derive(Debug, Default)]
pub struct RecordEncoder {
    time: EnqueuedTimeText,
}

impl RecordEncoder {
    /// Appends the Avro binary encoding of `r` to `out`.
    pub fn encode(&mut self, r: &Record<'_>, out: &mut Vec<u8>) {
        put_long(out, r.offset);
        let mut digits = [0u8; 20];
        put_bytes(out, decimal(r.offset, &mut digits));
        put_bytes(out, self.time.of(r.timestamp_ms).as_bytes());

        // SystemProperties: the partition key first, then the enqueue time, as real files order them.
        let entries = i64::from(r.key.is_some()) + i64::from(r.timestamp_ms.is_some());
        if entries > 0 {
            put_long(out, entries);
            if let Some(key) = r.key {
                put_bytes(out, PARTITION_KEY_KEY.as_bytes());
                match std::str::from_utf8(key) {
                    Ok(text) => {
                        put_long(out, BRANCH_STRING);
                        put_bytes(out, text.as_bytes());
                    }
                    Err(_) => {
                        put_long(out, BRANCH_BYTES);
                        put_bytes(out, key);
                    }
                }
            }
            if let Some(ms) = r.timestamp_ms {
                put_bytes(out, ENQUEUED_TIME_KEY.as_bytes());
                put_long(out, BRANCH_LONG);
                put_long(out, ms);
            }
        }
        put_long(out, 0);

        // Properties: every header, in order; a header without a value is the null branch.
        if !r.headers.is_empty() {
            put_long(out, r.headers.len() as i64);
            for (name, value) in r.headers.iter() {
                put_bytes(out, name.as_bytes());
                match value {
                    Some(v) => {
                        put_long(out, BRANCH_BYTES);
                        put_bytes(out, v);
                    }
                    None => put_long(out, BRANCH_NULL_PROPERTY),
                }
            }
        }
        put_long(out, 0);

        match r.value {
            None => put_long(out, 0),
            Some(v) => {
                put_long(out, 1);
                put_bytes(out, v);
            }
        }
    }
}

/// One Avro container file being written. Encoded records collect in the open block; a full block
/// is compressed and moved to the output buffer, which the caller drains with [`take_output`]
/// and streams to storage, so memory stays at about one block plus what the caller holds.
///
/// [`take_output`]: AvroFile::take_output
#[derive(Debug)]
pub struct AvroFile {
    codec: Codec,
    sync: [u8; 16],
    block_target: usize,
    block: Vec<u8>,
    block_records: u64,
    records: u64,
    out: Vec<u8>,
    emitted: u64,
    /// `deflate`: the compressed block, its buffer reused block after block.
    compressed: Vec<u8>,
}

impl AvroFile {
    /// Starts a file: writes the header. `block_target` is the uncompressed size at which a
    /// block is closed.
    pub fn new(codec: Codec, sync: [u8; 16], block_target: usize) -> Self {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(MAGIC);
        put_long(&mut out, 2);
        put_bytes(&mut out, b"avro.codec");
        put_bytes(&mut out, codec.name().as_bytes());
        put_bytes(&mut out, b"avro.schema");
        put_bytes(&mut out, CAPTURE_SCHEMA.as_bytes());
        put_long(&mut out, 0);
        out.extend_from_slice(&sync);
        AvroFile {
            codec,
            sync,
            block_target,
            block: Vec::new(),
            block_records: 0,
            records: 0,
            out,
            emitted: 0,
            compressed: Vec::new(),
        }
    }

    /// Appends one record encoded by [`RecordEncoder::encode`].
    pub fn append_encoded(&mut self, record: &[u8]) {
        self.block.extend_from_slice(record);
        self.block_records += 1;
        self.records += 1;
        if self.block.len() >= self.block_target {
            self.flush_block();
        }
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// The file's size if it were closed now, plus `extra` more record bytes. The open block
    /// counts uncompressed, so with deflate this overestimates (a file never outgrows it).
    pub fn size_with(&self, extra: usize) -> u64 {
        let open = self.block.len() + extra;
        let block_overhead = if open > 0 || self.records == 0 {
            20 + 16
        } else {
            0
        };
        self.emitted + self.out.len() as u64 + (open + block_overhead) as u64
    }

    /// Encoded bytes ready for storage (header and finished blocks).
    pub fn take_output(&mut self) -> Vec<u8> {
        self.emitted += self.out.len() as u64;
        std::mem::take(&mut self.out)
    }

    /// How many bytes [`take_output`](Self::take_output) would hand out now.
    pub fn output_len(&self) -> usize {
        self.out.len()
    }

    /// Memory the file holds: its open block and output not yet taken.
    pub fn held_bytes(&self) -> usize {
        self.block.capacity() + self.out.capacity() + self.compressed.capacity()
    }

    /// Closes the file and returns its remaining bytes. A file without records gets one empty
    /// block, as Capture's empty files have (508 bytes with codec `null`).
    pub fn finish(mut self) -> (Vec<u8>, u64) {
        if self.block_records > 0 || self.records == 0 {
            self.flush_block();
        }
        let total = self.emitted + self.out.len() as u64;
        (self.out, total)
    }

    fn flush_block(&mut self) {
        let mut compressed = std::mem::take(&mut self.compressed);
        let payload = match self.codec {
            Codec::Null => &self.block,
            Codec::Deflate => {
                deflate(&self.block, &mut compressed);
                &compressed
            }
        };
        // The output was usually just taken: one allocation for the block, not a few growing.
        self.out.reserve(2 * 10 + payload.len() + self.sync.len());
        put_long(&mut self.out, self.block_records as i64);
        put_bytes(&mut self.out, payload);
        self.compressed = compressed;
        self.out.extend_from_slice(&self.sync);
        self.block.clear();
        self.block_records = 0;
    }
}

/// Compresses `block` with raw deflate into `out` (cleared first). The compressor's state (a few
/// hundred KiB) is kept per thread, not per open file. Level 3: on Capture-like records its
/// output is 4 % larger than level 6's (the usual default) for two thirds of the CPU; level 1
/// is faster still but 40 % larger.
fn deflate(block: &[u8], out: &mut Vec<u8>) {
    thread_local! {
        static COMPRESS: std::cell::RefCell<Compress> =
            std::cell::RefCell::new(Compress::new(Compression::new(3), false));
    }
    COMPRESS.with_borrow_mut(|deflate| {
        deflate.reset();
        out.clear();
        out.reserve(block.len() / 2 + 64);
        loop {
            let consumed = usize::try_from(deflate.total_in()).unwrap_or(block.len());
            let input = block.get(consumed..).unwrap_or_default();
            // Deflate into a Vec's spare room only fails on a corrupted stream state.
            match deflate.compress_vec(input, out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) | Err(_) => break,
                Ok(_) => out.reserve(out.capacity().max(4096)),
            }
        }
    });
}

/// A sync marker derived from what identifies the file, so that re-writing the same records
/// produces the same bytes (a late duplicate upload is then harmless).
pub fn sync_marker(topic: &str, partition: i32, first_offset: i64) -> [u8; 16] {
    let mut seed = Vec::with_capacity(topic.len() + 12);
    seed.extend_from_slice(topic.as_bytes());
    seed.extend_from_slice(&partition.to_be_bytes());
    seed.extend_from_slice(&first_offset.to_be_bytes());
    let a = fnv1a(0xcbf2_9ce4_8422_2325, &seed);
    let b = fnv1a(a ^ 0x9e37_79b9_7f4a_7c15, &seed);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_be_bytes());
    out[8..].copy_from_slice(&b.to_be_bytes());
    out
}

/// 64-bit FNV-1a from the seed `h` (the standard offset basis is `0xcbf2_9ce4_8422_2325`).
fn fnv1a(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Avro `long`: zig-zag, then base-128 varint.
fn put_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Avro `bytes` / `string`: length, then the bytes.
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// `n` in decimal, written into `buf`.
pub(crate) fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let neg = n < 0;
    let mut u = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// An Avro file behind the [`FileEncoder`] seam: each record encoded once, when prepared.
pub struct AvroEncoder {
    file: AvroFile,
    records: RecordEncoder,
    scratch: Vec<u8>,
}

impl AvroEncoder {
    pub fn new(codec: Codec, sync: [u8; 16], block_target: usize) -> Self {
        AvroEncoder {
            file: AvroFile::new(codec, sync, block_target),
            records: RecordEncoder::default(),
            scratch: Vec::new(),
        }
    }
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
mod tests;
