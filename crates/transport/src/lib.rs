//! Kafka transport: the ledger topic and the topics built beside it.
//!
//! **Consumes** `walproof_core::Transaction`s from the decoder, and `<prefix>.ledger` records
//! for the stages downstream.
//!
//! **Produces** `<prefix>.ledger` (one partition, hash-chained, one writer, idempotent producer
//! with acks=all), `<prefix>.transaction` and the Debezium-compatible `<prefix>.<schema>.<table>`
//! topics.
//!
//! **Guarantees** exactly-once in effect without Kafka transactions: the writer resumes after the
//! last complete transaction in the ledger's tail, marks an interrupted one abandoned, and
//! consumers accept only entries that extend the chain they hold.
//!
//! Status: the contract only; the writer and readers arrive with the decoder issue.
