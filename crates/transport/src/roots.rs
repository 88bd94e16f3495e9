//! The `<prefix>.roots` topic: one record per commit LSN, in LSN order, one partition.
//!
//! A record's value is JSON (version 1), readable by any client:
//!
//! ```json
//! {"version": 1, "commit_lsn": "0/16B3748", "root": "<64 hex>", "previous_root": "<64 hex>",
//!  "ledger_hash": "<64 hex>", "changes": 3}
//! ```
//!
//! `root` is the Sparse Merkle Tree root after the transaction (32 zero bytes for an empty
//! tree), `previous_root` the root before it, `ledger_hash` the hash of the transaction's last
//! ledger entry (the chain head it was computed from). The key is the commit LSN. Consecutive
//! records chain: each `previous_root` is the `root` before it.

use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use walproof_core::{Digest, Lsn};

use crate::error::{Result, TransportError};
use crate::kafka::{KafkaSettings, ReaderContext};
use crate::ledger::create_topic;

/// One published root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootRecord {
    /// The transaction's commit LSN.
    pub commit_lsn: Lsn,
    /// The root after it.
    pub root: Digest,
    /// The root before it.
    pub previous_root: Digest,
    /// The hash of its last ledger entry.
    pub ledger_hash: Digest,
    /// Its number of changes.
    pub changes: u32,
}

impl RootRecord {
    /// The JSON value.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "version": 1,
            "commit_lsn": self.commit_lsn.to_string(),
            "root": self.root.to_string(),
            "previous_root": self.previous_root.to_string(),
            "ledger_hash": self.ledger_hash.to_string(),
            "changes": self.changes,
        })
        .to_string()
    }

    /// Parses a JSON value; the error names the field.
    pub fn from_json(bytes: &[u8]) -> std::result::Result<RootRecord, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|err| format!("not JSON: {err}"))?;
        if value["version"] != 1 {
            return Err(format!("unknown version {}", value["version"]));
        }
        let text = |field: &str| {
            value[field]
                .as_str()
                .ok_or_else(|| format!("{field} is missing"))
        };
        let digest = |field: &str| -> std::result::Result<Digest, String> {
            text(field)?
                .parse()
                .map_err(|err| format!("{field}: {err}"))
        };
        Ok(RootRecord {
            commit_lsn: text("commit_lsn")?
                .parse()
                .map_err(|err| format!("commit_lsn: {err}"))?,
            root: digest("root")?,
            previous_root: digest("previous_root")?,
            ledger_hash: digest("ledger_hash")?,
            changes: value["changes"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("changes is missing")?,
        })
    }
}

/// The roots topic's name.
pub fn roots_topic(settings: &KafkaSettings) -> String {
    format!("{}.roots", settings.topic_prefix)
}

/// Every published root, in order (creating the topic if it does not exist), read until the
/// broker reports the end of the partition: for a reader that must see every root, such as
/// the committer on start (no root is being published then). Fails, naming the offset, on a
/// record that does not parse or does not follow the one before it.
pub async fn read_roots(settings: &KafkaSettings, timeout: Duration) -> Result<Vec<RootRecord>> {
    let roots = read(settings, None, Until::EndReported, timeout).await?;
    Ok(roots.into_iter().map(|(_, root)| root).collect())
}

/// The roots published after `after` (an offset and the root read there; `None`: from the
/// first), each with its offset, checked to follow it — for a reader that keeps up with the
/// topic without reading it whole each time, while the committer goes on publishing. Reads up
/// to the end the broker gives when asked (its high watermark), not until it reports the end
/// of the partition: with roots arriving several times a second that report may never come
/// (with tansu, an archiver's roll waited for it until the committer stopped). A root
/// published meanwhile comes with the next call.
pub async fn read_roots_after(
    settings: &KafkaSettings,
    after: Option<(i64, RootRecord)>,
    timeout: Duration,
) -> Result<Vec<(i64, RootRecord)>> {
    read(settings, after, Until::HighWatermark, timeout).await
}

/// Where a read of the roots topic stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// When the broker reports the end of the partition.
    EndReported,
    /// At the high watermark read when the read starts (or when the end is reported first).
    HighWatermark,
}

