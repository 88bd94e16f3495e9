//! The validator as a service (`walproof validate`).
//!
//! On start it reads where the shadow database stands (its progress row) and the last root it
//! attested (on `<prefix>.attestations`, under its own address). It then reads the ledger from
//! its first record — or, when it has a snapshot it can use ([`crate::snapshot`], written on
//! its last clean stop), from the snapshot's transaction on, with the tree, the replay and the
//! roots not attested yet as the snapshot holds them — verifying the chain: every transaction
//! goes through its own tree
//! ([`CommitState`], in memory), and the transactions after the shadow's progress are also
//! planned as SQL and queued for the [`ShadowWriter`], which applies them to the shadow
//! database in order on a task of its own, each whole in one SQL transaction with the progress
//! row — so the tree and the planning of the next transactions run while the shadow applies the
//! previous ones. At the progress row's transaction the ledger's hash and the recomputed root
//! must be those the row kept: the shadow was replayed from this ledger.
//!
//! Meanwhile it follows `<prefix>.roots`. Each published root is matched with the root this
//! validator computed for the same commit LSN once the shadow committed that transaction;
//! when they agree (root and ledger hash), it signs the EIP-712 root attestation and publishes
//! it. Every `audit_interval` it waits until the shadow has applied everything queued (tree
//! and shadow at the same transaction), then a deep audit compares the shadow's own rows with
//! the tree.
//!
//! A divergence — a record that breaks the chain, a change that does not apply, a published
//! root that differs or is missing, an audit that finds a row changed — is logged with its LSN,
//! table and key, counted in the metrics, recorded in the shadow database, and the validator
//! signs nothing from there: it keeps running so its status and metrics can be read, and a
//! restart keeps it stopped until an operator has removed the recorded divergence.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use walproof_committer::store::KeptRoot;
use walproof_committer::{CommitState, RowHashes};
use walproof_core::{Digest, Lsn, Reassembled, Transaction};
use walproof_transport::attestations::{AttestationsWriter, last_attested};
use walproof_transport::ledger::{Ahead, LedgerReader, READ_AHEAD, ensure_ledger_topic};
use walproof_transport::roots::{RootRecord, RootsFollower};
use walproof_transport::{KafkaSettings, TransportError};

use crate::attestation::{AttestationSigner, Domain, SignedAttestation};
use crate::audit::Audit;
use crate::divergence::{Divergence, DivergenceKind};
use crate::error::{Result, ValidateError};
use crate::metrics::ValidatorMetrics;
use crate::replay::Replay;
use crate::schema::TypeNames;
use crate::shadow::{Progress, Role, Shadow};
use crate::shadow_writer::{Applied, Outcome, ShadowWriter};
use crate::shadow_writer::{Planner, SharedPlanner, lock as lock_planner};
use crate::snapshot::{Computed, Snapshot};
use crate::withdrawal::{SignedApproval, Withdrawal, WithdrawalTable};

/// How the validator runs.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// The shadow database's URL.
    pub shadow_url: String,
    /// The chain and bridge attestations are signed for.
    pub domain: Domain,
    /// Time between two deep audits; zero turns them off.
    pub audit_interval: Duration,
    /// Shadow rows one audit reads.
    pub audit_rows: usize,
    /// The outbound table whose inserted rows this validator approves as withdrawals.
    pub withdrawals: Option<WithdrawalTable>,
    /// The key is new at each start (a TEE workload key): roots the shadow already holds were
    /// signed by an earlier key, or are not this key's to sign; it signs from there on.
    pub ephemeral_key: bool,
    /// Where the validator writes its snapshot, which the next start resumes from instead of
    /// the ledger's first record ([`crate::snapshot`]); `None`: no snapshot.
    pub state_dir: Option<std::path::PathBuf>,
    /// Time between two snapshots while running (written only when the ledger moved on);
    /// zero: only on a clean shutdown.
    pub snapshot_interval: Duration,
}

/// The longest a clean shutdown waits for the shadow to apply what is queued before it writes
/// the snapshot; past it, no snapshot is written (the next start reads the whole ledger).
pub const SNAPSHOT_SETTLE: Duration = Duration::from_secs(20);

/// What the validator shows while it runs: metrics, the latest attestations, a divergence.
#[derive(Debug, Default)]
pub struct ValidatorStatus {
    /// Counters and gauges.
    pub metrics: ValidatorMetrics,
    /// The most recent attestations, oldest first (at most [`KEPT_ATTESTATIONS`]).
    pub attestations: Mutex<VecDeque<SignedAttestation>>,
    /// The divergence that stopped the attestations, if one did.
    pub divergence: Mutex<Option<String>>,
    /// The most recent withdrawal approvals, oldest first (at most [`KEPT_ATTESTATIONS`]).
    pub approvals: Mutex<VecDeque<SignedApproval>>,
}

