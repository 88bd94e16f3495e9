//! 32-byte SHA-256 digests: ledger entry hashes, row keys, leaves and roots.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::str::FromStr;

/// A SHA-256 digest. Printed and parsed as 64 lower-case hex digits.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Hash for Digest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

/// A hash map keyed by digests, hashed by [`DigestHasher`].
pub type DigestMap<V> = HashMap<Digest, V, BuildHasherDefault<DigestHasher>>;

/// A set of digests, hashed by [`DigestHasher`].
pub type DigestSet = HashSet<Digest, BuildHasherDefault<DigestHasher>>;

/// A hasher for maps keyed by [`Digest`]: a SHA-256 digest is already uniform, so its first
/// eight bytes serve as its hash, without SipHash's work. Keys that share those bytes would
/// take a brute-force search per key to make, and would only slow their own lookups.
#[derive(Debug, Clone, Copy, Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(17) ^ u64::from_le_bytes(word);
    }
}

impl Digest {
    /// 32 zero bytes: the `prev_hash` of a ledger's first entry and the root of an empty tree.
    pub const ZERO: Digest = Digest([0; 32]);

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads a digest from exactly 32 bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Digest> {
        bytes.try_into().ok().map(Digest)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Text that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {input:?}: expected 64 hex digits")]
pub struct DigestParseError {
    /// The text that was given.
    pub input: String,
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| DigestParseError {
            input: s.to_owned(),
        })?;
        Ok(Digest(bytes))
    }
}

/// Serialized as its text form (64 lowercase hex digits), the form Postgres and walproof print.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_hashes_by_its_first_eight_bytes() {
        let mut digest = Digest([0; 32]);
        digest.0[..8].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_le_bytes());
        let mut hasher = DigestHasher::default();
        digest.hash(&mut hasher);
        assert_eq!(hasher.finish(), 0x0123_4567_89ab_cdef);
        let mut map = DigestMap::default();
        map.insert(digest, 1);
        digest.0[31] = 1; // same first eight bytes, another key
        map.insert(digest, 2);
        assert_eq!(map.len(), 2);
        assert_eq!(map[&digest], 2);
    }

    #[test]
    fn round_trips_through_hex_and_rejects_other_lengths() {
        let d = Digest([0xab; 32]);
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!("abcd".parse::<Digest>().is_err());
        assert_eq!(Digest::from_slice(&[1; 31]), None);
    }
}
