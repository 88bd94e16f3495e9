//! The ledger's single writer: seals entries into the hash chain and produces them
//! idempotently, in order, to the one partition of `<prefix>.ledger`.

use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tokio::sync::{mpsc, watch};
use walproof_core::{Digest, EncodedEntry, EntryBody, LedgerEntry, Lsn, SealedEntry};

use crate::error::{Result, TransportError};
use crate::kafka::KafkaSettings;
use crate::ledger::tail::{LedgerTail, read_tail};
use crate::ledger::topic::ensure_ledger_topic;

/// Producer tuning: batches are bounded by count, bytes and time.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// How long the producer waits to fill a batch (`linger.ms`).
    pub linger: Duration,
    /// Most records per batch (`batch.num.messages`).
    pub batch_records: u32,
    /// Most bytes per batch (`batch.size`).
    pub batch_bytes: u32,
    /// Most records produced but not yet acknowledged; `append` waits beyond it.
    pub max_in_flight: usize,
    /// Most kilobytes librdkafka buffers before `append` waits (`queue.buffering.max.kbytes`).
    pub buffer_kbytes: u32,
    /// Timeout of metadata and tail reads at start.
    pub startup_timeout: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            linger: Duration::from_millis(5),
            batch_records: 10_000,
            batch_bytes: 1_000_000,
            max_in_flight: 100_000,
            buffer_kbytes: 32 * 1024,
            startup_timeout: Duration::from_secs(30),
        }
    }
}

/// What the broker has acknowledged so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckState {
    /// The `confirm` position of the latest acknowledged record that carried one (the decoder
    /// passes a transaction's end LSN with its last part).
    pub confirmed: Option<Lsn>,
    /// Records acknowledged since the writer opened.
    pub acknowledged: u64,
    /// Latency of the latest acknowledgement, produce to ack.
    pub last_latency: Duration,
    /// Set when a delivery failed; nothing after it is acknowledged and the writer must stop.
    pub failure: Option<String>,
}

struct Pending {
    delivery: DeliveryFuture,
    confirm: Option<Lsn>,
    key: String,
    produced_at: Instant,
}

/// The single writer of `<prefix>.ledger`.
///
/// Delivery contract: records are produced with an idempotent producer (`acks=all`,
/// `enable.gapless.guarantee`), so the broker stores them once each and in order, or the
/// producer fails as a whole; [`LedgerWriter::acks`] reports what the broker acknowledged.
/// One writer at a time is the caller's duty (the decoder holds the slot and an advisory lock).
pub struct LedgerWriter {
    producer: FutureProducer,
    topic: String,
    head: Digest,
    last_complete: Option<Lsn>,
    appended: u64,
    pending: mpsc::Sender<Pending>,
    acks: watch::Receiver<AckState>,
}

impl std::fmt::Debug for LedgerWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerWriter")
            .field("topic", &self.topic)
            .field("head", &self.head)
            .field("last_complete", &self.last_complete)
            .field("appended", &self.appended)
            .finish_non_exhaustive()
    }
}

impl LedgerWriter {
    /// Opens the ledger for writing: creates the topic if needed, reads its tail, and, when the
    /// ledger ends inside a transaction, appends the abandon marker that voids it (and waits
    /// until the broker has it). Returns the writer and the tail as found.
    pub async fn open(
        settings: &KafkaSettings,
        options: &WriterOptions,
    ) -> Result<(LedgerWriter, LedgerTail)> {
        let topic = ensure_ledger_topic(settings, options.startup_timeout).await?;
        let tail = read_tail(settings, options.startup_timeout).await?;
        let producer: FutureProducer = settings
            .producer_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // A failed batch must fail the producer rather than leave a gap in the chain.
            .set("enable.gapless.guarantee", "true")
            // Never give up on a record while the broker is away: the decoder waits instead.
            .set("message.timeout.ms", "0")
            .set("linger.ms", options.linger.as_millis().to_string())
            .set("batch.num.messages", options.batch_records.to_string())
            .set("batch.size", options.batch_bytes.to_string())
            // librdkafka buffers up to 1 GiB by default: bound it, so a burst (a huge transaction,
            // a slow broker) waits in `append` instead of growing the decoder's memory.
            .set(
                "queue.buffering.max.kbytes",
                options.buffer_kbytes.to_string(),
            )
            .create()
            .map_err(TransportError::kafka("creating the ledger producer"))?;
        let (pending, queue) = mpsc::channel(options.max_in_flight.max(1));
        let (ack_sender, acks) = watch::channel(AckState::default());
        tokio::spawn(track_deliveries(queue, ack_sender));
        let mut writer = LedgerWriter {
            producer,
            topic,
            head: tail.head,
            last_complete: tail.last_complete,
            appended: 0,
            pending,
            acks,
        };
        if let Some(open) = tail.open_run {
            tracing::warn!(
                commit_lsn = %open.commit_lsn,
                parts = open.parts_written,
                "the ledger ends inside a transaction; appending its abandon marker"
            );
            let marker = LedgerEntry {
                commit_lsn: open.commit_lsn,
                part: 0,
                last: false,
                body: EntryBody::Abandon {
                    parts_written: open.parts_written,
                },
            };
            writer
                .produce(open.commit_lsn, 0, marker.encode(), None)
                .await?;
            writer.flush(options.startup_timeout).await?;
        }
        Ok((writer, tail))
    }

