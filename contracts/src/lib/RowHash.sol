// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title RowHash
/// @notice walproof's row commitments, exactly as crates/core/src/leaf.rs computes them
/// (design.md "Commitments"), with the SHA-256 precompile:
///
///     lp(x)  = u32 BE length ‖ x
///     H(col) = sha256(type oid u32 BE ‖ null flag u8 ‖ lp(text))        NULL: flag 1, text ""
///     key    = sha256("walproof/key/v1" ‖ lp(schema) ‖ lp(table) ‖ lp(key col 1 text) ‖ …)
///     leaf   = sha256("walproof/row/v1" ‖ lp(name 1) ‖ H(col 1) ‖ … ‖ lp(name n) ‖ H(col n))
///
/// Texts are Postgres's text output under walproof's canonical session settings, as UTF-8
/// bytes; names and texts are hashed as stored (no quoting, no case folding).
/// @dev Lengths are encoded as `uint32`: a value of 4 GiB cannot be held in memory for gas,
/// and Postgres caps a field at 1 GB.
library RowHash {
    /// @notice Type OID of Postgres `int8` (`bigint`).
    uint32 internal constant INT8_OID = 20;
    /// @notice Type OID of Postgres `text`.
    uint32 internal constant TEXT_OID = 25;
    /// @notice Type OID of Postgres `numeric`.
    uint32 internal constant NUMERIC_OID = 1700;

    /// @notice {rowLeaf} was given `names` column names but `hashes` column hashes.
    error RowHashColumnCount(uint256 names, uint256 hashes);

    /// @notice `H(col)` of a non-NULL value with text output `text`.
    function columnHash(uint32 typeOid, bytes memory text) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(typeOid, uint8(0), uint32(text.length), text));
    }

    /// @notice `H(col)` of SQL NULL (distinct from every text, the empty one included).
    function nullColumnHash(uint32 typeOid) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(typeOid, uint8(1), uint32(0)));
    }

    /// @notice The tree key of the row of `schema`.`table` whose key columns' texts are
    /// `keyTexts`, in attribute order.
    function rowKey(bytes memory schema, bytes memory table, bytes[] memory keyTexts) internal pure returns (bytes32) {
        bytes memory input = abi.encodePacked("walproof/key/v1", _lp(schema), _lp(table));
        for (uint256 i; i < keyTexts.length; ++i) {
            input = bytes.concat(input, _lp(keyTexts[i]));
        }
        return sha256(input);
    }

    /// @notice The leaf of a row whose columns, in attribute order, are named `names` and hash
    /// to `columnHashes` (see {columnHash}).
    function rowLeaf(bytes[] memory names, bytes32[] memory columnHashes) internal pure returns (bytes32) {
        if (names.length != columnHashes.length) revert RowHashColumnCount(names.length, columnHashes.length);
        bytes memory input = "walproof/row/v1";
        for (uint256 i; i < names.length; ++i) {
            input = bytes.concat(input, _lp(names[i]), columnHashes[i]);
        }
        return sha256(input);
    }

    /// @notice The tree key of withdrawal `id` (its text) in the withdrawal table
    /// `schema`.`table`: {rowKey} with the one key column `id`.
    function withdrawalKey(bytes memory schema, bytes memory table, bytes memory id) internal pure returns (bytes32) {
        return sha256(abi.encodePacked("walproof/key/v1", _lp(schema), _lp(table), _lp(id)));
    }

    /// @notice The leaf of the withdrawal table row `(id bigint, recipient text, amount numeric)`
    /// with these texts: {rowLeaf} of the table's fixed layout.
    function withdrawalLeaf(bytes memory id, bytes memory recipient, bytes memory amount)
        internal
        pure
        returns (bytes32)
    {
        return sha256(
            abi.encodePacked(
                "walproof/row/v1",
                uint32(2),
                "id",
                columnHash(INT8_OID, id),
                uint32(9),
                "recipient",
                columnHash(TEXT_OID, recipient),
                uint32(6),
                "amount",
                columnHash(NUMERIC_OID, amount)
            )
        );
    }

    /// @dev `lp(x)`: `x` behind its length as a big-endian `uint32`.
    function _lp(bytes memory x) private pure returns (bytes memory) {
        return abi.encodePacked(uint32(x.length), x);
    }
}
