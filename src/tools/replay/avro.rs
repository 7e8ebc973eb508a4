//! A schema-driven reader of Avro object container files that keeps each map's entries in file
//! order, repeated keys included.
//!
//! apache-avro decodes a map into a `HashMap`, which loses both the order and all but one of a
//! repeated key's values. hubcap writes a repeated Kafka header name once per occurrence in the
//! `Properties` map, and a replay must produce every occurrence, in order: hence this reader.
//! It decodes what Event Hubs Capture and hubcap write (records, maps, arrays, unions and the
//! primitive types; codecs `null` and `deflate`). Enums, fixed types and references to named
//! types are refused with an error that says so.
//!
//! Decoding streams: one block is inflated at a time (deflate), and each record is decoded when
//! the iterator is asked for it, so memory beyond the file's bytes is one block and one record.

use std::borrow::Cow;
use std::io::Read;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::encode::avro::Codec;

const MAGIC: &[u8; 4] = b"Obj\x01";
const SYNC_LEN: usize = 16;
/// The largest block inflated: Capture's size window is at most 500 MB, so a real block is
/// smaller; a block that inflates past this is refused rather than allowed to take the memory.
const MAX_BLOCK: u64 = 1 << 30;

/// A decoded value. A union's value is the value of the branch it holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    Bytes(Vec<u8>),
    String(String),
    Array(Vec<Value>),
    /// Entries in file order; a key may repeat.
    Map(Vec<(String, Value)>),
    /// Fields in schema order, by name.
    Record(Vec<(Arc<str>, Value)>),
}

impl Value {
    /// The type's name, for messages: values themselves may be large.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "boolean",
            Value::Int(_) => "int",
            Value::Long(_) => "long",
            Value::Float(_) => "float",
            Value::Double(_) => "double",
            Value::Bytes(_) => "bytes",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Record(_) => "record",
        }
    }
}

/// The schema types this reader decodes.
#[derive(Debug, Clone, PartialEq)]
enum Schema {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Array(Box<Schema>),
    Map(Box<Schema>),
    Record(Vec<(Arc<str>, Schema)>),
    Union(Vec<Schema>),
}

#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    #[error("it does not start with Avro's magic bytes Obj\\x01")]
    NotAvro,
    #[error("its header is cut short or malformed ({0})")]
    Header(Malformed),
    #[error("its header has no avro.schema")]
    NoSchema,
    #[error("its avro.schema is not JSON: {0}")]
    SchemaJson(serde_json::Error),
    #[error(
        "its avro.schema {0}; replay reads the schemas of Event Hubs Capture and hubcap files"
    )]
    Schema(String),
    #[error("its codec {0:?} is not one replay decodes (null, deflate)")]
    Codec(String),
    #[error("block {block} (at byte {at}) is cut short or malformed ({problem})")]
    Block {
        block: u64,
        at: usize,
        problem: Malformed,
    },
    #[error("block {block} (at byte {at}) does not end with the header's sync marker: the file is corrupt, or was cut and joined")]
    Sync { block: u64, at: usize },
    #[error("block {block} (at byte {at}) does not inflate: {source}")]
    Inflate {
        block: u64,
        at: usize,
        source: std::io::Error,
    },
    #[error("block {block} (at byte {at}) inflates to more than {MAX_BLOCK} bytes, more than any Capture or hubcap block")]
    BlockTooLarge { block: u64, at: usize },
    #[error("record {record} of block {block}: {problem}")]
    Record {
        block: u64,
        record: u64,
        problem: Malformed,
    },
    #[error("block {block} holds {extra} bytes after its {records} records")]
    Trailing {
        block: u64,
        records: u64,
        extra: usize,
    },
}

/// Why bytes do not decode as the schema says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the data ends inside a value")]
    Truncated,
    #[error("a varint runs past 10 bytes")]
    Varint,
    #[error("a length of {0}")]
    Length(i64),
    #[error("a count of {count} items with {left} bytes left")]
    Count { count: i64, left: usize },
    #[error("a string that is not UTF-8")]
    Utf8,
    #[error("union branch {index} of a union of {branches}")]
    Branch { index: i64, branches: usize },
    #[error("a boolean byte {0}, not 0 or 1")]
    Boolean(u8),
}

