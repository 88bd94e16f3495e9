//! The shadow writer: a task of its own that plans transactions as SQL and applies them to the
//! shadow database, in ledger order, while the validator reads the next ones and applies them
//! to its tree.
//!
//! Why a task of its own: applied inline, the validator and its shadow session's backend take
//! turns (the validator applies a transaction to its tree and plans its SQL, then waits while
//! the shadow applies it). Here the tree takes transaction N + 1 while the writer plans N and
//! the shadow applies it.
//!
//! What it guarantees:
//! - each transaction is planned ([`Replay::plan`], with the [`Planner`] it shares with the
//!   validator) and applied whole in one SQL transaction with its progress row (or that of
//!   the last of its group), checked statement by statement before it commits
//!   ([`Shadow::stage`], [`Shadow::stage_group`]), in the order it was queued; one that cannot
//!   be planned is a replay divergence;
//! - each outcome is reported, in the same order; the validator matches and signs a root only
//!   once its transaction is reported committed;
//! - after a transaction that does not apply ([`Applied::Diverged`]), or an error of the shadow
//!   database, the writer applies nothing more: what was queued behind it is dropped.
//!
//! Round trips: a transaction applied and checked is committed at once when nothing else is
//! queued; when the next one is queued already, its COMMIT travels in the same round trip as
//! the next one's statements. One round trip per transaction instead of two (and half the
//! wake-ups of two processes) while the validator is behind, no wait when it is not. Small
//! transactions queued together go further: up to [`GROUP_TRANSACTIONS`] of them in one SQL
//! transaction and one round trip, with the progress row of the last. Each is still applied
//! whole and exactly once, as the progress row commits with them; one that does not apply
//! sends its group back to go one by one, so the divergence names it as before.
//!
//! The queue holds at most [`QUEUED_TRANSACTIONS`] transactions and [`QUEUED_CHANGES`]
//! changes; a bigger transaction waits until the queue is empty and goes alone. So the
//! transactions held for the shadow stay bounded, and the validator's tree is at most that far
//! ahead of its shadow. Transactions are planned in order as they are taken from the queue.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use walproof_core::{Lsn, Transaction};

use crate::divergence::{Divergence, DivergenceKind};
use crate::error::{Result, ValidateError};
use crate::replay::{Replay, ReplayError, Statement};
use crate::schema::TypeNames;
use crate::shadow::{Progress, Shadow, Staged};

/// Most transactions queued for the shadow (not counting the one being applied).
pub const QUEUED_TRANSACTIONS: usize = 64;

/// Most changes of the transactions queued for the shadow.
pub const QUEUED_CHANGES: usize = 100_000;

/// Most small transactions applied together in one SQL transaction.
pub const GROUP_TRANSACTIONS: usize = 64;

/// What turns transactions into SQL: the replay, which follows the shadow's tables through the
/// stream, and the names of the column types. The validator names the types a transaction
/// needs before it queues it, and follows the transactions the shadow holds already at start;
/// the writer plans what it applies.
#[derive(Debug, Default)]
pub struct Planner {
    /// The replay.
    pub replay: Replay,
    /// The column types named so far.
    pub types: TypeNames,
}

/// A [`Planner`] shared by the validator and its writer.
pub type SharedPlanner = Arc<Mutex<Planner>>;

/// Locks `planner`; a panic while it was held leaves it as it was, which is still usable.
pub fn lock(planner: &SharedPlanner) -> MutexGuard<'_, Planner> {
    planner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What applying a transaction came to.
#[derive(Debug)]
pub enum Applied {
    /// Committed, progress row included.
    Committed,
    /// Rolled back: the transaction does not apply to the shadow.
    Diverged(Divergence),
}

/// What applying one queued transaction came to.
#[derive(Debug)]
pub struct Outcome {
    /// The transaction's commit LSN.
    pub commit_lsn: Lsn,
    /// Committed with its progress row, or rolled back as a divergence.
    pub applied: Applied,
}

/// A transaction waiting for the shadow, with its share of the budget of changes.
struct Queued {
    transaction: Arc<Transaction>,
    progress: Progress,
    /// Released when the transaction was applied (or dropped).
    _changes: OwnedSemaphorePermit,
}

