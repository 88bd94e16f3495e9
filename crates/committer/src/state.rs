//! The state the roots commit to: every live row's tree key, its column hashes and its table,
//! changed transaction by transaction exactly as design.md says.
//!
//! - insert, update, snapshot row: the row's leaf is set; an update that changes the key
//!   removes the old key first;
//! - delete: the key is removed (a multiset row: its count goes down, the key goes at 0);
//! - truncate: every key of the table is removed (the state keeps each table's keys);
//! - an unchanged TOASTed value resolves from the column hash held for that row;
//! - a schema change that sends no rows (DROP, RENAME, ADD COLUMN without a default) reshapes
//!   every row of the table from the hashes held: a column takes the hash of the column it
//!   `was`, a new column is NULL; keys and leaves are recomputed under the new names. Where
//!   the decoder sends rows instead, they arrive as a truncate and snapshot rows.
//!
//! The root after a transaction depends only on the set of (key, leaf) pairs, not on how the
//! state got there: a Sparse Merkle Tree is history independent, which is what lets a
//! validator or an offline rebuild reproduce every root.
//!
//! A keyed row's column hashes, key and leaf depend on the transaction alone (its relations
//! and the row), except for an unchanged TOASTed value or a table a schema change reshapes in
//! the transaction. [`RowHashes::of`] computes them ahead, on another thread, and
//! [`CommitState::apply_hashed`] takes them, leaving the tree and the row map to the thread
//! that applies; rows it has no hashes for are hashed as they are applied.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use walproof_core::leaf::{column_hash, multiset_key, multiset_leaf, row_key, row_leaf};
use walproof_core::schema_change::{
    SCHEMA_CHANGE_PREFIX, SchemaChange, Shapes, TableChange, TableChangeKind,
};
use walproof_core::{
    Change, Digest, DigestMap, DigestSet, Lsn, Op, Relation, RelationId, Row, Transaction, Value,
};

use crate::error::{CommitError, Result};
use crate::proof::{RowProof, RowSubject};
use crate::store::{Checkpoint, KeptRoot, KeptRow, PRUNED, Places, RowVersion, Store};
use crate::tree::{Kept, StateTree, prove_stored};

/// One transaction's place in the chain of roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The transaction's commit LSN.
    pub commit_lsn: Lsn,
    /// The root after it.
    pub root: Digest,
    /// The root before it.
    pub previous_root: Digest,
    /// Its number of changes.
    pub changes: u32,
}

/// What [`CommitState::prune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// The first commit LSN still provable.
    pub kept_from: Lsn,
    /// Bytes of the store before and after.
    pub bytes_before: u64,
    /// Bytes of the store after.
    pub bytes_after: u64,
    /// Records kept.
    pub records: usize,
    /// Time spent finding what the kept roots reach (a walk of the log after a restart).
    pub walk: std::time::Duration,
    /// Time spent copying it into the next generation.
    pub copy: std::time::Duration,
}

/// The hashes of a transaction's keyed rows, computed from the transaction alone
/// ([`RowHashes::of`]) for [`CommitState::apply_hashed`].
#[derive(Debug, Default)]
pub struct RowHashes {
    /// The transaction they are of, and its number of changes.
    of: Option<(Lsn, usize)>,
    /// By the change's index in the transaction.
    rows: Vec<Option<HashedRow>>,
}

/// A keyed row's key and hashes.
#[derive(Debug)]
struct HashedRow {
    key_values: Vec<String>,
    key: Digest,
    hashes: Vec<Digest>,
    leaf: Digest,
}

impl RowHashes {
    /// The keyed rows of `transaction`'s inserts, snapshot rows and updates, hashed; none when
    /// a schema change may reshape a table during it. A row that cannot be hashed alone (an
    /// unchanged value, a row of the wrong width) is left for [`CommitState::apply_hashed`].
    pub fn of(transaction: &Transaction) -> RowHashes {
        let reshaped = transaction
            .changes
            .iter()
            .any(|c| matches!(&c.op, Op::Message { prefix, .. } if prefix == SCHEMA_CHANGE_PREFIX));
        if reshaped {
            return RowHashes::default();
        }
        let hashed = |id: &RelationId, row: &Row| {
            let rel = transaction.relations.get(id).filter(|rel| rel.has_key())?;
            let hashes = hashes(rel, row, None).ok()?;
            let key_values = key_values(rel, row).ok()?;
            Some(HashedRow::new(rel, key_values, hashes))
        };
        let rows = transaction
            .changes
            .iter()
            .map(|change| match &change.op {
                Op::Insert { relation, new }
                | Op::Snapshot { relation, row: new }
                | Op::Update { relation, new, .. } => hashed(relation, new),
                _ => None,
            })
            .collect();
        RowHashes {
            of: Some((transaction.commit_lsn, transaction.changes.len())),
            rows,
        }
    }

    /// The hashes of the change at `index`, taken.
    fn take(&mut self, index: usize) -> Option<HashedRow> {
        self.rows.get_mut(index).and_then(Option::take)
    }
}

/// What the state holds for one key.
#[derive(Debug, Clone)]
struct StoredRow {
    table: RelationId,
    /// The key columns' text (keyed tables): a renamed table needs new keys from them.
    key_values: Vec<String>,
    /// `H(col)` of every column, in attribute order.
    hashes: Vec<Digest>,
    /// Identical rows under this key (multiset tables); 1 for a keyed table.
    count: u64,
    /// Where the store keeps this version of the row (0: no store).
    place: u64,
}

/// The tree, the rows behind it and the relations' shapes — in memory, or kept in a durable
/// [`Store`] as well ([`CommitState::open`]).
#[derive(Debug, Default)]
pub struct CommitState {
    tree: StateTree,
    /// Each key's row, behind a pointer: the map's entries stay small (40 bytes), so growing
    /// it moves and touches less memory. Shared with the copies [`CommitState::in_memory_copy`]
    /// makes, so a copy takes no row's text or hashes; a row changed while a copy holds it is
    /// copied then (`Arc::make_mut`).
    rows: DigestMap<Arc<StoredRow>>,
    tables: HashMap<RelationId, DigestSet>,
    shapes: Shapes,
    last: Option<Lsn>,
    /// The durable store, when there is one.
    store: Option<Store>,
    /// Where the current root node is kept.
    root_node: u64,
    /// Each relation's shape as last kept, and where.
    kept_shapes: HashMap<RelationId, (Relation, u64)>,
    /// What each transaction since this state was opened made unreachable from the current
    /// tree: (its root's index, the place of a node or row version it replaced or removed).
    /// The trees of roots `k..` reach exactly the current tree and what transactions after
    /// `k` superseded, so pruning needs no walk of old trees.
    superseded: Vec<(u64, u64)>,
    /// The first transaction `superseded` covers (`None`: not tracked).
    superseded_from: Option<u64>,
    /// Row versions superseded by the transaction being applied.
    rows_superseded: Vec<u64>,
}

impl CommitState {
    /// The state kept in the store at `dir` (created empty when there is none): the tree of its
    /// last checkpoint, read back and checked against that checkpoint's root.
    pub fn open(dir: &std::path::Path) -> Result<CommitState> {
        let store = Store::open(dir)?;
        let mut state = CommitState::default();
        if let Some(checkpoint) = store.checkpoint()? {
            let mut relations = Vec::new();
            for (id, place) in &checkpoint.shapes {
                let shape = store.shape(*place)?;
                state.kept_shapes.insert(*id, (shape.clone(), *place));
                relations.push(shape);
            }
            state.shapes = Shapes::resume(relations);
            let last = checkpoint.last;
            let (rows, tables) = (&mut state.rows, &mut state.tables);
            // The shapes rows were kept under, by place (most rows share their table's last).
            let mut row_shapes: HashMap<u64, Relation> = state
                .kept_shapes
                .values()
                .map(|(shape, place)| (*place, shape.clone()))
                .collect();
            state.tree = StateTree::load(&last.root, last.root_node, &mut |place| {
                let (stored, row) = store.read_tree(place)?;
                if let Some(row) = row {
                    let shape = match row_shapes.entry(row.shape) {
                        Entry::Occupied(known) => known.into_mut(),
                        Entry::Vacant(new) => new.insert(store.shape(row.shape)?),
                    };
                    check_kept_row(shape, &row)
                        .map_err(|problem| CommitError::Tree(format!("the row kept at {place} {problem}")))?;
                    tables.entry(row.table).or_default().insert(row.key);
                    let held = StoredRow {
                        table: row.table,
                        key_values: row.key_values,
                        hashes: row.hashes,
                        count: row.count,
                        place,
                    };
                    rows.insert(row.key, Arc::new(held));
                }
                Ok(stored)
            })
            .map_err(|err| match err {
                CommitError::Store(_) => err,
                err => CommitError::Store(format!(
                    "{}: {err}; the store is damaged (move the directory aside to rebuild it from the ledger)",
                    dir.display()
                )),
            })?;
            state.root_node = last.root_node;
            state.last = Some(last.commit_lsn);
        }
        state.store = Some(store);
        Ok(state)
    }

    /// Writes this state, kept in memory, as a store of its own at `dir` (which holds none
    /// yet): its shapes, its rows and its tree, with the last transaction applied as the
    /// store's one root, ending in the ledger at `ledger_offset` with hash `ledger_hash`.
    /// [`CommitState::read_saved`] reads it back. The state stays as it was, in memory.
    pub fn save(
        &mut self,
        dir: &std::path::Path,
        ledger_hash: Digest,
        ledger_offset: i64,
    ) -> Result<KeptRoot> {
        let saving = |problem: &str| CommitError::Store(format!("{}: {problem}", dir.display()));
        if self.store.is_some() {
            return Err(saving(
                "a state kept in a store of its own is not saved elsewhere",
            ));
        }
        let Some(commit_lsn) = self.last else {
            return Err(saving("nothing was applied: there is no state to save"));
        };
        let store = Store::open(dir)?;
        if store.roots() > 0 {
            return Err(saving("it holds a store already"));
        }
        self.store = Some(store);
        let saved = self.save_into_store(commit_lsn, ledger_hash, ledger_offset);
        self.store = None;
        self.kept_shapes.clear();
        self.root_node = 0;
        saved
    }

