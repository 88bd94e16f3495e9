// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./Test.sol";
import {KeyRegistry} from "../../src/KeyRegistry.sol";
import {DevAttestationVerifier} from "../../src/verifiers/DevAttestationVerifier.sol";

/// @title Validators
/// @notice A key registry with the development verifier, validator keys registered through it,
/// and EIP-712 signing written out independently of the contracts' own code.
abstract contract Validators is Test {
    address internal constant OWNER = address(0x0A11CE);
    uint256 internal constant ATTESTER_KEY = 0xA77E57;
    bytes32 internal constant MEASUREMENT = keccak256("sha256:walproof-validator-image");

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant KEY_ATTESTATION_TYPEHASH =
        keccak256("KeyAttestation(address key,address registry,bytes32 measurement,uint64 expiresAt)");

    /// @dev secp256k1's group order.
    uint256 internal constant N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;

    KeyRegistry internal registry;
    DevAttestationVerifier internal devVerifier;

    function _deployRegistry() internal {
        vm.warp(1_800_000_000);
        registry = new KeyRegistry(OWNER);
        devVerifier = new DevAttestationVerifier(vm.addr(ATTESTER_KEY));
        vm.prank(OWNER);
        registry.setVerifier(devVerifier, true);
    }

    /// Registers the key `privateKey` through the development verifier.
    function _register(uint256 privateKey) internal returns (address key) {
        key = vm.addr(privateKey);
        registry.register(key, devVerifier, _evidence(key, address(registry), uint64(block.timestamp + 1 hours)));
    }

    /// The attester's evidence for `key` and `registry_`, in this chain's domain of devVerifier.
    function _evidence(address key, address registry_, uint64 expiresAt) internal view returns (bytes memory) {
        bytes32 digest = _keyAttestationDigest(block.chainid, address(devVerifier), key, registry_, expiresAt);
        return abi.encode(MEASUREMENT, expiresAt, _sign(ATTESTER_KEY, digest));
    }

    function _keyAttestationDigest(uint256 chainId, address verifier, address key, address registry_, uint64 expiresAt)
        internal
        pure
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(KEY_ATTESTATION_TYPEHASH, key, registry_, MEASUREMENT, expiresAt));
        return _digest(_separator(chainId, verifier), structHash);
    }

    function _separator(uint256 chainId, address verifyingContract) internal pure returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("walproof"), keccak256("1"), chainId, verifyingContract));
    }

    function _digest(bytes32 separator, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", separator, structHash));
    }

    /// A 65-byte `r ‖ s ‖ v` signature (forge signs with low `s`, v 27/28).
    function _sign(uint256 privateKey, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(privateKey, digest);
        return abi.encodePacked(r, s, v);
    }

    /// The same signature in its malleated form: `s` → n - s, `v` flipped.
    function _highS(bytes memory signature) internal pure returns (bytes memory) {
        (bytes32 r, bytes32 s, uint8 v) = _split(signature);
        return abi.encodePacked(r, bytes32(N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }

    function _split(bytes memory signature) internal pure returns (bytes32 r, bytes32 s, uint8 v) {
        assembly ("memory-safe") {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
    }

    /// The address `signature` recovers for `digest` (0 when none).
    function _recover(bytes32 digest, bytes memory signature) internal pure returns (address) {
        (bytes32 r, bytes32 s, uint8 v) = _split(signature);
        return ecrecover(digest, v, r, s);
    }
}
