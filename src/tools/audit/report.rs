//! What an audit found, per partition, and how it is judged and printed. Everything here is pure:
//! the files come in as offset spans already read, so the rules can be tested without a store.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// Kafka's view of a partition: (low, high) watermarks, by (topic, partition).
pub type Watermarks = BTreeMap<(String, i32), (i64, i64)>;

/// The gaps to look for in Kafka, by (topic, partition), each partition's in offset order.
pub type GapQueries = BTreeMap<(String, i32), Vec<OffsetRange>>;

/// What Kafka holds at each gap asked about, by (topic, partition, the gap's offsets).
pub type GapChecks = BTreeMap<(String, i32, OffsetRange), GapCheck>;

/// The outcome of `hubcap audit`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    /// The archive, as given (without credentials).
    pub output: String,
    pub checkpoints: String,
    /// `--allow-gaps`: gaps are reported but are not failures.
    pub allow_gaps: bool,
    /// Ordered by group, topic, partition.
    pub partitions: Vec<PartitionAudit>,
    /// `--allow-stray`: strays are reported but are not failures.
    pub allow_stray: bool,
    /// Files a reader's glob picks up (`.avro`, `.parquet` outside `_` and `.` folders) that no
    /// manifest lists and `--path-format` does not name, whose records are archived already:
    /// readers count those records twice.
    pub duplicates: Vec<Duplicate>,
    /// Files a reader's glob picks up that are neither archived nor duplicates: not Capture files,
    /// or Capture files of offsets no archived file holds, named outside `--path-format`.
    pub strays: Vec<Stray>,
    /// The Delta and Iceberg tables (`--table`) that hold audited partitions' files.
    pub tables: Vec<TableAudit>,
}

/// A file whose offsets archived files hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Duplicate {
    /// Relative to the output.
    pub path: String,
    pub first_offset: i64,
    pub last_offset: i64,
    /// Archived files holding some of its offsets (at most three named).
    pub archived: Vec<String>,
}

/// A file that is not part of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stray {
    /// Relative to the output.
    pub path: String,
    pub reason: String,
}

/// A Delta or Iceberg table, checked against the manifests and the checkpoints.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableAudit {
    /// Relative to the output.
    pub path: String,
    /// `delta` or `iceberg`.
    pub format: &'static str,
    /// Its latest version; `None` when it could not be read.
    pub version: Option<u64>,
    /// The data files it holds, and their records (from the log's statistics).
    pub files: u64,
    pub events: u64,
    /// Why the table could not be read.
    pub error: Option<String>,
    /// Files the log adds that no manifest lists: hubcap did not archive them.
    pub not_archived: Vec<String>,
    /// Files whose size or record count in the log disagrees with their manifest line.
    pub disagree: Vec<BadFile>,
    /// Paths two or more commits add.
    pub added_twice: Vec<String>,
    /// Files archived inside the table, below their checkpoint, that the table does not hold:
    /// its readers miss their records.
    pub not_in_table: Vec<String>,
    /// Each audited partition's set-transaction version (Iceberg: the committed offset in the
    /// snapshot summary), against its checkpoint.
    pub transactions: Vec<TableTransaction>,
}

/// A partition's set-transaction version in a table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableTransaction {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    /// The table's version for the partition's app id: the last offset committed.
    pub version: Option<i64>,
    /// The last offset of the partition's last file below its checkpoint.
    pub expected: Option<i64>,
    pub checkpoint: Option<i64>,
    /// The last offset of the pending file, whose commit may already be in the table.
    pub pending: Option<i64>,
    /// `version` is `expected`, or the pending file's.
    pub ok: bool,
}

impl TableAudit {
    pub fn failures(&self) -> u64 {
        u64::from(self.error.is_some())
            + self.not_archived.len() as u64
            + self.disagree.len() as u64
            + self.added_twice.len() as u64
            + self.not_in_table.len() as u64
            + self.transactions.iter().filter(|t| !t.ok).count() as u64
    }
}

