//! The Sparse Merkle Tree itself: monotree's tree (SHA-256, its node format, its proofs) over
//! keys and leaves from `walproof_core::leaf`, held as a mutable tree in memory and hashed
//! once per transaction.
//!
//! **The tree.** monotree compresses paths: an inner node branches where the keys under it
//! first differ, and each of its two cells names a child and the key bits leading to it. Only
//! the root may be a one-cell ("soft") node, when every key shares a first bit. The root is
//! the SHA-256 of the root node's bytes, exactly as monotree writes nodes (see
//! [`crate::proof`]); a test builds the same keys in stock monotree and compares every root.
//!
//! **Hashed once per transaction.** A change is only noted; [`StateTree::end`] applies the
//! transaction's changes in key order, each marking the nodes on its path stale, then hashes
//! each stale node once, bottom up, so the nodes near the root that a transaction's rows share
//! are hashed once per transaction, not once per row. The nodes it writes are handed to a sink
//! ([`StateTree::end_with`]): the durable store keeps them, so a proof at an earlier root can
//! still be built.
//!
//! **Canonical removal.** Removing a key drops its leaf and its parent, whose other child
//! takes the parent's place (its cell then spans the parent's bits too): the tree is exactly
//! the one that never held the key. monotree's own `remove` leaves a one-cell node behind, so
//! its root would depend on history; here the root is a function of the set of (key, leaf)
//! pairs alone. Anyone holding the rows at an LSN (a shadow database, a Parquet archive) can
//! recompute its root without replaying history.

use sha2::{Digest as _, Sha256};
use walproof_core::Digest;

use crate::error::{CommitError, Result};
use crate::proof::PathProof;

/// The root of the empty tree: 32 zero bytes (monotree has no root for it).
pub const EMPTY_ROOT: Digest = Digest([0; 32]);

/// Key length in bits.
const KEY_BITS: u16 = 256;

type Hash = [u8; 32];

/// A child: a leaf or an inner node, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Child {
    Leaf(u32),
    Inner(u32),
}

/// A key and its leaf.
#[derive(Debug, Clone, Copy)]
struct Leaf {
    key: Digest,
    leaf: Hash,
}

/// An inner node: two children that part at key bit `depth`.
#[derive(Debug, Clone, Copy)]
struct Inner {
    /// The key bits of every key below, valid before `depth` (a copy of one such key).
    path: Hash,
    /// The hash of the node's bytes, when not `stale`.
    hash: Hash,
    /// Where the store keeps the node (0: not kept).
    stored: u64,
    /// The child whose key has a 0 at `depth`, and the one with a 1.
    children: [Child; 2],
    depth: u16,
    stale: bool,
}

/// Where the store keeps a node's child: a leaf by its key (the row's record), a node by where
/// the sink said it keeps it.
#[derive(Debug, Clone, Copy)]
pub enum Kept<'a> {
    /// A leaf, by its key.
    Leaf(&'a Digest),
    /// A node, where it is kept.
    Node(u64),
}

/// A node or a leaf read back from the store, for [`StateTree::load`].
#[derive(Debug, Clone)]
pub enum Stored {
    /// A node: monotree's bytes and where its children are kept, left (or only) first.
    Node {
        /// monotree's bytes.
        bytes: Vec<u8>,
        /// Where its children are kept.
        children: Vec<u64>,
    },
    /// A leaf.
    Leaf {
        /// The key.
        key: Digest,
        /// The leaf.
        leaf: Digest,
    },
}

/// Receives each node [`StateTree::end_with`] hashes: hash, monotree bytes, where its children
/// are kept; returns where it keeps the node.
pub type NodeSink<'a> = dyn FnMut(&Digest, &[u8], &[Kept<'_>]) -> u64 + 'a;

/// Where a child hangs: the top of the tree or one side of an inner node.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Top,
    Side(u32, usize),
}

/// A tree of `key → leaf`, its root, and the nodes written since the last root.
#[derive(Default, Clone)]
pub struct StateTree {
    leaves: Vec<Leaf>,
    free_leaves: Vec<u32>,
    inners: Vec<Inner>,
    free_inners: Vec<u32>,
    top: Option<Child>,
    root: Hash,
    /// Changed since the root was computed.
    changed: bool,
    /// Sets (`Some` leaf) and removals (`None`) since the root was computed, in their order:
    /// [`StateTree::end`] applies them sorted by key.
    pending: Vec<(Hash, Option<Hash>)>,
    /// The inner nodes on the path being changed.
    path: Vec<u32>,
    /// Node bytes being built.
    scratch: Vec<u8>,
    /// Where the store kept nodes the tree no longer has (replaced or removed), since the last
    /// [`StateTree::take_superseded`]; collected only once [`StateTree::track_superseded`].
    superseded: Option<Vec<u64>>,
}

impl std::fmt::Debug for StateTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateTree")
            .field("root", &Digest(self.root))
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

/// Key bit `i` (0 is the most significant bit of the first byte).
pub(crate) fn bit(key: &Hash, i: u16) -> usize {
    usize::from(key[usize::from(i / 8)] >> (7 - i % 8) & 1)
}

