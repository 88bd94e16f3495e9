// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAttestationVerifier} from "./IAttestationVerifier.sol";
import {Eip712} from "../lib/Eip712.sol";
import {Signatures} from "../lib/Signatures.sol";

/// @title DevAttestationVerifier
/// @notice For development and the local stack only: a key counts as attested when a configured
/// attester key signed an EIP-712 `KeyAttestation` naming it and the registry. Nothing about a
/// TEE is proven; the attester is trusted to have checked the key's origin.
contract DevAttestationVerifier is IAttestationVerifier {
    /// @notice EIP-712 type hash of `KeyAttestation(address key,address registry,bytes32 measurement,uint64 expiresAt)`.
    bytes32 public constant KEY_ATTESTATION_TYPEHASH =
        keccak256("KeyAttestation(address key,address registry,bytes32 measurement,uint64 expiresAt)");

    /// @notice The key whose signature attests a validator key.
    address public immutable attester;

    /// @notice The attestation expired at `expiresAt` (block time `now`).
    error AttestationExpired(uint64 expiresAt, uint256 now);
    /// @notice The attestation was signed by `signer`, not by the attester.
    error NotTheAttester(address signer, address attester);

    /// @param attester_ The development attester's address.
    constructor(address attester_) {
        attester = attester_;
    }

    /// @notice The EIP-712 domain separator: walproof / 1 / this chain / this verifier.
    function domainSeparator() public view returns (bytes32) {
        return Eip712.separator(address(this));
    }

    /// @notice The digest the attester signs for `key`, `registry`, `measurement` and `expiresAt`.
    function attestationDigest(address key, address registry, bytes32 measurement, uint64 expiresAt)
        public
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(KEY_ATTESTATION_TYPEHASH, key, registry, measurement, expiresAt));
        return Eip712.digest(domainSeparator(), structHash);
    }

    /// @inheritdoc IAttestationVerifier
    /// @dev `evidence` = `abi.encode(bytes32 measurement, uint64 expiresAt, bytes signature)`.
    function verify(address key, bytes calldata evidence) external view returns (bytes32 measurement) {
        (bytes32 measurement_, uint64 expiresAt, bytes memory signature) = abi.decode(evidence, (bytes32, uint64, bytes));
        if (expiresAt <= block.timestamp) revert AttestationExpired(expiresAt, block.timestamp);
        address signer = Signatures.recoverMemory(attestationDigest(key, msg.sender, measurement_, expiresAt), signature);
        if (signer != attester) revert NotTheAttester(signer, attester);
        return measurement_;
    }
}
