// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./base/Test.sol";

contract SmokeTest is Test {
    function test_sign_recovers() public pure {
        uint256 key = 0xA11CE;
        bytes32 digest = keccak256("walproof");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        assertEq(ecrecover(digest, v, r, s), vm.addr(key));
    }

    function test_reads_vectors() public view {
        string memory json = vm.readFile("../crates/committer/testdata/proof_vectors.json");
        bytes32 root = vm.parseJsonBytes32(json, ".vectors[1].root");
        assertEq(root, 0x8843307febbf2e946c4f1c322cfaffe55bc4d0bc14bfcd790da937707f9b8d13);
    }

    function testFuzz_bound(uint256 x) public pure {
        uint256 y = bound(x, 3, 9);
        assertTrue(y >= 3 && y <= 9);
    }
}
