#!/usr/bin/env python3
"""Recompute walproof's hashing test vectors from the specification, independently of the Rust code.

This is a second implementation of design.md's hashing rules (column hash, row key, row leaf, the
multiset forms, and the ledger chain link), written from the spec with nothing but hashlib. It
checks every digest in vectors.json and exits non-zero on any difference, so the vectors are
known to be reproducible outside Rust.

Usage: python3 verify_vectors.py [path/to/vectors.json]
"""
import hashlib
import json
import os
import struct
import sys


def lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def sha256(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.digest()


def column_hash(type_oid, value):
    null = value is None
    text = b"" if null else value.encode("utf-8")
    return sha256(struct.pack(">I", type_oid), bytes([1 if null else 0]), lp(text))


def row_key(schema, table, key):
    return sha256(b"walproof/key/v1", lp(schema.encode()), lp(table.encode()),
                  *(lp(k.encode()) for k in key))


def named(columns):
    return b"".join(lp(c["name"].encode()) + column_hash(c["type_oid"], c["value"]) for c in columns)


def row_leaf(columns):
    return sha256(b"walproof/row/v1", named(columns))


def multiset_key(schema, table, columns):
    return sha256(b"walproof/rowkey/v1", lp(schema.encode()), lp(table.encode()),
                  *(column_hash(c["type_oid"], c["value"]) for c in columns))


def multiset_leaf(count, columns):
    return sha256(b"walproof/rows/v1", struct.pack(">Q", count), named(columns))


def chain_link(prev_hash, entry):
    return sha256(bytes.fromhex(prev_hash), bytes.fromhex(entry))


CHECKS = {
    "column_hash": lambda v: column_hash(v["type_oid"], v["value"]),
    "row_key": lambda v: row_key(v["schema"], v["table"], v["key"]),
    "row_leaf": lambda v: row_leaf(v["columns"]),
    "multiset_key": lambda v: multiset_key(v["schema"], v["table"], v["columns"]),
    "multiset_leaf": lambda v: multiset_leaf(v["count"], v["columns"]),
    "chain_link": lambda v: chain_link(v["prev_hash"], v["entry"]),
}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "vectors.json")
    with open(path, encoding="utf-8") as f:
        vectors = json.load(f)
    passed = failed = 0
    for kind, compute in CHECKS.items():
        for i, vector in enumerate(vectors[kind]):
            got = compute(vector).hex()
            if got == vector["hash"]:
                passed += 1
            else:
                failed += 1
                print(f"FAIL {kind}[{i}] ({vector.get('comment', '')}): expected {vector['hash']}, got {got}")
    print(f"hash vectors (python): {passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
