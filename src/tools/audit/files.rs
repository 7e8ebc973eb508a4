//! The record files of an archive: listing them, reading their offsets, and (`--verify`)
//! holding a listed file to its manifest line.

use super::*;

/// `--verify`: a listed file read back and held to its manifest line: its CRC32C, its records
/// and its offsets.
pub(super) async fn verify(
    output: &Location,
    path: &Path,
    line: &ManifestEntry,
) -> Result<Observed, AuditError> {
    let Some(data) = fetch(output, path, &line.path).await? else {
        return Ok(listed_file(line, None));
    };
    if let Some(then) = &line.content_crc32c {
        let now = crate::store::upload::crc32c_of(&data);
        if &now != then {
            return Ok(Observed::Unreadable(format!(
                "its bytes changed since it was archived: CRC32C {now}, its manifest line says {then} ({} bytes, {} listed)",
                data.len(),
                line.size_in_bytes
            )));
        }
    }
    let observed = listed_file(line, Some(data.len() as u64));
    if !matches!(observed, Observed::Span(_) | Observed::Empty) {
        return Ok(observed);
    }
    let held = match decode(&line.path, data).await {
        Ok(o) => o,
        Err(reason) => return Ok(Observed::Unreadable(reason)),
    };
    let listed = (
        Some(line.first_sequence_number),
        line.last_sequence_number,
        line.event_count,
    );
    let found = (held.first, held.last, held.count);
    let empty = line.event_count == 0 && held.count == 0;
    if found != listed && !empty {
        return Ok(Observed::Unreadable(format!(
            "it holds {} records at offsets {}..={}, its manifest line says {} at {}..={}",
            held.count,
            held.first.unwrap_or_default(),
            held.last,
            line.event_count,
            line.first_sequence_number,
            line.last_sequence_number
        )));
    }
    Ok(observed)
}

/// The record files in the output: `.avro` and `.parquet` objects outside `_checkpoints/` and
/// `_manifests/`, by path, with their names relative to the output and their sizes; and the
/// Delta tables, the folders (relative to the output) with a `_delta_log/`; and the Iceberg
/// tables, the folders with a `metadata/vN.metadata.json`.
#[derive(Default)]
pub(super) struct Stored {
    pub(super) names: BTreeMap<Path, String>,
    pub(super) sizes: HashMap<Path, u64>,
    pub(super) tables: BTreeSet<String>,
    pub(super) iceberg: BTreeSet<String>,
}

/// Whether `parts` name an Iceberg table's metadata file (`<table>/metadata/<file>`), and of
/// which table.
fn iceberg_metadata(parts: &[String]) -> Option<String> {
    match parts {
        [table @ .., dir, _] if dir == "metadata" && !table.is_empty() => Some(table.join("/")),
        _ => None,
    }
}

pub(super) async fn list_files(output: &Location) -> Result<Stored, AuditError> {
    let mut stored = Stored::default();
    let listed: Vec<(ObjectMeta, Vec<String>)> = list(output)
        .await?
        .into_iter()
        .filter_map(|meta| {
            let parts = relative_parts(&meta.location, &output.prefix)?;
            Some((meta, parts))
        })
        .collect();
    for (_, parts) in &listed {
        let version = parts.last().is_some_and(|f| f.ends_with(".metadata.json"));
        if let (Some(table), true) = (iceberg_metadata(parts), version) {
            stored.iceberg.insert(table);
        }
    }
    for (meta, parts) in listed {
        // An Iceberg table's manifests are Avro files, but the table's, not archived records.
        if iceberg_metadata(&parts).is_some_and(|t| stored.iceberg.contains(&t)) {
            continue;
        }
        let internal = parts
            .first()
            .is_some_and(|p| p == CHECKPOINTS_DIR || p == MANIFESTS_DIR);
        if let Some(log) = parts
            .iter()
            .position(|p| p == "_delta_log")
            .filter(|i| *i > 0)
        {
            stored.tables.insert(parts[..log].join("/"));
            continue;
        }
        // Readers skip folders whose names start with `_` or `.` (`_quarantine/`, `.tmp/`).
        let folders = &parts[..parts.len().saturating_sub(1)];
        if folders
            .iter()
            .any(|f| f.starts_with('_') || f.starts_with('.'))
        {
            continue;
        }
        let name = parts.join("/");
        // `name.avro#3` is a local upload being staged, not a file.
        let record = name.ends_with(".avro") || name.ends_with(".parquet");
        if !internal && record {
            stored.sizes.insert(meta.location.clone(), meta.size);
            stored.names.insert(meta.location, name);
        }
    }
    Ok(stored)
}

/// Fetches a file and reads its offsets. A file that cannot be decoded is a finding; a store
/// that cannot be read stops the audit.
pub(super) async fn read_file(
    output: &Location,
    path: &Path,
    name: &str,
    first: i64,
) -> Result<Observed, AuditError> {
    let Some(data) = fetch(output, path, name).await? else {
        return Ok(Observed::Unreadable("deleted while the audit ran".into()));
    };
    let offsets = match decode(name, data).await {
        Ok(offsets) => offsets,
        Err(reason) => return Ok(Observed::Unreadable(reason)),
    };
    Ok(match offsets.first {
        None => Observed::Empty,
        Some(f) => Observed::Span(FileSpan {
            path: name.to_string(),
            first_offset: f,
            last_offset: offsets.last,
            events: offsets.count,
        })
        .check_name(first),
    })
}

/// The offsets a fetched file holds, or why it is not a readable Capture file.
pub(super) async fn decode(name: &str, data: bytes::Bytes) -> Result<decode::Offsets, String> {
    let parquet = name.ends_with(".parquet");
    // Decoding a large file takes a while: keep it off the runtime's threads.
    let decoded = tokio::task::spawn_blocking(move || {
        if parquet {
            parquet_offsets(data)
        } else {
            avro_offsets(&data)
        }
    })
    .await;
    match decoded {
        Ok(result) => result,
        Err(e) => Err(format!("the decoder failed: {e}")),
    }
}

impl Observed {
    /// A file whose name and first record disagree was renamed or is not what the name says,
    /// and a replay would not overwrite it.
    fn check_name(self, named_first: i64) -> Observed {
        match self {
            Observed::Span(s) if s.first_offset != named_first => Observed::Unreadable(format!(
                "its name says its first offset is {named_first}, its first record is {}",
                s.first_offset
            )),
            other => other,
        }
    }
}

/// The object's bytes; `None` if it is gone.
pub(super) async fn fetch(
    output: &Location,
    path: &Path,
    name: &str,
) -> Result<Option<bytes::Bytes>, AuditError> {
    let read_err = |source| AuditError::Read {
        file: name.to_string(),
        source,
    };
    match output.store.get(path).await {
        Ok(got) => Ok(Some(got.bytes().await.map_err(read_err)?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(read_err(e)),
    }
}
