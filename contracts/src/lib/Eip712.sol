// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Eip712
/// @notice walproof's EIP-712 domain: {name "walproof", version "1", chainId, verifyingContract}.
library Eip712 {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant NAME_HASH = keccak256("walproof");
    bytes32 internal constant VERSION_HASH = keccak256("1");

    /// @notice The domain separator of `verifyingContract` on the current chain.
    function separator(address verifyingContract) internal view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, verifyingContract));
    }

    /// @notice `keccak256(0x1901 ‖ domainSeparator ‖ structHash)`: the digest that is signed.
    function digest(bytes32 domainSeparator, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", domainSeparator, structHash));
    }
}
