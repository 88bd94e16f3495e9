// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./base/Test.sol";
import {RowHash} from "../src/lib/RowHash.sol";

/// @notice RowHash against the hash vectors crates/core pins (and verify_vectors.py recomputes).
contract RowHashTest is Test {
    string internal constant VECTORS = "../crates/core/testdata/vectors.json";
    string internal json;

    function setUp() public {
        json = vm.readFile(VECTORS);
    }

    function test_column_hash_matches_every_core_vector() public view {
        uint256 n = _count(".column_hash");
        assertTrue(n >= 9);
        for (uint256 i; i < n; ++i) {
            string memory item = string.concat(".column_hash[", vm.toString(i), "]");
            assertEq(_columnHash(item), vm.parseJsonBytes32(json, string.concat(item, ".hash")));
        }
    }

    function test_row_key_matches_every_core_vector() public view {
        uint256 n = _count(".row_key");
        assertTrue(n >= 3);
        for (uint256 i; i < n; ++i) {
            string memory item = string.concat(".row_key[", vm.toString(i), "]");
            string[] memory texts = vm.parseJsonStringArray(json, string.concat(item, ".key"));
            bytes[] memory key = new bytes[](texts.length);
            for (uint256 j; j < texts.length; ++j) {
                key[j] = bytes(texts[j]);
            }
            bytes32 got = RowHash.rowKey(
                bytes(vm.parseJsonString(json, string.concat(item, ".schema"))),
                bytes(vm.parseJsonString(json, string.concat(item, ".table"))),
                key
            );
            assertEq(got, vm.parseJsonBytes32(json, string.concat(item, ".hash")));
        }
    }

    function test_row_leaf_matches_every_core_vector() public view {
        uint256 n = _count(".row_leaf");
        assertTrue(n >= 2);
        for (uint256 i; i < n; ++i) {
            string memory item = string.concat(".row_leaf[", vm.toString(i), "]");
            uint256 columns = _count(string.concat(item, ".columns"));
            bytes[] memory names = new bytes[](columns);
            bytes32[] memory hashes = new bytes32[](columns);
            for (uint256 j; j < columns; ++j) {
                string memory column = string.concat(item, ".columns[", vm.toString(j), "]");
                names[j] = bytes(vm.parseJsonString(json, string.concat(column, ".name")));
                hashes[j] = _columnHash(column);
            }
            assertEq(RowHash.rowLeaf(names, hashes), vm.parseJsonBytes32(json, string.concat(item, ".hash")));
        }
    }

    function test_row_leaf_needs_one_hash_per_column() public {
        vm.expectRevert(abi.encodeWithSelector(RowHash.RowHashColumnCount.selector, 2, 1));
        this.rowLeaf(new bytes[](2), new bytes32[](1));
    }

    /// The Bridge's fixed-layout helpers are the generic ones with the withdrawal table's shape.
    function testFuzz_withdrawal_key_and_leaf_are_the_generic_ones(
        bytes memory schema,
        bytes memory table,
        bytes memory id,
        bytes memory recipient,
        bytes memory amount
    ) public pure {
        bytes[] memory key = new bytes[](1);
        key[0] = id;
        assertEq(RowHash.withdrawalKey(schema, table, id), RowHash.rowKey(schema, table, key));

        bytes[] memory names = new bytes[](3);
        (names[0], names[1], names[2]) = ("id", "recipient", "amount");
        bytes32[] memory hashes = new bytes32[](3);
        hashes[0] = RowHash.columnHash(20, id);
        hashes[1] = RowHash.columnHash(25, recipient);
        hashes[2] = RowHash.columnHash(1700, amount);
        assertEq(RowHash.withdrawalLeaf(id, recipient, amount), RowHash.rowLeaf(names, hashes));
    }

    /// The committer's own keys and leaves for withdrawal rows (the Rust-generated fixture).
    function test_withdrawal_key_and_leaf_match_the_committer() public view {
        string memory fixture = vm.readFile("test/fixtures/withdrawal_proof.json");
        bytes memory schema = bytes(vm.parseJsonString(fixture, ".schema"));
        bytes memory table = bytes(vm.parseJsonString(fixture, ".table"));
        uint256 checked;
        for (uint256 i; vm.keyExistsJson(fixture, string.concat(".proofs[", vm.toString(i), "]")); ++i) {
            string memory item = string.concat(".proofs[", vm.toString(i), "]");
            if (keccak256(bytes(vm.parseJsonString(fixture, string.concat(item, ".table")))) != keccak256(table)) {
                continue;
            }
            bytes memory id = bytes(vm.parseJsonString(fixture, string.concat(item, ".id")));
            assertEq(
                RowHash.withdrawalKey(schema, table, id), vm.parseJsonBytes32(fixture, string.concat(item, ".key"))
            );
            if (!vm.parseJsonBool(fixture, string.concat(item, ".present"))) continue;
            bytes32 leaf = RowHash.withdrawalLeaf(
                id,
                bytes(vm.parseJsonString(fixture, string.concat(item, ".recipient"))),
                bytes(vm.parseJsonString(fixture, string.concat(item, ".amount")))
            );
            assertEq(leaf, vm.parseJsonBytes32(fixture, string.concat(item, ".leaf")));
            ++checked;
        }
        assertTrue(checked >= 5);
    }

    function rowLeaf(bytes[] calldata names, bytes32[] calldata hashes) external pure returns (bytes32) {
        return RowHash.rowLeaf(names, hashes);
    }

    /// `H(col)` of the vector object at `item` (`value` null: SQL NULL).
    function _columnHash(string memory item) internal view returns (bytes32) {
        uint32 typeOid = uint32(vm.parseJsonUint(json, string.concat(item, ".type_oid")));
        string memory value = string.concat(item, ".value");
        // forge encodes JSON null as one zero word; a string (even "") as offset, length, data.
        if (vm.parseJson(json, value).length == 32) return RowHash.nullColumnHash(typeOid);
        return RowHash.columnHash(typeOid, bytes(vm.parseJsonString(json, value)));
    }

    /// The length of the JSON array at `path`.
    function _count(string memory path) internal view returns (uint256 n) {
        while (vm.keyExistsJson(json, string.concat(path, "[", vm.toString(n), "]"))) ++n;
    }
}
