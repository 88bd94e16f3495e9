//! Reading the end of the ledger: where its single writer resumes.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use walproof_core::{Digest, EntryBody, Lsn, SealedEntry};

use crate::error::{Result, TransportError};
use crate::kafka::{KafkaSettings, ReaderContext};

/// How many records to read per step when walking back from the end.
const WINDOW: i64 = 256;

/// The ledger ends inside this transaction: its parts so far must be voided by an abandon marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenRun {
    /// The incomplete transaction's commit LSN.
    pub commit_lsn: Lsn,
    /// How many of its parts are in the ledger.
    pub parts_written: u32,
}

/// What the end of the ledger says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerTail {
    /// Hash of the last record: the next record's `prev_hash` ([`Digest::ZERO`] when empty).
    pub head: Digest,
    /// Offset the next record will get.
    pub next_offset: i64,
    /// Commit LSN of the last complete transaction, if any.
    pub last_complete: Option<Lsn>,
    /// The transaction the ledger ends inside of, if it does.
    pub open_run: Option<OpenRun>,
}

/// Reads the ledger's tail: the last records, and back to the last complete transaction. The
/// records read are checked to link to each other.
///
/// The end is found by reading to the end of the partition, not by trusting the high watermark
/// alone: some Kafka-protocol brokers report the base offset of the last batch plus one.
pub async fn read_tail(settings: &KafkaSettings, timeout: Duration) -> Result<LedgerTail> {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || read_tail_blocking(&settings, timeout))
        .await
        .unwrap_or_else(|join| {
            Err(TransportError::Timeout {
                operation: format!("reading the ledger tail ({join})"),
                seconds: 0,
            })
        })
}

fn read_tail_blocking(settings: &KafkaSettings, timeout: Duration) -> Result<LedgerTail> {
    let topic = settings.ledger_topic();
    let consumer: BaseConsumer<ReaderContext> = settings
        .reader_config(&format!("{}.ledger-tail", settings.topic_prefix))
        .set("enable.partition.eof", "true")
        .create_with_context(ReaderContext)
        .map_err(TransportError::kafka("creating the tail reader"))?;
    let (low, high) =
        consumer
            .fetch_watermarks(&topic, 0, timeout)
            .map_err(TransportError::kafka(format!(
                "reading watermarks of {topic}"
            )))?;
    let mut tail = LedgerTail {
        head: Digest::ZERO,
        next_offset: low,
        last_complete: None,
        open_run: None,
    };
    if high <= low {
        return Ok(tail);
    }
    let mut start = (high - WINDOW).max(low);
    let mut window = read_forward(&consumer, &topic, start, None, timeout)?;
    // The record after the current window (older records must link to it).
    let mut newer: Option<(i64, SealedEntry)> = None;
    loop {
        for (offset, sealed) in window.into_iter().rev() {
            if let Some((newer_offset, newer_sealed)) = &newer {
                if newer_sealed.prev_hash != sealed.hash {
                    return Err(TransportError::ChainBroken {
                        topic,
                        offset: *newer_offset,
                        source: Box::new(walproof_core::ChainBreak {
                            expected_prev: sealed.hash,
                            found_prev: newer_sealed.prev_hash,
                            entry_hash: newer_sealed.hash,
                        }),
                    });
                }
            } else {
                tail.head = sealed.hash;
                tail.next_offset = offset + 1;
            }
            let entry = sealed
                .decode_entry()
                .map_err(|source| TransportError::InvalidRecord {
                    topic: topic.clone(),
                    offset,
                    source,
                })?;
            let is_newest = newer.is_none();
            if let EntryBody::Transaction(_) = entry.body {
                match (is_newest, entry.last, tail.last_complete) {
                    (true, false, _) => {
                        tail.open_run = Some(OpenRun {
                            commit_lsn: entry.commit_lsn,
                            parts_written: entry.part + 1,
                        });
                    }
                    (_, true, None) => tail.last_complete = Some(entry.commit_lsn),
                    _ => {}
                }
            }
            newer = Some((offset, sealed));
        }
        // The whole window is verified; go further back only to find a complete transaction.
        if tail.last_complete.is_some() || start <= low {
            return Ok(tail);
        }
        let end = start;
        start = (end - WINDOW).max(low);
        window = read_forward(&consumer, &topic, start, Some(end), timeout)?;
    }
}

/// Reads the records of partition 0 from `start`, in order, up to `end` (exclusive) or, when
/// `end` is `None`, to the end of the partition.
fn read_forward(
    consumer: &BaseConsumer<ReaderContext>,
    topic: &str,
    start: i64,
    end: Option<i64>,
    timeout: Duration,
) -> Result<Vec<(i64, SealedEntry)>> {
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(start))
        .map_err(TransportError::kafka("assigning the ledger partition"))?;
    consumer
        .assign(&assignment)
        .map_err(TransportError::kafka("assigning the ledger partition"))?;
    let deadline = std::time::Instant::now() + timeout;
    let mut records = Vec::new();
    loop {
        if end.is_some_and(|end| records.last().is_some_and(|(offset, _)| offset + 1 >= end)) {
            return Ok(records);
        }
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        if remaining.is_zero() {
            return Err(TransportError::Timeout {
                operation: format!("reading {topic} from offset {start}"),
                seconds: timeout.as_secs(),
            });
        }
        let Some(message) = consumer.poll(remaining.min(Duration::from_millis(200))) else {
            continue;
        };
        let message = match message {
            Err(KafkaError::PartitionEOF(_)) if end.is_none() => return Ok(records),
            Err(KafkaError::PartitionEOF(_)) => continue,
            other => other.map_err(TransportError::kafka(format!("reading {topic}")))?,
        };
        let offset = message.offset();
        if offset < start || end.is_some_and(|end| offset >= end) {
            continue;
        }
        let sealed =
            SealedEntry::from_bytes(message.payload().unwrap_or_default()).map_err(|source| {
                TransportError::InvalidRecord {
                    topic: topic.to_owned(),
                    offset,
                    source,
                }
            })?;
        records.push((offset, sealed));
    }
}