    fn save_into_store(
        &mut self,
        commit_lsn: Lsn,
        ledger_hash: Digest,
        ledger_offset: i64,
    ) -> Result<KeptRoot> {
        let shapes = std::mem::take(&mut self.shapes);
        let ids: Vec<RelationId> = shapes.relations().map(|rel| rel.id).collect();
        self.keep_shapes(&shapes, ids);
        self.shapes = shapes;
        // Where each row is kept, apart from the rows themselves, which a running state may
        // share with this one (a copy being saved).
        let mut places: DigestMap<u64> = DigestMap::default();
        places.reserve(self.rows.len());
        for (key, leaf) in self.tree.pairs() {
            let row = self.rows.get(&key).ok_or_else(|| {
                CommitError::Tree(format!("the tree holds key {key}, which has no row"))
            })?;
            let place = keep_row(&mut self.store, &self.kept_shapes, &key, &leaf, row);
            places.insert(key, place);
        }
        let Some(store) = &mut self.store else {
            unreachable!("save() opened the store");
        };
        let place_of = |key: &Digest| places.get(key).copied().unwrap_or(0);
        let root_node = self
            .tree
            .write_all(&mut |_, bytes, children| keep_node(store, &place_of, bytes, children));
        let root = self.tree.root();
        store.push_root(KeptRoot {
            commit_lsn,
            root,
            previous_root: root,
            ledger_hash,
            changes: 0,
            root_node,
            ledger_offset,
        });
        self.root_node = root_node;
        self.sync()?;
        Ok(self.last_kept().expect("a root was just kept"))
    }

    /// A copy of the tree, the rows and the shapes, held in memory only (no store, nothing
    /// tracked for pruning): what a snapshot is written from on another thread while this
    /// state goes on. The rows are shared, not copied: it costs a copy of the tree's nodes and
    /// of the maps' pointers.
    pub fn in_memory_copy(&self) -> CommitState {
        let mut tree = self.tree.clone();
        tree.forget_superseded();
        CommitState {
            tree,
            rows: self.rows.clone(),
            tables: self.tables.clone(),
            shapes: self.shapes.clone(),
            last: self.last,
            ..CommitState::default()
        }
    }

    /// The state [`CommitState::save`] wrote at `dir`, read back as [`CommitState::open`]
    /// reads a store (the tree checked against the root), held in memory from now on; with
    /// the root it was saved at. `None` when `dir` holds no saved state.
    pub fn read_saved(dir: &std::path::Path) -> Result<Option<(CommitState, KeptRoot)>> {
        if !dir.exists() {
            return Ok(None);
        }
        let mut state = CommitState::open(dir)?;
        let Some(saved) = state.last_kept() else {
            return Ok(None);
        };
        state.store = None;
        state.kept_shapes.clear();
        state.root_node = 0;
        Ok(Some((state, saved)))
    }

    /// The shapes of the relations the state follows.
    pub fn relations(&self) -> impl Iterator<Item = &Relation> {
        self.shapes.relations()
    }

    /// From the next transaction on, records what each one supersedes, so that
    /// [`CommitState::prune`] need not walk old trees (call it when a retention is kept: the
    /// record grows until the next pruning).
    pub fn track_superseded(&mut self) {
        if let Some(store) = &self.store
            && self.superseded_from.is_none()
        {
            self.superseded_from = Some(store.next_root_index());
            self.tree.track_superseded();
        }
    }

    /// The last transaction kept in the store (committed or pending), with where it ends in
    /// the ledger.
    pub fn last_kept(&self) -> Option<KeptRoot> {
        self.store.as_ref().and_then(Store::last_root)
    }

    /// The store, when there is one.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Records `committed` (whose last ledger record is at `ledger_offset`, with hash
    /// `ledger_hash`) in the store, to be made durable by [`CommitState::sync`].
    pub fn keep(&mut self, committed: &Committed, ledger_hash: Digest, ledger_offset: i64) {
        if let Some(store) = &mut self.store {
            store.push_root(KeptRoot {
                commit_lsn: committed.commit_lsn,
                root: committed.root,
                previous_root: committed.previous_root,
                ledger_hash,
                changes: committed.changes,
                root_node: self.root_node,
                ledger_offset,
            });
        }
    }

    /// Makes everything kept so far durable (nothing without a store or with nothing new).
    pub fn sync(&mut self) -> Result<()> {
        let Some(last) = self
            .store
            .as_ref()
            .filter(|store| store.has_pending())
            .and_then(Store::last_root)
        else {
            return Ok(());
        };
        // Every current shape is kept already (each transaction keeps its relations'); this
        // only guards the checkpoint against one that is not.
        let shapes = std::mem::take(&mut self.shapes);
        self.keep_shapes(&shapes, shapes.relations().map(|rel| rel.id));
        let places = shapes
            .relations()
            .filter_map(|rel| Some((rel.id, self.kept_shapes.get(&rel.id)?.1)))
            .collect();
        self.shapes = shapes;
        match &mut self.store {
            Some(store) => store.commit(&Checkpoint {
                last,
                shapes: places,
            }),
            None => Ok(()),
        }
    }

    /// Prunes the store below the retention horizon: only the trees of the last `retain`
    /// roots (at least one) stay provable; older roots keep their records. Syncs first; does
    /// nothing without a store or when the horizon has not moved since the last pruning.
    pub fn prune(&mut self, retain: u64) -> Result<Option<Pruned>> {
        self.sync()?;
        let Some(store) = &mut self.store else {
            return Ok(None);
        };
        let keep_from = store.roots().saturating_sub(retain.max(1));
        if keep_from <= store.kept_from() {
            return Ok(None);
        }
        let bytes_before = store.bytes();
        // The current tree, known from memory: the store walks only what older kept roots
        // add to it.
        let mut reached =
            Places::with_capacity_and_hasher(self.rows.len() * 2 + 1, Default::default());
        reached.extend(self.tree.stored_places());
        reached.extend(self.rows.values().map(|row| row.place));
        reached.insert(self.root_node);
        // The older kept roots add what transactions after `keep_from` superseded — when that
        // was tracked since (else, after a restart, their trees are walked in the log).
        self.superseded.retain(|(index, _)| *index > keep_from);
        let started = std::time::Instant::now();
        let reached = if self
            .superseded_from
            .is_some_and(|from| from <= keep_from + 1)
        {
            reached.extend(self.superseded.iter().map(|(_, place)| *place));
            reached.remove(&0);
            #[cfg(test)]
            {
                let mut current = Places::default();
                current.extend(self.tree.stored_places());
                current.extend(self.rows.values().map(|row| row.place));
                current.insert(self.root_node);
                current.remove(&0);
                let walked = store.reach(keep_from, current)?;
                // Superseded may hold more: a row version written and replaced within one
                // transaction (no root reaches it; it is dropped once the horizon passes).
                let missing: Vec<_> = walked.difference(&reached).collect();
                assert!(
                    missing.is_empty(),
                    "the old trees reach records nothing superseded: {missing:?}"
                );
            }
            reached
        } else {
            reached.remove(&0);
            store.reach(keep_from, reached)?
        };
        let walk = started.elapsed();
        let relocation = store.compact_reached(keep_from, &reached)?;
        let copy = started.elapsed() - walk;
        let moved = |old: u64| relocation.place(old);
        self.tree.relocate(&moved)?;
        for row in self.rows.values_mut() {
            let row = Arc::make_mut(row);
            row.place = moved(row.place).ok_or_else(|| {
                CommitError::Store(format!("the row kept at {} was not moved", row.place))
            })?;
        }
        for (_, place) in self.kept_shapes.values_mut() {
            *place = moved(*place).ok_or_else(|| {
                CommitError::Store(format!("the shape kept at {place} was not moved"))
            })?;
        }
        self.root_node = moved(self.root_node).ok_or_else(|| {
            CommitError::Store(format!(
                "the root node kept at {} was not moved",
                self.root_node
            ))
        })?;
        for (_, place) in &mut self.superseded {
            *place = moved(*place).ok_or_else(|| {
                CommitError::Store(format!("the superseded record at {place} was not moved"))
            })?;
        }
        Ok(Some(Pruned {
            kept_from: store.root_record(keep_from)?.commit_lsn,
            bytes_before,
            bytes_after: store.bytes(),
            records: relocation.len(),
            walk,
            copy,
        }))
    }

    /// Keeps the shape of each of `ids` that changed since it was last kept.
    fn keep_shapes(&mut self, shapes: &Shapes, ids: impl IntoIterator<Item = RelationId>) {
        let Some(store) = &mut self.store else {
            return;
        };
        for id in ids {
            let Some(rel) = shapes.get(id) else { continue };
            if self
                .kept_shapes
                .get(&id)
                .is_none_or(|(kept, _)| kept != rel)
            {
                let place = store.push_shape(rel);
                self.kept_shapes.insert(id, (rel.clone(), place));
            }
        }
    }

    /// The current root.
    pub fn root(&self) -> Digest {
        self.tree.root()
    }

    /// The commit LSN of the last transaction applied.
    pub fn last_applied(&self) -> Option<Lsn> {
        self.last
    }

    /// Live keys (a multiset key counts once).
    pub fn keys(&self) -> usize {
        self.rows.len()
    }

    /// The number of keys one table holds in the tree (its rows, for a keyed table).
    pub fn table_keys(&self, table: RelationId) -> usize {
        self.tables.get(&table).map_or(0, HashSet::len)
    }

    /// The column hashes `H(col)` the tree holds under `key` (a keyed table's row), in
    /// attribute order: what the row's own values must hash to.
    pub fn column_hashes(&self, key: &Digest) -> Option<&[Digest]> {
        self.rows.get(key).map(|row| row.hashes.as_slice())
    }

    /// How many identical rows the tree holds under `key`: a multiset row's multiplicity (1
    /// for a keyed table's row), `None` when it holds no row there.
    pub fn row_count(&self, key: &Digest) -> Option<u64> {
        self.rows.get(key).map(|row| row.count)
    }

