//! The committer as a service: follows the ledger and publishes one root per transaction to
//! `<prefix>.roots`, exactly once in effect.
//!
//! With a store (`state_dir`), the state is read back from its last checkpoint and the ledger
//! is read from the record after the last transaction kept (that record's hash must be the one
//! kept: the store belongs to this ledger). The store is synced every `sync_every`, when the
//! ledger is caught up with, and on shutdown. Without a store, the state is recomputed from
//! the ledger's first record.
//!
//! Against the roots topic, on start:
//! - roots the store holds but the topic lacks (a crash after a sync, before the broker
//!   acknowledged them) are published from the store first;
//! - roots the topic holds past the state's position (a crash after publishing, before a sync)
//!   are recomputed from the ledger and must equal what was published, else the committer
//!   stops naming the LSN (the topic and the ledger disagree).
//!
//! So a crash neither repeats nor skips an LSN.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use walproof_core::{Digest, Lsn, Reassembled};
use walproof_transport::KafkaSettings;
use walproof_transport::ledger::{LedgerReader, ensure_ledger_topic};
use walproof_transport::roots::{RootRecord, RootsWriter, read_roots};

use crate::error::{CommitError, Result};
use crate::proof::{RowProof, RowSubject};
use crate::retention::Retention;
use crate::state::CommitState;
use crate::store::KeptRoot;

/// A question to the running committer (its proof API), answered between two transactions.
#[derive(Debug)]
pub enum Query {
    /// A row's proof at the root of `at` (the latest when `None`).
    Prove {
        /// Schema name.
        schema: String,
        /// Table name.
        table: String,
        /// The row: by its key columns, or a multiset's by its values.
        row: RowSubject,
        /// The LSN to prove at.
        at: Option<Lsn>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<RowProof>>,
    },
    /// The last transaction applied: its commit LSN, root and the number of live keys.
    Latest {
        /// Where the answer goes.
        reply: oneshot::Sender<Option<(Lsn, Digest, usize)>>,
    },
}

fn answer(state: &mut CommitState, query: Query) {
    match query {
        Query::Prove {
            schema,
            table,
            row,
            at,
            reply,
        } => {
            let _ = reply.send(state.prove_row_at(&schema, &table, &row, at));
        }
        Query::Latest { reply } => {
            let _ = reply.send(
                state
                    .last_applied()
                    .map(|lsn| (lsn, state.root(), state.keys())),
            );
        }
    }
}

/// How the committer keeps its state.
#[derive(Debug, Clone)]
pub struct CommitOptions {
    /// The store's directory; `None` keeps the state in memory only.
    pub state_dir: Option<PathBuf>,
    /// Longest time between two syncs of the store while transactions arrive.
    pub sync_every: Duration,
    /// Keep the trees of the last this many roots only (`None`: all of them).
    pub retain_roots: Option<u64>,
    /// With `retain_roots`: compact the store once it holds this many bytes, then whenever it
    /// has doubled since the last compaction.
    pub compact_at_bytes: u64,
}

impl Default for CommitOptions {
    fn default() -> CommitOptions {
        CommitOptions {
            state_dir: None,
            sync_every: Duration::from_millis(500),
            retain_roots: None,
            compact_at_bytes: 256 << 20,
        }
    }
}

/// Prunes the store as `retention` says, logging what it did.
fn prune(state: &mut CommitState, retention: Option<&mut Retention>) -> Result<()> {
    let Some(retention) = retention else {
        return Ok(());
    };
    if let Some((pruned, took)) = retention.prune_when_grown(state)? {
        tracing::info!(
            kept_from = %pruned.kept_from,
            bytes_before = pruned.bytes_before,
            bytes_after = pruned.bytes_after,
            records = pruned.records,
            walk_ms = pruned.walk.as_millis() as u64,
            copy_ms = pruned.copy.as_millis() as u64,
            took_ms = took.as_millis() as u64,
            "pruned the store below the retention horizon"
        );
    }
    Ok(())
}

fn record_of(kept: &KeptRoot) -> RootRecord {
    RootRecord {
        commit_lsn: kept.commit_lsn,
        root: kept.root,
        previous_root: kept.previous_root,
        ledger_hash: kept.ledger_hash,
        changes: kept.changes,
    }
}