/// How many recent attestations [`ValidatorStatus`] keeps for relayers polling over HTTP.
pub const KEPT_ATTESTATIONS: usize = 10_000;

/// A transaction queued for the shadow and not reported yet.
#[derive(Debug, Clone, Copy)]
struct Applying {
    computed: Computed,
    changes: u64,
}

/// The running validator's state.
struct Validator<'a> {
    options: &'a ValidateOptions,
    signer: &'a dyn AttestationSigner,
    status: &'a ValidatorStatus,
    /// The shadow session for all but applying transactions: type names, the audit's reads,
    /// divergences. It never runs inside the writer's SQL transactions.
    shadow: Shadow,
    /// Applies the planned transactions, in order, on its own session and task.
    writer: ShadowWriter,
    /// What the writer has queued and not reported yet, in order.
    applying: VecDeque<Applying>,
    state: CommitState,
    /// The replay and the type names, shared with the writer, which plans what it applies.
    planner: SharedPlanner,
    /// Where the shadow stood at start; `None` once it is passed (or it was empty).
    progress: Option<Progress>,
    /// The last LSN this validator attested: before it started (its own records, or for a key
    /// new at each start the progress row's), then as it signs.
    attested: Option<Lsn>,
    /// Roots computed, whose transaction the shadow holds, not matched yet.
    ours: VecDeque<Computed>,
    /// Roots published, not matched yet, with their offsets.
    theirs: VecDeque<(i64, RootRecord)>,
    /// The last published root matched or passed over, with its offset: where a restart from
    /// a snapshot reads the roots topic again.
    roots_read: Option<(i64, RootRecord)>,
    /// Where the tree's last transaction ends in the ledger: offset and hash.
    last_read: Option<(i64, Digest)>,
    /// Withdrawals requested by transactions whose roots are not attested yet, by commit LSN.
    withdrawals: BTreeMap<Lsn, Vec<Withdrawal>>,
    publisher: AttestationsWriter,
    diverged: bool,
    /// The ledger's topic, which a snapshot names.
    ledger_topic: String,
    /// The snapshot being written on a blocking thread, if one is.
    writing: Option<SnapshotWrite>,
    /// Where in the ledger the last snapshot written (or resumed from) stands: a snapshot is
    /// written again only once the validator has read past it.
    snapshot_offset: Option<i64>,
}

/// A snapshot being written beside the running validator.
struct SnapshotWrite {
    task: tokio::task::JoinHandle<std::result::Result<(KeptRoot, usize), String>>,
    started: std::time::Instant,
}