    /// The proof of a row at the root of `at` — the last transaction at or before that LSN —
    /// or at the current root (`None`, or `at` not before the last LSN). Earlier roots are
    /// read from the store; without one only the current root is provable.
    pub fn prove_row_at(
        &mut self,
        schema: &str,
        table: &str,
        row: &RowSubject,
        at: Option<Lsn>,
    ) -> Result<RowProof> {
        let Some(at) = at.filter(|at| self.last.is_some_and(|last| *at < last)) else {
            return self.prove_row(schema, table, row);
        };
        let (key, by_value) = {
            let subject = self.subject(schema, table, row)?;
            (subject.key, subject.by_value)
        };
        self.sync()?;
        let Some(store) = &self.store else {
            return Err(CommitError::NoProof(format!(
                "only the latest root ({}) is provable without a store",
                self.last.unwrap_or(Lsn::ZERO)
            )));
        };
        let kept = store
            .root_at(at)?
            .ok_or_else(|| CommitError::NoProof(format!("no root at or before {at} is kept")))?;
        if kept.root_node == PRUNED {
            let from = store.root_record(store.kept_from())?.commit_lsn;
            return Err(CommitError::NoProof(format!(
                "the tree of {} (the root at {at}) was pruned: proofs are kept from {from} on",
                kept.commit_lsn
            )));
        }
        let (path, leaf) = prove_stored(&kept.root, kept.root_node, &key, &mut |place| {
            Ok(store.read_tree(place)?.0)
        })?;
        let kept_row = match leaf {
            None => None,
            Some(place) => {
                let (_, Some(kept_row)) = store.read_tree(place)? else {
                    return Err(CommitError::Store(format!(
                        "the leaf at {place} is not a row"
                    )));
                };
                Some(kept_row)
            }
        };
        // A row found shows its columns as they were named then (a column renamed since
        // keeps a multiset row's key, not its leaf).
        let (columns, multiset) = match (kept_row, by_value) {
            (None, by_value) => {
                let multiset = by_value.as_ref().map(|_| 0);
                (by_value.unwrap_or_default(), multiset)
            }
            (Some(kept_row), by_value) => (
                proved_columns(&store.shape(kept_row.shape)?, &kept_row.hashes),
                by_value.map(|_| kept_row.count),
            ),
        };
        Ok(RowProof {
            commit_lsn: Some(kept.commit_lsn),
            root: kept.root,
            schema: schema.to_owned(),
            table: table.to_owned(),
            key_values: row.key_values(),
            columns,
            multiset,
            present: leaf.is_some(),
            path,
        })
    }

    /// The table `schema.table` and the tree key of `row` in it: by its key columns in a keyed
    /// table, by all its values in a multiset (whose columns are returned too).
    fn subject(&self, schema: &str, table: &str, row: &RowSubject) -> Result<Subject<'_>> {
        let missing = CommitError::NoProof;
        let rel = self
            .shapes
            .relations()
            .find(|r| r.schema == schema && r.name == table)
            .ok_or_else(|| missing(format!("no table {schema}.{table} is committed")))?;
        match row {
            RowSubject::Key(_) if !rel.has_key() => Err(missing(format!(
                "{schema}.{table} has no key (a multiset): its rows are proved by their values"
            ))),
            RowSubject::Key(key_values) => {
                let wanted = rel.columns.iter().filter(|c| c.key).count();
                if key_values.len() != wanted {
                    return Err(missing(format!(
                        "{schema}.{table} has {wanted} key columns, {} values were given",
                        key_values.len()
                    )));
                }
                Ok(Subject {
                    rel,
                    key: table_key(rel, key_values),
                    by_value: None,
                })
            }
            RowSubject::Values(_) if rel.has_key() => Err(missing(format!(
                "{schema}.{table} is keyed: its rows are proved by their key columns"
            ))),
            RowSubject::Values(values) => {
                if let Some((name, _)) = values
                    .iter()
                    .find(|(name, _)| !rel.columns.iter().any(|c| &c.name == name))
                {
                    return Err(missing(format!("{schema}.{table} has no column {name}")));
                }
                let mut hashes = Vec::with_capacity(rel.columns.len());
                for column in &rel.columns {
                    let mut given = values.iter().filter(|(name, _)| *name == column.name);
                    let (Some((_, value)), None) = (given.next(), given.next()) else {
                        return Err(missing(format!(
                            "a row of {schema}.{table} (a multiset) is proved by every column's value, once: give column {} exactly once (null for NULL)",
                            column.name
                        )));
                    };
                    hashes.push(column_hash(column.type_oid, value.as_deref()));
                }
                Ok(Subject {
                    rel,
                    key: multiset_key(&rel.schema, &rel.name, &hashes),
                    by_value: Some(proved_columns(rel, &hashes)),
                })
            }
        }
    }

    /// The proof of a row at the current root.
    pub fn prove_row(&self, schema: &str, table: &str, row: &RowSubject) -> Result<RowProof> {
        let Subject { rel, key, by_value } = self.subject(schema, table, row)?;
        let held = self.rows.get(&key);
        let (columns, multiset) = match by_value {
            None => (
                held.map_or_else(Vec::new, |held| proved_columns(rel, &held.hashes)),
                None,
            ),
            Some(columns) => (columns, Some(held.map_or(0, |held| held.count))),
        };
        Ok(RowProof {
            commit_lsn: self.last,
            root: self.root(),
            schema: schema.to_owned(),
            table: table.to_owned(),
            key_values: row.key_values(),
            columns,
            multiset,
            present: held.is_some(),
            path: self.tree.prove(&key)?,
        })
    }

    /// Applies one whole transaction and returns its root. After an error the state is not
    /// usable any more: the committer stops and never publishes a root for that transaction.
    pub fn apply(&mut self, transaction: &Transaction) -> Result<Committed> {
        self.apply_hashed(transaction, RowHashes::default())
    }

    /// [`CommitState::apply`], with the rows `hashed` ahead ([`RowHashes::of`] of this very
    /// transaction; hashes of another one are ignored).
    pub fn apply_hashed(
        &mut self,
        transaction: &Transaction,
        mut hashed: RowHashes,
    ) -> Result<Committed> {
        if hashed.of != Some((transaction.commit_lsn, transaction.changes.len())) {
            hashed = RowHashes::default();
        }
        let commit_lsn = transaction.commit_lsn;
        if let Some(last) = self.last.filter(|last| commit_lsn <= *last) {
            return Err(CommitError::Change {
                commit_lsn,
                ordinal: 0,
                problem: format!("not after the last transaction applied, {last}"),
            });
        }
        let previous_root = self.root();
        let mut shapes = std::mem::take(&mut self.shapes);
        let schema_changes = shapes
            .begin(transaction)
            .map_err(|source| CommitError::SchemaChange { commit_lsn, source })?;
        let mut schema_changes = schema_changes.into_iter();
        self.keep_shapes(&shapes, transaction.relations.keys().copied());
        self.tree.begin();
        let applied = transaction
            .changes
            .iter()
            .enumerate()
            .try_for_each(|(index, change)| {
                let hashed = hashed.take(index);
                self.change(&mut shapes, &mut schema_changes, commit_lsn, change, hashed)
            });
        if let Some(store) = &mut self.store {
            let rows = &self.rows;
            let root_node = self.tree.end_with(&mut |_, bytes, children| {
                keep_node(
                    store,
                    &|key| rows.get(key).map_or(0, |row| row.place),
                    bytes,
                    children,
                )
            });
            if let Some(root_node) = root_node {
                let index = store.next_root_index();
                let superseded = self
                    .tree
                    .take_superseded()
                    .into_iter()
                    .chain(self.rows_superseded.drain(..))
                    .chain((self.root_node != root_node).then_some(self.root_node))
                    .filter(|place| *place != 0);
                self.superseded
                    .extend(superseded.map(|place| (index, place)));
                self.root_node = root_node;
            }
        } else {
            // Without a store there is nothing to prune: what was superseded is forgotten.
            self.rows_superseded.clear();
            self.tree.end();
        }
        shapes.end();
        self.shapes = shapes;
        applied?;
        self.last = Some(commit_lsn);
        Ok(Committed {
            commit_lsn,
            root: self.root(),
            previous_root,
            changes: transaction.changes.len() as u32,
        })
    }

    fn change(
        &mut self,
        shapes: &mut Shapes,
        schema_changes: &mut impl Iterator<Item = SchemaChange>,
        commit_lsn: Lsn,
        change: &Change,
        hashed: Option<HashedRow>,
    ) -> Result<()> {
        let problem = |problem: String| CommitError::Change {
            commit_lsn,
            ordinal: change.ordinal,
            problem,
        };
        if let Op::Message { prefix, .. } = &change.op {
            if prefix == SCHEMA_CHANGE_PREFIX {
                let schema_change = schema_changes
                    .next()
                    .ok_or_else(|| problem("a schema change that did not parse".into()))?;
                let before = shapes.follow(&schema_change);
                self.keep_shapes(shapes, schema_change.tables.iter().map(|t| t.oid));
                for (table, before) in schema_change.tables.iter().zip(before) {
                    let derivable = table.change == TableChangeKind::Altered && !table.rows_follow;
                    if derivable && before.is_some() {
                        self.reshape(table)?;
                    }
                }
            }
            return Ok(());
        }
        let shapes: &Shapes = shapes;
        let relation = |id: RelationId| {
            shapes
                .get(id)
                .ok_or_else(|| problem(format!("relation {id} is not described")))
        };
        match &change.op {
            Op::Insert { relation: id, new }
            | Op::Snapshot {
                relation: id,
                row: new,
            } => {
                let rel = relation(*id)?;
                if let Some(row) = hashed {
                    return self.put_keyed(rel, row);
                }
                let hashes = hashes(rel, new, None).map_err(problem)?;
                if rel.has_key() {
                    let key_values = key_values(rel, new).map_err(problem)?;
                    self.put_keyed(rel, HashedRow::new(rel, key_values, hashes))
                } else {
                    self.put_multiset(rel, hashes, 1)
                }
            }
            Op::Update {
                relation: id,
                old,
                new,
            } => {
                let rel = relation(*id)?;
                if rel.has_key() {
                    let old_row = old.as_ref().map_or(new, |old| old.row());
                    let old_key = match (&hashed, old) {
                        // The key did not change: the row hashed ahead has it.
                        (Some(row), None) => row.key,
                        _ => table_key(rel, &key_values(rel, old_row).map_err(problem)?),
                    };
                    let new_row = match hashed {
                        Some(row) => row,
                        None => {
                            // Unchanged TOAST values resolve from the hashes held for the row.
                            let previous = self.rows.get(&old_key).map(|row| row.hashes.as_slice());
                            let hashes = hashes(rel, new, previous).map_err(problem)?;
                            let key_values = key_values(rel, new).map_err(problem)?;
                            HashedRow::new(rel, key_values, hashes)
                        }
                    };
                    let not_held = || {
                        problem(format!(
                            "an update of {}.{} row {:?}, which is not held",
                            rel.schema,
                            rel.name,
                            key_values(rel, old_row).unwrap_or_default()
                        ))
                    };
                    if new_row.key == old_key {
                        // The same key: its leaf changes in place.
                        return self
                            .replace_keyed(new_row)?
                            .then_some(())
                            .ok_or_else(not_held);
                    }
                    if !self.remove_key(&old_key)? {
                        return Err(not_held());
                    }
                    self.put_keyed(rel, new_row)
                } else {
                    let Some(old) = old else {
                        return Err(problem(format!(
                            "an update of {}.{} (a multiset) without its old row",
                            rel.schema, rel.name
                        )));
                    };
                    let old_hashes = hashes(rel, old.row(), None).map_err(problem)?;
                    let new_hashes = hashes(rel, new, Some(&old_hashes)).map_err(problem)?;
                    self.take_multiset(rel, &old_hashes).map_err(problem)?;
                    self.put_multiset(rel, new_hashes, 1)
                }
            }
            Op::Delete { relation: id, old } => {
                let rel = relation(*id)?;
                if rel.has_key() {
                    let values = key_values(rel, old.row()).map_err(problem)?;
                    if !self.remove_key(&table_key(rel, &values))? {
                        return Err(problem(format!(
                            "a delete of {}.{} row {values:?}, which is not held",
                            rel.schema, rel.name
                        )));
                    }
                    Ok(())
                } else {
                    let old_hashes = hashes(rel, old.row(), None).map_err(problem)?;
                    self.take_multiset(rel, &old_hashes).map_err(problem)
                }
            }
            Op::Truncate { relations, .. } => {
                for id in relations {
                    self.clear_table(*id)?;
                }
                Ok(())
            }
            Op::Message { .. } => Ok(()), // schema changes are followed above
        }
    }

    fn put_keyed(&mut self, rel: &Relation, row: HashedRow) -> Result<()> {
        let HashedRow {
            key_values,
            key,
            hashes,
            leaf,
        } = row;
        self.tree.set(&key, &leaf)?;
        self.tables.entry(rel.id).or_default().insert(key);
        let mut row = StoredRow {
            table: rel.id,
            key_values,
            hashes,
            count: 1,
            place: 0,
        };
        row.place = keep_row(&mut self.store, &self.kept_shapes, &key, &leaf, &row);
        if let Some(old) = self.rows.insert(key, Arc::new(row)) {
            self.rows_superseded.push(old.place);
        }
        Ok(())
    }

    /// Gives a keyed row that is held its new hashes under its same key; false when it is not
    /// held.
    fn replace_keyed(&mut self, new: HashedRow) -> Result<bool> {
        let Some(row) = self.rows.get_mut(&new.key) else {
            return Ok(false);
        };
        let row = Arc::make_mut(row);
        self.tree.set(&new.key, &new.leaf)?;
        row.hashes = new.hashes;
        self.rows_superseded.push(row.place);
        row.place = keep_row(&mut self.store, &self.kept_shapes, &new.key, &new.leaf, row);
        Ok(true)
    }

    fn put_multiset(&mut self, rel: &Relation, hashes: Vec<Digest>, count: u64) -> Result<()> {
        let key = multiset_key(&rel.schema, &rel.name, &hashes);
        let row = self.rows.entry(key).or_insert_with(|| {
            Arc::new(StoredRow {
                table: rel.id,
                key_values: Vec::new(),
                hashes,
                count: 0,
                place: 0,
            })
        });
        let row = Arc::make_mut(row);
        row.count += count;
        let leaf = multiset_leaf(row.count, names(rel).zip(&row.hashes));
        self.tree.set(&key, &leaf)?;
        self.tables.entry(rel.id).or_default().insert(key);
        self.rows_superseded.push(row.place);
        row.place = keep_row(&mut self.store, &self.kept_shapes, &key, &leaf, row);
        Ok(())
    }

    fn take_multiset(&mut self, rel: &Relation, hashes: &[Digest]) -> Result<(), String> {
        let key = multiset_key(&rel.schema, &rel.name, hashes);
        let Some(row) = self.rows.get_mut(&key) else {
            return Err(format!(
                "a row of {}.{} (a multiset) that is not held",
                rel.schema, rel.name
            ));
        };
        let row = Arc::make_mut(row);
        row.count -= 1;
        self.rows_superseded.push(row.place);
        let outcome = if row.count == 0 {
            self.rows.remove(&key);
            if let Some(keys) = self.tables.get_mut(&rel.id) {
                keys.remove(&key);
            }
            self.tree.remove(&key)
        } else {
            let leaf = multiset_leaf(row.count, names(rel).zip(&row.hashes));
            row.place = keep_row(&mut self.store, &self.kept_shapes, &key, &leaf, row);
            self.tree.set(&key, &leaf)
        };
        outcome.map_err(|err| err.to_string())
    }

    /// Removes a keyed row; false when it is not held.
    fn remove_key(&mut self, key: &Digest) -> Result<bool> {
        let Some(row) = self.rows.remove(key) else {
            return Ok(false);
        };
        self.rows_superseded.push(row.place);
        if let Some(keys) = self.tables.get_mut(&row.table) {
            keys.remove(key);
        }
        self.tree.remove(key)?;
        Ok(true)
    }

    fn clear_table(&mut self, table: RelationId) -> Result<Vec<StoredRow>> {
        let keys = self.tables.remove(&table).unwrap_or_default();
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(row) = self.rows.remove(&key) {
                self.rows_superseded.push(row.place);
                rows.push(Arc::unwrap_or_clone(row));
            }
            self.tree.remove(&key)?;
        }
        Ok(rows)
    }

    /// Every row of a table taken into its new shape (see the module comment).
    fn reshape(&mut self, table: &TableChange) -> Result<()> {
        let rel = table.relation();
        for row in self.clear_table(table.oid)? {
            let hashes = table
                .columns
                .iter()
                .map(|column| {
                    column
                        .was
                        .and_then(|i| row.hashes.get(i as usize).copied())
                        .unwrap_or_else(|| column_hash(column.type_oid, None))
                })
                .collect();
            if rel.has_key() {
                self.put_keyed(&rel, HashedRow::new(&rel, row.key_values, hashes))?;
            } else {
                self.put_multiset(&rel, hashes, row.count)?;
            }
        }
        Ok(())
    }
}

