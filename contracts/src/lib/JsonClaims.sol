// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title JsonClaims
/// @notice Reads single claims out of a signed JSON document (a JWT's header or payload) without
/// parsing it: a claim is found by its quoted key pattern `"name":`, which must occur exactly
/// once in the whole document, at any depth.
///
///     JsonClaims.Document memory claims = JsonClaims.load(payload);
///     string memory issuer = claims.readString("iss");   // with `using JsonClaims for …`
/// @dev Why a pattern search is sound here, for a document whose signer emits valid JSON:
///
/// - No value can fake a key. A JSON string cannot contain an unescaped quote, and the pattern's
///   second quote follows a name character, never a backslash, so it is always a structural
///   quote closing a key. Numbers, literals and punctuation contain no quotes at all.
/// - A key can still end like one: a key that contains `\"name` (an escaped quote) matches the
///   pattern too, as does a `name` key nested somewhere else, for example an environment variable
///   an operator names `image_digest`. Requiring exactly one occurrence turns every such
///   lookalike of a claim the signer always emits into a second occurrence, and so into a
///   rejected document, never into an accepted value.
/// - Values are read strictly: a string value with a backslash (any escape) is rejected rather
///   than decoded, so the text compared is exactly the text signed; numbers are unsigned decimal
///   integers; booleans are `true` or `false`. Each must end at a JSON delimiter.
///
/// IMPORTANT: for a claim the signer may leave out, a lookalike is found as if it were the claim.
/// Read optional claims only where a lookalike can do no more than cause a rejection.
///
/// Whitespace is allowed between the colon and the value (RFC 8259 `ws`), not between the key
/// and the colon: such a document reports the claim missing. A `name` is a plain key, without
/// quotes or backslashes.
///
/// Cost: {load} reads the document once, a word at a time, and records where each `":` is; every
/// occurrence of a pattern ends in one, so a lookup compares the name only there (a JWT payload
/// holds a few dozen keys) instead of at every byte.
library JsonClaims {
    /// @notice A JSON document ready for lookups: its bytes, and the position of the quote of
    /// every `":` in it (where every key ends, and so every occurrence of a pattern).
    struct Document {
        bytes json;
        uint256[] keyEnds;
    }

    /// @notice The pattern `"name":` does not occur in the document.
    error ClaimMissing(string name);
    /// @notice The pattern `"name":` occurs more than once in the document.
    error ClaimRepeated(string name);
    /// @notice The claim's value is not a string (or the string is not closed).
    error ClaimNotAString(string name);
    /// @notice The claim's string value contains a backslash; escapes are not decoded.
    error ClaimEscaped(string name);
    /// @notice The claim's value is not an unsigned decimal integer (JSON: no sign, fraction,
    /// exponent or leading zero) of at most 77 digits.
    error ClaimNotANumber(string name);
    /// @notice The claim's value is neither `true` nor `false`.
    error ClaimNotABool(string name);

    /// @dev 10^77 - 1 < 2^256 - 1: a number of at most 77 digits cannot overflow.
    uint256 private constant MAX_DIGITS = 77;

    /// @dev A word of quotes, a word of colons, and 0x7f in every byte (see `zeroBytes`).
    uint256 private constant QUOTES = 0x2222222222222222222222222222222222222222222222222222222222222222;
    uint256 private constant COLONS = 0x3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a;
    uint256 private constant LOW7 = 0x7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f;
    /// @dev Byte i (from the most significant) holds 31 - i.
    uint256 private constant DESCENDING = 0x1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100;

    /// @notice `json` ready for lookups. `json` is referenced, not copied: do not change it after.
    function load(bytes memory json) internal pure returns (Document memory doc) {
        doc.json = json;
        doc.keyEnds = _keyEnds(json);
    }

    /// @notice Where the value of claim `name` starts: just after `"name":` and any whitespace.
    /// @return found Whether the pattern occurs (exactly once; reverts when it is repeated).
    /// @return pos The index of the value's first byte in the document (its length if none follows).
    function find(Document memory doc, string memory name) internal pure returns (bool found, uint256 pos) {
        bytes memory json = doc.json;
        uint256 count;
        (count, pos) = _occurrences(json, doc.keyEnds, abi.encodePacked('"', name));
        if (count > 1) revert ClaimRepeated(name);
        if (count == 0) return (false, 0);
        pos += 2; // past `":`
        while (pos < json.length && _isWhitespace(json[pos])) pos++;
        return (true, pos);
    }

    /// @notice The string value of claim `name` (without its quotes); reverts unless the claim
    /// occurs exactly once with a string value free of backslashes.
    function readString(Document memory doc, string memory name) internal pure returns (string memory) {
        return _stringAt(doc.json, name, _require(doc, name));
    }

    /// @notice The unsigned integer value of claim `name`; reverts unless the claim occurs
    /// exactly once with such a value.
    function readUint(Document memory doc, string memory name) internal pure returns (uint256) {
        return _uintAt(doc.json, name, _require(doc, name));
    }

    /// @notice The unsigned integer value of claim `name`, or `found == false` when the claim does
    /// not occur; reverts when it is repeated or its value is not such a number.
    function tryReadUint(Document memory doc, string memory name) internal pure returns (bool found, uint256 value) {
        uint256 pos;
        (found, pos) = find(doc, name);
        if (found) value = _uintAt(doc.json, name, pos);
    }

    /// @notice The boolean value of claim `name`; reverts unless the claim occurs exactly once
    /// with the value `true` or `false`.
    function readBool(Document memory doc, string memory name) internal pure returns (bool) {
        bytes memory json = doc.json;
        uint256 pos = _require(doc, name);
        if (_startsWith(json, pos, "true")) {
            if (_endsValue(json, pos + 4)) return true;
        } else if (_startsWith(json, pos, "false")) {
            if (_endsValue(json, pos + 5)) return false;
        }
        revert ClaimNotABool(name);
    }

    function _require(Document memory doc, string memory name) private pure returns (uint256 pos) {
        bool found;
        (found, pos) = find(doc, name);
        if (!found) revert ClaimMissing(name);
    }

    function _stringAt(bytes memory json, string memory name, uint256 pos) private pure returns (string memory value) {
        if (pos >= json.length || json[pos] != '"') revert ClaimNotAString(name);
        uint256 start = pos + 1;
        // The closing quote, or a backslash, or the end of the document: whichever comes first.
        uint256 end;
        uint256 last; // the byte at `end`
        assembly ("memory-safe") {
            let data := add(json, 0x20)
            let length := mload(json)
            for { end := start } lt(end, length) { end := add(end, 1) } {
                last := byte(0, mload(add(data, end)))
                if or(eq(last, 0x22), eq(last, 0x5c)) { break }
            }
        }
        if (end == json.length) revert ClaimNotAString(name);
        if (last == 0x5c) revert ClaimEscaped(name);
        if (!_endsValue(json, end + 1)) revert ClaimNotAString(name);
        value = new string(end - start);
        assembly ("memory-safe") {
            mcopy(add(value, 0x20), add(add(json, 0x20), start), sub(end, start))
        }
    }

    function _uintAt(bytes memory json, string memory name, uint256 pos) private pure returns (uint256 value) {
        uint256 i = pos;
        while (i < json.length && json[i] >= "0" && json[i] <= "9") {
            if (i - pos == MAX_DIGITS) revert ClaimNotANumber(name);
            value = value * 10 + (uint8(json[i]) - 0x30);
            i++;
        }
        // No digits, a leading zero (not JSON), or digits that go on as a fraction, an exponent
        // or anything else but a delimiter.
        if (i == pos || (json[pos] == "0" && i - pos > 1) || !_endsValue(json, i)) revert ClaimNotANumber(name);
    }

    /// @dev Whether a value that ended just before `i` is followed by what may follow a value in
    /// an object or array: whitespace, a comma or a closing bracket.
    function _endsValue(bytes memory json, uint256 i) private pure returns (bool) {
        if (i >= json.length) return false;
        bytes1 c = json[i];
        return c == "," || c == "}" || c == "]" || _isWhitespace(c);
    }

    function _isWhitespace(bytes1 c) private pure returns (bool) {
        return c == " " || c == "\t" || c == "\n" || c == "\r";
    }

    function _startsWith(bytes memory json, uint256 pos, bytes memory prefix) private pure returns (bool) {
        if (pos + prefix.length > json.length) return false;
        for (uint256 i; i < prefix.length; i++) {
            if (json[pos + i] != prefix[i]) return false;
        }
        return true;
    }

    /// @dev The position of the quote of every `":` in `json` (ascending across words,
    /// descending within one; only their count and the position of a unique one matter).
    function _keyEnds(bytes memory json) private pure returns (uint256[] memory ends) {
        assembly ("memory-safe") {
            // 0x80 in every byte of `x` that is zero, 0x00 in every other (exact: no carry
            // crosses a byte, as (b & 0x7f) + 0x7f <= 0xfe).
            function zeroBytes(x) -> z {
                z := not(or(or(add(and(x, LOW7), LOW7), x), LOW7))
            }

            // The array grows at the free memory pointer, which moves past it once it is complete.
            ends := mload(0x40)
            let count := 0
            let length := mload(json)
            let data := add(json, 0x20)
            // 32 positions at a time; position i can start a `":` while i + 1 < length.
            for { let offset := 0 } lt(add(offset, 1), length) { offset := add(offset, 0x20) } {
                let p := add(data, offset)
                // 0x80 in byte j when the byte at p + j is a quote and the byte after it a colon.
                let pairs := and(zeroBytes(xor(mload(p), QUOTES)), zeroBytes(xor(mload(add(p, 1)), COLONS)))
                // In the last word, positions whose pair reaches past the end read memory that
                // is not the document's: drop them.
                let valid := sub(length, add(offset, 1))
                if lt(valid, 0x20) { pairs := and(pairs, not(shr(shl(3, valid), not(0)))) }
                for {} pairs {} {
                    // The lowest set bit is 0x80 << 8m with m = 31 - j. Multiplying by 1 << 8m
                    // moves byte m of DESCENDING, which holds 31 - m = j, to the top.
                    let bit := and(pairs, sub(0, pairs))
                    let j := byte(0, mul(shr(7, bit), DESCENDING))
                    count := add(count, 1)
                    mstore(add(ends, shl(5, count)), add(offset, j))
                    pairs := xor(pairs, bit)
                }
            }
            mstore(ends, count)
            mstore(0x40, add(ends, shl(5, add(count, 1))))
        }
    }

    /// @dev How many key ends of `ends` are preceded by `head` (a pattern without its `":`), and
    /// the last such key end. Equal to the number of occurrences of the whole pattern in `json`:
    /// each occurrence ends in a `":`, every `":` is in `ends`.
    function _occurrences(bytes memory json, uint256[] memory ends, bytes memory head)
        private
        pure
        returns (uint256 count, uint256 last)
    {
        assembly ("memory-safe") {
            let data := add(json, 0x20)
            let n := mload(head)
            // The head's first (up to) 32 bytes, left-aligned, and the mask that keeps as many
            // bytes of a loaded word; a head longer than a word is compared in full by hash.
            let mask := not(0)
            if lt(n, 0x20) { mask := not(sub(shl(sub(256, shl(3, n)), 1), 1)) }
            let word := and(mload(add(head, 0x20)), mask)
            let long := gt(n, 0x20)
            let hash := keccak256(add(head, 0x20), n)
            for {
                let q := add(ends, 0x20)
                let afterLast := add(q, shl(5, mload(ends)))
            } lt(q, afterLast) { q := add(q, 0x20) } {
                let end := mload(q)
                // The head would start before the document: not an occurrence.
                if iszero(lt(end, n)) {
                    let p := add(data, sub(end, n))
                    if eq(and(mload(p), mask), word) {
                        if or(iszero(long), eq(keccak256(p, n), hash)) {
                            count := add(count, 1)
                            last := end
                        }
                    }
                }
            }
        }
    }
}
