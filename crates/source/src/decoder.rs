//! The decoder: pgoutput from the slot, assembled into whole transactions, written to the
//! ledger, and the slot confirmed only as far as the ledger holds.
//!
//! Invariants:
//! - the slot's `confirmed_flush_lsn` never passes the end of the last transaction Kafka
//!   acknowledged — or, when nothing is in flight, the keepalive position, so WAL does not pile
//!   up behind a quiet publication;
//! - a transaction reaches the ledger only after its Commit arrived, whole, numbered by ordinal;
//! - a transaction at or below the ledger's last complete commit LSN is a redelivery and is
//!   dropped;
//! - one decoder per slot: the slot admits one walsender, and the decoder also holds an advisory
//!   lock for its lifetime.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use pgwire_replication::{PgWireError, ReplicationClient, ReplicationEvent};
use tokio::sync::watch;
use walproof_core::schema_change::{
    ROWS_PREFIX, RowsBatch, SCHEMA_CHANGE_PREFIX, SchemaChange, SchemaChangeError,
};
use walproof_core::{Change, Lsn, Op, PartSplitter, RelationId, Row, Value};
use walproof_transport::KafkaSettings;
use walproof_transport::ledger::{LedgerWriter, WriterOptions};

use crate::connection::SourceConnection;
use crate::error::{DecoderError, Result};
use crate::metrics::DecoderMetrics;
use crate::pending::{PendingTransaction, SpillOptions};
use crate::pgoutput::{Message, parse_message, pg_time_to_unix_us};
use crate::relation::{RelationCache, needs_primary_key_lookup};
use crate::snapshot::{
    ExportedSnapshot, SnapshotMode, SnapshotOptions, copy_tables, create_slot_with_snapshot,
    published_relations,
};
use crate::tuple::{convert_old_tuple, convert_tuple_to_row};

/// Everything the decoder needs to run.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    /// The source database.
    pub source: SourceConnection,
    /// The pgoutput slot (created by `walproof setup`).
    pub slot: String,
    /// The publication (created by `walproof setup`).
    pub publication: String,
    /// Kafka brokers and topic prefix.
    pub kafka: KafkaSettings,
    /// Producer tuning.
    pub writer: WriterOptions,
    /// Most encoded bytes of changes per ledger entry (a Kafka message).
    pub max_entry_bytes: usize,
    /// When and where big transactions spill to disk.
    pub spill: SpillOptions,
    /// The initial snapshot.
    pub snapshot: SnapshotOptions,
    /// How often progress is reported to the source.
    pub status_interval: Duration,
    /// First and longest wait between reconnection attempts.
    pub retry: (Duration, Duration),
    /// How long a clean shutdown waits for Kafka to acknowledge what is in flight.
    pub shutdown_timeout: Duration,
}

/// Runs the decoder until `shutdown` turns true (then stops cleanly: everything appended is
/// acknowledged, the slot confirmed to it and released) or a fatal error. An unreachable
/// source or broker is retried with exponential backoff.
pub async fn run(
    config: DecoderConfig,
    metrics: Arc<DecoderMetrics>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let (first, longest) = config.retry;
    let mut wait = first;
    loop {
        let started = std::time::Instant::now();
        match Session::run(&config, &metrics, &mut shutdown).await {
            Ok(()) => return Ok(()),
            Err(err) if err.is_retryable() => {
                if started.elapsed() > longest {
                    wait = first; // it ran for a while: this is a new outage
                }
                tracing::warn!("{err}; retrying in {wait:?}");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    () = stopped(&mut shutdown) => return Ok(()),
                }
                wait = (wait * 2).min(longest);
            }
            Err(err) => return Err(err),
        }
    }
}

/// How long a starting decoder tries for the advisory lock before concluding that another
/// decoder is alive.
const LOCK_GRACE: Duration = Duration::from_secs(5);

