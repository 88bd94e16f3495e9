//! Proofs that a key holds a leaf under a root, or holds nothing.
//!
//! A proof is the path of tree nodes from the root down the key's bits, each node exactly as
//! monotree stores it: `hash(node 0)` is the root, every next node's hash is the unit of the
//! node before it that the key's bits follow, and the walk ends
//!
//! - at the leaf, after 256 bits of key: the key holds that leaf (inclusion); or
//! - at a node where the key's bits leave every unit: the key holds nothing (exclusion).
//!
//! The empty tree (root of 32 zero bytes) has an empty proof. Verifying needs SHA-256 and the
//! node layout (a soft node is `cell ‖ 0x00`, a hard node `cell_L ‖ cell_R ‖ 0x01`, a cell is
//! `hash ‖ start u16 BE ‖ end u16 BE ‖ bit path`, the right cell with its hash last), which the
//! README documents with a worked example.

use monotree::hasher::Sha2;
use monotree::utils::bit;
use monotree::{Bits, Hash, Hasher, Node};
use walproof_core::Digest;

use crate::tree::EMPTY_ROOT;

/// Key length in bits.
const KEY_BITS: u16 = 256;

/// The nodes on a key's path, root first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathProof {
    /// Serialized nodes, root first.
    pub nodes: Vec<Vec<u8>>,
}

/// What a proof shows, or why it shows nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// A node's hash is not what the node before it (or the root) names.
    #[error("node {index} of the proof hashes to {found}, but {expected} was expected")]
    HashMismatch {
        /// Position in the proof.
        index: usize,
        /// What the path expects.
        expected: Digest,
        /// What the node hashes to.
        found: Digest,
    },
    /// A node that does not parse.
    #[error("node {index} of the proof is not a tree node")]
    Malformed {
        /// Position in the proof.
        index: usize,
    },
    /// The proof stops before the key's leaf or its divergence, or goes on after it.
    #[error("the proof {0}")]
    Shape(&'static str),
}

impl PathProof {
    /// Walks the proof for `key` from `root`: `Ok(Some(leaf))` when the key holds `leaf`,
    /// `Ok(None)` when it holds nothing, an error when the proof does not show either.
    pub fn verify(&self, root: &Digest, key: &Digest) -> Result<Option<Digest>, ProofError> {
        if *root == EMPTY_ROOT {
            return if self.nodes.is_empty() {
                Ok(None)
            } else {
                Err(ProofError::Shape("has nodes, but the tree is empty"))
            };
        }
        let hasher = Sha2::new();
        let key = key.as_bytes();
        let mut expected: Hash = root.0;
        let mut depth: u16 = 0;
        for (index, bytes) in self.nodes.iter().enumerate() {
            let found = hasher.digest(bytes);
            if found != expected {
                return Err(ProofError::HashMismatch {
                    index,
                    expected: Digest(expected),
                    found: Digest(found),
                });
            }
            let last = index + 1 == self.nodes.len();
            let parsed = std::panic::catch_unwind(|| {
                Node::cells_from_bytes(bytes, bit(key, depth))
                    .ok()
                    .map(|(own, _)| {
                        own.map(|unit| {
                            (unit.hash.to_vec(), unit.bits.path.to_vec(), unit.bits.range)
                        })
                    })
            })
            .ok()
            .flatten()
            .ok_or(ProofError::Malformed { index })?;
            let Some((hash, path, range)) = parsed else {
                return Err(ProofError::Malformed { index });
            };
            let bits = Bits { path: &path, range };
            let rest = Bits {
                path: key,
                range: depth..KEY_BITS,
            };
            if Bits::len_common_bits(&bits, &rest) < bits.len() {
                // The key's bits leave this node: it holds nothing.
                return if last {
                    Ok(None)
                } else {
                    Err(ProofError::Shape("goes on after the key left the tree"))
                };
            }
            depth += bits.len();
            let hash =
                Hash::try_from(hash.as_slice()).map_err(|_| ProofError::Malformed { index })?;
            if depth >= KEY_BITS {
                return if last {
                    Ok(Some(Digest(hash)))
                } else {
                    Err(ProofError::Shape("goes on after the key's leaf"))
                };
            }
            expected = hash;
        }
        Err(ProofError::Shape(
            "stops before the key's leaf or divergence",
        ))
    }
}

