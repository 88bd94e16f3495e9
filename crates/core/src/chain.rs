//! The ledger's hash chain: each envelope commits to its entry and to the envelope before it.
//!
//! `hash = SHA-256(prev_hash ‖ entry bytes)`, over the entry bytes exactly as carried, so a
//! reader in any language verifies without re-encoding. An edited entry fails its own hash; a
//! dropped, inserted or reordered entry fails the link to its predecessor.

use prost::Message as _;
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::ledger::{DecodeError, LEDGER_VERSION, LedgerEntry, wire};

/// A ledger entry sealed into the chain: the value of one `<prefix>.ledger` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEntry {
    /// Hash of the previous sealed entry; [`Digest::ZERO`] for the first.
    pub prev_hash: Digest,
    /// SHA-256(prev_hash ‖ entry).
    pub hash: Digest,
    /// The encoded [`LedgerEntry`].
    pub entry: Vec<u8>,
}

/// `SHA-256(prev_hash ‖ entry)`.
pub fn link_hash(prev_hash: &Digest, entry: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(entry);
    Digest(hasher.finalize().into())
}

impl SealedEntry {
    /// Seals encoded entry bytes after the entry whose hash is `prev_hash`.
    pub fn seal(prev_hash: Digest, entry: Vec<u8>) -> SealedEntry {
        SealedEntry {
            prev_hash,
            hash: link_hash(&prev_hash, &entry),
            entry,
        }
    }

    /// The `walproof.ledger.v1.Envelope` bytes of this sealed entry, consuming it (no copy of
    /// the entry).
    pub fn into_bytes(self) -> Vec<u8> {
        wire::Envelope {
            version: LEDGER_VERSION,
            prev_hash: self.prev_hash.0.to_vec(),
            hash: self.hash.0.to_vec(),
            entry: self.entry,
        }
        .encode_to_vec()
    }

    /// The `walproof.ledger.v1.Envelope` bytes of this sealed entry.
    pub fn to_bytes(&self) -> Vec<u8> {
        wire::Envelope {
            version: LEDGER_VERSION,
            prev_hash: self.prev_hash.0.to_vec(),
            hash: self.hash.0.to_vec(),
            entry: self.entry.clone(),
        }
        .encode_to_vec()
    }

    /// Reads an envelope and checks that its hash matches its content. The entry itself is
    /// decoded separately with [`SealedEntry::decode_entry`].
    pub fn from_bytes(bytes: &[u8]) -> Result<SealedEntry, DecodeError> {
        let envelope = wire::Envelope::decode(bytes).map_err(|source| DecodeError::Protobuf {
            message: "Envelope",
            source,
        })?;
        if envelope.version != LEDGER_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                version: envelope.version,
            });
        }
        let digest = |field, bytes: &[u8]| {
            Digest::from_slice(bytes).ok_or(DecodeError::HashLength {
                field,
                len: bytes.len(),
            })
        };
        let prev_hash = digest("Envelope.prev_hash", &envelope.prev_hash)?;
        let stated = digest("Envelope.hash", &envelope.hash)?;
        let computed = link_hash(&prev_hash, &envelope.entry);
        if stated != computed {
            return Err(DecodeError::HashMismatch { stated, computed });
        }
        Ok(SealedEntry {
            prev_hash,
            hash: stated,
            entry: envelope.entry,
        })
    }

    /// Decodes and validates the carried entry.
    pub fn decode_entry(&self) -> Result<LedgerEntry, DecodeError> {
        LedgerEntry::decode(&self.entry)
    }
}

/// The head of a chain a consumer holds; accepts only entries that extend it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    head: Digest,
}

/// An entry that does not extend the chain: a gap, a reorder, or a foreign writer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "chain broken: entry {entry_hash} links to {found_prev}, but the chain's head is {expected_prev}"
)]
pub struct ChainBreak {
    /// The head the entry should have linked to.
    pub expected_prev: Digest,
    /// The predecessor the entry names.
    pub found_prev: Digest,
    /// The offending entry's hash.
    pub entry_hash: Digest,
}

impl Chain {
    /// A chain with no entries yet.
    pub fn genesis() -> Chain {
        Chain { head: Digest::ZERO }
    }

    /// A chain resumed at a known head (from a consumer's durable state).
    pub fn resume(head: Digest) -> Chain {
        Chain { head }
    }

    /// The hash of the last accepted entry.
    pub fn head(&self) -> Digest {
        self.head
    }

    /// Accepts `entry` if it links to the head; the head is unchanged otherwise.
    pub fn extend(&mut self, entry: &SealedEntry) -> Result<(), ChainBreak> {
        if entry.prev_hash != self.head {
            return Err(ChainBreak {
                expected_prev: self.head,
                found_prev: entry.prev_hash,
                entry_hash: entry.hash,
            });
        }
        self.head = entry.hash;
        Ok(())
    }
}
