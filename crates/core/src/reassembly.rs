//! Reassembling whole transactions from ledger entries, as every consumer must.
//!
//! The rules of design.md: a transaction's entries are consecutive parts 0..=k of one commit
//! LSN, the last one marked; an abandon marker voids the open run of its commit LSN (the writer
//! re-emits the transaction whole after it); complete transactions come in strictly increasing
//! commit-LSN order. Anything else is an [`OrderError`]: a consumer must not apply it.

use std::collections::BTreeMap;

use crate::ledger::{EntryBody, LedgerEntry, Transaction};
use crate::lsn::Lsn;

/// What one entry did to the reassembly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reassembled {
    /// The entry completed this transaction: act on it.
    Complete(Transaction),
    /// The entry is part of a transaction that is not complete yet.
    Pending,
    /// The entry voided the open run of this commit LSN, which had `parts` parts.
    Abandoned {
        /// The voided transaction's commit LSN.
        commit_lsn: Lsn,
        /// How many of its parts had been seen.
        parts: u32,
    },
}

/// An entry that breaks the ledger's identity rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// A transaction at or below one already complete.
    #[error("transaction {commit_lsn} is not after the last complete transaction {last_complete}")]
    NotIncreasing {
        /// The entry's commit LSN.
        commit_lsn: Lsn,
        /// The last complete commit LSN.
        last_complete: Lsn,
    },
    /// A part out of sequence within a transaction.
    #[error("transaction {commit_lsn}: expected part {expected}, found part {found}")]
    UnexpectedPart {
        /// The transaction.
        commit_lsn: Lsn,
        /// The part that should come next.
        expected: u32,
        /// The part that came.
        found: u32,
    },
    /// An entry of another transaction while one is still open and not abandoned.
    #[error("transaction {found} starts while transaction {open} is incomplete and not abandoned")]
    Interleaved {
        /// The open transaction.
        open: Lsn,
        /// The entry's transaction.
        found: Lsn,
    },
    /// An abandon marker that matches no open run.
    #[error("abandon marker for {commit_lsn} but the open transaction is {open:?}")]
    StrayAbandon {
        /// The marker's commit LSN.
        commit_lsn: Lsn,
        /// The open transaction, if any.
        open: Option<Lsn>,
    },
}

/// Where an entry put its transaction, for readers that stream parts instead of collecting them
/// (see [`Reassembler::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A part of a transaction; `last` when it completed it.
    Part {
        /// Whether this part completed the transaction.
        last: bool,
    },
    /// An abandon marker voided the open run of this commit LSN.
    Abandoned,
}

/// The run being reassembled: its commit LSN and the part expected next.
#[derive(Debug, Clone, Copy)]
struct OpenRun {
    commit_lsn: Lsn,
    next_part: u32,
}

/// Collects parts into whole transactions and voids abandoned runs.
///
/// [`Reassembler::push`] holds the open transaction's changes in memory until its last part
/// arrives; [`Reassembler::check`] applies the same rules without keeping anything.
#[derive(Debug, Default)]
pub struct Reassembler {
    open: Option<OpenRun>,
    last_complete: Option<Lsn>,
    collecting: Option<Transaction>,
}

impl Reassembler {
    /// A reassembler at the start of the ledger.
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// A reassembler that resumes after the complete transaction `last_complete`.
    pub fn resume(last_complete: Option<Lsn>) -> Reassembler {
        Reassembler {
            last_complete,
            ..Reassembler::default()
        }
    }

    /// The last complete transaction's commit LSN.
    pub fn last_complete(&self) -> Option<Lsn> {
        self.last_complete
    }

    /// Checks the next entry against the ledger's order without keeping its changes: for a
    /// reader that acts on each part as it comes (in bounded memory) and must tolerate the
    /// parts of a run that an abandon marker voids. Do not mix with [`Reassembler::push`].
    pub fn check(&mut self, entry: &LedgerEntry) -> Result<Progress, OrderError> {
        let commit_lsn = entry.commit_lsn;
        if let EntryBody::Abandon { .. } = entry.body {
            return match self.open {
                Some(run) if run.commit_lsn == commit_lsn => {
                    self.open = None;
                    Ok(Progress::Abandoned)
                }
                other => Err(OrderError::StrayAbandon {
                    commit_lsn,
                    open: other.map(|run| run.commit_lsn),
                }),
            };
        }
        if let Some(last_complete) = self.last_complete.filter(|last| commit_lsn <= *last) {
            return Err(OrderError::NotIncreasing {
                commit_lsn,
                last_complete,
            });
        }
        let run = self.open.get_or_insert(OpenRun {
            commit_lsn,
            next_part: 0,
        });
        if run.commit_lsn != commit_lsn {
            return Err(OrderError::Interleaved {
                open: run.commit_lsn,
                found: commit_lsn,
            });
        }
        if entry.part != run.next_part {
            return Err(OrderError::UnexpectedPart {
                commit_lsn,
                expected: run.next_part,
                found: entry.part,
            });
        }
        run.next_part += 1;
        if entry.last {
            self.open = None;
            self.last_complete = Some(commit_lsn);
        }
        Ok(Progress::Part { last: entry.last })
    }

