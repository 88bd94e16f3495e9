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

/// A row of a keyed table at a root: present with its column hashes, or absent.
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
    /// The key columns' text, in attribute order.
    pub key_values: Vec<String>,
    /// The row's columns (empty when absent).
    pub columns: Vec<ProvedColumn>,
    /// Whether the row exists.
    pub present: bool,
    /// The path down the key.
    pub path: PathProof,
}

impl RowProof {
    /// The tree key the proof is about.
    pub fn key(&self) -> Digest {
        walproof_core::leaf::row_key(
            &self.schema,
            &self.table,
            self.key_values.iter().map(String::as_str),
        )
    }

    /// The leaf the columns commit to.
    pub fn leaf(&self) -> Digest {
        walproof_core::leaf::row_leaf(self.columns.iter().map(|c| (c.name.as_str(), &c.hash)))
    }

    /// Checks the proof against a trusted `root`; with `values` (column name → text, `None`
    /// for NULL) also that the row holds exactly those values. Returns what it shows.
    pub fn verify(
        &self,
        root: &Digest,
        values: Option<&[(String, Option<String>)]>,
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
        let row = format!("{}.{} {:?}", self.schema, self.table, self.key_values);
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
        if let Some(values) = values {
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
        }
        Ok(format!(
            "row {row} exists with leaf {} at root {root}",
            self.leaf()
        ))
    }

    /// The JSON form (version 1), every digest and node in hex.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "version": 1,
            "commit_lsn": self.commit_lsn.map(|l| l.to_string()),
            "root": self.root.to_string(),
            "schema": self.schema,
            "table": self.table,
            "key_values": self.key_values,
            "key": self.key().to_string(),
            "present": self.present,
            "leaf": self.present.then(|| self.leaf().to_string()),
            "columns": self.columns.iter().map(|c| serde_json::json!({
                "name": c.name, "type_oid": c.type_oid, "hash": c.hash.to_string()
            })).collect::<Vec<_>>(),
            "nodes": self.path.nodes.iter().map(hex::encode).collect::<Vec<_>>(),
        })
        .to_string()
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
            path: PathProof {
                nodes: list("nodes")?
                    .iter()
                    .map(|n| {
                        hex::decode(n.as_str().ok_or("a node that is not text")?)
                            .map_err(|err| format!("nodes: {err}"))
                    })
                    .collect::<Result<_, String>>()?,
            },
        })
    }
}