/// Runs the validator until `shutdown` turns true or its means fail.
pub async fn run(
    settings: &KafkaSettings,
    options: &ValidateOptions,
    signer: &dyn AttestationSigner,
    status: &ValidatorStatus,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let timeout = Duration::from_secs(30);
    let wait = Duration::from_millis(200);
    // The checks' session sets the shadow's own tables up, before any other session.
    let shadow = Shadow::connect(&options.shadow_url, Role::Checks).await?;
    ensure_ledger_topic(settings, timeout).await?;
    let address = signer.address().to_checksum(None);
    let read_snapshot = async {
        let Some(dir) = options.state_dir.clone() else {
            return Ok(Ok(None));
        };
        tokio::task::spawn_blocking(move || Snapshot::read(&dir))
            .await
            .map_err(|err| ValidateError::Snapshot(err.to_string()))
    };
    let (writer_session, attested, progress, snapshot) = tokio::try_join!(
        Shadow::connect(&options.shadow_url, Role::Writer),
        async { Ok(last_attested(settings, &address, timeout).await?) },
        shadow.progress(),
        read_snapshot,
    )?;
    // A key new at this start has attested nothing: it resumes after what an earlier key of
    // this validator had attested, as the progress row recorded it.
    let mut attested = if options.ephemeral_key {
        attested.max(progress.and_then(|p| p.attested))
    } else {
        attested
    };
    let snapshot = snapshot.and_then(|snapshot| match snapshot {
        Some(snapshot) => {
            let ledger_topic = settings.ledger_topic();
            usable(
                &snapshot,
                &ledger_topic,
                progress.as_ref(),
                attested,
                options,
            )?;
            Ok(Some(snapshot))
        }
        None => Ok(None),
    });
    let snapshot = snapshot.unwrap_or_else(|why| {
        tracing::warn!(
            "the snapshot is set aside, the ledger is read from its first record: {why}"
        );
        None
    });
    // Reading, verifying and decoding the ledger, and hashing its rows, run beside the tree
    // and the planning.
    let (ledger, snapshot) = match snapshot {
        Some(snapshot) => {
            let at = snapshot.at;
            match LedgerReader::after(settings, at.ledger_offset, at.ledger_hash, timeout).await {
                Ok(reader) => (reader, Some(snapshot)),
                Err(err) => {
                    tracing::warn!(%err, "the snapshot is set aside, the ledger is read from its first record");
                    (LedgerReader::from_start(settings)?, None)
                }
            }
        }
        None => (LedgerReader::from_start(settings)?, None),
    };
    let mut ledger = ledger.read_ahead_with(READ_AHEAD, wait, RowHashes::of);
    let mut roots = match snapshot.as_ref().and_then(|s| s.roots_read) {
        Some((offset, last)) => RootsFollower::after(settings, offset, last, timeout).await?,
        None => RootsFollower::from_start(settings, timeout).await?,
    };
    let planner = SharedPlanner::default();
    let mut snapshot = snapshot;
    if let Some(snapshot) = &mut snapshot {
        lock_planner(&planner).replay = std::mem::take(&mut snapshot.replay);
    }
    let writer = ShadowWriter::start(writer_session, Arc::clone(&planner));
    let mut validator = Validator {
        options,
        signer,
        status,
        shadow,
        writer,
        applying: VecDeque::new(),
        state: CommitState::default(),
        planner,
        progress,
        attested,
        ours: VecDeque::new(),
        theirs: VecDeque::new(),
        roots_read: None,
        last_read: None,
        withdrawals: BTreeMap::new(),
        publisher: AttestationsWriter::new(settings)?,
        diverged: false,
        ledger_topic: settings.ledger_topic(),
        writing: None,
        snapshot_offset: None,
    };
    match snapshot {
        Some(snapshot) => {
            if options.ephemeral_key {
                attested = attested.max(snapshot.attested);
                validator.attested = attested;
            }
            tracing::info!(
                validator = %address,
                shadow_at = ?progress.map(|p| p.commit_lsn.to_string()),
                attested = ?attested.map(|l| l.to_string()),
                snapshot_at = %snapshot.at.commit_lsn,
                keys = snapshot.state.keys(),
                "validator starting: resuming from its snapshot, reading the ledger after offset {}",
                snapshot.at.ledger_offset
            );
            validator.resume(snapshot);
        }
        None => tracing::info!(
            validator = %address,
            shadow_at = ?progress.map(|p| p.commit_lsn.to_string()),
            attested = ?attested.map(|l| l.to_string()),
            "validator starting: reading the ledger from its first record"
        ),
    }
    if let Some(recorded) = validator.shadow.recorded_divergence().await? {
        tracing::error!(
            %recorded,
            "the shadow database records a divergence: this validator signs nothing until an operator has looked into it and deleted the rows of walproof_validator.divergences"
        );
        validator.status.metrics.diverged("recorded");
        *lock(&status.divergence) = Some(recorded);
        validator.diverged = true;
    }
    let mut audit = Audit::default();
    let mut audit_timer = tokio::time::interval(if options.audit_interval.is_zero() {
        Duration::from_secs(3600)
    } else {
        options.audit_interval
    });
    audit_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let periodic_snapshots = options.state_dir.is_some() && !options.snapshot_interval.is_zero();
    let snapshot_every = if periodic_snapshots {
        options.snapshot_interval
    } else {
        Duration::from_secs(3600)
    };
    let mut snapshot_timer =
        tokio::time::interval_at(tokio::time::Instant::now() + snapshot_every, snapshot_every);
    snapshot_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut caught_up = false;
    loop {
        if *shutdown.borrow() {
            return validator.stop().await;
        }
        if validator.diverged {
            // Nothing more is applied; only roots verified before the divergence are still
            // signed, as their published roots arrive.
            if validator.ours.is_empty() {
                validator.publisher.flush().await?;
                let _ = shutdown.changed().await;
                continue;
            }
            tokio::select! {
                root = roots.next(wait) => match root {
                    Ok(Some(read)) => validator.theirs.push_back(read),
                    Ok(None) => {}
                    Err(err @ TransportError::InvalidRoot { .. }) => {
                        tracing::error!(%err, "the roots topic is not valid: nothing more is signed");
                        validator.ours.clear();
                    }
                    Err(err) => return Err(err.into()),
                },
                _ = shutdown.changed() => {}
            }
            validator.attest_agreed().await?;
            continue;
        }
        tokio::select! {
            next = ledger.next() => match next {
                Ok(Some(Ahead {
                    offset,
                    outcome: Reassembled::Complete(transaction),
                    head,
                    computed,
                })) => {
                    caught_up = false;
                    let hashes = computed.unwrap_or_default();
                    validator
                        .transaction(&Arc::new(transaction), hashes, offset, head)
                        .await?;
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    if !caught_up && validator.state.last_applied().is_some() {
                        caught_up = true;
                        validator.publisher.flush().await?;
                        tracing::info!(
                            applied = ?validator.state.last_applied().map(|l| l.to_string()),
                            keys = validator.state.keys(),
                            "validator caught up with the ledger"
                        );
                    }
                }
                Err(err) => validator.ledger_failed(err).await?,
            },
            root = roots.next(wait) => match root {
                Ok(Some(read)) => validator.theirs.push_back(read),
                Ok(None) => {}
                Err(err @ TransportError::InvalidRoot { .. }) => {
                    validator
                        .diverge(Divergence::new(DivergenceKind::Roots, None, err.to_string()))
                        .await?;
                }
                Err(err) => return Err(err.into()),
            },
            outcome = validator.writer.next(), if !validator.applying.is_empty() => {
                validator.applied(outcome).await?;
            }
            _ = audit_timer.tick(), if !options.audit_interval.is_zero() && validator.progress.is_none() => {
                validator.audit(&mut audit).await?;
            }
            _ = snapshot_timer.tick(), if periodic_snapshots => {
                validator.snapshot_while_running().await?;
            }
            _ = shutdown.changed() => {}
        }
        validator.applied_so_far().await?;
        validator.attest_agreed().await?;
        if validator
            .writing
            .as_ref()
            .is_some_and(|writing| writing.task.is_finished())
        {
            validator.snapshot_written().await;
        }
    }
}

