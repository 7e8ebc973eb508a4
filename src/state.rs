//! What an archive records about itself beside its data files: compare-and-swap checkpoints
//! (the next offset of each partition, and the file being published), manifests (one line per
//! archived file) and the Azure SDKs' checkpoint blobs, and the completeness watermarks computed from the checkpoints.

pub mod checkpoint;
pub mod iceberg;
pub mod manifest;
pub mod sdk;
pub mod table;
pub mod watermark;