/// One (group, topic, partition).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PartitionAudit {
    /// `None` for files of a partition that no audited group has a checkpoint for.
    pub group: Option<String>,
    pub topic: String,
    pub partition: i32,
    /// The checkpoint's `next_offset`: every offset below it must be in exactly one file.
    pub checkpoint: Option<i64>,
    /// Kafka's topic id the checkpoint was written for (absent in older checkpoints).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// Why the checkpoint could not be read (corrupt, newer format, for another partition).
    pub checkpoint_error: Option<String>,
    /// A file whose intent was written and whose commit was not.
    pub pending: Option<Pending>,
    /// Files with records whose first offset is below the checkpoint.
    pub files: u64,
    /// Files without records (`--empty-files`): they cover no offsets.
    pub empty_files: u64,
    /// Records in `files`.
    pub events: u64,
    /// The offset ranges those files hold, merged.
    pub covered: Vec<OffsetRange>,
    pub gaps: Vec<Gap>,
    pub overlaps: Vec<Overlap>,
    /// Files below the checkpoint that reach past it: the next run archives their tail again.
    pub past_checkpoint: Vec<FileSpan>,
    /// Files whose first offset is at or after the checkpoint (left by a run that stopped before
    /// committing them). Not failures: the next run archives those offsets again.
    pub orphans: Vec<FileSpan>,
    /// Files a manifest lists that are not in the store.
    pub missing: Vec<FileSpan>,
    pub unreadable: Vec<BadFile>,
    /// Manifest objects of this partition that could not be parsed.
    pub manifest_errors: Vec<BadFile>,
    /// With `--brokers`: how the archive compares with the partition in Kafka.
    pub kafka: Option<KafkaCheck>,
    /// The first file below the checkpoint, to name it in a gap found before it.
    #[serde(skip)]
    pub(crate) first_file: Option<String>,
}

/// An inclusive range of offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct OffsetRange {
    pub first: i64,
    pub last: i64,
}

impl OffsetRange {
    pub fn len(&self) -> i64 {
        self.last.saturating_sub(self.first).saturating_add(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() <= 0
    }
}

impl std::fmt::Display for OffsetRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..={}", self.first, self.last)
    }
}

/// A file and the offsets it holds, from its manifest line or from reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSpan {
    /// Relative to the output location.
    pub path: String,
    pub first_offset: i64,
    pub last_offset: i64,
    pub events: u64,
}

impl FileSpan {
    pub fn range(&self) -> OffsetRange {
        OffsetRange {
            first: self.first_offset,
            last: self.last_offset,
        }
    }
}

/// Offsets below the checkpoint that no file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    #[serde(flatten)]
    pub offsets: OffsetRange,
    /// The file that ends before the gap; `None` for a gap before the first file (found only
    /// with `--brokers`, from the low watermark).
    pub after: Option<String>,
    /// The file that starts after it; `None` when the gap runs up to the checkpoint.
    pub before: Option<String>,
    /// With `--brokers`: what Kafka holds at these offsets.
    pub kafka: Option<GapCheck>,
}

impl Gap {
    /// Kafka holds no committed record at these offsets: the gap loses nothing.
    pub fn explained(&self) -> bool {
        self.kafka == Some(GapCheck::NoRecords)
    }
}

/// What reading a gap's offsets from Kafka (`isolation.level=read_committed`) found. In JSON,
/// `{"check": "no_records"}`, `{"check": "record_at", "offset": 12}` or
/// `{"check": "not_checked", "reason": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum GapCheck {
    /// No committed record: transaction markers, aborted records or compacted ones. Not a
    /// failure: a read_committed consumer never receives anything there.
    NoRecords,
    /// Kafka still has a committed record at `offset`, in the gap: it was lost from the archive.
    RecordAt { offset: i64 },
    /// Kafka could not tell (it no longer holds the offsets, it did not answer in time): the gap
    /// stays a gap.
    NotChecked { reason: String },
}

