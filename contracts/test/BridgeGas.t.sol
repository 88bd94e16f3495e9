// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {BridgeSetup} from "./Bridge.t.sol";
import {Bridge, RootAttestation, WithdrawalApproval} from "../src/Bridge.sol";

/// @notice What the bridge's calls cost, scenario by scenario, each the one call a test
/// measures (recipients exist already; a new ETH recipient costs 25,000 more). Under
/// `--isolate`, which `--gas-report` implies, each call is a transaction of its own and the
/// figure is its whole gas: 21,000 + calldata + execution. Without it, the figure is execution
/// gas with the contracts' accounts and storage cooled first. `forge test --match-contract
/// BridgeGas --isolate -vv` prints them; each test also bounds its figure (in either mode), so a
/// change that makes a call much dearer fails here.
contract BridgeGasTest is BridgeSetup {
    event log_named_uint(string key, uint256 val);

    address internal constant ALICE = address(0xA11CE5);
    address internal constant ANVIL1 = 0x70997970C51812dc3A010C7d01b50e0d17dc79C8;

    function setUp() public override {
        super.setUp();
        _commit(bridge, 1_000, keccak256("an earlier root")); // lastCommitLsn already set
        // Recipients that exist already: paying ETH to an empty account costs 25,000 more.
        vm.deal(ALICE, 1);
        vm.deal(ANVIL1, 1);
        // Id 512 paid in an earlier transaction (a slot written in the same transaction would
        // be priced as dirty, far cheaper). The fixture's ids (below 256) share no word with it.
        WithdrawalApproval memory w = _approval(512, ALICE, 1 ether);
        bridge.withdraw(w, _approve(bridge, w));
    }

    function test_gas_commit_one_root_with_two_signatures() public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _batch(1, 2);
        uint256 gas = _measure(address(bridge), abi.encodeCall(Bridge.commitRoots, (roots, signatures)));
        emit log_named_uint("commitRoots, 1 root, 2 signatures", gas);
        vm.assertLt(gas, 86_000, "commitRoots, 1 root");
    }

    function test_gas_commit_one_root_with_three_signatures() public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _batch(1, 3);
        uint256 gas = _measure(address(bridge), abi.encodeCall(Bridge.commitRoots, (roots, signatures)));
        emit log_named_uint("commitRoots, 1 root, 3 signatures", gas);
        vm.assertLt(gas, 96_000, "commitRoots, 1 root, 3 signatures");
    }

    function test_gas_commit_a_batch_of_ten_roots_with_two_signatures_each() public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _batch(10, 2);
        uint256 gas = _measure(address(bridge), abi.encodeCall(Bridge.commitRoots, (roots, signatures)));
        emit log_named_uint("commitRoots, 10 roots, 2 signatures each", gas);
        emit log_named_uint("commitRoots, 10 roots, per root", gas / 10);
        vm.assertLt(gas / 10, 48_000, "commitRoots per root in a batch");
    }

    function test_gas_withdraw_eth_first_id_of_a_word() public {
        WithdrawalApproval memory w = _approval(1024, ALICE, 1 ether);
        uint256 gas = _measure(address(bridge), abi.encodeCall(Bridge.withdraw, (w, _approve(bridge, w))));
        emit log_named_uint("withdraw, ETH, 2 signatures, first id of a paid-bitmap word", gas);
        vm.assertLt(gas, 90_000, "withdraw ETH");
    }

    function test_gas_withdraw_eth_next_id() public {
        WithdrawalApproval memory w = _approval(513, ALICE, 1 ether); // shares id 512's word
        uint256 gas = _measure(address(bridge), abi.encodeCall(Bridge.withdraw, (w, _approve(bridge, w))));
        emit log_named_uint("withdraw, ETH, 2 signatures, next id (word already written)", gas);
        vm.assertLt(gas, 72_000, "withdraw ETH, next id");
    }

    function test_gas_withdraw_token() public {
        WithdrawalApproval memory w = _approval(1024, ALICE, 1 ether);
        uint256 gas = _measure(address(tokenBridge), abi.encodeCall(Bridge.withdraw, (w, _approve(tokenBridge, w))));
        emit log_named_uint("withdraw, TestToken, 2 signatures, first id of a word", gas);
        vm.assertLt(gas, 115_000, "withdraw token");
    }

    function test_gas_withdraw_with_proof_eth_six_nodes() public {
        _commitFixtureRoots(bridge);
        Proven memory p = _proof(W42_AT_1);
        assertEq(p.nodes.length, 6);
        uint256 gas = _measure(
            address(bridge),
            abi.encodeCall(Bridge.withdrawWithProof, (p.commitLsn, p.id, p.recipient, p.amount, p.nodes))
        );
        emit log_named_uint("withdrawWithProof, ETH, 6-node proof", gas);
        vm.assertLt(gas, 130_000, "withdrawWithProof, 6 nodes");
    }

    function test_gas_withdraw_with_proof_token_seven_nodes() public {
        _commitFixtureRoots(tokenBridge);
        Proven memory p = _proof(W7_AT_1);
        assertEq(p.nodes.length, 7);
        uint256 gas = _measure(
            address(tokenBridge),
            abi.encodeCall(Bridge.withdrawWithProof, (p.commitLsn, p.id, p.recipient, p.amount, p.nodes))
        );
        emit log_named_uint("withdrawWithProof, TestToken, 7-node proof", gas);
        vm.assertLt(gas, 160_000, "withdrawWithProof, 7 nodes");
    }

    /// The gas of calling `target` with `data` (see the contract's doc); reverts bubble up.
    function _measure(address target, bytes memory data) internal returns (uint256 gas) {
        vm.cool(target);
        vm.cool(address(registry));
        vm.cool(address(token));
        vm.cool(ALICE);
        vm.cool(ANVIL1);
        uint256 before = gasleft();
        (bool ok, bytes memory reason) = target.call(data);
        gas = before - gasleft();
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(reason, 32), mload(reason))
            }
        }
    }

    /// `count` roots above the earlier one, each signed by the first `signers` validators.
    function _batch(uint256 count, uint256 signers)
        internal
        view
        returns (RootAttestation[] memory roots, bytes[][] memory signatures)
    {
        roots = new RootAttestation[](count);
        signatures = new bytes[][](count);
        uint256[] memory keys = signers == 2 ? _keys(K1, K2) : _keys(K1, K2, K3);
        for (uint64 i; i < count; ++i) {
            roots[i] = _root(2_000 + i, keccak256(abi.encode("root", i)));
            signatures[i] = _signSorted(_rootDigest(bridge, roots[i]), keys);
        }
    }
}