/// One connected session: SQL session (advisory lock), ledger writer, replication stream.
struct Session<'a> {
    config: &'a DecoderConfig,
    metrics: &'a DecoderMetrics,
    sql: tokio_postgres::Client,
    writer: LedgerWriter,
    replication: ReplicationClient,
    relations: RelationCache,
    /// Generation of each relation's shape, so a pending transaction learns it once.
    generations: std::collections::HashMap<RelationId, u64>,
    generation: u64,
    pending: Option<(
        PendingTransaction,
        std::collections::HashMap<RelationId, u64>,
    )>,
    /// Commit LSN of a redelivered transaction being dropped.
    skipping: Option<Lsn>,
    confirmed: Lsn,
}

impl<'a> Session<'a> {
    async fn run(
        config: &'a DecoderConfig,
        metrics: &'a DecoderMetrics,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<()> {
        let sql = config
            .source
            .connect_sql("walproof-decoder")
            .await
            .map_err(DecoderError::sql("connecting"))?;
        let slot_position = claim_slot(&sql, config).await?;
        match crate::setup::ddl_capture_installed(&sql, &config.publication).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                publication = %config.publication,
                "DDL capture is not installed: schema changes of published tables will not reach \
                 the ledger with their rows; run `walproof setup` as a superuser"
            ),
            Err(err) => tracing::warn!("could not check DDL capture: {err}"),
        }
        let (mut writer, tail) = LedgerWriter::open(&config.kafka, &config.writer)
            .await
            .map_err(DecoderError::ledger)?;
        let mode = config.snapshot.mode;
        let needs_snapshot = mode != SnapshotMode::Never && tail.last_complete.is_none();
        if !needs_snapshot {
            metrics.snapshot.finished.store(true, Relaxed);
        }
        if mode == SnapshotMode::InitialOnly && !needs_snapshot {
            tracing::info!("snapshot mode initial_only: the ledger holds the snapshot already");
            return Ok(());
        }
        tracing::info!(
            slot = %config.slot,
            ledger = writer.topic(),
            last_complete = ?tail.last_complete.map(|l| l.to_string()),
            slot_position = ?slot_position.map(|l| l.to_string()),
            snapshot = needs_snapshot,
            "decoder session starting"
        );
        let replication_config = config.source.replication_config(
            &config.slot,
            &config.publication,
            config.status_interval,
        );
        let (replication, confirmed) = if needs_snapshot {
            // Nothing is complete in the ledger, so nothing was consumed from the slot: it is
            // (re)created with an exported snapshot, the start of a consistent copy.
            if slot_position.is_some() {
                sql.execute("SELECT pg_drop_replication_slot($1)", &[&config.slot])
                    .await
                    .map_err(DecoderError::sql("dropping the unused slot to recreate it"))?;
            }
            let mut replication = ReplicationClient::connect_gated(replication_config)
                .await
                .map_err(|err| replication_error(err, config))?;
            let exported = create_slot_with_snapshot(&mut replication, &config.slot).await?;
            let copied = take_snapshot(config, metrics, &sql, &mut writer, &exported).await;
            if copied.is_err() || mode == SnapshotMode::InitialOnly {
                // A gated session ignores a polite stop: close it, releasing the slot.
                replication.abort();
            }
            copied?;
            if mode == SnapshotMode::InitialOnly {
                writer
                    .close(config.shutdown_timeout)
                    .await
                    .map_err(DecoderError::ledger)?;
                tracing::info!("snapshot written (snapshot mode initial_only): stopping");
                return Ok(());
            }
            replication
                .start()
                .await
                .map_err(|err| replication_error(err, config))?;
            (replication, exported.consistent_point)
        } else {
            let Some(position) = slot_position else {
                return Err(DecoderError::MissingSlot {
                    slot: config.slot.clone(),
                    database: config.source.database().to_owned(),
                });
            };
            let replication = ReplicationClient::connect(replication_config)
                .await
                .map_err(|err| replication_error(err, config))?;
            (replication, position)
        };
        DecoderMetrics::raise(&metrics.confirmed_lsn, confirmed.as_u64());
        let mut session = Session {
            config,
            metrics,
            sql,
            writer,
            replication,
            relations: RelationCache::default(),
            generations: Default::default(),
            generation: 0,
            pending: None,
            skipping: None,
            confirmed,
        };
        let outcome = session.stream(shutdown).await;
        match outcome {
            Ok(()) => session.stop().await,
            Err(err) => {
                session.replication.abort();
                Err(err)
            }
        }
    }

    /// The event loop; returns `Ok` when asked to stop.
    async fn stream(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<()> {
        let mut acks = self.writer.acks();
        loop {
            tokio::select! {
                biased;
                () = stopped(shutdown) => return Ok(()),
                changed = acks.changed() => {
                    if changed.is_err() {
                        return Err(DecoderError::Unavailable { what: "Kafka".into(), reason: "the delivery tracker stopped".into() });
                    }
                    let state = acks.borrow_and_update().clone();
                    if let Some(failure) = state.failure {
                        return Err(DecoderError::Unavailable { what: "Kafka".into(), reason: failure });
                    }
                    self.metrics.ack_latency_us_sum.fetch_add(state.last_latency.as_micros() as u64, Relaxed);
                    self.metrics.ack_latency_count.fetch_add(1, Relaxed);
                    if let Some(position) = state.confirmed {
                        self.confirm(position);
                    }
                }
                event = self.replication.recv() => {
                    let event = event.map_err(|err| replication_error(err, self.config))?;
                    let Some(event) = event else {
                        return Err(DecoderError::Unavailable {
                            what: "the source's replication stream".into(),
                            reason: "it ended".into(),
                        });
                    };
                    self.handle(event).await?;
                }
            }
        }
    }

    fn confirm(&mut self, position: Lsn) {
        if position > self.confirmed {
            self.confirmed = position;
            self.replication
                .update_applied_lsn(pgwire_replication::Lsn::from_u64(position.as_u64()));
            DecoderMetrics::raise(&self.metrics.confirmed_lsn, position.as_u64());
        }
    }

    fn idle(&self) -> bool {
        self.pending.is_none()
            && self.skipping.is_none()
            && self.writer.acks().borrow().acknowledged >= self.writer.appended()
    }

    async fn handle(&mut self, event: ReplicationEvent) -> Result<()> {
        match event {
            ReplicationEvent::Begin {
                final_lsn,
                xid,
                commit_time_micros,
            } => {
                let commit_lsn = Lsn::new(final_lsn.as_u64());
                self.begin(commit_lsn, xid, pg_time_to_unix_us(commit_time_micros))
            }
            ReplicationEvent::XLogData {
                wal_start,
                wal_end,
                data,
                ..
            } => {
                let lsn = Lsn::new(wal_start.as_u64());
                DecoderMetrics::raise(&self.metrics.server_wal_lsn, wal_end.as_u64());
                self.metrics
                    .decoded_bytes
                    .fetch_add(data.len() as u64, Relaxed);
                let message = parse_message(&data)
                    .map_err(|source| DecoderError::Malformed { lsn, source })?;
                self.message(lsn, message).await
            }
            ReplicationEvent::Message {
                transactional,
                lsn,
                prefix,
                content,
            } => {
                let lsn = Lsn::new(lsn.as_u64());
                if transactional {
                    self.logical_message(lsn, prefix, content.to_vec())
                } else {
                    tracing::debug!(%lsn, %prefix, "ignoring a non-transactional logical message");
                    Ok(())
                }
            }
            ReplicationEvent::Commit { lsn, end_lsn, .. } => {
                self.commit(Lsn::new(lsn.as_u64()), Lsn::new(end_lsn.as_u64()))
                    .await
            }
            ReplicationEvent::KeepAlive { wal_end, .. } => {
                DecoderMetrics::raise(&self.metrics.server_wal_lsn, wal_end.as_u64());
                // Nothing open and everything acknowledged: all the server sent up to here is
                // in the ledger, so the slot may move on even if nothing was published.
                if self.idle() {
                    self.confirm(Lsn::new(wal_end.as_u64()));
                }
                Ok(())
            }
            ReplicationEvent::StoppedAt { .. } => Ok(()),
        }
    }

    fn begin(&mut self, commit_lsn: Lsn, xid: u32, commit_time_us: i64) -> Result<()> {
        if let Some((open, _)) = &self.pending {
            return Err(DecoderError::Protocol {
                lsn: commit_lsn,
                problem: format!(
                    "Begin of {commit_lsn} while transaction {} is open",
                    open.commit_lsn()
                ),
            });
        }
        if self
            .writer
            .last_complete()
            .is_some_and(|last| commit_lsn <= last)
        {
            self.skipping = Some(commit_lsn);
            self.metrics.redelivered_transactions.fetch_add(1, Relaxed);
            return Ok(());
        }
        let transaction = PendingTransaction::begin(
            commit_lsn,
            xid,
            commit_time_us,
            self.config.max_entry_bytes,
            self.config.spill.clone(),
        );
        self.pending = Some((transaction, Default::default()));
        Ok(())
    }

    async fn message(&mut self, lsn: Lsn, message: Message<'_>) -> Result<()> {
        match message {
            Message::Relation(relation) => {
                // Learned even inside a dropped redelivery: later transactions need the shape.
                let primary_key = if needs_primary_key_lookup(&relation) {
                    primary_key_columns(&self.sql, relation.id).await?
                } else {
                    Vec::new()
                };
                self.relations.learn(&relation, &primary_key);
                self.generation += 1;
                self.generations.insert(relation.id, self.generation);
                Ok(())
            }
            Message::Type { .. } | Message::Origin { .. } => Ok(()),
            Message::Begin {
                final_lsn,
                xid,
                commit_time,
            } => self.begin(final_lsn, xid, pg_time_to_unix_us(commit_time)),
            Message::Commit {
                commit_lsn,
                end_lsn,
                ..
            } => self.commit(commit_lsn, end_lsn).await,
            Message::Message {
                transactional: true,
                prefix,
                content,
                ..
            } => self.logical_message(lsn, prefix.to_owned(), content.to_vec()),
            Message::Message {
                transactional: false,
                ..
            } => Ok(()),
            Message::Insert { relation, new } => {
                let rel = self.relation(lsn, relation)?;
                let new = convert_tuple_to_row(&new, rel, None)
                    .map_err(|source| DecoderError::Tuple { lsn, source })?;
                self.change(lsn, Op::Insert { relation, new })
            }
            Message::Update { relation, old, new } => {
                let rel = self.relation(lsn, relation)?;
                let tuple_error = |source| DecoderError::Tuple { lsn, source };
                let new_row = convert_tuple_to_row(&new, rel, old.as_ref()).map_err(tuple_error)?;
                let old_row = old
                    .as_ref()
                    .map(|old| convert_old_tuple(old, rel))
                    .transpose()
                    .map_err(tuple_error)?;
                self.change(
                    lsn,
                    Op::Update {
                        relation,
                        old: old_row,
                        new: new_row,
                    },
                )
            }
            Message::Delete { relation, old } => {
                let rel = self.relation(lsn, relation)?;
                let old = convert_old_tuple(&old, rel)
                    .map_err(|source| DecoderError::Tuple { lsn, source })?;
                self.change(lsn, Op::Delete { relation, old })
            }
            Message::Truncate {
                cascade,
                restart_identity,
                relations,
            } => {
                for relation in &relations {
                    self.relation(lsn, *relation)?;
                }
                self.change(
                    lsn,
                    Op::Truncate {
                        relations,
                        cascade,
                        restart_identity,
                    },
                )
            }
        }
    }

    /// A transactional logical message. DDL capture's schema changes go into the ledger as
    /// they are, the tables they change (re)described, and each table whose rows follow is
    /// emptied first; its rows batches become snapshot rows. Other messages pass through.
    fn logical_message(&mut self, lsn: Lsn, prefix: String, content: Vec<u8>) -> Result<()> {
        if self.skipping.is_some() {
            return Ok(());
        }
        let malformed = |source| DecoderError::SchemaChange { lsn, source };
        match prefix.as_str() {
            SCHEMA_CHANGE_PREFIX => {
                let change = SchemaChange::parse(&content).map_err(malformed)?;
                if change.publication != self.config.publication {
                    return Ok(()); // another publication's capture on the same database
                }
                tracing::info!(%lsn, tag = %change.tag, tables = change.tables.len(), "schema change");
                self.change(lsn, Op::Message { prefix, content })?;
                for table in &change.tables {
                    self.relations.insert(table.relation());
                    self.generation += 1;
                    self.generations.insert(table.oid, self.generation);
                    if table.rows_follow || table.is_removed() {
                        self.change(
                            lsn,
                            Op::Truncate {
                                relations: vec![table.oid],
                                cascade: false,
                                restart_identity: false,
                            },
                        )?;
                    }
                }
                Ok(())
            }
            ROWS_PREFIX => {
                let batch = RowsBatch::parse(&content).map_err(malformed)?;
                if batch.publication != self.config.publication {
                    return Ok(());
                }
                let width = self.relation(lsn, batch.oid)?.columns.len();
                for row in batch.rows {
                    if row.len() != width {
                        return Err(malformed(SchemaChangeError {
                            prefix: ROWS_PREFIX,
                            reason: format!(
                                "a row of relation {} has {} values, the relation {width} columns",
                                batch.oid,
                                row.len()
                            ),
                        }));
                    }
                    let row = Row(row
                        .into_iter()
                        .map(|value| value.map_or(Value::Null, Value::Text))
                        .collect());
                    self.change(
                        lsn,
                        Op::Snapshot {
                            relation: batch.oid,
                            row,
                        },
                    )?;
                }
                Ok(())
            }
            _ => self.change(lsn, Op::Message { prefix, content }),
        }
    }

    fn relation(&self, lsn: Lsn, id: RelationId) -> Result<&walproof_core::Relation> {
        self.relations
            .get(id)
            .ok_or_else(|| DecoderError::Protocol {
                lsn,
                problem: format!("a change to relation {id}, which the stream never described"),
            })
    }

    fn change(&mut self, lsn: Lsn, op: Op) -> Result<()> {
        if self.skipping.is_some() {
            return Ok(());
        }
        let Some((pending, known)) = &mut self.pending else {
            return Err(DecoderError::Protocol {
                lsn,
                problem: format!("a {} change outside a transaction", op.code()),
            });
        };
        for id in op.relations() {
            let generation = self.generations.get(id).copied().unwrap_or_default();
            if known.get(id) != Some(&generation) {
                if let Some(relation) = self.relations.get(*id) {
                    pending.add_relation(relation)?;
                }
                known.insert(*id, generation);
            }
        }
        pending.push(op)?;
        Ok(())
    }

    async fn commit(&mut self, commit_lsn: Lsn, end_lsn: Lsn) -> Result<()> {
        if self.skipping.take().is_some() {
            return Ok(());
        }
        let Some((pending, _)) = self.pending.take() else {
            return Err(DecoderError::Protocol {
                lsn: commit_lsn,
                problem: "a Commit without a Begin".into(),
            });
        };
        if pending.commit_lsn() != commit_lsn {
            return Err(DecoderError::Protocol {
                lsn: commit_lsn,
                problem: format!(
                    "Commit at {commit_lsn} but Begin announced {}",
                    pending.commit_lsn()
                ),
            });
        }
        let changes = u64::from(pending.changes());
        if pending.spilled() {
            self.metrics.spilled_transactions.fetch_add(1, Relaxed);
        }
        let mut entries = pending.commit()?;
        while let Some(entry) = entries.next_entry()? {
            let confirm = entry.last.then_some(end_lsn);
            self.writer
                .append(entry, confirm)
                .await
                .map_err(DecoderError::ledger)?;
        }
        self.metrics.transactions.fetch_add(1, Relaxed);
        self.metrics.changes.fetch_add(changes, Relaxed);
        Ok(())
    }

    /// A clean stop: drop what is not committed, wait for Kafka to acknowledge everything
    /// appended, confirm the slot to it, end the stream, and make sure the slot holds it.
    async fn stop(mut self) -> Result<()> {
        self.pending = None;
        let timeout = self.config.shutdown_timeout;
        self.writer
            .flush(timeout)
            .await
            .map_err(DecoderError::ledger)?;
        if let Some(position) = self.writer.acks().borrow().confirmed {
            self.confirm(position);
        }
        // pgwire-replication ends the stream without a final status update, so the final
        // position is written to the slot directly once the walsender has let go of it.
        let _ = self.replication.shutdown().await;
        let confirmed = self.confirmed;
        let slot = self.config.slot.clone();
        let advanced = advance_released_slot(&self.sql, &slot, confirmed, timeout).await;
        if let Err(err) = &advanced {
            tracing::warn!("could not record the final position {confirmed} on slot {slot}: {err}");
        }
        tracing::info!(%confirmed, "decoder stopped cleanly");
        Ok(())
    }
}

