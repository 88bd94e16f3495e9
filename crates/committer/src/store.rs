//! The committer's durable store: every tree node and row version it wrote, the root of every
//! committed LSN, and where to resume — plain files in one directory, written append-only.
//!
//! ```text
//! <dir>/nodes.G.log "WPNODES1", then records: kind u8 ‖ length u32 BE ‖ payload
//!                     node:       n u8 ‖ n × child place u64 ‖ monotree's node bytes
//!                     row:        key ‖ leaf ‖ table u32 ‖ shape place u64 ‖ count u64
//!                                 ‖ n u16 ‖ n × lp(key column text) ‖ m u16 ‖ m × H(col)
//!                     shape:      a relation: id, schema, name, replica identity, columns
//!                     checkpoint: where to resume (below)
//! <dir>/roots.G.log one fixed-size record per committed transaction, in LSN order
//! <dir>/head        the generation G of both files, how much of them is committed, the last
//!                   checkpoint, and the first root whose tree is kept
//! ```
//!
//! A place is a byte offset in the node log; a node names its children by place, so the tree of
//! any kept root can be walked from its root node (proofs at earlier LSNs), and the newest one
//! is read back whole on start ([`crate::tree::StateTree::load`] checks it hashes to its root).
//!
//! **Commit.** Records are buffered; [`Store::commit`] appends a checkpoint, writes both files
//! and syncs them, then replaces `head` (written aside, synced, renamed). A crash at any point
//! leaves `head` naming a consistent prefix: on open, anything after it is cut off. The
//! committer commits every few hundred milliseconds, so a restart redoes at most that much
//! from the ledger (its roots were either published — and are checked — or are published
//! then).
//!
//! **Pruning.** Nodes are never rewritten, so the log grows with every update. Below a
//! retention horizon, [`Store::compact`] copies what the kept roots still reach (and every
//! shape) into the next generation's files, drops the trees of older roots (their root records
//! stay, marked [`PRUNED`]), and switches to them by replacing `head`; a crash before that
//! leaves the old generation in force, and the new one's files are removed on the next open.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::hash::BuildHasherDefault;
use std::io::{BufWriter, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use walproof_core::{Column, Digest, Lsn, Relation, RelationId, ReplicaIdentity};

use crate::error::{CommitError, Result};
use crate::tree::Stored;

const NODES_MAGIC: &[u8; 8] = b"WPNODES1";
const HEAD_MAGIC: &[u8; 8] = b"WPHEAD02";
const ROOT_RECORD: usize = 8 + 32 * 3 + 4 + 8 + 8;

const NODE: u8 = 1;
const ROW: u8 = 2;
const SHAPE: u8 = 3;
const CHECKPOINT: u8 = 4;

/// The `root_node` of a root whose tree was pruned (below the retention horizon).
pub const PRUNED: u64 = u64::MAX;

/// One committed transaction's root, as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptRoot {
    /// The transaction's commit LSN.
    pub commit_lsn: Lsn,
    /// The root after it.
    pub root: Digest,
    /// The root before it.
    pub previous_root: Digest,
    /// The hash of the transaction's last ledger record (the chain's head after it).
    pub ledger_hash: Digest,
    /// Its number of changes.
    pub changes: u32,
    /// Where its root node is kept (0: the empty tree; [`PRUNED`]: no longer kept).
    pub root_node: u64,
    /// The ledger offset of its last record.
    pub ledger_offset: i64,
}

impl KeptRoot {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.commit_lsn.as_u64().to_be_bytes());
        out.extend_from_slice(&self.root.0);
        out.extend_from_slice(&self.previous_root.0);
        out.extend_from_slice(&self.ledger_hash.0);
        out.extend_from_slice(&self.changes.to_be_bytes());
        out.extend_from_slice(&self.root_node.to_be_bytes());
        out.extend_from_slice(&self.ledger_offset.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> Option<KeptRoot> {
        let mut r = Reader::new(bytes);
        Some(KeptRoot {
            commit_lsn: Lsn::new(r.u64()?),
            root: r.digest()?,
            previous_root: r.digest()?,
            ledger_hash: r.digest()?,
            changes: r.u32()?,
            root_node: r.u64()?,
            ledger_offset: r.u64()? as i64,
        })
    }
}

