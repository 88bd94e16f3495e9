//! The Kafka-protocol broker, through rdkafka: what the ledger writer and its consumers need.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use walproof_testkit::names::unique_name;
use walproof_testkit::topics::TestTopics;

const RECORDS: i64 = 10;

#[tokio::test]
async fn idempotent_produce_group_commit_and_reading_the_last_record_work() {
    let stack = super::stack();
    stack
        .require_listening("Kafka broker", &stack.kafka_brokers)
        .await
        .unwrap();
    let topics = TestTopics::new(&stack, "kafka");
    let topic = topics.create("events", 1).await.unwrap();

    // Idempotent producer, acks=all: what the ledger writer uses.
    let producer: FutureProducer = topics
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .unwrap();
    for i in 0..RECORDS {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        let delivered = producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(err, _)| err)
            .unwrap();
        assert_eq!((delivered.partition, delivered.offset), (0, i));
    }

    // A consumer group reads them in order and commits its position.
    let group = unique_name("group");
    let consumer = |group: &str| -> StreamConsumer {
        topics
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // A new group's first join waits about half the session timeout.
            .set("session.timeout.ms", "6000")
            .create()
            .unwrap()
    };
    let reader = consumer(&group);
    reader.subscribe(&[&topic]).unwrap();
    for i in 0..RECORDS {
        let message = tokio::time::timeout(Duration::from_secs(20), reader.recv())
            .await
            .expect("record within 20 s")
            .unwrap();
        assert_eq!(message.payload(), Some(format!("v{i}").as_bytes()));
        if i == RECORDS - 1 {
            reader.commit_message(&message, CommitMode::Sync).unwrap();
        }
    }
    drop(reader);

    // A new member of the group sees the committed offset: the next record to read.
    let member = consumer(&group);
    let mut partition = TopicPartitionList::new();
    partition.add_partition(&topic, 0);
    let committed = member
        .committed_offsets(partition, Duration::from_secs(10))
        .unwrap();
    let offset = committed.find_partition(&topic, 0).unwrap().offset();
    assert_eq!(offset, Offset::Offset(RECORDS));

    // The last record, by seeking from the high watermark (what the ledger writer's restart does).
    let (low, high) = member
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!((low, high), (0, RECORDS));
    let tail: StreamConsumer = topics
        .client_config()
        .set("group.id", unique_name("tail"))
        .create()
        .unwrap();
    let mut at_last = TopicPartitionList::new();
    at_last
        .add_partition_offset(&topic, 0, Offset::Offset(high - 1))
        .unwrap();
    tail.assign(&at_last).unwrap();
    let last = tokio::time::timeout(Duration::from_secs(20), tail.recv())
        .await
        .expect("last record within 20 s")
        .unwrap();
    assert_eq!((last.offset(), last.key()), (high - 1, Some(&b"k9"[..])));
}