/// Checks slot and publication, and takes the decoder's advisory lock for this session's
/// lifetime. Returns the slot's confirmed position, or `None` when the slot does not exist.
async fn claim_slot(sql: &tokio_postgres::Client, config: &DecoderConfig) -> Result<Option<Lsn>> {
    let slot = &config.slot;
    // A decoder killed a moment ago may still hold its lock until the server notices its
    // session is gone: try for a few seconds before calling it a second live decoder.
    let deadline = tokio::time::Instant::now() + LOCK_GRACE;
    loop {
        let locked: bool = sql
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended('walproof.decoder/' || $1, 0))",
                &[slot],
            )
            .await
            .map_err(DecoderError::sql("taking the decoder's advisory lock"))?
            .get(0);
        if locked {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let holder: Option<i32> = sql
                .query_opt(
                    "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted \
                     AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('walproof.decoder/' || $1, 0)",
                    &[slot],
                )
                .await
                .ok()
                .flatten()
                .map(|row| row.get(0));
            let detail = holder.map_or("its advisory lock is held".to_owned(), |pid| {
                format!("its lock is held by backend pid {pid}")
            });
            return Err(DecoderError::AlreadyRunning {
                slot: slot.clone(),
                detail,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let row = sql
        .query_opt(
            "SELECT plugin, database, active, active_pid, confirmed_flush_lsn::text \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[slot],
        )
        .await
        .map_err(DecoderError::sql("looking up the slot"))?;
    let database = config.source.database().to_owned();
    let published = sql
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&config.publication],
        )
        .await
        .map_err(DecoderError::sql("looking up the publication"))?;
    if published.is_none() {
        return Err(DecoderError::MissingPublication {
            publication: config.publication.clone(),
        });
    }
    let Some(row) = row else {
        return Ok(None);
    };
    let (plugin, slot_database): (Option<String>, Option<String>) = (row.get(0), row.get(1));
    if plugin.as_deref() != Some("pgoutput") || slot_database.as_deref() != Some(database.as_str())
    {
        return Err(DecoderError::WrongSlot {
            slot: slot.clone(),
            plugin: plugin.unwrap_or_else(|| "none (physical)".into()),
            database: slot_database.unwrap_or_default(),
        });
    }
    if row.get::<_, bool>(2) {
        // We hold the lock, so no live decoder uses the slot: this is the walsender of a
        // session that ended abruptly and the server has not noticed yet. Retry shortly.
        let pid: Option<i32> = row.get(3);
        return Err(DecoderError::Unavailable {
            what: format!("slot {slot}"),
            reason: format!(
                "still active for walsender pid {} of an earlier session that has not ended yet",
                pid.unwrap_or_default()
            ),
        });
    }
    let confirmed: Option<String> = row.get(4);
    Ok(Some(
        confirmed
            .and_then(|text| text.parse().ok())
            .unwrap_or(Lsn::ZERO),
    ))
}