/// A row version as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptRow {
    /// The tree key.
    pub key: Digest,
    /// The leaf.
    pub leaf: Digest,
    /// The row's table.
    pub table: RelationId,
    /// Where the table's shape at the time is kept.
    pub shape: u64,
    /// Identical rows under the key (multiset tables); 1 otherwise.
    pub count: u64,
    /// The key columns' text (keyed tables).
    pub key_values: Vec<String>,
    /// `H(col)` of every column, in attribute order.
    pub hashes: Vec<Digest>,
}

/// A row version to keep, borrowed from the state (the row's vectors are not copied).
#[derive(Debug, Clone, Copy)]
pub struct RowVersion<'a> {
    /// The tree key.
    pub key: &'a Digest,
    /// The leaf.
    pub leaf: &'a Digest,
    /// The row's table.
    pub table: RelationId,
    /// Where the table's shape is kept.
    pub shape: u64,
    /// Identical rows under the key (multiset tables); 1 otherwise.
    pub count: u64,
    /// The key columns' text (keyed tables).
    pub key_values: &'a [String],
    /// `H(col)` of every column, in attribute order.
    pub hashes: &'a [Digest],
}

/// Where the committer resumes: written with every commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last transaction applied, with its root.
    pub last: KeptRoot,
    /// Where each relation's current shape is kept.
    pub shapes: BTreeMap<RelationId, u64>,
}

impl Checkpoint {
    fn encode(&self, out: &mut Vec<u8>) {
        self.last.encode(out);
        out.extend_from_slice(&(self.shapes.len() as u32).to_be_bytes());
        for (id, shape) in &self.shapes {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&shape.to_be_bytes());
        }
    }

    fn decode(r: &mut Reader<'_>) -> Option<Checkpoint> {
        let last = KeptRoot::decode(r.take(ROOT_RECORD)?)?;
        let n = r.u32()?;
        let shapes = (0..n)
            .map(|_| Some((r.u32()?, r.u64()?)))
            .collect::<Option<BTreeMap<_, _>>>()?;
        Some(Checkpoint { last, shapes })
    }
}

/// The `head` file: which generation of the logs is in force and how much of it is committed.
#[derive(Debug, Default)]
struct Head {
    generation: u64,
    nodes_len: u64,
    roots_count: u64,
    checkpoint: u64,
    kept_from: u64,
}

impl Head {
    fn encode(&self) -> Vec<u8> {
        let mut out = HEAD_MAGIC.to_vec();
        for field in [
            self.generation,
            self.nodes_len,
            self.roots_count,
            self.checkpoint,
            self.kept_from,
        ] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Head> {
        let mut r = Reader::new(bytes);
        if r.take(8)? != HEAD_MAGIC {
            return None;
        }
        Some(Head {
            generation: r.u64()?,
            nodes_len: r.u64()?,
            roots_count: r.u64()?,
            checkpoint: r.u64()?,
            kept_from: r.u64()?,
        })
    }
}

/// A set of places in the node log, hashed with [`PlaceHasher`].
pub type Places = HashSet<u64, BuildHasherDefault<PlaceHasher>>;

/// Where [`Store::compact`] moved each record it kept.
#[derive(Debug, Default)]
pub struct Relocation {
    moved: HashMap<u64, u64, BuildHasherDefault<PlaceHasher>>,
}

impl Relocation {
    /// The new place of the record at `old` (0 stays 0: nothing kept); `None` when it was
    /// dropped.
    pub fn place(&self, old: u64) -> Option<u64> {
        if old == 0 {
            return Some(0);
        }
        self.moved.get(&old).copied()
    }

    /// Records kept.
    pub fn len(&self) -> usize {
        self.moved.len()
    }