/// Offsets held by two files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlap {
    #[serde(flatten)]
    pub offsets: OffsetRange,
    pub files: [String; 2],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadFile {
    pub path: String,
    /// From the manifest or the name; `None` for a manifest object.
    pub first_offset: Option<i64>,
    pub reason: String,
    /// Whether its offsets count: an unreadable file at or past the checkpoint is re-archived
    /// by the next run, so it is not a failure.
    pub below_checkpoint: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub path: String,
    pub first_offset: i64,
    pub last_offset: i64,
    /// If the file exists, the next run moves the checkpoint past it; if not, it writes it again.
    pub exists: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KafkaCheck {
    /// The first offset Kafka still holds.
    pub low: i64,
    /// The offset the next record will get.
    pub high: i64,
    /// Offsets Kafka's retention deleted before they were archived (the checkpoint is below the
    /// low watermark): lost.
    pub retention_lost: Option<OffsetRange>,
    /// Offsets below the archive's first one that retention deleted before hubcap first read
    /// the partition: never archived, and nothing hubcap promised. Not a failure.
    pub removed_before_archived: Option<OffsetRange>,
    /// Offsets in Kafka from the checkpoint on: the next run archives them.
    pub unarchived: Option<OffsetRange>,
    /// The checkpoint is past the partition's end: the topic was re-created or its offsets
    /// reset, and the next run would skip offsets below the checkpoint.
    pub checkpoint_ahead: bool,
    /// Kafka's topic id now, when it differs from the one the checkpoint was written for: the
    /// topic was deleted and re-created, and the archive holds the earlier topic's offsets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recreated_as: Option<String>,
}

impl KafkaCheck {
    /// The archive's offsets are not this topic's: compare nothing else with Kafka.
    pub fn other_topic(&self) -> bool {
        self.checkpoint_ahead || self.recreated_as.is_some()
    }
}

/// What makes an audit fail, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Failures {
    pub gaps: u64,
    pub overlaps: u64,
    pub past_checkpoint: u64,
    pub missing: u64,
    pub unreadable: u64,
    pub checkpoint_errors: u64,
    pub manifest_errors: u64,
    pub retention_lost: u64,
    pub checkpoint_ahead: u64,
    /// Partitions whose checkpoint names another topic id than Kafka's.
    pub topic_recreated: u64,
    /// What the Delta tables hold that they should not, or lack.
    pub table: u64,
    /// The same for the Iceberg tables.
    pub iceberg_table: u64,
    pub duplicates: u64,
    /// Not counted with `--allow-stray`.
    pub strays: u64,
}

impl Failures {
    pub fn total(&self) -> u64 {
        self.gaps
            + self.overlaps
            + self.past_checkpoint
            + self.missing
            + self.unreadable
            + self.checkpoint_errors
            + self.manifest_errors
            + self.retention_lost
            + self.checkpoint_ahead
            + self.topic_recreated
            + self.table
            + self.iceberg_table
            + self.duplicates
            + self.strays
    }

    fn add(&mut self, o: Failures) {
        self.gaps += o.gaps;
        self.overlaps += o.overlaps;
        self.past_checkpoint += o.past_checkpoint;
        self.missing += o.missing;
        self.unreadable += o.unreadable;
        self.checkpoint_errors += o.checkpoint_errors;
        self.manifest_errors += o.manifest_errors;
        self.retention_lost += o.retention_lost;
        self.checkpoint_ahead += o.checkpoint_ahead;
        self.topic_recreated += o.topic_recreated;
        self.table += o.table;
        self.iceberg_table += o.iceberg_table;
        self.duplicates += o.duplicates;
        self.strays += o.strays;
    }
}

impl AuditReport {
    /// No gaps (unless allowed, or Kafka holds no committed record in them), overlaps, missing or
    /// unreadable files below any checkpoint, no unreadable checkpoint or manifest, and (with
    /// `--brokers`) nothing lost to retention.
    /// Orphans and pending intents are reported but settle on the next run.
    pub fn clean(&self) -> bool {
        self.failures().total() == 0
    }

