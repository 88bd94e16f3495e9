//! The archiver as a service: follows `<prefix>.ledger` and rolls whole transactions into the
//! archive ([`crate::archiver`]), until told to stop.
//!
//! It resumes the ledger just after the archive's position, checking that the record there has
//! the hash the index kept (the archive belongs to this ledger). On stop it rolls what is
//! buffered, so a clean restart has nothing to redo; after a crash it redoes what was buffered
//! and rolls a begun roll again at the same transaction.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;
use walproof_core::{Digest, Lsn, Reassembled};
use walproof_transport::KafkaSettings;
use walproof_transport::ledger::{LedgerReader, ensure_ledger_topic};
use walproof_transport::roots::{RootRecord, read_roots_after};

use crate::archiver::{ArchiveError, Archiver, Position, RollSettings, Rolled};
use crate::objects::Objects;
use crate::seal::Sealer;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs until `shutdown` turns true (then what is buffered is rolled) or an error; with a
/// `sealer`, every object is sealed.
pub async fn run(
    settings: &KafkaSettings,
    objects: Objects,
    roll: RollSettings,
    sealer: Option<Sealer>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ArchiveError> {
    ensure_ledger_topic(settings, TIMEOUT)
        .await
        .map_err(ArchiveError::ledger)?;
    let place = objects.place();
    let sealed = sealer.is_some();
    let mut archiver = Archiver::open(objects, &settings.topic_prefix, roll, sealer).await?;
    let position = archiver.position();
    tracing::info!(
        archive = %place,
        files = archiver.index().files.len(),
        sealed,
        position = ?position.map(|p| p.commit_lsn.to_string()),
        pending = ?archiver.index().pending.map(|p| p.commit_lsn.to_string()),
        "archiver starting"
    );
    let mut roots = CommittedRoots::default();
    let mut reader = match position {
        Some(p) => LedgerReader::after(settings, p.ledger_offset, p.ledger_hash, TIMEOUT).await,
        None => LedgerReader::from_start(settings),
    }
    .map_err(ArchiveError::ledger)?;
    loop {
        if *shutdown.borrow() {
            if archiver.may_roll() {
                roll_logged(&mut archiver, settings, &mut roots).await?;
            }
            tracing::info!(
                position = ?archiver.position().map(|p| p.commit_lsn.to_string()),
                "archiver stopped"
            );
            return Ok(());
        }
        let next = tokio::select! {
            next = reader.next(Duration::from_millis(200)) => next.map_err(ArchiveError::ledger)?,
            _ = shutdown.changed() => continue,
        };
        match next {
            Some((offset, Reassembled::Complete(transaction))) => {
                let position = Position {
                    commit_lsn: transaction.commit_lsn,
                    ledger_offset: offset,
                    ledger_hash: reader.chain_head(),
                };
                archiver.add(&transaction, position)?;
            }
            Some(_) => continue,
            None => {}
        }
        if archiver.due() {
            roll_logged(&mut archiver, settings, &mut roots).await?;
        }
    }
}

async fn roll_logged(
    archiver: &mut Archiver,
    settings: &KafkaSettings,
    roots: &mut CommittedRoots,
) -> Result<(), ArchiveError> {
    roots.catch_up(settings).await;
    let rolled = archiver.roll(|lsn| roots.by_lsn.get(&lsn).copied()).await?;
    if let Some(Rolled { through, files }) = rolled {
        tracing::info!(
            through = %through.commit_lsn,
            files = files.len(),
            rows = files.iter().map(|f| f.rows).sum::<u64>(),
            with_roots = files.iter().filter(|f| f.root.is_some()).count(),
            "rolled"
        );
        // Rolls go forward: roots at or before this one are not asked for again.
        roots.by_lsn = roots.by_lsn.split_off(&through.commit_lsn);
    }
    Ok(())
}

/// The roots the committer has published, read from `<prefix>.roots` as far as it goes, a
/// little more at each roll.
#[derive(Debug, Default)]
struct CommittedRoots {
    by_lsn: BTreeMap<Lsn, Digest>,
    /// The last root read, and its offset.
    last: Option<(i64, RootRecord)>,
}

impl CommittedRoots {
    async fn catch_up(&mut self, settings: &KafkaSettings) {
        match read_roots_after(settings, self.last, TIMEOUT).await {
            Ok(new) => {
                self.by_lsn
                    .extend(new.iter().map(|(_, r)| (r.commit_lsn, r.root)));
                self.last = new.last().copied().or(self.last);
            }
            Err(err) => {
                tracing::warn!(%err, "the roots topic could not be read: manifests go without roots for now");
            }
        }
    }
}
