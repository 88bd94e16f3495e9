//! The offline rebuild: every root recomputed from the ledger alone, from its first record.

use std::time::Duration;

use walproof_core::{Lsn, Reassembled, Transaction};
use walproof_transport::KafkaSettings;
use walproof_transport::ledger::{LedgerReader, ledger_topic_exists};

use crate::error::{CommitError, Result};
use crate::state::{CommitState, Committed};

/// Reads `<prefix>.ledger` from its first record to its end — or up to the transaction at
/// `until` — verifying the chain, applies every whole transaction and hands each root to
/// `each`; returns the final state.
pub async fn rebuild(
    settings: &KafkaSettings,
    wait: Duration,
    until: Option<Lsn>,
    mut each: impl FnMut(&Transaction, &Committed),
) -> Result<CommitState> {
    if !ledger_topic_exists(settings, wait)
        .await
        .map_err(CommitError::ledger)?
    {
        return Err(CommitError::NoLedger {
            topic: settings.ledger_topic(),
        });
    }
    let mut reader = LedgerReader::from_start(settings).map_err(CommitError::ledger)?;
    let mut state = CommitState::default();
    while let Some((_, outcome)) = reader.next(wait).await.map_err(CommitError::ledger)? {
        if let Reassembled::Complete(transaction) = outcome {
            if until.is_some_and(|until| transaction.commit_lsn > until) {
                break;
            }
            let committed = state.apply(&transaction)?;
            each(&transaction, &committed);
        }
    }
    Ok(state)
}
