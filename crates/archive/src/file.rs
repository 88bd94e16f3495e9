//! One archive file: a table's rows as Parquet (zstd), and its manifest — what ties the file to
//! the ledger and to the committed state.
//!
//! The manifest travels twice: inside the file, in the Parquet key-value metadata under
//! `walproof.manifest` (without the file's own digest, which it cannot hold), and beside it as
//! `<file>.manifest.json` with the SHA-256 of the file's bytes. Anyone holding a file can check
//! its digest against the manifest, the manifest's `ledger_hash` against the ledger, and its
//! `root` against the roots topic (or the bridge contract).

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sha2::{Digest as _, Sha256};
use walproof_core::{Digest, Lsn};

/// The key of the manifest in a file's Parquet key-value metadata.
pub const MANIFEST_KEY: &str = "walproof.manifest";

/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// What an archive file holds and where it stands in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Format version: 1.
    pub version: u32,
    /// The file's object name, from the archive's root.
    pub object: String,
    /// `schema.table`.
    pub table: String,
    /// The commit LSN of its first change.
    pub first_lsn: Lsn,
    /// The commit LSN of its last change.
    pub last_lsn: Lsn,
    /// Rows (one per change).
    pub rows: u64,
    /// The ledger's chain hash after the transaction of `last_lsn`.
    pub ledger_hash: Digest,
    /// The committer's SMT root at `last_lsn`, when the roots topic held it when the file was
    /// written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Digest>,
    /// SHA-256 of the file's bytes (only in the manifest beside the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
}

/// A batch that cannot be written as Parquet.
#[derive(Debug, thiserror::Error)]
#[error("writing {object} as Parquet: {source}")]
pub struct EncodeError {
    /// The object being written.
    pub object: String,
    /// Why.
    pub source: parquet::errors::ParquetError,
}

/// `batch` as a Parquet file carrying `manifest` (whose `sha256` is then set to the file's).
pub fn encode(batch: &RecordBatch, manifest: &mut Manifest) -> Result<Vec<u8>, EncodeError> {
    manifest.sha256 = None;
    let inside = serde_json::to_string(&manifest).expect("a manifest serializes");
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("3 is a zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(vec![KeyValue::new(MANIFEST_KEY.to_owned(), inside)]))
        .set_created_by("walproof".to_owned())
        .build();
    let failed = |source| EncodeError {
        object: manifest.object.clone(),
        source,
    };
    let mut bytes = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties)).map_err(failed)?;
    writer.write(batch).map_err(failed)?;
    writer.close().map_err(failed)?;
    manifest.sha256 = Some(Digest(Sha256::digest(&bytes).into()));
    Ok(bytes)
}

/// The manifest inside a Parquet file's bytes.
pub fn manifest_inside(bytes: &[u8]) -> Result<Manifest, String> {
    use parquet::file::reader::{FileReader as _, SerializedFileReader};
    let reader = SerializedFileReader::new(bytes::Bytes::copy_from_slice(bytes))
        .map_err(|err| format!("not a Parquet file: {err}"))?;
    let metadata = reader.metadata().file_metadata().key_value_metadata();
    let text = metadata
        .and_then(|kv| kv.iter().find(|kv| kv.key == MANIFEST_KEY))
        .and_then(|kv| kv.value.clone())
        .ok_or_else(|| format!("no {MANIFEST_KEY} in the file's metadata"))?;
    serde_json::from_str(&text).map_err(|err| format!("{MANIFEST_KEY}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{ChangeAt, TableRows};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use walproof_core::{Column, Op, Relation, ReplicaIdentity, Row, Value};

    #[test]
    fn a_file_reads_back_with_its_rows_and_manifest_and_its_digest_matches() {
        let relation = Relation {
            id: 1,
            schema: "public".into(),
            name: "t".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![Column {
                name: "id".into(),
                type_oid: 20,
                type_modifier: -1,
                key: true,
            }],
        };
        let mut rows = TableRows::new(&relation).unwrap();
        for i in 0..1000u32 {
            rows.push(
                ChangeAt {
                    commit_lsn: Lsn::new(100 + u64::from(i)),
                    ordinal: 0,
                    xid: i,
                    commit_time_us: 0,
                },
                &Op::Insert {
                    relation: 1,
                    new: Row(vec![Value::Text(i.to_string())]),
                },
            )
            .unwrap();
        }
        let batch = rows.finish();
        let mut manifest = Manifest {
            version: 1,
            object: "public.t/__date=1970-01-01/x.parquet".into(),
            table: "public.t".into(),
            first_lsn: Lsn::new(100),
            last_lsn: Lsn::new(1099),
            rows: 1000,
            ledger_hash: Digest([7; 32]),
            root: None,
            sha256: None,
        };
        let bytes = encode(&batch, &mut manifest).unwrap();
        assert_eq!(manifest.sha256, Some(Digest(Sha256::digest(&bytes).into())));
        let inside = manifest_inside(&bytes).unwrap();
        assert_eq!(inside.sha256, None);
        assert_eq!(
            Manifest {
                sha256: manifest.sha256,
                ..inside
            },
            manifest
        );
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.clone()))
            .unwrap()
            .build()
            .unwrap();
        let read: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(read.iter().map(RecordBatch::num_rows).sum::<usize>(), 1000);
        assert_eq!(read[0].schema(), batch.schema());
        // The same rows give the same bytes: a retry rewrites the same object.
        let again = encode(&batch, &mut manifest.clone()).unwrap();
        assert_eq!(again, bytes);
        assert!(manifest_inside(b"not parquet").is_err());
    }
}
