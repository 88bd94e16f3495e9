//! Relayer: carries what validators signed to the bridge contract.
//!
//! **Consumes** `<prefix>.attestations` (root attestations and withdrawal approvals) and the
//! chain's state (the bridge's last committed LSN, its threshold, paid withdrawals, the key
//! registry's active keys).
//!
//! **Produces** `commitRoots` and `withdraw` transactions.
//!
//! **Guarantees** that it submits only what a threshold of active keys signed identically,
//! and never submits an LSN or a withdrawal the chain already has: it reads the chain's state
//! before every submission.
//!
//! - [`pool`]: the collected signatures and what is ready to submit.
//! - [`chain`]: the bridge and key registry through alloy, reverts decoded.
//! - [`bindings`]: `sol!` bindings from the Foundry build output.
//! - [`deploy`]: the contracts deployed to a chain (the local stack's anvil).
//! - [`run`]: the service (`walproof relayer`); [`metrics`] its Prometheus metrics.

pub mod bindings;
pub mod chain;
pub mod deploy;
pub mod metrics;
pub mod pool;
pub mod run;
