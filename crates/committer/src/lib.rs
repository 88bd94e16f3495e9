//! Commitment stage: one Sparse Merkle Tree root per commit LSN.
//!
//! **Consumes** `<prefix>.ledger`, verifying the hash chain and acting on whole transactions.
//!
//! **Produces** `<prefix>.roots` (one record per commit LSN) and inclusion/exclusion proofs for
//! any row at any retained LSN; keys and leaves as `walproof_core::leaf` defines them (monotree,
//! SHA-256).
//!
//! **Guarantees** that no root is published for a partial or unverified transaction, and that
//! no LSN is published twice or skipped across restarts.
//!
//! - [`state`]: the rows behind the tree and how each change moves them ([`CommitState`]).
//! - [`tree`]: the tree itself and its root.
//! - [`store`]: the durable store: every node and row version written, the root of every LSN,
//!   where to resume.
//! - [`proof`]: inclusion and exclusion proofs, verified with SHA-256 and the node layout alone.
//! - [`retention`]: when the store is pruned below the retention horizon.
//! - [`rebuild`]: every root recomputed from the ledger alone (`walproof roots`).
//! - [`run`]: the service publishing `<prefix>.roots` (`walproof commit`).
//!
//! Status: roots are published exactly once; the tree, rows, root history and position live
//! in a durable store that a restart resumes from; proofs at any kept LSN come from it and are
//! served by [`run`]'s queries (the binary puts them on HTTP); with a retention, the store is
//! compacted down to the trees of the last roots kept.

pub mod error;
pub mod proof;
pub mod rebuild;
pub mod retention;
pub mod run;
pub mod state;
pub mod store;
pub mod tree;

pub use error::{CommitError, Result};
pub use state::{CommitState, Committed, RowHashes};
pub use tree::{EMPTY_ROOT, StateTree};