    pub fn failures(&self) -> Failures {
        let mut all = Failures::default();
        for p in &self.partitions {
            all.add(p.failures(self.allow_gaps));
        }
        for t in &self.tables {
            match t.format {
                super::table::ICEBERG => all.iceberg_table += t.failures(),
                _ => all.table += t.failures(),
            }
        }
        all.duplicates = self.duplicates.len() as u64;
        all.strays = if self.allow_stray {
            0
        } else {
            self.strays.len() as u64
        };
        all
    }

    /// Marks the partitions whose checkpoint was written for another topic id than the one
    /// Kafka gives the topic now (call after [`compare_watermarks`](Self::compare_watermarks)).
    pub fn compare_topic_ids(&mut self, ids: &std::collections::HashMap<String, Option<String>>) {
        for p in &mut self.partitions {
            let (Some(archived), Some(Some(now))) = (&p.topic_id, ids.get(&p.topic)) else {
                continue;
            };
            if archived != now {
                if let Some(k) = &mut p.kafka {
                    k.recreated_as = Some(now.clone());
                    k.unarchived = None;
                }
            }
        }
    }

    /// Adds Kafka's watermarks: what retention deleted before it was archived, what is not
    /// archived yet, a gap before the first file. Partitions Kafka has and the archive does not
    /// are added (not archived yet), under each audited group that archives their topic.
    pub fn compare_watermarks(&mut self, marks: &Watermarks) {
        for ((topic, partition), &(low, high)) in marks {
            let mut known = false;
            for p in self
                .partitions
                .iter_mut()
                .filter(|p| &p.topic == topic && p.partition == *partition)
            {
                p.compare_watermarks(low, high);
                known = true;
            }
            if known {
                continue;
            }
            let mut groups: BTreeSet<Option<String>> = self
                .partitions
                .iter()
                .filter(|p| &p.topic == topic && p.group.is_some())
                .map(|p| p.group.clone())
                .collect();
            if groups.is_empty() {
                groups.insert(None);
            }
            for group in groups {
                let mut p = PartitionAudit {
                    group,
                    topic: topic.clone(),
                    partition: *partition,
                    ..Default::default()
                };
                p.compare_watermarks(low, high);
                self.partitions.push(p);
            }
        }
        self.sort();
    }

    /// The gaps to read from Kafka: those of partitions compared with the watermarks whose
    /// offsets Kafka still holds, each once (groups archiving the same partition share them).
    pub fn gaps_to_check(&self) -> GapQueries {
        let mut wanted: BTreeMap<(String, i32), BTreeSet<OffsetRange>> = BTreeMap::new();
        for p in &self.partitions {
            let Some(k) = p.kafka.as_ref().filter(|k| !k.other_topic()) else {
                continue;
            };
            for g in p.gaps.iter().filter(|g| g.offsets.first >= k.low) {
                wanted
                    .entry((p.topic.clone(), p.partition))
                    .or_default()
                    .insert(g.offsets);
            }
        }
        wanted
            .into_iter()
            .map(|(key, gaps)| (key, gaps.into_iter().collect()))
            .collect()
    }

    /// Records what Kafka holds at each gap of the partitions compared with the watermarks
    /// (`checks` answers [`gaps_to_check`](Self::gaps_to_check)). A gap that holds no committed
    /// record is no longer a failure.
    pub fn apply_gap_checks(&mut self, checks: &GapChecks) {
        for p in &mut self.partitions {
            p.apply_gap_checks(checks);
        }
    }

    pub(crate) fn sort(&mut self) {
        self.partitions.sort_by(|a, b| {
            (&a.group, &a.topic, a.partition).cmp(&(&b.group, &b.topic, b.partition))
        });
    }
}