/// The compact encoding of a [`PathProof`]: only what the key does not already say.
///
/// ```text
/// version u8 (1) ‖ levels u8 ‖ end u8 (0: at the key's leaf, 1: the key leaves the tree)
/// per level, root first:
///   kind u8 (0: one cell, 1: two cells) ‖ own length (LEB128)
///   two cells: the other cell's length (LEB128) ‖ its bits after the first, packed ‖ its hash
/// then: the leaf (end 0), or the last own cell's bits, packed, and its hash (end 1)
/// ```
///
/// A node's own cell is the one the key's bits follow: its bits are the key's and its hash is
/// the next node's, so neither is sent; the other cell's first bit is the opposite of the
/// key's. [`PathProof::expand`] rebuilds monotree's node bytes exactly, so a tampered compact
/// proof fails [`PathProof::verify`] like a tampered node path.
pub mod compact {
    use super::{KEY_BITS, PathProof, ProofError};
    use crate::tree::{bit, parse_cells, push_bits, push_hard, sha256};
    use walproof_core::Digest;

    const VERSION: u8 = 1;

    fn push_len(out: &mut Vec<u8>, mut n: u16) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// Packs `len` bits, MSB first, read by `get`.
    fn push_packed(out: &mut Vec<u8>, len: u16, get: impl Fn(u16) -> usize) {
        let mut byte = 0u8;
        for i in 0..len {
            byte |= (get(i) as u8) << (7 - i % 8);
            if i % 8 == 7 {
                out.push(byte);
                byte = 0;
            }
        }
        if len % 8 != 0 {
            out.push(byte);
        }
    }

    impl PathProof {
        /// The compact encoding of this proof for `key`.
        pub fn compact(&self, key: &Digest) -> Result<Vec<u8>, ProofError> {
            let key = &key.0;
            let levels = u8::try_from(self.nodes.len())
                .map_err(|_| ProofError::Shape("has more than 255 nodes"))?;
            let mut out = vec![VERSION, levels, 0];
            let mut tail = Vec::new();
            let mut depth = 0u16;
            for (index, bytes) in self.nodes.iter().enumerate() {
                let cells = parse_cells(bytes).ok_or(ProofError::Malformed { index })?;
                let (own, other) = match cells.as_slice() {
                    [own] => (own, None),
                    [left, right] if depth < KEY_BITS => {
                        if bit(key, depth) == 0 {
                            (left, Some(right))
                        } else {
                            (right, Some(left))
                        }
                    }
                    _ => return Err(ProofError::Malformed { index }),
                };
                out.push(u8::from(other.is_some()));
                push_len(&mut out, own.len);
                let cell_bit = |cell: &crate::tree::Cell<'_>, i: u16| {
                    let at = cell.start + i;
                    usize::from(cell.path[usize::from(at / 8)] >> (7 - at % 8) & 1)
                };
                if let Some(other) = other {
                    push_len(&mut out, other.len);
                    push_packed(&mut out, other.len - 1, |i| cell_bit(other, i + 1));
                    out.extend_from_slice(&other.hash);
                }
                let last = index + 1 == self.nodes.len();
                if !own.follows(key, depth) {
                    if !last {
                        return Err(ProofError::Shape("goes on after the key left the tree"));
                    }
                    out[2] = 1;
                    push_packed(&mut tail, own.len, |i| cell_bit(own, i));
                    tail.extend_from_slice(&own.hash);
                } else {
                    depth += own.len;
                    if last {
                        if depth != KEY_BITS {
                            return Err(ProofError::Shape(
                                "stops before the key's leaf or divergence",
                            ));
                        }
                        tail.extend_from_slice(&own.hash);
                    }
                }
            }
            out.extend_from_slice(&tail);
            Ok(out)
        }

