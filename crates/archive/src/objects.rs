//! Where archive objects are kept: a local directory (the default, for one machine) or a Google
//! Cloud Storage bucket. The archiver only writes whole objects and reads them back by name —
//! it never lists or deletes — so a bucket needs no more than object create and get, and the
//! emulator serves both.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use google_cloud_storage::client::Storage;

/// An object that could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("{doing} {object} in {place}: {problem}")]
pub struct ObjectError {
    /// What was being done.
    pub doing: &'static str,
    /// The object's name.
    pub object: String,
    /// The directory or bucket.
    pub place: String,
    /// Why it failed.
    pub problem: String,
}

/// An archive's objects.
#[derive(Debug, Clone)]
pub enum Objects {
    /// Files under a directory; a name's `/` are subdirectories.
    Local(PathBuf),
    /// Objects in a bucket.
    Gcs {
        /// The client.
        client: Box<Storage>,
        /// The bucket's name.
        bucket: String,
    },
}

impl Objects {
    /// Files under `dir` (created when missing).
    pub fn local(dir: impl Into<PathBuf>) -> Objects {
        Objects::Local(dir.into())
    }

    /// Objects in `bucket`, with Google's standard credentials (Application Default
    /// Credentials) — or, given an `endpoint` such as an emulator's, at that endpoint without
    /// credentials.
    pub async fn gcs(bucket: &str, endpoint: Option<&str>) -> Result<Objects, ObjectError> {
        // The client's TLS needs a process-wide crypto provider: ring (see the workspace's
        // Cargo.toml); one installed already is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = Storage::builder();
        let builder = match endpoint {
            Some(endpoint) => builder.with_endpoint(endpoint).with_credentials(
                google_cloud_auth::credentials::anonymous::Builder::new().build(),
            ),
            None => builder,
        };
        let client = builder.build().await.map_err(|err| ObjectError {
            doing: "connecting to",
            object: String::new(),
            place: format!("gs://{bucket}"),
            problem: err.to_string(),
        })?;
        Ok(Objects::Gcs {
            client: Box::new(client),
            bucket: bucket.to_owned(),
        })
    }

    /// Where the objects are, for messages: a directory or `gs://bucket`.
    pub fn place(&self) -> String {
        match self {
            Objects::Local(dir) => dir.display().to_string(),
            Objects::Gcs { bucket, .. } => format!("gs://{bucket}"),
        }
    }

    fn error(&self, doing: &'static str, object: &str, problem: impl ToString) -> ObjectError {
        ObjectError {
            doing,
            object: object.to_owned(),
            place: self.place(),
            problem: problem.to_string(),
        }
    }

    /// Writes `bytes` as object `name`, replacing it whole (a reader sees the old object or
    /// the new one, never a part).
    pub async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), ObjectError> {
        match self {
            Objects::Local(dir) => {
                let path = dir.join(name);
                let result = tokio::task::spawn_blocking(move || write_file(&path, &bytes))
                    .await
                    .map_err(|err| err.to_string())
                    .and_then(|result| result.map_err(|err| err.to_string()));
                result.map_err(|problem| self.error("writing", name, problem))
            }
            Objects::Gcs { client, bucket } => client
                .write_object(
                    format!("projects/_/buckets/{bucket}"),
                    name,
                    Bytes::from(bytes),
                )
                .send_buffered()
                .await
                .map(drop)
                .map_err(|err| self.error("writing", name, err)),
        }
    }

    /// Object `name`, `None` when there is none.
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, ObjectError> {
        match self {
            Objects::Local(dir) => match tokio::fs::read(dir.join(name)).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(self.error("reading", name, err)),
            },
            Objects::Gcs { client, bucket } => {
                let read = client
                    .read_object(format!("projects/_/buckets/{bucket}"), name)
                    .send()
                    .await;
                let mut response = match read {
                    Ok(response) => response,
                    Err(err) if err.http_status_code() == Some(404) => return Ok(None),
                    Err(err) => return Err(self.error("reading", name, err)),
                };
                let mut bytes = Vec::new();
                while let Some(chunk) = response.next().await {
                    let chunk = chunk.map_err(|err| self.error("reading", name, err))?;
                    bytes.extend_from_slice(&chunk);
                }
                Ok(Some(bytes))
            }
        }
    }
}

/// Writes a file aside, syncs it and renames it into place.
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = parent.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&aside)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&aside, path)?;
    std::fs::File::open(parent)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_object_reads_back_whole_and_a_missing_one_is_none() {
        let dir = std::env::temp_dir().join(format!("walproof-objects-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let objects = Objects::local(&dir);
        assert_eq!(objects.get("a/b.parquet").await.unwrap(), None);
        objects.put("a/b.parquet", b"one".to_vec()).await.unwrap();
        objects.put("a/b.parquet", b"two".to_vec()).await.unwrap();
        assert_eq!(
            objects.get("a/b.parquet").await.unwrap(),
            Some(b"two".to_vec())
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("a")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "nothing left aside");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
