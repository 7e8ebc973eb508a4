//! `hubcap repair`: re-archives the files the audit finds missing (listed in a manifest, gone
//! from the store) from the records Kafka still holds.
//!
//! Each missing file is written again under its name with exactly the offsets, the format, the
//! codec and the block size its manifest line gives: the same bytes (the Avro sync marker comes
//! from the file's topic, partition and first offset; the blocks from `blockBytes`). A file is
//! only put when its size and CRC32C match its line, so manifests stay true; and only where no
//! object is (put-if-absent), so a live archiver's file is never overwritten. Kafka is read with
//! an assigned consumer that joins no group and commits nothing: repair takes no partition from
//! a running archiver, and it never moves a checkpoint. Ranges Kafka no longer holds (or holds
//! differently) are reported as unrecoverable.
//!
//! A listed file whose bytes changed (cut short or altered: its size, or with `--verify` its
//! CRC32C, differs from its line) is written again the same way, once the bytes from Kafka
//! match its line: the changed file is first moved under `_quarantine/`, as below.
//!
//! Duplicates and strays the audit finds (strays only without `--allow-stray`) are moved under
//! `_quarantine/` (the same name below it), each with a note of why (`NAME.why.json`): out of
//! what readers' globs pick up, never deleted. `--dry-run` reads and checks, and writes nothing.

use std::sync::Arc;
use std::time::Duration;

use object_store::{ObjectStoreExt, PutMode, PutOptions};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Serialize;

use crate::encode::avro::Codec;
use crate::encode::format::{Format, AVRO_BLOCK};
use crate::encode::parquet::ParquetCompression;
use crate::kafka::consumer::RawHeaders;
use crate::layout::QUARANTINE_DIR;
use crate::record::Batch;
use crate::state::manifest::ManifestEntry;
use crate::store::upload::crc32c_of;
use crate::tools::audit::{audit_archive, range_reader_config, AuditArgs, AuditError};

/// The name the range reader gives Kafka as its group; it never joins it.
const READER_GROUP: &str = "hubcap-repair";

/// How long Kafka may take to answer, or to deliver the next record of a range.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, clap::Args)]
pub struct RepairArgs {
    #[command(flatten)]
    pub audit: AuditArgs,
    /// Read and check what would be restored, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("repair reads the missing records from Kafka: pass --brokers (and the -X settings it needs)")]
    NoBrokers,
    #[error("-X {0}")]
    KafkaSetting(String),
    #[error("cannot create a Kafka consumer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: object_store::Error,
    },
    #[error("reading Kafka stopped unexpectedly: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

impl RepairError {
    /// Whether the command line is at fault: exit 2.
    pub fn is_usage(&self) -> bool {
        match self {
            RepairError::Audit(e) => e.is_usage(),
            RepairError::NoBrokers | RepairError::KafkaSetting(_) => true,
            _ => false,
        }
    }
}

