// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title SmtProof
/// @notice Verifies walproof's Sparse Merkle Tree proofs: the tree nodes on a key's path, root
/// first, exactly as monotree serializes them (crates/committer/src/proof.rs; this is a port of
/// the reference walk crates/committer/testdata/verify_proofs.py).
///
/// A node is soft, `cell ‖ 0x00`, or hard, `left cell ‖ right cell ‖ 0x01`, where
///
///     left cell  = hash (32) ‖ start u16 BE ‖ end u16 BE ‖ path
///     right cell =             start u16 BE ‖ end u16 BE ‖ path ‖ hash (32)
///
/// and a cell covers bits `start..end` (MSB first) of its `path` bytes, which are the
/// `ceil(end / 8)` bytes of the key from the byte holding the cell's first bit (`start` < 8).
/// `sha256(node 0)` is the root. At each node the walk takes the cell on the side of the key's
/// next bit (the only cell of a soft node): if the cell's bits are not the key's next bits (or
/// run past its 256th), the key is absent and this must be the last node; otherwise the walk moves past them, and after
/// all 256 bits of the key the cell's hash is the key's leaf (the last node), before that the
/// hash of the next node. The empty tree's root is 32 zero bytes and has no nodes.
///
/// IMPORTANT: every node is checked against the hash its parent (or the root) names before it
/// is read, so a proof can only show what the tree under `root` holds. Parsing is strict
/// anyway — lengths exact, `start` < 8, cells non-empty, a hard node's left cell starting with
/// bit 0 and its right cell with bit 1 — so a node is read one way only, never out of bounds.
library SmtProof {
    /// @notice The tree is empty (root 0), yet the proof has `nodes` nodes.
    error ProofNodesForEmptyTree(uint256 nodes);
    /// @notice Node `index` hashes to `found`, but its parent (or the root) names `expected`.
    error ProofHashMismatch(uint256 index, bytes32 expected, bytes32 found);
    /// @notice Node `index` is `length` bytes long: too short, or not what its cells declare.
    error ProofNodeLength(uint256 index, uint256 length);
    /// @notice Node `index` ends with `tag`, neither 0 (soft) nor 1 (hard).
    error ProofNodeTag(uint256 index, uint256 tag);
    /// @notice A cell of node `index` declares bits `start..end`: `start` must be below 8 and
    /// `end` above `start`.
    error ProofCellRange(uint256 index, uint256 start, uint256 end);
    /// @notice Hard node `index`'s left cell does not start with bit 0, or its right with bit 1.
    error ProofCellsUnordered(uint256 index);
    /// @notice The key leaves the tree at node `index`, but more nodes follow.
    error ProofNodesAfterDivergence(uint256 index);
    /// @notice Node `index` reaches the key's leaf, but more nodes follow.
    error ProofNodesAfterLeaf(uint256 index);
    /// @notice The proof's `nodes` nodes end at bit `depth` of the key, before its leaf or the
    /// point where it leaves the tree.
    error ProofEndsEarly(uint256 nodes, uint256 depth);

    /// @dev Where a node's left (or only) cell's range starts, after its hash.
    uint256 private constant LEFT_RANGE = 32;
    /// @dev The shortest node: a soft one with a one-byte path (hash, start, end, path, tag).
    uint256 private constant MIN_NODE = LEFT_RANGE + 4 + 1 + 1;

    /// @notice Walks `nodes` (root first) from `root` along `key`.
    /// @return present Whether the key holds a leaf under `root`.
    /// @return leaf The key's leaf when present, else zero.
    /// @dev Reverts with one of this library's errors, naming the node, when the nodes show
    /// neither the key's leaf nor its absence.
    function verify(bytes32 root, bytes32 key, bytes[] calldata nodes)
        internal
        pure
        returns (bool present, bytes32 leaf)
    {
        if (root == bytes32(0)) {
            if (nodes.length != 0) revert ProofNodesForEmptyTree(nodes.length);
            return (false, bytes32(0));
        }
        // From here on `root` is the hash the next node must have (the stack is tight).
        uint256 depth; // key bits walked
        for (uint256 index; index < nodes.length; ++index) {
            (bytes32 hash, uint256 bits, uint256 length) =
                _checkedCell(nodes[index], index, root, (uint256(key) >> (255 - depth)) & 1);
            // The cell's bits against the key's next ones: only the top `length` count.
            if (length > 256 - depth || (bits ^ (uint256(key) << depth)) >> (256 - length) != 0) {
                if (index + 1 != nodes.length) revert ProofNodesAfterDivergence(index);
                return (false, bytes32(0)); // the key leaves the tree here: absent
            }
            depth += length;
            if (depth == 256) {
                if (index + 1 != nodes.length) revert ProofNodesAfterLeaf(index);
                return (true, hash);
            }
            root = hash;
        }
        revert ProofEndsEarly(nodes.length, depth);
    }

    /// @dev Checks node `index` hashes to `expected`, parses it and returns the cell on side
    /// `side` (the key's next bit: 0 left, 1 right; a soft node's only cell either way): its
    /// hash, its bits left-aligned (only the top `length` are the cell's) and its length.
    function _checkedCell(bytes calldata node, uint256 index, bytes32 expected, uint256 side)
        private
        pure
        returns (bytes32 hash, uint256 bits, uint256 length)
    {
        {
            bytes32 found = sha256(node);
            if (found != expected) revert ProofHashMismatch(index, expected, found);
        }
        uint256 size = node.length;
        if (size < MIN_NODE) revert ProofNodeLength(index, size);
        uint256 pathEnd;
        (bits, length, pathEnd) = _cell(node, LEFT_RANGE, index);
        uint256 tag = _word(node, size - 1) >> 248;
        if (tag == 0) {
            if (size != pathEnd + 1) revert ProofNodeLength(index, size);
            return (bytes32(_word(node, 0)), bits, length);
        }
        if (tag != 1) revert ProofNodeTag(index, tag);
        // hard: left cell ‖ right start, end (4) ‖ right path ‖ right hash (32) ‖ tag (1)
        if (size < pathEnd + 37) revert ProofNodeLength(index, size);
        (uint256 rightBits, uint256 rightLength, uint256 rightHash) = _cell(node, pathEnd, index);
        if (size != rightHash + 33) revert ProofNodeLength(index, size);
        if (bits >> 255 != 0 || rightBits >> 255 != 1) revert ProofCellsUnordered(index);
        if (side == 0) return (bytes32(_word(node, 0)), bits, length);
        return (bytes32(_word(node, rightHash)), rightBits, rightLength);
    }

    /// @dev The cell whose range (`start`, `end`: u16 BE each) is at `offset` of node `index`,
    /// its path right after: its bits left-aligned, its length, and where its path ends. The
    /// caller has checked the node holds the range; it checks the node holds the path.
    function _cell(bytes calldata node, uint256 offset, uint256 index)
        private
        pure
        returns (uint256 bits, uint256 length, uint256 pathEnd)
    {
        uint256 range = _word(node, offset) >> 224;
        uint256 start = range >> 16;
        uint256 end = range & 0xffff;
        if (start >= 8 || end <= start) revert ProofCellRange(index, start, end);
        unchecked {
            // Path bits `start..start + 256` from the (up to 33) bytes at `offset + 4`. The
            // cell's `end - start` bits lie within the path, which the caller checks the node
            // holds, so what the loads read past it only fills bits that do not count.
            bits = (_word(node, offset + 4) << start) | (_word(node, offset + 36) >> (256 - start));
            // offset is below the node's length, end below 2^16: nothing overflows
            return (bits, end - start, offset + 4 + (end + 7) / 8);
        }
    }

    /// @dev The 32 bytes at `offset` of `node`, zero-padded past the end of the calldata; they
    /// may extend past the node (the callers check what counts).
    function _word(bytes calldata node, uint256 offset) private pure returns (uint256 word) {
        assembly ("memory-safe") {
            word := calldataload(add(node.offset, offset))
        }
    }
}
