//! The Avro encoder: Capture-exact container files, written block by block.
//!
//! The schema is fixed, so records are encoded straight into bytes instead of through
//! apache-avro's generic `Value` tree (apache-avro still parses the schema and reads files back;
//! a test proves both encodings are byte-equal). The header carries exactly the two metadata keys
//! real Capture files carry, with the schema string byte for byte as Capture writes it.

use bytes::Bytes;
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

/// Room before a block's records for its record count and byte size, two Avro longs.
const HEADROOM: usize = 20;

/// One Avro container file being written. Records are encoded into the open block, laid out
/// as it will be stored: what precedes it (the file's header, before the first block), room
/// for its count and size, its records. A full block (compressed into a buffer laid out the
/// same way) gets its count and size written into that room and its sync marker appended, and
/// is handed out as it is, no copy: the caller drains it with [`take_output`] and streams it
/// to storage, so memory stays at about one block plus what the caller holds.
///
/// [`take_output`]: AvroFile::take_output
#[derive(Debug)]
pub struct AvroFile {
    codec: Codec,
    sync: [u8; 16],
    block_target: usize,
    /// `lead` bytes that precede the block in the file, `HEADROOM`, the block's records, then
    /// possibly one record prepared but not yet added.
    block: Vec<u8>,
    lead: usize,
    /// The end of the added records in `block`.
    committed: usize,
    block_records: u64,
    records: u64,
    /// Finished blocks, not yet taken.
    ready: Vec<Bytes>,
    ready_len: usize,
    emitted: u64,
}

impl AvroFile {
    /// Starts a file: writes the header. `block_target` is the uncompressed size at which a
    /// block is closed.
    pub fn new(codec: Codec, sync: [u8; 16], block_target: usize) -> Self {
        let mut block = Vec::with_capacity(1024 + Self::block_capacity(block_target));
        block.extend_from_slice(MAGIC);
        put_long(&mut block, 2);
        put_bytes(&mut block, b"avro.codec");
        put_bytes(&mut block, codec.name().as_bytes());
        put_bytes(&mut block, b"avro.schema");
        put_bytes(&mut block, CAPTURE_SCHEMA.as_bytes());
        put_long(&mut block, 0);
        block.extend_from_slice(&sync);
        let lead = block.len();
        block.resize(lead + HEADROOM, 0);
        AvroFile {
            codec,
            sync,
            block_target,
            committed: block.len(),
            block,
            lead,
            block_records: 0,
            records: 0,
            ready: Vec::new(),
            ready_len: 0,
            emitted: 0,
        }
    }

    /// A block's buffer: its target, and a quarter more for the record that fills it, so that
    /// it is not copied to grow.
    fn block_capacity(block_target: usize) -> usize {
        HEADROOM + block_target + block_target / 4 + 16
    }

    /// Where the open block's records begin in `block`.
    fn records_start(&self) -> usize {
        self.lead + HEADROOM
    }

    /// Appends one record encoded by [`RecordEncoder::encode`].
    pub fn append_encoded(&mut self, record: &[u8]) {
        self.block.truncate(self.committed);
        self.block.extend_from_slice(record);
        self.add_prepared();
    }

    /// Encodes `r` at the end of the open block, not yet added to it: returns its size.
    /// [`add_prepared`](Self::add_prepared) adds it; the next prepare or the file's end drops
    /// it (the caller closed the file before the record instead).
    pub fn prepare(&mut self, encoder: &mut RecordEncoder, r: &Record<'_>) -> usize {
        self.block.truncate(self.committed);
        encoder.encode(r, &mut self.block);
        self.block.len() - self.committed
    }

