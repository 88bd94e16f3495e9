// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Signatures
/// @notice Recovers the signer of a 65-byte `r ‖ s ‖ v` secp256k1 signature, rejecting the
/// malleable (high-s) form and any `v` other than 27 or 28.
library Signatures {
    /// @notice The signature is not 65 bytes.
    error SignatureLength(uint256 length);
    /// @notice `v` is neither 27 nor 28.
    error SignatureV(uint8 v);
    /// @notice `s` is in the upper half of the curve order (a malleated signature).
    error SignatureHighS(bytes32 s);
    /// @notice No key recovers from the signature.
    error SignatureUnrecoverable();

    /// @dev secp256k1n / 2.
    uint256 private constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @notice The address whose key signed `digest`; reverts when the signature is malformed.
    function recover(bytes32 digest, bytes calldata signature) internal pure returns (address signer) {
        if (signature.length != 65) revert SignatureLength(signature.length);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v != 27 && v != 28) revert SignatureV(v);
        if (uint256(s) > HALF_ORDER) revert SignatureHighS(s);
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert SignatureUnrecoverable();
    }

    /// @notice {recover} for a signature held in memory.
    function recoverMemory(bytes32 digest, bytes memory signature) internal pure returns (address signer) {
        if (signature.length != 65) revert SignatureLength(signature.length);
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
        if (v != 27 && v != 28) revert SignatureV(v);
        if (uint256(s) > HALF_ORDER) revert SignatureHighS(s);
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert SignatureUnrecoverable();
    }
}
