//! Log sequence numbers: positions in the source's write-ahead log.

use std::fmt;
use std::str::FromStr;

/// A Postgres WAL position (`XLogRecPtr`), printed and parsed in Postgres's `X/Y` form
/// (upper hex, high and low 32 bits), e.g. `16/B374D848`.
///
/// A source transaction is identified by its commit LSN; ledger order is strictly increasing
/// commit LSN. Per-change WAL positions are not unique and never identify a change.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(u64);

impl Lsn {
    /// The invalid position `0/0`, which Postgres uses for "none".
    pub const ZERO: Lsn = Lsn(0);

    /// Wraps a raw 64-bit WAL position.
    pub const fn new(raw: u64) -> Self {
        Lsn(raw)
    }

    /// The raw 64-bit WAL position.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The position `bytes` further on, or `None` past the end of the address space.
    pub fn checked_add(self, bytes: u64) -> Option<Lsn> {
        self.0.checked_add(bytes).map(Lsn)
    }

    /// Bytes of WAL from `earlier` to `self`, or `None` when `earlier` is ahead.
    pub fn checked_distance_from(self, earlier: Lsn) -> Option<u64> {
        self.0.checked_sub(earlier.0)
    }
}

impl From<u64> for Lsn {
    fn from(raw: u64) -> Self {
        Lsn(raw)
    }
}

impl From<Lsn> for u64 {
    fn from(lsn: Lsn) -> Self {
        lsn.0
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl fmt::Debug for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lsn({self})")
    }
}

/// Text that is not an LSN in `X/Y` form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid LSN {input:?}: expected two hex numbers of at most 8 digits as X/Y, e.g. 16/B374D848"
)]
pub struct LsnParseError {
    /// The text that was given.
    pub input: String,
}

impl FromStr for Lsn {
    type Err = LsnParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || LsnParseError {
            input: s.to_owned(),
        };
        let (hi, lo) = s.split_once('/').ok_or_else(error)?;
        let half = |part: &str| {
            let valid =
                !part.is_empty() && part.len() <= 8 && part.bytes().all(|b| b.is_ascii_hexdigit());
            if valid {
                u32::from_str_radix(part, 16).ok()
            } else {
                None
            }
        };
        let (hi, lo) = (half(hi).ok_or_else(error)?, half(lo).ok_or_else(error)?);
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

/// Serialized as its text form (`"16/B374D848"`), the form Postgres and walproof print.
impl serde::Serialize for Lsn {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Lsn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_postgres_form() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.as_u64(), 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert_eq!("0/0".parse::<Lsn>().unwrap(), Lsn::ZERO);
        assert_eq!(Lsn::new(u64::MAX).to_string(), "FFFFFFFF/FFFFFFFF");
        // Postgres prints upper hex without padding, but accepts lower case.
        assert_eq!("a/1f".parse::<Lsn>().unwrap().to_string(), "A/1F");
    }

    #[test]
    fn rejects_malformed_text_naming_it() {
        for bad in [
            "",
            "/",
            "1/",
            "/1",
            "12",
            "1/2/3",
            "g/1",
            "1/123456789",
            " 1/2",
            "-1/2",
            "+1/2",
        ] {
            let err = bad.parse::<Lsn>().unwrap_err();
            assert_eq!(err.input, bad);
            assert!(err.to_string().contains(&format!("{bad:?}")));
        }
    }

    #[test]
    fn orders_by_position_and_does_arithmetic() {
        let a: Lsn = "0/FFFFFFFF".parse().unwrap();
        let b = a.checked_add(1).unwrap();
        assert_eq!(b.to_string(), "1/0");
        assert!(a < b);
        assert_eq!(b.checked_distance_from(a), Some(1));
        assert_eq!(a.checked_distance_from(b), None);
        assert_eq!(Lsn::new(u64::MAX).checked_add(1), None);
    }
}