impl HashedRow {
    /// A keyed row of `rel` with its key and leaf.
    fn new(rel: &Relation, key_values: Vec<String>, hashes: Vec<Digest>) -> HashedRow {
        HashedRow {
            key: table_key(rel, &key_values),
            leaf: row_leaf(names(rel).zip(&hashes)),
            key_values,
            hashes,
        }
    }
}

/// Keeps a row's new version in the store; returns where (0 without a store).
/// Keeps a node the tree hashed, its children by where the store keeps them; returns its place.
fn keep_node(
    store: &mut Store,
    row_place: &dyn Fn(&Digest) -> u64,
    bytes: &[u8],
    children: &[Kept<'_>],
) -> u64 {
    let mut places = [0u64; 2];
    for (place, child) in places.iter_mut().zip(children) {
        *place = match child {
            Kept::Leaf(key) => row_place(key),
            Kept::Node(place) => *place,
        };
    }
    store.push_node(bytes, &places[..children.len()])
}

fn keep_row(
    store: &mut Option<Store>,
    kept_shapes: &HashMap<RelationId, (Relation, u64)>,
    key: &Digest,
    leaf: &Digest,
    row: &StoredRow,
) -> u64 {
    let Some(store) = store else {
        return 0;
    };
    store.push_row(RowVersion {
        key,
        leaf,
        table: row.table,
        shape: kept_shapes.get(&row.table).map_or(0, |(_, place)| *place),
        count: row.count,
        key_values: &row.key_values,
        hashes: &row.hashes,
    })
}

/// A row's columns as a proof shows them: name, type and `H(col)`.
fn proved_columns(rel: &Relation, hashes: &[Digest]) -> Vec<crate::proof::ProvedColumn> {
    rel.columns
        .iter()
        .zip(hashes)
        .map(|(c, hash)| crate::proof::ProvedColumn {
            name: c.name.clone(),
            type_oid: c.type_oid,
            hash: *hash,
        })
        .collect()
}

/// Whether a row read back from the store is the row its leaf and key were hashed from: its
/// column hashes and key columns hash again, under the shape it was kept with, to the key and
/// leaf the tree holds (the tree itself is checked against its root). Otherwise, what is wrong.
fn check_kept_row(rel: &Relation, row: &KeptRow) -> std::result::Result<(), String> {
    let table = || format!("{}.{}", rel.schema, rel.name);
    if row.table != rel.id || row.hashes.len() != rel.columns.len() {
        return Err(format!(
            "(of {}) holds {} column hashes of table {}, its shape {} columns of table {}",
            table(),
            row.hashes.len(),
            row.table,
            rel.columns.len(),
            rel.id
        ));
    }
    let keyed = rel.has_key();
    if (keyed && row.count != 1) || row.count == 0 {
        return Err(format!(
            "(of {}) counts {} identical rows, which a {} row cannot",
            table(),
            row.count,
            if keyed { "keyed" } else { "multiset" }
        ));
    }
    let (key, leaf) = if keyed {
        (
            table_key(rel, &row.key_values),
            row_leaf(names(rel).zip(&row.hashes)),
        )
    } else {
        (
            multiset_key(&rel.schema, &rel.name, &row.hashes),
            multiset_leaf(row.count, names(rel).zip(&row.hashes)),
        )
    };
    if key != row.key {
        return Err(format!(
            "(of {}) has key columns that hash to {key}, not to its key {}",
            table(),
            row.key
        ));
    }
    if leaf != row.leaf {
        return Err(format!(
            "(of {}) has column hashes that hash to {leaf}, not to its leaf {}",
            table(),
            row.leaf
        ));
    }
    Ok(())
}

/// The table a proof is about, the tree key of its row, and a multiset row's columns.
struct Subject<'a> {
    rel: &'a Relation,
    key: Digest,
    by_value: Option<Vec<crate::proof::ProvedColumn>>,
}

fn names(rel: &Relation) -> impl Iterator<Item = &str> {
    rel.columns.iter().map(|c| c.name.as_str())
}

fn table_key(rel: &Relation, key_values: &[String]) -> Digest {
    row_key(
        &rel.schema,
        &rel.name,
        key_values.iter().map(String::as_str),
    )
}

/// `H(col)` of each value; an unchanged value takes the hash held in `previous`.
fn hashes(
    rel: &Relation,
    row: &Row,
    previous: Option<&[Digest]>,
) -> std::result::Result<Vec<Digest>, String> {
    if row.0.len() != rel.columns.len() {
        return Err(format!(
            "a row of {} values for {}.{}, which has {} columns",
            row.0.len(),
            rel.schema,
            rel.name,
            rel.columns.len()
        ));
    }
    rel.columns
        .iter()
        .zip(&row.0)
        .enumerate()
        .map(|(i, (column, value))| match value {
            Value::Text(text) => Ok(column_hash(column.type_oid, Some(text))),
            Value::Null => Ok(column_hash(column.type_oid, None)),
            Value::Unchanged => previous.and_then(|p| p.get(i).copied()).ok_or_else(|| {
                format!(
                    "column {} of {}.{} is unchanged but no earlier value is held",
                    column.name, rel.schema, rel.name
                )
            }),
        })
        .collect()
}

