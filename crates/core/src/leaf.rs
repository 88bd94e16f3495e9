//! Row keys and leaves of the Sparse Merkle Tree, hashed exactly as design.md specifies.
//!
//! All hashes are SHA-256. `lp(x)` is `x` prefixed by its length as a big-endian `u32`. Domain
//! tags are raw ASCII and prefix-free, so no two kinds of hash can collide by construction:
//!
//! ```text
//! H(col)         = SHA-256(type_oid u32 BE ‖ null_flag u8 ‖ lp(text))   NULL: flag 1, text ""
//! key            = SHA-256("walproof/key/v1"  ‖ lp(schema) ‖ lp(table) ‖ lp(key col 1) ‖ …)
//! leaf           = SHA-256("walproof/row/v1"  ‖ lp(name 1) ‖ H(col 1) ‖ … ‖ lp(name n) ‖ H(col n))
//! multiset key   = SHA-256("walproof/rowkey/v1" ‖ lp(schema) ‖ lp(table) ‖ H(col 1) ‖ … ‖ H(col n))
//! multiset leaf  = SHA-256("walproof/rows/v1" ‖ count u64 BE ‖ lp(name 1) ‖ H(col 1) ‖ …)
//! ```
//!
//! Columns are in attribute order. The multiset form is for tables without a primary key or
//! replica identity index but with REPLICA IDENTITY FULL: identical rows share one key and the
//! leaf commits to how many of them exist. `testdata/vectors.json` pins these functions with
//! fixed inputs and digests, and `testdata/verify_vectors.py` recomputes them independently.

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

const KEY_TAG: &[u8] = b"walproof/key/v1";
const LEAF_TAG: &[u8] = b"walproof/row/v1";
const MULTISET_KEY_TAG: &[u8] = b"walproof/rowkey/v1";
const MULTISET_LEAF_TAG: &[u8] = b"walproof/rows/v1";

/// Feeds `lp(bytes)` into the hasher.
fn length_prefixed(hasher: &mut Sha256, bytes: &[u8]) {
    // A column value longer than 4 GiB cannot exist in Postgres (1 GB field limit).
    let len = u32::try_from(bytes.len()).expect("Postgres values are below 1 GiB");
    hasher.update(len.to_be_bytes());
    hasher.update(bytes);
}

fn finish(hasher: Sha256) -> Digest {
    Digest(hasher.finalize().into())
}

/// `H(col)`: the hash of one resolved column value (`None` is SQL NULL).
pub fn column_hash(type_oid: u32, value: Option<&str>) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(type_oid.to_be_bytes());
    hasher.update([u8::from(value.is_none())]);
    length_prefixed(&mut hasher, value.unwrap_or_default().as_bytes());
    finish(hasher)
}

/// The tree key of a row of a keyed table, from its key columns' text in attribute order.
pub fn row_key<'a>(
    schema: &str,
    table: &str,
    key_values: impl IntoIterator<Item = &'a str>,
) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(KEY_TAG);
    length_prefixed(&mut hasher, schema.as_bytes());
    length_prefixed(&mut hasher, table.as_bytes());
    for value in key_values {
        length_prefixed(&mut hasher, value.as_bytes());
    }
    finish(hasher)
}

/// The leaf of a row of a keyed table, from `(column name, H(col))` in attribute order.
pub fn row_leaf<'a>(columns: impl IntoIterator<Item = (&'a str, &'a Digest)>) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(LEAF_TAG);
    named_column_hashes(&mut hasher, columns);
    finish(hasher)
}

/// The tree key shared by identical rows of a table committed as a multiset.
pub fn multiset_key<'a>(
    schema: &str,
    table: &str,
    column_hashes: impl IntoIterator<Item = &'a Digest>,
) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(MULTISET_KEY_TAG);
    length_prefixed(&mut hasher, schema.as_bytes());
    length_prefixed(&mut hasher, table.as_bytes());
    for hash in column_hashes {
        hasher.update(hash.as_bytes());
    }
    finish(hasher)
}

/// The leaf of `count` identical rows of a table committed as a multiset.
pub fn multiset_leaf<'a>(
    count: u64,
    columns: impl IntoIterator<Item = (&'a str, &'a Digest)>,
) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(MULTISET_LEAF_TAG);
    hasher.update(count.to_be_bytes());
    named_column_hashes(&mut hasher, columns);
    finish(hasher)
}

fn named_column_hashes<'a>(
    hasher: &mut Sha256,
    columns: impl IntoIterator<Item = (&'a str, &'a Digest)>,
) {
    for (name, hash) in columns {
        length_prefixed(hasher, name.as_bytes());
        hasher.update(hash.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_differs_from_every_string_including_empty() {
        let null = column_hash(25, None);
        assert_ne!(null, column_hash(25, Some("")));
        assert_ne!(null, column_hash(25, Some("NULL")));
        assert_ne!(
            column_hash(25, Some("1")),
            column_hash(23, Some("1")),
            "type is committed"
        );
    }

    #[test]
    fn length_prefixes_keep_boundaries() {
        // Without length prefixes both would hash "ab" ‖ "c".
        assert_ne!(
            row_key("s", "t", ["ab", "c"]),
            row_key("s", "t", ["a", "bc"])
        );
        assert_ne!(row_key("st", "x", ["1"]), row_key("s", "tx", ["1"]));
    }

    #[test]
    fn multiset_leaf_commits_to_the_count_and_differs_from_a_keyed_leaf() {
        let h = column_hash(23, Some("7"));
        let one = multiset_leaf(1, [("a", &h)]);
        assert_ne!(one, multiset_leaf(2, [("a", &h)]));
        assert_ne!(one, row_leaf([("a", &h)]));
    }
}