impl PartitionAudit {
    /// Places `spans` (the partition's files with records) against the checkpoint: coverage,
    /// gaps and overlaps below it, orphans at or past it.
    pub(crate) fn check_files(&mut self, mut spans: Vec<FileSpan>) {
        spans.sort_by(|a, b| {
            (a.first_offset, a.last_offset, &a.path).cmp(&(b.first_offset, b.last_offset, &b.path))
        });
        let Some(next) = self.checkpoint else {
            // No checkpoint, no promise: the next run starts over and re-archives these offsets.
            self.orphans = spans;
            return;
        };
        let pending = self.pending.as_ref().map(|p| p.path.clone());
        let (below, past): (Vec<FileSpan>, Vec<FileSpan>) =
            spans.into_iter().partition(|f| f.first_offset < next);
        // The pending file is not an orphan: the next run moves the checkpoint past it.
        self.orphans = past
            .into_iter()
            .filter(|f| Some(&f.path) != pending.as_ref())
            .collect();
        self.first_file = below.first().map(|f| f.path.clone());
        // The furthest offset reached so far, and the file that reached it.
        let mut reach: Option<(i64, String)> = None;
        for f in below {
            self.files += 1;
            self.events += f.events;
            if f.last_offset >= next {
                self.past_checkpoint.push(f.clone());
            }
            if let Some((end, by)) = &reach {
                self.follow(*end, by, &f);
            }
            self.cover(f.range());
            if reach.as_ref().is_none_or(|(end, _)| f.last_offset > *end) {
                reach = Some((f.last_offset, f.path));
            }
        }
        if let Some((end, by)) = reach {
            if end.saturating_add(1) < next {
                self.gaps.push(Gap {
                    offsets: OffsetRange {
                        first: end + 1,
                        last: next - 1,
                    },
                    after: Some(by),
                    before: None,
                    kafka: None,
                });
            }
        }
    }

    /// Compares file `f` with the file `by` that reaches furthest (to `end`) among those that
    /// start before it: `f` overlaps it or leaves a gap after it. A file overlapping several
    /// earlier ones is reported once, with the one reaching furthest.
    fn follow(&mut self, end: i64, by: &str, f: &FileSpan) {
        if f.first_offset <= end {
            self.overlaps.push(Overlap {
                offsets: OffsetRange {
                    first: f.first_offset,
                    last: f.last_offset.min(end),
                },
                files: [by.to_string(), f.path.clone()],
            });
        } else if f.first_offset > end.saturating_add(1) {
            self.gaps.push(Gap {
                offsets: OffsetRange {
                    first: end + 1,
                    last: f.first_offset - 1,
                },
                after: Some(by.to_string()),
                before: Some(f.path.clone()),
                kafka: None,
            });
        }
    }

    fn cover(&mut self, r: OffsetRange) {
        match self.covered.last_mut() {
            Some(last) if r.first <= last.last.saturating_add(1) => {
                last.last = last.last.max(r.last)
            }
            _ => self.covered.push(r),
        }
    }

    /// Compares the partition with Kafka's (low, high) watermarks.
    pub fn compare_watermarks(&mut self, low: i64, high: i64) {
        let mut k = KafkaCheck {
            low,
            high,
            retention_lost: None,
            removed_before_archived: self.removed_before_archived(low),
            unarchived: None,
            checkpoint_ahead: false,
            recreated_as: None,
        };
        let from = match self.checkpoint {
            Some(next) => {
                k.checkpoint_ahead = next > high;
                if next < low {
                    k.retention_lost = Some(OffsetRange {
                        first: next,
                        last: low - 1,
                    });
                }
                self.add_head_gap(low, next);
                next.max(low)
            }
            None => low,
        };
        if high > from {
            k.unarchived = Some(OffsetRange {
                first: from,
                last: high - 1,
            });
        }
        self.kafka = Some(k);
    }

    /// The offset the archive starts at: its first file's, or with no file below the
    /// checkpoint, the checkpoint itself.
    fn archive_start(&self, next: i64) -> i64 {
        self.covered.first().map_or(next, |r| r.first).min(next)
    }

