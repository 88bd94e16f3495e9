//! Reading the ledger as every consumer must: verify the chain record by record, reassemble
//! whole transactions, void abandoned runs.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use walproof_core::{
    Chain, Digest, LedgerEntry, Lsn, Progress, Reassembled, Reassembler, SealedEntry, Transaction,
};

use crate::error::{Result, TransportError};
use crate::kafka::{KafkaSettings, ReaderContext};

/// A reader of `<prefix>.ledger` from its first record.
pub struct LedgerReader {
    consumer: StreamConsumer<ReaderContext>,
    topic: String,
    chain: Chain,
    reassembler: Reassembler,
    next_offset: i64,
}

impl std::fmt::Debug for LedgerReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerReader")
            .field("topic", &self.topic)
            .field("head", &self.chain.head())
            .field("next_offset", &self.next_offset)
            .finish_non_exhaustive()
    }
}

/// What [`LedgerReader::read_verified`] found.
enum Read {
    Entry(i64, LedgerEntry),
    EndOfPartition,
    Quiet,
}

/// What [`LedgerReader::next_record`] found.
enum Next {
    Record(i64, Reassembled),
    EndOfPartition,
    Quiet,
}

/// Everything a reader found between the start of the ledger and its end.
#[derive(Debug, Default)]
pub struct LedgerContents {
    /// Whole transactions in ledger order.
    pub transactions: Vec<Transaction>,
    /// Commit LSNs of voided runs, in ledger order.
    pub abandoned: Vec<Lsn>,
    /// Records read.
    pub records: i64,
}

