// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title RowText
/// @notice Parses the text output of a withdrawal row's values: a `bigint` id or a
/// `numeric(78,0)` amount as an unsigned decimal, a recipient as `0x` and 40 hex digits.
/// @dev Strict on purpose: one number has exactly one accepted text (no sign, no leading zero,
/// no spaces), so a decimal string maps to a `uint256` and back one way only. Postgres's own
/// output of these types always has that form for the values the withdrawal table admits.
library RowText {
    /// @notice `text` is not an unsigned decimal in canonical form below 2^256: empty, longer
    /// than 78 digits, a leading zero, a character other than 0-9, or too large.
    error NotADecimal(string text);
    /// @notice `text` is not `0x` followed by 40 hexadecimal digits (either case).
    error NotAnAddress(string text);

    /// @dev 2^256 - 1 has 78 digits.
    uint256 private constant MAX_DIGITS = 78;

    /// @notice The value of the canonical decimal `text` ("0", "42", "1000000000000000000").
    function parseUint(bytes calldata text) internal pure returns (uint256 value) {
        uint256 length = text.length;
        if (length == 0 || length > MAX_DIGITS || (length > 1 && text[0] == "0")) {
            revert NotADecimal(string(text));
        }
        for (uint256 i; i < length; ++i) {
            uint256 digit;
            unchecked {
                digit = uint256(uint8(text[i])) - 0x30; // wraps above 9 for bytes below "0"
            }
            if (digit > 9 || value > (type(uint256).max - digit) / 10) revert NotADecimal(string(text));
            unchecked {
                value = value * 10 + digit; // cannot overflow: checked just above
            }
        }
    }

    /// @notice The address written as `0x` and 40 hex digits in `text` (no checksum check:
    /// the withdrawal table stores lower case).
    function parseAddress(bytes calldata text) internal pure returns (address) {
        if (text.length != 42 || text[0] != "0" || text[1] != "x") revert NotAnAddress(string(text));
        uint256 value;
        for (uint256 i = 2; i < 42; ++i) {
            uint256 c = uint8(text[i]);
            uint256 nibble;
            if (c >= 0x30 && c <= 0x39) {
                nibble = c - 0x30; // 0-9
            } else if (c >= 0x61 && c <= 0x66) {
                nibble = c - 0x57; // a-f
            } else if (c >= 0x41 && c <= 0x46) {
                nibble = c - 0x37; // A-F
            } else {
                revert NotAnAddress(string(text));
            }
            value = (value << 4) | nibble;
        }
        // 40 hex digits are 160 bits: the cast keeps them all.
        // forge-lint: disable-next-line(unsafe-typecast)
        return address(uint160(value));
    }
}
