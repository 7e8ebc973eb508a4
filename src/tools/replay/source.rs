//! STUB replaced by the source reader (branch replay-source).

use crate::record::Event;
use crate::store::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Avro,
    Parquet,
}

#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub topic: String,
    pub partition: i32,
    pub size: u64,
    pub format: SourceFormat,
}

#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub topics: Vec<String>,
    pub partitions: Vec<i32>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub from_offset: Option<i64>,
    pub to_offset: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("stub")]
    Stub,
}

pub async fn list(
    _root: &Location,
    _template: Option<&str>,
    _selection: &Selection,
) -> Result<Vec<SourceFile>, SourceError> {
    Err(SourceError::Stub)
}

pub async fn read(
    _root: &Location,
    _file: &SourceFile,
    _selection: &Selection,
) -> Result<Vec<Event>, SourceError> {
    Err(SourceError::Stub)
}