/// The handle of the writer task: queues planned transactions and receives their outcomes.
///
/// Not `Clone`: one owner queues, in ledger order, and reads the outcomes in that order.
#[derive(Debug)]
pub struct ShadowWriter {
    /// `None` once stopped.
    queue: Option<mpsc::Sender<Queued>>,
    outcomes: mpsc::UnboundedReceiver<Result<Outcome>>,
    changes: Arc<Semaphore>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("commit_lsn", &self.progress.commit_lsn)
            .field("changes", &self.transaction.changes.len())
            .finish_non_exhaustive()
    }
}

impl ShadowWriter {
    /// Starts the writer on its own task; it owns `shadow`, a session no one else uses (a
    /// session is one SQL transaction at a time: the validator's other queries use another),
    /// and plans with `planner`.
    pub fn start(shadow: Shadow, planner: SharedPlanner) -> ShadowWriter {
        let (queue, queued) = mpsc::channel(QUEUED_TRANSACTIONS);
        let (reports, outcomes) = mpsc::unbounded_channel();
        let task = tokio::spawn(apply_in_order(shadow, planner, queued, reports));
        ShadowWriter {
            queue: Some(queue),
            outcomes,
            changes: Arc::new(Semaphore::new(QUEUED_CHANGES)),
            task,
        }
    }

    /// Queues `transaction`, to be planned and applied with its `progress` row, waiting while
    /// the queue is full. The planner must know its column types already. Returns `false` when
    /// the writer has stopped (after a divergence or an error, which its outcomes report): the
    /// transaction is not applied.
    pub async fn send(&mut self, transaction: Arc<Transaction>, progress: Progress) -> bool {
        let Some(queue) = &self.queue else {
            return false;
        };
        // A transaction larger than the whole budget takes all of it, so it goes alone.
        let size = transaction.changes.len().clamp(1, QUEUED_CHANGES);
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        let Ok(changes) = self.changes.clone().acquire_many_owned(permits).await else {
            return false;
        };
        queue
            .send(Queued {
                transaction,
                progress,
                _changes: changes,
            })
            .await
            .is_ok()
    }

    /// The next outcome, in queue order; waits for it. Call it only while a transaction is
    /// queued (the caller counts them): the writer reports each one it took, and `Err` means
    /// the shadow database failed, or the writer is gone ([`ValidateError::WriterStopped`]).
    ///
    /// Cancel-safe: an outcome not returned stays for the next call.
    pub async fn next(&mut self) -> Result<Outcome> {
        match self.outcomes.recv().await {
            Some(outcome) => outcome,
            None => Err(ValidateError::WriterStopped),
        }
    }

    /// The next outcome if one is there already.
    pub fn try_next(&mut self) -> Option<Result<Outcome>> {
        match self.outcomes.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => Some(Err(ValidateError::WriterStopped)),
        }
    }

    /// Stops the writer: nothing queued is applied from now on. A transaction being applied
    /// is cut off with its session, and the shadow database rolls it back unless its COMMIT
    /// was already on its way: either way its progress row stays with the rows it describes.
    /// Outcomes already reported can still be read.
    pub fn stop(&mut self) {
        self.queue = None;
        self.changes.close();
        self.task.abort();
    }
}

impl Drop for ShadowWriter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A queued transaction and its plan.
type Planned = (Queued, std::result::Result<Vec<Statement>, ReplayError>);