/// The first bit in `from..to` where `a` and `b` differ.
fn first_difference(a: &Hash, b: &Hash, from: u16, to: u16) -> Option<u16> {
    let mut byte = usize::from(from / 8);
    let mut mask = 0xffu8 >> (from % 8);
    while byte * 8 < usize::from(to) {
        let differ = (a[byte] ^ b[byte]) & mask;
        if differ != 0 {
            let at = (byte * 8) as u16 + differ.leading_zeros() as u16;
            return (at < to).then_some(at);
        }
        mask = 0xff;
        byte += 1;
    }
    None
}

/// Appends monotree's bytes for key bits `start..end` of `path`: the range relative to the
/// byte holding `start` (`u16` BE each), then those bytes with the bits outside it cleared.
pub(crate) fn push_bits(out: &mut Vec<u8>, path: &Hash, start: u16, end: u16) {
    let offset = start % 8;
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&(offset + (end - start)).to_be_bytes());
    let first = out.len();
    out.extend_from_slice(&path[usize::from(start / 8)..usize::from(end.div_ceil(8))]);
    out[first] &= 0xff >> offset;
    if end % 8 != 0 {
        let last = out.len() - 1;
        out[last] &= 0xff << (8 - end % 8);
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

impl StateTree {
    /// The root as of the last [`StateTree::end`] ([`EMPTY_ROOT`] for the empty tree).
    pub fn root(&self) -> Digest {
        debug_assert!(
            !self.changed && self.pending.is_empty(),
            "the root is asked for before end()"
        );
        Digest(self.root)
    }

    /// Keys held, as of the last [`StateTree::end`].
    pub fn keys(&self) -> usize {
        self.leaves.len() - self.free_leaves.len()
    }

    /// Starts a transaction (changes may also come without it: [`StateTree::end`] is what
    /// computes the root).
    pub fn begin(&mut self) {}

    /// Computes the root after the changes since the last one.
    pub fn end(&mut self) {
        let _ = self.recompute(&mut None);
    }

    /// Computes the root after the changes since the last one, handing every node it hashes
    /// to `written`, children before parents, the root node last; returns where the root node
    /// is kept (0 for the empty tree), or `None` when nothing changed.
    pub fn end_with(&mut self, written: &mut NodeSink<'_>) -> Option<u64> {
        self.recompute(&mut Some(written))
    }

    /// [`StateTree::end_with`], with no sink: nodes keep the places they had.
    fn recompute(&mut self, written: &mut Option<&mut NodeSink<'_>>) -> Option<u64> {
        self.apply_pending();
        if !self.changed {
            return None;
        }
        self.changed = false;
        let mut write = |hash: &Digest, bytes: &[u8], children: &[Kept<'_>]| {
            written
                .as_mut()
                .map_or(0, |write| write(hash, bytes, children))
        };
        let (root, kept) = match self.top {
            None => (EMPTY_ROOT.0, 0),
            Some(Child::Leaf(leaf)) => {
                let Leaf { key, leaf } = self.leaves[leaf as usize];
                let bytes = soft_bytes(&leaf, &key.0, KEY_BITS);
                let root = sha256(&bytes);
                (root, write(&Digest(root), &bytes, &[Kept::Leaf(&key)]))
            }
            Some(Child::Inner(inner)) => {
                let hash = self.rehash(inner, &mut write);
                let Inner {
                    depth,
                    path,
                    stored,
                    ..
                } = self.inners[inner as usize];
                if depth == 0 {
                    (hash, stored)
                } else {
                    let bytes = soft_bytes(&hash, &path, depth);
                    let root = sha256(&bytes);
                    (root, write(&Digest(root), &bytes, &[Kept::Node(stored)]))
                }
            }
        };
        self.root = root;
        Some(kept)
    }

    /// Hashes the stale nodes below and at `inner`; a node `write` keeps somewhere (a place
    /// other than 0) takes that place.
    fn rehash(&mut self, inner: u32, write: &mut NodeSink<'_>) -> Hash {
        let node = self.inners[inner as usize];
        if !node.stale {
            return node.hash;
        }
        for child in node.children {
            if let Child::Inner(child) = child {
                self.rehash(child, write);
            }
        }
        let mut bytes = std::mem::take(&mut self.scratch);
        self.hard_bytes(&node, &mut bytes);
        let hash = sha256(&bytes);
        let kept = node.children.map(|child| match child {
            Child::Leaf(leaf) => Kept::Leaf(&self.leaves[leaf as usize].key),
            Child::Inner(inner) => Kept::Node(self.inners[inner as usize].stored),
        });
        let stored = write(&Digest(hash), &bytes, &kept);
        self.scratch = bytes;
        let node = &mut self.inners[inner as usize];
        node.hash = hash;
        if stored != 0 {
            if node.stored != 0
                && let Some(superseded) = &mut self.superseded
            {
                superseded.push(node.stored);
            }
            node.stored = stored;
        }
        node.stale = false;
        hash
    }

    /// A child's cell below a node branching at `depth`: its hash, its key bits and where they
    /// end.
    fn cell(&self, child: Child) -> (&Hash, &Hash, u16) {
        match child {
            Child::Leaf(leaf) => {
                let leaf = &self.leaves[leaf as usize];
                (&leaf.leaf, &leaf.key.0, KEY_BITS)
            }
            Child::Inner(inner) => {
                let inner = &self.inners[inner as usize];
                (&inner.hash, &inner.path, inner.depth)
            }
        }
    }

    /// monotree's bytes of a two-cell node: `hash_L ‖ bits_L ‖ bits_R ‖ hash_R ‖ 0x01`.
    fn hard_bytes(&self, node: &Inner, out: &mut Vec<u8>) {
        out.clear();
        let [left, right] = node.children.map(|child| self.cell(child));
        push_hard(out, node.depth, left, right);
    }

    fn at(&self, slot: Slot) -> Option<Child> {
        match slot {
            Slot::Top => self.top,
            Slot::Side(inner, side) => Some(self.inners[inner as usize].children[side]),
        }
    }

    fn place(&mut self, slot: Slot, child: Option<Child>) {
        match (slot, child) {
            (Slot::Top, child) => self.top = child,
            (Slot::Side(inner, side), Some(child)) => {
                self.inners[inner as usize].children[side] = child;
            }
            (Slot::Side(..), None) => unreachable!("an inner node always has two children"),
        }
    }

    fn new_leaf(&mut self, key: &Hash, leaf: &Hash) -> Child {
        let node = Leaf {
            key: Digest(*key),
            leaf: *leaf,
        };
        Child::Leaf(match self.free_leaves.pop() {
            Some(at) => {
                self.leaves[at as usize] = node;
                at
            }
            None => {
                self.leaves.push(node);
                u32::try_from(self.leaves.len() - 1).expect("fewer than 2^32 keys")
            }
        })
    }

    /// A new inner node parting `existing` from a new leaf for `key` at bit `depth`.
    fn split(&mut self, existing: Child, key: &Hash, leaf: &Hash, depth: u16) -> Child {
        let new = self.new_leaf(key, leaf);
        let mut children = [existing, new];
        if bit(key, depth) == 0 {
            children.swap(0, 1);
        }
        let node = Inner {
            path: *key,
            hash: [0; 32],
            stored: 0,
            children,
            depth,
            stale: true,
        };
        Child::Inner(match self.free_inners.pop() {
            Some(at) => {
                self.inners[at as usize] = node;
                at
            }
            None => {
                self.inners.push(node);
                u32::try_from(self.inners.len() - 1).expect("fewer than 2^32 nodes")
            }
        })
    }

    /// Marks the nodes on the path just walked stale.
    fn touch_path(&mut self) {
        for &inner in &self.path {
            self.inners[inner as usize].stale = true;
        }
        self.changed = true;
    }

    /// Sets `key`'s leaf (the tree changes at the next [`StateTree::end`]).
    pub fn set(&mut self, key: &Digest, leaf: &Digest) -> Result<()> {
        self.pending.push((key.0, Some(leaf.0)));
        Ok(())
    }

    /// Removes `key`, leaving the tree as if it had never held it (absent: nothing changes; the
    /// tree changes at the next [`StateTree::end`]).
    pub fn remove(&mut self, key: &Digest) -> Result<()> {
        self.pending.push((key.0, None));
        Ok(())
    }

    /// Applies the pending sets and removals in key order (a key's own in their order: the
    /// sort is stable). The tree they leave is the same in any order, but walks in key order
    /// share the nodes near the root, and the nodes they create lie in memory in the order
    /// [`StateTree::end`] hashes them. With the commit state's rows boxed as well, the tree's
    /// thread took 5.4–5.6 s of the replay benchmark instead of 7.4–10.2 s (benches/README.md,
    /// runs V–X).
    fn apply_pending(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|(key, _)| *key);
        for (key, leaf) in &pending {
            match leaf {
                Some(leaf) => self.put(key, leaf),
                None => self.take(key),
            }
        }
        pending.clear();
        self.pending = pending;
    }

    /// Sets `key`'s leaf now.
    fn put(&mut self, key: &Hash, leaf: &Hash) {
        self.path.clear();
        let mut slot = Slot::Top;
        let mut from = 0;
        loop {
            let Some(child) = self.at(slot) else {
                let new = self.new_leaf(key, leaf);
                self.place(slot, Some(new));
                break;
            };
            match child {
                Child::Leaf(at) => {
                    let held = &mut self.leaves[at as usize];
                    match first_difference(&held.key.0, key, from, KEY_BITS) {
                        None if held.leaf == *leaf => return, // nothing changes
                        None => held.leaf = *leaf,
                        Some(depth) => {
                            let new = self.split(child, key, leaf, depth);
                            self.place(slot, Some(new));
                        }
                    }
                    break;
                }
                Child::Inner(at) => {
                    let Inner { path, depth, .. } = self.inners[at as usize];
                    if let Some(part) = first_difference(&path, key, from, depth) {
                        let new = self.split(child, key, leaf, part);
                        self.place(slot, Some(new));
                        break;
                    }
                    self.path.push(at);
                    slot = Slot::Side(at, bit(key, depth));
                    from = depth + 1;
                }
            }
        }
        self.touch_path();
    }

    /// Removes `key` now.
    fn take(&mut self, key: &Hash) {
        self.path.clear();
        let mut slot = Slot::Top;
        let mut parent: Option<(Slot, u32, usize)> = None;
        let mut from = 0;
        let leaf = loop {
            match self.at(slot) {
                None => return,
                Some(Child::Leaf(at)) => {
                    if first_difference(&self.leaves[at as usize].key.0, key, from, KEY_BITS)
                        .is_some()
                    {
                        return;
                    }
                    break at;
                }
                Some(Child::Inner(at)) => {
                    let Inner { path, depth, .. } = self.inners[at as usize];
                    if first_difference(&path, key, from, depth).is_some() {
                        return;
                    }
                    let side = bit(key, depth);
                    parent = Some((slot, at, side));
                    self.path.push(at);
                    slot = Slot::Side(at, side);
                    from = depth + 1;
                }
            }
        };
        self.free_leaves.push(leaf);
        match parent {
            None => self.top = None,
            Some((parent_slot, inner, side)) => {
                // The sibling takes the parent's place.
                let sibling = self.inners[inner as usize].children[1 - side];
                self.place(parent_slot, Some(sibling));
                let stored = self.inners[inner as usize].stored;
                if stored != 0
                    && let Some(superseded) = &mut self.superseded
                {
                    superseded.push(stored);
                }
                self.free_inners.push(inner);
                self.path.pop();
            }
        }
        self.touch_path();
    }

    /// The proof that `key` holds its leaf, or holds nothing, under the root of the last
    /// [`StateTree::end`] (changes since are not in it).
    pub fn prove(&self, key: &Digest) -> Result<PathProof> {
        if self.changed || !self.pending.is_empty() {
            return Err(CommitError::Tree(
                "a proof was asked for in the middle of a transaction".into(),
            ));
        }
        let key = &key.0;
        let mut nodes = Vec::new();
        let mut next = match self.top {
            None => return Ok(PathProof { nodes }),
            Some(Child::Leaf(at)) => {
                let Leaf { key: held, leaf } = self.leaves[at as usize];
                nodes.push(soft_bytes(&leaf, &held.0, KEY_BITS));
                return Ok(PathProof { nodes });
            }
            Some(Child::Inner(at)) => at,
        };
        let Inner { path, depth, .. } = self.inners[next as usize];
        if depth > 0 {
            nodes.push(soft_bytes(&self.inners[next as usize].hash, &path, depth));
            if first_difference(&path, key, 0, depth).is_some() {
                return Ok(PathProof { nodes });
            }
        }
        loop {
            let node = self.inners[next as usize];
            let mut bytes = Vec::new();
            self.hard_bytes(&node, &mut bytes);
            nodes.push(bytes);
            match node.children[bit(key, node.depth)] {
                Child::Leaf(_) => break,
                Child::Inner(child) => {
                    let Inner { path, depth, .. } = self.inners[child as usize];
                    if first_difference(&path, key, node.depth, depth).is_some() {
                        break; // the key leaves the tree here
                    }
                    next = child;
                }
            }
        }
        Ok(PathProof { nodes })
    }
}