    /// Whether nothing was kept.
    pub fn is_empty(&self) -> bool {
        self.moved.is_empty()
    }
}

/// Hashes a place (a distinct file offset, no adversary) with one multiplication: relocating
/// millions of places is bound by the lookups, which SipHash would double.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlaceHasher(u64);

impl std::hash::Hasher for PlaceHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, place: u64) {
        self.0 = place.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// What [`Store::read`] finds at a place.
#[derive(Debug, Clone)]
pub enum Record {
    /// A tree node.
    Node(Stored),
    /// A row version.
    Row(KeptRow),
    /// A relation's shape.
    Shape(Relation),
    /// A checkpoint.
    Checkpoint(Checkpoint),
}

/// The store: see the module comment.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    /// Which files are in force: `nodes.<generation>.log` and `roots.<generation>.log`.
    generation: u64,
    nodes: File,
    roots: File,
    /// Committed bytes of the node log.
    nodes_len: u64,
    /// Committed records of the root log.
    roots_count: u64,
    /// Where the last checkpoint is kept (0: none yet).
    checkpoint: u64,
    /// The first root whose tree is kept (those before it are [`PRUNED`]).
    kept_from: u64,
    /// Records appended since the last commit (their places follow `nodes_len`).
    pending: Vec<u8>,
    pending_roots: Vec<u8>,
    /// The last root pushed (committed or not).
    last_root: Option<KeptRoot>,
}