/// An Avro object container file's records, decoded one by one.
pub struct Reader<'a> {
    schema: Schema,
    codec: Codec,
    sync: [u8; SYNC_LEN],
    /// The whole file, and where the next block starts in it.
    file: &'a [u8],
    next_block: usize,
    /// The open block's records (inflated, with deflate), where the next one starts, and how
    /// many are left.
    block: Cow<'a, [u8]>,
    at: usize,
    left: u64,
    /// Blocks opened so far; the open one is `opened - 1`.
    opened: u64,
    record_index: u64,
    /// What `data` leaves out before its first block, when it is a file's header followed by
    /// blocks from its middle: the blocks and the bytes, for errors to name the file's own.
    skipped: (u64, usize),
}

impl<'a> Reader<'a> {
    /// Reads the header of the file `data`: its schema, codec and sync marker.
    pub fn new(data: &'a [u8]) -> Result<Reader<'a>, AvroError> {
        let rest = data.strip_prefix(MAGIC).ok_or(AvroError::NotAvro)?;
        let mut c = Cursor::new(rest);
        let meta = header_metadata(&mut c).map_err(AvroError::Header)?;
        let sync = c.array::<SYNC_LEN>().map_err(AvroError::Header)?;
        let schema_text = meta
            .iter()
            .find(|(k, _)| k == "avro.schema")
            .ok_or(AvroError::NoSchema)?;
        let json: Json = serde_json::from_slice(&schema_text.1).map_err(AvroError::SchemaJson)?;
        let schema = parse_schema(&json).map_err(AvroError::Schema)?;
        let codec = match meta.iter().find(|(k, _)| k == "avro.codec") {
            None => Codec::Null,
            Some((_, name)) => match name.as_slice() {
                b"null" => Codec::Null,
                b"deflate" => Codec::Deflate,
                other => return Err(AvroError::Codec(String::from_utf8_lossy(other).into())),
            },
        };
        Ok(Reader {
            schema,
            codec,
            sync,
            file: data,
            next_block: MAGIC.len() + c.at,
            block: Cow::Borrowed(&[]),
            at: 0,
            left: 0,
            opened: 0,
            record_index: 0,
            skipped: (0, 0),
        })
    }

    /// A reader of a file's header followed by blocks from its middle: the first of them is
    /// block `blocks` of the file, at byte `at`. Only errors change.
    pub fn resumed(data: &'a [u8], blocks: u64, at: usize) -> Result<Reader<'a>, AvroError> {
        let mut reader = Reader::new(data)?;
        reader.skipped = (blocks, at.saturating_sub(reader.next_block));
        Ok(reader)
    }

    /// Opens the next block that holds records; `false` at the end of the file.
    fn open_block(&mut self) -> Result<bool, AvroError> {
        loop {
            if self.at != self.block.len() {
                return Err(AvroError::Trailing {
                    block: self.block_index(),
                    records: self.record_index,
                    extra: self.block.len() - self.at,
                });
            }
            if self.next_block == self.file.len() {
                return Ok(false);
            }
            let start = self.next_block;
            let (block, at) = (self.opened + self.skipped.0, start + self.skipped.1);
            self.opened += 1;
            let block_err = |problem| AvroError::Block { block, at, problem };
            let mut c = Cursor::new(&self.file[start..]);
            let count = c.long().map_err(block_err)?;
            let size = c.long().map_err(block_err)?;
            let size = usize::try_from(size).map_err(|_| block_err(Malformed::Length(size)))?;
            let data = c.take(size).map_err(block_err)?;
            if c.take(SYNC_LEN).map_err(block_err)? != self.sync {
                return Err(AvroError::Sync { block, at });
            }
            self.next_block = start + c.at;
            self.block = self.inflate(data, at)?;
            if count < 0 || usize::try_from(count).is_ok_and(|n| n > self.block.len()) {
                let left = self.block.len();
                return Err(block_err(Malformed::Count { count, left }));
            }
            self.at = 0;
            self.left = count.unsigned_abs();
            self.record_index = 0;
            if self.left > 0 {
                return Ok(true);
            }
        }
    }

    /// The blocks opened so far (those of `data`, once read to its end).
    pub fn blocks(&self) -> u64 {
        self.opened
    }

    /// The open block's number, from 0.
    fn block_index(&self) -> u64 {
        self.opened.saturating_sub(1) + self.skipped.0
    }

    fn inflate(&self, data: &'a [u8], at: usize) -> Result<Cow<'a, [u8]>, AvroError> {
        match self.codec {
            Codec::Null => Ok(Cow::Borrowed(data)),
            Codec::Deflate => {
                let mut out = Vec::new();
                flate2::read::DeflateDecoder::new(data)
                    .take(MAX_BLOCK + 1)
                    .read_to_end(&mut out)
                    .map_err(|source| AvroError::Inflate {
                        block: self.block_index(),
                        at,
                        source,
                    })?;
                if out.len() as u64 > MAX_BLOCK {
                    return Err(AvroError::BlockTooLarge {
                        block: self.block_index(),
                        at,
                    });
                }
                Ok(Cow::Owned(out))
            }
        }
    }

    fn next_record(&mut self) -> Result<Option<Value>, AvroError> {
        if self.left == 0 && !self.open_block()? {
            return Ok(None);
        }
        let mut c = Cursor::new(&self.block[self.at..]);
        let value = decode(&self.schema, &mut c).map_err(|problem| AvroError::Record {
            block: self.block_index(),
            record: self.record_index,
            problem,
        })?;
        self.at += c.at;
        self.left -= 1;
        self.record_index += 1;
        Ok(Some(value))
    }
}

impl Iterator for Reader<'_> {
    type Item = Result<Value, AvroError>;

    /// The next record; after an error, `None`.
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_record() {
            Ok(value) => value.map(Ok),
            Err(e) => {
                // Nothing after a malformed block or record can be trusted.
                self.next_block = self.file.len();
                self.block = Cow::Borrowed(&[]);
                self.at = 0;
                self.left = 0;
                Some(Err(e))
            }
        }
    }
}

/// Where the header ends in `data`, the start of an object container file: `None` while
/// `data` holds only part of it. Lets a file be read and decoded a few blocks at a time.
pub fn header_end(data: &[u8]) -> Result<Option<usize>, AvroError> {
    if data.len() < MAGIC.len() {
        return match MAGIC.starts_with(data) {
            true => Ok(None),
            false => Err(AvroError::NotAvro),
        };
    }
    let rest = data.strip_prefix(MAGIC).ok_or(AvroError::NotAvro)?;
    let mut c = Cursor::new(rest);
    match header_metadata(&mut c).and_then(|_| c.array::<SYNC_LEN>()) {
        Ok(_) => Ok(Some(MAGIC.len() + c.at)),
        Err(Malformed::Truncated) => Ok(None),
        Err(e) => Err(AvroError::Header(e)),
    }
}

/// Where the block that starts at `at` in `data` ends (after its sync marker): `None` while
/// `data` holds only part of it. A block whose count or size is malformed "ends" at the end of
/// `data`, so that [`Reader`] says what is wrong with it.
pub fn block_end(data: &[u8], at: usize) -> Option<usize> {
    let mut c = Cursor::new(data.get(at..)?);
    let size = match c.long().and_then(|_| c.long()) {
        Ok(size) => size,
        Err(Malformed::Truncated) => return None,
        Err(_) => return Some(data.len()),
    };
    match usize::try_from(size) {
        Ok(size) if size as u64 <= MAX_BLOCK => {
            let end = at + c.at + size + SYNC_LEN;
            (end <= data.len()).then_some(end)
        }
        _ => Some(data.len()),
    }
}

/// The header's metadata map: keys and `bytes` values, in order.
fn header_metadata(c: &mut Cursor<'_>) -> Result<Vec<(String, Vec<u8>)>, Malformed> {
    let mut entries = Vec::new();
    while let Some(count) = c.block_count()? {
        for _ in 0..count {
            let key = c.string()?;
            let value = c.bytes()?.to_vec();
            entries.push((key, value));
        }
    }
    Ok(entries)
}

/// Decodes one value of `schema`.
fn decode(schema: &Schema, c: &mut Cursor<'_>) -> Result<Value, Malformed> {
    Ok(match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => match c.take(1)?[0] {
            0 => Value::Boolean(false),
            1 => Value::Boolean(true),
            other => return Err(Malformed::Boolean(other)),
        },
        Schema::Int => Value::Int(c.int()?),
        Schema::Long => Value::Long(c.long()?),
        Schema::Float => Value::Float(f32::from_le_bytes(c.array()?)),
        Schema::Double => Value::Double(f64::from_le_bytes(c.array()?)),
        Schema::Bytes => Value::Bytes(c.bytes()?.to_vec()),
        Schema::String => Value::String(c.string()?),
        Schema::Array(items) => {
            let mut values = Vec::new();
            while let Some(count) = c.block_count()? {
                for _ in 0..count {
                    values.push(decode(items, c)?);
                }
            }
            Value::Array(values)
        }
        Schema::Map(values) => {
            let mut entries = Vec::new();
            while let Some(count) = c.block_count()? {
                for _ in 0..count {
                    let key = c.string()?;
                    entries.push((key, decode(values, c)?));
                }
            }
            Value::Map(entries)
        }
        Schema::Record(fields) => Value::Record(
            fields
                .iter()
                .map(|(name, schema)| Ok((name.clone(), decode(schema, c)?)))
                .collect::<Result<_, Malformed>>()?,
        ),
        Schema::Union(branches) => {
            let index = c.long()?;
            let branch = usize::try_from(index)
                .ok()
                .and_then(|i| branches.get(i))
                .ok_or(Malformed::Branch {
                    index,
                    branches: branches.len(),
                })?;
            decode(branch, c)?
        }
    })
}

