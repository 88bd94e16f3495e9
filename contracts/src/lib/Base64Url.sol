// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Base64Url
/// @notice Base64 with the URL and filename safe alphabet (RFC 4648 section 5) and no padding:
/// the encoding of a JWT's segments (RFC 7515 section 2).
/// @dev Encoding only. A verifier that receives a token's header and payload already decoded
/// re-encodes them to rebuild the exact signing input, so it never has to decide whether two
/// different encodings (padding, non-canonical trailing bits) name the same bytes.
library Base64Url {
    /// @notice `data` in base64url without padding: `ceil(4 * length / 3)` characters.
    function encode(bytes memory data) internal pure returns (string memory result) {
        assembly ("memory-safe") {
            let length := mload(data)
            let whole := div(length, 3)
            let rest := mod(length, 3)
            // 4 characters per whole group of 3 bytes; a trailing group of 1 byte gives 2, of 2 bytes 3.
            let encodedLength := add(shl(2, whole), mul(iszero(iszero(rest)), add(rest, 1)))

            // Built at the free memory pointer and allocated once complete: each group is written
            // as a whole word, so the writes run up to 28 bytes past the last character, into
            // memory nobody owns yet.
            result := mload(0x40)
            // The alphabet, placed so that mload(i) holds character i in its lowest byte. It
            // covers the free memory pointer (rewritten below) but not the zero slot at 0x60.
            mstore(0x1f, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef")
            mstore(0x3f, "ghijklmnopqrstuvwxyz0123456789-_")

            // `src` trails the group by 29 bytes, so that mload(src) holds the group's 3 bytes
            // in its lowest 24 bits.
            let src := add(data, 3)
            let dst := add(result, 0x20)
            for { let end := add(src, mul(whole, 3)) } lt(src, end) {
                src := add(src, 3)
                dst := add(dst, 4)
            } {
                let group := mload(src)
                // The four characters into scratch bytes 0..3, then out as one word.
                mstore8(0, mload(and(shr(18, group), 0x3f)))
                mstore8(1, mload(and(shr(12, group), 0x3f)))
                mstore8(2, mload(and(shr(6, group), 0x3f)))
                mstore8(3, mload(and(group, 0x3f)))
                mstore(dst, mload(0))
            }
            if rest {
                // Only `rest` bytes of the last group are the input's: zero the others, as the
                // encoding's bit padding is zero. Characters past the length are cleared below.
                let group := and(mload(src), shl(sub(24, shl(3, rest)), sub(shl(shl(3, rest), 1), 1)))
                mstore8(0, mload(and(shr(18, group), 0x3f)))
                mstore8(1, mload(and(shr(12, group), 0x3f)))
                mstore8(2, mload(and(shr(6, group), 0x3f)))
                mstore(dst, mload(0))
            }

            mstore(result, encodedLength)
            let end := add(add(result, 0x20), encodedLength)
            // No stray characters after the string, then allocate it (rounded up to a word).
            mstore(end, 0)
            mstore(0x40, and(add(end, 0x1f), not(0x1f)))
        }
    }
}
