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
//! - [`proof`]: inclusion and exclusion proofs, verified with SHA-256 and the node layout alone.
//! - [`rebuild`]: every root recomputed from the ledger alone (`walproof roots`).
//! - [`run`]: the service publishing `<prefix>.roots` (`walproof commit`).
//!
//! Status: roots are computed in memory and published to `<prefix>.roots`; a restart
//! recomputes the state from the ledger's start. The durable store, retention and pruning,
//! proofs and their API are still to come.

pub mod error;
pub mod proof;
pub mod rebuild;
pub mod run;
pub mod state;
pub mod tree;

pub use error::{CommitError, Result};
pub use state::{CommitState, Committed};
pub use tree::{EMPTY_ROOT, StateTree};