impl StateTree {
    /// From now on, collect where the store kept each node the tree stops having.
    pub fn track_superseded(&mut self) {
        self.superseded.get_or_insert_with(Vec::new);
    }

    /// Stops collecting superseded places, dropping those collected.
    pub(crate) fn forget_superseded(&mut self) {
        self.superseded = None;
    }

    /// The places collected since the last call (see [`StateTree::track_superseded`]).
    pub fn take_superseded(&mut self) -> Vec<u64> {
        self.superseded
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Every key and its leaf, in no particular order.
    pub fn pairs(&self) -> impl Iterator<Item = (Digest, Digest)> + '_ {
        let mut below: Vec<Child> = self.top.into_iter().collect();
        std::iter::from_fn(move || {
            loop {
                match below.pop()? {
                    Child::Leaf(leaf) => {
                        let Leaf { key, leaf } = self.leaves[leaf as usize];
                        return Some((key, Digest(leaf)));
                    }
                    Child::Inner(inner) => below.extend(self.inners[inner as usize].children),
                }
            }
        })
    }

    /// Hands every node of the tree to `written`, as [`StateTree::end_with`] hands those it
    /// hashes (children before parents, the root node last; each node takes the place
    /// `written` gives it), hashing each again; returns where the root node is kept. Writes a
    /// whole tree into a store that has none of it.
    pub fn write_all(&mut self, written: &mut NodeSink<'_>) -> u64 {
        debug_assert!(self.pending.is_empty(), "write_all() before end()");
        for inner in &mut self.inners {
            inner.stale = true;
        }
        self.changed = true;
        self.end_with(written).unwrap_or(0)
    }

