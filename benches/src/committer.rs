//! The committer's benchmark: one keyed table's transactions applied to `CommitState` (the
//! committer's whole apply path), the same keys in stock monotree, and the SHA-256 bound.
//!
//! The table is `bench.accounts (id bigint primary key, balance bigint, note text)`. The tree is
//! filled with inserts in transactions of 10,000 rows; the measured part is transactions of
//! `rows_per_transaction` changes — 80% updates of a random live row, 10% deletes, 10% inserts —
//! with a root after each.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use sha2::{Digest as _, Sha256};
use walproof_committer::retention::Retention;
use walproof_committer::{CommitState, StateTree};
use walproof_core::leaf::{column_hash, row_key, row_leaf};
use walproof_core::{
    Change, Column, Digest, Lsn, OldRow, Op, Relation, RelationId, ReplicaIdentity, Row,
    Transaction, Value,
};

/// One measurement, run in its own process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Stock monotree 0.4: its MemoryDB, `inserts`/`removes` per transaction.
    Monotree,
    /// The committer's apply path, in memory.
    Memory,
    /// The committer's apply path with its durable store, synced every 500 ms as the service
    /// does.
    Durable,
    /// The same with a retention: the trees of the last [`RETAIN_ROOTS`] roots kept, the store
    /// compacted by the service's policy.
    Pruned,
    /// The validator's snapshot of the state in memory, after the apply path: the copy it
    /// takes while running, then that copy saved as a store of its own.
    Snapshot,
}

/// The retention of the pruned phase, in roots.
pub const RETAIN_ROOTS: u64 = 1000;
/// The first compaction's store size in the pruned phase (the service's default).
pub const COMPACT_AT_BYTES: u64 = 256 << 20;

impl Phase {
    /// The phase's flag value.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Monotree => "monotree",
            Phase::Memory => "memory",
            Phase::Durable => "durable",
            Phase::Pruned => "pruned",
            Phase::Snapshot => "snapshot",
        }
    }

    /// A line saying what the phase measures.
    pub fn describe(self) -> &'static str {
        match self {
            Phase::Monotree => "(b) stock monotree 0.4 (MemoryDB, a batch per transaction)",
            Phase::Memory => "(c) the committer's apply path in memory",
            Phase::Durable => "(c) the committer's apply path with its durable store",
            Phase::Pruned => "(c) the same, pruned to the last 1,000 roots",
            Phase::Snapshot => {
                "(d) the validator's snapshot: the state in memory copied, the copy saved"
            }
        }
    }
}

/// What one phase measured.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Measured {
    /// Live keys before the measured part.
    pub keys: u64,
    /// Seconds to fill the tree.
    pub fill_s: f64,
    /// Row changes measured.
    pub updates: u64,
    /// Seconds the measured part took.
    pub measured_s: f64,
    /// `updates / measured_s`.
    pub updates_per_s: f64,
    /// Milliseconds per transaction (one root each).
    pub ms_per_root: f64,
    /// Where the time went: (part, seconds), summing to `measured_s`.
    pub breakdown: Vec<(String, f64)>,
    /// Proofs sized.
    pub proofs: u64,
    /// Mean proof size as serialized nodes, bytes.
    pub proof_bytes: f64,
    /// Mean compact proof size, bytes.
    pub compact_proof_bytes: f64,
    /// Largest compact proof, bytes.
    pub compact_proof_max: u64,
    /// Peak resident set of the process, bytes.
    pub peak_rss: u64,
    /// Store bytes written per row change while measured.
    pub store_bytes_per_update: Option<f64>,
    /// Store bytes written while measured.
    pub store_bytes_measured: u64,
    /// Store bytes in all (fill included).
    pub store_bytes_total: u64,
    /// Seconds to reopen the store after the measured part (read the tree back, check it).
    pub reopen_s: Option<f64>,
    /// Compactions while measured (pruned phase).
    pub compactions: u32,
    /// Seconds spent compacting while measured (included in `measured_s`).
    pub compaction_s: f64,
    /// The longest compaction, seconds: the longest the committer stalls.
    pub longest_compaction_s: f64,
    /// Of the compactions' time: finding what the kept roots reach, and copying it.
    pub compaction_walk_s: f64,
    /// See `compaction_walk_s`.
    pub compaction_copy_s: f64,
    /// Snapshot phase: seconds to copy the state (what a running validator pauses for).
    pub snapshot_copy_s: Option<f64>,
    /// Snapshot phase: seconds to save the copy as a store (synced), and its bytes.
    pub snapshot_save_s: Option<f64>,
    /// See `snapshot_save_s`.
    pub snapshot_bytes: u64,
}