    /// The ledger topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Commit LSN of the last complete transaction in the ledger, including what this writer
    /// appended (acknowledged or not). Source transactions at or below it are repeats.
    pub fn last_complete(&self) -> Option<Lsn> {
        self.last_complete
    }

    /// Hash of the last appended record.
    pub fn head(&self) -> Digest {
        self.head
    }

    /// Seals `entry` into the chain and produces it. `confirm` is reported in
    /// [`AckState::confirmed`] once the broker acknowledged this record (and so all before it).
    /// Waits while `max_in_flight` records are unacknowledged.
    pub async fn append(&mut self, entry: EncodedEntry, confirm: Option<Lsn>) -> Result<()> {
        if entry.part == 0 {
            if let Some(last_complete) = self.last_complete.filter(|last| entry.commit_lsn <= *last)
            {
                return Err(TransportError::NotAfterTail {
                    commit_lsn: entry.commit_lsn,
                    last_complete,
                });
            }
        }
        let (commit_lsn, part, last) = (entry.commit_lsn, entry.part, entry.last);
        self.produce(commit_lsn, part, entry.bytes, confirm).await?;
        if last {
            self.last_complete = Some(commit_lsn);
        }
        Ok(())
    }

    async fn produce(
        &mut self,
        commit_lsn: Lsn,
        part: u32,
        entry: Vec<u8>,
        confirm: Option<Lsn>,
    ) -> Result<()> {
        if let Some(failure) = &self.acks.borrow().failure {
            return Err(TransportError::Kafka {
                operation: format!(
                    "producing to {} after an earlier failure ({failure})",
                    self.topic
                ),
                source: KafkaError::Canceled,
            });
        }
        let sealed = SealedEntry::seal(self.head, entry);
        let hash = sealed.hash;
        let value = sealed.into_bytes();
        let key = format!("{commit_lsn}#{part}");
        let record = FutureRecord::to(&self.topic)
            .partition(0)
            .key(&key)
            .payload(&value);
        let delivery = crate::kafka::send(&self.producer, record, || {
            format!("producing {key} to {}", self.topic)
        })
        .await?;
        self.head = hash;
        self.appended += 1;
        let pending = Pending {
            delivery,
            confirm,
            key,
            produced_at: Instant::now(),
        };
        if self.pending.send(pending).await.is_err() {
            return Err(TransportError::Kafka {
                operation: "tracking deliveries (the tracker stopped)".into(),
                source: KafkaError::Canceled,
            });
        }
        Ok(())
    }

    /// A receiver of the acknowledgement state; it changes whenever the broker acknowledges.
    pub fn acks(&self) -> watch::Receiver<AckState> {
        self.acks.clone()
    }

    /// Records appended since the writer opened.
    pub fn appended(&self) -> u64 {
        self.appended
    }

    /// Waits until every appended record is acknowledged, or fails with the delivery failure
    /// or a timeout.
    pub async fn flush(&mut self, timeout: Duration) -> Result<()> {
        let appended = self.appended;
        let mut acks = self.acks.clone();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                {
                    let state = acks.borrow_and_update();
                    if let Some(failure) = &state.failure {
                        return Err(failure.clone());
                    }
                    if state.acknowledged >= appended {
                        return Ok(());
                    }
                }
                if acks.changed().await.is_err() {
                    return Err("the delivery tracker stopped".to_owned());
                }
            }
        })
        .await;
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failure)) => Err(TransportError::Kafka {
                operation: format!("delivering to {}: {failure}", self.topic),
                source: KafkaError::Canceled,
            }),
            Err(_) => Err(TransportError::Timeout {
                operation: format!(
                    "waiting for {} to acknowledge {appended} records",
                    self.topic
                ),
                seconds: timeout.as_secs(),
            }),
        }
    }

    /// Flushes librdkafka's queues as well, for a clean shutdown.
    pub async fn close(mut self, timeout: Duration) -> Result<()> {
        self.flush(timeout).await?;
        self.producer
            .flush(timeout)
            .map_err(TransportError::kafka("flushing the ledger producer"))
    }
}

/// Awaits deliveries in production order; the idempotent producer acknowledges in that order.
async fn track_deliveries(mut queue: mpsc::Receiver<Pending>, acks: watch::Sender<AckState>) {
    while let Some(pending) = queue.recv().await {
        let failure = match pending.delivery.await {
            Ok(Ok(_)) => None,
            Ok(Err((err, _))) => Some(format!("record {} was not delivered: {err}", pending.key)),
            Err(_) => Some(format!("record {}: the producer was dropped", pending.key)),
        };
        let failed = failure.is_some();
        acks.send_modify(|state| match failure {
            Some(failure) => state.failure = Some(failure),
            None => {
                state.acknowledged += 1;
                state.last_latency = pending.produced_at.elapsed();
                if pending.confirm.is_some() {
                    state.confirmed = pending.confirm;
                }
            }
        });
        if failed {
            // Nothing after a failed record may count as acknowledged.
            return;
        }
    }
}
