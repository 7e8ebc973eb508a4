//! An archive's files read in bounded chunks, one file after another, in a task of its own a
//! chunk ahead of the caller: what a replay holds is a few chunks, not a few files.
//!
//! Avro is read a range at a time and decoded a few blocks at a time (an object container
//! file's blocks decode on their own, given the header). Parquet is read a row group at a time
//! (each fetched in one request): a row group larger than [`ReadLimits::row_group`] is refused
//! with the `--memory-limit` that would read it.

use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use tokio::sync::mpsc;

use super::super::avro;
use super::ranged::{Fetcher, Ranged};
use super::{events, object_path, Selection, SourceError, SourceFile, SourceFormat};
use crate::record::Event;
use crate::store::Location;

/// How much a chunk and a whole file may hold.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Event bytes (keys, values, headers) per chunk, about: a chunk ends after the block or
    /// row batch that reaches it.
    pub chunk: usize,
    /// The largest Parquet row group read (each is held whole while it decodes).
    pub row_group: u64,
    /// The `--memory-limit` these come from, for the error that names a larger one.
    pub memory_limit: u64,
}

/// Some of one file's events, in file order.
#[derive(Debug)]
pub struct Chunk {
    /// The file's index in the list read.
    pub file: usize,
    /// Its events the selection keeps.
    pub events: Vec<Event>,
    /// The file's bytes read for this chunk (the file's size over all its chunks).
    pub read: u64,
    /// Whether this is the file's last chunk.
    pub last: bool,
}

/// Reads `files` in order, each as chunks, into a channel of one: the reading stops at the
/// first error (sent as the last item) or when the receiver is dropped.
///
/// The reading and decoding run on a thread of their own, not on tokio's blocking pool: the
/// allocator reuses the memory of events freed elsewhere only in the thread that allocated
/// them, and a pool hands each decode to whichever thread is idle, each keeping its own
/// pages (600 MB resident for 256 MiB of chunks).
pub fn stream(
    root: Location,
    files: Vec<SourceFile>,
    selection: Selection,
    limits: ReadLimits,
) -> Chunks {
    let (tx, rx) = mpsc::channel(1);
    let (spent, spent_rx) = std::sync::mpsc::channel();
    let runtime = tokio::runtime::Handle::current();
    let told = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("replay-read".into())
        .spawn(move || {
            let fetcher = Fetcher {
                store: root.store.clone(),
                kind: root.kind,
                runtime,
            };
            let read = Read {
                fetcher,
                root,
                selection,
                limits,
                spent: spent_rx,
            };
            read.files(&files, &tx);
        });
    if let Err(e) = spawned {
        let tx = told;
        let failed = SourceError::Decoder {
            file: "the archive".into(),
            reason: format!("cannot start a thread to read it: {e}"),
        };
        tokio::spawn(async move { tx.send(Err(failed)).await });
    }
    Chunks { rx, spent }
}

/// The chunks [`stream`] reads.
pub struct Chunks {
    rx: mpsc::Receiver<Result<Chunk, SourceError>>,
    /// Events done with, freed by the thread that allocated them (see [`stream`]).
    spent: std::sync::mpsc::Sender<Vec<Event>>,
}

impl Chunks {
    /// The next chunk; `None` after the last file's last chunk (or an error).
    pub async fn recv(&mut self) -> Option<Result<Chunk, SourceError>> {
        self.rx.recv().await
    }

    /// Hands events done with back to the reading thread to free.
    pub fn spent(&self, events: Vec<Event>) {
        // The thread ended: the events are freed here.
        let _ = self.spent.send(events);
    }
}

/// The reading thread's means.
struct Read {
    fetcher: Fetcher,
    root: Location,
    selection: Selection,
    limits: ReadLimits,
    /// Events handed back, dropped here before more are decoded.
    spent: std::sync::mpsc::Receiver<Vec<Event>>,
}

impl Read {
    /// Frees the events handed back.
    fn free_spent(&self) {
        while let Ok(events) = self.spent.try_recv() {
            drop(events);
        }
    }

