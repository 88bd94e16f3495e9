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

use rdkafka::{Message, Offset};
use walproof_core::{Digest, Lsn};

use crate::error::{Result, TransportError};
use crate::kafka::{KafkaSettings, ReaderContext};
use crate::topic::{Topic, TopicWriter, Until};

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

fn topic(settings: &KafkaSettings) -> Topic {
    Topic {
        name: roots_topic(settings),
        records: "roots",
        a_record: "a root",
    }
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

/// The roots after `after` up to where `until` says, each with its offset, parsed and checked
/// to follow the one before it.
async fn read(
    settings: &KafkaSettings,
    after: Option<(i64, RootRecord)>,
    until: Until,
    timeout: Duration,
) -> Result<Vec<(i64, RootRecord)>> {
    let topic = topic(settings);
    let from = after.map(|(offset, _)| offset + 1);
    let records = topic.read(settings, from, until, timeout).await?;
    let mut roots: Vec<(i64, RootRecord)> = Vec::with_capacity(records.len());
    for (offset, _, value) in records {
        let before = roots.last().or(after.as_ref()).map(|(_, root)| root);
        let record = parse_following(&topic.name, offset, &value, before)?;
        roots.push((offset, record));
    }
    Ok(roots)
}

/// The root in `value`, the record at `offset` of `topic`, checked to follow `before` (a later
/// LSN, `previous_root` its root); an error naming the offset otherwise.
fn parse_following(
    topic: &str,
    offset: i64,
    value: &[u8],
    before: Option<&RootRecord>,
) -> Result<RootRecord> {
    let invalid = |problem: String| TransportError::InvalidRoot {
        topic: topic.to_owned(),
        offset,
        problem,
    };
    let record = RootRecord::from_json(value).map_err(invalid)?;
    if let Some(before) = before {
        if record.commit_lsn <= before.commit_lsn || record.previous_root != before.root {
            return Err(invalid(format!(
                "root of {} does not follow the root of {}",
                record.commit_lsn, before.commit_lsn
            )));
        }
    }
    Ok(record)
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
        RootsFollower::at(settings, Offset::Beginning, None, timeout).await
    }

    /// A follower from the record after `offset`, which was `last` (read and checked before):
    /// the next record must follow it.
    pub async fn after(
        settings: &KafkaSettings,
        offset: i64,
        last: RootRecord,
        timeout: Duration,
    ) -> Result<RootsFollower> {
        RootsFollower::at(settings, Offset::Offset(offset + 1), Some(last), timeout).await
    }

    async fn at(
        settings: &KafkaSettings,
        from: Offset,
        last: Option<RootRecord>,
        timeout: Duration,
    ) -> Result<RootsFollower> {
        let topic = topic(settings);
        let consumer = topic
            .follower(settings, "roots-follower", from, timeout)
            .await?;
        let topic = topic.name;
        Ok(RootsFollower {
            consumer,
            topic,
            last,
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
        let value = message.payload().unwrap_or_default();
        let record = parse_following(&self.topic, offset, value, self.last.as_ref())?;
        self.last = Some(record);
        Ok(Some((offset, record)))
    }
}

/// Publishes roots: idempotent, `acks=all`, in order.
///
/// [`RootsWriter::publish`] only queues; a root is durable once [`RootsWriter::flush`]
/// returned (every 1000 queued roots, `publish` flushes on its own).
#[derive(Debug)]
pub struct RootsWriter(TopicWriter);

impl RootsWriter {
    /// A writer for `<prefix>.roots`.
    pub fn new(settings: &KafkaSettings) -> Result<RootsWriter> {
        TopicWriter::new(settings, topic(settings)).map(RootsWriter)
    }

    /// Queues one root.
    pub async fn publish(&mut self, record: &RootRecord) -> Result<()> {
        let key = record.commit_lsn.to_string();
        self.0
            .publish(&key, &record.to_json(), || {
                format!("producing the root of {key}")
            })
            .await
    }

    /// Waits until the broker acknowledged every root queued.
    pub async fn flush(&mut self) -> Result<()> {
        self.0.flush().await
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
