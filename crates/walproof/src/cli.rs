//! The command line: what each subcommand is for, as `walproof --help` shows it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// walproof: change-data-capture for Postgres whose output anyone can verify.
///
/// walproof streams committed transactions from a Postgres publication into a hash-chained
/// ledger topic in Kafka. Downstream stages commit every state to a Sparse Merkle Tree root,
/// archive the stream to Parquet, and replay it into shadow databases that sign the roots they
/// reproduce. See README.md for the local stack and the data contracts.
#[derive(Debug, Parser)]
#[command(name = "walproof", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify and print one ledger record (a `<prefix>.ledger` Kafka value).
    ///
    /// Reads a `walproof.ledger.v1.Envelope`, checks that its hash matches its content, decodes
    /// the entry and prints it. Exits non-zero with the reason when the record is not valid.
    ///
    /// Example: kcat -C -t walproof.ledger -o -1 -e -D '' > last.bin && walproof inspect last.bin
    Inspect {
        /// File with the record's bytes; `-` reads standard input.
        record: PathBuf,
        /// The input is hex text rather than raw bytes.
        #[arg(long)]
        hex: bool,
    },
}
