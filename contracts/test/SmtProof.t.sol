// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./base/Test.sol";
import {SmtProof} from "../src/lib/SmtProof.sol";

/// @dev SmtProof behind an external call, so tests can catch its reverts.
contract SmtProofHarness {
    function verify(bytes32 root, bytes32 key, bytes[] calldata nodes) external pure returns (bool, bytes32) {
        return SmtProof.verify(root, key, nodes);
    }
}

/// @notice SmtProof against the proof vectors crates/committer pins (verify_proofs.py's walk),
/// the committer's proofs of withdrawal rows, hand-built malformed nodes, and a bit-by-bit
/// reference walk on generated trees.
contract SmtProofTest is Test {
    SmtProofHarness internal harness;
    string internal vectors;

    function setUp() public {
        harness = new SmtProofHarness();
        vectors = vm.readFile("../crates/committer/testdata/proof_vectors.json");
    }

    // ------------------------------------------------------------ pinned vectors

    function test_every_pinned_vector_shows_its_leaf_or_absence() public view {
        uint256 n = _count(vectors, ".vectors");
        assertEq(n, 9);
        uint256 present;
        for (uint256 i; i < n; ++i) {
            (bytes32 root, bytes32 key, bytes[] memory nodes, bool expectPresent, bytes32 expectLeaf) = _vector(i);
            (bool shown, bytes32 leaf) = harness.verify(root, key, nodes);
            vm.assertEq(shown, expectPresent, vm.parseJsonString(vectors, _at(i, ".name")));
            vm.assertEq(leaf, expectLeaf, vm.parseJsonString(vectors, _at(i, ".name")));
            if (shown) ++present;
        }
        assertEq(present, 4); // and 5 absent, the empty tree among them
    }

    /// As verify_proofs.py checks: a changed byte anywhere in any node of any vector fails,
    /// at that node, because it no longer hashes to what its parent names.
    function test_a_changed_byte_in_any_node_of_any_vector_fails_at_that_node() public view {
        uint256 changed;
        for (uint256 i; i < _count(vectors, ".vectors"); ++i) {
            (bytes32 root, bytes32 key, bytes[] memory nodes,,) = _vector(i);
            changed += _everyChangedByteFails(root, key, nodes);
        }
        vm.assertGt(changed, 3000, "bytes changed");
    }

    /// The committer's own proofs (the Rust-generated fixture) of withdrawal rows, present and
    /// absent, and a changed byte in any of their nodes.
    function test_the_committers_withdrawal_row_proofs_verify() public view {
        string memory fixture = vm.readFile("test/fixtures/withdrawal_proof.json");
        uint256 n = _count(fixture, ".proofs");
        assertTrue(n >= 9);
        for (uint256 i; i < n; ++i) {
            string memory item = string.concat(".proofs[", vm.toString(i), "]");
            bytes32 root = vm.parseJsonBytes32(fixture, string.concat(item, ".root"));
            bytes32 key = vm.parseJsonBytes32(fixture, string.concat(item, ".key"));
            bytes[] memory nodes = vm.parseJsonBytesArray(fixture, string.concat(item, ".nodes"));
            (bool present, bytes32 leaf) = harness.verify(root, key, nodes);
            vm.assertEq(present, vm.parseJsonBool(fixture, string.concat(item, ".present")), item);
            vm.assertEq(leaf, vm.parseJsonBytes32(fixture, string.concat(item, ".leaf")), item);
            _everyChangedByteFails(root, key, nodes);
        }
    }

    function test_a_present_proof_does_not_prove_another_key() public {
        (bytes32 root, bytes32 key, bytes[] memory nodes, bool present,) = _vector(3); // 7 nodes
        assertTrue(present);
        bytes32 other = key ^ bytes32(uint256(1)); // the last bit differs: the leaf's sibling
        (bool shown, bytes32 leaf) = harness.verify(root, other, nodes);
        assertFalse(shown);
        assertEq(leaf, bytes32(0));
        // a key leaving the path near the root makes the next node's hash wrong
        other = key ^ bytes32(uint256(1) << 255);
        vm.expectPartialRevert(SmtProof.ProofHashMismatch.selector);
        harness.verify(root, other, nodes);
    }

    // ---------------------------------------------------------- malformed proofs

    function test_the_empty_tree_has_no_nodes() public {
        bytes[] memory nodes = new bytes[](1);
        nodes[0] = _soft(bytes32(uint256(7)), 0, 256, abi.encodePacked(bytes32(0)));
        vm.expectRevert(abi.encodeWithSelector(SmtProof.ProofNodesForEmptyTree.selector, 1));
        harness.verify(bytes32(0), bytes32(0), nodes);
    }

    function test_a_tree_that_is_not_empty_needs_nodes() public {
        vm.expectRevert(abi.encodeWithSelector(SmtProof.ProofEndsEarly.selector, 0, 0));
        harness.verify(bytes32(uint256(1)), bytes32(0), new bytes[](0));
    }

    function test_a_node_that_does_not_hash_to_the_root_fails() public {
        bytes[] memory nodes = _one(_soft(bytes32(uint256(7)), 0, 256, abi.encodePacked(bytes32(0))));
        bytes32 root = bytes32(uint256(1));
        vm.expectRevert(abi.encodeWithSelector(SmtProof.ProofHashMismatch.selector, 0, root, sha256(nodes[0])));
        harness.verify(root, bytes32(0), nodes);
    }

    function test_a_node_too_short_to_hold_a_cell_fails() public {
        _expectSingleNodeError(new bytes(37), abi.encodeWithSelector(SmtProof.ProofNodeLength.selector, 0, 37));
        _expectSingleNodeError(new bytes(0), abi.encodeWithSelector(SmtProof.ProofNodeLength.selector, 0, 0));
    }

    function test_a_node_ending_in_neither_0_nor_1_fails() public {
        bytes memory node = _soft(bytes32(0), 0, 8, hex"00");
        node[node.length - 1] = 0x02;
        _expectSingleNodeError(node, abi.encodeWithSelector(SmtProof.ProofNodeTag.selector, 0, 2));
    }

    function test_a_cell_starting_past_its_first_byte_or_empty_fails() public {
        _expectSingleNodeError(
            _soft(bytes32(0), 8, 16, hex"0000"), abi.encodeWithSelector(SmtProof.ProofCellRange.selector, 0, 8, 16)
        );
        _expectSingleNodeError(
            _soft(bytes32(0), 3, 3, hex"00"), abi.encodeWithSelector(SmtProof.ProofCellRange.selector, 0, 3, 3)
        );
        _expectSingleNodeError(
            _soft(bytes32(0), 5, 2, hex"00"), abi.encodeWithSelector(SmtProof.ProofCellRange.selector, 0, 5, 2)
        );
        // the right cell of a hard node too
        bytes memory node = _hard(bytes32(0), 0, 1, hex"00", 0, 0, hex"80", bytes32(0));
        _expectSingleNodeError(node, abi.encodeWithSelector(SmtProof.ProofCellRange.selector, 0, 0, 0));
    }

    function test_a_soft_node_longer_or_shorter_than_its_cell_fails() public {
        bytes memory longer = abi.encodePacked(bytes32(0), uint16(0), uint16(8), hex"0000", uint8(0));
        _expectSingleNodeError(longer, abi.encodeWithSelector(SmtProof.ProofNodeLength.selector, 0, longer.length));
        bytes memory shorter = abi.encodePacked(bytes32(0), uint16(0), uint16(16), hex"00", uint8(0));
        _expectSingleNodeError(shorter, abi.encodeWithSelector(SmtProof.ProofNodeLength.selector, 0, shorter.length));
    }

    function test_a_hard_node_longer_or_shorter_than_its_cells_fails() public {
        bytes memory node = _hard(bytes32(0), 0, 4, hex"00", 0, 4, hex"80", bytes32(0));
        bytes memory longer = bytes.concat(_slice(node, 0, node.length - 1), hex"0001");
        _expectSingleNodeError(longer, abi.encodeWithSelector(SmtProof.ProofNodeLength.selector, 0, longer.length));
        bytes memory shorter = bytes.concat(_slice(node, 0, node.length - 2), hex"01");
        _expectSingleNodeError(shorter, abi.encodeWithSelector(SmtProof.ProofNodeLength.selector, 0, shorter.length));
        // too short to hold the right cell's range and hash at all
        bytes memory stub = abi.encodePacked(bytes32(0), uint16(0), uint16(4), hex"00", uint16(0), uint8(1));
        _expectSingleNodeError(stub, abi.encodeWithSelector(SmtProof.ProofNodeLength.selector, 0, stub.length));
    }

    function test_a_hard_node_with_its_cells_swapped_fails() public {
        bytes memory node = _hard(bytes32(0), 0, 4, hex"80", 0, 4, hex"00", bytes32(0));
        _expectSingleNodeError(node, abi.encodeWithSelector(SmtProof.ProofCellsUnordered.selector, 0));
        node = _hard(bytes32(0), 0, 4, hex"00", 0, 4, hex"00", bytes32(0));
        _expectSingleNodeError(node, abi.encodeWithSelector(SmtProof.ProofCellsUnordered.selector, 0));
    }

    function test_nodes_after_the_leaf_fail() public {
        bytes32 key = keccak256("key");
        bytes memory leafNode = _soft(bytes32(uint256(9)), 0, 256, abi.encodePacked(key));
        bytes[] memory nodes = new bytes[](2);
        (nodes[0], nodes[1]) = (leafNode, leafNode);
        bytes32 root = sha256(leafNode);
        vm.expectRevert(abi.encodeWithSelector(SmtProof.ProofNodesAfterLeaf.selector, 0));
        harness.verify(root, key, nodes);
        // and alone it shows the leaf
        (bool present, bytes32 leaf) = harness.verify(root, key, _one(leafNode));
        assertTrue(present);
        assertEq(leaf, bytes32(uint256(9)));
    }

    function test_nodes_after_the_key_left_the_tree_fail() public {
        bytes32 key = keccak256("key");
        bytes memory node = _soft(bytes32(uint256(9)), 0, 256, abi.encodePacked(key ^ bytes32(uint256(1))));
        bytes[] memory nodes = new bytes[](2);
        (nodes[0], nodes[1]) = (node, node);
        bytes32 root = sha256(node);
        vm.expectRevert(abi.encodeWithSelector(SmtProof.ProofNodesAfterDivergence.selector, 0));
        harness.verify(root, key, nodes);
        (bool present, bytes32 leaf) = harness.verify(root, key, _one(node));
        assertFalse(present);
        assertEq(leaf, bytes32(0));
    }

    function test_a_proof_stopping_inside_the_key_fails() public {
        bytes32 key = keccak256("key");
        bytes memory node = _soft(bytes32(uint256(9)), 0, 12, _bytes(key, 2));
        bytes32 root = sha256(node);
        bytes[] memory nodes = _one(node);
        vm.expectRevert(abi.encodeWithSelector(SmtProof.ProofEndsEarly.selector, 1, 12));
        harness.verify(root, key, nodes);
    }

    /// As the reference walks: a cell longer than what is left of the key is where the key
    /// leaves the tree.
    function test_a_cell_longer_than_the_rest_of_the_key_is_absence() public view {
        bytes32 key = keccak256("key");
        bytes memory child = _soft(bytes32(uint256(9)), 0, 256, abi.encodePacked(key << 8));
        bytes memory top = _soft(sha256(child), 0, 8, _bytes(key, 1));
        bytes[] memory nodes = new bytes[](2);
        (nodes[0], nodes[1]) = (top, child);
        (bool present, bytes32 leaf) = harness.verify(sha256(top), key, nodes);
        assertFalse(present);
        assertEq(leaf, bytes32(0));
    }

    /// Arbitrary bytes as a node (made to hash to the root): the walk ends with an answer or
    /// one of SmtProof's errors, never a panic or an unexplained revert.
    function testFuzz_any_node_bytes_fail_only_with_a_proof_error(bytes memory node, bytes32 key) public view {
        try harness.verify(sha256(node), key, _one(node)) {}
        catch (bytes memory reason) {
            _assertProofError(reason);
        }
    }

    // ------------------------------------------ differential: generated trees

    /// Paths of 1 to 4 nodes along `key`, built bottom-up so every node hashes to what its
    /// parent names: soft or hard nodes, honest or shifted cell starts, sometimes a cell that
    /// leaves the key, a cell range or length that is off, a misordered hard node. SmtProof
    /// and a bit-by-bit reference walk (verify_proofs.py's, with SmtProof's strict parsing)
    /// must agree on every one.
    function testFuzz_agrees_with_a_bit_by_bit_reference_walk(bytes32 key, uint256 seed) public view {
        bytes[] memory nodes = _generate(key, seed);
        bytes32 root = sha256(nodes[0]);
        (bool ok, bool expectPresent, bytes32 expectLeaf) = _reference(root, key, nodes);
        try harness.verify(root, key, nodes) returns (bool present, bytes32 leaf) {
            assertTrue(ok);
            assertEq(present, expectPresent);
            assertEq(leaf, expectLeaf);
        } catch (bytes memory reason) {
            assertFalse(ok);
            _assertProofError(reason);
        }
    }

    /// The generator above reaches every outcome (a check on the test itself).
    function test_the_generated_trees_reach_every_outcome() public pure {
        uint256 present;
        uint256 absent;
        uint256 failed;
        for (uint256 seed; seed < 300; ++seed) {
            bytes32 key = keccak256(abi.encode("key", seed));
            bytes[] memory nodes = _generate(key, seed);
            (bool ok, bool isPresent,) = _reference(sha256(nodes[0]), key, nodes);
            if (!ok) ++failed;
            else if (isPresent) ++present;
            else ++absent;
        }
        vm.assertGt(present, 20, "present");
        vm.assertGt(absent, 20, "absent");
        vm.assertGt(failed, 20, "failed");
    }

    // ------------------------------------------------------------------ helpers

    function _generate(bytes32 key, uint256 seed) internal pure returns (bytes[] memory nodes) {
        uint256 levels = 1 + seed % 4;
        seed /= 4;
        // depths 0 = d0 < d1 < … < d(levels) = 256
        uint256[] memory depth = new uint256[](levels + 1);
        for (uint256 i = 1; i < levels; ++i) {
            uint256 room = 256 - depth[i - 1] - (levels - i); // leave a bit for each next level
            depth[i] = depth[i - 1] + 1 + uint256(keccak256(abi.encode(seed, "depth", i))) % room;
        }
        depth[levels] = 256;
        nodes = new bytes[](levels);
        bytes32 next = keccak256(abi.encode(seed, "leaf"));
        for (uint256 i = levels; i > 0; --i) {
            uint256 r = uint256(keccak256(abi.encode(seed, "node", i)));
            nodes[i - 1] = _node(key, r, depth[i - 1], depth[i] - depth[i - 1], next);
            next = sha256(nodes[i - 1]);
        }
    }

    /// A node at bit `from` whose cell towards `key` covers `length` bits and names `next`,
    /// varied by `r`.
    function _node(bytes32 key, uint256 r, uint256 from, uint256 length, bytes32 next)
        internal
        pure
        returns (bytes memory node)
    {
        // a wrong bit (the key leaves here) in 1 of 8 cells; otherwise the key's bits
        bytes32 bits = r % 8 == 0 ? key ^ bytes32(uint256(1) << (255 - (from + (r >> 8) % length))) : key;
        // the honest start (depth % 8) in 3 of 4 cells, another in the rest
        uint256 start = (r >> 16) % 4 == 0 ? (r >> 24) % 8 : from % 8;
        bytes memory path = _path(bits, from, length, start);
        uint256 end = start + length;
        if ((r >> 32) % 16 == 0) end = (r >> 40) % 2 == 0 ? start : end + 8; // a range that is off
        if ((r >> 48) % 3 == 0) {
            node = _soft(next, start, end, path);
        } else {
            bytes memory sibling = _sibling(key, from, 1 + (r >> 56) % (256 - from));
            bytes memory own = bytes.concat(_range(start, end), path);
            bytes32 siblingHash = keccak256(abi.encode(r, "sibling"));
            bool keyGoesRight = uint256(key) >> (255 - from) & 1 == 1;
            if ((r >> 64) % 16 == 0) keyGoesRight = !keyGoesRight; // misordered
            node = keyGoesRight
                ? abi.encodePacked(siblingHash, sibling, own, next, uint8(1))
                : abi.encodePacked(next, own, sibling, siblingHash, uint8(1));
        }
        if ((r >> 72) % 32 == 0) node = bytes.concat(node, hex"00"); // a stray byte
    }

    /// The range and path of a cell at bit `from` starting with the bit `key` does not have
    /// there, `length` bits long.
    function _sibling(bytes32 key, uint256 from, uint256 length) internal pure returns (bytes memory) {
        bytes32 bits = key ^ bytes32(uint256(1) << (255 - from));
        return bytes.concat(_range(from % 8, from % 8 + length), _path(bits, from, length, from % 8));
    }

    /// The path bytes of a cell holding bits `from..from + length` of `bits` from bit `start`
    /// of its first byte.
    function _path(bytes32 bits, uint256 from, uint256 length, uint256 start)
        internal
        pure
        returns (bytes memory path)
    {
        path = new bytes((start + length + 7) / 8);
        for (uint256 i; i < length; ++i) {
            if (uint256(bits) >> (255 - (from + i)) & 1 == 1) {
                uint256 position = start + i;
                path[position / 8] |= bytes1(uint8(0x80) >> (position % 8));
            }
        }
    }

    /// verify_proofs.py's walk, bit by bit, with SmtProof's strict parsing; `ok` false where
    /// SmtProof must revert.
    function _reference(bytes32 root, bytes32 key, bytes[] memory nodes)
        internal
        pure
        returns (bool ok, bool present, bytes32 leaf)
    {
        if (root == bytes32(0)) return (nodes.length == 0, false, bytes32(0));
        bytes32 expected = root;
        uint256 depth;
        for (uint256 index; index < nodes.length; ++index) {
            bool last = index == nodes.length - 1;
            if (sha256(nodes[index]) != expected) return (false, false, 0);
            (bool parsed, bool follows, bytes32 hash, uint256 length) = _referenceStep(nodes[index], key, depth);
            if (!parsed) return (false, false, 0);
            if (!follows) return (last, false, 0);
            depth += length;
            if (depth == 256) return (last, true, hash);
            expected = hash;
        }
        return (false, false, 0);
    }

    /// The cell of `node` towards `key`'s bit `depth`: whether it parses, whether its bits are
    /// the key's next bits, its hash and its length.
    function _referenceStep(bytes memory node, bytes32 key, uint256 depth)
        internal
        pure
        returns (bool parsed, bool follows, bytes32 hash, uint256 length)
    {
        RefCell memory cell = _referenceCell(node, key, depth);
        if (!cell.ok) return (false, false, 0, 0);
        length = cell.end - cell.start;
        follows = depth + length <= 256;
        for (uint256 i; i < length && follows; ++i) {
            follows = _bit(cell.path, cell.start + i) == uint256(key) >> (255 - (depth + i)) & 1;
        }
        return (true, follows, cell.hash, length);
    }

    struct RefCell {
        bool ok;
        uint256 start;
        uint256 end;
        bytes path;
        bytes32 hash;
    }

    function _referenceCell(bytes memory node, bytes32 key, uint256 depth) internal pure returns (RefCell memory none) {
        if (node.length < 38) return none;
        RefCell memory left = _referenceRange(node, 32);
        if (!left.ok) return none;
        left.hash = bytes32(_slice(node, 0, 32));
        uint256 leftEnd = 36 + left.path.length;
        uint8 tag = uint8(node[node.length - 1]);
        if (tag == 0) return node.length == leftEnd + 1 ? left : none;
        if (tag != 1 || node.length < leftEnd + 37) return none;
        RefCell memory right = _referenceRange(node, leftEnd);
        if (!right.ok || node.length != leftEnd + 4 + right.path.length + 33) return none;
        right.hash = bytes32(_slice(node, node.length - 33, node.length - 1));
        if (_bit(left.path, left.start) != 0 || _bit(right.path, right.start) != 1) return none;
        return uint256(key) >> (255 - depth) & 1 == 0 ? left : right;
    }

    /// The range at `offset` of `node` and the path after it (`ok` false if it does not fit).
    function _referenceRange(bytes memory node, uint256 offset) internal pure returns (RefCell memory cell) {
        cell.start = uint8(node[offset]) * 256 + uint8(node[offset + 1]);
        cell.end = uint8(node[offset + 2]) * 256 + uint8(node[offset + 3]);
        uint256 pathEnd = offset + 4 + (cell.end + 7) / 8;
        cell.ok = cell.start < 8 && cell.end > cell.start && pathEnd <= node.length;
        if (cell.ok) cell.path = _slice(node, offset + 4, pathEnd);
    }

    function _bit(bytes memory data, uint256 i) internal pure returns (uint256) {
        if (i / 8 >= data.length) return 0;
        return uint8(data[i / 8]) >> (7 - i % 8) & 1;
    }

    /// Changes each byte of each node in turn (xor 1, as verify_proofs.py does) and checks the
    /// walk fails with a hash mismatch at that node; returns how many bytes it changed.
    function _everyChangedByteFails(bytes32 root, bytes32 key, bytes[] memory nodes) internal view returns (uint256 n) {
        for (uint256 i; i < nodes.length; ++i) {
            bytes memory node = nodes[i];
            for (uint256 j; j < node.length; ++j) {
                node[j] ^= 0x01;
                try harness.verify(root, key, nodes) {
                    vm.assertTrue(false, string.concat("changed byte ", vm.toString(j), " of node ", vm.toString(i)));
                } catch (bytes memory reason) {
                    vm.assertTrue(_selector(reason) == SmtProof.ProofHashMismatch.selector, "the error");
                    uint256 index;
                    assembly ("memory-safe") {
                        index := mload(add(reason, 36))
                    }
                    vm.assertEq(index, i, "the node named");
                }
                node[j] ^= 0x01;
                ++n;
            }
        }
    }

    function _assertProofError(bytes memory reason) internal pure {
        bytes4 selector = _selector(reason);
        vm.assertTrue(
            selector == SmtProof.ProofNodesForEmptyTree.selector || selector == SmtProof.ProofHashMismatch.selector
                || selector == SmtProof.ProofNodeLength.selector || selector == SmtProof.ProofNodeTag.selector
                || selector == SmtProof.ProofCellRange.selector || selector == SmtProof.ProofCellsUnordered.selector
                || selector == SmtProof.ProofNodesAfterDivergence.selector
                || selector == SmtProof.ProofNodesAfterLeaf.selector || selector == SmtProof.ProofEndsEarly.selector,
            "a revert that is not one of SmtProof's errors"
        );
    }

    function _expectSingleNodeError(bytes memory node, bytes memory expected) internal {
        bytes32 root = sha256(node); // before expectRevert: the SHA-256 precompile is a call
        bytes[] memory nodes = _one(node);
        vm.expectRevert(expected);
        harness.verify(root, bytes32(0), nodes);
    }

    function _soft(bytes32 hash, uint256 start, uint256 end, bytes memory path) internal pure returns (bytes memory) {
        return abi.encodePacked(hash, _range(start, end), path, uint8(0));
    }

    /// A cell's range, `start ‖ end` (u16 BE each).
    function _range(uint256 start, uint256 end) internal pure returns (bytes memory) {
        require(start <= type(uint16).max && end <= type(uint16).max, "a range of u16s");
        // forge-lint: disable-next-line(unsafe-typecast)
        return abi.encodePacked(uint16(start), uint16(end));
    }

    /// The first `n` bytes of `word`.
    function _bytes(bytes32 word, uint256 n) internal pure returns (bytes memory out) {
        out = new bytes(n);
        for (uint256 i; i < n; ++i) {
            out[i] = word[i];
        }
    }

    function _selector(bytes memory reason) internal pure returns (bytes4 selector) {
        if (reason.length < 4) return bytes4(0);
        assembly ("memory-safe") {
            selector := mload(add(reason, 32))
        }
    }

    function _hard(
        bytes32 leftHash,
        uint16 leftStart,
        uint16 leftEnd,
        bytes memory leftPath,
        uint16 rightStart,
        uint16 rightEnd,
        bytes memory rightPath,
        bytes32 rightHash
    ) internal pure returns (bytes memory) {
        return abi.encodePacked(
            leftHash, leftStart, leftEnd, leftPath, rightStart, rightEnd, rightPath, rightHash, uint8(1)
        );
    }

    function _one(bytes memory node) internal pure returns (bytes[] memory nodes) {
        nodes = new bytes[](1);
        nodes[0] = node;
    }

    function _slice(bytes memory data, uint256 from, uint256 to) internal pure returns (bytes memory out) {
        out = new bytes(to - from);
        for (uint256 i; i < out.length; ++i) {
            out[i] = data[from + i];
        }
    }

    function _vector(uint256 i)
        internal
        view
        returns (bytes32 root, bytes32 key, bytes[] memory nodes, bool present, bytes32 leaf)
    {
        root = _hex32(vm.parseJsonString(vectors, _at(i, ".root")));
        key = _hex32(vm.parseJsonString(vectors, _at(i, ".key")));
        string[] memory hexNodes = vm.parseJsonStringArray(vectors, _at(i, ".nodes"));
        nodes = new bytes[](hexNodes.length);
        for (uint256 j; j < hexNodes.length; ++j) {
            nodes[j] = vm.parseBytes(string.concat("0x", hexNodes[j]));
        }
        // leaf: hex, or null for absence (forge gives JSON null as a single zero word)
        present = vm.parseJson(vectors, _at(i, ".leaf")).length != 32;
        if (present) leaf = _hex32(vm.parseJsonString(vectors, _at(i, ".leaf")));
    }

    /// The vectors' hex has no 0x.
    function _hex32(string memory text) internal pure returns (bytes32) {
        return vm.parseBytes32(string.concat("0x", text));
    }

    function _at(uint256 i, string memory field) internal pure returns (string memory) {
        return string.concat(".vectors[", vm.toString(i), "]", field);
    }

    function _count(string memory json, string memory path) internal view returns (uint256 n) {
        while (vm.keyExistsJson(json, string.concat(path, "[", vm.toString(n), "]"))) ++n;
    }
}