impl LedgerReader {
    /// A reader positioned at the ledger's first record, with an empty chain.
    pub fn from_start(settings: &KafkaSettings) -> Result<LedgerReader> {
        let reader = LedgerReader::unassigned(settings)?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&reader.topic, 0, Offset::Beginning)
            .map_err(TransportError::kafka("assigning the ledger partition"))?;
        reader
            .consumer
            .assign(&assignment)
            .map_err(TransportError::kafka("assigning the ledger partition"))?;
        Ok(reader)
    }

    /// A reader with no partition assigned yet (nothing fetched before its first seek).
    fn unassigned(settings: &KafkaSettings) -> Result<LedgerReader> {
        let topic = settings.ledger_topic();
        let consumer: StreamConsumer<ReaderContext> = settings
            .reader_config(&format!("{}.ledger-reader", settings.topic_prefix))
            .set("enable.partition.eof", "true")
            .create_with_context(ReaderContext)
            .map_err(TransportError::kafka("creating a ledger reader"))?;
        Ok(LedgerReader {
            consumer,
            topic,
            chain: Chain::genesis(),
            reassembler: Reassembler::new(),
            next_offset: 0,
        })
    }

    /// A reader for the consumer group `group`, resuming after the offset the group committed
    /// (with [`LedgerReader::commit`], always at a transaction boundary), or at the first
    /// record. The chain resumes from the record before that offset, which is read again to
    /// learn its hash.
    pub async fn for_group(
        settings: &KafkaSettings,
        group: &str,
        timeout: Duration,
    ) -> Result<LedgerReader> {
        let topic = settings.ledger_topic();
        let consumer: StreamConsumer<ReaderContext> = settings
            .reader_config(group)
            .set("enable.partition.eof", "true")
            .create_with_context(ReaderContext)
            .map_err(TransportError::kafka("creating a ledger reader"))?;
        let mut partition = TopicPartitionList::new();
        partition.add_partition(&topic, 0);
        let committed =
            consumer
                .committed_offsets(partition, timeout)
                .map_err(TransportError::kafka(format!(
                    "reading {group}'s committed offset"
                )))?;
        let resume_at = match committed.find_partition(&topic, 0).map(|p| p.offset()) {
            Some(Offset::Offset(offset)) if offset > 0 => offset,
            _ => 0,
        };
        let mut reader = LedgerReader {
            consumer,
            topic: topic.clone(),
            chain: Chain::genesis(),
            reassembler: Reassembler::new(),
            next_offset: 0,
        };
        if resume_at > 0 {
            reader.resume_after(resume_at - 1, timeout).await?;
        } else {
            reader.seek(0)?;
        }
        Ok(reader)
    }

    /// A reader resuming after the record at `offset`, which must be the end of a transaction
    /// and hash to `head` (what the caller kept when it processed that record): else the
    /// ledger is not the one the caller read, and the error says so.
    pub async fn after(
        settings: &KafkaSettings,
        offset: i64,
        head: walproof_core::Digest,
        timeout: Duration,
    ) -> Result<LedgerReader> {
        let mut reader = LedgerReader::unassigned(settings)?;
        reader.resume_after(offset, timeout).await?;
        if reader.chain.head() != head {
            return Err(TransportError::InvalidRoot {
                topic: reader.topic.clone(),
                offset,
                problem: format!(
                    "the record there hashes to {}, but {head} was kept for it: this is not the ledger that was read before",
                    reader.chain.head()
                ),
            });
        }
        Ok(reader)
    }

    /// Positions the reader after the record at `offset`, which is read again to learn its
    /// hash: the chain and the order resume after it.
    async fn resume_after(&mut self, offset: i64, timeout: Duration) -> Result<()> {
        let topic = self.topic.clone();
        self.seek(offset)?;
        let message = tokio::time::timeout(timeout, self.consumer.recv())
            .await
            .map_err(|_| TransportError::Timeout {
                operation: format!("reading offset {offset} of {topic}"),
                seconds: timeout.as_secs(),
            })?
            .map_err(TransportError::kafka(format!("reading {topic}")))?;
        let offset = message.offset();
        let invalid = |source| TransportError::InvalidRecord {
            topic: topic.clone(),
            offset,
            source,
        };
        let sealed =
            SealedEntry::from_bytes(message.payload().unwrap_or_default()).map_err(invalid)?;
        let entry = sealed.decode_entry().map_err(invalid)?;
        self.chain = Chain::resume(sealed.hash);
        self.reassembler = Reassembler::resume(entry.last.then_some(entry.commit_lsn));
        self.next_offset = offset + 1;
        Ok(())
    }

    fn seek(&mut self, offset: i64) -> Result<()> {
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.topic, 0, Offset::Offset(offset))
            .map_err(TransportError::kafka("assigning the ledger partition"))?;
        self.consumer
            .assign(&assignment)
            .map_err(TransportError::kafka("assigning the ledger partition"))
    }

    /// Commits the position after the last record read for this reader's group. Call it only
    /// once everything done with what was read is durable, at a transaction boundary.
    pub fn commit(&self) -> Result<()> {
        let mut position = TopicPartitionList::new();
        position
            .add_partition_offset(&self.topic, 0, Offset::Offset(self.next_offset))
            .map_err(TransportError::kafka("committing the ledger position"))?;
        self.consumer
            .commit(&position, rdkafka::consumer::CommitMode::Sync)
            .map_err(TransportError::kafka("committing the ledger position"))
    }

    /// The hash of the last record read (the chain's head).
    pub fn chain_head(&self) -> walproof_core::Digest {
        self.chain.head()
    }

    /// The next record, verified and fed to the reassembler; `Ok(None)` at the end of the
    /// partition or when none arrives within `wait`. A record that fails verification is an
    /// error naming its offset, and nothing after it is read.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<(i64, Reassembled)>> {
        Ok(match self.next_record(wait).await? {
            Next::Record(offset, outcome) => Some((offset, outcome)),
            Next::EndOfPartition | Next::Quiet => None,
        })
    }

    async fn next_record(&mut self, wait: Duration) -> Result<Next> {
        let (offset, entry) = match self.read_verified(wait).await? {
            Read::Entry(offset, entry) => (offset, entry),
            Read::EndOfPartition => return Ok(Next::EndOfPartition),
            Read::Quiet => return Ok(Next::Quiet),
        };
        let outcome = self
            .reassembler
            .push(entry)
            .map_err(|problem| self.out_of_order(offset, problem))?;
        Ok(Next::Record(offset, outcome))
    }

    /// Moves the reader onto a task of its own, which reads, verifies, decodes and reassembles
    /// up to `depth` records ahead of [`ReadAhead::next`]: for a consumer whose own work per
    /// transaction is long enough that the reading should not wait for it.
    pub fn read_ahead(self, depth: usize, wait: Duration) -> ReadAhead {
        self.read_ahead_with(depth, wait, |_| ())
    }

    /// [`LedgerReader::read_ahead`], computing `ahead` of each complete transaction as well
    /// (hashes of its rows, say): [`ReadAhead::next`] hands it over with the transaction. A
    /// transaction of [`AHEAD_ON_THREAD`] changes or more is computed on a blocking thread, a
    /// smaller one on the reading task itself: on busy cores, waking another thread for each
    /// small transaction costs more than the computing.
    pub fn read_ahead_with<T: Send + 'static>(
        mut self,
        depth: usize,
        wait: Duration,
        ahead: impl Fn(&Transaction) -> T + Send + Sync + 'static,
    ) -> ReadAhead<T> {
        let (records, received) = tokio::sync::mpsc::channel(depth.max(1));
        let ahead = std::sync::Arc::new(ahead);
        let task = tokio::spawn(async move {
            let mut idle = false;
            loop {
                let next = match self.next(wait).await {
                    Ok(Some((offset, Reassembled::Complete(transaction)))) => {
                        idle = false;
                        let (transaction, computed) = if transaction.changes.len() < AHEAD_ON_THREAD
                        {
                            let computed = ahead(&transaction);
                            (transaction, computed)
                        } else {
                            let ahead = ahead.clone();
                            let computed = tokio::task::spawn_blocking(move || {
                                let computed = ahead(&transaction);
                                (transaction, computed)
                            })
                            .await;
                            match computed {
                                Ok(computed) => computed,
                                Err(_) => return, // the runtime is shutting down
                            }
                        };
                        Ok(Some(Ahead {
                            offset,
                            outcome: Reassembled::Complete(transaction),
                            head: self.chain_head(),
                            computed: Some(computed),
                        }))
                    }
                    Ok(Some((offset, outcome))) => {
                        idle = false;
                        Ok(Some(Ahead {
                            offset,
                            outcome,
                            head: self.chain_head(),
                            computed: None,
                        }))
                    }
                    // The first quiet read after a record is reported, the others are not.
                    Ok(None) if idle => continue,
                    Ok(None) => {
                        idle = true;
                        Ok(None)
                    }
                    Err(err) => Err(err),
                };
                let failed = next.is_err();
                if records.send(next).await.is_err() || failed {
                    return;
                }
            }
        });
        ReadAhead { received, task }
    }

    /// The next record, verified (chain and order) but not collected into its transaction: for
    /// readers that act on each part as it arrives, in bounded memory. `Ok(None)` at the end of
    /// the partition or when none arrives within `wait`. Do not mix with [`LedgerReader::next`].
    pub async fn next_entry(
        &mut self,
        wait: Duration,
    ) -> Result<Option<(i64, LedgerEntry, Progress)>> {
        let Read::Entry(offset, entry) = self.read_verified(wait).await? else {
            return Ok(None);
        };
        let progress = self
            .reassembler
            .check(&entry)
            .map_err(|problem| self.out_of_order(offset, problem))?;
        Ok(Some((offset, entry, progress)))
    }

    /// Receives the next record, checks its hash and its link to the chain, decodes it.
    async fn read_verified(&mut self, wait: Duration) -> Result<Read> {
        let message = match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(Read::Quiet),
            Ok(Err(KafkaError::PartitionEOF(_))) => return Ok(Read::EndOfPartition),
            Ok(message) => {
                message.map_err(TransportError::kafka(format!("reading {}", self.topic)))?
            }
        };
        let offset = message.offset();
        let topic = &self.topic;
        let invalid = |source| TransportError::InvalidRecord {
            topic: topic.clone(),
            offset,
            source,
        };
        let sealed =
            SealedEntry::from_bytes(message.payload().unwrap_or_default()).map_err(invalid)?;
        self.chain
            .extend(&sealed)
            .map_err(|source| TransportError::ChainBroken {
                topic: topic.clone(),
                offset,
                source: Box::new(source),
            })?;
        let entry = sealed.decode_entry().map_err(invalid)?;
        self.next_offset = offset + 1;
        Ok(Read::Entry(offset, entry))
    }

    fn out_of_order(&self, offset: i64, problem: walproof_core::OrderError) -> TransportError {
        TransportError::OutOfOrder {
            topic: self.topic.clone(),
            offset,
            problem: problem.to_string(),
        }
    }

    /// Reads from the current position to the end of the partition. Fails if no record or
    /// end-of-partition arrives within `timeout`.
    pub async fn read_to_end(&mut self, timeout: Duration) -> Result<LedgerContents> {
        let mut contents = LedgerContents::default();
        loop {
            match self.next_record(timeout).await? {
                Next::EndOfPartition => return Ok(contents),
                Next::Quiet => {
                    return Err(TransportError::Timeout {
                        operation: format!("reading {} to its end", self.topic),
                        seconds: timeout.as_secs(),
                    });
                }
                Next::Record(_, outcome) => {
                    contents.records += 1;
                    match outcome {
                        Reassembled::Complete(transaction) => {
                            contents.transactions.push(transaction)
                        }
                        Reassembled::Abandoned { commit_lsn, .. } => {
                            contents.abandoned.push(commit_lsn)
                        }
                        Reassembled::Pending => {}
                    }
                }
            }
        }
    }
}