    /// Where the store keeps each inner node of the tree (after [`StateTree::end_with`]).
    pub fn stored_places(&self) -> impl Iterator<Item = u64> + '_ {
        let mut below: Vec<u32> = match self.top {
            Some(Child::Inner(inner)) => vec![inner],
            _ => Vec::new(),
        };
        std::iter::from_fn(move || {
            let inner = &self.inners[below.pop()? as usize];
            for child in inner.children {
                if let Child::Inner(child) = child {
                    below.push(child);
                }
            }
            Some(inner.stored)
        })
    }

    /// Gives each inner node the place `moved` says its node now has in the store (after
    /// [`crate::store::Store::compact`]); an error names a place it does not know.
    pub fn relocate(&mut self, moved: &dyn Fn(u64) -> Option<u64>) -> Result<()> {
        let mut below: Vec<u32> = match self.top {
            Some(Child::Inner(inner)) => vec![inner],
            _ => Vec::new(),
        };
        while let Some(at) = below.pop() {
            let inner = &mut self.inners[at as usize];
            inner.stored = moved(inner.stored).ok_or_else(|| {
                CommitError::Tree(format!("the node kept at {} was not moved", inner.stored))
            })?;
            for child in inner.children {
                if let Child::Inner(child) = child {
                    below.push(child);
                }
            }
        }
        Ok(())
    }

    /// The tree of `root`, read back from the store from its root node (kept at `root_node`).
    /// Every node's bytes and every leaf are checked: the tree rebuilt from them must hash to
    /// `root`, else the store is damaged and the error says so.
    pub fn load(
        root: &Digest,
        root_node: u64,
        read: &mut dyn FnMut(u64) -> Result<Stored>,
    ) -> Result<StateTree> {
        let mut tree = StateTree::default();
        if *root == EMPTY_ROOT {
            return Ok(tree);
        }
        let damaged =
            |what: String| CommitError::Tree(format!("the stored tree of root {root} {what}"));
        let Stored::Node { bytes, children } = read(root_node)? else {
            return Err(damaged("starts at a leaf, not a node".into()));
        };
        let cells =
            parse_cells(&bytes).ok_or_else(|| damaged("has a malformed root node".into()))?;
        tree.top = Some(match (cells.as_slice(), children.as_slice()) {
            ([cell], [child]) => tree.load_child(*child, &cell.hash, cell.len, read)?.0,
            ([_, _], [left, right]) => {
                let inner = tree.load_inner(0, root_node, &bytes, [*left, *right], read)?;
                inner.0
            }
            _ => {
                return Err(damaged(
                    "has a root node whose children do not match".into(),
                ));
            }
        });
        // Every node hashed again from the leaves up: the tree must be the one kept.
        for inner in &mut tree.inners {
            inner.stale = true;
        }
        tree.changed = true;
        tree.end();
        let rehashed = tree.root();
        if rehashed != *root {
            return Err(damaged(format!(
                "hashes to {rehashed}: the store is damaged"
            )));
        }
        Ok(tree)
    }

    /// The child kept at `offset` whose cell's hash is `hash` and whose bits end at `end`;
    /// returns it and a key below it.
    fn load_child(
        &mut self,
        offset: u64,
        hash: &Hash,
        end: u16,
        read: &mut dyn FnMut(u64) -> Result<Stored>,
    ) -> Result<(Child, Hash)> {
        let damaged = |what: &str| CommitError::Tree(format!("the stored node at {offset} {what}"));
        match read(offset)? {
            Stored::Leaf { key, leaf } if end == KEY_BITS => {
                if leaf.0 != *hash {
                    return Err(damaged("is not the leaf its parent names"));
                }
                Ok((self.new_leaf(&key.0, &leaf.0), key.0))
            }
            Stored::Node { bytes, children } if end < KEY_BITS => {
                if sha256(&bytes) != *hash {
                    return Err(damaged("is not the node its parent names"));
                }
                let [left, right] = children.as_slice() else {
                    return Err(damaged("is not a node of two children"));
                };
                self.load_inner(end, offset, &bytes, [*left, *right], read)
            }
            _ => Err(damaged(
                "is a leaf where a node belongs, or the other way round",
            )),
        }
    }

    /// An inner node branching at `depth` from its bytes and its children's places.
    fn load_inner(
        &mut self,
        depth: u16,
        offset: u64,
        bytes: &[u8],
        children: [u64; 2],
        read: &mut dyn FnMut(u64) -> Result<Stored>,
    ) -> Result<(Child, Hash)> {
        let cells = parse_cells(bytes)
            .filter(|cells| cells.len() == 2)
            .ok_or_else(|| {
                CommitError::Tree(format!("the stored node at {offset} is malformed"))
            })?;
        let mut loaded = [Child::Leaf(0); 2];
        let mut path = [0; 32];
        for (side, (cell, child)) in cells.iter().zip(children).enumerate() {
            let end = depth
                .checked_add(cell.len)
                .filter(|end| *end <= KEY_BITS)
                .ok_or_else(|| {
                    CommitError::Tree(format!("the stored node at {offset} reaches past the key"))
                })?;
            let (child, below) = self.load_child(child, &cell.hash, end, read)?;
            loaded[side] = child;
            path = below;
        }
        let node = Inner {
            path,
            hash: sha256(bytes),
            stored: offset,
            children: loaded,
            depth,
            stale: false,
        };
        self.inners.push(node);
        let at = u32::try_from(self.inners.len() - 1).expect("fewer than 2^32 nodes");
        Ok((Child::Inner(at), path))
    }
}

