//! The end-to-end latency benchmark's parts: a steady rate of one-row source transactions from
//! several sessions ([`drive`]), a tail of `<prefix>.attestations` that notes when each
//! attestation became readable ([`AttestationTail`]), and the ledger's commit time of each
//! transaction ([`commit_times`]).
//!
//! A transaction's latency is the moment a consumer read its attestation from the topic minus
//! its commit time at the source — the commit record's timestamp, which Postgres takes just
//! before it flushes the commit and pgoutput carries into the ledger (`commit_time_us`). Both
//! are this machine's wall clock; they are matched by commit LSN (the attestation's key).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio_postgres::Client;
use walproof_core::{Chain, EntryBody, Lsn, Reassembler, SealedEntry};

use crate::workload::{ROW_VALUES, TABLE};

/// Microseconds since the Unix epoch, now.
pub fn unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// A steady load: `rate` transactions a second over `duration`, spread over the sessions.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Transactions a second, all sessions together.
    pub rate: f64,
    /// How long.
    pub duration: Duration,
    /// Rows `1..=prefill` exist: updates pick one of them.
    pub prefill: u64,
}

/// What one load achieved.
#[derive(Debug, Default)]
pub struct LoadRun {
    /// Transactions committed.
    pub committed: u64,
    /// Of which inserts (the rest update one row).
    pub inserts: u64,
    /// Seconds from the load's start to the last commit's return.
    pub seconds: f64,
    /// Transactions that started more than 10 ms after their scheduled time.
    pub late: u64,
    /// The most a transaction started after its scheduled time, seconds.
    pub max_late: f64,
}

/// Runs `load` over `sessions` (each its own connection): session `s` of `n` starts its
/// `k`-th transaction at `start + (s + k·n) / rate`, or as soon as it can when behind; none
/// starts after `duration`, so a load the sessions cannot keep up with commits fewer. Each transaction is one autocommitted statement touching one row
/// of the workload's table: in turn, an insert of the next new id (from `next_id`) and an
/// update of a random existing row. Returns the sessions for the next load.
pub async fn drive(
    sessions: Vec<Client>,
    load: Load,
    next_id: Arc<AtomicU64>,
) -> anyhow::Result<(Vec<Client>, LoadRun)> {
    let n = sessions.len().max(1);
    let period = Duration::from_secs_f64(n as f64 / load.rate);
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let end = start + load.duration;
    let mut tasks = Vec::new();
    for (s, client) in sessions.into_iter().enumerate() {
        let next_id = next_id.clone();
        tasks.push(tokio::spawn(async move {
            let insert = client
                .prepare(&format!(
                    "INSERT INTO {TABLE} SELECT {ROW_VALUES} FROM (SELECT $1::bigint AS g) s"
                ))
                .await?;
            let update = client
                .prepare(&format!(
                    "UPDATE {TABLE} SET status = 'paid', amount = amount + 1 WHERE id = $1"
                ))
                .await?;
            let mut random = xorshift(0x9E37_79B9_7F4A_7C15 ^ s as u64);
            let mut run = LoadRun::default();
            let first = start + period.mul_f64(s as f64 / n as f64);
            for k in 0u32.. {
                let at = first + period * k;
                let now = tokio::time::Instant::now();
                // A session behind its schedule does not run past the load's end either: what
                // it committed by then is what the load achieved.
                if at >= end || now >= end {
                    break;
                }
                if at > now {
                    tokio::time::sleep_until(at).await;
                } else {
                    let late = (now - at).as_secs_f64();
                    run.max_late = run.max_late.max(late);
                    run.late += u64::from(late > 0.010);
                }
                let touched = if k % 2 == 0 {
                    let id = next_id.fetch_add(1, Ordering::Relaxed) as i64;
                    run.inserts += 1;
                    client.execute(&insert, &[&id]).await?
                } else {
                    let id = 1 + random(load.prefill) as i64;
                    client.execute(&update, &[&id]).await?
                };
                anyhow::ensure!(touched == 1, "a load transaction touched {touched} rows");
                run.committed += 1;
            }
            run.seconds = start.elapsed().as_secs_f64();
            anyhow::Ok((client, run))
        }));
    }
    let mut sessions = Vec::new();
    let mut total = LoadRun::default();
    for task in tasks {
        let (client, run) = task.await??;
        sessions.push(client);
        total.committed += run.committed;
        total.inserts += run.inserts;
        total.late += run.late;
        total.max_late = total.max_late.max(run.max_late);
        total.seconds = total.seconds.max(run.seconds);
    }
    Ok((sessions, total))
}

/// A small deterministic generator (xorshift) of numbers below a bound.
fn xorshift(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut seed = seed | 1;
    move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below.max(1)
    }
}

/// When an attestation was seen.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// When this benchmark's consumer read it, microseconds since the Unix epoch.
    pub received_us: i64,
    /// The record's timestamp (CreateTime: when the validator's producer queued it), ms.
    pub produced_ms: Option<i64>,
}