const TABLE: RelationId = 16_384;
const INT8: u32 = 20;
const TEXT: u32 = 25;
const FILL_BATCH: u64 = 10_000;

fn relation() -> Relation {
    let column = |name: &str, type_oid, key| Column {
        name: name.to_owned(),
        type_oid,
        type_modifier: -1,
        key,
    };
    Relation {
        id: TABLE,
        schema: "bench".to_owned(),
        name: "accounts".to_owned(),
        replica_identity: ReplicaIdentity::Default,
        columns: vec![
            column("id", INT8, true),
            column("balance", INT8, false),
            column("note", TEXT, false),
        ],
    }
}

/// A fast, seeded generator (xorshift64*): the same workload in every phase.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// One row change of the workload.
#[derive(Debug, Clone, Copy)]
enum Step {
    Set { id: u64, balance: u64 },
    Delete { id: u64 },
}

/// The measured part: `transactions` of `rows` steps over ids `0..keys`.
fn workload(keys: u64, updates: u64, rows: usize) -> Vec<Vec<Step>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<u64> = (0..keys).collect();
    let mut next_id = keys;
    let mut transactions = Vec::new();
    let mut left = updates;
    while left > 0 {
        let n = (rows as u64).min(left);
        left -= n;
        let mut steps = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let r = rng.next();
            let balance = rng.next() % 1_000_000;
            match r % 10 {
                0 if !live.is_empty() => {
                    let at = (rng.next() % live.len() as u64) as usize;
                    steps.push(Step::Delete {
                        id: live.swap_remove(at),
                    });
                }
                1 => {
                    steps.push(Step::Set {
                        id: next_id,
                        balance,
                    });
                    live.push(next_id);
                    next_id += 1;
                }
                _ => {
                    let id = live[(rng.next() % live.len() as u64) as usize];
                    steps.push(Step::Set { id, balance });
                }
            }
        }
        transactions.push(steps);
    }
    transactions
}

fn values(id: u64, balance: u64) -> Row {
    Row(vec![
        Value::Text(id.to_string()),
        Value::Text(balance.to_string()),
        Value::Text(format!("account {id}, opened by the benchmark")),
    ])
}

fn key_of(id: u64) -> Digest {
    row_key("bench", "accounts", [id.to_string().as_str()])
}

fn leaf_of(id: u64, balance: u64) -> Digest {
    let rel = relation();
    let Row(row) = values(id, balance);
    let hashes: Vec<Digest> = rel
        .columns
        .iter()
        .zip(&row)
        .map(|(c, v)| match v {
            Value::Text(text) => column_hash(c.type_oid, Some(text)),
            _ => column_hash(c.type_oid, None),
        })
        .collect();
    row_leaf(rel.columns.iter().map(|c| c.name.as_str()).zip(&hashes))
}

/// A transaction of the ledger for `steps`; `is_new` says which ids are inserts.
fn transaction(lsn: u64, steps: &[Step], is_new: &dyn Fn(u64) -> bool) -> Transaction {
    let changes = steps
        .iter()
        .enumerate()
        .map(|(ordinal, step)| Change {
            ordinal: ordinal as u32,
            op: match *step {
                Step::Set { id, balance } if is_new(id) => Op::Insert {
                    relation: TABLE,
                    new: values(id, balance),
                },
                Step::Set { id, balance } => Op::Update {
                    relation: TABLE,
                    old: None,
                    new: values(id, balance),
                },
                Step::Delete { id } => Op::Delete {
                    relation: TABLE,
                    old: OldRow::Key(Row(vec![
                        Value::Text(id.to_string()),
                        Value::Null,
                        Value::Null,
                    ])),
                },
            },
        })
        .collect();
    Transaction {
        commit_lsn: Lsn::new(lsn),
        xid: lsn as u32,
        commit_time_us: 0,
        relations: BTreeMap::from([(TABLE, relation())]),
        changes,
    }
}