        /// The node path a compact proof for `key` stands for (check it with
        /// [`PathProof::verify`]).
        pub fn expand(bytes: &[u8], key: &Digest) -> Result<PathProof, ProofError> {
            let key = &key.0;
            let bad = ProofError::Shape("is not a compact proof of this key");
            let mut at = 0usize;
            let mut take = |n: usize| -> Result<&[u8], ProofError> {
                let slice = bytes
                    .get(at..at + n)
                    .ok_or(ProofError::Shape("ends early"))?;
                at += n;
                Ok(slice)
            };
            let header = take(3)?;
            if header[0] != VERSION {
                return Err(ProofError::Shape("is of an unknown compact version"));
            }
            let (levels, diverges) = (usize::from(header[1]), header[2] == 1);
            if header[2] > 1 {
                return Err(bad);
            }
            struct Level {
                depth: u16,
                own_len: u16,
                other: Option<(u16, [u8; 32], [u8; 32])>, // length, path, hash
            }
            let mut parsed: Vec<Level> = Vec::with_capacity(levels);
            let mut depth = 0u16;
            let read_len = |take: &mut dyn FnMut(usize) -> Result<u8, ProofError>| {
                let mut n = 0u32;
                for shift in [0, 7, 14] {
                    let byte = take(1)?;
                    if shift > 0 && byte == 0 {
                        return Err(ProofError::Shape("has a length not in its shortest form"));
                    }
                    n |= u32::from(byte & 0x7f) << shift;
                    if byte & 0x80 == 0 {
                        return u16::try_from(n)
                            .map_err(|_| ProofError::Shape("has a length out of range"));
                    }
                }
                Err(ProofError::Shape("has a length out of range"))
            };
            // Unpacks `len` bits into `path` from bit `from`; the padding must be zero (one
            // proof, one encoding).
            let unpack = |packed: &[u8], len: u16, path: &mut [u8; 32], from: u16| {
                for i in 0..len {
                    let b = packed[usize::from(i / 8)] >> (7 - i % 8) & 1;
                    let pos = from + i;
                    path[usize::from(pos / 8)] |= b << (7 - pos % 8);
                }
                let padding = (8 - len % 8) % 8;
                packed
                    .last()
                    .is_none_or(|last| last & ((1u8 << padding) - 1) == 0)
            };
            for index in 0..levels {
                let mut byte = |_: usize| take(1).map(|b| b[0]);
                let kind = byte(1)?;
                let own_len = read_len(&mut byte)?;
                if own_len == 0
                    || depth + own_len > KEY_BITS
                    || kind > 1
                    || (kind == 0 && index > 0)
                {
                    return Err(ProofError::Malformed { index });
                }
                let other = if kind == 1 {
                    let len = read_len(&mut byte)?;
                    if len == 0 || depth + len > KEY_BITS {
                        return Err(ProofError::Malformed { index });
                    }
                    let mut path = [0u8; 32];
                    let first = 1 - bit(key, depth) as u8;
                    path[usize::from(depth / 8)] |= first << (7 - depth % 8);
                    let packed = take(usize::from((len - 1).div_ceil(8)))?;
                    if !unpack(packed, len - 1, &mut path, depth + 1) {
                        return Err(ProofError::Malformed { index });
                    }
                    let hash: [u8; 32] = take(32)?.try_into().map_err(|_| bad.clone())?;
                    Some((len, path, hash))
                } else {
                    None
                };
                parsed.push(Level {
                    depth,
                    own_len,
                    other,
                });
                depth += own_len;
            }
            // The last own cell: the leaf, or the cell the key leaves by.
            let Some(last) = parsed.last() else {
                return if at == bytes.len() && !diverges {
                    Ok(PathProof { nodes: Vec::new() })
                } else {
                    Err(bad)
                };
            };
            let mut own_path = *key;
            if diverges {
                own_path = [0; 32];
                let packed = take(usize::from(last.own_len.div_ceil(8)))?;
                if !unpack(packed, last.own_len, &mut own_path, last.depth) {
                    return Err(bad);
                }
            } else if depth != KEY_BITS {
                return Err(ProofError::Shape(
                    "stops before the key's leaf or divergence",
                ));
            }
            let mut own_hash: [u8; 32] = take(32)?.try_into().map_err(|_| bad.clone())?;
            if at != bytes.len() {
                return Err(ProofError::Shape("has bytes after its end"));
            }
            let mut nodes = vec![Vec::new(); parsed.len()];
            for (index, level) in parsed.iter().enumerate().rev() {
                let path = if diverges && index + 1 == parsed.len() {
                    &own_path
                } else {
                    key
                };
                let end = level.depth + level.own_len;
                let mut node = Vec::new();
                match &level.other {
                    None => {
                        node.extend_from_slice(&own_hash);
                        push_bits(&mut node, path, level.depth, end);
                        node.push(0x00);
                    }
                    Some((len, other_path, other_hash)) => {
                        let own_first = bit(path, level.depth);
                        if own_first == bit(other_path, level.depth) {
                            return Err(ProofError::Malformed { index });
                        }
                        let own = (&own_hash, path, end);
                        let other = (other_hash, other_path, level.depth + len);
                        let (left, right) = if own_first == 0 {
                            (own, other)
                        } else {
                            (other, own)
                        };
                        push_hard(&mut node, level.depth, left, right);
                    }
                }
                own_hash = sha256(&node);
                nodes[index] = node;
            }
            Ok(PathProof { nodes })
        }
    }
}

