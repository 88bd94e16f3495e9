// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Validators} from "./base/Validators.sol";
import {Bridge, RootAttestation, WithdrawalApproval} from "../src/Bridge.sol";
import {TestToken} from "../src/TestToken.sol";
import {RowText} from "../src/lib/RowText.sol";
import {SmtProof} from "../src/lib/SmtProof.sol";

/// @dev Reverts on every payment.
contract RevertingRecipient {
    receive() external payable {
        revert("no");
    }
}

/// @dev Calls the bridge again, with `payload`, from inside the payment it receives.
contract ReentrantRecipient {
    address internal bridge;
    bytes internal payload;
    bool public reentered;
    bool public reentrySucceeded;
    bytes public reentryError;

    function arm(address bridge_, bytes calldata payload_) external {
        (bridge, payload) = (bridge_, payload_);
    }

    receive() external payable {
        if (reentered) return;
        reentered = true;
        (reentrySucceeded, reentryError) = bridge.call(payload);
    }
}

/// @dev An ERC-20 whose transfer returns false.
contract FalseToken {
    function transfer(address, uint256) external pure returns (bool) {
        return false;
    }
}

/// @dev An ERC-20 whose transfer returns nothing (as USDT's does).
contract SilentToken {
    mapping(address => uint256) public balanceOf;

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function transfer(address to, uint256 amount) external {
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
    }
}

/// @notice The registry, three registered validators, an ETH bridge and a TestToken bridge
/// (threshold 2), and the committer's fixture of withdrawal rows.
abstract contract BridgeSetup is Validators {
    uint256 internal constant K1 = 0x1001;
    uint256 internal constant K2 = 0x1002;
    uint256 internal constant K3 = 0x1003;
    string internal constant SCHEMA = "public";
    string internal constant TABLE = "walproof_withdrawals";

    bytes32 internal constant ROOT_TYPEHASH =
        keccak256("RootAttestation(uint64 commitLsn,bytes32 root,bytes32 ledgerHash)");
    bytes32 internal constant APPROVAL_TYPEHASH =
        keccak256("WithdrawalApproval(uint256 id,address recipient,uint256 amount,uint64 commitLsn)");

    Bridge internal bridge; // pays ETH
    Bridge internal tokenBridge; // pays TestToken
    TestToken internal token;
    string internal fixture;

    event RootCommitted(uint64 indexed commitLsn, bytes32 indexed root, bytes32 ledgerHash, uint256 signers);
    event WithdrawalPaid(
        uint256 indexed id, address indexed recipient, uint256 amount, uint64 indexed commitLsn, bool byProof
    );
    event ThresholdSet(uint256 threshold);

    function setUp() public virtual {
        _deployRegistry();
        _register(K1);
        _register(K2);
        _register(K3);
        bridge = new Bridge(OWNER, registry, 2, address(0), SCHEMA, TABLE);
        vm.deal(address(this), 1000 ether);
        (bool ok,) = address(bridge).call{value: 1000 ether}("");
        assertTrue(ok);
        token = new TestToken(OWNER);
        tokenBridge = new Bridge(OWNER, registry, 2, address(token), SCHEMA, TABLE);
        vm.prank(OWNER);
        token.mint(address(tokenBridge), 1000 ether);
        fixture = vm.readFile("test/fixtures/withdrawal_proof.json");
    }

    // ------------------------------------------------------------------ signing

    function _keys(uint256 a, uint256 b) internal pure returns (uint256[] memory keys) {
        keys = new uint256[](2);
        (keys[0], keys[1]) = (a, b);
    }

    function _keys(uint256 a, uint256 b, uint256 c) internal pure returns (uint256[] memory keys) {
        keys = new uint256[](3);
        (keys[0], keys[1], keys[2]) = (a, b, c);
    }

    function _rootDigest(Bridge b, RootAttestation memory a) internal view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(ROOT_TYPEHASH, a.commitLsn, a.root, a.ledgerHash));
        return _digest(_separator(block.chainid, address(b)), structHash);
    }

    function _approvalDigest(Bridge b, WithdrawalApproval memory w) internal view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(APPROVAL_TYPEHASH, w.id, w.recipient, w.amount, w.commitLsn));
        return _digest(_separator(block.chainid, address(b)), structHash);
    }

    /// Signatures of `digest` by `keys`, sorted by signer as the bridge wants them.
    function _signSorted(bytes32 digest, uint256[] memory keys) internal pure returns (bytes[] memory signatures) {
        uint256[] memory sorted = _sortByAddress(keys);
        signatures = new bytes[](sorted.length);
        for (uint256 i; i < sorted.length; ++i) {
            signatures[i] = _sign(sorted[i], digest);
        }
    }

    function _sortByAddress(uint256[] memory keys) internal pure returns (uint256[] memory sorted) {
        sorted = new uint256[](keys.length);
        for (uint256 i; i < keys.length; ++i) {
            sorted[i] = keys[i];
        }
        for (uint256 i = 1; i < sorted.length; ++i) {
            for (uint256 j = i; j > 0 && vm.addr(sorted[j - 1]) > vm.addr(sorted[j]); --j) {
                (sorted[j - 1], sorted[j]) = (sorted[j], sorted[j - 1]);
            }
        }
    }

    function _root(uint64 commitLsn, bytes32 root) internal pure returns (RootAttestation memory) {
        return
            RootAttestation({commitLsn: commitLsn, root: root, ledgerHash: keccak256(abi.encode("ledger", commitLsn))});
    }

    /// Commits one root to `b`, signed by K1 and K2.
    function _commit(Bridge b, uint64 commitLsn, bytes32 root) internal {
        RootAttestation[] memory roots = new RootAttestation[](1);
        roots[0] = _root(commitLsn, root);
        bytes[][] memory signatures = new bytes[][](1);
        signatures[0] = _signSorted(_rootDigest(b, roots[0]), _keys(K1, K2));
        b.commitRoots(roots, signatures);
    }

    function _approval(uint256 id, address recipient, uint256 amount)
        internal
        pure
        returns (WithdrawalApproval memory)
    {
        return WithdrawalApproval({id: id, recipient: recipient, amount: amount, commitLsn: 0x16_B374_D848});
    }

    function _approve(Bridge b, WithdrawalApproval memory w) internal view returns (bytes[] memory) {
        return _signSorted(_approvalDigest(b, w), _keys(K1, K3));
    }

    // ------------------------------------------------------------------ fixture

    struct Proven {
        uint64 commitLsn;
        bytes32 root;
        string id;
        string recipient;
        string amount;
        bytes32 key;
        bytes32 leaf;
        bytes[] nodes;
    }

    /// Fixture proof `i` (see test/fixtures/withdrawal_proof.json).
    function _proof(uint256 i) internal view returns (Proven memory p) {
        string memory item = string.concat(".proofs[", vm.toString(i), "]");
        p.commitLsn = uint64(vm.parseJsonUint(fixture, string.concat(item, ".commit_lsn")));
        p.root = vm.parseJsonBytes32(fixture, string.concat(item, ".root"));
        p.id = vm.parseJsonString(fixture, string.concat(item, ".id"));
        if (vm.keyExistsJson(fixture, string.concat(item, ".recipient"))) {
            p.recipient = vm.parseJsonString(fixture, string.concat(item, ".recipient"));
            p.amount = vm.parseJsonString(fixture, string.concat(item, ".amount"));
        }
        p.key = vm.parseJsonBytes32(fixture, string.concat(item, ".key"));
        p.leaf = vm.parseJsonBytes32(fixture, string.concat(item, ".leaf"));
        p.nodes = vm.parseJsonBytesArray(fixture, string.concat(item, ".nodes"));
    }

    // fixture proofs by index
    uint256 internal constant W42_AT_1 = 0;
    uint256 internal constant W7_AT_1 = 1;
    uint256 internal constant W43_AT_1 = 2; // amount 2^256
    uint256 internal constant W44_AT_1 = 3; // amount 2^256 - 1
    uint256 internal constant W45_ABSENT_AT_1 = 4;
    uint256 internal constant ACCOUNT42_AT_1 = 5;
    uint256 internal constant W45_AT_2 = 6;
    uint256 internal constant W42_AT_2 = 7;
    uint256 internal constant W3_ABSENT_AT_2 = 8;

    function _commitFixtureRoots(Bridge b) internal {
        for (uint256 i; i < 2; ++i) {
            string memory item = string.concat(".roots[", vm.toString(i), "]");
            _commit(
                b,
                uint64(vm.parseJsonUint(fixture, string.concat(item, ".commit_lsn"))),
                vm.parseJsonBytes32(fixture, string.concat(item, ".root"))
            );
        }
    }

    function _withdrawWithProof(Bridge b, Proven memory p) internal {
        b.withdrawWithProof(p.commitLsn, p.id, p.recipient, p.amount, p.nodes);
    }
}