/// Ledger records a stage reads, verifies and decodes ahead of the transaction it is applying
/// ([`LedgerReader::read_ahead`]): a whole transaction is held in memory anyway; this is what
/// may wait behind it.
pub const READ_AHEAD: usize = 2;

/// Changes from which [`LedgerReader::read_ahead_with`] computes on a blocking thread.
pub const AHEAD_ON_THREAD: usize = 256;

/// A [`LedgerReader`] reading ahead on a task of its own ([`LedgerReader::read_ahead`]).
#[derive(Debug)]
pub struct ReadAhead<T = ()> {
    received: tokio::sync::mpsc::Receiver<Result<Option<Ahead<T>>>>,
    task: tokio::task::JoinHandle<()>,
}

/// A record read ahead: what [`LedgerReader::next`] gives, the chain's head after it, and
/// what was computed of its transaction when it completed one.
#[derive(Debug)]
pub struct Ahead<T> {
    /// The record's offset.
    pub offset: i64,
    /// What the record did to its transaction.
    pub outcome: Reassembled,
    /// The chain's head after the record.
    pub head: Digest,
    /// What [`LedgerReader::read_ahead_with`] computed of the transaction it completed.
    pub computed: Option<T>,
}

impl<T> ReadAhead<T> {
    /// The next record, as [`Ahead`]; `Ok(None)` once when the reader finds nothing more (at
    /// the end of the partition, or nothing within its wait). After an error nothing more is
    /// read.
    ///
    /// Cancel-safe: a record not returned stays for the next call.
    pub async fn next(&mut self) -> Result<Option<Ahead<T>>> {
        match self.received.recv().await {
            Some(next) => next,
            None => Err(TransportError::Stopped("the ledger reader")),
        }
    }
}

impl<T> Drop for ReadAhead<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
