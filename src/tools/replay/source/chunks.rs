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

/// One Avro file as it streams: its header kept, whole blocks decoded (off the async threads)
/// once they hold a quarter chunk, events sent once they reach a chunk.
impl Read {
    fn avro_file(&self, file: &SourceFile, sink: &Sink<'_>) -> Result<bool, SourceError> {
        let (root, limits) = (&self.root, self.limits);
        let name = shown(root, file);
        let path = object_path(root, &file.name)
            .ok_or_else(|| SourceError::Name { file: name.clone() })?;
        let read_err = |source| SourceError::Read {
            file: name.clone(),
            source,
        };
        let avro_err = |source| SourceError::Avro {
            file: name.clone(),
            source,
        };
        // Ranges of a quarter chunk: few requests (a local store's stream reads 8 KiB at a time,
        // a thread hop each), little held.
        let step = (limits.chunk / 4).max(64 << 10) as u64;
        let mut ranges = (0..file.size)
            .step_by(step as usize)
            .map(|start| start..(start + step).min(file.size));
        // The header, then the blocks not decoded yet; `whole` is where the last whole one ends.
        let mut buf: Vec<u8> = Vec::new();
        let mut header: Option<usize> = None;
        let mut whole = 0;
        // Blocks decoded so far and where the next starts in the file, for errors.
        let (mut blocks, mut at) = (0u64, 0usize);
        let mut events: Vec<Event> = Vec::new();
        let (mut event_bytes, mut read) = (0usize, 0u64);
        let mut ended = false;
        loop {
            if header.is_none() {
                header = avro::header_end(&buf).map_err(avro_err)?;
                if let Some(h) = header {
                    (whole, at) = (h, h);
                }
            }
            if let Some(h) = header {
                while let Some(end) = avro::block_end(&buf, whole) {
                    whole = end;
                }
                if whole - h >= limits.chunk / 4 || (ended && buf.len() > h) {
                    // At the end, what is not a whole block goes to the reader, which says why.
                    let upto = if ended { buf.len() } else { whole };
                    let rest = buf.split_off(upto);
                    let head = buf[..h].to_vec();
                    let data = std::mem::replace(&mut buf, head);
                    buf.extend_from_slice(&rest);
                    let n = data.len() - h;
                    self.free_spent();
                    let keep = |e: &Event| self.selection.keeps(e);
                    let (decoded, count) = events::avro_blocks(&name, &data, (blocks, at), &keep)?;
                    (blocks, at, whole) = (blocks + count, at + n, h);
                    read += n as u64;
                    event_bytes += decoded.iter().map(super::event_bytes).sum::<u64>() as usize;
                    events.extend(decoded);
                    if event_bytes >= limits.chunk {
                        let full = std::mem::take(&mut events);
                        if !sink.send(full, std::mem::take(&mut read), false) {
                            return Ok(false);
                        }
                        event_bytes = 0;
                    }
                }
            }
            if ended {
                if header.is_none() {
                    // Cut short in its header: the reader says so.
                    avro::Reader::new(&buf).map_err(avro_err)?;
                }
                read += header.unwrap_or(0) as u64;
                return Ok(sink.send(events, read, true));
            }
            match ranges.next() {
                Some(range) => {
                    let part = self.fetcher.get(&path, range).map_err(read_err)?;
                    buf.extend_from_slice(&part);
                }
                None => ended = true,
            }
        }
    }

    /// One Parquet file, read whole when it fits the budget, sent in chunks.
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
