//! The hashing rules are pinned by `testdata/vectors.json`: fixed inputs and their expected
//! digests, also recomputed by the independent `testdata/verify_vectors.py`, so another
//! implementation (Solidity, Python) can prove it hashes the same.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use serde_json::Value as Json;
use walproof_core::chain::link_hash;
use walproof_core::leaf::{column_hash, multiset_key, multiset_leaf, row_key, row_leaf};
use walproof_core::{Digest, EntryBody, LedgerEntry};

fn vectors() -> Json {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn str_of<'a>(v: &'a Json, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {v}"))
}

fn digest_of(v: &Json, field: &str) -> Digest {
    str_of(v, field).parse().unwrap()
}

/// `(name, H(col))` for each column of a vector, in order.
fn column_hashes(v: &Json) -> Vec<(String, Digest)> {
    v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let oid = u32::try_from(c["type_oid"].as_u64().unwrap()).unwrap();
            (
                str_of(c, "name").to_owned(),
                column_hash(oid, c["value"].as_str()),
            )
        })
        .collect()
}

/// Runs `compute` on each vector of `kind` and compares with its pinned hash.
fn check(kind: &str, compute: impl Fn(&Json) -> Digest) -> usize {
    let all = vectors();
    let list = all[kind]
        .as_array()
        .unwrap_or_else(|| panic!("no {kind} vectors"));
    assert!(!list.is_empty(), "no {kind} vectors");
    for (i, v) in list.iter().enumerate() {
        assert_eq!(
            compute(v),
            digest_of(v, "hash"),
            "{kind}[{i}] {}",
            v["comment"]
        );
    }
    list.len()
}

#[test]
fn column_hashes_match_the_pinned_vectors() {
    check("column_hash", |v| {
        column_hash(
            u32::try_from(v["type_oid"].as_u64().unwrap()).unwrap(),
            v["value"].as_str(),
        )
    });
}

#[test]
fn row_keys_match_the_pinned_vectors() {
    check("row_key", |v| {
        let key: Vec<&str> = v["key"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        row_key(str_of(v, "schema"), str_of(v, "table"), key)
    });
}

#[test]
fn row_leaves_match_the_pinned_vectors() {
    check("row_leaf", |v| {
        let columns = column_hashes(v);
        row_leaf(columns.iter().map(|(name, hash)| (name.as_str(), hash)))
    });
}

#[test]
fn multiset_keys_and_leaves_match_the_pinned_vectors() {
    check("multiset_key", |v| {
        let columns = column_hashes(v);
        multiset_key(
            str_of(v, "schema"),
            str_of(v, "table"),
            columns.iter().map(|(_, h)| h),
        )
    });
    check("multiset_leaf", |v| {
        let columns = column_hashes(v);
        let count = v["count"].as_u64().unwrap();
        multiset_leaf(
            count,
            columns.iter().map(|(name, hash)| (name.as_str(), hash)),
        )
    });
}

#[test]
fn chain_links_match_the_pinned_vectors_and_their_entries_decode() {
    check("chain_link", |v| {
        let entry = hex::decode(str_of(v, "entry")).unwrap();
        // The pinned bytes are also this build's exact encoding of the entry they hold.
        let decoded = LedgerEntry::decode(&entry).unwrap();
        assert_eq!(decoded.commit_lsn.to_string(), str_of(v, "commit_lsn"));
        assert_eq!(decoded.body, EntryBody::Abandon { parts_written: 2 });
        assert_eq!(decoded.encode(), entry);
        link_hash(&digest_of(v, "prev_hash"), &entry)
    });
}

#[test]
fn the_pinned_vectors_cover_null_versus_empty() {
    let all = vectors();
    let list = all["column_hash"].as_array().unwrap();
    let hash_of = |value: Json| {
        list.iter()
            .find(|v| v["type_oid"] == 25 && v["value"] == value)
            .map(|v| v["hash"].clone())
    };
    let (empty, null) = (
        hash_of(Json::from("")).unwrap(),
        hash_of(Json::Null).unwrap(),
    );
    assert_ne!(empty, null);
}