/// One cell of monotree's node bytes.
pub(crate) struct Cell<'a> {
    pub(crate) hash: Hash,
    /// The bit where the cell's bits start in `path`, and how many there are.
    pub(crate) start: u16,
    pub(crate) len: u16,
    pub(crate) path: &'a [u8],
}

impl Cell<'_> {
    /// Whether the cell's bits are `key`'s from bit `depth` on.
    pub(crate) fn follows(&self, key: &Hash, depth: u16) -> bool {
        (0..self.len).all(|i| {
            let at = self.start + i;
            let own = self.path[usize::from(at / 8)] >> (7 - at % 8) & 1;
            depth + i < KEY_BITS && usize::from(own) == bit(key, depth + i)
        })
    }
}

/// The cells of monotree's node bytes, left first; `None` when the bytes are not a node.
pub(crate) fn parse_cells(bytes: &[u8]) -> Option<Vec<Cell<'_>>> {
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let slice = bytes.get(*at..at.checked_add(n)?)?;
        *at += n;
        Some(slice)
    };
    let bits = |at: &mut usize| -> Option<(u16, u16, &[u8])> {
        let start = u16::from_be_bytes(take(at, 2)?.try_into().ok()?);
        let end = u16::from_be_bytes(take(at, 2)?.try_into().ok()?);
        let len = end.checked_sub(start).filter(|len| *len > 0 && start < 8)?;
        Some((start, len, take(at, usize::from(end.div_ceil(8)))?))
    };
    let mut at = 0;
    let first: Hash = take(&mut at, 32)?.try_into().ok()?;
    let (start, len, path) = bits(&mut at)?;
    let first = Cell {
        hash: first,
        start,
        len,
        path,
    };
    match bytes.last()? {
        0x00 if at + 1 == bytes.len() => Some(vec![first]),
        0x01 => {
            let (start, len, path) = bits(&mut at)?;
            let hash: Hash = take(&mut at, 32)?.try_into().ok()?;
            let second = Cell {
                hash,
                start,
                len,
                path,
            };
            (at + 1 == bytes.len()).then_some(vec![first, second])
        }
        _ => None,
    }
}