    fn files(&self, files: &[SourceFile], tx: &mpsc::Sender<Result<Chunk, SourceError>>) {
        for (index, file) in files.iter().enumerate() {
            let sink = Sink { tx, index };
            let read = match file.format {
                SourceFormat::Avro => self.avro_file(file, &sink),
                SourceFormat::Parquet => self.parquet_file(file, &sink),
            };
            match read {
                Ok(true) => {}
                // The receiver is gone: nobody wants the rest.
                Ok(false) => return,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    }
}

/// Where one file's chunks go.
struct Sink<'a> {
    tx: &'a mpsc::Sender<Result<Chunk, SourceError>>,
    index: usize,
}

impl Sink<'_> {
    /// Sends a chunk, waiting while one waits already; `false` when the receiver is gone.
    fn send(&self, events: Vec<Event>, read: u64, last: bool) -> bool {
        let chunk = Chunk {
            file: self.index,
            events,
            read,
            last,
        };
        self.tx.blocking_send(Ok(chunk)).is_ok()
    }
}

fn shown(root: &Location, file: &SourceFile) -> String {
    format!("{}/{}", root.display.trim_end_matches('/'), file.name)
}

impl Read {
    /// One Avro file, a range at a time: whole blocks decoded once they hold a quarter chunk,
    /// events sent once they reach a chunk.
    fn avro_file(&self, file: &SourceFile, sink: &Sink<'_>) -> Result<bool, SourceError> {
        let (root, limits) = (&self.root, self.limits);
        let name = shown(root, file);
        let path = object_path(root, &file.name)
            .ok_or_else(|| SourceError::Name { file: name.clone() })?;
        // Ranges of a quarter chunk: few requests (a local store's stream reads 8 KiB at a time,
        // a thread hop each), little held.
        let step = (limits.chunk / 4).max(64 << 10) as u64;
        let mut ranges = (0..file.size)
            .step_by(step as usize)
            .map(|start| start..(start + step).min(file.size));
        let mut blocks = Blocks::default();
        let mut events: Vec<Event> = Vec::new();
        let (mut event_bytes, mut read) = (0usize, 0u64);
        loop {
            let range = ranges.next();
            if let Some(range) = &range {
                let part =
                    self.fetcher
                        .get(&path, range.clone())
                        .map_err(|source| SourceError::Read {
                            file: name.clone(),
                            source,
                        })?;
                blocks.push(&part);
            }
            let ended = range.is_none();
            let avro_err = |source| SourceError::Avro {
                file: name.clone(),
                source,
            };
            let Some((data, start)) = blocks.take(limits.chunk / 4, ended).map_err(avro_err)?
            else {
                continue;
            };
            self.free_spent();
            let keep = |e: &Event| self.selection.keeps(e);
            let (decoded, count) = events::avro_blocks(&name, &data, start, &keep)?;
            blocks.decoded(count);
            read += blocks.taken(&data);
            event_bytes += decoded.iter().map(super::event_bytes).sum::<u64>() as usize;
            events.extend(decoded);
            if ended {
                return Ok(sink.send(events, read + blocks.header_len(), true));
            }
            if event_bytes >= limits.chunk {
                let full = std::mem::take(&mut events);
                if !sink.send(full, std::mem::take(&mut read), false) {
                    return Ok(false);
                }
                event_bytes = 0;
            }
        }
    }

