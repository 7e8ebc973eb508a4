//! What a reader's glob picks up besides the archive. Every `.avro` and `.parquet` object under
//! the output, outside folders whose names start with `_` or `.`, is an archived file (a
//! manifest line or `--path-format` names it) or one of these:
//! - a **duplicate**: a readable Capture file whose offsets archived files hold, in the same
//!   folder as those files, or anywhere with exactly the offsets and record count of one
//!   (a copy): readers count its records twice;
//! - a **stray**: anything else (not a Capture file, or a Capture file of offsets no archived
//!   file holds).

use std::collections::BTreeMap;

use futures::StreamExt;
use object_store::path::Path;

use super::{decode, fetch, AuditError, Duplicate, Entry, FileSpan, Key, Stray, READ_CONCURRENCY};
use crate::store::Location;

/// Archived files named when a duplicate overlaps several.
const NAMED: usize = 3;

/// Reads each file no manifest lists and no template names, and tells duplicates from strays.
pub(super) async fn classify(
    output: &Location,
    unmatched: Vec<(Path, String)>,
    entries: &BTreeMap<Key, Entry>,
) -> Result<(Vec<Duplicate>, Vec<Stray>), AuditError> {
    let archived: Vec<&FileSpan> = entries.values().flat_map(|e| e.spans.iter()).collect();
    let mut reads = futures::stream::iter(unmatched)
        .map(|(path, name)| async move {
            let read = fetch(output, &path, &name).await;
            (name, read)
        })
        .buffer_unordered(READ_CONCURRENCY);
    let (mut duplicates, mut strays) = (Vec::new(), Vec::new());
    while let Some((name, read)) = reads.next().await {
        let stray = |reason: String| Stray {
            path: name.clone(),
            reason,
        };
        let offsets = match read? {
            Some(data) => decode(&name, data).await,
            None => continue, // deleted while the audit ran
        };
        match offsets {
            Err(reason) => strays.push(stray(format!("not a readable Capture file: {reason}"))),
            Ok(o) => match o.first {
                None => strays.push(stray(
                    "a Capture file without records that --path-format does not name".into(),
                )),
                Some(first) => {
                    let span = FileSpan {
                        path: name.clone(),
                        first_offset: first,
                        last_offset: o.last,
                        events: o.count,
                    };
                    match duplicated(&span, &archived) {
                        Some(of) => duplicates.push(Duplicate {
                            path: name.clone(),
                            first_offset: first,
                            last_offset: o.last,
                            archived: of,
                        }),
                        None => strays.push(stray(format!(
                            "a Capture file of offsets {first}..={} that no archived file holds, in no manifest and not named by --path-format",
                            o.last
                        ))),
                    }
                }
            },
        }
    }
    duplicates.sort_by(|a, b| a.path.cmp(&b.path));
    strays.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((duplicates, strays))
}

/// The archived files `span` duplicates: those in its folder holding some of its offsets, or
/// else one anywhere with exactly its offsets and records.
pub(super) fn duplicated(span: &FileSpan, archived: &[&FileSpan]) -> Option<Vec<String>> {
    let folder = |name: &str| name.rsplit_once('/').map_or("", |(dir, _)| dir).to_string();
    let here = folder(&span.path);
    let beside: Vec<String> = archived
        .iter()
        .filter(|a| folder(&a.path) == here)
        .filter(|a| a.first_offset <= span.last_offset && span.first_offset <= a.last_offset)
        .map(|a| a.path.clone())
        .take(NAMED)
        .collect();
    if !beside.is_empty() {
        return Some(beside);
    }
    archived
        .iter()
        .find(|a| {
            (a.first_offset, a.last_offset, a.events)
                == (span.first_offset, span.last_offset, span.events)
        })
        .map(|a| vec![a.path.clone()])
}
