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