/// Nanoseconds per SHA-256 of 64 bytes.
pub fn sha256_ns(rounds: u32) -> f64 {
    let mut block = [7u8; 64];
    let started = Instant::now();
    for _ in 0..rounds {
        let digest: [u8; 32] = Sha256::digest(block).into();
        block[..32].copy_from_slice(&digest);
    }
    std::hint::black_box(block);
    started.elapsed().as_nanos() as f64 / f64::from(rounds)
}

/// Runs one phase at `keys` keys.
pub fn run_phase(
    phase: Phase,
    keys: u64,
    updates: u64,
    rows: usize,
    store_dir: Option<&Path>,
) -> anyhow::Result<Measured> {
    let transactions = workload(keys, updates, rows);
    let measured = match phase {
        Phase::Monotree => monotree_phase(keys, &transactions)?,
        Phase::Memory => memory_phase(keys, &transactions)?,
        Phase::Snapshot => {
            let dir = std::env::temp_dir()
                .join(format!("walproof-bench-snapshot-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let measured = snapshot_phase(keys, &transactions, &dir);
            let _ = std::fs::remove_dir_all(&dir);
            measured?
        }
        Phase::Durable | Phase::Pruned => {
            let retention =
                (phase == Phase::Pruned).then(|| Retention::new(RETAIN_ROOTS, COMPACT_AT_BYTES));
            let dir = store_dir.map_or_else(
                || {
                    std::env::temp_dir()
                        .join(format!("walproof-bench-store-{}", std::process::id()))
                },
                Path::to_path_buf,
            );
            let _ = std::fs::remove_dir_all(&dir);
            let measured = durable_phase(keys, &transactions, &dir, retention);
            let _ = std::fs::remove_dir_all(&dir);
            measured?
        }
    };
    Ok(Measured {
        peak_rss: peak_rss(),
        ..measured
    })
}

fn finish(keys: u64, fill_s: f64, transactions: &[Vec<Step>], measured_s: f64) -> Measured {
    let updates: usize = transactions.iter().map(Vec::len).sum();
    Measured {
        keys,
        fill_s,
        updates: updates as u64,
        measured_s,
        updates_per_s: updates as f64 / measured_s.max(1e-9),
        ms_per_root: measured_s * 1e3 / transactions.len().max(1) as f64,
        ..Measured::default()
    }
}

fn monotree_phase(keys: u64, transactions: &[Vec<Step>]) -> anyhow::Result<Measured> {
    use monotree::Monotree;
    use monotree::database::MemoryDB;
    use monotree::hasher::Sha2;
    let mut tree: Monotree<MemoryDB, Sha2> = Monotree::new("bench");
    let mut root = None;
    let started = Instant::now();
    let mut id = 0;
    while id < keys {
        let end = (id + FILL_BATCH).min(keys);
        let pairs: (Vec<_>, Vec<_>) = (id..end).map(|i| (key_of(i).0, leaf_of(i, 0).0)).unzip();
        root = tree.inserts(root.as_ref(), &pairs.0, &pairs.1)?;
        id = end;
    }
    let fill_s = started.elapsed().as_secs_f64();
    // Per transaction: the keys and leaves to set, the keys to remove.
    type Batch = (Vec<[u8; 32]>, Vec<[u8; 32]>, Vec<[u8; 32]>);
    let prepared: Vec<Batch> = transactions
        .iter()
        .map(|steps| {
            let mut sets = (Vec::new(), Vec::new());
            let mut removes = Vec::new();
            for step in steps {
                match *step {
                    Step::Set { id, balance } => {
                        sets.0.push(key_of(id).0);
                        sets.1.push(leaf_of(id, balance).0);
                    }
                    Step::Delete { id } => removes.push(key_of(id).0),
                }
            }
            (sets.0, sets.1, removes)
        })
        .collect();
    let started = Instant::now();
    for (keys, leaves, removes) in &prepared {
        root = tree.inserts(root.as_ref(), keys, leaves)?;
        if !removes.is_empty() {
            root = tree.removes(root.as_ref(), removes)?;
        }
    }
    let measured_s = started.elapsed().as_secs_f64();
    std::hint::black_box(root);
    Ok(finish(keys, fill_s, transactions, measured_s))
}

/// The fill and the measured transactions of the apply path, as ledger transactions.
fn fill_and_prepare(
    state: &mut CommitState,
    keys: u64,
    transactions: &[Vec<Step>],
    mut each: impl FnMut(&mut CommitState) -> anyhow::Result<()>,
) -> anyhow::Result<(f64, Vec<Transaction>, u64)> {
    let mut lsn = 0;
    let started = Instant::now();
    let mut id = 0;
    while id < keys {
        let end = (id + FILL_BATCH).min(keys);
        let steps: Vec<Step> = (id..end).map(|id| Step::Set { id, balance: 0 }).collect();
        lsn += 1;
        let committed = state.apply(&transaction(lsn, &steps, &|_| true))?;
        state.keep(&committed, Digest::ZERO, lsn as i64);
        each(state)?;
        id = end;
    }
    let fill_s = started.elapsed().as_secs_f64();
    let mut next_new = keys;
    let prepared = transactions
        .iter()
        .map(|steps| {
            lsn += 1;
            let first_new = next_new;
            for step in steps {
                if let Step::Set { id, .. } = step {
                    next_new = next_new.max(id + 1);
                }
            }
            transaction(lsn, steps, &|id| id >= first_new)
        })
        .collect();
    Ok((fill_s, prepared, next_new))
}

/// The durable store synced every 500 ms as the service does, pruned by `retention` after
/// each sync when there is one.
fn durable_phase(
    keys: u64,
    transactions: &[Vec<Step>],
    dir: &Path,
    mut retention: Option<Retention>,
) -> anyhow::Result<Measured> {
    let mut state = CommitState::open(dir)?;
    if retention.is_some() {
        state.track_superseded();
    }
    let sync_every = std::time::Duration::from_millis(500);
    let mut last_sync = Instant::now();
    // (compactions, seconds, longest, walk seconds, copy seconds) while measured.
    let mut compactions = (0u32, 0f64, 0f64, 0f64, 0f64);
    let measuring = std::cell::Cell::new(false);
    let pruned = retention.is_some();
    let mut sync = |state: &mut CommitState| -> anyhow::Result<()> {
        if last_sync.elapsed() >= sync_every {
            state.sync()?;
            if let Some(retention) = &mut retention
                && let Some((pruned, took)) = retention.prune_when_grown(state)?
                && measuring.get()
            {
                let took = took.as_secs_f64();
                compactions = (
                    compactions.0 + 1,
                    compactions.1 + took,
                    compactions.2.max(took),
                    compactions.3 + pruned.walk.as_secs_f64(),
                    compactions.4 + pruned.copy.as_secs_f64(),
                );
            }
            last_sync = Instant::now();
        }
        Ok(())
    };
    let (fill_s, prepared, _) = fill_and_prepare(&mut state, keys, transactions, &mut sync)?;
    state.sync()?;
    let before = state.store().map_or(0, |s| s.bytes());
    measuring.set(true);
    let started = Instant::now();
    for (n, transaction) in prepared.iter().enumerate() {
        let committed = state.apply(transaction)?;
        state.keep(&committed, Digest::ZERO, n as i64);
        sync(&mut state)?;
    }
    state.sync()?;
    let measured_s = started.elapsed().as_secs_f64();
    let total = state.store().map_or(0, |s| s.bytes());
    let root = state.root();
    drop(state);
    let started = Instant::now();
    let reopened = CommitState::open(dir)?;
    let reopen_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        reopened.root() == root,
        "the reopened store has another root"
    );
    let measured = finish(keys, fill_s, transactions, measured_s);
    Ok(Measured {
        store_bytes_per_update: (!pruned)
            .then(|| total.saturating_sub(before) as f64 / measured.updates.max(1) as f64),
        store_bytes_measured: total.saturating_sub(before),
        store_bytes_total: total,
        reopen_s: Some(reopen_s),
        compactions: compactions.0,
        compaction_s: compactions.1,
        longest_compaction_s: compactions.2,
        compaction_walk_s: compactions.3,
        compaction_copy_s: compactions.4,
        ..measured
    })
}

/// The apply path in memory, then the snapshot: the state copied and the copy saved at `dir`.
fn snapshot_phase(keys: u64, transactions: &[Vec<Step>], dir: &Path) -> anyhow::Result<Measured> {
    let mut state = CommitState::default();
    let (fill_s, prepared, _) = fill_and_prepare(&mut state, keys, transactions, |_| Ok(()))?;
    let started = Instant::now();
    for transaction in &prepared {
        state.apply(transaction)?;
    }
    let measured_s = started.elapsed().as_secs_f64();
    drop(prepared);
    let started = Instant::now();
    let mut copy = state.in_memory_copy();
    let copy_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let saved = copy.save(dir, Digest::ZERO, 0)?;
    let save_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(saved.root == state.root(), "the copy saved another root");
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir)? {
        bytes += entry?.metadata()?.len();
    }
    Ok(Measured {
        snapshot_copy_s: Some(copy_s),
        snapshot_save_s: Some(save_s),
        snapshot_bytes: bytes,
        ..finish(keys, fill_s, transactions, measured_s)
    })
}