/// Copies every published table at the exported snapshot into the ledger as one transaction at
/// the consistent point (op `r`), writing entries as they fill so memory stays bounded.
async fn take_snapshot(
    config: &DecoderConfig,
    metrics: &DecoderMetrics,
    sql: &tokio_postgres::Client,
    writer: &mut LedgerWriter,
    exported: &ExportedSnapshot,
) -> Result<()> {
    let relations = published_relations(sql, &config.publication).await?;
    tracing::info!(
        consistent_point = %exported.consistent_point,
        tables = relations.len(),
        workers = config.snapshot.workers,
        "initial snapshot starting"
    );
    let started = std::time::Instant::now();
    let commit_time_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let mut splitter = PartSplitter::new(
        exported.consistent_point,
        0,
        commit_time_us,
        relations.iter(),
        config.max_entry_bytes,
    );
    let progress = metrics.snapshot.clone();
    let (sink, mut batches) = tokio::sync::mpsc::channel(config.snapshot.workers.max(1) * 2);
    let copy = copy_tables(
        &config.source,
        exported,
        &relations,
        &config.snapshot,
        progress.clone(),
        sink,
    );
    let write = async {
        let mut ordinal = 0u32;
        let mut report = tokio::time::interval(Duration::from_secs(5));
        report.tick().await;
        loop {
            let batch = tokio::select! {
                batch = batches.recv() => batch,
                _ = report.tick(), if config.snapshot.log_progress => {
                    for line in progress.describe() {
                        tracing::info!("snapshot: {line}");
                    }
                    continue;
                }
            };
            let Some(batch) = batch else { break };
            let rows = batch.rows.len() as u64;
            for row in batch.rows {
                let change = Change {
                    ordinal,
                    op: Op::Snapshot {
                        relation: batch.relation,
                        row,
                    },
                };
                ordinal += 1;
                if let Some(entry) = splitter.push(change) {
                    writer
                        .append(entry, None)
                        .await
                        .map_err(DecoderError::ledger)?;
                }
            }
            metrics.snapshot_rows.fetch_add(rows, Relaxed);
        }
        Ok::<_, DecoderError>(ordinal)
    };
    let ((), rows) = tokio::try_join!(copy, write)?;
    writer
        .append(splitter.finish(), Some(exported.consistent_point))
        .await
        .map_err(DecoderError::ledger)?;
    progress.finished.store(true, Relaxed);
    for line in progress.describe() {
        tracing::info!("snapshot: {line}");
    }
    tracing::info!(
        rows,
        seconds = started.elapsed().as_secs_f64(),
        "initial snapshot written; streaming from {}",
        exported.consistent_point
    );
    Ok(())
}

