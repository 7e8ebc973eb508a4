//! [`Tables`]: the tables `--table` keeps for a run's topics (Delta, Iceberg, or both over one
//! copy of the files), and the one call the partition workers and recovery make to add a
//! durable file to them.

use std::collections::HashMap;
use std::sync::Arc;

use super::{app_id, Added, DeltaTable, TableConfig, TableError, TableFile};
use crate::state::checkpoint::PendingFile;
use crate::state::iceberg::catalog::RestCatalog;
use crate::state::iceberg::{self, Appended, Committed, IcebergTable, IcebergWriter};
use crate::store::Location;

/// The tables of a run's topics.
#[derive(Debug)]
pub struct Tables {
    config: TableConfig,
    group: String,
    namespace: String,
    /// Each topic's Delta table (`--table delta`).
    tables: HashMap<String, DeltaTable>,
    /// Each topic's Iceberg table (`--table iceberg`).
    iceberg: HashMap<String, IcebergWriter>,
}

impl Tables {
    /// Opens (or creates) each topic's table under `output`.
    pub async fn open(
        output: &Location,
        config: &TableConfig,
        group: &str,
        namespace: &str,
        topics: &[String],
        schema: &delta_kernel::arrow::datatypes::Schema,
    ) -> Result<Tables, TableError> {
        let columns: Vec<&str> = config
            .partition_columns
            .iter()
            .map(String::as_str)
            .collect();
        let mut tables = HashMap::new();
        let mut iceberg = HashMap::new();
        let catalog = match (&config.catalog, config.formats.iceberg) {
            (Some(c), true) => Some(Arc::new(RestCatalog::connect(c.clone()).await?)),
            _ => None,
        };
        for topic in topics {
            let location = output.child(&config.path_for(topic, namespace));
            if config.formats.delta {
                let table = DeltaTable::open_or_create(&location, schema, &columns).await?;
                tables.insert(topic.clone(), table);
            }
            if config.formats.iceberg {
                // The catalog's table is named as the topic is.
                let table = match &catalog {
                    Some(c) => IcebergTable::in_catalog(location, c.clone(), topic)?,
                    None => IcebergTable::new(location)?,
                };
                let writer = IcebergWriter::open(table, &config.partition_columns);
                iceberg.insert(topic.clone(), writer.await?);
            }
        }
        Ok(Tables {
            config: config.clone(),
            group: group.to_string(),
            namespace: namespace.to_string(),
            tables,
            iceberg,
        })
    }

    /// Adds a durable data file of `topic`'s `partition` (as its publish intent names it, the
    /// path relative to the output) to its tables, each unless it holds the file already: the
    /// Delta table, then the Iceberg table, both before the checkpoint moves. After a crash
    /// between the two, the roll-forward finds the file in the Delta log and commits it to the
    /// Iceberg table. What the last table did is returned.
    pub async fn add(
        &self,
        topic: &str,
        partition: i32,
        published: &PendingFile,
        modified_ms: i64,
    ) -> Result<Added, TableError> {
        let name = published.path.as_str();
        let root = self.config.path_for(topic, &self.namespace);
        let known = self.tables.contains_key(topic) || self.iceberg.contains_key(topic);
        let (true, Some(inside)) = (known, name.strip_prefix(&format!("{root}/"))) else {
            return Err(TableError::Invalid {
                url: root,
                reason: format!("{name} is not a file of this table"),
            });
        };
        let partition_values = self.config.partition_values(inside);
        let mut added = Added::AlreadyThere;
        if let Some(table) = self.tables.get(topic) {
            let file = TableFile {
                path: inside.to_string(),
                size: published.size,
                records: published.events,
                modified_ms,
                partition_values: partition_values.clone(),
            };
            let app = app_id(&self.group, topic, partition);
            added = table.add(&app, published.last_offset, &file).await?;
        }
        if let Some(table) = self.iceberg.get(topic) {
            let file = table
                .describe(inside, published.size, partition_values)
                .await?;
            let committed = Committed {
                topic: topic.to_string(),
                partition,
                last_offset: published.last_offset,
            };
            added = match table.add(iceberg::Addition { file, committed }).await? {
                Appended::Committed(version) => Added::Committed(version),
                Appended::AlreadyThere => Added::AlreadyThere,
            };
        }
        Ok(added)
    }
}