/// Reads Avro's binary encoding from a slice.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8]) -> Self {
        Cursor { data, at: 0 }
    }

    fn left(&self) -> usize {
        self.data.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.at.checked_add(n).ok_or(Malformed::Truncated)?;
        let taken = self.data.get(self.at..end).ok_or(Malformed::Truncated)?;
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let bytes = self.take(N)?;
        // `take` returned exactly N bytes.
        bytes.try_into().map_err(|_| Malformed::Truncated)
    }

    /// A zig-zag varint of up to 64 bits.
    fn long(&mut self) -> Result<i64, Malformed> {
        let mut z: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            z |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(Malformed::Varint)
    }

    fn int(&mut self) -> Result<i32, Malformed> {
        let n = self.long()?;
        i32::try_from(n).map_err(|_| Malformed::Varint)
    }

    fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.long()?;
        let len = usize::try_from(len).map_err(|_| Malformed::Length(len))?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, Malformed> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| Malformed::Utf8)
    }

    /// The item count of the next block of an array or map, `None` at its end. A negative count
    /// is followed by the block's size in bytes, which is not needed here. A count larger than
    /// the bytes left is refused: every item these schemas hold takes a byte at least, and a
    /// corrupt count must not become a loop of billions.
    fn block_count(&mut self) -> Result<Option<u64>, Malformed> {
        let count = self.long()?;
        if count < 0 {
            self.long()?;
        }
        let n = count.unsigned_abs();
        if usize::try_from(n).map_or(true, |n| n > self.left()) {
            return Err(Malformed::Count {
                count,
                left: self.left(),
            });
        }
        Ok((n > 0).then_some(n))
    }
}

