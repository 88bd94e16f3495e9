// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAttestationVerifier} from "./verifiers/IAttestationVerifier.sol";

/// @title KeyRegistry
/// @notice The validator keys whose signatures walproof's bridge counts. A key becomes active
/// only after an accepted attestation verifier checked that it was generated inside a trusted
/// execution environment and bound to this registry; it stops counting when revoked, for good.
contract KeyRegistry {
    /// @notice What the registry knows of a key.
    struct KeyInfo {
        /// The verifier that checked the key's attestation.
        IAttestationVerifier verifier;
        /// What ran in the TEE, as the verifier reported it.
        bytes32 measurement;
        /// The block timestamp of the registration.
        uint64 registeredAt;
        /// Whether the key was revoked (final).
        bool revoked;
    }

    /// @notice The account that accepts verifiers and revokes keys.
    address public immutable owner;

    /// @notice The verifiers whose attestations register keys.
    mapping(IAttestationVerifier verifier => bool accepted) public acceptedVerifier;

    mapping(address key => KeyInfo info) private keys;

    /// @notice A verifier was accepted or no longer is.
    event VerifierSet(address indexed verifier, bool accepted);
    /// @notice `key` was registered after `verifier` checked its attestation.
    event KeyRegistered(address indexed key, address indexed verifier, bytes32 indexed measurement);
    /// @notice `key` was revoked by `by` (the owner or the key itself).
    event KeyRevoked(address indexed key, address indexed by);

    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice The verifier is not accepted by this registry.
    error VerifierNotAccepted(address verifier);
    /// @notice The key is already registered.
    error AlreadyRegistered(address key);
    /// @notice The key was revoked; a revoked key never comes back.
    error KeyWasRevoked(address key);
    /// @notice The key is not registered.
    error NotRegistered(address key);
    /// @notice Neither the owner nor the key itself asked for the revocation.
    error NotAllowedToRevoke(address caller, address key);
    /// @notice The zero address is not a key.
    error ZeroKey();

    /// @param owner_ The account that accepts verifiers and revokes keys.
    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice Accepts `verifier`'s attestations for new registrations, or stops accepting them.
    /// @dev Keys already registered through a verifier stay registered; revoke them if needed.
    function setVerifier(IAttestationVerifier verifier, bool accepted) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        acceptedVerifier[verifier] = accepted;
        emit VerifierSet(address(verifier), accepted);
    }

    /// @notice Registers `key` once `verifier` confirms `evidence` binds it to this registry.
    /// @dev Anyone may submit: the evidence itself names the key and this registry.
    /// @param key The validator key's address.
    /// @param verifier An accepted attestation verifier.
    /// @param evidence The verifier-specific attestation of the key.
    function register(address key, IAttestationVerifier verifier, bytes calldata evidence) external {
        if (key == address(0)) revert ZeroKey();
        if (!acceptedVerifier[verifier]) revert VerifierNotAccepted(address(verifier));
        KeyInfo storage info = keys[key];
        if (info.revoked) revert KeyWasRevoked(key);
        if (info.registeredAt != 0) revert AlreadyRegistered(key);
        bytes32 measurement = verifier.verify(key, evidence);
        keys[key] = KeyInfo({
            verifier: verifier, measurement: measurement, registeredAt: uint64(block.timestamp), revoked: false
        });
        emit KeyRegistered(key, address(verifier), measurement);
    }

    /// @notice Revokes `key` for good. The owner may revoke any key, a key only itself.
    function revoke(address key) external {
        if (msg.sender != owner && msg.sender != key) revert NotAllowedToRevoke(msg.sender, key);
        KeyInfo storage info = keys[key];
        if (info.registeredAt == 0) revert NotRegistered(key);
        if (info.revoked) revert KeyWasRevoked(key);
        info.revoked = true;
        emit KeyRevoked(key, msg.sender);
    }

    /// @notice Whether `key`'s signatures count: registered and not revoked.
    function isActive(address key) external view returns (bool) {
        KeyInfo storage info = keys[key];
        return info.registeredAt != 0 && !info.revoked;
    }

    /// @notice Everything the registry knows of `key` (all zero when it never registered).
    function keyInfo(address key)
        external
        view
        returns (address verifier, bytes32 measurement, uint64 registeredAt, bool revoked)
    {
        KeyInfo storage info = keys[key];
        return (address(info.verifier), info.measurement, info.registeredAt, info.revoked);
    }
}