    /// One Parquet file, a row group at a time (each fetched in one request and held while
    /// it decodes), its events sent in chunks.
    fn parquet_file(&self, file: &SourceFile, sink: &Sink<'_>) -> Result<bool, SourceError> {
        let name = shown(&self.root, file);
        let path = object_path(&self.root, &file.name)
            .ok_or_else(|| SourceError::Name { file: name.clone() })?;
        let parquet_err = |source| SourceError::Parquet {
            file: name.clone(),
            source,
        };
        let ranged = Ranged::new(self.fetcher.clone(), path, file.size);
        let metadata =
            ArrowReaderMetadata::load(&ranged, Default::default()).map_err(parquet_err)?;
        let keep = |e: &Event| self.selection.keeps(e);
        let (mut events, mut event_bytes, mut reported) = (Vec::new(), 0usize, 0u64);
        let mut held = 0u64;
        for (index, group) in metadata.metadata().row_groups().iter().enumerate() {
            let (start, end) = group
                .columns()
                .iter()
                .map(|c| c.byte_range())
                .fold((u64::MAX, 0), |(s, e), (at, len)| {
                    (s.min(at), e.max(at + len))
                });
            if start >= end {
                continue;
            }
            if end - start > self.limits.row_group {
                let size = end - start;
                return Err(SourceError::TooLarge {
                    file: name,
                    row_group: index,
                    size,
                    memory_limit: self.limits.memory_limit,
                    needed: size.saturating_mul(self.limits.memory_limit)
                        / self.limits.row_group.max(1)
                        + 1,
                });
            }
            self.free_spent();
            ranged
                .hold(start..end)
                .map_err(|source| SourceError::Read {
                    file: name.clone(),
                    source,
                })?;
            held += end - start;
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
                ranged.clone(),
                metadata.clone(),
            )
            .with_row_groups(vec![index])
            .build()
            .map_err(parquet_err)?;
            for batch in reader {
                let decoded = events::parquet_batch(&name, batch, &keep)?;
                event_bytes += decoded.iter().map(super::event_bytes).sum::<u64>() as usize;
                events.extend(decoded);
                if event_bytes >= self.limits.chunk {
                    let read = held.min(file.size) - reported;
                    reported += read;
                    if !sink.send(std::mem::take(&mut events), read, false) {
                        return Ok(false);
                    }
                    event_bytes = 0;
                }
            }
            ranged.release();
        }
        Ok(sink.send(events, file.size.saturating_sub(reported), true))
    }
}

/// What [`Blocks::take`] gives: a file's header and whole blocks, and where the first block is
/// in the file (its number and byte).
type Taken = (Vec<u8>, (u64, usize));

/// An Avro file's bytes as they arrive: its header, kept, then the bytes after the blocks
/// decoded so far.
#[derive(Default)]
struct Blocks {
    buf: Vec<u8>,
    /// Where the header ends, once it is whole.
    header: Option<usize>,
    /// Where the last whole block in `buf` ends.
    whole: usize,
    /// Blocks decoded so far, and where the next one starts in the file (for errors).
    decoded: u64,
    at: usize,
}

impl Blocks {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The header and the whole blocks that follow it once they hold `at_least` bytes (at the
    /// `end`, whatever is left, which the reader refuses unless it is whole blocks), and where
    /// the first block is in the file (its number and byte); they leave the buffer.
    fn take(&mut self, at_least: usize, end: bool) -> Result<Option<Taken>, avro::AvroError> {
        if self.header.is_none() {
            self.header = avro::header_end(&self.buf)?;
            match self.header {
                Some(h) => (self.whole, self.at) = (h, h),
                // Cut short in its header: the reader says so.
                None if end => {
                    let refused = avro::Reader::new(&self.buf).err();
                    return Err(refused.unwrap_or(avro::AvroError::NotAvro));
                }
                None => return Ok(None),
            }
        }
        let h = self.header_len() as usize;
        while let Some(next) = avro::block_end(&self.buf, self.whole) {
            self.whole = next;
        }
        let upto = if end { self.buf.len() } else { self.whole };
        if !end && upto - h < at_least.max(1) {
            return Ok(None);
        }
        let rest = self.buf.split_off(upto);
        let head = self.buf[..h].to_vec();
        let data = std::mem::replace(&mut self.buf, head);
        self.buf.extend_from_slice(&rest);
        self.whole = h;
        Ok(Some((data, (self.decoded, self.at))))
    }

    /// Counts in the blocks of what [`Blocks::take`] gave.
    fn decoded(&mut self, blocks: u64) {
        self.decoded += blocks;
    }

    /// The file bytes `data` (from [`Blocks::take`]) held past the header, now counted.
    fn taken(&mut self, data: &[u8]) -> u64 {
        let n = data.len() - self.header_len() as usize;
        self.at += n;
        n as u64
    }

    fn header_len(&self) -> u64 {
        self.header.unwrap_or(0) as u64
    }
}
