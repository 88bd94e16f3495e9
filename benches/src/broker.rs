//! The broker's own ceiling: the ledger's records, read back byte for byte, produced again to
//! a fresh one-partition topic with the decoder's producer settings (idempotent, acks=all,
//! gapless, linger 5 ms, batches of at most 10,000 records / 1,000,000 bytes), as fast as
//! librdkafka and the broker take them. No Postgres, no decoding, no hashing: if the decoder's
//! rate is close to this one, the broker is the bottleneck.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// One Kafka record: key and value.
pub type Record = (Option<Vec<u8>>, Vec<u8>);

/// Reads every record of partition 0 of `topic`.
pub fn read_all(brokers: &str, topic: &str, timeout: Duration) -> anyhow::Result<Vec<Record>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}.bench-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .context("creating a consumer")?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + timeout;
    let mut records = Vec::new();
    loop {
        if Instant::now() > deadline {
            bail!("reading {topic} took longer than {timeout:?}");
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(records),
            Some(Err(err)) => return Err(err).context(format!("reading {topic}")),
            Some(Ok(message)) => {
                records.push((
                    message.key().map(<[u8]>::to_vec),
                    message.payload().unwrap_or_default().to_vec(),
                ));
            }
        }
    }
}

/// Messages in `topic`, all partitions. The high watermark alone is not enough: tansu 0.6.0
/// reports the base offset of a partition's last record batch as its high watermark (not the
/// last offset + 1), so the records from there to the end of the partition are read and counted.
pub fn messages_in(brokers: &str, topic: &str) -> anyhow::Result<u64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}.bench-counter"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let timeout = Duration::from_secs(5);
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(0);
    };
    let mut total = 0;
    let mut assignment = TopicPartitionList::new();
    let mut ends = std::collections::BTreeMap::new();
    for partition in found.partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, partition.id(), timeout)?;
        if high > low {
            assignment.add_partition_offset(topic, partition.id(), Offset::Offset(high))?;
            ends.insert(partition.id(), (low, high));
        }
    }
    if ends.is_empty() {
        return Ok(0);
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + timeout;
    let mut open = ends.len();
    while open > 0 && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => open -= 1,
            Some(Err(err)) => return Err(err).context(format!("reading {topic}")),
            Some(Ok(message)) => {
                if let Some((_, high)) = ends.get_mut(&message.partition()) {
                    *high = (*high).max(message.offset() + 1);
                }
            }
        }
    }
    for (low, high) in ends.values() {
        total += (high - low).max(0) as u64;
    }
    Ok(total)
}

/// Deletes every topic whose name starts with `prefix`, except `keep`.
pub async fn delete_topics(brokers: &str, prefix: &str, keep: &[String]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))?;
    let doomed: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .filter(|name| name.starts_with(prefix) && !keep.contains(name))
        .collect();
    if doomed.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = doomed.iter().map(String::as_str).collect();
    for result in admin.delete_topics(&names, &AdminOptions::new()).await? {
        result.map_err(|(topic, code)| anyhow::anyhow!("deleting topic {topic}: {code}"))?;
    }
    Ok(())
}

/// Creates `topic` with one partition.
pub async fn create_topic(brokers: &str, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    for result in results {
        result.map_err(|(topic, code)| anyhow::anyhow!("creating topic {topic}: {code}"))?;
    }
    Ok(())
}

/// Produces `records` to partition 0 of `topic` with the ledger writer's settings and returns
/// the seconds from the first send to the last acknowledgement.
pub async fn produce_all(brokers: &str, topic: &str, records: &[Record]) -> anyhow::Result<f64> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("enable.gapless.guarantee", "true")
        .set("message.timeout.ms", "0")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .create()
        .context("creating the producer")?;
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(records.len());
    for (key, value) in records {
        let delivery = loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic)
                .partition(0)
                .payload(value.as_slice());
            if let Some(key) = key {
                record = record.key(key.as_slice());
            }
            match producer.send_result(record) {
                Ok(delivery) => break delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((err, _)) => return Err(err).context(format!("producing to {topic}")),
            }
        };
        deliveries.push(delivery);
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((err, _))) => return Err(err).context(format!("delivery to {topic}")),
            Err(_) => bail!("a delivery to {topic} was cancelled"),
        }
    }
    Ok(started.elapsed().as_secs_f64())
}