    /// Takes the next entry of the ledger, in ledger order, collecting the open transaction.
    pub fn push(&mut self, entry: LedgerEntry) -> Result<Reassembled, OrderError> {
        let commit_lsn = entry.commit_lsn;
        let parts_seen = self.open.map_or(0, |run| run.next_part);
        let progress = self.check(&entry)?;
        let part = match (progress, entry.body) {
            (Progress::Part { .. }, EntryBody::Transaction(part)) => part,
            _ => {
                self.collecting = None;
                return Ok(Reassembled::Abandoned {
                    commit_lsn,
                    parts: parts_seen,
                });
            }
        };
        let transaction = self.collecting.get_or_insert_with(|| Transaction {
            commit_lsn,
            xid: part.xid,
            commit_time_us: part.commit_time_us,
            relations: BTreeMap::new(),
            changes: Vec::new(),
        });
        for relation in part.relations {
            transaction.relations.insert(relation.id, relation);
        }
        transaction.changes.extend(part.changes);
        match (progress, self.collecting.take()) {
            (Progress::Part { last: true }, Some(transaction)) => {
                Ok(Reassembled::Complete(transaction))
            }
            (_, collecting) => {
                self.collecting = collecting;
                Ok(Reassembled::Pending)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{Change, Op};

    fn transaction(lsn: u64, changes: u32) -> Transaction {
        Transaction {
            commit_lsn: Lsn::new(lsn),
            xid: 7,
            commit_time_us: 0,
            relations: BTreeMap::new(),
            changes: (0..changes)
                .map(|ordinal| Change {
                    ordinal,
                    op: Op::Message {
                        prefix: "p".into(),
                        content: vec![0; 40],
                    },
                })
                .collect(),
        }
    }

    fn entries(tx: &Transaction, max_bytes: usize) -> Vec<LedgerEntry> {
        tx.split(max_bytes)
            .iter()
            .map(|e| LedgerEntry::decode(&e.bytes).unwrap())
            .collect()
    }

    fn abandon(lsn: u64) -> LedgerEntry {
        LedgerEntry {
            commit_lsn: Lsn::new(lsn),
            part: 0,
            last: false,
            body: EntryBody::Abandon { parts_written: 1 },
        }
    }

    #[test]
    fn checking_streams_the_same_order_rules_without_keeping_changes() {
        let tx = transaction(100, 10);
        let parts = entries(&tx, 100);
        let mut checker = Reassembler::new();
        let progress: Vec<_> = parts.iter().map(|e| checker.check(e).unwrap()).collect();
        assert_eq!(progress.last(), Some(&Progress::Part { last: true }));
        assert!(
            progress[..progress.len() - 1]
                .iter()
                .all(|p| *p == Progress::Part { last: false })
        );
        assert!(matches!(
            checker.check(&parts[0]),
            Err(OrderError::NotIncreasing { .. })
        ));
        let mut checker = Reassembler::new();
        checker.check(&parts[0]).unwrap();
        assert_eq!(checker.check(&abandon(100)), Ok(Progress::Abandoned));
        assert!(
            checker.check(&parts[1]).is_err(),
            "a voided run does not continue"
        );
    }

    #[test]
    fn parts_rejoin_into_the_whole_transaction() {
        let tx = transaction(100, 10);
        let parts = entries(&tx, 100);
        assert!(parts.len() > 1);
        let mut reassembler = Reassembler::new();
        let outcomes: Vec<_> = parts
            .into_iter()
            .map(|e| reassembler.push(e).unwrap())
            .collect();
        assert!(
            outcomes[..outcomes.len() - 1]
                .iter()
                .all(|o| *o == Reassembled::Pending)
        );
        assert_eq!(outcomes.last(), Some(&Reassembled::Complete(tx)));
        assert_eq!(reassembler.last_complete(), Some(Lsn::new(100)));
    }

    #[test]
    fn an_abandoned_run_is_voided_and_the_reemitted_transaction_counts_once() {
        let tx = transaction(100, 10);
        let parts = entries(&tx, 100);
        let mut reassembler = Reassembler::new();
        assert_eq!(
            reassembler.push(parts[0].clone()).unwrap(),
            Reassembled::Pending
        );
        assert_eq!(
            reassembler.push(abandon(100)).unwrap(),
            Reassembled::Abandoned {
                commit_lsn: Lsn::new(100),
                parts: 1
            }
        );
        let last = parts
            .into_iter()
            .map(|e| reassembler.push(e).unwrap())
            .last();
        assert_eq!(last, Some(Reassembled::Complete(tx)));
    }

    #[test]
    fn out_of_order_entries_are_refused() {
        let first = entries(&transaction(100, 1), usize::MAX);
        let mut reassembler = Reassembler::new();
        reassembler.push(first[0].clone()).unwrap();
        // The same transaction again, and an older one.
        assert!(matches!(
            reassembler.push(first[0].clone()),
            Err(OrderError::NotIncreasing { .. })
        ));
        let older = entries(&transaction(50, 1), usize::MAX);
        assert!(matches!(
            reassembler.push(older[0].clone()),
            Err(OrderError::NotIncreasing { .. })
        ));

        // A skipped part, and an interleaved transaction.
        let big = entries(&transaction(200, 10), 100);
        reassembler.push(big[0].clone()).unwrap();
        assert_eq!(
            reassembler.push(big[2].clone()),
            Err(OrderError::UnexpectedPart {
                commit_lsn: Lsn::new(200),
                expected: 1,
                found: 2
            })
        );
        let other = entries(&transaction(300, 1), usize::MAX);
        assert_eq!(
            reassembler.push(other[0].clone()),
            Err(OrderError::Interleaved {
                open: Lsn::new(200),
                found: Lsn::new(300)
            })
        );
        assert_eq!(
            reassembler.push(abandon(300)),
            Err(OrderError::StrayAbandon {
                commit_lsn: Lsn::new(300),
                open: Some(Lsn::new(200))
            })
        );
    }
}
