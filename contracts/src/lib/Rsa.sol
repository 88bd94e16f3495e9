// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Rsa
/// @notice RSASSA-PKCS1-v1_5 signature verification with SHA-256 (RFC 8017 section 8.2.2), the
/// JWT algorithm RS256, using the modular exponentiation precompile (EIP-198, address 0x05).
/// @dev The check is by reconstruction, never by parsing: the expected encoded message
/// `0x00 01 FF…FF 00 ‖ DigestInfo(SHA-256) ‖ hash` is built from the hash and compared with
/// `signature^e mod n` in full. Parsing the decrypted block instead is what made Bleichenbacher's
/// 2006 forgery work against small exponents; reconstruction leaves no field unchecked.
///
/// IMPORTANT: this library does not judge the key. The caller decides which moduli and exponents
/// it trusts (an exponent of 1, for one, makes every encoded message its own signature).
library Rsa {
    /// @notice The smallest modulus accepted, in bytes: the encoding needs 62 (RFC 8017 section
    /// 9.2 step 5 with 8 bytes of padding), and 64 keeps the fixed tail within whole words.
    uint256 internal constant MIN_MODULUS_LENGTH = 64;

    /// @dev The word that ends 32 bytes before the end of the encoded message: twelve padding
    /// bytes 0xff, the separator 0x00 and the 19-byte DER DigestInfo prefix of a SHA-256 hash
    /// (RFC 8017 section 9.2, note 1).
    bytes32 private constant TAIL_BEFORE_HASH = 0xffffffffffffffffffffffff003031300d060960864801650304020105000420;

    /// @notice Whether `signature` is an RSASSA-PKCS1-v1_5 signature of `digest` (a SHA-256
    /// hash) under the public key (`modulus`, `exponent`), both big-endian.
    /// @dev False, never a revert, for anything that is not a valid signature: a signature whose
    /// length is not the modulus length (no leading zeros stripped or added), a signature not
    /// below the modulus (an unreduced representative of a valid one), a modulus shorter than
    /// {MIN_MODULUS_LENGTH} or with a leading zero byte, or a failing precompile call.
    function pkcs1Sha256(bytes32 digest, bytes memory signature, bytes memory modulus, bytes memory exponent)
        internal
        view
        returns (bool)
    {
        uint256 k = modulus.length;
        if (k < MIN_MODULUS_LENGTH || modulus[0] == 0) return false;
        if (signature.length != k || !_lessThan(signature, modulus)) return false;
        (bool ok, bytes memory decrypted) = modexp(signature, exponent, modulus);
        return ok && keccak256(decrypted) == keccak256(_encode(digest, k));
    }

    /// @notice `base^exponent mod modulus` as `modulus.length` big-endian bytes, by the EIP-198
    /// precompile; `ok` is false when the call fails or returns anything but that length.
    function modexp(bytes memory base, bytes memory exponent, bytes memory modulus)
        internal
        view
        returns (bool ok, bytes memory result)
    {
        bytes memory input = abi.encodePacked(base.length, exponent.length, modulus.length, base, exponent, modulus);
        uint256 length = modulus.length;
        result = new bytes(length);
        assembly ("memory-safe") {
            ok := staticcall(gas(), 0x05, add(input, 0x20), mload(input), add(result, 0x20), length)
            // Where the precompile does not exist, the call "succeeds" with no output.
            ok := and(ok, eq(returndatasize(), length))
        }
    }

    /// @dev EMSA-PKCS1-v1_5 (RFC 8017 section 9.2) of the SHA-256 hash `digest` into `k` bytes:
    /// `0x00 0x01 ‖ 0xff × (k - 54) ‖ 0x00 ‖ DigestInfo prefix ‖ digest`. Requires `k >= 64`.
    function _encode(bytes32 digest, uint256 k) private pure returns (bytes memory em) {
        em = new bytes(k);
        assembly ("memory-safe") {
            let p := add(em, 0x20)
            // Padding everywhere first (whole words stay within the allocation, which is rounded
            // up to a word); the fixed parts overwrite it. Then the bytes past `k` are cleared.
            for { let i := 0 } lt(i, k) { i := add(i, 0x20) } { mstore(add(p, i), not(0)) }
            mstore(add(p, k), 0)
            mstore(add(p, sub(k, 0x20)), digest)
            mstore(add(p, sub(k, 0x40)), TAIL_BEFORE_HASH)
            mstore8(p, 0x00)
            mstore8(add(p, 1), 0x01)
        }
    }

    /// @dev Whether the big-endian number `a` is below `b`; both have the same length.
    function _lessThan(bytes memory a, bytes memory b) private pure returns (bool less) {
        assembly ("memory-safe") {
            let length := mload(a)
            let pa := add(a, 0x20)
            let pb := add(b, 0x20)
            // A leading partial word first, so that the rest is whole words.
            let i := mod(length, 0x20)
            let decided := 0
            if i {
                let shift := shl(3, sub(0x20, i))
                let wa := shr(shift, mload(pa))
                let wb := shr(shift, mload(pb))
                if iszero(eq(wa, wb)) {
                    decided := 1
                    less := lt(wa, wb)
                }
            }
            for {} and(iszero(decided), lt(i, length)) { i := add(i, 0x20) } {
                let wa := mload(add(pa, i))
                let wb := mload(add(pb, i))
                if iszero(eq(wa, wb)) {
                    decided := 1
                    less := lt(wa, wb)
                }
            }
        }
    }
}
