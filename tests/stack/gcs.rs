//! The GCS emulator, through the official google-cloud-storage client: object writes (single
//! request and resumable) and reads, what the archiver needs.

use bytes::Bytes;
use google_cloud_auth::credentials::anonymous;
use google_cloud_storage::client::Storage;
use walproof_testkit::TestBucket;

async fn read_all(storage: &Storage, bucket: &str, object: &str) -> Vec<u8> {
    let mut response = storage.read_object(bucket, object).send().await.unwrap();
    let mut contents = Vec::new();
    while let Some(chunk) = response.next().await.transpose().unwrap() {
        contents.extend_from_slice(&chunk);
    }
    contents
}

#[tokio::test]
async fn objects_written_with_the_official_client_read_back_identically() {
    let stack = super::stack();
    let bucket = TestBucket::create(&stack, "gcs").await.unwrap();
    let storage = Storage::builder()
        .with_endpoint(&stack.gcs_endpoint)
        .with_credentials(anonymous::Builder::new().build())
        .build()
        .await
        .unwrap();

    let small = Bytes::from_static(b"walproof archive object\n");
    let written = storage
        .write_object(bucket.resource(), "public.items/part-0.txt", small.clone())
        .send_buffered()
        .await
        .unwrap();
    assert_eq!(written.size, small.len() as i64);
    assert_eq!(
        read_all(&storage, &bucket.resource(), "public.items/part-0.txt").await,
        small
    );

    // Above 16 MiB the client switches to a resumable upload session.
    let large: Bytes = (0..17 * 1024 * 1024)
        .map(|i: u32| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    storage
        .write_object(bucket.resource(), "public.items/large.bin", large.clone())
        .send_buffered()
        .await
        .unwrap();
    assert_eq!(
        read_all(&storage, &bucket.resource(), "public.items/large.bin").await,
        large
    );
}
