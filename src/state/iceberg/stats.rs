//! A data file's Iceberg metrics, from its Parquet footer: what the file holds, as its writer
//! counted it, so manifests never disagree with the file.

use std::collections::BTreeMap;

use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;

use super::manifest::Metrics;

/// Columns that get lower and upper bounds: those readers prune on (offsets and time). Bounds
/// of the other columns (payload, headers) would cost manifest room and prune nothing.
pub const BOUNDED: &[&str] = &["SequenceNumber", "EnqueuedTime"];

/// Metrics of the leaf columns in `leaves` (Parquet path → Iceberg id), summed over row groups.
pub fn metrics(footer: &ParquetMetaData, leaves: &BTreeMap<String, i32>) -> Metrics {
    let mut m = Metrics::default();
    let mut bounds: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for group in footer.row_groups() {
        for chunk in group.columns() {
            let Some(&id) = leaves.get(&chunk.column_path().string()) else {
                continue;
            };
            *m.column_sizes.entry(id).or_default() += chunk.compressed_size();
            *m.value_counts.entry(id).or_default() += chunk.num_values();
            let Some(stats) = chunk.statistics() else {
                continue;
            };
            if let Some(nulls) = stats.null_count_opt() {
                *m.null_value_counts.entry(id).or_default() +=
                    i64::try_from(nulls).unwrap_or(i64::MAX);
            }
            let bounded = BOUNDED.contains(&chunk.column_path().string().as_str());
            if let (true, Statistics::Int64(s)) = (bounded, stats) {
                if let (Some(&lo), Some(&hi)) = (s.min_opt(), s.max_opt()) {
                    let b = bounds.entry(id).or_insert((lo, hi));
                    *b = (b.0.min(lo), b.1.max(hi));
                }
            }
        }
    }
    for (id, (lo, hi)) in bounds {
        // Iceberg's single-value serialization of a long or a timestamptz: 8 bytes, little-endian.
        m.lower_bounds.insert(id, lo.to_le_bytes().to_vec());
        m.upper_bounds.insert(id, hi.to_le_bytes().to_vec());
    }
    m
}
