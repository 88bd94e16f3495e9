//! A divergence: something this validator checked and found not to hold. It is logged with its
//! LSN and what it concerns, counted in the metrics, kept in the shadow database, and from then
//! on the validator signs nothing.

use walproof_core::Lsn;

/// What kind of check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DivergenceKind {
    /// A ledger record does not extend the chain, or the ledger is not the one the shadow
    /// database was replayed from.
    Ledger,
    /// A change could not be applied: a statement touched another number of rows than the
    /// change says, an insert conflicted, a value did not parse, or the change is malformed.
    Replay,
    /// The published root of an LSN differs from the one this validator computed.
    Root,
    /// The roots topic skips an LSN the ledger has, holds one it does not, or does not chain.
    Roots,
    /// The deep audit found the shadow database's rows disagreeing with the tree.
    Audit,
}

impl DivergenceKind {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            DivergenceKind::Ledger => "ledger",
            DivergenceKind::Replay => "replay",
            DivergenceKind::Root => "root",
            DivergenceKind::Roots => "roots",
            DivergenceKind::Audit => "audit",
        }
    }
}

/// One divergence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The kind of check that failed.
    pub kind: DivergenceKind,
    /// The commit LSN it concerns, when one does.
    pub commit_lsn: Option<Lsn>,
    /// What was found: the table and key, the offset, the two roots.
    pub detail: String,
}

impl Divergence {
    /// A divergence of `kind` at `commit_lsn`.
    pub fn new(
        kind: DivergenceKind,
        commit_lsn: Option<Lsn>,
        detail: impl Into<String>,
    ) -> Divergence {
        Divergence {
            kind,
            commit_lsn,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.commit_lsn {
            Some(lsn) => write!(
                f,
                "{} divergence at {lsn}: {}",
                self.kind.label(),
                self.detail
            ),
            None => write!(f, "{} divergence: {}", self.kind.label(), self.detail),
        }
    }
}
