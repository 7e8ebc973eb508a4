//! The text report: one line per partition, its problems and notes indented under it, then the
//! verdict. (Lines are written to a `String`, which cannot fail: hence the `let _ =`.)

use std::fmt::Write as _;

use super::{AuditReport, Failures, Gap, GapCheck, OffsetRange, PartitionAudit, TableAudit};

impl Failures {
    /// `2 gaps, 1 overlap`.
    pub(super) fn describe(&self) -> String {
        [
            (self.gaps, "gap", "gaps"),
            (self.overlaps, "overlap", "overlaps"),
            (
                self.past_checkpoint,
                "file past its checkpoint",
                "files past their checkpoint",
            ),
            (self.missing, "missing file", "missing files"),
            (self.unreadable, "unreadable file", "unreadable files"),
            (
                self.checkpoint_errors,
                "unreadable checkpoint",
                "unreadable checkpoints",
            ),
            (
                self.manifest_errors,
                "unreadable manifest",
                "unreadable manifests",
            ),
            (self.retention_lost, "retention loss", "retention losses"),
            (
                self.checkpoint_ahead,
                "checkpoint past the partition's end",
                "checkpoints past their partition's end",
            ),
            (
                self.topic_recreated,
                "partition of a re-created topic",
                "partitions of a re-created topic",
            ),
            (self.table, "Delta table finding", "Delta table findings"),
            (
                self.iceberg_table,
                "Iceberg table finding",
                "Iceberg table findings",
            ),
            (self.duplicates, "duplicate file", "duplicate files"),
            (self.strays, "stray file", "stray files"),
        ]
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

impl AuditReport {
    /// One line per partition, its problems and notes indented under it, then the verdict.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let several_groups = self.partitions.windows(2).any(|w| w[0].group != w[1].group);
        let mut group = None;
        for p in &self.partitions {
            if several_groups && group != Some(&p.group) {
                let _ = writeln!(
                    s,
                    "group {}",
                    p.group.as_deref().unwrap_or("(no checkpoint)")
                );
                group = Some(&p.group);
            }
            p.write_text(&mut s, self.allow_gaps);
        }
        for d in &self.duplicates {
            let _ = writeln!(
                s,
                "duplicate: {} holds offsets {}..={}, archived in {}: readers count them twice",
                d.path,
                d.first_offset,
                d.last_offset,
                d.archived.join(", ")
            );
        }
        for stray in &self.strays {
            let allowed = if self.allow_stray { " (allowed)" } else { "" };
            let _ = writeln!(s, "stray{allowed}: {}: {}", stray.path, stray.reason);
        }
        for t in &self.tables {
            t.write_text(&mut s);
        }
        let files: u64 = self.partitions.iter().map(|p| p.files).sum();
        let events: u64 = self.partitions.iter().map(|p| p.events).sum();
        let mut sizes = format!(
            "{} partitions, {files} files, {events} events",
            self.partitions.len()
        );
        let warnings = self.warnings();
        if !warnings.is_empty() {
            sizes.push_str("; not failures: ");
            sizes.push_str(&warnings);
        }
        let failures = self.failures();
        if failures.total() == 0 {
            let _ = writeln!(s, "audit: clean ({sizes})");
        } else {
            let _ = writeln!(s, "audit: FAILED: {} ({sizes})", failures.describe());
        }
        s
    }
}

impl AuditReport {
    /// What is reported but does not fail the audit: `1 orphan, 2 allowed gaps`.
    fn warnings(&self) -> String {
        let sum = |f: fn(&PartitionAudit) -> usize| self.partitions.iter().map(f).sum::<usize>();
        let allowed = if self.allow_gaps {
            sum(PartitionAudit::unexplained_gaps)
        } else {
            0
        };
        [
            (
                sum(|p| p.gaps.len() - p.unexplained_gaps()),
                "gap without committed records",
                "gaps without committed records",
            ),
            (allowed, "allowed gap", "allowed gaps"),
            (sum(|p| p.orphans.len()), "orphan", "orphans"),
            (
                sum(|p| usize::from(p.pending.is_some())),
                "pending file",
                "pending files",
            ),
            (
                if self.allow_stray {
                    self.strays.len()
                } else {
                    0
                },
                "allowed stray",
                "allowed strays",
            ),
        ]
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

impl PartitionAudit {
    fn write_text(&self, s: &mut String, allow_gaps: bool) {
        let checkpoint = match (self.checkpoint, &self.checkpoint_error) {
            (Some(next), _) => next.to_string(),
            (None, Some(_)) => "unreadable".into(),
            (None, None) => "none".into(),
        };
        let _ = write!(
            s,
            "{}/{}  checkpoint {checkpoint}  files {}",
            self.topic, self.partition, self.files
        );
        if self.empty_files > 0 {
            let _ = write!(s, " (+{} empty)", self.empty_files);
        }
        let _ = write!(s, "  offsets {}", ranges_text(&self.covered));
        if let Some(k) = &self.kafka {
            let _ = write!(s, "  kafka {}..{}", k.low, k.high);
        }
        let verdict = if self.failures(allow_gaps).total() > 0 {
            "FAILED"
        } else if self.checkpoint.is_none() {
            "no checkpoint"
        } else {
            "clean"
        };
        let _ = writeln!(s, "  {verdict}");
        for line in self.notes(allow_gaps) {
            let _ = writeln!(s, "  {line}");
        }
    }

    /// The problems, then what is only worth knowing.
    fn notes(&self, allow_gaps: bool) -> Vec<String> {
        let mut n = Vec::new();
        if let Some(e) = &self.checkpoint_error {
            n.push(format!("checkpoint: {e}"));
        }
        for b in &self.manifest_errors {
            n.push(format!("manifest {}: {}", b.path, b.reason));
        }
        for g in &self.gaps {
            n.push(g.text(allow_gaps));
        }
        for o in &self.overlaps {
            n.push(format!(
                "overlap {} ({} offsets) in {} and {}",
                o.offsets,
                o.offsets.len(),
                o.files[0],
                o.files[1]
            ));
        }
        for f in &self.past_checkpoint {
            n.push(format!(
                "past the checkpoint: {} holds {}; the next run archives the offsets from {} again",
                f.path,
                f.range(),
                self.checkpoint.unwrap_or_default()
            ));
        }
        for f in &self.missing {
            n.push(format!(
                "missing: {} ({}) is listed in a manifest but not in the store",
                f.path,
                f.range()
            ));
        }
        for b in &self.unreadable {
            let past = match (b.below_checkpoint, self.checkpoint) {
                (true, _) => "",
                (false, Some(_)) => {
                    " (past the checkpoint: the next run archives its offsets again)"
                }
                (false, None) => " (no checkpoint: nothing was promised for it)",
            };
            n.push(format!("unreadable: {}: {}{past}", b.path, b.reason));
        }
        if let Some(k) = &self.kafka {
            if let Some(r) = k.retention_lost {
                n.push(format!(
                    "retention deleted {r} ({} offsets) before they were archived",
                    r.len()
                ));
            }
            if let Some(r) = k.removed_before_archived {
                n.push(format!(
                    "offsets {}..{} were removed by Kafka's retention before hubcap first read this partition (never archived)",
                    r.first, r.last
                ));
            }
            if let Some(now) = &k.recreated_as {
                n.push(format!(
                    "the topic was deleted and re-created: the checkpoint is for topic id {}, Kafka's topic is now {now}; the archive holds the earlier topic's offsets",
                    self.topic_id.as_deref().unwrap_or("?")
                ));
            }
            if k.checkpoint_ahead {
                n.push(format!(
                    "the checkpoint is past the partition's end {}: was the topic re-created?",
                    k.high
                ));
            }
            if let Some(r) = k.unarchived {
                n.push(format!("not archived yet: {r} ({} offsets)", r.len()));
            }
        }
        if let Some(p) = &self.pending {
            let what = if p.exists {
                "exists: the next run moves the checkpoint past it"
            } else {
                "not in the store: the next run writes it again"
            };
            n.push(format!(
                "pending: {} ({}..={}) {what}",
                p.path, p.first_offset, p.last_offset
            ));
        }
        for f in &self.orphans {
            let why = if self.checkpoint.is_some() {
                "at or past the checkpoint"
            } else {
                "no checkpoint"
            };
            n.push(format!(
                "orphan: {} holds {} ({why}); the next run archives these offsets again",
                f.path,
                f.range()
            ));
        }
        n
    }
}

impl Gap {
    /// One line: where the gap is and, with `--brokers`, what Kafka holds there.
    fn text(&self, allow_gaps: bool) -> String {
        let place = match (&self.after, &self.before) {
            (Some(a), Some(b)) => format!("between {a} and {b}"),
            (Some(a), None) => format!("after {a}, up to the checkpoint"),
            (None, Some(b)) => format!("in Kafka before {b}, the first file"),
            (None, None) => "in Kafka below the checkpoint, and no file holds any".into(),
        };
        let r = self.offsets;
        // Nothing lost: not worded as a gap, since `gap` lines are the ones that need a look.
        if self.explained() {
            return format!(
                "offsets {}..{} hold no committed record in Kafka (transaction markers, aborted or compacted records): nothing lost ({place})",
                r.first, r.last
            );
        }
        let allowed = if allow_gaps { " (allowed)" } else { "" };
        let gap = format!("gap{allowed} {r} ({} offsets) {place}", r.len());
        match &self.kafka {
            Some(GapCheck::RecordAt { offset }) => {
                format!("{gap}; Kafka still has a record at offset {offset}: lost")
            }
            Some(GapCheck::NotChecked { reason }) => {
                format!("{gap}; not checked in Kafka: {reason}")
            }
            Some(GapCheck::NoRecords) | None => gap,
        }
    }
}

/// `0..=99, 150..=199`; at most three ranges, then how many more.
fn ranges_text(ranges: &[OffsetRange]) -> String {
    if ranges.is_empty() {
        return "none".into();
    }
    let mut parts: Vec<String> = ranges.iter().take(3).map(|r| r.to_string()).collect();
    if ranges.len() > 3 {
        parts.push(format!("… {} more", ranges.len() - 3));
    }
    parts.join(", ")
}

impl TableAudit {
    /// `table clicks  version 118  files 126  events 1160  clean`, then its findings.
    fn write_text(&self, s: &mut String) {
        let _ = write!(s, "table {}", self.path);
        if self.format == super::table::ICEBERG {
            let _ = write!(s, " (iceberg)");
        }
        if let Some(v) = self.version {
            let _ = write!(
                s,
                "  version {v}  files {}  events {}",
                self.files, self.events
            );
        }
        let verdict = if self.failures() > 0 {
            "FAILED"
        } else {
            "clean"
        };
        let _ = writeln!(s, "  {verdict}");
        if let Some(e) = &self.error {
            let _ = writeln!(s, "  cannot read it: {e}");
        }
        let some = |files: &[String]| match files {
            [one] => one.clone(),
            [first, ..] => format!("{} files, e.g. {first}", files.len()),
            [] => String::new(),
        };
        if !self.not_archived.is_empty() {
            let _ = writeln!(
                s,
                "  not archived by hubcap (no manifest lists it): {}",
                some(&self.not_archived)
            );
        }
        for bad in &self.disagree {
            let _ = writeln!(s, "  {}: {}", bad.path, bad.reason);
        }
        if !self.added_twice.is_empty() {
            let _ = writeln!(s, "  added by two commits: {}", some(&self.added_twice));
        }
        if !self.not_in_table.is_empty() {
            let _ = writeln!(
                s,
                "  archived below the checkpoint but not in the table (its readers miss them): {}",
                some(&self.not_in_table)
            );
        }
        for t in self.transactions.iter().filter(|t| !t.ok) {
            let show = |v: Option<i64>| v.map_or("none".to_string(), |v| v.to_string());
            let what = if self.format == super::table::ICEBERG {
                "committed offset (snapshot summary)"
            } else {
                "version"
            };
            let _ = writeln!(
                s,
                "  {}/{}: the table's {what} is {}, the last offset archived below checkpoint {} is {}",
                t.topic,
                t.partition,
                show(t.version),
                show(t.checkpoint),
                show(t.expected)
            );
        }
    }
}