/// The schema a file's `avro.schema` JSON describes.
fn parse_schema(json: &Json) -> Result<Schema, String> {
    match json {
        Json::String(name) => primitive(name).ok_or_else(|| {
            format!("refers to the named type {name:?}, which replay does not resolve")
        }),
        Json::Array(branches) => Ok(Schema::Union(
            branches
                .iter()
                .map(parse_schema)
                .collect::<Result<_, _>>()?,
        )),
        Json::Object(object) => match object.get("type") {
            Some(Json::String(kind)) => match kind.as_str() {
                "record" | "error" => record(object.get("fields")),
                "map" => Ok(Schema::Map(Box::new(parse_schema(
                    object.get("values").unwrap_or(&Json::Null),
                )?))),
                "array" => Ok(Schema::Array(Box::new(parse_schema(
                    object.get("items").unwrap_or(&Json::Null),
                )?))),
                // A logical type is read as the type under it.
                other => primitive(other).ok_or_else(|| unsupported(other)),
            },
            Some(nested) => parse_schema(nested),
            None => Err("has an object without a \"type\"".into()),
        },
        other => Err(format!("has {other} where a type belongs")),
    }
}

fn record(fields: Option<&Json>) -> Result<Schema, String> {
    let Some(Json::Array(fields)) = fields else {
        return Err("has a record without a \"fields\" array".into());
    };
    fields
        .iter()
        .map(|field| {
            let name = field.get("name").and_then(Json::as_str);
            let schema = field.get("type");
            match (name, schema) {
                (Some(name), Some(schema)) => Ok((Arc::from(name), parse_schema(schema)?)),
                _ => Err(format!(
                    "has a record field without a name or a type: {field}"
                )),
            }
        })
        .collect::<Result<_, _>>()
        .map(Schema::Record)
}

fn primitive(name: &str) -> Option<Schema> {
    Some(match name {
        "null" => Schema::Null,
        "boolean" => Schema::Boolean,
        "int" => Schema::Int,
        "long" => Schema::Long,
        "float" => Schema::Float,
        "double" => Schema::Double,
        "bytes" => Schema::Bytes,
        "string" => Schema::String,
        _ => return None,
    })
}

fn unsupported(kind: &str) -> String {
    match kind {
        "enum" | "fixed" => format!("uses the type {kind}, which replay does not decode"),
        other => format!("has the unknown type {other:?}"),
    }
}

#[cfg(test)]
mod tests;