/// The key columns' text, in attribute order.
fn key_values(rel: &Relation, row: &Row) -> std::result::Result<Vec<String>, String> {
    rel.columns
        .iter()
        .zip(&row.0)
        .filter(|(column, _)| column.key)
        .map(|(column, value)| {
            value.as_text().map(str::to_owned).ok_or_else(|| {
                format!(
                    "key column {} of {}.{} has no value",
                    column.name, rel.schema, rel.name
                )
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::cloned_ref_to_slice_refs)] // fixtures read better as `&[a.clone()]`
mod tests {
    use std::collections::BTreeMap;

    use walproof_core::schema_change::{ColumnChange, SchemaChange};
    use walproof_core::{Column, OldRow, ReplicaIdentity};

    use super::*;

    fn relation(
        id: RelationId,
        name: &str,
        columns: &[(&str, bool)],
        identity: ReplicaIdentity,
    ) -> Relation {
        Relation {
            id,
            schema: "public".into(),
            name: name.into(),
            replica_identity: identity,
            columns: columns
                .iter()
                .map(|(name, key)| Column {
                    name: (*name).into(),
                    type_oid: 25,
                    type_modifier: -1,
                    key: *key,
                })
                .collect(),
        }
    }

    fn accounts() -> Relation {
        relation(
            1,
            "accounts",
            &[("id", true), ("name", false), ("note", false)],
            ReplicaIdentity::Default,
        )
    }

    fn events() -> Relation {
        relation(
            2,
            "events",
            &[("kind", false), ("n", false)],
            ReplicaIdentity::Full,
        )
    }

    fn row(values: &[Option<&str>]) -> Row {
        Row(values
            .iter()
            .map(|v| v.map_or(Value::Null, |t| Value::Text(t.into())))
            .collect())
    }

    fn transaction(lsn: u64, relations: &[Relation], ops: Vec<Op>) -> Transaction {
        Transaction {
            commit_lsn: Lsn::new(lsn),
            xid: 1,
            commit_time_us: 0,
            relations: relations
                .iter()
                .map(|r| (r.id, r.clone()))
                .collect::<BTreeMap<_, _>>(),
            changes: ops
                .into_iter()
                .enumerate()
                .map(|(i, op)| Change {
                    ordinal: i as u32,
                    op,
                })
                .collect(),
        }
    }

    fn insert(rel: &Relation, values: &[Option<&str>]) -> Op {
        Op::Insert {
            relation: rel.id,
            new: row(values),
        }
    }

    /// The root of a state holding exactly these rows, built from scratch.
    fn root_of(relations: &[Relation], rows: &[(&Relation, &[Option<&str>])]) -> Digest {
        let mut state = CommitState::default();
        let ops = rows
            .iter()
            .map(|(rel, values)| insert(rel, values))
            .collect();
        state.apply(&transaction(1, relations, ops)).unwrap().root
    }

    #[test]
    fn updates_deletes_and_key_changes_leave_the_root_of_the_rows_that_remain() {
        let a = accounts();
        let mut state = CommitState::default();
        let first = state
            .apply(&transaction(
                10,
                &[a.clone()],
                vec![
                    insert(&a, &[Some("1"), Some("ann"), None]),
                    insert(&a, &[Some("2"), Some("bob"), None]),
                    insert(&a, &[Some("3"), Some("cy"), None]),
                ],
            ))
            .unwrap();
        assert_eq!(first.previous_root, crate::EMPTY_ROOT);
        let second = state
            .apply(&transaction(
                20,
                &[a.clone()],
                vec![
                    Op::Update {
                        relation: 1,
                        old: None,
                        new: row(&[Some("1"), Some("ann"), Some("vip")]),
                    },
                    Op::Update {
                        relation: 1,
                        old: Some(OldRow::Key(row(&[Some("2"), None, None]))),
                        new: row(&[Some("20"), Some("bob"), None]),
                    },
                    Op::Delete {
                        relation: 1,
                        old: OldRow::Key(row(&[Some("3"), None, None])),
                    },
                ],
            ))
            .unwrap();
        assert_eq!(second.previous_root, first.root);
        assert_eq!(second.changes, 3);
        assert_eq!(
            second.root,
            root_of(
                &[a.clone()],
                &[
                    (&a, &[Some("1"), Some("ann"), Some("vip")]),
                    (&a, &[Some("20"), Some("bob"), None])
                ]
            )
        );
        assert_eq!(state.keys(), 2);
        // An update of a key not held (the old key 2 is gone) is refused, whether it keeps
        // its key or not.
        for old in [None, Some(OldRow::Key(row(&[Some("2"), None, None])))] {
            let err = state
                .apply(&transaction(
                    30,
                    &[a.clone()],
                    vec![Op::Update {
                        relation: 1,
                        old,
                        new: row(&[Some("2"), Some("bob"), None]),
                    }],
                ))
                .unwrap_err();
            assert!(
                err.to_string()
                    .contains(r#"an update of public.accounts row ["2"], which is not held"#),
                "{err}"
            );
        }
    }

    #[test]
    fn an_unchanged_value_resolves_from_the_hash_held_for_the_row() {
        let a = accounts();
        let mut state = CommitState::default();
        state
            .apply(&transaction(
                10,
                &[a.clone()],
                vec![insert(&a, &[Some("1"), Some("ann"), Some("long")])],
            ))
            .unwrap();
        let new = Row(vec![
            Value::Text("1".into()),
            Value::Text("anne".into()),
            Value::Unchanged,
        ]);
        let root = state
            .apply(&transaction(
                20,
                &[a.clone()],
                vec![Op::Update {
                    relation: 1,
                    old: None,
                    new,
                }],
            ))
            .unwrap()
            .root;
        assert_eq!(
            root,
            root_of(
                &[a.clone()],
                &[(&a, &[Some("1"), Some("anne"), Some("long")])]
            )
        );
    }

    #[test]
    fn a_multiset_counts_identical_rows() {
        let e = events();
        let mut state = CommitState::default();
        let full = |values: &[Option<&str>]| OldRow::Full(row(values));
        let root = state
            .apply(&transaction(
                10,
                &[e.clone()],
                vec![
                    insert(&e, &[Some("boot"), Some("1")]),
                    insert(&e, &[Some("boot"), Some("1")]),
                    insert(&e, &[Some("boot"), Some("1")]),
                    Op::Delete {
                        relation: 2,
                        old: full(&[Some("boot"), Some("1")]),
                    },
                    Op::Update {
                        relation: 2,
                        old: Some(full(&[Some("boot"), Some("1")])),
                        new: row(&[Some("tick"), Some("2")]),
                    },
                ],
            ))
            .unwrap()
            .root;
        assert_eq!(
            root,
            root_of(
                &[e.clone()],
                &[
                    (&e, &[Some("boot"), Some("1")]),
                    (&e, &[Some("tick"), Some("2")])
                ]
            )
        );
        assert_eq!(state.keys(), 2, "one key per distinct row");
        let err = state
            .apply(&transaction(
                20,
                &[e.clone()],
                vec![Op::Delete {
                    relation: 2,
                    old: full(&[Some("nope"), None]),
                }],
            ))
            .unwrap_err();
        assert!(
            err.to_string().contains("transaction 0/14, change 0"),
            "{err}"
        );
    }

    #[test]
    fn truncate_removes_every_key_of_the_table_only() {
        let (a, e) = (accounts(), events());
        let mut state = CommitState::default();
        state
            .apply(&transaction(
                10,
                &[a.clone(), e.clone()],
                vec![
                    insert(&a, &[Some("1"), Some("ann"), None]),
                    insert(&e, &[Some("boot"), Some("1")]),
                ],
            ))
            .unwrap();
        let root = state
            .apply(&transaction(
                20,
                &[a.clone()],
                vec![Op::Truncate {
                    relations: vec![1],
                    cascade: false,
                    restart_identity: false,
                }],
            ))
            .unwrap()
            .root;
        assert_eq!(
            root,
            root_of(&[e.clone()], &[(&e, &[Some("boot"), Some("1")])])
        );
    }

    #[test]
    fn a_schema_change_without_rows_reshapes_what_is_held() {
        let (a, e) = (accounts(), events());
        let mut state = CommitState::default();
        state
            .apply(&transaction(
                10,
                &[a.clone(), e.clone()],
                vec![
                    insert(&a, &[Some("1"), Some("ann"), Some("x")]),
                    insert(&a, &[Some("2"), Some("bob"), None]),
                    insert(&e, &[Some("boot"), Some("1")]),
                    insert(&e, &[Some("boot"), Some("2")]),
                ],
            ))
            .unwrap();
        // accounts: note dropped, name renamed to label, score added, the table renamed;
        // events: n dropped, so its two rows become identical.
        let column = |name: &str, key: bool, was: Option<u32>| ColumnChange {
            name: name.into(),
            type_oid: 25,
            type_modifier: -1,
            key,
            was,
        };
        let change = SchemaChange {
            publication: "p".into(),
            tag: "ALTER TABLE".into(),
            statement: "…".into(),
            tables: vec![
                TableChange {
                    oid: 1,
                    schema: "public".into(),
                    name: "members".into(),
                    change: TableChangeKind::Altered,
                    replica_identity: "d".into(),
                    columns: vec![
                        column("id", true, Some(0)),
                        column("label", false, Some(1)),
                        column("score", false, None),
                    ],
                    rows_follow: false,
                },
                TableChange {
                    oid: 2,
                    schema: "public".into(),
                    name: "events".into(),
                    change: TableChangeKind::Altered,
                    replica_identity: "f".into(),
                    columns: vec![column("kind", false, Some(0))],
                    rows_follow: false,
                },
            ],
        };
        let message = Op::Message {
            prefix: SCHEMA_CHANGE_PREFIX.into(),
            content: serde_json_bytes(&change),
        };
        let root = state
            .apply(&transaction(20, &[], vec![message]))
            .unwrap()
            .root;
        let members = relation(
            1,
            "members",
            &[("id", true), ("label", false), ("score", false)],
            ReplicaIdentity::Default,
        );
        let events = relation(2, "events", &[("kind", false)], ReplicaIdentity::Full);
        assert_eq!(
            root,
            root_of(
                &[members.clone(), events.clone()],
                &[
                    (&members, &[Some("1"), Some("ann"), None]),
                    (&members, &[Some("2"), Some("bob"), None]),
                    (&events, &[Some("boot")]),
                    (&events, &[Some("boot")]),
                ]
            )
        );
    }

    #[test]
    fn a_row_proof_survives_json_and_shows_presence_values_and_absence() {
        let a = accounts();
        let mut state = CommitState::default();
        state
            .apply(&transaction(
                10,
                &[a.clone()],
                vec![
                    insert(&a, &[Some("1"), Some("ann"), None]),
                    insert(&a, &[Some("2"), Some("bob"), Some("x")]),
                ],
            ))
            .unwrap();
        let root = state.root();
        let proof = state
            .prove_row("public", "accounts", &RowSubject::Key(vec!["2".into()]))
            .unwrap();
        let compact =
            crate::proof::RowProof::from_json(proof.to_compact_json().unwrap().as_bytes()).unwrap();
        assert_eq!(compact, proof, "the compact JSON stands for the same proof");
        let proof = crate::proof::RowProof::from_json(proof.to_json().as_bytes()).unwrap();
        let values = |name: Option<&str>| {
            vec![
                ("id".to_owned(), Some("2".to_owned())),
                ("name".to_owned(), name.map(str::to_owned)),
                ("note".to_owned(), Some("x".to_owned())),
            ]
        };
        assert!(
            proof
                .verify(&root, Some(&values(Some("bob"))))
                .unwrap()
                .contains("exists")
        );
        let wrong = proof.verify(&root, Some(&values(Some("eve")))).unwrap_err();
        assert!(
            wrong.contains("column name does not hold \"eve\""),
            "{wrong}"
        );
        assert!(
            proof.verify(&root, Some(&values(None))).is_err(),
            "NULL is not 'bob'"
        );
        assert!(
            proof
                .verify(&Digest([3; 32]), None)
                .unwrap_err()
                .contains("not the trusted root")
        );
        let mut forged = proof.clone();
        forged.columns[1].hash = column_hash(25, Some("eve"));
        assert!(
            forged
                .verify(&root, None)
                .unwrap_err()
                .contains("the columns give")
        );

        let absent = state
            .prove_row("public", "accounts", &RowSubject::Key(vec!["3".into()]))
            .unwrap();
        assert!(!absent.present);
        assert!(
            absent
                .verify(&root, None)
                .unwrap()
                .contains("does not exist")
        );
        let mut lying = absent.clone();
        lying.key_values = vec!["1".into()];
        assert!(
            lying.verify(&root, None).is_err(),
            "key 1 exists: not provably absent"
        );
        assert!(
            state
                .prove_row("public", "nope", &RowSubject::Key(vec!["1".into()]))
                .is_err()
        );
    }

    /// A row of a table without a key is proved by all its values: the proof says how many
    /// identical rows the tree holds, survives JSON, and a forged count or value fails; the
    /// same proof is read from a store at an earlier root; a keyed table refuses values and a
    /// multiset refuses a key, naming what to give.
    #[test]
    fn a_multiset_row_is_proved_by_its_values_with_its_count() {
        let (a, e) = (accounts(), events());
        let dir = store_dir("multiset-proof");
        let mut kept = CommitState::open(&dir).unwrap();
        let tick = |n: &str| insert(&e, &[Some("tick"), Some(n)]);
        let first = transaction(
            10,
            &[e.clone(), a.clone()],
            vec![
                tick("1"),
                tick("1"),
                tick("2"),
                insert(&a, &[Some("1"), None, None]),
            ],
        );
        let second = transaction(
            11,
            &[e.clone()],
            vec![tick("1"), insert(&e, &[None, Some("3")])],
        );
        let committed = kept.apply(&first).unwrap();
        kept.keep(&committed, Digest::ZERO, 0);
        let first_root = kept.root();
        let committed = kept.apply(&second).unwrap();
        kept.keep(&committed, Digest::ZERO, 1);
        let root = kept.root();
        let shows = |proof: &RowProof, root: &Digest| proof.verify(root, None).unwrap();
        let row = |kind: Option<&str>, n: &str| {
            RowSubject::Values(vec![
                ("n".to_owned(), Some(n.to_owned())),
                ("kind".to_owned(), kind.map(str::to_owned)),
            ])
        };

        let proof = kept
            .prove_row("public", "events", &row(Some("tick"), "1"))
            .unwrap();
        assert_eq!((proof.present, proof.multiset), (true, Some(3)));
        let shown = shows(&proof, &root);
        assert!(shown.contains("exists 3 times"), "{shown}");
        for json in [proof.to_json(), proof.to_compact_json().unwrap()] {
            assert_eq!(RowProof::from_json(json.as_bytes()).unwrap(), proof);
        }
        let values = vec![("kind".to_owned(), Some("tock".to_owned()))];
        let wrong = proof.verify(&root, Some(&values)).unwrap_err();
        assert!(
            wrong.contains("column kind does not hold \"tock\""),
            "{wrong}"
        );
        let mut forged = proof.clone();
        forged.multiset = Some(2);
        let err = forged.verify(&root, None).unwrap_err();
        assert!(err.contains("the columns give"), "{err}");
        forged.multiset = Some(0);
        assert!(forged.verify(&root, None).is_err(), "present with no rows");

        let null = kept.prove_row("public", "events", &row(None, "3")).unwrap();
        assert!(shows(&null, &root).contains("exists 1 time "));
        let absent = kept
            .prove_row("public", "events", &row(Some("tick"), "9"))
            .unwrap();
        assert_eq!((absent.present, absent.multiset), (false, Some(0)));
        assert!(shows(&absent, &root).contains("does not exist"));
        let mut lying = absent.clone();
        lying.columns = proof.columns.clone();
        assert!(
            lying.verify(&root, None).is_err(),
            "tick 1 exists: not provably absent"
        );
        // An absence is checked against the values asked about, in the table's column order.
        let order = ["kind".to_owned(), "n".to_owned()];
        let asked = |kind: &str, n: &str| {
            vec![
                ("kind".to_owned(), Some(kind.to_owned())),
                ("n".to_owned(), Some(n.to_owned())),
            ]
        };
        let shown = absent
            .verify_in_order(&root, Some(&asked("tick", "9")), Some(&order))
            .unwrap();
        assert!(shown.contains("does not exist"), "{shown}");
        let err = absent
            .verify_in_order(&root, Some(&asked("tick", "1")), Some(&order))
            .unwrap_err();
        assert!(err.contains("column n does not hold \"1\""), "{err}");
        let err = absent.verify(&root, Some(&asked("tick", "9"))).unwrap_err();
        assert!(err.contains("--columns kind,n"), "{err}");
        let err = absent
            .verify_in_order(&root, Some(&asked("tick", "9")[..1]), Some(&order))
            .unwrap_err();
        assert!(err.contains("n is not given"), "{err}");
        // The absent row ("1", "tick") with its columns' names swapped would pass for
        // ("tick", "1"), which exists, if the column order were not checked.
        let mut swapped = kept
            .prove_row("public", "events", &row(Some("1"), "tick"))
            .unwrap();
        assert!(!swapped.present);
        swapped.columns[0].name = "n".into();
        swapped.columns[1].name = "kind".into();
        let err = swapped
            .verify_in_order(&root, Some(&asked("tick", "1")), Some(&order))
            .unwrap_err();
        assert!(err.contains("not the table's (kind, n)"), "{err}");
        assert!(swapped.verify(&root, Some(&asked("tick", "1"))).is_err());
        // A keyed proof passed off as a multiset one, and a flag that is not a flag.
        let account = kept
            .prove_row("public", "accounts", &RowSubject::Key(vec!["1".into()]))
            .unwrap();
        let mut flipped = account.clone();
        flipped.multiset = Some(1);
        assert!(flipped.verify(&root, None).is_err());
        let json = account
            .to_json()
            .replace("\"multiset\":false", "\"multiset\":\"yes\"");
        let err = RowProof::from_json(json.as_bytes()).unwrap_err();
        assert!(err.contains("multiset must be true or false"), "{err}");

        // At the first root, from the store: two of them then.
        let earlier = kept
            .prove_row_at(
                "public",
                "events",
                &row(Some("tick"), "1"),
                Some(Lsn::new(10)),
            )
            .unwrap();
        assert_eq!((earlier.root, earlier.multiset), (first_root, Some(2)));
        assert!(shows(&earlier, &first_root).contains("exists 2 times"));
        let gone = kept
            .prove_row_at("public", "events", &row(None, "3"), Some(Lsn::new(10)))
            .unwrap();
        assert!(
            gone.verify(&first_root, None)
                .unwrap()
                .contains("does not exist")
        );

        // n renamed to num: the row keeps its key, and at an earlier root it is shown with the
        // column names it had then (its leaf there hashes them).
        let column = |name: &str, was: u32| ColumnChange {
            name: name.into(),
            type_oid: e.columns[0].type_oid,
            type_modifier: -1,
            key: false,
            was: Some(was),
        };
        let rename = SchemaChange {
            publication: "p".into(),
            tag: "ALTER TABLE".into(),
            statement: "ALTER TABLE events RENAME n TO num".into(),
            tables: vec![TableChange {
                oid: e.id,
                schema: "public".into(),
                name: "events".into(),
                change: TableChangeKind::Altered,
                replica_identity: "f".into(),
                columns: vec![column("kind", 0), column("num", 1)],
                rows_follow: false,
            }],
        };
        let message = Op::Message {
            prefix: SCHEMA_CHANGE_PREFIX.into(),
            content: serde_json_bytes(&rename),
        };
        let committed = kept.apply(&transaction(12, &[], vec![message])).unwrap();
        kept.keep(&committed, Digest::ZERO, 2);
        let renamed = RowSubject::Values(vec![
            ("kind".to_owned(), Some("tick".to_owned())),
            ("num".to_owned(), Some("1".to_owned())),
        ]);
        let now = kept.prove_row("public", "events", &renamed).unwrap();
        assert!(
            now.verify(&kept.root(), None)
                .unwrap()
                .contains("(kind, num)")
        );
        let then = kept
            .prove_row_at("public", "events", &renamed, Some(Lsn::new(11)))
            .unwrap();
        let shown = shows(&then, &root);
        assert!(
            shown.contains("(kind, n)") && shown.contains("exists 3 times"),
            "{shown}"
        );

        let refused = |table: &str, row: &RowSubject| {
            kept.prove_row("public", table, row)
                .unwrap_err()
                .to_string()
        };
        let err = refused("events", &RowSubject::Key(vec!["1".into()]));
        assert!(err.contains("proved by their values"), "{err}");
        let err = refused(
            "events",
            &RowSubject::Values(vec![("num".into(), Some("1".into()))]),
        );
        assert!(err.contains("give column kind exactly once"), "{err}");
        let mut extra = vec![("colour".to_owned(), None)];
        if let RowSubject::Values(values) = renamed {
            extra.extend(values);
        }
        let err = refused("events", &RowSubject::Values(extra));
        assert!(err.contains("has no column colour"), "{err}");
        let err = refused("events", &row(Some("tick"), "1"));
        assert!(err.contains("has no column n"), "{err}");
        let err = refused("accounts", &row(Some("tick"), "1"));
        assert!(err.contains("is keyed"), "{err}");
        // Reopened after the rename, every row checks out under the shape it was kept with.
        let latest = kept.root();
        drop(kept);
        assert_eq!(CommitState::open(&dir).unwrap().root(), latest);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_transaction_not_after_the_last_one_is_refused() {
        let a = accounts();
        let mut state = CommitState::default();
        state.apply(&transaction(10, &[a.clone()], vec![])).unwrap();
        let err = state.apply(&transaction(10, &[a], vec![])).unwrap_err();
        assert!(
            err.to_string()
                .contains("not after the last transaction applied"),
            "{err}"
        );
    }

    /// A fresh directory for one test's store.
    fn store_dir(test: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("walproof-store-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A mixed history over a keyed and a multiset table: inserts, updates (one unchanged
    /// value), a key change, deletes, a truncate, a column rename; transaction `n` at LSN
    /// `100 + n`.
    fn history() -> Vec<Transaction> {
        let (a, e) = (accounts(), events());
        let mut out = Vec::new();
        for n in 0..40u64 {
            let id = (n % 13).to_string();
            let name = format!("name {n}");
            let mut ops = vec![
                insert(
                    &a,
                    &[Some(&format!("{}", 100 + n)), Some(&name), Some("note")],
                ),
                insert(&e, &[Some("tick"), Some(&id)]),
            ];
            if n >= 13 && (n - 13) % 7 != 3 {
                // The row inserted 13 transactions ago, unless it was deleted.
                ops.push(Op::Update {
                    relation: a.id,
                    old: None,
                    new: Row(vec![
                        Value::Text(format!("{}", 100 + n - 13)),
                        Value::Text(name.clone()),
                        Value::Unchanged,
                    ]),
                });
            }
            if n % 7 == 3 {
                ops.push(Op::Delete {
                    relation: a.id,
                    old: OldRow::Key(row(&[Some(&format!("{}", 100 + n)), None, None])),
                });
            }
            if n == 30 {
                ops.push(Op::Truncate {
                    relations: vec![e.id],
                    cascade: false,
                    restart_identity: false,
                });
            }
            out.push(transaction(100 + n, &[a.clone(), e.clone()], ops));
        }
        out
    }

    /// Rows hashed ahead (on another thread in a validator) give the state, roots and column
    /// hashes that rows hashed as they are applied give; hashes of another transaction are
    /// ignored, and a transaction with a schema change is not hashed ahead.
    #[test]
    fn rows_hashed_ahead_leave_the_same_state_as_rows_hashed_when_applied() {
        let a = accounts();
        let mut history = history();
        history.push(transaction(
            200,
            &[a.clone()],
            vec![Op::Update {
                relation: a.id,
                old: Some(OldRow::Key(row(&[Some("101"), None, None]))),
                new: row(&[Some("9101"), Some("moved"), None]),
            }],
        ));
        let (mut plain, mut ahead) = (CommitState::default(), CommitState::default());
        let mut hashed_rows = 0;
        for (n, transaction) in history.iter().enumerate() {
            let hashes = RowHashes::of(transaction);
            hashed_rows += hashes.rows.iter().flatten().count();
            let expected = plain.apply(transaction).unwrap();
            assert_eq!(
                ahead.apply_hashed(transaction, hashes).unwrap(),
                expected,
                "transaction {n}"
            );
        }
        // Every keyed insert and the update that carries all its columns were hashed ahead
        // (not the multiset's rows, nor the updates with an unchanged value).
        assert_eq!(hashed_rows, 40 + 1);
        for id in (100..140).chain([9101]) {
            let key = row_key("public", "accounts", [id.to_string().as_str()]);
            assert_eq!(ahead.column_hashes(&key), plain.column_hashes(&key), "{id}");
        }
        // The hashes of another transaction of as many changes are not taken.
        let next = |n: u64| {
            transaction(
                300 + n,
                &[a.clone()],
                vec![insert(&a, &[Some(&format!("{}", 500 + n)), None, None])],
            )
        };
        let expected = plain.apply(&next(1)).unwrap();
        assert_eq!(
            ahead
                .apply_hashed(&next(1), RowHashes::of(&next(0)))
                .unwrap(),
            expected
        );
        let schema_change = transaction(
            400,
            &[a.clone()],
            vec![
                insert(&a, &[Some("600"), None, None]),
                Op::Message {
                    prefix: SCHEMA_CHANGE_PREFIX.into(),
                    content: b"{}".to_vec(),
                },
            ],
        );
        assert!(RowHashes::of(&schema_change).rows.is_empty());
    }

    /// A state kept in a store, synced at odd points and reopened, gives every root an
    /// in-memory state gives, and after reopening goes on exactly like it.
    #[test]
    fn a_reopened_store_goes_on_exactly_like_the_state_in_memory() {
        let dir = store_dir("reopen");
        let mut memory = CommitState::default();
        let mut kept = CommitState::open(&dir).unwrap();
        for (n, transaction) in history().iter().enumerate() {
            let expected = memory.apply(transaction).unwrap();
            let committed = kept.apply(transaction).unwrap();
            assert_eq!(committed, expected, "transaction {n}");
            kept.keep(&committed, Digest([n as u8; 32]), n as i64);
            if n % 5 == 4 {
                kept.sync().unwrap();
                drop(kept);
                kept = CommitState::open(&dir).unwrap();
                assert_eq!(kept.root(), memory.root());
                assert_eq!(kept.last_applied(), memory.last_applied());
                assert_eq!(kept.keys(), memory.keys());
                let last = kept.last_kept().unwrap();
                assert_eq!((last.ledger_offset, last.root), (n as i64, memory.root()));
            }
        }
        // What was not synced is not there after a reopen: the state resumes at the last sync.
        drop(kept);
        let kept = CommitState::open(&dir).unwrap();
        assert_eq!(kept.last_applied(), Some(Lsn::new(100 + 39)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A state held in memory, saved at any point of the history and read back, holds the same
    /// rows, shapes and root, says where it was saved, and goes on exactly like the state that
    /// was never saved (multiset counts, a truncate, unchanged values resolved from the
    /// hashes it read back).
    #[test]
    fn a_copy_in_memory_saves_the_state_it_was_taken_at_while_the_original_goes_on() {
        let history = history();
        for at in [12, 30] {
            let dir = store_dir(&format!("copy-{at}"));
            let mut memory = CommitState::default();
            for transaction in &history[..=at] {
                memory.apply(transaction).unwrap();
            }
            let root_then = memory.root();
            let mut copy = memory.in_memory_copy();
            // The original goes on while the copy is saved.
            let later: Vec<Committed> = history[at + 1..]
                .iter()
                .map(|transaction| memory.apply(transaction).unwrap())
                .collect();
            let saved = copy.save(&dir, Digest([7; 32]), 7).unwrap();
            assert_eq!(
                (saved.commit_lsn, saved.root),
                (Lsn::new(100 + at as u64), root_then)
            );
            let (mut restored, _) = CommitState::read_saved(&dir).unwrap().unwrap();
            for (transaction, expected) in history[at + 1..].iter().zip(&later) {
                assert_eq!(&restored.apply(transaction).unwrap(), expected, "{at}");
            }
            assert_eq!(restored.root(), memory.root());
            // A state without a store keeps nothing for pruning, however long it runs.
            assert!(memory.rows_superseded.is_empty() && restored.rows_superseded.is_empty());
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn a_saved_state_reads_back_and_goes_on_exactly_like_the_state_in_memory() {
        let history = history();
        assert!(
            CommitState::default()
                .save(&store_dir("save-empty"), Digest::ZERO, 0)
                .is_err()
        );
        for at in [0, 12, 29, 30, 38] {
            let dir = store_dir(&format!("save-{at}"));
            let mut memory = CommitState::default();
            for transaction in &history[..=at] {
                memory.apply(transaction).unwrap();
            }
            let saved = memory
                .save(&dir, Digest([at as u8; 32]), 1000 + at as i64)
                .unwrap();
            assert_eq!(
                (
                    saved.commit_lsn,
                    saved.root,
                    saved.ledger_hash,
                    saved.ledger_offset
                ),
                (
                    Lsn::new(100 + at as u64),
                    memory.root(),
                    Digest([at as u8; 32]),
                    1000 + at as i64
                )
            );
            // A store is written once: a second save into it is refused.
            assert!(memory.save(&dir, Digest::ZERO, 0).is_err());
            let (mut restored, kept) = CommitState::read_saved(&dir).unwrap().unwrap();
            assert_eq!(kept, saved);
            assert!(restored.store().is_none(), "held in memory from now on");
            assert_eq!(restored.root(), memory.root());
            assert_eq!(restored.last_applied(), memory.last_applied());
            assert_eq!(restored.keys(), memory.keys());
            assert_eq!(
                restored.relations().collect::<Vec<_>>(),
                memory.relations().collect::<Vec<_>>()
            );
            for table in [1, 2] {
                assert_eq!(restored.table_keys(table), memory.table_keys(table), "{at}");
            }
            for (key, _) in memory.tree.pairs() {
                assert_eq!(restored.column_hashes(&key), memory.column_hashes(&key));
                assert_eq!(restored.row_count(&key), memory.row_count(&key));
            }
            for (n, transaction) in history.iter().enumerate().skip(at + 1) {
                let expected = memory.apply(transaction).unwrap();
                assert_eq!(restored.apply(transaction).unwrap(), expected, "{at}: {n}");
            }
            // Nothing was written to the saved store after it was read back.
            let (again, kept) = CommitState::read_saved(&dir).unwrap().unwrap();
            assert_eq!(
                (kept, again.last_applied()),
                (saved, Some(saved.commit_lsn))
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    /// Every earlier LSN's proofs, read from the store, verify against that LSN's root and
    /// show the row as it was then.
    #[test]
    fn proofs_at_earlier_lsns_come_from_the_store_and_verify() {
        let dir = store_dir("history");
        let mut kept = CommitState::open(&dir).unwrap();
        let mut memory = CommitState::default();
        let mut roots = Vec::new();
        for (n, transaction) in history().iter().enumerate() {
            let committed = kept.apply(transaction).unwrap();
            kept.keep(&committed, Digest::ZERO, n as i64);
            memory.apply(transaction).unwrap();
            // What the in-memory state proves now is what the store must prove later.
            let now: Vec<_> = (100..145)
                .map(|id| {
                    memory
                        .prove_row("public", "accounts", &RowSubject::Key(vec![id.to_string()]))
                        .unwrap()
                })
                .collect();
            roots.push((committed, now));
            if n % 9 == 0 {
                kept.sync().unwrap();
            }
        }
        for (committed, proofs) in &roots {
            for expected in proofs {
                let proof = kept
                    .prove_row_at(
                        "public",
                        "accounts",
                        &RowSubject::Key(expected.key_values.clone()),
                        Some(committed.commit_lsn),
                    )
                    .unwrap();
                assert_eq!(&proof, expected, "at {}", committed.commit_lsn);
                assert!(proof.verify(&committed.root, None).is_ok());
            }
        }
        // Before the first root: nothing is kept.
        let err = kept
            .prove_row_at(
                "public",
                "accounts",
                &RowSubject::Key(vec!["100".into()]),
                Some(Lsn::new(5)),
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("no root at or before 0/5"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A crash in the middle of a commit leaves bytes after what the head names: they are cut
    /// off. A damaged node is refused with the file and the place, never loaded.
    #[test]
    fn a_torn_tail_is_cut_off_and_a_damaged_store_is_refused() {
        use std::io::Write as _;
        let dir = store_dir("torn");
        let transactions = history();
        let mut kept = CommitState::open(&dir).unwrap();
        for (n, transaction) in transactions[..10].iter().enumerate() {
            let committed = kept.apply(transaction).unwrap();
            kept.keep(&committed, Digest::ZERO, n as i64);
        }
        kept.sync().unwrap();
        let root = kept.root();
        drop(kept);
        for file in ["nodes.0.log", "roots.0.log"] {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(dir.join(file))
                .unwrap();
            f.write_all(&[0xAB; 300]).unwrap();
        }
        let mut kept = CommitState::open(&dir).unwrap();
        assert_eq!(kept.root(), root);
        assert_eq!(kept.store().unwrap().roots(), 10);
        // And it goes on: the next transactions apply, sync and reopen.
        for (n, transaction) in transactions[10..12].iter().enumerate() {
            let committed = kept.apply(transaction).unwrap();
            kept.keep(&committed, Digest::ZERO, 10 + n as i64);
        }
        kept.sync().unwrap();
        let root = kept.root();
        drop(kept);
        assert_eq!(CommitState::open(&dir).unwrap().root(), root);
        // Damage: one byte of the newest nodes flipped (the root node sits near the end).
        let path = dir.join("nodes.0.log");
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 200;
        bytes[at] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = CommitState::open(&dir).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
        assert!(
            err.contains(&dir.display().to_string()),
            "names the store: {err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A row whose kept column hashes or key columns were changed in the store no longer
    /// hashes to the leaf and key the tree holds: the store is refused, naming the row and its
    /// table, for a keyed and for a multiset table.
    #[test]
    fn a_kept_row_that_does_not_hash_to_its_leaf_is_refused() {
        let dir = store_dir("row-hashes");
        let mut kept = CommitState::open(&dir).unwrap();
        for (n, transaction) in history()[..12].iter().enumerate() {
            let committed = kept.apply(transaction).unwrap();
            kept.keep(&committed, Digest::ZERO, n as i64);
        }
        kept.sync().unwrap();
        drop(kept);
        let path = dir.join("nodes.0.log");
        let intact = std::fs::read(&path).unwrap();
        let (a, e) = (accounts(), events());
        // The last row version kept holding each: account 111's note, the last event's kind,
        // account 111's key column text.
        let note = column_hash(a.columns[2].type_oid, Some("note"));
        let tick = column_hash(e.columns[0].type_oid, Some("tick"));
        for (what, needle, table) in [
            (
                "a keyed row's column hash",
                note.0.to_vec(),
                "public.accounts",
            ),
            (
                "a multiset row's column hash",
                tick.0.to_vec(),
                "public.events",
            ),
            (
                "a keyed row's key column",
                b"111".to_vec(),
                "public.accounts",
            ),
        ] {
            let at = intact
                .windows(needle.len())
                .rposition(|w| w == needle.as_slice())
                .unwrap_or_else(|| panic!("{what} is in the store"));
            let mut bytes = intact.clone();
            bytes[at] ^= 0x01;
            std::fs::write(&path, &bytes).unwrap();
            let err = CommitState::open(&dir).unwrap_err().to_string();
            assert!(err.contains("the row kept at"), "{what}: {err}");
            assert!(err.contains(table), "{what}: {err}");
            assert!(err.contains("the store is damaged"), "{what}: {err}");
        }
        std::fs::write(&path, &intact).unwrap();
        CommitState::open(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Pruning keeps the trees of the last roots only: their proofs are unchanged, older ones
    /// are refused naming the horizon, the store shrinks, and the state goes on, reopens and
    /// prunes again exactly like a state never pruned. A compaction that stopped before its
    /// switch leaves the store as it was.
    #[test]
    fn pruning_keeps_the_last_roots_provable_and_goes_on_like_an_unpruned_store() {
        let dir = store_dir("prune");
        let unpruned_dir = store_dir("prune-unpruned");
        let mut kept = CommitState::open(&dir).unwrap();
        kept.track_superseded();
        let mut unpruned = CommitState::open(&unpruned_dir).unwrap();
        let mut memory = CommitState::default();
        let mut expected = Vec::new();
        let ids: Vec<Vec<String>> = (100..145).map(|id| vec![id.to_string()]).collect();
        let transactions = history();
        type Expected = Vec<(Lsn, Vec<crate::proof::RowProof>)>;
        let apply = |(memory, expected): (&mut CommitState, &mut Expected),
                     kept: &mut CommitState,
                     unpruned: &mut CommitState,
                     n: usize| {
            let committed = memory.apply(&transactions[n]).unwrap();
            for state in [&mut *kept, &mut *unpruned] {
                assert_eq!(state.apply(&transactions[n]).unwrap(), committed, "{n}");
                state.keep(&committed, Digest([n as u8; 32]), n as i64);
            }
            let proofs: Vec<_> = ids
                .iter()
                .map(|key| {
                    memory
                        .prove_row("public", "accounts", &RowSubject::Key(key.clone()))
                        .unwrap()
                })
                .collect();
            expected.push((committed.commit_lsn, proofs));
            if n % 4 == 3 {
                kept.sync().unwrap();
                unpruned.sync().unwrap();
            }
        };
        let check =
            |kept: &mut CommitState, provable: std::ops::Range<usize>, expected: &Expected| {
                for (lsn, proofs) in &expected[provable.clone()] {
                    for proof in proofs {
                        let at = kept
                            .prove_row_at(
                                "public",
                                "accounts",
                                &RowSubject::Key(proof.key_values.clone()),
                                Some(*lsn),
                            )
                            .unwrap();
                        assert_eq!(&at, proof, "at {lsn}");
                    }
                }
                let first = expected[provable.start].0;
                if provable.start > 0 {
                    let before = expected[provable.start - 1].0;
                    let err = kept
                        .prove_row_at(
                            "public",
                            "accounts",
                            &RowSubject::Key(ids[0].clone()),
                            Some(before),
                        )
                        .unwrap_err()
                        .to_string();
                    assert!(
                        err.contains(&format!("{before}")) && err.contains("pruned"),
                        "{err}"
                    );
                    assert!(err.contains(&format!("kept from {first}")), "{err}");
                }
            };
        for n in 0..30 {
            apply((&mut memory, &mut expected), &mut kept, &mut unpruned, n);
        }
        let pruned = kept.prune(10).unwrap().expect("the horizon moved");
        assert_eq!(pruned.kept_from, Lsn::new(100 + 20));
        assert!(
            pruned.bytes_after < pruned.bytes_before,
            "{pruned:?} shrinks the store"
        );
        assert_eq!(kept.prune(10).unwrap(), None, "nothing new to prune");
        check(&mut kept, 20..30, &expected);
        // It goes on after pruning: new nodes name moved children; a reopen checks the tree.
        for n in 30..36 {
            apply((&mut memory, &mut expected), &mut kept, &mut unpruned, n);
        }
        kept.sync().unwrap();
        drop(kept);
        let mut kept = CommitState::open(&dir).unwrap();
        assert_eq!(kept.root(), memory.root());
        check(&mut kept, 20..36, &expected);
        // A compaction that stopped before its switch left the next generation's files.
        std::fs::write(dir.join("nodes.2.log"), b"half a compaction").unwrap();
        std::fs::write(dir.join("roots.2.log"), b"half").unwrap();
        let pruned = kept.prune(3).unwrap().expect("the horizon moved");
        assert_eq!(pruned.kept_from, Lsn::new(100 + 33));
        for n in 36..40 {
            apply((&mut memory, &mut expected), &mut kept, &mut unpruned, n);
        }
        kept.sync().unwrap();
        drop(kept);
        std::fs::write(dir.join("nodes.3.log"), b"half a compaction").unwrap();
        let mut kept = CommitState::open(&dir).unwrap();
        assert!(!dir.join("nodes.3.log").exists(), "left-overs are removed");
        assert_eq!(kept.root(), memory.root());
        assert_eq!(kept.keys(), memory.keys());
        check(&mut kept, 33..40, &expected);
        check(&mut unpruned, 0..40, &expected);
        let (pruned_bytes, unpruned_bytes) = (
            kept.store().unwrap().bytes(),
            unpruned.store().unwrap().bytes(),
        );
        assert!(
            pruned_bytes < unpruned_bytes,
            "{pruned_bytes} vs {unpruned_bytes}"
        );
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            files
                .iter()
                .all(|f| !f.ends_with(".0.log") && !f.ends_with(".1.log")),
            "older generations are removed: {files:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&unpruned_dir).unwrap();
    }

    fn serde_json_bytes(change: &SchemaChange) -> Vec<u8> {
        serde_json::to_vec(change).unwrap()
    }
}
