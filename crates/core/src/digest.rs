//! 32-byte SHA-256 digests: ledger entry hashes, row keys, leaves and roots.

use std::fmt;
use std::str::FromStr;

/// A SHA-256 digest. Printed and parsed as 64 lower-case hex digits.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

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
    fn round_trips_through_hex_and_rejects_other_lengths() {
        let d = Digest([0xab; 32]);
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!("abcd".parse::<Digest>().is_err());
        assert_eq!(Digest::from_slice(&[1; 31]), None);
    }
}
