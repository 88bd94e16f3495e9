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
    AttestationsWriter, TAIL_WINDOW, attestation_key, attestations_topic,
    ensure_attestations_topic, last_attested, read_attestations,
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

#[tokio::test]
async fn a_validators_last_attestation_is_found_in_the_tail_however_far_back_it_is() {
    let (_stack, _topics, settings) = settings("attestations_last");
    assert_eq!(
        last_attested(&settings, "0xAaAa", WAIT).await.unwrap(),
        None
    );
    let (a, b) = ("0xAaAa", "0xBbBb");
    let mut writer = AttestationsWriter::new(&settings).unwrap();
    for lsn in [0x100, 0x200, 0x300] {
        let key = attestation_key(a, Lsn::new(lsn));
        writer.publish(&key, "{}").await.unwrap();
    }
    // A withdrawal approval of `a`'s is not a root attestation.
    writer
        .publish(&format!("{a}/withdrawal/7"), "{}")
        .await
        .unwrap();
    // More of another validator's records than the first window reads.
    let others = TAIL_WINDOW * 5;
    for n in 1..=others {
        let key = attestation_key(b, Lsn::new(0x1000 + n as u64));
        writer.publish(&key, "{}").await.unwrap();
    }
    writer.flush().await.unwrap();
    assert_eq!(
        last_attested(&settings, "0xaaaa", WAIT).await.unwrap(),
        Some(Lsn::new(0x300)),
        "found however far back, whatever the address's case"
    );
    assert_eq!(
        last_attested(&settings, b, WAIT).await.unwrap(),
        Some(Lsn::new(0x1000 + others as u64))
    );
    assert_eq!(
        last_attested(&settings, "0xCcCc", WAIT).await.unwrap(),
        None
    );
}