async fn read(
    settings: &KafkaSettings,
    after: Option<(i64, RootRecord)>,
    until: Until,
    timeout: Duration,
) -> Result<Vec<(i64, RootRecord)>> {
    let topic = roots_topic(settings);
    let admin: AdminClient<DefaultClientContext> = settings
        .client_config()
        .create()
        .map_err(TransportError::kafka("creating an admin client"))?;
    create_topic(&admin, &topic, 1, timeout).await?;
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || read_blocking(&settings, &topic, after, until, timeout))
        .await
        .map_err(|_| TransportError::Kafka {
            operation: "reading the roots topic (the reader stopped)".into(),
            source: KafkaError::Canceled,
        })?
}

fn read_blocking(
    settings: &KafkaSettings,
    topic: &str,
    after: Option<(i64, RootRecord)>,
    until: Until,
    timeout: Duration,
) -> Result<Vec<(i64, RootRecord)>> {
    let consumer: BaseConsumer<ReaderContext> = settings
        .client_config()
        .set("group.id", format!("{}.roots-tail", settings.topic_prefix))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create_with_context(ReaderContext)
        .map_err(TransportError::kafka("creating the roots reader"))?;
    let mut high = None;
    if after.is_some() || until == Until::HighWatermark {
        let (low, end) = consumer
            .fetch_watermarks(topic, 0, timeout)
            .map_err(TransportError::kafka(format!("reading {topic}'s end")))?;
        if after.map_or(low, |(offset, _)| offset + 1) >= end {
            return Ok(Vec::new());
        }
        high = (until == Until::HighWatermark).then_some(end);
    }
    let mut partition = TopicPartitionList::new();
    partition
        .add_partition_offset(
            topic,
            0,
            after.map_or(Offset::Beginning, |(offset, _)| Offset::Offset(offset + 1)),
        )
        .map_err(TransportError::kafka("assigning the roots topic"))?;
    consumer
        .assign(&partition)
        .map_err(TransportError::kafka("assigning the roots topic"))?;
    let mut roots: Vec<(i64, RootRecord)> = Vec::new();
    loop {
        let message = match consumer.poll(timeout) {
            None => {
                return Err(TransportError::Timeout {
                    operation: format!("reading {topic} to its end"),
                    seconds: timeout.as_secs(),
                });
            }
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(roots),
            Some(Err(err)) => return Err(TransportError::kafka(format!("reading {topic}"))(err)),
            Some(Ok(message)) => message,
        };
        let offset = message.offset();
        let invalid = |problem: String| TransportError::InvalidRoot {
            topic: topic.to_owned(),
            offset,
            problem,
        };
        let record =
            RootRecord::from_json(message.payload().unwrap_or_default()).map_err(invalid)?;
        if let Some((_, before)) = roots.last().or(after.as_ref()) {
            if record.commit_lsn <= before.commit_lsn || record.previous_root != before.root {
                return Err(invalid(format!(
                    "root of {} does not follow the root of {}",
                    record.commit_lsn, before.commit_lsn
                )));
            }
        }
        roots.push((offset, record));
        if high.is_some_and(|high| offset + 1 >= high) {
            return Ok(roots);
        }
    }
}

/// Follows `<prefix>.roots` from its first record as roots are published: each record parsed
/// and checked to follow the one before it (a later LSN, `previous_root` the root before).
pub struct RootsFollower {
    consumer: rdkafka::consumer::StreamConsumer<ReaderContext>,
    topic: String,
    last: Option<RootRecord>,
}

impl std::fmt::Debug for RootsFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootsFollower")
            .field("topic", &self.topic)
            .field("last", &self.last.map(|r| r.commit_lsn.to_string()))
            .finish_non_exhaustive()
    }
}