/// The writer task: plans and applies what is queued, in order, and reports each outcome; stops
/// at the first transaction that does not commit.
///
/// A transaction applied and checked is committed on its own when nothing else is queued;
/// when the next one is queued already, its COMMIT goes in the same round trip as the next
/// one's statements ([`Shadow::stage`]): one round trip per transaction instead of two while
/// the validator is behind, and no wait when it is not. Small transactions queued together
/// (up to [`GROUP_TRANSACTIONS`]) go in one SQL transaction and one round trip
/// ([`Shadow::stage_group`]); when one of them does not apply, the group is rolled back and
/// its transactions are applied one by one, which commits those before it and names it.
async fn apply_in_order(
    shadow: Shadow,
    planner: SharedPlanner,
    mut queued: mpsc::Receiver<Queued>,
    reports: mpsc::UnboundedSender<Result<Outcome>>,
) {
    let plan = |transaction: Queued| -> Planned {
        let mut planner = lock(&planner);
        let Planner { replay, types } = &mut *planner;
        let planned = replay.plan(&transaction.transaction, types);
        (transaction, planned)
    };
    let groups =
        |planned: &Planned| matches!(&planned.1, Ok(statements) if Shadow::groups(statements));
    // The transactions applied and checked whose COMMIT is not sent yet, in order.
    let mut open: Vec<Lsn> = Vec::new();
    // Planned and not applied yet, before anything still queued.
    let mut ready: VecDeque<Planned> = VecDeque::new();
    // How many of `ready` go one by one: the transactions of a group that did not apply.
    let mut alone = 0_usize;
    loop {
        let next = match ready.pop_front() {
            Some(next) => Some(next),
            None if open.is_empty() => queued.recv().await.map(plan),
            None => match queued.try_recv() {
                Ok(next) => Some(plan(next)),
                Err(_) => {
                    if let Err(err) = shadow.commit().await {
                        let _ = reports.send(Err(err));
                        return;
                    }
                    if !report_committed(&reports, &mut open) {
                        return;
                    }
                    continue;
                }
            },
        };
        let Some(mut next) = next else {
            return;
        };
        if alone > 0 {
            alone -= 1;
        } else if groups(&next) {
            let mut group = vec![next];
            while group.len() < GROUP_TRANSACTIONS {
                let Some(more) = ready
                    .pop_front()
                    .or_else(|| queued.try_recv().ok().map(plan))
                else {
                    break;
                };
                if !groups(&more) {
                    ready.push_front(more);
                    break;
                }
                group.push(more);
            }
            if group.len() > 1 {
                let parts: Vec<_> = group
                    .iter()
                    .map(|(transaction, planned)| {
                        (
                            planned.as_deref().unwrap_or_default(),
                            &transaction.progress,
                        )
                    })
                    .collect();
                let staged = shadow.stage_group(&parts, !open.is_empty()).await;
                drop(parts);
                let all = match staged {
                    Ok(all) => all,
                    Err(err) => {
                        let _ = reports.send(Err(err));
                        return;
                    }
                };
                // `stage_group` came back: the transactions left open before it are committed.
                if !report_committed(&reports, &mut open) {
                    return;
                }
                if all {
                    open.extend(group.iter().map(|(t, _)| t.progress.commit_lsn));
                } else {
                    alone = group.len();
                    // Back to the front, in their order, to go one by one.
                    ready.extend(group.drain(..));
                    ready.rotate_right(alone);
                }
                continue;
            }
            next = group
                .pop()
                .unwrap_or_else(|| unreachable!("a group holds its first"));
        }
        let (transaction, planned) = next;
        let commit_lsn = transaction.progress.commit_lsn;
        let staged = match planned {
            Ok(statements) => {
                shadow
                    .stage(&statements, &transaction.progress, !open.is_empty())
                    .await
            }
            // Nothing of it reaches the shadow; the transactions left open are still committed.
            Err(err) => {
                let divergence =
                    Divergence::new(DivergenceKind::Replay, Some(commit_lsn), err.to_string());
                if open.is_empty() {
                    Ok(Staged::Diverged(divergence))
                } else {
                    shadow.commit().await.map(|()| Staged::Diverged(divergence))
                }
            }
        };
        // Frees the transaction and its share of the budget before the outcome is read.
        drop(transaction);
        let staged = match staged {
            Ok(staged) => staged,
            Err(err) => {
                let _ = reports.send(Err(err));
                return;
            }
        };
        // `stage` came back: the transactions left open before it are committed.
        if !report_committed(&reports, &mut open) {
            return;
        }
        match staged {
            Staged::Open => open.push(commit_lsn),
            Staged::Diverged(divergence) => {
                let _ = reports.send(Ok(Outcome {
                    commit_lsn,
                    applied: Applied::Diverged(divergence),
                }));
                return;
            }
        }
    }
}

/// Reports the transactions left `open` as committed (a round trip that came back committed
/// them); false when no one reads the reports any more.
fn report_committed(reports: &mpsc::UnboundedSender<Result<Outcome>>, open: &mut Vec<Lsn>) -> bool {
    open.drain(..).all(|commit_lsn| {
        let applied = Applied::Committed;
        reports
            .send(Ok(Outcome {
                commit_lsn,
                applied,
            }))
            .is_ok()
    })
}
