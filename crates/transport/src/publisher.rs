//! The Debezium publisher: the ledger's whole transactions as Debezium change events on the
//! per-table topics and BEGIN/END records on `<prefix>.transaction`.
//!
//! Delivery contract: at-least-once, like Debezium. The publisher reads the ledger in its own
//! consumer group (verifying the chain) and commits its position only after the broker
//! acknowledged every record of the transactions before it; after a crash it publishes again
//! from that position, so a consumer may see a repeat — every event carries `source.lsn`,
//! `transaction.total_order` and the change's ordinal to drop it.

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio::sync::watch;
use walproof_core::{EntryBody, Progress};

use crate::debezium::{DebeziumOptions, Record, TransactionEncoder, heartbeat_record};
use crate::error::{Result, TransportError};
use crate::kafka::KafkaSettings;
use crate::ledger::{LedgerReader, create_topic};

/// Publishes the ledger as Debezium events until `shutdown` turns true, and a heartbeat on
/// `__debezium-heartbeat.<prefix>` every `heartbeat` (if given), idle or not.
pub async fn run_publisher(
    settings: &KafkaSettings,
    options: DebeziumOptions,
    heartbeat: Option<Duration>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let group = format!("{}.debezium-publisher", settings.topic_prefix);
    let timeout = Duration::from_secs(30);
    crate::ledger::ensure_ledger_topic(settings, timeout).await?;
    let mut reader = LedgerReader::for_group(settings, &group, timeout).await?;
    let producer: FutureProducer = settings
        .producer_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .map_err(TransportError::kafka("creating the Debezium producer"))?;
    let admin: AdminClient<DefaultClientContext> = settings
        .client_config()
        .create()
        .map_err(TransportError::kafka("creating an admin client"))?;
    let mut topics = HashSet::new();
    let mut in_flight: Vec<DeliveryFuture> = Vec::new();
    // The transaction being published, entry by entry (never held whole).
    let mut open: Option<TransactionEncoder<'_>> = None;
    let mut last_heartbeat: Option<std::time::Instant> = None;
    loop {
        let heartbeat_due =
            heartbeat.is_some_and(|every| last_heartbeat.is_none_or(|at| at.elapsed() >= every));
        if heartbeat_due {
            let record = heartbeat_record(&options, now_ms());
            if !topics.contains(&record.topic) {
                create_topic(&admin, &record.topic, 1, timeout).await?;
                topics.insert(record.topic.clone());
            }
            in_flight.push(produce(&producer, &record).await?);
            last_heartbeat = Some(std::time::Instant::now());
        }
        let at_boundary = open.is_none();
        if *shutdown.borrow() {
            return settle(&mut in_flight, at_boundary.then_some(&reader)).await;
        }
        let next = tokio::select! {
            next = reader.next_entry(Duration::from_millis(500)) => next?,
            _ = shutdown.changed() => continue,
        };
        let Some((_, entry, progress)) = next else {
            // Caught up: make the position durable.
            settle(&mut in_flight, at_boundary.then_some(&reader)).await?;
            continue;
        };
        let part = match (entry.body, progress) {
            (EntryBody::Transaction(part), Progress::Part { .. }) => part,
            // A voided run: its events may already be out (at-least-once); the transaction
            // follows again whole.
            _ => {
                open = None;
                continue;
            }
        };
        let mut records = Vec::new();
        let encoder = match &mut open {
            Some(encoder) => encoder,
            None => {
                let encoder = TransactionEncoder::new(
                    entry.commit_lsn,
                    part.xid,
                    part.commit_time_us,
                    &options,
                )
                .map_err(|err| TransportError::Debezium(Box::new(err)))?;
                records.push(encoder.begin());
                open.insert(encoder)
            }
        };
        encoder.add_relations(part.relations.iter());
        records.extend(
            encoder
                .encode_changes(&part.changes, entry.last)
                .map_err(|err| TransportError::Debezium(Box::new(err)))?,
        );
        if entry.last {
            records.push(encoder.end());
            open = None;
        }
        for record in records {
            if !topics.contains(&record.topic) {
                let partitions = if record.topic == options.transaction_topic() {
                    1
                } else {
                    options.partitions
                };
                create_topic(&admin, &record.topic, partitions as i32, timeout).await?;
                topics.insert(record.topic.clone());
            }
            in_flight.push(produce(&producer, &record).await?);
        }
        if in_flight.len() >= 10_000 {
            // Bounded memory: wait for the broker; commit only between transactions.
            settle(&mut in_flight, open.is_none().then_some(&reader)).await?;
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn produce(producer: &FutureProducer, record: &Record) -> Result<DeliveryFuture> {
    let mut out = FutureRecord::to(&record.topic).partition(record.partition);
    if let Some(key) = &record.key {
        out = out.key(key);
    }
    if let Some(value) = &record.value {
        out = out.payload(value);
    }
    crate::kafka::send(producer, out, || format!("producing to {}", record.topic)).await
}

/// Waits for every record in flight, then commits the reader's position (when given: only
/// between transactions).
async fn settle(in_flight: &mut Vec<DeliveryFuture>, reader: Option<&LedgerReader>) -> Result<()> {
    if in_flight.is_empty() {
        return Ok(());
    }
    crate::kafka::delivered(in_flight, "a Debezium event").await?;
    reader.map_or(Ok(()), LedgerReader::commit)
}
