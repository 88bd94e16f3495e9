// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Validators} from "./base/Validators.sol";
import {KeyRegistry} from "../src/KeyRegistry.sol";
import {DevAttestationVerifier} from "../src/verifiers/DevAttestationVerifier.sol";
import {Signatures} from "../src/lib/Signatures.sol";

/// @notice KeyRegistry with the development attestation verifier.
contract KeyRegistryTest is Validators {
    uint256 internal constant VALIDATOR_KEY = 0xBEEF01;
    address internal validator;

    event VerifierSet(address indexed verifier, bool accepted);
    event KeyRegistered(address indexed key, address indexed verifier, bytes32 indexed measurement);
    event KeyRevoked(address indexed key, address indexed by);

    function setUp() public {
        _deployRegistry();
        validator = vm.addr(VALIDATOR_KEY);
    }

    // ------------------------------------------------------------- registration

    function test_a_key_attested_by_an_accepted_verifier_registers_whoever_submits_it() public {
        bytes memory evidence = _evidence(validator, address(registry), uint64(block.timestamp + 1));
        vm.expectEmit(address(registry));
        emit KeyRegistered(validator, address(devVerifier), MEASUREMENT);
        vm.prank(address(0xCAFE)); // not the key, not the owner
        registry.register(validator, devVerifier, evidence);

        assertTrue(registry.isActive(validator));
        (address verifier, bytes32 measurement, uint64 registeredAt, bool revoked) = registry.keyInfo(validator);
        assertEq(verifier, address(devVerifier));
        assertEq(measurement, MEASUREMENT);
        assertEq(registeredAt, block.timestamp);
        assertFalse(revoked);
    }

    function test_an_unknown_key_is_inactive_and_all_zero() public view {
        assertFalse(registry.isActive(validator));
        (address verifier, bytes32 measurement, uint64 registeredAt, bool revoked) = registry.keyInfo(validator);
        assertEq(verifier, address(0));
        assertEq(measurement, bytes32(0));
        assertEq(registeredAt, 0);
        assertFalse(revoked);
    }

    function test_a_verifier_the_registry_does_not_accept_registers_nothing() public {
        DevAttestationVerifier other = new DevAttestationVerifier(vm.addr(ATTESTER_KEY));
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.VerifierNotAccepted.selector, address(other)));
        registry.register(validator, other, _evidence(validator, address(registry), uint64(block.timestamp + 1)));
    }

    function test_only_the_owner_sets_verifiers_and_unaccepting_one_keeps_its_keys() public {
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.NotOwner.selector, address(this)));
        registry.setVerifier(devVerifier, false);

        _register(VALIDATOR_KEY);
        vm.expectEmit(address(registry));
        emit VerifierSet(address(devVerifier), false);
        vm.prank(OWNER);
        registry.setVerifier(devVerifier, false);
        assertFalse(registry.acceptedVerifier(devVerifier));
        assertTrue(registry.isActive(validator)); // registered keys stay; revoke them if needed

        address second = vm.addr(VALIDATOR_KEY + 1);
        bytes memory evidence = _evidence(second, address(registry), uint64(block.timestamp + 1));
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.VerifierNotAccepted.selector, address(devVerifier)));
        registry.register(second, devVerifier, evidence);
    }

    function test_a_key_registers_once() public {
        _register(VALIDATOR_KEY);
        bytes memory evidence = _evidence(validator, address(registry), uint64(block.timestamp + 1));
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.AlreadyRegistered.selector, validator));
        registry.register(validator, devVerifier, evidence);
    }

    function test_the_zero_address_is_not_a_key() public {
        bytes memory evidence = _evidence(address(0), address(registry), uint64(block.timestamp + 1));
        vm.expectRevert(KeyRegistry.ZeroKey.selector);
        registry.register(address(0), devVerifier, evidence);
    }

    // ---------------------------------------------------------------- revocation

    function test_the_owner_revokes_a_key() public {
        _register(VALIDATOR_KEY);
        vm.expectEmit(address(registry));
        emit KeyRevoked(validator, OWNER);
        vm.prank(OWNER);
        registry.revoke(validator);
        assertFalse(registry.isActive(validator));
        (,, uint64 registeredAt, bool revoked) = registry.keyInfo(validator);
        assertTrue(revoked);
        vm.assertGt(registeredAt, 0, "registeredAt");
    }

    function test_a_key_revokes_itself() public {
        _register(VALIDATOR_KEY);
        vm.expectEmit(address(registry));
        emit KeyRevoked(validator, validator);
        vm.prank(validator);
        registry.revoke(validator);
        assertFalse(registry.isActive(validator));
    }

    function testFuzz_nobody_else_revokes_a_key(address caller) public {
        vm.assume(caller != OWNER && caller != validator);
        _register(VALIDATOR_KEY);
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.NotAllowedToRevoke.selector, caller, validator));
        vm.prank(caller);
        registry.revoke(validator);
        assertTrue(registry.isActive(validator));
    }

    function test_a_key_that_never_registered_cannot_be_revoked() public {
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.NotRegistered.selector, validator));
        vm.prank(OWNER);
        registry.revoke(validator);
    }

    function test_revocation_is_final() public {
        _register(VALIDATOR_KEY);
        vm.prank(OWNER);
        registry.revoke(validator);

        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.KeyWasRevoked.selector, validator));
        vm.prank(OWNER);
        registry.revoke(validator);

        // fresh, valid evidence does not bring it back
        bytes memory evidence = _evidence(validator, address(registry), uint64(block.timestamp + 1 days));
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.KeyWasRevoked.selector, validator));
        registry.register(validator, devVerifier, evidence);
        assertFalse(registry.isActive(validator));
    }

    // ----------------------------------------------------- the development verifier

    function test_expired_evidence_is_rejected() public {
        uint64 expiresAt = uint64(block.timestamp); // expiry is exclusive
        bytes memory evidence = _evidence(validator, address(registry), expiresAt);
        vm.expectRevert(
            abi.encodeWithSelector(DevAttestationVerifier.AttestationExpired.selector, expiresAt, block.timestamp)
        );
        registry.register(validator, devVerifier, evidence);

        evidence = _evidence(validator, address(registry), expiresAt + 1);
        vm.warp(expiresAt + 1);
        vm.expectRevert(
            abi.encodeWithSelector(DevAttestationVerifier.AttestationExpired.selector, expiresAt + 1, expiresAt + 1)
        );
        registry.register(validator, devVerifier, evidence);
    }

    function test_evidence_signed_by_another_key_than_the_attester_is_rejected() public {
        uint64 expiresAt = uint64(block.timestamp + 1);
        uint256 impostor = 0xBAD;
        bytes32 digest =
            _keyAttestationDigest(block.chainid, address(devVerifier), validator, address(registry), expiresAt);
        bytes memory evidence = abi.encode(MEASUREMENT, expiresAt, _sign(impostor, digest));
        _expectNotTheAttester(vm.addr(impostor));
        registry.register(validator, devVerifier, evidence);
    }

    function test_evidence_for_another_registry_is_rejected() public {
        KeyRegistry other = new KeyRegistry(OWNER);
        vm.prank(OWNER);
        other.setVerifier(devVerifier, true);
        uint64 expiresAt = uint64(block.timestamp + 1);
        bytes memory forOther = _evidence(validator, address(other), expiresAt);
        // the verifier checks it against its caller, this registry: another signer recovers
        bytes32 asChecked =
            _keyAttestationDigest(block.chainid, address(devVerifier), validator, address(registry), expiresAt);
        _expectNotTheAttester(_recover(asChecked, _signatureOf(forOther)));
        registry.register(validator, devVerifier, forOther);
        // and it does register with the registry it names
        other.register(validator, devVerifier, forOther);
        assertTrue(other.isActive(validator));
        assertFalse(registry.isActive(validator));
    }

    function test_evidence_for_another_chain_is_rejected() public {
        uint64 expiresAt = uint64(block.timestamp + 1);
        bytes32 elsewhere =
            _keyAttestationDigest(block.chainid + 1, address(devVerifier), validator, address(registry), expiresAt);
        bytes memory signature = _sign(ATTESTER_KEY, elsewhere);
        bytes32 here =
            _keyAttestationDigest(block.chainid, address(devVerifier), validator, address(registry), expiresAt);
        _expectNotTheAttester(_recover(here, signature));
        registry.register(validator, devVerifier, abi.encode(MEASUREMENT, expiresAt, signature));
    }

    function test_evidence_for_another_verifier_contract_is_rejected() public {
        uint64 expiresAt = uint64(block.timestamp + 1);
        bytes32 elsewhere =
            _keyAttestationDigest(block.chainid, address(0xD00D), validator, address(registry), expiresAt);
        bytes memory signature = _sign(ATTESTER_KEY, elsewhere);
        bytes32 here =
            _keyAttestationDigest(block.chainid, address(devVerifier), validator, address(registry), expiresAt);
        _expectNotTheAttester(_recover(here, signature));
        registry.register(validator, devVerifier, abi.encode(MEASUREMENT, expiresAt, signature));
    }

    function testFuzz_evidence_for_one_key_registers_no_other(address other) public {
        vm.assume(other != validator && other != address(0));
        uint64 expiresAt = uint64(block.timestamp + 1);
        bytes memory evidence = _evidence(validator, address(registry), expiresAt);
        bytes32 asChecked =
            _keyAttestationDigest(block.chainid, address(devVerifier), other, address(registry), expiresAt);
        _expectNotTheAttester(_recover(asChecked, _signatureOf(evidence)));
        registry.register(other, devVerifier, evidence);
        assertFalse(registry.isActive(other));
    }

    function test_a_malleated_or_malformed_attester_signature_is_rejected() public {
        uint64 expiresAt = uint64(block.timestamp + 1);
        bytes memory good = _signatureOf(_evidence(validator, address(registry), expiresAt));
        (, bytes32 s,) = _split(_highS(good));
        vm.expectRevert(abi.encodeWithSelector(Signatures.SignatureHighS.selector, s));
        registry.register(validator, devVerifier, abi.encode(MEASUREMENT, expiresAt, _highS(good)));

        bytes memory badV = bytes.concat(good);
        badV[64] = 0x01;
        vm.expectRevert(abi.encodeWithSelector(Signatures.SignatureV.selector, 1));
        registry.register(validator, devVerifier, abi.encode(MEASUREMENT, expiresAt, badV));

        vm.expectRevert(abi.encodeWithSelector(Signatures.SignatureLength.selector, 64));
        registry.register(validator, devVerifier, abi.encode(MEASUREMENT, expiresAt, _slice(good, 64)));
    }

    /// The KeyAttestation digest is EIP-712 as other tools compute it: a signature made by
    /// `cast wallet sign --data` (foundry 1.7.1) over the typed data
    /// KeyAttestation{key 0x7099…79C8, registry 0xe7f1…0512, measurement
    /// keccak256("sha256:walproof-validator-image"), expiresAt 1900000000} in the domain
    /// {walproof, 1, 31337, 0x5FbD…0aa3}, with anvil's first key, recovers here.
    function test_the_key_attestation_digest_matches_cast() public {
        address deployed = 0x5FbDB2315678afecb367f032d93F642f64180aa3;
        address attester = 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266;
        vm.etch(deployed, address(new DevAttestationVerifier(attester)).code);
        vm.chainId(31337);
        bytes32 digest = DevAttestationVerifier(deployed)
            .attestationDigest(
                0x70997970C51812dc3A010C7d01b50e0d17dc79C8,
                0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512,
                MEASUREMENT,
                1_900_000_000
            );
        bytes memory castSignature =
            hex"c1f640a35e1893b3ac9ceecd3794df3817f21a4c9f147f91a046e494d68fbd015b4ffff68f6405a976dd6507d6460bcccddf1c7215690aff59ea4770e83d9b221c";
        assertEq(_recover(digest, castSignature), attester);
    }

    function _expectNotTheAttester(address signer) internal {
        vm.expectRevert(
            abi.encodeWithSelector(DevAttestationVerifier.NotTheAttester.selector, signer, vm.addr(ATTESTER_KEY))
        );
    }

    function _signatureOf(bytes memory evidence) internal pure returns (bytes memory signature) {
        (,, signature) = abi.decode(evidence, (bytes32, uint64, bytes));
    }

    function _slice(bytes memory data, uint256 length) internal pure returns (bytes memory out) {
        out = new bytes(length);
        for (uint256 i; i < length; ++i) {
            out[i] = data[i];
        }
    }
}