    /// Kafka still holds offsets below the first file that the checkpoint has passed: they were
    /// never archived.
    fn add_head_gap(&mut self, low: i64, next: i64) {
        let start = self.archive_start(next);
        if low < start {
            let before = (start < next).then(|| self.first_file.clone()).flatten();
            let gap = Gap {
                offsets: OffsetRange {
                    first: low,
                    last: start - 1,
                },
                after: None,
                before,
                kafka: None,
            };
            self.gaps.insert(0, gap);
        }
    }

    /// Offsets 0 up to the archive's start, when Kafka no longer holds any of them and the
    /// archive starts at or below the low watermark: hubcap starts a partition at the log
    /// start, so retention had deleted them before hubcap first read it. The audit cannot tell
    /// this from a first file deleted from the archive after Kafka deleted its records too.
    /// With no file, only a checkpoint at the low watermark says where hubcap started (one
    /// below it is a retention loss; one above it leaves a gap, see `apply_gap_checks`).
    fn removed_before_archived(&self, low: i64) -> Option<OffsetRange> {
        let next = self.checkpoint?;
        let start = self.archive_start(next);
        let started_at_log_start = if self.covered.is_empty() {
            start == low
        } else {
            start <= low
        };
        (started_at_log_start && start > 0).then_some(OffsetRange {
            first: 0,
            last: start - 1,
        })
    }

    /// Records what Kafka holds at each gap. A gap Kafka cannot be asked about (it no longer
    /// holds its first offset, or the topic was re-created) is marked with why. A gap before
    /// the first file that holds no committed record means hubcap's first read found nothing
    /// there either: the offsets below the low watermark were removed before hubcap read them.
    pub(crate) fn apply_gap_checks(&mut self, checks: &GapChecks) {
        let Some(k) = &mut self.kafka else {
            return;
        };
        for g in &mut self.gaps {
            let check = if k.other_topic() {
                not_checked(REASON_RECREATED.into())
            } else if g.offsets.first < k.low {
                not_checked(format!(
                    "Kafka no longer holds these offsets (its log starts at {})",
                    k.low
                ))
            } else {
                let key = (self.topic.clone(), self.partition, g.offsets);
                checks
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| not_checked("not read from Kafka".into()))
            };
            g.kafka = Some(check);
        }
        let head_explained = self
            .gaps
            .first()
            .is_some_and(|g| g.after.is_none() && g.offsets.first == k.low && g.explained());
        if head_explained && k.low > 0 && k.removed_before_archived.is_none() {
            k.removed_before_archived = Some(OffsetRange {
                first: 0,
                last: k.low - 1,
            });
        }
    }

    /// Gaps Kafka did not show to hold no committed record: lost files, unless `--allow-gaps`.
    pub fn unexplained_gaps(&self) -> usize {
        self.gaps.iter().filter(|g| !g.explained()).count()
    }

    pub fn failures(&self, allow_gaps: bool) -> Failures {
        let count = |n: usize| n as u64;
        let kafka = self.kafka.as_ref();
        Failures {
            gaps: if allow_gaps {
                0
            } else {
                count(self.unexplained_gaps())
            },
            overlaps: count(self.overlaps.len()),
            past_checkpoint: count(self.past_checkpoint.len()),
            missing: count(self.missing.len()),
            unreadable: count(
                self.unreadable
                    .iter()
                    .filter(|b| b.below_checkpoint)
                    .count(),
            ),
            checkpoint_errors: u64::from(self.checkpoint_error.is_some()),
            manifest_errors: count(self.manifest_errors.len()),
            retention_lost: u64::from(kafka.is_some_and(|k| k.retention_lost.is_some())),
            checkpoint_ahead: u64::from(kafka.is_some_and(|k| k.checkpoint_ahead)),
            topic_recreated: u64::from(kafka.is_some_and(|k| k.recreated_as.is_some())),
            table: 0,
            iceberg_table: 0,
            duplicates: 0,
            strays: 0,
        }
    }
}

const REASON_RECREATED: &str =
    "the checkpoint is past the partition's end: Kafka's offsets are not the archived ones";

fn not_checked(reason: String) -> GapCheck {
    GapCheck::NotChecked { reason }
}