/// The primary key's columns of a relation, in key order (empty without one).
async fn primary_key_columns(
    sql: &tokio_postgres::Client,
    relation: RelationId,
) -> Result<Vec<String>> {
    let rows = sql
        .query(
            "SELECT a.attname::text FROM pg_index i \
             JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position) ON true \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.position",
            &[&relation],
        )
        .await
        .map_err(DecoderError::sql("looking up a primary key"))?;
    Ok(rows.into_iter().map(|row| row.get(0)).collect())
}

/// Once the walsender released the slot, makes sure it records at least `position`.
async fn advance_released_slot(
    sql: &tokio_postgres::Client,
    slot: &str,
    position: Lsn,
    timeout: Duration,
) -> std::result::Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let row = sql
            .query_one(
                "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(|err| err.to_string())?;
        let (active, flushed): (bool, Option<String>) = (row.get(0), row.get(1));
        let flushed: Lsn = flushed.and_then(|t| t.parse().ok()).unwrap_or(Lsn::ZERO);
        if flushed >= position {
            return Ok(());
        }
        if !active {
            sql.execute(
                "SELECT pg_replication_slot_advance($1, $2::text::pg_lsn)",
                &[&slot, &position.to_string()],
            )
            .await
            .map_err(|err| err.to_string())?;
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("the slot stayed active at {flushed}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await: drop it here.
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}

fn replication_error(err: PgWireError, config: &DecoderConfig) -> DecoderError {
    let text = err.to_string();
    if text.contains("is active for PID") {
        // Checked after taking the advisory lock: an earlier session's walsender lingers.
        return DecoderError::Unavailable {
            what: format!("slot {}", config.slot),
            reason: text,
        };
    }
    if text.contains("does not exist") && text.contains("replication slot") {
        return DecoderError::MissingSlot {
            slot: config.slot.clone(),
            database: config.source.database().to_owned(),
        };
    }
    if text.contains("publication") && text.contains("does not exist") {
        return DecoderError::MissingPublication {
            publication: config.publication.clone(),
        };
    }
    DecoderError::Unavailable {
        what: "the source's replication stream".into(),
        reason: text,
    }
}