/// @notice Roots: threshold signatures, signature rules, strictly increasing LSNs.
contract BridgeRootsTest is BridgeSetup {
    function test_a_root_signed_by_two_of_three_validators_is_committed() public {
        RootAttestation[] memory roots = new RootAttestation[](1);
        roots[0] = _root(100, keccak256("root"));
        bytes[][] memory signatures = new bytes[][](1);
        signatures[0] = _signSorted(_rootDigest(bridge, roots[0]), _keys(K2, K3));

        vm.expectEmit(address(bridge));
        emit RootCommitted(100, roots[0].root, roots[0].ledgerHash, 2);
        vm.prank(address(0xCAFE)); // anyone relays
        bridge.commitRoots(roots, signatures);

        (bytes32 root, bool known) = bridge.rootOf(100);
        assertEq(root, keccak256("root"));
        assertTrue(known);
        assertEq(bridge.lastCommitLsn(), 100);
        (root, known) = bridge.rootOf(99);
        assertEq(root, bytes32(0));
        assertFalse(known);
    }

    function test_a_root_signed_by_all_three_counts_three_signers() public {
        RootAttestation[] memory roots = new RootAttestation[](1);
        roots[0] = _root(100, keccak256("root"));
        bytes[][] memory signatures = new bytes[][](1);
        signatures[0] = _signSorted(_rootDigest(bridge, roots[0]), _keys(K1, K2, K3));
        vm.expectEmit(address(bridge));
        emit RootCommitted(100, roots[0].root, roots[0].ledgerHash, 3);
        bridge.commitRoots(roots, signatures);
    }

    function test_a_batch_commits_every_root_in_order() public {
        RootAttestation[] memory roots = new RootAttestation[](3);
        bytes[][] memory signatures = new bytes[][](3);
        for (uint64 i; i < 3; ++i) {
            roots[i] = _root(100 + 10 * i, keccak256(abi.encode(i)));
            signatures[i] = _signSorted(_rootDigest(bridge, roots[i]), _keys(K1, K2));
        }
        for (uint256 i; i < 3; ++i) {
            vm.expectEmit(address(bridge));
            emit RootCommitted(roots[i].commitLsn, roots[i].root, roots[i].ledgerHash, 2);
        }
        bridge.commitRoots(roots, signatures);
        for (uint256 i; i < 3; ++i) {
            (bytes32 root, bool known) = bridge.rootOf(roots[i].commitLsn);
            assertEq(root, roots[i].root);
            assertTrue(known);
        }
        assertEq(bridge.lastCommitLsn(), 120);
    }

    function test_the_empty_trees_root_is_known_as_zero() public {
        _commit(bridge, 100, bytes32(0));
        (bytes32 root, bool known) = bridge.rootOf(100);
        assertEq(root, bytes32(0));
        assertTrue(known);
    }

    function test_roots_and_signature_sets_pair_up() public {
        RootAttestation[] memory roots = new RootAttestation[](2);
        vm.expectRevert(abi.encodeWithSelector(Bridge.LengthMismatch.selector, 2, 1));
        bridge.commitRoots(roots, new bytes[][](1));
    }

    // ------------------------------------------------------------------- LSNs

    function test_a_stale_or_equal_lsn_is_rejected() public {
        _commit(bridge, 100, keccak256("a"));
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        vm.expectRevert(abi.encodeWithSelector(Bridge.LsnNotIncreasing.selector, 100, 100));
        bridge.commitRoots(roots, signatures);
        (roots, signatures) = _signedBatch(_lsns(99));
        vm.expectRevert(abi.encodeWithSelector(Bridge.LsnNotIncreasing.selector, 99, 100));
        bridge.commitRoots(roots, signatures);
    }

    function test_lsn_zero_is_never_committed() public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(0));
        vm.expectRevert(abi.encodeWithSelector(Bridge.LsnNotIncreasing.selector, 0, 0));
        bridge.commitRoots(roots, signatures);
    }

    function test_lsns_must_increase_within_a_batch_and_a_bad_batch_commits_nothing() public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100, 100));
        vm.expectRevert(abi.encodeWithSelector(Bridge.LsnNotIncreasing.selector, 100, 100));
        bridge.commitRoots(roots, signatures);

        (roots, signatures) = _signedBatch(_lsns(100, 200, 150));
        vm.expectRevert(abi.encodeWithSelector(Bridge.LsnNotIncreasing.selector, 150, 200));
        bridge.commitRoots(roots, signatures);
        (, bool known) = bridge.rootOf(100);
        assertFalse(known);
        assertEq(bridge.lastCommitLsn(), 0);
    }

    function testFuzz_a_root_commits_only_above_the_last(uint64 first, uint64 second) public {
        vm.assume(first > 0);
        _commit(bridge, first, keccak256("first"));
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(second));
        if (second <= first) {
            vm.expectRevert(abi.encodeWithSelector(Bridge.LsnNotIncreasing.selector, second, first));
        }
        bridge.commitRoots(roots, signatures);
        assertEq(bridge.lastCommitLsn(), second > first ? second : first);
    }

    // ------------------------------------------------------------ signature sets

    function test_one_signature_is_below_a_threshold_of_two() public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        signatures[0] = _one(signatures[0][0]);
        vm.expectRevert(abi.encodeWithSelector(Bridge.BelowThreshold.selector, 1, 2));
        bridge.commitRoots(roots, signatures);
        signatures[0] = new bytes[](0);
        vm.expectRevert(abi.encodeWithSelector(Bridge.BelowThreshold.selector, 0, 2));
        bridge.commitRoots(roots, signatures);
    }

    /// With `n` registered keys and a threshold `t`, any `k` of them commit when `k` ≥ `t`.
    function testFuzz_any_threshold_of_registered_keys_commits(uint256 n, uint256 t, uint256 k) public {
        n = bound(n, 3, 8);
        t = bound(t, 1, n);
        k = bound(k, 0, n);
        uint256[] memory keys = new uint256[](k);
        for (uint256 i = 3; i < n; ++i) {
            _register(0x1001 + i);
        }
        for (uint256 i; i < k; ++i) {
            keys[i] = 0x1001 + (n - 1 - i); // any k of them: here the last ones registered
        }
        vm.prank(OWNER);
        bridge.setThreshold(t);

        RootAttestation[] memory roots = new RootAttestation[](1);
        roots[0] = _root(100, keccak256("root"));
        bytes[][] memory signatures = new bytes[][](1);
        signatures[0] = _signSorted(_rootDigest(bridge, roots[0]), keys);
        if (k < t) vm.expectRevert(abi.encodeWithSelector(Bridge.BelowThreshold.selector, k, t));
        bridge.commitRoots(roots, signatures);
        (, bool known) = bridge.rootOf(100);
        assertEq(known, k >= t);
    }

    function testFuzz_a_repeated_signature_is_rejected(uint256 which) public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        bytes[] memory three = _signSorted(_rootDigest(bridge, roots[0]), _keys(K1, K2, K3));
        which = bound(which, 0, 2);
        // the signature at `which` twice in a row
        bytes[] memory repeated = new bytes[](4);
        for (uint256 i; i < 4; ++i) {
            repeated[i] = three[i <= which ? i : i - 1];
        }
        signatures[0] = repeated;
        address signer = _recover(_rootDigest(bridge, roots[0]), three[which]);
        vm.expectRevert(abi.encodeWithSelector(Bridge.SignersNotAscending.selector, which + 1, signer, signer));
        bridge.commitRoots(roots, signatures);
    }

    function test_signatures_out_of_signer_order_are_rejected() public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        bytes32 digest = _rootDigest(bridge, roots[0]);
        (bytes memory low, bytes memory high) = (signatures[0][0], signatures[0][1]);
        signatures[0] = _two(high, low);
        vm.expectRevert(
            abi.encodeWithSelector(
                Bridge.SignersNotAscending.selector, 1, _recover(digest, low), _recover(digest, high)
            )
        );
        bridge.commitRoots(roots, signatures);
    }

    /// Of the six orders of three signatures only the ascending one commits; any other fails
    /// where the order first goes down.
    function testFuzz_only_the_ascending_order_of_signers_commits(uint256 permutation) public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        bytes32 digest = _rootDigest(bridge, roots[0]);
        bytes[] memory sorted = _signSorted(digest, _keys(K1, K2, K3));
        uint8[3][6] memory orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        uint8[3] memory order = orders[bound(permutation, 0, 5)];
        signatures[0] = new bytes[](3);
        for (uint256 i; i < 3; ++i) {
            signatures[0][i] = sorted[order[i]];
        }
        for (uint256 i = 1; i < 3; ++i) {
            if (order[i] < order[i - 1]) {
                address signer = _recover(digest, signatures[0][i]);
                address previous = _recover(digest, signatures[0][i - 1]);
                vm.expectRevert(abi.encodeWithSelector(Bridge.SignersNotAscending.selector, i, signer, previous));
                break;
            }
        }
        bridge.commitRoots(roots, signatures);
    }

    function testFuzz_a_key_that_never_registered_does_not_count(uint256 stranger) public {
        stranger = bound(stranger, 1, N - 1);
        vm.assume(stranger != K1 && stranger != K2 && stranger != K3);
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        signatures[0] = _signSorted(_rootDigest(bridge, roots[0]), _keys(K1, K2, stranger));
        vm.expectRevert(abi.encodeWithSelector(Bridge.SignerNotActive.selector, vm.addr(stranger)));
        bridge.commitRoots(roots, signatures);
    }

    function test_a_revoked_key_does_not_count_whoever_revoked_it() public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        vm.prank(vm.addr(K1)); // by itself
        registry.revoke(vm.addr(K1));
        vm.expectRevert(abi.encodeWithSelector(Bridge.SignerNotActive.selector, vm.addr(K1)));
        bridge.commitRoots(roots, signatures);

        signatures[0] = _signSorted(_rootDigest(bridge, roots[0]), _keys(K2, K3));
        vm.prank(OWNER); // by the owner
        registry.revoke(vm.addr(K3));
        vm.expectRevert(abi.encodeWithSelector(Bridge.SignerNotActive.selector, vm.addr(K3)));
        bridge.commitRoots(roots, signatures);
    }

    function testFuzz_signatures_for_another_chain_do_not_count(uint64 chainId) public {
        vm.assume(chainId != block.chainid);
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        bytes32 structHash =
            keccak256(abi.encode(ROOT_TYPEHASH, roots[0].commitLsn, roots[0].root, roots[0].ledgerHash));
        signatures[0] = _signSorted(_digest(_separator(chainId, address(bridge)), structHash), _keys(K1, K2));
        _expectNotActive(_rootDigest(bridge, roots[0]), signatures[0][0]);
        bridge.commitRoots(roots, signatures);
    }

    function testFuzz_signatures_for_another_verifying_contract_do_not_count(address other) public {
        vm.assume(other != address(bridge));
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        bytes32 structHash =
            keccak256(abi.encode(ROOT_TYPEHASH, roots[0].commitLsn, roots[0].root, roots[0].ledgerHash));
        signatures[0] = _signSorted(_digest(_separator(block.chainid, other), structHash), _keys(K1, K2));
        _expectNotActive(_rootDigest(bridge, roots[0]), signatures[0][0]);
        bridge.commitRoots(roots, signatures);
    }

    function test_signatures_for_another_bridge_of_the_same_registry_do_not_count() public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        tokenBridge.commitRoots(roots, _signedFor(tokenBridge, roots)); // fine where they belong
        signatures = _signedFor(tokenBridge, roots);
        _expectNotActive(_rootDigest(bridge, roots[0]), signatures[0][0]);
        bridge.commitRoots(roots, signatures);
    }

    function test_signatures_of_another_root_or_of_an_approval_do_not_count() public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        roots[0].root = keccak256("a root the validators did not sign");
        _expectNotActive(_rootDigest(bridge, roots[0]), signatures[0][0]);
        bridge.commitRoots(roots, signatures);

        // an approval's digest, same domain: a different type, so a different digest
        roots[0].root = keccak256(abi.encode(0));
        WithdrawalApproval memory w = _approval(100, address(1), 1);
        signatures[0] = _signSorted(_approvalDigest(bridge, w), _keys(K1, K2));
        _expectNotActive(_rootDigest(bridge, roots[0]), signatures[0][0]);
        bridge.commitRoots(roots, signatures);
    }

    function testFuzz_a_high_s_signature_is_rejected(uint256 which) public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        which = bound(which, 0, 1);
        signatures[0][which] = _highS(signatures[0][which]);
        // the malleated form recovers the same key: only the s check stops it
        assertEq(
            _recover(_rootDigest(bridge, roots[0]), signatures[0][which]),
            _recover(_rootDigest(bridge, roots[0]), _lowS(signatures[0][which]))
        );
        vm.expectRevert(abi.encodeWithSelector(Bridge.HighS.selector, which));
        bridge.commitRoots(roots, signatures);
    }

    function testFuzz_a_v_other_than_27_or_28_is_rejected(uint8 v, uint256 which) public {
        vm.assume(v != 27 && v != 28);
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        which = bound(which, 0, 1);
        signatures[0][which][64] = bytes1(v);
        vm.expectRevert(abi.encodeWithSelector(Bridge.BadSignature.selector, which));
        bridge.commitRoots(roots, signatures);
    }

    function testFuzz_a_signature_that_is_not_65_bytes_is_rejected(uint256 length, uint256 which) public {
        length = bound(length, 0, 200);
        vm.assume(length != 65);
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        which = bound(which, 0, 1);
        bytes memory resized = new bytes(length);
        for (uint256 i; i < length && i < 65; ++i) {
            resized[i] = signatures[0][which][i];
        }
        signatures[0][which] = resized;
        vm.expectRevert(abi.encodeWithSelector(Bridge.BadSignature.selector, which));
        bridge.commitRoots(roots, signatures);
    }

    function test_a_signature_that_recovers_no_key_is_rejected() public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        bytes memory zeroR = signatures[0][1];
        for (uint256 i; i < 32; ++i) {
            zeroR[i] = 0;
        }
        vm.expectRevert(abi.encodeWithSelector(Bridge.BadSignature.selector, 1));
        bridge.commitRoots(roots, signatures);
    }

    // ---------------------------------------------------------------- threshold

    function test_only_the_owner_sets_the_threshold_and_never_to_zero() public {
        vm.expectRevert(abi.encodeWithSelector(Bridge.NotOwner.selector, address(this)));
        bridge.setThreshold(3);
        vm.expectRevert(abi.encodeWithSelector(Bridge.InvalidThreshold.selector, 0));
        vm.prank(OWNER);
        bridge.setThreshold(0);

        vm.expectEmit(address(bridge));
        emit ThresholdSet(3);
        vm.prank(OWNER);
        bridge.setThreshold(3);
        assertEq(bridge.threshold(), 3);
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        vm.expectRevert(abi.encodeWithSelector(Bridge.BelowThreshold.selector, 2, 3));
        bridge.commitRoots(roots, signatures);
    }

    function test_a_bridge_is_not_deployed_with_a_zero_threshold_or_an_asset_without_code() public {
        vm.expectRevert(abi.encodeWithSelector(Bridge.InvalidThreshold.selector, 0));
        new Bridge(OWNER, registry, 0, address(0), SCHEMA, TABLE);
        vm.expectRevert(abi.encodeWithSelector(Bridge.AssetHasNoCode.selector, address(0xA55E7)));
        new Bridge(OWNER, registry, 1, address(0xA55E7), SCHEMA, TABLE);
    }

    // ----------------------------------------------------------------- EIP-712

    /// The pinned vectors of crates/validator/testdata/attestation_vectors.json (built with
    /// cast and checked with eth-account): type hash, domain separator, digest, and the
    /// vector's signature recovering its address.
    function test_root_attestation_digests_match_the_validators_pinned_vectors() public {
        _checkVector(
            31337,
            0x5FbDB2315678afecb367f032d93F642f64180aa3,
            RootAttestation({
                commitLsn: 0x16_B374D848,
                root: 0x0a4ac52163a5a0fcc06b09c5914b2c057ac37735816307472dd85699c35ac771,
                ledgerHash: 0xe4e0ae24ecef766d9946c39d171b018eab4220dcbf45850ace54a732d11cd8b1
            }),
            0x251bb8c3f9994bccf2bf620a3109b108ecaeecc879e2d8ee1d287b8727ff620f,
            0xce2cd44fe65d5f43eaf2ffb887216f9aeb5f5cb8a4c16660540862802f306f1a,
            hex"99a033cedbfb5364d6030fdd07a4dc4c91b038ba53c51cff068af9375180a6c418693dd5a6e5d798631bfe90d1253cf760d3f211f0193a76396c376bb7b2dec51c",
            0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
        );
        _checkVector(
            1,
            0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF,
            RootAttestation({commitLsn: type(uint64).max, root: bytes32(0), ledgerHash: bytes32(type(uint256).max)}),
            0x7f62586eb360dfb3f3f78d7a636609a61f9e1b300fe0d7e0dd882dfa399f9ab1,
            0x1f445ee83129f32c126b54783cc9d8ab8f0e93dc4a539d0803964b17e596555d,
            hex"4ce4424da87de14a23a9c9d52b6a7142a5e1f63d1c60e8c132f1739a41b9421c63e8dd53875dc2992c5ae2ba5408ca46a89c9bc0364e2902cf0082718bb2af3c1b",
            0x70997970C51812dc3A010C7d01b50e0d17dc79C8
        );
        assertEq(bridge.ROOT_ATTESTATION_TYPEHASH(), 0xaddea7445d2ef3d8bf19ac7284236eb97225d88ac4d3b98a1c9dd3334eed487e);
    }

    /// `cast wallet sign --data` (foundry 1.7.1) with anvil's first key over the typed data
    /// WithdrawalApproval{id 42, recipient 0x7099…79C8, amount 10^18, commitLsn 16/B374D848}
    /// in the domain {walproof, 1, 31337, 0x5FbD…0aa3} recovers with the bridge's digest.
    function test_the_withdrawal_approval_digest_matches_cast() public {
        address deployed = 0x5FbDB2315678afecb367f032d93F642f64180aa3;
        vm.chainId(31337);
        vm.etch(deployed, address(bridge).code);
        bytes32 digest = Bridge(payable(deployed))
            .withdrawalApprovalDigest(
                WithdrawalApproval({
                id: 42, recipient: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8, amount: 1 ether, commitLsn: 0x16_B374D848
            })
            );
        bytes memory castSignature =
            hex"e57d758667260d06917d5664db0d8cb0b794fe453c72f30cc8fe6c43e53b38767acb0f06a375ae6d66847b42de2ca73e2f6f3b8dce9283c352d72502b00d3b201b";
        assertEq(_recover(digest, castSignature), 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266);
    }

    function test_the_domain_follows_the_chain_after_a_fork() public {
        (RootAttestation[] memory roots, bytes[][] memory signatures) = _signedBatch(_lsns(100));
        bytes32 before = bridge.domainSeparator();
        assertEq(before, _separator(block.chainid, address(bridge)));
        vm.chainId(block.chainid + 1);
        assertEq(bridge.domainSeparator(), _separator(block.chainid, address(bridge)));
        assertTrue(bridge.domainSeparator() != before);
        _expectNotActive(_rootDigest(bridge, roots[0]), signatures[0][0]);
        bridge.commitRoots(roots, signatures); // signed for the old chain
    }

    // ------------------------------------------------------------------ helpers

    function _checkVector(
        uint256 chainId,
        address deployed,
        RootAttestation memory a,
        bytes32 separator,
        bytes32 digest,
        bytes memory signature,
        address signer
    ) internal {
        vm.chainId(chainId);
        vm.etch(deployed, address(bridge).code);
        assertEq(Bridge(payable(deployed)).domainSeparator(), separator);
        assertEq(Bridge(payable(deployed)).rootAttestationDigest(a), digest);
        assertEq(_recover(digest, signature), signer);
    }

    /// Roots at `lsns` signed by K1 and K2 for `bridge`.
    function _signedBatch(uint64[] memory lsns)
        internal
        view
        returns (RootAttestation[] memory roots, bytes[][] memory signatures)
    {
        roots = new RootAttestation[](lsns.length);
        for (uint256 i; i < lsns.length; ++i) {
            roots[i] = _root(lsns[i], keccak256(abi.encode("root", lsns[i], i)));
        }
        signatures = _signedFor(bridge, roots);
    }

    function _signedFor(Bridge b, RootAttestation[] memory roots) internal view returns (bytes[][] memory signatures) {
        signatures = new bytes[][](roots.length);
        for (uint256 i; i < roots.length; ++i) {
            signatures[i] = _signSorted(_rootDigest(b, roots[i]), _keys(K1, K2));
        }
    }

    /// Expects SignerNotActive naming whoever `signature` recovers for `digest` (a signature
    /// over another digest recovers an unrelated address).
    function _expectNotActive(bytes32 digest, bytes memory signature) internal {
        vm.expectRevert(abi.encodeWithSelector(Bridge.SignerNotActive.selector, _recover(digest, signature)));
    }

    function _lowS(bytes memory signature) internal pure returns (bytes memory) {
        return _highS(signature); // the same map both ways
    }

    function _lsns(uint64 a) internal pure returns (uint64[] memory lsns) {
        lsns = new uint64[](1);
        lsns[0] = a;
    }

    function _lsns(uint64 a, uint64 b) internal pure returns (uint64[] memory lsns) {
        lsns = new uint64[](2);
        (lsns[0], lsns[1]) = (a, b);
    }

    function _lsns(uint64 a, uint64 b, uint64 c) internal pure returns (uint64[] memory lsns) {
        lsns = new uint64[](3);
        (lsns[0], lsns[1], lsns[2]) = (a, b, c);
    }

    function _one(bytes memory a) internal pure returns (bytes[] memory list) {
        list = new bytes[](1);
        list[0] = a;
    }

    function _two(bytes memory a, bytes memory b) internal pure returns (bytes[] memory list) {
        list = new bytes[](2);
        (list[0], list[1]) = (a, b);
    }
}

