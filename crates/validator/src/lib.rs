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
//! - [`replay`]: a source transaction as SQL statements, each with the rows it must touch.
//! - [`schema`]: the shadow's tables, created from the stream's relations and altered at each
//!   captured DDL.
//! - [`shadow`]: the shadow database session: each source transaction whole in one SQL
//!   transaction with the progress row (several small ones may share it).
//! - [`shadow_writer`]: the task that applies planned transactions to the shadow, in order,
//!   while the validator reads and plans the next ones.
//! - [`snapshot`]: what the validator holds at a transaction, written on a clean shutdown so
//!   that a restart resumes there instead of at the ledger's first record.
//! - [`audit`]: the shadow's own rows read back and checked against the tree.
//! - [`attestation`]: EIP-712 root attestations and the key interface that signs them.
//! - [`withdrawal`]: rows of the outbound table, and the EIP-712 approvals a validator signs
//!   for them.
//! - [`divergence`]: what a failed check is, and what the validator does about it.
//! - [`run`]: the service (`walproof validate`); [`metrics`] its Prometheus metrics.

pub mod attestation;
pub mod divergence;
pub mod error;
pub mod replay;
pub mod schema;
pub mod shadow;
pub mod shadow_writer;
pub mod snapshot;
pub mod withdrawal;

pub use divergence::{Divergence, DivergenceKind};
pub use error::{Result, ValidateError};
pub mod audit;
pub mod metrics;
pub mod run;
