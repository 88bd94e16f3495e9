// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IAttestationVerifier
/// @notice Checks that a signing key was generated inside an accepted trusted execution
/// environment (TEE) and bound to the key registry that asks.
/// @dev The binding a TEE attestation commits to is
/// `keccak256(abi.encode(keccak256("walproof/key-binding/v1"), chainId, registry, key))`
/// (see {KeyBinding}); `registry` is the caller of {verify}.
interface IAttestationVerifier {
    /// @notice Verifies that `evidence` proves `key` was generated in an accepted TEE and bound
    /// to the calling registry on this chain.
    /// @param key The address of the secp256k1 key being registered.
    /// @param evidence The verifier-specific attestation (ABI-encoded).
    /// @return measurement What ran in the TEE (for example a hash of the container image
    /// digest); reverts with a custom error naming the problem when the evidence does not hold.
    function verify(address key, bytes calldata evidence) external view returns (bytes32 measurement);
}

/// @title KeyBinding
/// @notice The 32 bytes a TEE attestation's nonce commits to: this chain, this registry, this key.
library KeyBinding {
    /// @notice Domain tag of the binding.
    bytes32 internal constant TAG = keccak256("walproof/key-binding/v1");

    /// @notice The binding of `key` to `registry` on the current chain.
    function compute(address registry, address key) internal view returns (bytes32) {
        return keccak256(abi.encode(TAG, block.chainid, registry, key));
    }
}