impl RootsFollower {
    /// A follower from the topic's first record (creating the topic if it does not exist).
    pub async fn from_start(settings: &KafkaSettings, timeout: Duration) -> Result<RootsFollower> {
        let topic = roots_topic(settings);
        let admin: AdminClient<DefaultClientContext> = settings
            .client_config()
            .create()
            .map_err(TransportError::kafka("creating an admin client"))?;
        create_topic(&admin, &topic, 1, timeout).await?;
        let consumer: rdkafka::consumer::StreamConsumer<ReaderContext> = settings
            .client_config()
            .set(
                "group.id",
                format!("{}.roots-follower", settings.topic_prefix),
            )
            .set("enable.auto.commit", "false")
            .create_with_context(ReaderContext)
            .map_err(TransportError::kafka("creating the roots follower"))?;
        let mut partition = TopicPartitionList::new();
        partition
            .add_partition_offset(&topic, 0, Offset::Beginning)
            .map_err(TransportError::kafka("assigning the roots topic"))?;
        consumer
            .assign(&partition)
            .map_err(TransportError::kafka("assigning the roots topic"))?;
        Ok(RootsFollower {
            consumer,
            topic,
            last: None,
        })
    }

    /// The next root with its offset; `Ok(None)` when none arrives within `wait`. A record that
    /// does not parse or does not follow the one before is an error naming its offset.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<(i64, RootRecord)>> {
        let message = match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(None),
            Ok(message) => {
                message.map_err(TransportError::kafka(format!("reading {}", self.topic)))?
            }
        };
        let offset = message.offset();
        let invalid = |problem: String| TransportError::InvalidRoot {
            topic: self.topic.clone(),
            offset,
            problem,
        };
        let record =
            RootRecord::from_json(message.payload().unwrap_or_default()).map_err(invalid)?;
        if let Some(before) = &self.last {
            if record.commit_lsn <= before.commit_lsn || record.previous_root != before.root {
                return Err(invalid(format!(
                    "root of {} does not follow the root of {}",
                    record.commit_lsn, before.commit_lsn
                )));
            }
        }
        self.last = Some(record);
        Ok(Some((offset, record)))
    }
}

/// Publishes roots: idempotent, acks=all, in order.
pub struct RootsWriter {
    producer: FutureProducer,
    topic: String,
    in_flight: Vec<DeliveryFuture>,
}

impl std::fmt::Debug for RootsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootsWriter")
            .field("topic", &self.topic)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl RootsWriter {
    /// A writer for `<prefix>.roots`.
    pub fn new(settings: &KafkaSettings) -> Result<RootsWriter> {
        let producer = settings
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "0")
            .create()
            .map_err(TransportError::kafka("creating the roots producer"))?;
        Ok(RootsWriter {
            producer,
            topic: roots_topic(settings),
            in_flight: Vec::new(),
        })
    }

    /// Queues one root.
    pub async fn publish(&mut self, record: &RootRecord) -> Result<()> {
        let (key, value) = (record.commit_lsn.to_string(), record.to_json());
        let out = FutureRecord::to(&self.topic)
            .partition(0)
            .key(&key)
            .payload(&value);
        let delivery = crate::kafka::send(&self.producer, out, || {
            format!("producing the root of {key}")
        })
        .await?;
        self.in_flight.push(delivery);
        if self.in_flight.len() >= 1000 {
            self.flush().await?;
        }
        Ok(())
    }

    /// Waits until the broker acknowledged every root queued.
    pub async fn flush(&mut self) -> Result<()> {
        crate::kafka::delivered(&mut self.in_flight, "a root").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json_and_bad_ones_name_the_field() {
        let record = RootRecord {
            commit_lsn: "0/16B3748".parse().unwrap(),
            root: Digest([7; 32]),
            previous_root: Digest([0; 32]),
            ledger_hash: Digest([9; 32]),
            changes: 3,
        };
        let json = record.to_json();
        assert!(json.contains(r#""commit_lsn":"0/16B3748""#), "{json}");
        assert_eq!(RootRecord::from_json(json.as_bytes()), Ok(record));
        let broken = json.replace("\"root\"", "\"rot\"");
        assert_eq!(
            RootRecord::from_json(broken.as_bytes()),
            Err("root is missing".into())
        );
        assert!(
            RootRecord::from_json(b"{\"version\": 2}")
                .unwrap_err()
                .contains("unknown version 2")
        );
    }
}
