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
//! Status: the contract only; the committer arrives with the commitment issue.
