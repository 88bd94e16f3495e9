//! Decoder: the source side of walproof.
//!
//! **Consumes** pgoutput (protocol version 1) from a logical replication slot on the source
//! Postgres, through `pgwire-replication`, on a connection with walproof's canonical session
//! settings.
//!
//! **Produces** committed source transactions, whole and in strictly increasing commit-LSN
//! order, as `walproof_core::Transaction`s with every change numbered by its ordinal.
//!
//! **Guarantees** that only committed transactions are emitted, that unchanged TOASTed values
//! are never invented (filled from the old tuple under REPLICA IDENTITY FULL, otherwise marked
//! unchanged), and that the slot's `confirmed_flush_lsn` never passes what the ledger has durably
//! accepted.
//!
//! Status: the contract only; the decoder arrives with the decoder issue.