/// A consumer on its own thread reading `<prefix>.attestations` from its first record as
/// records arrive (fetches wait at most 5 ms on the broker), noting for each commit LSN when
/// its first attestation was read.
#[derive(Debug)]
pub struct AttestationTail {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeMap<Lsn, Seen>>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl AttestationTail {
    /// Starts reading `topic` (which must exist) on `brokers`.
    pub fn start(brokers: &str, topic: &str) -> anyhow::Result<AttestationTail> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("{topic}.bench-latency"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "5")
            .set("fetch.min.bytes", "1")
            .create()
            .context("creating the attestations consumer")?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
        consumer.assign(&assignment)?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let (stopping, noting, topic) = (stop.clone(), seen.clone(), topic.to_owned());
        let thread = std::thread::Builder::new()
            .name("attestation-tail".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                        continue;
                    };
                    let message = message.with_context(|| format!("reading {topic}"))?;
                    let received_us = unix_us();
                    let key = String::from_utf8_lossy(message.key().unwrap_or_default());
                    // `<validator address>/<commit LSN>`; the LSN holds one '/' itself.
                    let Some(lsn) = key
                        .split_once('/')
                        .and_then(|(_, lsn)| lsn.parse::<Lsn>().ok())
                    else {
                        bail!("{topic} offset {}: key {key:?}", message.offset());
                    };
                    let produced_ms = message.timestamp().to_millis();
                    lock(&noting).entry(lsn).or_insert(Seen {
                        received_us,
                        produced_ms,
                    });
                }
                Ok(())
            })?;
        Ok(AttestationTail {
            stop,
            seen,
            thread: Some(thread),
        })
    }

    /// Attestations read so far for commit LSNs in `(after, before)`.
    pub fn count_between(&self, after: Lsn, before: Lsn) -> usize {
        lock(&self.seen)
            .range(after..before)
            .filter(|(lsn, _)| **lsn > after)
            .count()
    }

    /// Attestations read so far for commit LSNs in `(after, before)`.
    pub fn seen_between(&self, after: Lsn, before: Lsn) -> BTreeMap<Lsn, Seen> {
        lock(&self.seen)
            .range(after..before)
            .filter(|(lsn, _)| **lsn > after)
            .map(|(lsn, seen)| (*lsn, *seen))
            .collect()
    }

    /// Stops the consumer; fails if it failed.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => bail!("the attestations consumer panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for AttestationTail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A transaction of the ledger: when it committed, and when the decoder produced its record.
#[derive(Debug, Clone, Copy)]
pub struct Committed {
    /// Its commit time at the source (`commit_time_us`), microseconds since the Unix epoch.
    pub commit_us: i64,
    /// The timestamp (CreateTime, ms) of its last ledger record: when the decoder produced it.
    pub ledger_ms: Option<i64>,
}

/// Every complete transaction of the ledger `topic` whose commit LSN is in `(after, before)`,
/// read from the ledger's first record with every record's hash and link checked — until
/// `expected` of them were read or `timeout` passed (the ledger may still lag when the pipeline
/// did not keep up). Blocking: run it off the runtime.
pub fn commit_times(
    brokers: &str,
    topic: &str,
    after: Lsn,
    before: Lsn,
    expected: usize,
    timeout: Duration,
) -> anyhow::Result<BTreeMap<Lsn, Committed>> {
    let consumer = reader(brokers, topic)?;
    let (mut chain, mut reassembler) = (Chain::genesis(), Reassembler::new());
    let mut times = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    while times.len() < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.with_context(|| format!("reading {topic}"))?;
        let offset = message.offset();
        let sealed = SealedEntry::from_bytes(message.payload().unwrap_or_default())
            .with_context(|| format!("{topic} offset {offset} is not a ledger record"))?;
        chain
            .extend(&sealed)
            .with_context(|| format!("{topic} offset {offset}"))?;
        let entry = sealed
            .decode_entry()
            .with_context(|| format!("{topic} offset {offset}"))?;
        reassembler
            .check(&entry)
            .with_context(|| format!("{topic} offset {offset}"))?;
        if let EntryBody::Transaction(part) = &entry.body {
            if entry.last && entry.commit_lsn > after && entry.commit_lsn < before {
                times.insert(
                    entry.commit_lsn,
                    Committed {
                        commit_us: part.commit_time_us,
                        ledger_ms: message.timestamp().to_millis(),
                    },
                );
            }
        }
    }
    Ok(times)
}

/// The timestamp (CreateTime, ms: when the committer produced it) of every root on the roots
/// `topic` whose commit LSN is in `(after, before)`, until `expected` were read or `timeout`
/// passed. Blocking: run it off the runtime.
pub fn root_times(
    brokers: &str,
    topic: &str,
    after: Lsn,
    before: Lsn,
    expected: usize,
    timeout: Duration,
) -> anyhow::Result<BTreeMap<Lsn, i64>> {
    let consumer = reader(brokers, topic)?;
    let mut times = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    while times.len() < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.with_context(|| format!("reading {topic}"))?;
        let record: serde_json::Value =
            serde_json::from_slice(message.payload().unwrap_or_default())
                .with_context(|| format!("{topic} offset {}", message.offset()))?;
        let lsn: Lsn = record["commit_lsn"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .with_context(|| format!("{topic} offset {}: no commit_lsn", message.offset()))?;
        if let (true, Some(ms)) = (lsn > after && lsn < before, message.timestamp().to_millis()) {
            times.insert(lsn, ms);
        }
    }
    Ok(times)
}

/// A consumer of partition 0 of `topic` from its first record.
fn reader(brokers: &str, topic: &str) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}.bench-latency"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .with_context(|| format!("creating a consumer of {topic}"))?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    Ok(consumer)
}