/// What `hubcap repair` did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairReport {
    pub dry_run: bool,
    /// Files written again (with `--dry-run`: that would be), byte for byte as listed.
    pub restored: Vec<Restored>,
    /// Missing files that cannot be written again as their manifest lines list them.
    pub unrecoverable: Vec<Unrecoverable>,
    /// Duplicates and strays moved under `_quarantine/` (with `--dry-run`: that would be).
    pub quarantined: Vec<Quarantined>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Quarantined {
    pub path: String,
    /// Where it is now, relative to the output.
    pub to: String,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub path: String,
    pub first_offset: i64,
    pub last_offset: i64,
    pub events: u64,
    pub size: u64,
    pub crc32c: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unrecoverable {
    pub path: String,
    pub first_offset: i64,
    pub last_offset: i64,
    pub reason: String,
}

impl RepairReport {
    pub fn text(&self) -> String {
        let verb = if self.dry_run {
            "would restore"
        } else {
            "restored"
        };
        let mut s = String::new();
        for r in &self.restored {
            s += &format!(
                "{verb} {} (offsets {}..={}, {} events, {} bytes, CRC32C {} as listed)\n",
                r.path, r.first_offset, r.last_offset, r.events, r.size, r.crc32c
            );
        }
        let moved = if self.dry_run {
            "would quarantine"
        } else {
            "quarantined"
        };
        for q in &self.quarantined {
            s += &format!("{moved} {} to {}: {}\n", q.path, q.to, q.why);
        }
        for u in &self.unrecoverable {
            s += &format!(
                "unrecoverable: {} (offsets {}..={}): {}\n",
                u.path, u.first_offset, u.last_offset, u.reason
            );
        }
        s += &format!(
            "repair: {} {verb}, {} {moved}, {} unrecoverable\n",
            self.restored.len(),
            self.quarantined.len(),
            self.unrecoverable.len()
        );
        s
    }
}

/// Audits the archive, and writes each missing file again from Kafka.
pub async fn repair(args: &RepairArgs) -> Result<RepairReport, RepairError> {
    let brokers = args.audit.brokers.clone().ok_or(RepairError::NoBrokers)?;
    let (audit, archived, output) = audit_archive(&args.audit).await?;
    let mut report = RepairReport {
        dry_run: args.dry_run,
        ..Default::default()
    };
    // One reader for every missing file: assigned to each range in turn, never joining a group.
    let consumer: Arc<BaseConsumer> = Arc::new(
        range_reader_config(&brokers, &args.audit.kafka, READER_GROUP)?
            .create()
            .map_err(|e| RepairError::KafkaSetting(crate::kafka::client_error(&e)))?,
    );
    // Missing files, and listed files whose bytes are not the ones archived (cut short or
    // changed: the audit finds sizes that differ, and with --verify CRC32Cs): both are written
    // again from Kafka; a changed one is first moved under _quarantine/ with why.
    let mut targets: Vec<(&ManifestEntry, Option<&str>)> = Vec::new();
    for p in &audit.partitions {
        for span in &p.missing {
            if let Some((_, line)) = archived.get(&span.path) {
                targets.push((line, None));
            }
        }
        for bad in &p.unreadable {
            if let Some((_, line)) = archived.get(&bad.path) {
                targets.push((line, Some(bad.reason.as_str())));
            }
        }
    }
    for (line, damaged) in targets {
        let (consumer, line_owned) = (consumer.clone(), line.clone());
        let rebuilt =
            tokio::task::spawn_blocking(move || rebuild(&consumer, &line_owned)).await??;
        let bytes = match rebuilt {
            Ok(bytes) => bytes,
            Err(reason) => {
                report.unrecoverable.push(unrecoverable(line, reason));
                continue;
            }
        };
        let crc = crc32c_of(&bytes);
        if let Some(reason) = differs(line, bytes.len() as u64, &crc) {
            report.unrecoverable.push(unrecoverable(line, reason));
            continue;
        }
        if let Some(reason) = damaged {
            let to = format!("{QUARANTINE_DIR}/{}", line.path);
            let why = format!("not as archived: {reason}");
            if !args.dry_run {
                quarantine(&output, &line.path, &to, &why).await?;
            }
            report.quarantined.push(Quarantined {
                path: line.path.clone(),
                to,
                why,
            });
        }
        if !args.dry_run {
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            let put = output
                .store
                .put_opts(&output.path(&line.path), bytes.into(), opts)
                .await;
            match put {
                Ok(_) => {}
                // Written meanwhile (a live archiver's replay): left as it is.
                Err(object_store::Error::AlreadyExists { .. }) => continue,
                Err(source) => {
                    return Err(RepairError::Write {
                        path: line.path.clone(),
                        source,
                    })
                }
            }
        }
        report.restored.push(Restored {
            path: line.path.clone(),
            first_offset: line.first_sequence_number,
            last_offset: line.last_sequence_number,
            events: line.event_count,
            size: line.size_in_bytes,
            crc32c: crc,
        });
    }
    let mut moves: Vec<(String, String)> = audit
        .duplicates
        .iter()
        .map(|d| {
            let why = format!(
                "a duplicate: it holds offsets {}..={}, archived in {}",
                d.first_offset,
                d.last_offset,
                d.archived.join(", ")
            );
            (d.path.clone(), why)
        })
        .collect();
    if !args.audit.allow_stray {
        moves.extend(
            audit
                .strays
                .iter()
                .map(|s| (s.path.clone(), format!("a stray: {}", s.reason))),
        );
    }
    for (path, why) in moves {
        let to = format!("{QUARANTINE_DIR}/{path}");
        if !args.dry_run {
            quarantine(&output, &path, &to, &why).await?;
        }
        report.quarantined.push(Quarantined { path, to, why });
    }
    Ok(report)
}

/// Moves `path` to `to` (copy, note, delete: a crash leaves it in both places, and the next
/// repair moves it again), beside a note of why.
async fn quarantine(
    output: &crate::store::Location,
    path: &str,
    to: &str,
    why: &str,
) -> Result<(), RepairError> {
    let failed = |source| RepairError::Write {
        path: path.to_string(),
        source,
    };
    let note = serde_json::json!({
        "path": path,
        "why": why,
        "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    let store = &output.store;
    store
        .copy(&output.path(path), &output.path(to))
        .await
        .map_err(failed)?;
    let note = serde_json::to_vec_pretty(&note).unwrap_or_default();
    store
        .put(&output.path(&format!("{to}.why.json")), note.into())
        .await
        .map_err(failed)?;
    store.delete(&output.path(path)).await.map_err(failed)?;
    Ok(())
}

fn unrecoverable(line: &ManifestEntry, reason: String) -> Unrecoverable {
    Unrecoverable {
        path: line.path.clone(),
        first_offset: line.first_sequence_number,
        last_offset: line.last_sequence_number,
        reason,
    }
}

/// Why bytes of `size` and CRC32C `crc` are not the file `line` lists, if they are not.
fn differs(line: &ManifestEntry, size: u64, crc: &str) -> Option<String> {
    if size != line.size_in_bytes {
        return Some(format!(
            "written again from Kafka it has {size} bytes, its manifest line {}",
            line.size_in_bytes
        ));
    }
    match &line.content_crc32c {
        Some(listed) if listed != crc => Some(format!(
            "written again from Kafka its CRC32C is {crc}, its manifest line's {listed}"
        )),
        _ => None,
    }
}

/// The file `line` lists, encoded again from the records Kafka holds at its offsets; or why
/// it cannot be.
fn rebuild(
    consumer: &BaseConsumer,
    line: &ManifestEntry,
) -> Result<Result<Vec<u8>, String>, RepairError> {
    let Some(format) = format_of(line) else {
        return Ok(Err(format!(
            "its manifest line's format {:?} / codec {:?} is not one hubcap writes",
            line.format, line.codec
        )));
    };
    let (topic, partition) = (line.topic.as_str(), line.partition_id);
    let (first, last) = (line.first_sequence_number, line.last_sequence_number);
    let (low, high) = match consumer.fetch_watermarks(topic, partition, KAFKA_TIMEOUT) {
        Ok(marks) => marks,
        Err(e) => {
            return Ok(Err(format!(
                "Kafka did not give the partition's offsets: {e}"
            )))
        }
    };
    if first < low {
        return Ok(Err(format!(
            "Kafka no longer holds offsets {first}..={}: its log starts at {low} (retention)",
            (low - 1).min(last)
        )));
    }
    if last >= high {
        return Ok(Err(format!(
            "Kafka's partition ends at {high}: the topic was re-created or truncated"
        )));
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(first))?;
    consumer.assign(&tpl)?;
    let mut batch = Batch::default();
    loop {
        let Some(polled) = consumer.poll(KAFKA_TIMEOUT) else {
            return Ok(Err(format!(
                "Kafka delivered nothing past offset {} within {KAFKA_TIMEOUT:?}",
                first + batch.len() as i64 - 1
            )));
        };
        let m = match polled {
            Ok(m) => m,
            Err(rdkafka::error::KafkaError::PartitionEOF(p)) if p == partition => break,
            Err(rdkafka::error::KafkaError::PartitionEOF(_)) => continue,
            Err(e) => return Ok(Err(format!("reading Kafka failed: {e}"))),
        };
        if (m.topic(), m.partition()) != (topic, partition) {
            continue; // the range assigned before
        }
        if m.offset() > last {
            break;
        }
        if m.offset() >= first {
            batch.push(
                m.offset(),
                m.timestamp().to_millis(),
                m.key(),
                m.payload(),
                RawHeaders::of(&m),
            );
        }
        if m.offset() == last {
            break;
        }
    }
    if batch.len() as u64 != line.event_count {
        return Ok(Err(format!(
            "Kafka holds {} records at offsets {first}..={last}, its manifest line {}",
            batch.len(),
            line.event_count
        )));
    }
    let mut file = format.create(topic, partition, first);
    let mut bytes = Vec::new();
    for r in batch.iter() {
        file.prepare(&r);
        if let Err(e) = file.push_prepared(&r) {
            return Ok(Err(format!("cannot encode offset {}: {e}", r.offset)));
        }
        bytes.extend_from_slice(&file.take_output());
    }
    match file.finish() {
        Ok((rest, _)) => bytes.extend_from_slice(&rest),
        Err(e) => return Ok(Err(format!("cannot encode: {e}"))),
    }
    Ok(Ok(bytes))
}

/// The format a manifest line says its file was written in.
fn format_of(line: &ManifestEntry) -> Option<Format> {
    use clap::ValueEnum;
    let bytes = line.block_bytes.and_then(|b| usize::try_from(b).ok());
    let format = match line.format.as_str() {
        "avro" => Format::Avro {
            codec: Codec::from_str(&line.codec, true).ok()?,
            block_target: AVRO_BLOCK,
        },
        "parquet" => Format::Parquet {
            compression: ParquetCompression::from_str(&line.codec, true).ok()?,
            row_group_bytes: 0,
        },
        _ => return None,
    };
    Some(match bytes {
        Some(b) => format.with_block_bytes(b),
        None => format,
    })
}