/// @notice Withdrawals by threshold approval and by proof; each id paid once.
contract BridgeWithdrawalsTest is BridgeSetup {
    address internal constant ALICE = address(0xA11CE5);
    address internal constant ANVIL1 = 0x70997970C51812dc3A010C7d01b50e0d17dc79C8;

    // ---------------------------------------------------------- by approval

    function test_an_approved_withdrawal_pays_eth_once() public {
        WithdrawalApproval memory w = _approval(42, ALICE, 1.5 ether);
        bytes[] memory signatures = _approve(bridge, w);
        vm.expectEmit(address(bridge));
        emit WithdrawalPaid(42, ALICE, 1.5 ether, w.commitLsn, false);
        vm.prank(address(0xCAFE)); // anyone relays
        bridge.withdraw(w, signatures);
        assertEq(ALICE.balance, 1.5 ether);
        assertEq(address(bridge).balance, 998.5 ether);
        assertTrue(bridge.paid(42));

        vm.expectRevert(abi.encodeWithSelector(Bridge.AlreadyPaid.selector, 42));
        bridge.withdraw(w, signatures);
        // re-signed by other validators: still the same id
        signatures = _signSorted(_approvalDigest(bridge, w), _keys(K2, K3));
        vm.expectRevert(abi.encodeWithSelector(Bridge.AlreadyPaid.selector, 42));
        bridge.withdraw(w, signatures);
        assertEq(ALICE.balance, 1.5 ether);
    }

    function test_an_approved_withdrawal_pays_the_token_once() public {
        WithdrawalApproval memory w = _approval(42, ALICE, 7 ether);
        bytes[] memory signatures = _approve(tokenBridge, w);
        vm.expectEmit(address(tokenBridge));
        emit WithdrawalPaid(42, ALICE, 7 ether, w.commitLsn, false);
        tokenBridge.withdraw(w, signatures);
        assertEq(token.balanceOf(ALICE), 7 ether);
        assertEq(token.balanceOf(address(tokenBridge)), 993 ether);
        vm.expectRevert(abi.encodeWithSelector(Bridge.AlreadyPaid.selector, 42));
        tokenBridge.withdraw(w, signatures);
    }

    /// Paid ids live 256 to a storage word: paying one marks exactly that one.
    function testFuzz_paying_an_id_marks_that_id_only(uint256 id, uint256 amount) public {
        amount = bound(amount, 1, 1000 ether);
        WithdrawalApproval memory w = _approval(id, ALICE, amount);
        bridge.withdraw(w, _approve(bridge, w));
        assertTrue(bridge.paid(id));
        if (id > 0) assertFalse(bridge.paid(id - 1));
        if (id < type(uint256).max) assertFalse(bridge.paid(id + 1));
        assertFalse(bridge.paid(id ^ (1 << 8)));
        assertEq(ALICE.balance, amount);
    }

    function test_an_approval_needs_the_threshold_of_active_keys() public {
        WithdrawalApproval memory w = _approval(42, ALICE, 1 ether);
        bytes[] memory one = new bytes[](1);
        one[0] = _sign(K1, _approvalDigest(bridge, w));
        vm.expectRevert(abi.encodeWithSelector(Bridge.BelowThreshold.selector, 1, 2));
        bridge.withdraw(w, one);

        bytes[] memory signatures = _approve(bridge, w);
        vm.prank(OWNER);
        registry.revoke(vm.addr(K3));
        vm.expectRevert(abi.encodeWithSelector(Bridge.SignerNotActive.selector, vm.addr(K3)));
        bridge.withdraw(w, signatures);
        assertFalse(bridge.paid(42));
    }

    function testFuzz_an_approval_pays_only_what_was_signed(uint256 amount, address recipient, uint64 commitLsn)
        public
    {
        WithdrawalApproval memory signed = _approval(42, ALICE, 1 ether);
        bytes[] memory signatures = _approve(bridge, signed);
        WithdrawalApproval memory asked = WithdrawalApproval(42, recipient, amount, commitLsn);
        vm.assume(amount != 1 ether || recipient != ALICE || commitLsn != signed.commitLsn);
        address recovered = _recover(_approvalDigest(bridge, asked), signatures[0]);
        vm.expectRevert(abi.encodeWithSelector(Bridge.SignerNotActive.selector, recovered));
        bridge.withdraw(asked, signatures);
    }

    function test_an_approval_with_a_high_s_or_bad_v_is_rejected() public {
        WithdrawalApproval memory w = _approval(42, ALICE, 1 ether);
        bytes[] memory signatures = _approve(bridge, w);
        bytes memory good = signatures[1];
        signatures[1] = _highS(good);
        vm.expectRevert(abi.encodeWithSelector(Bridge.HighS.selector, 1));
        bridge.withdraw(w, signatures);
        signatures[1] = bytes.concat(good);
        signatures[1][64] = 0x00;
        vm.expectRevert(abi.encodeWithSelector(Bridge.BadSignature.selector, 1));
        bridge.withdraw(w, signatures);
    }

    function test_a_zero_amount_is_not_paid() public {
        WithdrawalApproval memory w = _approval(42, ALICE, 0);
        bytes[] memory signatures = _approve(bridge, w);
        vm.expectRevert(abi.encodeWithSelector(Bridge.ZeroAmount.selector, 42));
        bridge.withdraw(w, signatures);
    }

    // ------------------------------------------------------------- payments

    function test_a_recipient_that_refuses_eth_fails_the_whole_withdrawal() public {
        address refuser = address(new RevertingRecipient());
        WithdrawalApproval memory w = _approval(42, refuser, 1 ether);
        bytes[] memory signatures = _approve(bridge, w);
        vm.expectRevert(abi.encodeWithSelector(Bridge.PaymentFailed.selector, refuser, 1 ether));
        bridge.withdraw(w, signatures);
        assertFalse(bridge.paid(42)); // can be retried, e.g. once the recipient accepts
    }

    function test_a_bridge_without_enough_eth_fails_the_withdrawal() public {
        WithdrawalApproval memory w = _approval(42, ALICE, 1001 ether);
        bytes[] memory signatures = _approve(bridge, w);
        vm.expectRevert(abi.encodeWithSelector(Bridge.PaymentFailed.selector, ALICE, 1001 ether));
        bridge.withdraw(w, signatures);
    }

    function test_a_token_transfer_that_fails_or_returns_false_fails_the_withdrawal() public {
        WithdrawalApproval memory w = _approval(42, ALICE, 1001 ether); // more than it holds
        bytes[] memory signatures = _approve(tokenBridge, w);
        vm.expectRevert(abi.encodeWithSelector(Bridge.PaymentFailed.selector, ALICE, 1001 ether));
        tokenBridge.withdraw(w, signatures);

        Bridge falseBridge = new Bridge(OWNER, registry, 2, address(new FalseToken()), SCHEMA, TABLE);
        w = _approval(42, ALICE, 1 ether);
        signatures = _approve(falseBridge, w);
        vm.expectRevert(abi.encodeWithSelector(Bridge.PaymentFailed.selector, ALICE, 1 ether));
        falseBridge.withdraw(w, signatures);
    }

    function test_a_token_whose_transfer_returns_nothing_pays() public {
        SilentToken silent = new SilentToken();
        Bridge silentBridge = new Bridge(OWNER, registry, 2, address(silent), SCHEMA, TABLE);
        silent.mint(address(silentBridge), 10 ether);
        WithdrawalApproval memory w = _approval(42, ALICE, 1 ether);
        silentBridge.withdraw(w, _approve(silentBridge, w));
        assertEq(silent.balanceOf(ALICE), 1 ether);
    }

    function test_a_token_bridge_refuses_eth() public {
        vm.expectRevert(abi.encodeWithSelector(Bridge.EthNotAccepted.selector, address(token)));
        (bool ok,) = address(tokenBridge).call{value: 1 ether}("");
        ok; // the revert is what is checked
    }

    /// The recipient calls withdraw again from inside its payment: the id is already marked
    /// paid, so the inner call fails and the recipient is paid once.
    function test_a_recipient_reentering_is_paid_once() public {
        ReentrantRecipient attacker = new ReentrantRecipient();
        WithdrawalApproval memory w = _approval(42, address(attacker), 1 ether);
        bytes[] memory signatures = _approve(bridge, w);
        attacker.arm(address(bridge), abi.encodeCall(Bridge.withdraw, (w, signatures)));
        bridge.withdraw(w, signatures);
        assertTrue(attacker.reentered());
        assertFalse(attacker.reentrySucceeded());
        assertEq(attacker.reentryError(), abi.encodeWithSelector(Bridge.AlreadyPaid.selector, 42));
        assertEq(address(attacker).balance, 1 ether);
        assertEq(address(bridge).balance, 999 ether);
    }

    // --------------------------------------------------------------- by proof

    function test_a_row_proven_in_a_committed_root_pays_eth() public {
        _commitFixtureRoots(bridge);
        Proven memory p = _proof(W42_AT_1);
        vm.expectEmit(address(bridge));
        emit WithdrawalPaid(42, ANVIL1, 1 ether, p.commitLsn, true);
        vm.prank(address(0xCAFE)); // anyone relays
        _withdrawWithProof(bridge, p);
        assertEq(ANVIL1.balance, 1 ether);
        assertTrue(bridge.paid(42));
    }

    function test_a_row_proven_in_a_committed_root_pays_the_token() public {
        _commitFixtureRoots(tokenBridge);
        Proven memory p = _proof(W45_AT_2);
        _withdrawWithProof(tokenBridge, p);
        assertEq(token.balanceOf(vm.parseAddress(p.recipient)), 0.5 ether);
        assertTrue(tokenBridge.paid(45));
    }

    function test_the_largest_amount_a_row_can_hold_that_fits_is_paid() public {
        TestToken big = new TestToken(OWNER);
        Bridge bigBridge = new Bridge(OWNER, registry, 2, address(big), SCHEMA, TABLE);
        vm.prank(OWNER);
        big.mint(address(bigBridge), type(uint256).max);
        _commitFixtureRoots(bigBridge);
        Proven memory p = _proof(W44_AT_1);
        _withdrawWithProof(bigBridge, p);
        assertEq(big.balanceOf(vm.parseAddress(p.recipient)), type(uint256).max);
    }

    function test_a_proven_row_with_an_amount_of_2_pow_256_is_not_payable() public {
        _commitFixtureRoots(bridge);
        Proven memory p = _proof(W43_AT_1);
        vm.expectRevert(abi.encodeWithSelector(RowText.NotADecimal.selector, p.amount));
        _withdrawWithProof(bridge, p);
    }

    function test_a_row_is_paid_once_whichever_root_proves_it() public {
        _commitFixtureRoots(bridge);
        _withdrawWithProof(bridge, _proof(W42_AT_1));
        Proven memory again = _proof(W42_AT_2);
        vm.expectRevert(abi.encodeWithSelector(Bridge.AlreadyPaid.selector, 42));
        _withdrawWithProof(bridge, again);
        assertEq(ANVIL1.balance, 1 ether);
    }

    function test_an_id_paid_by_approval_is_not_paid_by_proof() public {
        _commitFixtureRoots(bridge);
        WithdrawalApproval memory w = _approval(42, ANVIL1, 1 ether);
        bridge.withdraw(w, _approve(bridge, w));
        Proven memory p = _proof(W42_AT_1);
        vm.expectRevert(abi.encodeWithSelector(Bridge.AlreadyPaid.selector, 42));
        _withdrawWithProof(bridge, p);
        assertEq(ANVIL1.balance, 1 ether);
    }

    function test_an_id_paid_by_proof_is_not_paid_by_approval() public {
        _commitFixtureRoots(bridge);
        _withdrawWithProof(bridge, _proof(W42_AT_1));
        WithdrawalApproval memory w = _approval(42, ANVIL1, 1 ether);
        bytes[] memory signatures = _approve(bridge, w);
        vm.expectRevert(abi.encodeWithSelector(Bridge.AlreadyPaid.selector, 42));
        bridge.withdraw(w, signatures);
        assertEq(ANVIL1.balance, 1 ether);
    }

    function test_a_proof_against_a_root_never_committed_is_rejected() public {
        _commitFixtureRoots(bridge);
        Proven memory p = _proof(W42_AT_1);
        vm.expectRevert(abi.encodeWithSelector(Bridge.UnknownRoot.selector, p.commitLsn + 1));
        bridge.withdrawWithProof(p.commitLsn + 1, p.id, p.recipient, p.amount, p.nodes);
    }

    function testFuzz_a_changed_byte_in_the_proof_is_rejected(uint256 node, uint256 offset, uint8 flip) public {
        vm.assume(flip != 0);
        _commitFixtureRoots(bridge);
        Proven memory p = _proof(W7_AT_1);
        node = bound(node, 0, p.nodes.length - 1);
        offset = bound(offset, 0, p.nodes[node].length - 1);
        // node 0 must hash to the root, every other to what its parent names: its own hash
        bytes32 expected = sha256(p.nodes[node]);
        p.nodes[node][offset] ^= bytes1(flip);
        bytes32 found = sha256(p.nodes[node]);
        vm.expectRevert(abi.encodeWithSelector(SmtProof.ProofHashMismatch.selector, node, expected, found));
        _withdrawWithProof(bridge, p);
    }

    function test_a_proof_from_another_root_is_rejected() public {
        _commitFixtureRoots(bridge);
        Proven memory p = _proof(W42_AT_2);
        bytes32 root1 = _proof(W42_AT_1).root;
        vm.expectRevert(abi.encodeWithSelector(SmtProof.ProofHashMismatch.selector, 0, root1, sha256(p.nodes[0])));
        bridge.withdrawWithProof(_proof(W42_AT_1).commitLsn, p.id, p.recipient, p.amount, p.nodes);
    }

    function test_a_row_with_another_amount_or_recipient_is_rejected() public {
        _commitFixtureRoots(bridge);
        Proven memory p = _proof(W42_AT_1);
        bytes32 wanted = _leaf(p.id, p.recipient, "2000000000000000000");
        vm.expectRevert(abi.encodeWithSelector(Bridge.RowMismatch.selector, p.commitLsn, p.key, p.leaf, wanted));
        bridge.withdrawWithProof(p.commitLsn, p.id, p.recipient, "2000000000000000000", p.nodes);

        string memory other = "0x00000000000000000000000000000000000a11ce";
        wanted = _leaf(p.id, other, p.amount);
        vm.expectRevert(abi.encodeWithSelector(Bridge.RowMismatch.selector, p.commitLsn, p.key, p.leaf, wanted));
        bridge.withdrawWithProof(p.commitLsn, p.id, other, p.amount, p.nodes);
    }

    /// The same address in upper case parses, but it is not the text the row holds.
    function test_a_recipient_in_another_case_is_not_the_rows_text() public {
        _commitFixtureRoots(bridge);
        Proven memory p = _proof(W42_AT_1);
        string memory upper = "0x70997970C51812DC3A010C7D01B50E0D17DC79C8";
        assertEq(vm.parseAddress(upper), ANVIL1);
        bytes32 wanted = _leaf(p.id, upper, p.amount);
        vm.expectRevert(abi.encodeWithSelector(Bridge.RowMismatch.selector, p.commitLsn, p.key, p.leaf, wanted));
        bridge.withdrawWithProof(p.commitLsn, p.id, upper, p.amount, p.nodes);
    }

    function test_a_proof_of_absence_pays_nothing() public {
        _commitFixtureRoots(bridge);
        Proven memory absent = _proof(W45_ABSENT_AT_1);
        Proven memory present = _proof(W45_AT_2); // its values, at the root where it is absent
        vm.expectRevert(abi.encodeWithSelector(Bridge.RowNotInRoot.selector, absent.commitLsn, absent.key));
        bridge.withdrawWithProof(absent.commitLsn, "45", present.recipient, present.amount, absent.nodes);

        Proven memory deleted = _proof(W3_ABSENT_AT_2);
        vm.expectRevert(abi.encodeWithSelector(Bridge.RowNotInRoot.selector, deleted.commitLsn, deleted.key));
        bridge.withdrawWithProof(deleted.commitLsn, "3", present.recipient, "1", deleted.nodes);
    }

    /// accounts row 42 is in the root, but it is not withdrawal 42: its proof walks another key.
    function test_a_row_of_another_table_is_not_a_withdrawal() public {
        _commitFixtureRoots(bridge);
        Proven memory account = _proof(ACCOUNT42_AT_1);
        Proven memory w = _proof(W42_AT_1);
        try bridge.withdrawWithProof(account.commitLsn, "42", w.recipient, w.amount, account.nodes) {
            vm.assertTrue(false, "paid a row of another table");
        } catch (bytes memory reason) {
            _assertNotProven(reason);
        }
        assertFalse(bridge.paid(42));
    }

    /// A bridge configured for another withdrawal table computes other keys: the committer's
    /// proofs of public.walproof_withdrawals rows do not pay there.
    function test_a_bridge_for_another_table_does_not_pay_this_tables_rows() public {
        Bridge other = new Bridge(OWNER, registry, 2, address(0), SCHEMA, "other_withdrawals");
        vm.deal(address(other), 10 ether);
        _commitFixtureRoots(other);
        Proven memory p = _proof(W42_AT_1);
        try other.withdrawWithProof(p.commitLsn, p.id, p.recipient, p.amount, p.nodes) {
            vm.assertTrue(false, "paid a row of another table");
        } catch (bytes memory reason) {
            _assertNotProven(reason);
        }
        assertFalse(other.paid(42));
    }

    function test_texts_that_are_not_canonical_are_rejected() public {
        _commitFixtureRoots(bridge);
        Proven memory p = _proof(W42_AT_1);
        string[6] memory ids = ["042", "+42", " 42", "", "-1", "4 2"];
        for (uint256 i; i < ids.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(RowText.NotADecimal.selector, ids[i]));
            bridge.withdrawWithProof(p.commitLsn, ids[i], p.recipient, p.amount, p.nodes);
        }
        string[4] memory recipients = [
            "70997970c51812dc3a010c7d01b50e0d17dc79c8",
            "0X70997970c51812dc3a010c7d01b50e0d17dc79c8",
            "0x70997970c51812dc3a010c7d01b50e0d17dc79c",
            "0x70997970c51812dc3a010c7d01b50e0d17dc79cg"
        ];
        for (uint256 i; i < recipients.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(RowText.NotAnAddress.selector, recipients[i]));
            bridge.withdrawWithProof(p.commitLsn, p.id, recipients[i], p.amount, p.nodes);
        }
        vm.expectRevert(abi.encodeWithSelector(RowText.NotADecimal.selector, "1e18"));
        bridge.withdrawWithProof(p.commitLsn, p.id, p.recipient, "1e18", p.nodes);
    }

    function _leaf(string memory id, string memory recipient, string memory amount) internal pure returns (bytes32) {
        return TestRows.leafOf(id, recipient, amount);
    }

    /// A proof for another key fails in the walk (a node that is not on the key's path, or the
    /// key leaving the tree with nodes to spare) or shows the key absent.
    function _assertNotProven(bytes memory reason) internal pure {
        bytes4 selector;
        assembly ("memory-safe") {
            selector := mload(add(reason, 32)) // the data holds at least a selector
        }
        vm.assertTrue(
            selector == SmtProof.ProofHashMismatch.selector || selector == SmtProof.ProofNodesAfterDivergence.selector
                || selector == SmtProof.ProofEndsEarly.selector || selector == Bridge.RowNotInRoot.selector,
            "not a failed proof"
        );
    }
}

/// @dev A withdrawal row's leaf, written out for the tests.
library TestRows {
    function leafOf(string memory id, string memory recipient, string memory amount) internal pure returns (bytes32) {
        return sha256(
            abi.encodePacked(
                "walproof/row/v1",
                uint32(2),
                "id",
                _h(20, id),
                uint32(9),
                "recipient",
                _h(25, recipient),
                uint32(6),
                "amount",
                _h(1700, amount)
            )
        );
    }

    function _h(uint32 oid, string memory text) private pure returns (bytes32) {
        return sha256(abi.encodePacked(oid, uint8(0), uint32(bytes(text).length), text));
    }
}
