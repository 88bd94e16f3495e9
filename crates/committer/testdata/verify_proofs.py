#!/usr/bin/env python3
"""Verify walproof's pinned SMT proof vectors with a second implementation, from the README's
description of the proof format and nothing but hashlib.

A proof is the list of tree nodes from the root down a key's 256 bits. SHA-256(node 0) is the
root; each node is soft (cell || 0x00) or hard (left cell || right cell || 0x01); a left cell is
hash(32) || start u16 BE || end u16 BE || path bytes, a right cell start || end || path || hash(32);
a cell covers bits start..end of its path bytes. Take the cell on the side of the key's next bit;
if its bits are not the key's next bits the key is absent (this must be the last node); else
advance past them: after 256 bits its hash is the key's leaf, otherwise SHA-256 of the next node
must equal it.

Checks every vector's outcome (its leaf, or absence), the keys and leaves named in the vectors,
and that a changed byte in any node makes the proof fail. Exits non-zero on any difference.

Usage: python3 verify_proofs.py [path/to/proof_vectors.json]
"""
import hashlib
import json
import os
import struct
import sys


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def bit(data: bytes, i: int) -> int:
    if i // 8 >= len(data):
        return 0
    return (data[i // 8] >> (7 - i % 8)) & 1


def nbytes(start: int, end: int) -> int:
    return (end - (start - start % 8) + 7) // 8


def cells(node: bytes):
    """[(hash, path, start, end)] of a node, left first; raises ValueError when malformed."""
    if not node:
        raise ValueError("empty node")
    if node[-1] == 0:
        body = node[:-1]
        start, end = struct.unpack(">HH", body[32:36])
        path = body[36:36 + nbytes(start, end)]
        if len(body) != 36 + len(path):
            raise ValueError("soft node length")
        return [(body[:32], path, start, end)]
    if node[-1] == 1:
        body = node[:-1]
        start, end = struct.unpack(">HH", body[32:36])
        size = 36 + nbytes(start, end)
        left = (body[:32], body[36:size], start, end)
        rstart, rend = struct.unpack(">HH", body[size:size + 4])
        rsize = nbytes(rstart, rend)
        right = (body[-32:], body[size + 4:size + 4 + rsize], rstart, rend)
        if len(body) != size + 4 + rsize + 32:
            raise ValueError("hard node length")
        return [left, right]
    raise ValueError("not a node")


def walk(root: bytes, key: bytes, nodes):
    """The key's leaf, None when absent; raises ValueError when the proof shows neither."""
    if root == bytes(32):
        if nodes:
            raise ValueError("nodes for the empty tree")
        return None
    expected, depth = root, 0
    for index, node in enumerate(nodes):
        if sha256(node) != expected:
            raise ValueError(f"node {index} does not hash to what its parent names")
        last = index == len(nodes) - 1
        units = cells(node)
        # The cell whose first bit is the key's next bit.
        chosen = None
        for unit in units:
            _, path, start, end = unit
            if end > start and bit(path, start) == bit(key, depth):
                chosen = unit
        if chosen is None:
            chosen = units[0]
        digest, path, start, end = chosen
        length = end - start
        if depth + length > 256 or any(
                bit(path, start + i) != bit(key, depth + i) for i in range(length)):
            if not last:
                raise ValueError("nodes after the key left the tree")
            return None
        depth += length
        if depth == 256:
            if not last:
                raise ValueError("nodes after the leaf")
            return digest
        expected = digest
    raise ValueError("the proof stops early")


def tagged(tag: str, n: int) -> str:
    return sha256(tag.encode() + struct.pack(">I", n)).hex()


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "proof_vectors.json")
    with open(path) as f:
        vectors = json.load(f)["vectors"]
    failures = 0
    for v in vectors:
        root, key = bytes.fromhex(v["root"]), bytes.fromhex(v["key"])
        nodes = [bytes.fromhex(n) for n in v["nodes"]]
        expected = v["leaf"]
        try:
            got = walk(root, key, nodes)
            got = None if got is None else got.hex()
            if got != expected:
                raise ValueError(f"shows {got}, the vector says {expected}")
            words = v["name"].split()
            if "key" in words:
                n = int(words[words.index("key") + 1])
                if v["key"] != tagged("walproof/test/key", n):
                    raise ValueError("the key is not SHA-256(tag || n)")
                if expected is not None and expected != tagged("walproof/test/leaf", n):
                    raise ValueError("the leaf is not SHA-256(tag || n)")
            for i, node in enumerate(nodes):
                for j in range(len(node)):
                    bad = list(nodes)
                    bad[i] = node[:j] + bytes([node[j] ^ 1]) + node[j + 1:]
                    try:
                        walk(root, key, bad)
                    except ValueError:
                        continue
                    raise ValueError(f"a changed byte {j} of node {i} still verifies")
        except ValueError as err:
            failures += 1
            print(f"FAIL {v['name']}: {err}")
    print(f"proof vectors (python): {len(vectors) - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