/// One column of a proved row: what its leaf commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvedColumn {
    /// Column name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// `H(col)`.
    pub hash: Digest,
}

/// Which row a proof is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowSubject {
    /// A keyed table's row, by its key columns' text in attribute order.
    Key(Vec<String>),
    /// A multiset table's row (no key), by every column's value: column name and text, `None`
    /// for NULL.
    Values(Vec<(String, Option<String>)>),
}

impl RowSubject {
    /// The key columns' text a proof names (none for a multiset row).
    pub fn key_values(&self) -> Vec<String> {
        match self {
            RowSubject::Key(key_values) => key_values.clone(),
            RowSubject::Values(_) => Vec::new(),
        }
    }
}

/// A row at a root: present with its column hashes, or absent. A keyed table's row is found by
/// its key columns; a multiset table's row (REPLICA IDENTITY FULL, no key) by all its values,
/// whose hashes the proof holds either way, with how many identical rows there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProof {
    /// The commit LSN of the root.
    pub commit_lsn: Option<walproof_core::Lsn>,
    /// The root.
    pub root: Digest,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// The key columns' text, in attribute order (empty for a multiset).
    pub key_values: Vec<String>,
    /// The row's columns (a keyed row's: empty when absent).
    pub columns: Vec<ProvedColumn>,
    /// A multiset table's row: how many identical rows the tree holds (0 when absent).
    /// `None` for a keyed table's row.
    pub multiset: Option<u64>,
    /// Whether the row exists.
    pub present: bool,
    /// The path down the key.
    pub path: PathProof,
}

impl RowProof {
    /// The tree key the proof is about.
    pub fn key(&self) -> Digest {
        match self.multiset {
            None => walproof_core::leaf::row_key(
                &self.schema,
                &self.table,
                self.key_values.iter().map(String::as_str),
            ),
            Some(_) => walproof_core::leaf::multiset_key(
                &self.schema,
                &self.table,
                self.columns.iter().map(|c| &c.hash),
            ),
        }
    }

    /// The leaf the columns (and a multiset row's count) commit to.
    pub fn leaf(&self) -> Digest {
        let columns = self.columns.iter().map(|c| (c.name.as_str(), &c.hash));
        match self.multiset {
            None => walproof_core::leaf::row_leaf(columns),
            Some(count) => walproof_core::leaf::multiset_leaf(count, columns),
        }
    }

    /// How the row is named in messages.
    fn describe(&self) -> String {
        match self.multiset {
            None => format!("{}.{} {:?}", self.schema, self.table, self.key_values),
            Some(_) => format!(
                "{}.{} ({}) (a multiset row, key {})",
                self.schema,
                self.table,
                self.column_names().join(", "),
                self.key()
            ),
        }
    }

    fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// Checks the proof against a trusted `root`; with `values` (column name → text, `None`
    /// for NULL) also that the row holds exactly those values. Returns what it shows.
    ///
    /// A multiset row's absence is shown for its values in the order of the proof's columns
    /// (its key hashes the values only): with `values`, that needs the table's columns in
    /// attribute order, which [`RowProof::verify_in_order`] takes.
    pub fn verify(
        &self,
        root: &Digest,
        values: Option<&[(String, Option<String>)]>,
    ) -> Result<String, String> {
        self.verify_in_order(root, values, None)
    }

    /// [`RowProof::verify`], with the table's column names in attribute order (`columns`),
    /// which the proof's columns must match.
    pub fn verify_in_order(
        &self,
        root: &Digest,
        values: Option<&[(String, Option<String>)]>,
        columns: Option<&[String]>,
    ) -> Result<String, String> {
        if self.root != *root {
            return Err(format!(
                "the proof is for root {}, not the trusted root {root}",
                self.root
            ));
        }
        let shown = self
            .path
            .verify(root, &self.key())
            .map_err(|err| err.to_string())?;
        let row = self.describe();
        if self
            .multiset
            .is_some_and(|count| (count > 0) != self.present)
        {
            return Err(format!(
                "row {row}: the proof says present {} with {} identical rows",
                self.present,
                self.multiset.unwrap_or_default()
            ));
        }
        if let Some(columns) = columns
            && !self.columns.is_empty()
            && self.column_names() != columns
        {
            return Err(format!(
                "row {row}: the proof's columns are not the table's ({}) in that order",
                columns.join(", ")
            ));
        }
        if let Some(values) = values
            && self.multiset.is_some()
        {
            // The values name a multiset row: checked whether it is present or not, and all
            // of them when it is absent (a present row's leaf names its columns).
            if let Some(column) = self
                .columns
                .iter()
                .find(|c| !values.iter().any(|(name, _)| *name == c.name))
                .filter(|_| !self.present)
            {
                return Err(format!(
                    "row {row}: a multiset row is named by all its values; {} is not given",
                    column.name
                ));
            }
            self.check_values(&row, values)?;
            if !self.present && columns.is_none() {
                return Err(format!(
                    "row {row}: a multiset row's absence holds for its values in the proof's column order; confirm that it is the table's (--columns {})",
                    self.column_names().join(",")
                ));
            }
        }
        match (shown, self.present) {
            (Some(leaf), true) if leaf == self.leaf() => {}
            (Some(leaf), true) => {
                return Err(format!(
                    "row {row}: the tree holds leaf {leaf}, but the columns give {}",
                    self.leaf()
                ));
            }
            (None, false) => return Ok(format!("row {row} does not exist at root {root}")),
            (Some(_), false) => return Err(format!("row {row} exists, but the proof says absent")),
            (None, true) => {
                return Err(format!(
                    "row {row} does not exist, but the proof says present"
                ));
            }
        }
        // A multiset row's values were checked above.
        if let Some(values) = values
            && self.multiset.is_none()
        {
            self.check_values(&row, values)?;
        }
        Ok(match self.multiset {
            None => format!("row {row} exists with leaf {} at root {root}", self.leaf()),
            Some(count) => format!(
                "row {row} exists {count} time{} with leaf {} at root {root}",
                if count == 1 { "" } else { "s" },
                self.leaf()
            ),
        })
    }

    /// Whether each of `values` is what its column holds.
    fn check_values(&self, row: &str, values: &[(String, Option<String>)]) -> Result<(), String> {
        for (name, value) in values {
            let column = self
                .columns
                .iter()
                .find(|c| &c.name == name)
                .ok_or_else(|| format!("row {row} has no column {name}"))?;
            let hash = walproof_core::leaf::column_hash(column.type_oid, value.as_deref());
            if hash != column.hash {
                return Err(format!(
                    "row {row}: column {name} does not hold {}",
                    value
                        .as_deref()
                        .map_or("NULL".to_owned(), |v| format!("{v:?}"))
                ));
            }
        }
        Ok(())
    }

    /// The JSON form (version 1), every digest and node in hex.
    pub fn to_json(&self) -> String {
        self.json(false)
    }