/// Whether the validator can resume from `snapshot`, with its shadow at `progress` and its
/// key's last attestation at `attested`; `Err` says why not.
fn usable(
    snapshot: &Snapshot,
    ledger_topic: &str,
    progress: Option<&Progress>,
    attested: Option<Lsn>,
    options: &ValidateOptions,
) -> std::result::Result<(), String> {
    snapshot.usable(progress, ledger_topic)?;
    // The roots it had attested are on the topic (it was flushed before the snapshot was
    // written); a key new at each start resumes after them instead.
    if !options.ephemeral_key && snapshot.attested > attested {
        return Err(format!(
            "it had attested up to {}, the attestations topic holds this key's up to {}",
            snapshot.attested.map_or("none".into(), |l| l.to_string()),
            attested.map_or("none".into(), |l| l.to_string()),
        ));
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Validator<'_> {
    /// Takes the state `snapshot` holds (its replay is the planner's already): the tree, the
    /// roots verified and the withdrawals not attested yet, where the roots topic was read.
    fn resume(&mut self, snapshot: Snapshot) {
        let attested = self.attested;
        let unattested = |lsn: Lsn| attested.is_none_or(|attested| lsn > attested);
        self.ours = snapshot
            .verified
            .into_iter()
            .filter(|computed| unattested(computed.commit_lsn))
            .collect();
        for withdrawal in snapshot.withdrawals {
            if unattested(withdrawal.commit_lsn) {
                self.withdrawals
                    .entry(withdrawal.commit_lsn)
                    .or_default()
                    .push(withdrawal);
            }
        }
        self.roots_read = snapshot.roots_read;
        self.last_read = Some((snapshot.at.ledger_offset, snapshot.at.ledger_hash));
        self.snapshot_offset = Some(snapshot.at.ledger_offset);
        self.state = snapshot.state;
        if self
            .progress
            .is_some_and(|progress| progress.commit_lsn == snapshot.at.commit_lsn)
        {
            tracing::info!(at = %snapshot.at.commit_lsn, root = %snapshot.at.root, "the shadow database resumes after its last transaction");
            self.progress = None;
        }
    }

    /// A clean shutdown. With a state directory (and no divergence), the shadow first applies
    /// what is queued, for at most [`SNAPSHOT_SETTLE`], the roots agreed so far are signed, and
    /// then the snapshot is written (unless the last one stands where the validator does).
    /// Without one, what the writer has queued is dropped: the progress row keeps where the
    /// shadow stands, and a restart replays the rest from the ledger.
    async fn stop(&mut self) -> Result<()> {
        // A snapshot being written while running is finished first: one writer at a time.
        self.snapshot_written().await;
        let snapshot = self.options.state_dir.is_some()
            && !self.diverged
            && self.settle_for_snapshot().await?;
        if snapshot {
            self.attest_agreed().await?;
        }
        self.writer.stop();
        self.publisher.flush().await?;
        let applied = self.state.last_applied();
        if snapshot && !self.diverged {
            if self.snapshot_current() {
                tracing::info!(
                    "the snapshot stands where the validator stopped: it is not written again"
                );
            } else {
                let state = std::mem::take(&mut self.state);
                self.write_snapshot(state);
                self.snapshot_written().await;
            }
        }
        tracing::info!(applied = ?applied.map(|l| l.to_string()), "validator stopped");
        Ok(())
    }

    /// A snapshot while running, once the validator has read past the last one: the shadow
    /// applies what is queued (so the snapshot is not ahead of it), the roots agreed so far are
    /// signed, and a copy of the tree is written on a blocking thread while the validator
    /// goes on. Skipped while the last one is still being written.
    async fn snapshot_while_running(&mut self) -> Result<()> {
        if self.options.state_dir.is_none() || self.writing.is_some() || self.snapshot_current() {
            return Ok(());
        }
        if !self.settle_for_snapshot().await? {
            return Ok(());
        }
        self.attest_agreed().await?;
        if self.diverged {
            return Ok(());
        }
        // What the snapshot says was attested has reached the broker (a restart trusts it).
        self.publisher.flush().await?;
        let copying = std::time::Instant::now();
        let state = self.state.in_memory_copy();
        tracing::debug!(
            seconds = copying.elapsed().as_secs_f64(),
            keys = state.keys(),
            "the tree copied for a snapshot"
        );
        self.write_snapshot(state);
        Ok(())
    }

    /// Whether the last snapshot written (or resumed from) stands where the validator has read.
    fn snapshot_current(&self) -> bool {
        self.snapshot_offset.is_some()
            && self.last_read.map(|(offset, _)| offset) == self.snapshot_offset
    }

    /// Lets the shadow apply what is queued, for at most [`SNAPSHOT_SETTLE`], so that a snapshot
    /// is not ahead of it; a queued transaction that does not apply is recorded as the
    /// divergence. False when the shadow did not settle in time, or diverged: no snapshot then.
    async fn settle_for_snapshot(&mut self) -> Result<bool> {
        match tokio::time::timeout(SNAPSHOT_SETTLE, self.settle()).await {
            Ok(settled) => match settled? {
                Some(divergence) => {
                    self.record(divergence).await?;
                    Ok(false)
                }
                None => Ok(true),
            },
            Err(_) => {
                tracing::warn!(
                    "the shadow database did not apply what was queued within {} s: no snapshot is written now",
                    SNAPSHOT_SETTLE.as_secs()
                );
                Ok(false)
            }
        }
    }

    /// Starts writing the snapshot of where the validator stands, with `state` (its tree,
    /// taken or copied), on a blocking thread; [`Validator::snapshot_written`] waits for it.
    fn write_snapshot(&mut self, mut state: CommitState) {
        let (Some(dir), Some((ledger_offset, ledger_hash))) =
            (self.options.state_dir.clone(), self.last_read)
        else {
            return;
        };
        let replay = lock_planner(&self.planner).replay.clone();
        let verified: Vec<Computed> = self.ours.iter().copied().collect();
        let withdrawals: Vec<Withdrawal> = self.withdrawals.values().flatten().copied().collect();
        let (roots_read, attested) = (self.roots_read, self.attested);
        let ledger_topic = self.ledger_topic.clone();
        let task = tokio::task::spawn_blocking(move || {
            Snapshot::write(
                &dir,
                &ledger_topic,
                &mut state,
                ledger_hash,
                ledger_offset,
                &replay,
                &verified,
                &withdrawals,
                roots_read,
                attested,
            )
            .map(|at| (at, state.keys()))
        });
        self.writing = Some(SnapshotWrite {
            task,
            started: std::time::Instant::now(),
        });
    }

    /// Waits for the snapshot being written, if one is, and logs how it went. A snapshot only
    /// saves time at the next start: one not written is no failure.
    async fn snapshot_written(&mut self) {
        let Some(writing) = self.writing.take() else {
            return;
        };
        let written = writing
            .task
            .await
            .map_err(|err| err.to_string())
            .and_then(|written| written);
        match written {
            Ok((at, keys)) => {
                self.snapshot_offset = Some(at.ledger_offset);
                let dir = self.options.state_dir.as_deref().map(crate::snapshot::path);
                tracing::info!(
                    at = %at.commit_lsn,
                    keys,
                    seconds = writing.started.elapsed().as_secs_f64(),
                    "snapshot written to {}: the next start reads the ledger after offset {}",
                    dir.unwrap_or_default().display(),
                    at.ledger_offset
                );
            }
            Err(err) => tracing::warn!(
                "no snapshot written, the next start reads the ledger from the last snapshot or its first record: {err}"
            ),
        }
    }

    /// A divergence found while reading, replaying or checking roots; see [`Validator::record`].
    ///
    /// A ledger or replay divergence lies after every transaction queued for the shadow: those
    /// were verified before it, so the shadow applies them first and their roots are signed as
    /// before. Should one of them not apply, that one is the divergence: a validator applying
    /// one transaction at a time would have stopped there and never seen the later one.
    async fn diverge(&mut self, divergence: Divergence) -> Result<()> {
        let divergence = match divergence.kind {
            DivergenceKind::Ledger | DivergenceKind::Replay => match self.settle().await? {
                Some(earlier) => {
                    tracing::warn!(later = %divergence, "found after a divergence of an earlier transaction");
                    earlier
                }
                None => divergence,
            },
            DivergenceKind::Root | DivergenceKind::Roots | DivergenceKind::Audit => divergence,
        };
        self.record(divergence).await
    }

    /// Records a divergence. Nothing is applied after it (the writer stops; what it had queued
    /// is dropped); the roots computed before it whose transactions the shadow holds (all of
    /// them verified) are still signed when their published roots agree, unless the
    /// divergence is about the roots or the shadow itself.
    async fn record(&mut self, divergence: Divergence) -> Result<()> {
        self.writer.stop();
        self.applying.clear();
        tracing::error!(%divergence, "divergence: this validator stops attesting");
        if matches!(
            divergence.kind,
            DivergenceKind::Root | DivergenceKind::Roots | DivergenceKind::Audit
        ) {
            self.ours.clear();
        }
        self.status.metrics.diverged(divergence.kind.label());
        *lock(&self.status.divergence) = Some(divergence.to_string());
        self.shadow.record_divergence(&divergence).await?;
        self.diverged = true;
        self.publisher.flush().await?;
        Ok(())
    }

    /// A ledger read failure: a record that fails verification is a divergence, anything else
    /// (the broker gone) stops the validator.
    async fn ledger_failed(&mut self, err: TransportError) -> Result<()> {
        match err {
            TransportError::ChainBroken { .. }
            | TransportError::InvalidRecord { .. }
            | TransportError::OutOfOrder { .. } => {
                let lsn = self.state.last_applied();
                self.diverge(Divergence::new(
                    DivergenceKind::Ledger,
                    None,
                    format!(
                        "{err} (the last transaction verified is {})",
                        lsn.map_or("none".to_owned(), |l| l.to_string())
                    ),
                ))
                .await
            }
            err => Err(err.into()),
        }
    }

    /// One whole transaction: through the tree, then planned and queued for the shadow unless
    /// the shadow holds it already. Its root is verified once the shadow committed it.
    async fn transaction(
        &mut self,
        transaction: &Arc<Transaction>,
        hashes: RowHashes,
        offset: i64,
        ledger_hash: Digest,
    ) -> Result<()> {
        let lsn = transaction.commit_lsn;
        let replay = |detail: String| Divergence::new(DivergenceKind::Replay, Some(lsn), detail);
        let missing = Replay::missing_types(transaction, &lock_planner(&self.planner).types);
        let missing = match missing {
            Ok(missing) => missing,
            Err(err) => return self.diverge(replay(err.to_string())).await,
        };
        if !missing.is_empty() {
            // Named before the transaction is queued: the writer plans it with them.
            let mut named = TypeNames::default();
            self.shadow.name_types(&mut named, &missing).await?;
            lock_planner(&self.planner).types.merge(named);
        }
        let committed = match self.state.apply_hashed(transaction, hashes) {
            Ok(committed) => committed,
            Err(err) => return self.diverge(replay(err.to_string())).await,
        };
        self.last_read = Some((offset, ledger_hash));
        if self.attested.is_none_or(|attested| lsn > attested) {
            self.requested_withdrawals(transaction);
        }
        let computed = Computed {
            commit_lsn: lsn,
            root: committed.root,
            ledger_hash,
            commit_time_us: transaction.commit_time_us,
        };
        match self.progress {
            Some(progress) if lsn <= progress.commit_lsn => {
                let followed = {
                    let mut planner = lock_planner(&self.planner);
                    let Planner { replay, types } = &mut *planner;
                    replay.follow(transaction, types)
                };
                if let Err(err) = followed {
                    return self.diverge(replay(err.to_string())).await;
                }
                if lsn == progress.commit_lsn {
                    if (ledger_hash, committed.root) != (progress.ledger_hash, progress.root) {
                        return self
                            .diverge(Divergence::new(
                                DivergenceKind::Ledger,
                                Some(lsn),
                                format!(
                                    "the shadow database was replayed to ledger hash {} and root {}, this ledger gives {ledger_hash} and {}: it is not the ledger the shadow was replayed from",
                                    progress.ledger_hash, progress.root, committed.root
                                ),
                            ))
                            .await;
                    }
                    tracing::info!(at = %lsn, root = %committed.root, "the shadow database resumes after its last transaction");
                    self.progress = None;
                }
            }
            Some(progress) => {
                return self
                    .diverge(Divergence::new(
                        DivergenceKind::Ledger,
                        Some(lsn),
                        format!(
                            "the shadow database holds transactions up to {}, which the ledger does not have",
                            progress.commit_lsn
                        ),
                    ))
                    .await;
            }
            None => {
                let progress = Progress {
                    commit_lsn: lsn,
                    ledger_offset: offset,
                    ledger_hash,
                    root: committed.root,
                    attested: self.attested,
                };
                // Outcomes already in keep the roots to sign moving while the queue is full.
                self.applied_so_far().await?;
                let queued = Arc::clone(transaction);
                if self.diverged || !self.writer.send(queued, progress).await {
                    // The writer stopped at a divergence its outcomes report: not applied.
                    return Ok(());
                }
                // Its root waits for the shadow to commit it.
                self.applying.push_back(Applying {
                    computed,
                    changes: transaction.changes.len() as u64,
                });
                return Ok(());
            }
        }
        // The shadow already holds it; nothing is queued before it (the progress row's
        // transactions come first), so the roots stay in LSN order.
        self.verified(computed);
        Ok(())
    }

    /// Keeps the withdrawals `transaction` requests until its root is attested; logs each row
    /// of the outbound table that is not a payable withdrawal, with its position.
    fn requested_withdrawals(&mut self, transaction: &Transaction) {
        let Some(table) = &self.options.withdrawals else {
            return;
        };
        let mut payable = Vec::new();
        for request in crate::withdrawal::requested(transaction, table) {
            match request {
                Ok(withdrawal) => payable.push(withdrawal),
                Err(rejected) => {
                    self.status
                        .metrics
                        .withdrawals_rejected
                        .fetch_add(1, Relaxed);
                    tracing::error!(%rejected, "not approved");
                }
            }
        }
        if !payable.is_empty() {
            self.withdrawals.insert(transaction.commit_lsn, payable);
        }
    }

    /// A root whose transaction the shadow holds: to be matched and signed.
    fn verified(&mut self, computed: Computed) {
        if self
            .attested
            .is_none_or(|attested| computed.commit_lsn > attested)
        {
            self.ours.push_back(computed);
        }
    }

    /// Handles the writer's next outcome: a committed transaction's root is verified; one that
    /// did not apply is recorded as the divergence it is.
    async fn applied(&mut self, outcome: Result<Outcome>) -> Result<()> {
        match self.outcome(outcome)? {
            Some(divergence) => self.record(divergence).await,
            None => Ok(()),
        }
    }

    /// Handles the outcomes the writer has reported so far, without waiting.
    async fn applied_so_far(&mut self) -> Result<()> {
        while !self.applying.is_empty() {
            let Some(outcome) = self.writer.try_next() else {
                break;
            };
            self.applied(outcome).await?;
            if self.diverged {
                break;
            }
        }
        Ok(())
    }

    /// Waits until the shadow has applied everything queued, so that it stands at the tree's
    /// transaction. Returns the divergence of a queued transaction that did not apply (not
    /// recorded yet: the caller does).
    async fn settle(&mut self) -> Result<Option<Divergence>> {
        while !self.applying.is_empty() {
            let outcome = self.writer.next().await;
            if let Some(divergence) = self.outcome(outcome)? {
                return Ok(Some(divergence));
            }
        }
        Ok(None)
    }

    /// One outcome of the writer, for the oldest transaction queued: counts it and verifies
    /// its root when it committed, returns its divergence when it did not apply.
    fn outcome(&mut self, outcome: Result<Outcome>) -> Result<Option<Divergence>> {
        let outcome = outcome?;
        let Some(applying) = self.applying.pop_front() else {
            return Err(ValidateError::WriterStopped);
        };
        debug_assert_eq!(
            outcome.commit_lsn, applying.computed.commit_lsn,
            "the writer reports in queue order"
        );
        match outcome.applied {
            Applied::Committed => {
                let metrics = &self.status.metrics;
                metrics.transactions.fetch_add(1, Relaxed);
                metrics.changes.fetch_add(applying.changes, Relaxed);
                metrics
                    .applied_lsn
                    .store(outcome.commit_lsn.as_u64(), Relaxed);
                self.verified(applying.computed);
                Ok(None)
            }
            Applied::Diverged(divergence) => Ok(Some(divergence)),
        }
    }

    /// Matches computed and published roots, in LSN order: signs those that agree.
    async fn attest_agreed(&mut self) -> Result<()> {
        loop {
            let (Some(ours), Some((_, theirs))) =
                (self.ours.front().copied(), self.theirs.front().copied())
            else {
                return Ok(());
            };
            if self
                .attested
                .is_some_and(|attested| theirs.commit_lsn <= attested)
            {
                self.roots_read = self.theirs.pop_front();
                continue;
            }
            let divergence = if theirs.commit_lsn < ours.commit_lsn {
                Divergence::new(
                    DivergenceKind::Roots,
                    Some(theirs.commit_lsn),
                    format!(
                        "the roots topic publishes a root for {}, a transaction the ledger does not have (the next one is {})",
                        theirs.commit_lsn, ours.commit_lsn
                    ),
                )
            } else if theirs.commit_lsn > ours.commit_lsn {
                Divergence::new(
                    DivergenceKind::Roots,
                    Some(ours.commit_lsn),
                    format!(
                        "the roots topic skips {}: its next root is for {}",
                        ours.commit_lsn, theirs.commit_lsn
                    ),
                )
            } else if (theirs.root, theirs.ledger_hash) != (ours.root, ours.ledger_hash) {
                Divergence::new(
                    DivergenceKind::Root,
                    Some(ours.commit_lsn),
                    format!(
                        "the roots topic publishes root {} (ledger hash {}), this validator computed {} (ledger hash {})",
                        theirs.root, theirs.ledger_hash, ours.root, ours.ledger_hash
                    ),
                )
            } else {
                self.ours.pop_front();
                self.roots_read = self.theirs.pop_front();
                self.attest(ours).await?;
                continue;
            };
            return self.diverge(divergence).await;
        }
    }

    /// Signs and publishes the root attestation of an agreed root, after the approvals of the
    /// withdrawals its transaction requested (so a restart that finds the root attested has
    /// published them; one that does not signs them again, identically).
    async fn attest(&mut self, computed: Computed) -> Result<()> {
        while let Some(entry) = self.withdrawals.first_entry() {
            if *entry.key() > computed.commit_lsn {
                break;
            }
            for withdrawal in entry.remove() {
                let approval = SignedApproval::sign(self.signer, self.options.domain, withdrawal)
                    .map_err(|err| ValidateError::Sign(err.to_string()))?;
                self.publisher
                    .publish(&approval.topic_key(), &approval.to_json())
                    .await?;
                self.status
                    .metrics
                    .withdrawals_approved
                    .fetch_add(1, Relaxed);
                let mut kept = lock(&self.status.approvals);
                if kept.len() >= KEPT_ATTESTATIONS {
                    kept.pop_front();
                }
                kept.push_back(approval);
                drop(kept);
                tracing::info!(
                    id = withdrawal.id,
                    recipient = %withdrawal.recipient,
                    amount = %withdrawal.amount,
                    at = %withdrawal.commit_lsn,
                    "withdrawal approved"
                );
            }
        }
        let attestation = SignedAttestation::sign(
            self.signer,
            self.options.domain,
            computed.commit_lsn,
            computed.root,
            computed.ledger_hash,
        )
        .map_err(|err| ValidateError::Sign(err.to_string()))?;
        self.publisher
            .publish(&attestation.topic_key(), &attestation.to_json())
            .await?;
        // Recorded in the next progress row: where a key new at the next start resumes.
        self.attested = Some(computed.commit_lsn);
        let metrics = &self.status.metrics;
        metrics.roots_agreed.fetch_add(1, Relaxed);
        metrics.attestations.fetch_add(1, Relaxed);
        metrics
            .attested_lsn
            .store(computed.commit_lsn.as_u64(), Relaxed);
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        metrics.attestation_latency_us_sum.fetch_add(
            u64::try_from(now_us - computed.commit_time_us).unwrap_or(0),
            Relaxed,
        );
        let mut kept = lock(&self.status.attestations);
        if kept.len() >= KEPT_ATTESTATIONS {
            kept.pop_front();
        }
        kept.push_back(attestation);
        Ok(())
    }

    /// A deep audit, once the shadow has applied everything queued: the audit compares the
    /// shadow's rows with the tree, so both must stand at the same transaction. The wait is at
    /// most the writer's queue, so an audit is never put off for good under constant load.
    async fn audit(&mut self, audit: &mut Audit) -> Result<()> {
        if let Some(divergence) = self.settle().await? {
            return self.record(divergence).await;
        }
        // The writer is idle: it has applied everything queued.
        let tables = lock_planner(&self.planner).replay.shadow().clone();
        let audited = audit
            .run(&self.shadow, &tables, &self.state, self.options.audit_rows)
            .await?;
        let metrics = &self.status.metrics;
        metrics.audits.fetch_add(1, Relaxed);
        metrics.audited_rows.fetch_add(audited.rows, Relaxed);
        if let Some(problem) = audited.problem {
            let lsn = self.state.last_applied();
            return self
                .diverge(Divergence::new(DivergenceKind::Audit, lsn, problem))
                .await;
        }
        Ok(())
    }
}