impl Store {
    /// Opens (or creates) the store in `dir`, cutting off anything written after the last
    /// commit.
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|err| io_error(dir, "creating", &err))?;
        let head_path = dir.join("head");
        let head = match std::fs::read(&head_path) {
            Ok(bytes) => Head::decode(&bytes)
                .ok_or_else(|| store_error(&head_path, 0, "is not a walproof store head"))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Head::default(),
            Err(err) => return Err(io_error(&head_path, "reading", &err)),
        };
        remove_other_generations(dir, head.generation)?;
        let nodes = open_log(&nodes_path(dir, head.generation))?;
        let roots = open_log(&roots_path(dir, head.generation))?;
        let mut store = Store {
            dir: dir.to_owned(),
            generation: head.generation,
            nodes,
            roots,
            nodes_len: head.nodes_len,
            roots_count: head.roots_count,
            checkpoint: head.checkpoint,
            kept_from: head.kept_from,
            pending: Vec::new(),
            pending_roots: Vec::new(),
            last_root: None,
        };
        // Cut off what no commit covers (a crash mid-commit), then start a new file's magic.
        let path = store.nodes_path();
        store
            .nodes
            .set_len(head.nodes_len)
            .map_err(|err| io_error(&path, "truncating", &err))?;
        store
            .roots
            .set_len(head.roots_count * ROOT_RECORD as u64)
            .map_err(|err| io_error(&store.roots_path(), "truncating", &err))?;
        if head.nodes_len == 0 {
            store.pending.extend_from_slice(NODES_MAGIC);
        } else {
            let mut magic = [0; 8];
            store
                .nodes
                .read_exact_at(&mut magic, 0)
                .map_err(|err| io_error(&path, "reading", &err))?;
            if &magic != NODES_MAGIC {
                return Err(store_error(&path, 0, "is not a walproof node log"));
            }
        }
        store.last_root = match store.roots_count {
            0 => None,
            n => Some(store.root_record(n - 1)?),
        };
        Ok(store)
    }

    fn nodes_path(&self) -> PathBuf {
        nodes_path(&self.dir, self.generation)
    }

    fn roots_path(&self) -> PathBuf {
        roots_path(&self.dir, self.generation)
    }

    /// Replaces `head` (written aside, synced, renamed, the directory synced).
    fn write_head(&self, head: &Head) -> Result<()> {
        let head_path = self.dir.join("head");
        let aside = self.dir.join("head.new");
        (|| {
            let mut file = File::create(&aside)?;
            file.write_all(&head.encode())?;
            file.sync_all()?;
            std::fs::rename(&aside, &head_path)?;
            File::open(&self.dir)?.sync_all()
        })()
        .map_err(|err| io_error(&head_path, "replacing", &err))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index of the first root whose tree is kept ([`Store::compact`] prunes those before).
    pub fn kept_from(&self) -> u64 {
        self.kept_from
    }

    /// Keeps only the trees of roots `keep_from..` (and every shape), in the next generation's
    /// files: the records those roots reach are copied in log order (children still before
    /// parents) with their places rewritten, older roots keep their records marked
    /// [`PRUNED`], and `head` then switches to the new files. `reached` holds places the
    /// caller knows a kept root reaches, each with everything below it (the state's current
    /// tree); the rest are found by walking the kept roots' trees from the log. Only after a
    /// commit (nothing pending). Returns where each kept record moved.
    pub fn compact(&mut self, keep_from: u64, reached: Places) -> Result<Relocation> {
        let keep_from = keep_from.min(self.roots_count.saturating_sub(1));
        let reached = self.reach(keep_from, reached)?;
        self.compact_reached(keep_from, &reached)
    }

    /// `reached` and everything the trees of roots `keep_from..` reach besides, walked from the
    /// log (a place already in `reached` must have everything below it there too).
    pub fn reach(&self, keep_from: u64, mut reached: Places) -> Result<Places> {
        if !self.pending_roots.is_empty() || self.pending.len() > NODES_MAGIC.len() {
            return Err(CommitError::Store(
                "compaction asked for with records not yet committed".into(),
            ));
        }
        // A node's children are kept before it, so a place already marked has all below it
        // marked too.
        for index in keep_from..self.roots_count {
            let root_node = self.root_record(index)?.root_node;
            if root_node == PRUNED {
                return Err(self.damaged(root_node, "is the pruned tree of a kept root"));
            }
            let mut below = vec![root_node];
            while let Some(place) = below.pop() {
                if place == 0 || !reached.insert(place) {
                    continue;
                }
                match self.read(place)? {
                    Record::Node(Stored::Node { children, .. }) => below.extend(children),
                    Record::Row(_) => {}
                    _ => return Err(self.damaged(place, "is in a tree but not a node or row")),
                }
            }
        }
        Ok(reached)
    }

    /// [`Store::compact`] with every place the kept roots reach given (`reached`, closed under
    /// children): only the copy, no walk.
    pub fn compact_reached(&mut self, keep_from: u64, reached: &Places) -> Result<Relocation> {
        if !self.pending_roots.is_empty() || self.pending.len() > NODES_MAGIC.len() {
            return Err(CommitError::Store(
                "compaction asked for with records not yet committed".into(),
            ));
        }
        let checkpoint = self
            .checkpoint()?
            .ok_or_else(|| CommitError::Store("compaction asked for before any commit".into()))?;
        let keep_from = keep_from.min(self.roots_count.saturating_sub(1));
        // Copy: one pass over the log, in order.
        let generation = self.generation + 1;
        let new_nodes_path = nodes_path(&self.dir, generation);
        let new_roots_path = roots_path(&self.dir, generation);
        let mut relocation = Relocation::default();
        relocation.moved.reserve(reached.len() + 1024);
        let mut out = BufWriter::with_capacity(
            1 << 22,
            File::create(&new_nodes_path)
                .map_err(|err| io_error(&new_nodes_path, "creating", &err))?,
        );
        let mut written = Vec::with_capacity(1 << 16);
        written.extend_from_slice(NODES_MAGIC);
        let mut new_len = 0u64;
        let flush = |out: &mut BufWriter<File>, written: &mut Vec<u8>| {
            out.write_all(written)
                .map_err(|err| io_error(&new_nodes_path, "writing", &err))?;
            written.clear();
            Ok::<_, CommitError>(())
        };
        let moved = |old: u64, relocation: &Relocation| {
            relocation
                .place(old)
                .ok_or_else(|| self.damaged(old, "is named by a kept record but was not kept"))
        };
        self.scan(|place, kind, payload| {
            let keep = kind == SHAPE || ((kind == NODE || kind == ROW) && reached.contains(&place));
            if !keep {
                return Ok(());
            }
            let at = new_len + written.len() as u64;
            written.push(kind);
            written.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            let start = written.len();
            written.extend_from_slice(payload);
            // The places a record names: a node's children, a row's shape.
            let (first, count) = match kind {
                NODE => (start + 1, payload.first().map_or(0, |n| usize::from(*n))),
                ROW => (start + ROW_SHAPE_AT, 1),
                _ => (start, 0),
            };
            for field in (0..count).map(|i| first + 8 * i) {
                let old = written
                    .get(field..field + 8)
                    .and_then(|bytes| Some(u64::from_be_bytes(bytes.try_into().ok()?)))
                    .ok_or_else(|| self.damaged(place, "is too short for the places it names"))?;
                let new = moved(old, &relocation)?;
                written[field..field + 8].copy_from_slice(&new.to_be_bytes());
            }
            relocation.moved.insert(place, at);
            if written.len() >= 1 << 20 {
                new_len += written.len() as u64;
                flush(&mut out, &mut written)?;
            }
            Ok(())
        })?;
        // The checkpoint, with its places moved.
        let mut last = checkpoint.last;
        last.root_node = moved(last.root_node, &relocation)?;
        let checkpoint = Checkpoint {
            last,
            shapes: checkpoint
                .shapes
                .iter()
                .map(|(id, place)| Ok((*id, moved(*place, &relocation)?)))
                .collect::<Result<_>>()?,
        };
        let checkpoint_at = new_len + written.len() as u64;
        written.push(CHECKPOINT);
        let length_at = written.len();
        written.extend_from_slice(&[0; 4]);
        checkpoint.encode(&mut written);
        let length = (written.len() - length_at - 4) as u32;
        written[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        new_len += written.len() as u64;
        flush(&mut out, &mut written)?;
        out.into_inner()
            .map_err(|err| io_error(&new_nodes_path, "writing", err.error()))?
            .sync_all()
            .map_err(|err| io_error(&new_nodes_path, "syncing", &err))?;
        // The roots, each naming its moved root node or none.
        let mut roots = Vec::with_capacity(self.roots_count as usize * ROOT_RECORD);
        for index in 0..self.roots_count {
            let mut root = self.root_record(index)?;
            root.root_node = if index < keep_from {
                PRUNED
            } else {
                moved(root.root_node, &relocation)?
            };
            root.encode(&mut roots);
        }
        (|| {
            let mut file = File::create(&new_roots_path)?;
            file.write_all(&roots)?;
            file.sync_all()
        })()
        .map_err(|err| io_error(&new_roots_path, "writing", &err))?;
        // Switch.
        self.write_head(&Head {
            generation,
            nodes_len: new_len,
            roots_count: self.roots_count,
            checkpoint: checkpoint_at,
            kept_from: keep_from,
        })?;
        let (old_nodes, old_roots) = (self.nodes_path(), self.roots_path());
        self.nodes = open_log(&new_nodes_path)?;
        self.roots = open_log(&new_roots_path)?;
        self.generation = generation;
        self.nodes_len = new_len;
        self.checkpoint = checkpoint_at;
        self.kept_from = keep_from;
        self.last_root = Some(checkpoint.last);
        for old in [old_nodes, old_roots] {
            std::fs::remove_file(&old).map_err(|err| io_error(&old, "removing", &err))?;
        }
        Ok(relocation)
    }

    /// Visits every committed record of the node log in order: its place, kind and payload.
    fn scan(&self, mut visit: impl FnMut(u64, u8, &[u8]) -> Result<()>) -> Result<()> {
        let path = self.nodes_path();
        let mut buffer = vec![0u8; 1 << 22];
        // `buffer[..filled]` holds the log from `at`.
        let (mut at, mut filled) = (NODES_MAGIC.len() as u64, 0usize);
        let mut offset = 0usize;
        while at + (offset as u64) < self.nodes_len {
            let place = at + offset as u64;
            let available = filled - offset;
            let needed = if available >= 5 {
                let length = &buffer[offset + 1..offset + 5];
                5 + u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize
            } else {
                5
            };
            if place + needed as u64 > self.nodes_len {
                return Err(self.damaged(place, "runs past the committed log"));
            }
            if available < needed {
                // Move what is left to the front and read more.
                buffer.copy_within(offset..filled, 0);
                at = place;
                filled = available;
                offset = 0;
                if buffer.len() < needed {
                    buffer.resize(needed, 0);
                }
                let want = (buffer.len() - filled).min((self.nodes_len - at) as usize - filled);
                self.nodes
                    .read_exact_at(&mut buffer[filled..filled + want], at + filled as u64)
                    .map_err(|err| io_error(&path, "reading", &err))?;
                filled += want;
                continue;
            }
            visit(place, buffer[offset], &buffer[offset + 5..offset + needed])?;
            offset += needed;
        }
        Ok(())
    }

    /// The last checkpoint committed, if any.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>> {
        if self.checkpoint == 0 {
            return Ok(None);
        }
        match self.read(self.checkpoint)? {
            Record::Checkpoint(checkpoint) => Ok(Some(checkpoint)),
            _ => Err(self.damaged(self.checkpoint, "is not the checkpoint the head names")),
        }
    }

    /// Bytes kept (committed and pending), both files.
    pub fn bytes(&self) -> u64 {
        self.nodes_len
            + self.pending.len() as u64
            + (self.roots_count * ROOT_RECORD as u64)
            + self.pending_roots.len() as u64
    }

    fn append(&mut self, kind: u8, payload: impl FnOnce(&mut Vec<u8>)) -> u64 {
        let place = self.nodes_len + self.pending.len() as u64;
        self.pending.push(kind);
        let length_at = self.pending.len();
        self.pending.extend_from_slice(&[0; 4]);
        payload(&mut self.pending);
        let length = (self.pending.len() - length_at - 4) as u32;
        self.pending[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        place
    }

    /// Keeps a tree node; returns its place.
    pub fn push_node(&mut self, bytes: &[u8], children: &[u64]) -> u64 {
        self.append(NODE, |out| {
            out.push(children.len() as u8);
            for child in children {
                out.extend_from_slice(&child.to_be_bytes());
            }
            out.extend_from_slice(bytes);
        })
    }

    /// Keeps a row version; returns its place.
    pub fn push_row(&mut self, row: RowVersion<'_>) -> u64 {
        self.append(ROW, |out| {
            out.extend_from_slice(&row.key.0);
            out.extend_from_slice(&row.leaf.0);
            out.extend_from_slice(&row.table.to_be_bytes());
            out.extend_from_slice(&row.shape.to_be_bytes());
            out.extend_from_slice(&row.count.to_be_bytes());
            out.extend_from_slice(&(row.key_values.len() as u16).to_be_bytes());
            for value in row.key_values {
                push_text(out, value);
            }
            out.extend_from_slice(&(row.hashes.len() as u16).to_be_bytes());
            for hash in row.hashes {
                out.extend_from_slice(&hash.0);
            }
        })
    }

    /// Keeps a relation's shape; returns its place.
    pub fn push_shape(&mut self, relation: &Relation) -> u64 {
        self.append(SHAPE, |out| {
            out.extend_from_slice(&relation.id.to_be_bytes());
            push_text(out, &relation.schema);
            push_text(out, &relation.name);
            out.push(relation.replica_identity.code());
            out.extend_from_slice(&(relation.columns.len() as u16).to_be_bytes());
            for column in &relation.columns {
                push_text(out, &column.name);
                out.extend_from_slice(&column.type_oid.to_be_bytes());
                out.extend_from_slice(&column.type_modifier.to_be_bytes());
                out.push(u8::from(column.key));
            }
        })
    }

    /// Records a transaction's root (committed with the next [`Store::commit`]).
    pub fn push_root(&mut self, root: KeptRoot) {
        root.encode(&mut self.pending_roots);
        self.last_root = Some(root);
    }

    /// The last root pushed.
    pub fn last_root(&self) -> Option<KeptRoot> {
        self.last_root
    }

    /// The index the next root pushed will have.
    pub fn next_root_index(&self) -> u64 {
        self.roots_count + (self.pending_roots.len() / ROOT_RECORD) as u64
    }

    /// Whether anything was pushed since the last commit.
    pub fn has_pending(&self) -> bool {
        !self.pending_roots.is_empty()
    }

    /// Makes everything pushed durable, with `checkpoint` as the place to resume from.
    pub fn commit(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        let place = self.append(CHECKPOINT, |out| checkpoint.encode(out));
        let nodes_path = self.nodes_path();
        let roots_path = self.roots_path();
        self.nodes
            .write_all_at(&self.pending, self.nodes_len)
            .and_then(|()| self.nodes.sync_data())
            .map_err(|err| io_error(&nodes_path, "writing", &err))?;
        let roots_at = self.roots_count * ROOT_RECORD as u64;
        self.roots
            .write_all_at(&self.pending_roots, roots_at)
            .and_then(|()| self.roots.sync_data())
            .map_err(|err| io_error(&roots_path, "writing", &err))?;
        let nodes_len = self.nodes_len + self.pending.len() as u64;
        let roots_count = self.roots_count + (self.pending_roots.len() / ROOT_RECORD) as u64;
        self.write_head(&Head {
            generation: self.generation,
            nodes_len,
            roots_count,
            checkpoint: place,
            kept_from: self.kept_from,
        })?;
        self.nodes_len = nodes_len;
        self.roots_count = roots_count;
        self.checkpoint = place;
        self.pending.clear();
        self.pending_roots.clear();
        Ok(())
    }

    /// The record at `place` (committed records only).
    pub fn read(&self, place: u64) -> Result<Record> {
        if place < NODES_MAGIC.len() as u64 || place + 5 > self.nodes_len {
            return Err(self.damaged(place, "is outside the committed log"));
        }
        let path = self.nodes_path();
        let mut header = [0; 5];
        self.nodes
            .read_exact_at(&mut header, place)
            .map_err(|err| io_error(&path, "reading", &err))?;
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as u64;
        if place + 5 + length > self.nodes_len {
            return Err(self.damaged(place, "runs past the committed log"));
        }
        let mut payload = vec![0; length as usize];
        self.nodes
            .read_exact_at(&mut payload, place + 5)
            .map_err(|err| io_error(&path, "reading", &err))?;
        let mut r = Reader::new(&payload);
        let record = match header[0] {
            NODE => (|| {
                let n = usize::from(r.u8()?);
                let children = (0..n).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
                Some(Record::Node(Stored::Node {
                    bytes: r.rest().to_vec(),
                    children,
                }))
            })(),
            ROW => decode_row(&mut r).map(Record::Row),
            SHAPE => decode_shape(&mut r).map(Record::Shape),
            CHECKPOINT => Checkpoint::decode(&mut r).map(Record::Checkpoint),
            _ => None,
        };
        record.ok_or_else(|| self.damaged(place, "is not a record"))
    }

    /// A node or leaf for [`crate::tree::StateTree::load`] and proofs; a row's data is kept
    /// by `row` when given.
    pub fn read_tree(&self, place: u64) -> Result<(Stored, Option<KeptRow>)> {
        match self.read(place)? {
            Record::Node(node) => Ok((node, None)),
            Record::Row(row) => Ok((
                Stored::Leaf {
                    key: row.key,
                    leaf: row.leaf,
                },
                Some(row),
            )),
            _ => Err(self.damaged(place, "is neither a node nor a row")),
        }
    }

    /// The shape kept at `place`.
    pub fn shape(&self, place: u64) -> Result<Relation> {
        match self.read(place)? {
            Record::Shape(shape) => Ok(shape),
            _ => Err(self.damaged(place, "is not a shape")),
        }
    }

    /// Committed roots.
    pub fn roots(&self) -> u64 {
        self.roots_count
    }

    /// The `index`th committed root.
    pub fn root_record(&self, index: u64) -> Result<KeptRoot> {
        let path = self.roots_path();
        let mut bytes = [0; ROOT_RECORD];
        self.roots
            .read_exact_at(&mut bytes, index * ROOT_RECORD as u64)
            .map_err(|err| io_error(&path, "reading", &err))?;
        KeptRoot::decode(&bytes).ok_or_else(|| store_error(&path, index, "is not a root record"))
    }

    /// The root of the last committed transaction at or before `lsn`.
    pub fn root_at(&self, lsn: Lsn) -> Result<Option<KeptRoot>> {
        match self.first_after(lsn)? {
            0 => Ok(None),
            n => self.root_record(n - 1).map(Some),
        }
    }

    /// The index of the first committed root after `lsn` (binary search).
    pub fn first_after(&self, lsn: Lsn) -> Result<u64> {
        let (mut low, mut high) = (0, self.roots_count);
        while low < high {
            let mid = low + (high - low) / 2;
            if self.root_record(mid)?.commit_lsn <= lsn {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        Ok(low)
    }

    fn damaged(&self, place: u64, what: &str) -> CommitError {
        store_error(&self.nodes_path(), place, what)
    }
}

/// Where a row record's shape place sits in its payload (after key, leaf and table).
const ROW_SHAPE_AT: usize = 32 + 32 + 4;

fn nodes_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("nodes.{generation}.log"))
}

fn roots_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("roots.{generation}.log"))
}

