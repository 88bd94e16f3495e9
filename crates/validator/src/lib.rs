//! Validator: trusts nothing it did not check itself.
//!
//! **Consumes** `<prefix>.ledger` and `<prefix>.roots`.
//!
//! **Produces** a shadow Postgres replayed from the ledger, independently recomputed roots,
//! divergence alarms, and EIP-712 root attestations on `<prefix>.attestations`.
//!
//! **Guarantees** that each source transaction is applied to the shadow database once, in one
//! SQL transaction together with its progress row, and that a root is signed only after this
//! validator's own replay reproduced it.
//!
//! Status: the contract only; the validator arrives with the validator issue.
