//! When the committer prunes its store: the trees of the last `retain_roots` roots stay
//! provable, and the store is compacted once it holds `compact_at_bytes`, then each time it has
//! doubled since the last compaction — so copying what is live costs at most as much again as
//! was written since, and a store at rest is left alone.

use std::time::{Duration, Instant};

use crate::error::Result;
use crate::state::{CommitState, Pruned};

/// A retention policy and what it last did.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Keep the trees of the last this many roots (at least one).
    pub retain_roots: u64,
    /// The store size of the first compaction.
    pub compact_at_bytes: u64,
    /// The store's size after the last compaction.
    compacted: u64,
}

impl Retention {
    /// A policy keeping the last `retain_roots` trees, compacting first at `compact_at_bytes`.
    pub fn new(retain_roots: u64, compact_at_bytes: u64) -> Retention {
        Retention {
            retain_roots: retain_roots.max(1),
            compact_at_bytes,
            compacted: 0,
        }
    }

    /// Prunes `state`'s store when it has grown enough (syncing it first); what was pruned
    /// and how long it took, or `None`.
    pub fn prune_when_grown(
        &mut self,
        state: &mut CommitState,
    ) -> Result<Option<(Pruned, Duration)>> {
        let Some(store) = state.store() else {
            return Ok(None);
        };
        if store.bytes() < self.compact_at_bytes.max(self.compacted.saturating_mul(2)) {
            return Ok(None);
        }
        let started = Instant::now();
        let pruned = state.prune(self.retain_roots)?;
        if let Some(pruned) = &pruned {
            self.compacted = pruned.bytes_after;
        }
        Ok(pruned.map(|pruned| (pruned, started.elapsed())))
    }
}