fn memory_phase(keys: u64, transactions: &[Vec<Step>]) -> anyhow::Result<Measured> {
    let mut state = CommitState::default();
    let (fill_s, prepared, next_new) =
        fill_and_prepare(&mut state, keys, transactions, |_| Ok(()))?;
    let started = Instant::now();
    for transaction in &prepared {
        state.apply(transaction)?;
    }
    let measured_s = started.elapsed().as_secs_f64();
    drop(prepared);

    // Proof sizes, over live and absent keys.
    let mut rng = Rng(42);
    let mut proofs = 0u64;
    let mut proof_bytes = 0u64;
    let mut compact_bytes = 0u64;
    let mut compact_max = 0u64;
    for _ in 0..1000 {
        let id = rng.next() % (next_new + next_new / 10);
        let proof = state.prove_row(
            "bench",
            "accounts",
            &walproof_committer::proof::RowSubject::Key(vec![id.to_string()]),
        )?;
        proofs += 1;
        proof_bytes += proof.path.nodes.iter().map(|n| n.len() as u64).sum::<u64>();
        let compact = proof.path.compact(&proof.key())?.len() as u64;
        compact_bytes += compact;
        compact_max = compact_max.max(compact);
    }
    drop(state);

    // Where the time goes: the row hashing alone, and the tree alone on the same changes.
    let started = Instant::now();
    let mut hashed = Vec::with_capacity(transactions.len());
    for steps in transactions {
        let pairs: Vec<(Digest, Option<Digest>)> = steps
            .iter()
            .map(|step| match *step {
                Step::Set { id, balance } => (key_of(id), Some(leaf_of(id, balance))),
                Step::Delete { id } => (key_of(id), None),
            })
            .collect();
        hashed.push(pairs);
    }
    let hashing_s = started.elapsed().as_secs_f64();
    let mut tree = StateTree::default();
    let mut id = 0;
    while id < keys {
        let end = (id + FILL_BATCH).min(keys);
        tree.begin();
        for i in id..end {
            tree.set(&key_of(i), &leaf_of(i, 0))?;
        }
        tree.end();
        id = end;
    }
    let started = Instant::now();
    for pairs in &hashed {
        tree.begin();
        for (key, leaf) in pairs {
            match leaf {
                Some(leaf) => tree.set(key, leaf)?,
                None => tree.remove(key)?,
            }
        }
        tree.end();
        std::hint::black_box(tree.root());
    }
    let tree_s = started.elapsed().as_secs_f64();
    let rest = (measured_s - hashing_s - tree_s).max(0.0);
    Ok(Measured {
        breakdown: vec![
            (
                "the tree (set/remove, a root per transaction)".to_owned(),
                tree_s,
            ),
            (
                "row hashing (3 column hashes, key, leaf)".to_owned(),
                hashing_s,
            ),
            (
                "the rest (row state, transaction walk, allocation)".to_owned(),
                rest,
            ),
        ],
        proofs,
        proof_bytes: proof_bytes as f64 / proofs.max(1) as f64,
        compact_proof_bytes: compact_bytes as f64 / proofs.max(1) as f64,
        compact_proof_max: compact_max,
        ..finish(keys, fill_s, transactions, measured_s)
    })
}

/// The process's peak resident set (`VmHWM`), bytes.
fn peak_rss() -> u64 {
    crate::procfs::memory(std::process::id()).map_or(0, |(_, peak)| peak)
}