fn open_log(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|err| io_error(path, "opening", &err))
}

/// Removes the logs of generations other than `generation`: an older one a compaction
/// replaced, or a newer one it had not switched to when it stopped.
fn remove_other_generations(dir: &Path, generation: u64) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|err| io_error(dir, "listing", &err))?;
    for entry in entries {
        let entry = entry.map_err(|err| io_error(dir, "listing", &err))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let other = ["nodes.", "roots."].iter().any(|prefix| {
            name.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(".log"))
                .and_then(|g| g.parse::<u64>().ok())
                .is_some_and(|g| g != generation)
        });
        if other {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|err| io_error(&path, "removing", &err))?;
        }
    }
    Ok(())
}

fn push_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn decode_row(r: &mut Reader<'_>) -> Option<KeptRow> {
    let key = r.digest()?;
    let leaf = r.digest()?;
    let table = r.u32()?;
    let shape = r.u64()?;
    let count = r.u64()?;
    let n = r.u16()?;
    let key_values = (0..n).map(|_| r.text()).collect::<Option<Vec<_>>>()?;
    let m = r.u16()?;
    let hashes = (0..m).map(|_| r.digest()).collect::<Option<Vec<_>>>()?;
    Some(KeptRow {
        key,
        leaf,
        table,
        shape,
        count,
        key_values,
        hashes,
    })
}

fn decode_shape(r: &mut Reader<'_>) -> Option<Relation> {
    let id = r.u32()?;
    let schema = r.text()?;
    let name = r.text()?;
    let replica_identity = ReplicaIdentity::from_code(r.u8()?)?;
    let n = r.u16()?;
    let columns = (0..n)
        .map(|_| {
            Some(Column {
                name: r.text()?,
                type_oid: r.u32()?,
                type_modifier: r.u32()? as i32,
                key: r.u8()? != 0,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Relation {
        id,
        schema,
        name,
        replica_identity,
        columns,
    })
}

/// Reads big-endian fields off a byte slice; `None` past its end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn digest(&mut self) -> Option<Digest> {
        Some(Digest(self.take(32)?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn io_error(path: &Path, doing: &str, err: &std::io::Error) -> CommitError {
    CommitError::Store(format!("{doing} {}: {err}", path.display()))
}

fn store_error(path: &Path, place: u64, what: &str) -> CommitError {
    CommitError::Store(format!(
        "{} at {place} {what}: the store is damaged (move the directory aside to rebuild it from the ledger)",
        path.display()
    ))
}
