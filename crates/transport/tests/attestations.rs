//! The attestations topic against the real broker of the local stack.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use walproof_core::Lsn;
use walproof_testkit::Stack;
use walproof_testkit::topics::TestTopics;
use walproof_transport::KafkaSettings;
use walproof_transport::attestations::{
    AttestationsWriter, attestation_key, attestations_topic, ensure_attestations_topic,
    read_attestations,
};

const WAIT: Duration = Duration::from_secs(20);

fn settings(test: &str) -> (Stack, TestTopics, KafkaSettings) {
    let stack = Stack::load().unwrap_or_else(|err| panic!("{err:#}"));
    let topics = TestTopics::new(&stack, test);
    let settings = KafkaSettings::new(&stack.kafka_brokers, topics.prefix());
    (stack, topics, settings)
}

#[tokio::test]
async fn published_attestations_read_back_in_order_with_their_keys_from_a_one_partition_topic() {
    let (stack, _topics, settings) = settings("attestations_roundtrip");
    assert!(
        read_attestations(&settings, WAIT).await.unwrap().is_empty(),
        "a new topic is empty"
    );
    let metadata = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_brokers)
        .create::<BaseConsumer>()
        .unwrap()
        .fetch_metadata(Some(&attestations_topic(&settings)), WAIT)
        .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 1);
    // Creating it again is fine.
    ensure_attestations_topic(&settings, WAIT).await.unwrap();

    let (a, b) = ("0xAaAa", "0xBbBb");
    let records = [
        (attestation_key(a, Lsn::new(0x100)), r#"{"n":1}"#),
        (attestation_key(b, Lsn::new(0x100)), r#"{"n":2}"#),
        (attestation_key(a, Lsn::new(0x2_0000_0200)), r#"{"n":3}"#),
    ];
    let mut writer = AttestationsWriter::new(&settings).unwrap();
    for (key, json) in &records[..2] {
        writer.publish(key, json).await.unwrap();
    }
    writer.flush().await.unwrap();
    let read = read_attestations(&settings, WAIT).await.unwrap();
    assert_eq!(read.len(), 2);

    writer.publish(&records[2].0, records[2].1).await.unwrap();
    writer.flush().await.unwrap();
    let read = read_attestations(&settings, WAIT).await.unwrap();
    let got: Vec<(String, String)> = read
        .iter()
        .map(|(_, key, value)| (key.clone(), String::from_utf8(value.clone()).unwrap()))
        .collect();
    let want: Vec<(String, String)> = records
        .iter()
        .map(|(key, json)| (key.clone(), (*json).to_owned()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(read[2].1, "0xAaAa/2/200");
    assert!(
        read.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "offsets increase: {read:?}"
    );
}