    /// Adds the record last prepared (or appended).
    pub fn add_prepared(&mut self) {
        self.committed = self.block.len();
        self.block_records += 1;
        self.records += 1;
        if self.committed - self.records_start() >= self.block_target {
            self.flush_block();
        }
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// The file's size if it were closed now, plus `extra` more record bytes. The open block
    /// counts uncompressed, so with deflate this overestimates (a file never outgrows it).
    pub fn size_with(&self, extra: usize) -> u64 {
        let open = self.committed - self.records_start() + extra;
        let block_overhead = if open > 0 || self.records == 0 {
            20 + 16
        } else {
            0
        };
        self.emitted + (self.ready_len + self.lead + open + block_overhead) as u64
    }

    /// Encoded bytes ready for storage (finished blocks, the first with the file's header).
    pub fn take_output(&mut self) -> Bytes {
        self.emitted += self.ready_len as u64;
        self.ready_len = 0;
        match self.ready.len() {
            0 => Bytes::new(),
            1 => self.ready.pop().unwrap_or_default(),
            // Blocks are taken one by one on the data path; only a caller that takes them
            // after many records gets them copied together.
            _ => self.ready.drain(..).flatten().collect(),
        }
    }

    /// How many bytes [`take_output`](Self::take_output) would hand out now.
    pub fn output_len(&self) -> usize {
        self.ready_len
    }

    /// Memory the file holds: its open block and output not yet taken.
    pub fn held_bytes(&self) -> usize {
        self.block.capacity() + self.ready_len
    }

    /// Closes the file and returns its remaining bytes. A file without records gets one empty
    /// block, as Capture's empty files have (508 bytes with codec `null`).
    pub fn finish(mut self) -> (Bytes, u64) {
        self.block.truncate(self.committed);
        if self.block_records > 0 || self.records == 0 {
            self.flush_block();
        }
        let total = self.emitted + self.ready_len as u64;
        (self.take_output(), total)
    }

    fn flush_block(&mut self) {
        let start = self.records_start();
        let mut frame = match self.codec {
            Codec::Null => {
                let next = Vec::with_capacity(Self::block_capacity(self.block_target));
                std::mem::replace(&mut self.block, next)
            }
            Codec::Deflate => {
                let mut frame = Vec::new();
                frame.extend_from_slice(&self.block[..start]);
                deflate(&self.block[start..self.committed], &mut frame);
                frame
            }
        };
        let mut head = Vec::with_capacity(HEADROOM);
        put_long(&mut head, self.block_records as i64);
        put_long(&mut head, (frame.len() - start) as i64);
        // The count and size end where the records begin; what precedes the block moves up to
        // meet them.
        let at = start - head.len();
        frame[at..start].copy_from_slice(&head);
        frame.copy_within(..self.lead, at - self.lead);
        frame.extend_from_slice(&self.sync);
        let frame = Bytes::from(frame).slice(at - self.lead..);
        self.ready_len += frame.len();
        self.ready.push(frame);
        self.block.truncate(0);
        self.block.resize(HEADROOM, 0);
        self.lead = 0;
        self.committed = HEADROOM;
        self.block_records = 0;
    }
}

/// Compresses `block` with raw deflate, appended to `out`. The compressor's state (a few
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

/// An Avro file behind the [`FileEncoder`] seam: each record encoded once, when prepared,
/// straight into the open block.
pub struct AvroEncoder {
    file: AvroFile,
    records: RecordEncoder,
}

impl AvroEncoder {
    pub fn new(codec: Codec, sync: [u8; 16], block_target: usize) -> Self {
        AvroEncoder {
            file: AvroFile::new(codec, sync, block_target),
            records: RecordEncoder::default(),
        }
    }
}

impl FileEncoder for AvroEncoder {
    fn prepare(&mut self, r: &Record<'_>) -> usize {
        self.file.prepare(&mut self.records, r)
    }

    fn push_prepared(&mut self, _r: &Record<'_>) -> Result<(), EncodeError> {
        self.file.add_prepared();
        Ok(())
    }

    fn size_with(&self, extra: usize) -> u64 {
        self.file.size_with(extra)
    }

    fn records(&self) -> u64 {
        self.file.records()
    }

    fn take_output(&mut self) -> Bytes {
        self.file.take_output()
    }

    fn output_len(&self) -> usize {
        self.file.output_len()
    }

    fn held_bytes(&self) -> usize {
        self.file.held_bytes()
    }

    fn finish(self: Box<Self>) -> Result<(Bytes, u64), EncodeError> {
        Ok(self.file.finish())
    }
}

#[cfg(test)]
mod tests;
