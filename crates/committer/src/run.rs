//! The committer as a service: follows the ledger and publishes one root per transaction to
//! `<prefix>.roots`, exactly once in effect.
//!
//! On start it reads every root already published, then recomputes the state from the
//! ledger's first record: a transaction at or below the last published LSN is not published
//! again, and its recomputed root must equal the published one (else it stops, naming the LSN:
//! the topic and the ledger disagree). Later transactions are published in order. A crash
//! therefore neither repeats nor skips an LSN. Restart cost grows with the ledger until the
//! state is kept in a durable store.

use std::time::Duration;

use tokio::sync::watch;
use walproof_core::Reassembled;
use walproof_transport::KafkaSettings;
use walproof_transport::ledger::{LedgerReader, ensure_ledger_topic};
use walproof_transport::roots::{RootRecord, RootsWriter, read_roots};

use crate::error::{CommitError, Result};
use crate::state::CommitState;

/// Runs until `shutdown` turns true (then every root queued is acknowledged) or an error.
pub async fn run(settings: &KafkaSettings, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let timeout = Duration::from_secs(30);
    ensure_ledger_topic(settings, timeout)
        .await
        .map_err(CommitError::ledger)?;
    let published = read_roots(settings, timeout)
        .await
        .map_err(CommitError::ledger)?;
    let last_published = published.last().map(|r| r.commit_lsn);
    tracing::info!(
        published = published.len(),
        last = ?last_published.map(|l| l.to_string()),
        "committer starting: recomputing the state from the ledger"
    );
    let mut already = published.into_iter().peekable();
    let mut writer = RootsWriter::new(settings).map_err(CommitError::ledger)?;
    let mut reader = LedgerReader::from_start(settings).map_err(CommitError::ledger)?;
    let mut state = CommitState::default();
    let mut caught_up = false;
    loop {
        if *shutdown.borrow() {
            writer.flush().await.map_err(CommitError::ledger)?;
            tracing::info!(last = ?state.last_applied().map(|l| l.to_string()), "committer stopped");
            return Ok(());
        }
        let next = tokio::select! {
            next = reader.next(Duration::from_millis(500)) => next.map_err(CommitError::ledger)?,
            _ = shutdown.changed() => continue,
        };
        let Some((_, outcome)) = next else {
            if !caught_up {
                caught_up = true;
                tracing::info!(
                    last = ?state.last_applied().map(|l| l.to_string()),
                    keys = state.keys(),
                    "committer caught up with the ledger"
                );
            }
            writer.flush().await.map_err(CommitError::ledger)?;
            continue;
        };
        let Reassembled::Complete(transaction) = outcome else {
            continue;
        };
        let committed = state.apply(&transaction)?;
        let record = RootRecord {
            commit_lsn: committed.commit_lsn,
            root: committed.root,
            previous_root: committed.previous_root,
            ledger_hash: reader.chain_head(),
            changes: committed.changes,
        };
        if last_published.is_some_and(|last| record.commit_lsn <= last) {
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
    }
}