    /// The JSON form with the path in the compact encoding (`"compact"`, hex) instead of
    /// `"nodes"`.
    pub fn to_compact_json(&self) -> Result<String, ProofError> {
        self.path.compact(&self.key())?;
        Ok(self.json(true))
    }

    fn json(&self, compact: bool) -> String {
        let mut value = serde_json::json!({
            "version": 1,
            "commit_lsn": self.commit_lsn.map(|l| l.to_string()),
            "root": self.root.to_string(),
            "schema": self.schema,
            "table": self.table,
            "key_values": self.key_values,
            "key": self.key().to_string(),
            "present": self.present,
            "leaf": self.present.then(|| self.leaf().to_string()),
            "multiset": self.multiset.is_some(),
            "count": self.multiset,
            "columns": self.columns.iter().map(|c| serde_json::json!({
                "name": c.name, "type_oid": c.type_oid, "hash": c.hash.to_string()
            })).collect::<Vec<_>>(),
        });
        if compact {
            value["compact"] =
                hex::encode(self.path.compact(&self.key()).unwrap_or_default()).into();
        } else {
            value["nodes"] = self
                .path
                .nodes
                .iter()
                .map(hex::encode)
                .collect::<Vec<_>>()
                .into();
        }
        value.to_string()
    }

    /// Parses the JSON form; the error names the field.
    pub fn from_json(bytes: &[u8]) -> Result<RowProof, String> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|err| format!("not JSON: {err}"))?;
        if v["version"] != 1 {
            return Err(format!("unknown proof version {}", v["version"]));
        }
        let text = |field: &str| {
            v[field]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{field} is missing"))
        };
        let digest = |value: &serde_json::Value, field: &str| -> Result<Digest, String> {
            value
                .as_str()
                .ok_or_else(|| format!("{field} is missing"))?
                .parse()
                .map_err(|err| format!("{field}: {err}"))
        };
        let list = |field: &str| {
            v[field]
                .as_array()
                .cloned()
                .ok_or_else(|| format!("{field} is missing"))
        };
        Ok(RowProof {
            commit_lsn: match v["commit_lsn"].as_str() {
                Some(lsn) => Some(lsn.parse().map_err(|err| format!("commit_lsn: {err}"))?),
                None => None,
            },
            root: digest(&v["root"], "root")?,
            schema: text("schema")?,
            table: text("table")?,
            key_values: list("key_values")?
                .iter()
                .map(|k| {
                    k.as_str()
                        .map(str::to_owned)
                        .ok_or("key_values holds a non-string")
                })
                .collect::<Result<_, _>>()?,
            multiset: match &v["multiset"] {
                // Proofs written before multisets were provable have no such field.
                serde_json::Value::Null | serde_json::Value::Bool(false) => None,
                serde_json::Value::Bool(true) => {
                    Some(v["count"].as_u64().ok_or("count is missing")?)
                }
                other => return Err(format!("multiset must be true or false, not {other}")),
            },
            present: v["present"].as_bool().ok_or("present is missing")?,
            columns: list("columns")?
                .iter()
                .map(|c| {
                    Ok(ProvedColumn {
                        name: c["name"]
                            .as_str()
                            .ok_or("a column without name")?
                            .to_owned(),
                        type_oid: c["type_oid"]
                            .as_u64()
                            .and_then(|t| u32::try_from(t).ok())
                            .ok_or("a column without type_oid")?,
                        hash: digest(&c["hash"], "column hash")?,
                    })
                })
                .collect::<Result<_, String>>()?,
            path: PathProof { nodes: Vec::new() },
        })
        .and_then(|mut proof: RowProof| {
            proof.path = match v["compact"].as_str() {
                Some(compact) => {
                    let bytes = hex::decode(compact).map_err(|err| format!("compact: {err}"))?;
                    PathProof::expand(&bytes, &proof.key())
                        .map_err(|err| format!("compact: {err}"))?
                }
                None => PathProof {
                    nodes: list("nodes")?
                        .iter()
                        .map(|n| {
                            hex::decode(n.as_str().ok_or("a node that is not text")?)
                                .map_err(|err| format!("nodes: {err}"))
                        })
                        .collect::<Result<_, String>>()?,
                },
            };
            Ok(proof)
        })
    }
}