/// Runs until `shutdown` turns true (then every root queued is acknowledged and the store
/// synced) or an error; answers `queries` between transactions.
pub async fn run(
    settings: &KafkaSettings,
    options: &CommitOptions,
    mut queries: mpsc::Receiver<Query>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let timeout = Duration::from_secs(30);
    ensure_ledger_topic(settings, timeout)
        .await
        .map_err(CommitError::ledger)?;
    let published = read_roots(settings, timeout)
        .await
        .map_err(CommitError::ledger)?;
    let last_published = published.last().cloned();
    let mut state = match &options.state_dir {
        Some(dir) => CommitState::open(dir)?,
        None => CommitState::default(),
    };
    let kept = state.last_kept();
    tracing::info!(
        published = published.len(),
        last_published = ?last_published.as_ref().map(|r| r.commit_lsn.to_string()),
        kept = ?kept.map(|k| k.commit_lsn.to_string()),
        keys = state.keys(),
        "committer starting"
    );
    let mut writer = RootsWriter::new(settings).map_err(CommitError::ledger)?;
    if let (Some(kept), Some(store)) = (kept, state.store()) {
        let published_lsn = last_published.as_ref().map(|r| r.commit_lsn);
        if published_lsn.is_none_or(|lsn| kept.commit_lsn > lsn) {
            // The store is ahead of the topic: the topic's last root must be the store's
            // root at that LSN, and what follows it is published from the store.
            if let Some(last) = &last_published {
                let at = store.root_at(last.commit_lsn)?;
                if at.map(|k| record_of(&k)).as_ref() != Some(last) {
                    return Err(CommitError::Disagrees {
                        commit_lsn: last.commit_lsn,
                        published: Some(format!("{} at {}", last.root, last.commit_lsn)),
                        recomputed: at.map_or(walproof_core::Digest::ZERO, |k| k.root),
                    });
                }
            }
            let from = match published_lsn {
                Some(lsn) => store.first_after(lsn)?,
                None => 0,
            };
            for index in from..store.roots() {
                let root = store.root_record(index)?;
                writer
                    .publish(&record_of(&root))
                    .await
                    .map_err(CommitError::ledger)?;
            }
            writer.flush().await.map_err(CommitError::ledger)?;
            tracing::info!(
                published = store.roots() - from,
                "published the roots the store held and the topic lacked"
            );
        }
    }
    let mut reader = match kept {
        Some(kept) => LedgerReader::after(settings, kept.ledger_offset, kept.ledger_hash, timeout)
            .await
            .map_err(CommitError::ledger)?,
        None => LedgerReader::from_start(settings).map_err(CommitError::ledger)?,
    };
    // Published roots past the state's position: recomputed, they must agree.
    let resume_lsn = kept.map(|k| k.commit_lsn);
    let last_published_lsn = last_published.as_ref().map(|r| r.commit_lsn);
    let mut already = published
        .into_iter()
        .filter(|r| resume_lsn.is_none_or(|lsn| r.commit_lsn > lsn))
        .peekable();
    let mut caught_up = false;
    let mut last_sync = Instant::now();
    let mut retention = options
        .retain_roots
        .map(|retain| Retention::new(retain, options.compact_at_bytes));
    if retention.is_some() {
        state.track_superseded();
    }
    loop {
        if *shutdown.borrow() {
            writer.flush().await.map_err(CommitError::ledger)?;
            state.sync()?;
            tracing::info!(last = ?state.last_applied().map(|l| l.to_string()), "committer stopped");
            return Ok(());
        }
        let next = tokio::select! {
            next = reader.next(Duration::from_millis(500)) => next.map_err(CommitError::ledger)?,
            Some(query) = queries.recv() => {
                answer(&mut state, query);
                continue;
            }
            _ = shutdown.changed() => continue,
        };
        let Some((offset, outcome)) = next else {
            if !caught_up {
                caught_up = true;
                tracing::info!(
                    last = ?state.last_applied().map(|l| l.to_string()),
                    keys = state.keys(),
                    "committer caught up with the ledger"
                );
            }
            writer.flush().await.map_err(CommitError::ledger)?;
            state.sync()?;
            prune(&mut state, retention.as_mut())?;
            last_sync = Instant::now();
            continue;
        };
        let Reassembled::Complete(transaction) = outcome else {
            continue;
        };
        let committed = state.apply(&transaction)?;
        let ledger_hash = reader.chain_head();
        state.keep(&committed, ledger_hash, offset);
        let record = RootRecord {
            commit_lsn: committed.commit_lsn,
            root: committed.root,
            previous_root: committed.previous_root,
            ledger_hash,
            changes: committed.changes,
        };
        if last_published_lsn.is_some_and(|last| record.commit_lsn <= last) {
            match already.next() {
                Some(published) if published == record => {}
                published => {
                    return Err(CommitError::Disagrees {
                        commit_lsn: record.commit_lsn,
                        published: published.map(|p| format!("{} at {}", p.root, p.commit_lsn)),
                        recomputed: record.root,
                    });
                }
            }
        } else {
            writer.publish(&record).await.map_err(CommitError::ledger)?;
        }
        if last_sync.elapsed() >= options.sync_every {
            state.sync()?;
            prune(&mut state, retention.as_mut())?;
            last_sync = Instant::now();
        }
    }
}
