//! `hubcap inspect --watermarks`: the completeness watermarks of an archive, one JSON line per
//! consumer group and topic, with how far behind the clock each is.

use std::io::Write;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde_json::json;

use crate::state::watermark::{self, DIR};

use super::{InspectError, InspectTotals, Target};

/// Prints every `_watermarks/GROUP/TOPIC.json` under `target` as a line: the document, plus
/// `behind_seconds` (the clock minus `complete_until`, `null` without one).
pub(super) async fn print(
    target: &Target,
    now_ms: i64,
    out: &mut (dyn Write + Send),
) -> Result<InspectTotals, InspectError> {
    let prefix = target.path.clone().join(DIR);
    let list_err = |source| InspectError::List {
        target: target.display.clone(),
        source,
    };
    let mut found: Vec<_> = target
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(list_err)?;
    found.retain(|m| m.location.as_ref().ends_with(".json"));
    found.sort_by(|a, b| a.location.cmp(&b.location));
    if found.is_empty() {
        return Err(InspectError::NoWatermarks {
            target: target.display.clone(),
        });
    }
    let mut totals = InspectTotals::default();
    for meta in found {
        let read_err = |source| InspectError::Read {
            file: meta.location.to_string(),
            source,
        };
        let data = target.store.get(&meta.location).await.map_err(read_err)?;
        let data = data.bytes().await.map_err(read_err)?;
        let w = watermark::decode(&meta.location, &data)
            .map_err(|e| InspectError::Watermark(e.to_string()))?;
        let behind = w
            .complete_until_ms
            .map(|ms| (now_ms - ms).max(0) as f64 / 1000.0);
        let mut line = serde_json::to_value(&w).expect("a watermark serializes");
        line["behind_seconds"] = json!(behind);
        line["file"] = json!(meta.location.to_string());
        writeln!(out, "{line}")?;
        totals.files += 1;
        totals.bytes += meta.size;
    }
    Ok(totals)
}