/// The proof for `key` under a root kept in the store (its root node at `root_node`), read
/// node by node; also where the key's leaf is kept, when it holds one.
pub fn prove_stored(
    root: &Digest,
    root_node: u64,
    key: &Digest,
    read: &mut dyn FnMut(u64) -> Result<Stored>,
) -> Result<(PathProof, Option<u64>)> {
    let mut nodes = Vec::new();
    if *root == EMPTY_ROOT {
        return Ok((PathProof { nodes }, None));
    }
    let (mut place, mut depth, mut expected) = (root_node, 0u16, root.0);
    loop {
        let damaged = |what: &str| CommitError::Tree(format!("the stored node at {place} {what}"));
        let Stored::Node { bytes, children } = read(place)? else {
            return Err(damaged("is a leaf where a node belongs"));
        };
        if sha256(&bytes) != expected {
            return Err(damaged("is not the node its parent names"));
        }
        let cells = parse_cells(&bytes).ok_or_else(|| damaged("is malformed"))?;
        let side = if cells.len() == 2 {
            bit(&key.0, depth)
        } else {
            0
        };
        let (Some(cell), Some(child)) = (cells.get(side), children.get(side).copied()) else {
            return Err(damaged("has fewer children than cells"));
        };
        let (follows, len, hash) = (cell.follows(&key.0, depth), cell.len, cell.hash);
        nodes.push(bytes);
        if !follows {
            return Ok((PathProof { nodes }, None)); // the key leaves the tree here
        }
        depth += len;
        if depth >= KEY_BITS {
            return Ok((PathProof { nodes }, Some(child)));
        }
        (place, expected) = (child, hash);
    }
}

/// Appends monotree's bytes of a two-cell node branching at `depth`: `hash_L ‖ bits_L ‖ bits_R
/// ‖ hash_R ‖ 0x01`; each cell is (hash, key bits, where they end), the left one's bit at
/// `depth` is 0.
pub(crate) fn push_hard(
    out: &mut Vec<u8>,
    depth: u16,
    left: (&Hash, &Hash, u16),
    right: (&Hash, &Hash, u16),
) {
    out.extend_from_slice(left.0);
    push_bits(out, left.1, depth, left.2);
    push_bits(out, right.1, depth, right.2);
    out.extend_from_slice(right.0);
    out.push(0x01);
}

