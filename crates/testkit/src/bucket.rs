//! A private bucket per test on the GCS emulator, emptied and deleted afterwards.
//!
//! Buckets are created and deleted through the emulator's JSON API directly: the official
//! `google-cloud-storage` client does bucket and list operations over gRPC, which no local
//! emulator serves. Object reads and writes in tests go through that client.

use anyhow::Context;
use reqwest::Url;

use crate::names::unique_name;
use crate::stack::Stack;

/// A bucket owned by one test.
#[derive(Debug)]
pub struct TestBucket {
    name: String,
    endpoint: String,
}

impl TestBucket {
    /// Creates a bucket named after `test`.
    pub async fn create(stack: &Stack, test: &str) -> anyhow::Result<TestBucket> {
        crate::ensure_crypto_provider();
        let name = unique_name(test);
        let url = format!("{}/storage/v1/b?project=walproof-test", stack.gcs_endpoint);
        let response = reqwest::Client::new()
            .post(&url)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .map_err(|err| stack.not_answering("GCS emulator", &stack.gcs_endpoint, err))?;
        let status = response.status();
        anyhow::ensure!(
            status.is_success(),
            "creating bucket {name}: {status} {}",
            response.text().await?
        );
        Ok(TestBucket {
            name,
            endpoint: stack.gcs_endpoint.clone(),
        })
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bucket in the client library's resource form, `projects/_/buckets/<name>`.
    pub fn resource(&self) -> String {
        format!("projects/_/buckets/{}", self.name)
    }
}

/// `endpoint` + the given path segments, each percent-encoded.
fn json_api_url(endpoint: &str, segments: &[&str]) -> anyhow::Result<Url> {
    let mut url = Url::parse(endpoint).with_context(|| format!("GCS endpoint {endpoint:?}"))?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("GCS endpoint {endpoint:?} cannot take a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

impl Drop for TestBucket {
    fn drop(&mut self) {
        let (name, endpoint) = (self.name.clone(), self.endpoint.clone());
        crate::run_cleanup(format!("bucket {name}"), move || async move {
            let http = reqwest::Client::new();
            let list: serde_json::Value = http
                .get(json_api_url(
                    &endpoint,
                    &["storage", "v1", "b", &name, "o"],
                )?)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let objects = list["items"].as_array().cloned().unwrap_or_default();
            for object in objects.iter().filter_map(|o| o["name"].as_str()) {
                http.delete(json_api_url(
                    &endpoint,
                    &["storage", "v1", "b", &name, "o", object],
                )?)
                .send()
                .await?
                .error_for_status()?;
            }
            http.delete(json_api_url(&endpoint, &["storage", "v1", "b", &name])?)
                .send()
                .await?
                .error_for_status()?;
            Ok(())
        });
    }
}