/// monotree's bytes of a one-cell node: `hash ‖ bits ‖ 0x00`.
fn soft_bytes(hash: &Hash, path: &Hash, end: u16) -> Vec<u8> {
    let mut bytes = hash.to_vec();
    push_bits(&mut bytes, path, 0, end);
    bytes.push(0x00);
    bytes
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn digest(n: u8) -> Digest {
        Digest([n; 32])
    }

    #[test]
    fn the_root_depends_on_the_set_of_leaves_not_on_the_order() {
        let mut a = StateTree::default();
        let mut b = StateTree::default();
        assert_eq!(a.root(), EMPTY_ROOT);
        for n in 1..=5 {
            a.set(&digest(n), &digest(n + 100)).unwrap();
        }
        for n in (1..=5).rev() {
            b.set(&digest(n), &digest(0)).unwrap();
            b.set(&digest(n), &digest(n + 100)).unwrap();
        }
        b.set(&digest(9), &digest(9)).unwrap();
        b.remove(&digest(9)).unwrap();
        a.end();
        b.end();
        assert_eq!(a.root(), b.root());
        assert_ne!(a.root(), EMPTY_ROOT);
        for n in 1..=5 {
            a.remove(&digest(n)).unwrap();
        }
        a.end();
        assert_eq!(
            a.root(),
            EMPTY_ROOT,
            "everything removed: the empty root again"
        );
    }

    /// The same keys and leaves in stock monotree (its MemoryDB, its inserts) give the same
    /// root after every batch: the node format and the hashing are monotree's.
    #[test]
    fn roots_are_stock_monotrees() {
        use monotree::Monotree;
        use monotree::database::MemoryDB;
        use monotree::hasher::Sha2;
        let mut stock: Monotree<MemoryDB, Sha2> = Monotree::new("stock");
        let mut stock_root = None;
        let mut tree = StateTree::default();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for batch in 0..60 {
            let mut keys = Vec::new();
            let mut leaves = Vec::new();
            // Some batches of a big transaction's size, too.
            let size = if batch % 20 == 19 {
                1500
            } else {
                1 + batch * 7
            };
            for _ in 0..size {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let mut key = [0u8; 32];
                key[..8].copy_from_slice(&seed.to_be_bytes());
                key[8] = (seed % 3) as u8; // some keys share long prefixes
                key[31] = (batch % 5) as u8;
                keys.push(key);
                leaves.push([(seed >> 3) as u8; 32]);
            }
            stock_root = stock.inserts(stock_root.as_ref(), &keys, &leaves).unwrap();
            for (key, leaf) in keys.iter().zip(&leaves) {
                tree.set(&Digest(*key), &Digest(*leaf)).unwrap();
            }
            tree.end();
            assert_eq!(tree.root(), Digest(stock_root.unwrap()), "batch {batch}");
        }
    }

    /// A transaction hands every node it hashes to the sink, children first and the root last;
    /// with those of earlier transactions they are every node its root reaches.
    #[test]
    fn a_transaction_writes_the_nodes_its_root_reaches() {
        let mut tree = StateTree::default();
        let mut held: HashMap<[u8; 32], Vec<u8>> = HashMap::new();
        for round in 0..20u8 {
            let mut order = Vec::new();
            for n in 0..=round {
                tree.set(&digest(n.wrapping_mul(37)), &digest(round))
                    .unwrap();
            }
            if round % 3 == 0 {
                tree.remove(&digest(round.wrapping_mul(37) / 2)).unwrap();
            }
            let _ = tree.end_with(&mut |hash, bytes, _| {
                held.insert(hash.0, bytes.to_vec());
                order.push(hash.0);
                0
            });
            if tree.root() == EMPTY_ROOT {
                assert!(order.is_empty(), "the empty tree has no nodes");
                continue;
            }
            assert_eq!(
                order.last(),
                Some(&tree.root().0),
                "the root node comes last"
            );
            // Every node the root reaches is held: walk them all down to the leaves.
            let mut reach = vec![tree.root().0];
            let mut leaves = 0;
            while let Some(hash) = reach.pop() {
                let bytes = held.get(&hash).expect("a node the root reaches is held");
                for child in cells(bytes) {
                    if held.contains_key(&child) {
                        reach.push(child);
                    } else {
                        assert!(child.iter().all(|b| *b == child[0]), "a leaf");
                        leaves += 1;
                    }
                }
            }
            assert_eq!(leaves, tree.keys(), "round {round}");
        }
        // Nothing changed: nothing is written.
        let mut count = 0;
        let _ = tree.end_with(&mut |_, _, _| {
            count += 1;
            0
        });
        assert_eq!(count, 0);
    }

    /// The hashes a node's cells name.
    fn cells(bytes: &[u8]) -> Vec<[u8; 32]> {
        use monotree::Node;
        let hash = |h: &[u8]| <[u8; 32]>::try_from(h).unwrap();
        match Node::from_bytes(bytes).unwrap() {
            Node::Soft(Some(cell)) => vec![hash(cell.hash)],
            Node::Hard(Some(l), Some(r)) => vec![hash(l.hash), hash(r.hash)],
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_key_proves_its_leaf_or_its_absence_and_a_tampered_proof_fails() {
        use crate::proof::ProofError;
        let mut tree = StateTree::default();
        let empty = tree.prove(&digest(1)).unwrap();
        assert_eq!(empty.verify(&EMPTY_ROOT, &digest(1)), Ok(None));
        let key_of = |n: u8, salt: u8| {
            let mut key = [n; 32];
            key[5] = n % 7 + salt; // shared prefixes
            Digest(key)
        };
        for n in 0..200u8 {
            tree.set(&key_of(n, 0), &Digest([n.wrapping_add(1); 32]))
                .unwrap();
        }
        for n in (0..200u8).step_by(3) {
            tree.remove(&key_of(n, 0)).unwrap();
        }
        tree.end();
        let root = tree.root();
        for n in 0..200u8 {
            let key = key_of(n, 0);
            let proof = tree.prove(&key).unwrap();
            let expected = (n % 3 != 0).then_some(Digest([n.wrapping_add(1); 32]));
            assert_eq!(proof.verify(&root, &key), Ok(expected), "key {n}");
            assert!(proof.nodes.len() <= 24, "{} nodes", proof.nodes.len());
            // The compact encoding expands back to the same nodes.
            let compact = proof.compact(&key).unwrap();
            assert_eq!(PathProof::expand(&compact, &key).unwrap(), proof, "key {n}");
            assert!(compact.len() < proof.nodes.iter().map(Vec::len).sum::<usize>());
            // A key that was never there, next to it.
            let absent = key_of(n, 1);
            let absent_proof = tree.prove(&absent).unwrap();
            let compact = absent_proof.compact(&absent).unwrap();
            assert_eq!(PathProof::expand(&compact, &absent).unwrap(), absent_proof);
            assert_eq!(
                tree.prove(&absent).unwrap().verify(&root, &absent),
                Ok(None)
            );
            // A proof for one key says nothing about another.
            if n % 3 != 0 {
                assert_ne!(proof.verify(&root, &absent), Ok(expected));
            }
        }
        // Tampering: a flipped byte anywhere, a dropped node, another root.
        let mut key = [10u8; 32];
        key[5] = 3;
        let key = Digest(key);
        let proof = tree.prove(&key).unwrap();
        for node in 0..proof.nodes.len() {
            for byte in 0..proof.nodes[node].len() {
                let mut bad = proof.clone();
                bad.nodes[node][byte] ^= 0x01;
                assert!(
                    bad.verify(&root, &key).is_err(),
                    "flip at node {node} byte {byte}"
                );
            }
        }
        // The same for the compact form: any flipped byte fails to expand or to verify, and
        // it says nothing about another key.
        let compact = proof.compact(&key).unwrap();
        for byte in 0..compact.len() {
            for flip in [0x01, 0x80] {
                let mut bad = compact.clone();
                bad[byte] ^= flip;
                let shown = PathProof::expand(&bad, &key).and_then(|p| p.verify(&root, &key));
                assert!(
                    shown.is_err(),
                    "compact flip {flip:#x} at byte {byte}: {shown:?}"
                );
            }
        }
        assert!(PathProof::expand(&compact[..compact.len() - 1], &key).is_err());
        let other = Digest([77; 32]);
        let shown = PathProof::expand(&compact, &other).and_then(|p| p.verify(&root, &other));
        assert!(shown.is_err() || shown == Ok(None), "{shown:?}");
        let mut short = proof.clone();
        short.nodes.pop();
        assert!(short.verify(&root, &key).is_err());
        assert!(matches!(
            proof.verify(&Digest([1; 32]), &key),
            Err(ProofError::HashMismatch { index: 0, .. })
        ));
    }

    /// The proofs in `testdata/proof_vectors.json` (checked there by `verify_proofs.py`, a
    /// second implementation) are what this tree gives: set `WALPROOF_WRITE_PROOF_VECTORS=1` to
    /// rewrite the file after an intended change of the tree or proof format.
    #[test]
    fn proofs_match_the_pinned_vectors() {
        use sha2::{Digest as _, Sha256};
        let hash = |tag: &str, n: u32| {
            let mut hasher = Sha256::new();
            hasher.update(tag.as_bytes());
            hasher.update(n.to_be_bytes());
            Digest(hasher.finalize().into())
        };
        let mut tree = StateTree::default();
        let mut vectors = Vec::new();
        let mut vector = |name: &str, tree: &StateTree, key: Digest| {
            let proof = tree.prove(&key).unwrap();
            let leaf = proof.verify(&tree.root(), &key).unwrap();
            vectors.push(serde_json::json!({
                "name": name,
                "root": tree.root().to_string(),
                "key": key.to_string(),
                "leaf": leaf.map(|l| l.to_string()),
                "nodes": proof.nodes.iter().map(hex::encode).collect::<Vec<_>>(),
            }));
        };
        vector("empty tree", &tree, hash("walproof/test/key", 1));
        tree.set(
            &hash("walproof/test/key", 1),
            &hash("walproof/test/leaf", 1),
        )
        .unwrap();
        tree.end();
        vector("one key, present", &tree, hash("walproof/test/key", 1));
        vector(
            "one key, another absent",
            &tree,
            hash("walproof/test/key", 2),
        );
        for n in 0..64 {
            tree.set(
                &hash("walproof/test/key", n),
                &hash("walproof/test/leaf", n),
            )
            .unwrap();
        }
        for n in (0..64).step_by(5) {
            tree.remove(&hash("walproof/test/key", n)).unwrap();
        }
        tree.end();
        for n in [1, 7, 63] {
            vector(
                &format!("64 keys less every fifth, key {n} present"),
                &tree,
                hash("walproof/test/key", n),
            );
        }
        for n in [0, 5, 1000] {
            vector(
                &format!("64 keys less every fifth, key {n} absent"),
                &tree,
                hash("walproof/test/key", n),
            );
        }
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "description": "walproof SMT proofs: node paths from the root down a key (see README, Proofs). \
                            Keys are SHA-256(\"walproof/test/key\" || n u32 BE), leaves \
                            SHA-256(\"walproof/test/leaf\" || n u32 BE); leaf null = absent.",
            "vectors": vectors,
        }))
        .unwrap()
            + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/proof_vectors.json");
        if std::env::var_os("WALPROOF_WRITE_PROOF_VECTORS").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            text,
            "the pinned proof vectors"
        );
    }

    /// Random inserts, overwrites and removals (keys sharing long prefixes, too), several of
    /// them to the same key between two roots, always leave the root of a tree built from the
    /// surviving pairs alone.
    #[test]
    fn after_any_history_the_root_is_that_of_the_live_pairs() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..40 {
            let mut tree = StateTree::default();
            let mut live: HashMap<[u8; 32], [u8; 32]> = HashMap::new();
            for _ in 0..200 {
                let r = next();
                let mut key = [0u8; 32];
                // Few distinct keys with shared prefixes: collisions, deep splits and merges.
                key[0] = (r % 4) as u8;
                key[31] = ((r >> 8) % if round % 2 == 0 { 16 } else { 2 }) as u8;
                key[7] = ((r >> 16) % 3) as u8;
                if (r >> 24) % 3 == 0 {
                    tree.remove(&Digest(key)).unwrap();
                    live.remove(&key);
                } else {
                    let leaf = [((r >> 32) % 251) as u8; 32];
                    tree.set(&Digest(key), &Digest(leaf)).unwrap();
                    live.insert(key, leaf);
                }
                if (r >> 40) % 6 != 0 {
                    continue; // more changes before the next root
                }
                let mut fresh = StateTree::default();
                let mut pairs: Vec<_> = live.iter().collect();
                pairs.sort();
                for (key, leaf) in pairs {
                    fresh.set(&Digest(*key), &Digest(*leaf)).unwrap();
                }
                tree.end();
                fresh.end();
                assert_eq!(tree.root(), fresh.root(), "round {round}");
            }
        }
    }
}
