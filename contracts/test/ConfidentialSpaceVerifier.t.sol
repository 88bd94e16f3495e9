// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./base/Test.sol";
import {KeyRegistry} from "../src/KeyRegistry.sol";
import {IAttestationVerifier} from "../src/verifiers/IAttestationVerifier.sol";
import {ConfidentialSpaceVerifier} from "../src/verifiers/ConfidentialSpaceVerifier.sol";
import {Base64Url} from "../src/lib/Base64Url.sol";
import {JsonClaims} from "../src/lib/JsonClaims.sol";
import {Rsa} from "../src/lib/Rsa.sol";

/// @dev tokens.json, written by test/fixtures/confidential_space/make_tokens.py: Confidential
/// Space tokens signed with the test key that stands in for Google's, each case named.
abstract contract ConfidentialSpaceFixture is Test {
    string internal constant FIXTURE = "test/fixtures/confidential_space/tokens.json";

    function _fixture() internal view returns (string memory) {
        return vm.readFile(FIXTURE);
    }

    function _field(string memory name, string memory field) internal pure returns (string memory) {
        return string.concat(".cases.", name, ".", field);
    }

    function _header(string memory json, string memory name) internal pure returns (bytes memory) {
        return vm.parseJsonBytes(json, _field(name, "header_hex"));
    }

    function _payload(string memory json, string memory name) internal pure returns (bytes memory) {
        return vm.parseJsonBytes(json, _field(name, "payload_hex"));
    }

    function _signature(string memory json, string memory name) internal pure returns (bytes memory) {
        return vm.parseJsonBytes(json, _field(name, "signature"));
    }

    /// The evidence a relayer submits for case `name`: `abi.encode(header, payload, signature)`.
    function _evidence(string memory json, string memory name) internal pure returns (bytes memory) {
        return abi.encode(_header(json, name), _payload(json, name), _signature(json, name));
    }

    /// `value` as 64 lower-case hex digits (vm.toString gives them after "0x").
    function _hex(bytes32 value) internal pure returns (string memory) {
        bytes memory text = bytes(vm.toString(value));
        bytes memory digits = new bytes(64);
        for (uint256 i; i < 64; i++) {
            digits[i] = text[i + 2];
        }
        return string(digits);
    }
}

contract ConfidentialSpaceVerifierTest is ConfidentialSpaceFixture {
    event SigningKeySet(bytes32 indexed kidHash, string kid, bytes modulus, bytes exponent);
    event SigningKeyRemoved(bytes32 indexed kidHash, string kid);
    event ImageAllowed(bytes32 indexed measurement, string digest);
    event ImageDisallowed(bytes32 indexed measurement, string digest);
    event ProjectAllowed(bytes32 indexed projectHash, string projectId);
    event ProjectDisallowed(bytes32 indexed projectHash, string projectId);
    event KeyRegistered(address indexed key, address indexed verifier, bytes32 indexed measurement);
    /// forge prints this ds-test event with -vv.
    event log_named_uint(string key, uint256 val);

    /// The project of the fixture's project_not_allowed token (make_tokens.py's OTHER_PROJECT).
    string internal constant OTHER_PROJECT = "someone-elses-project";

    address internal immutable owner = address(uint160(uint256(keccak256("walproof/test/verifier-owner"))));
    address internal immutable registryOwner = address(uint160(uint256(keccak256("walproof/test/registry-owner"))));

    ConfidentialSpaceVerifier internal verifier;
    // The fixture's binding and times.
    address internal registry;
    address internal key;
    string internal kid;
    string internal audience;
    string internal imageDigest;
    string internal projectId;
    string internal nonce;
    uint256 internal iat;
    uint256 internal exp;
    uint256 internal now_;

    function setUp() public {
        string memory json = _fixture();
        vm.chainId(vm.parseJsonUint(json, ".chain_id"));
        registry = vm.parseJsonAddress(json, ".registry");
        key = vm.parseJsonAddress(json, ".key");
        kid = vm.parseJsonString(json, ".signing_key.kid");
        audience = vm.parseJsonString(json, ".audience");
        imageDigest = vm.parseJsonString(json, ".image_digest");
        projectId = vm.parseJsonString(json, ".project_id");
        nonce = vm.parseJsonString(json, ".nonce");
        iat = vm.parseJsonUint(json, ".iat");
        exp = vm.parseJsonUint(json, ".exp");
        now_ = vm.parseJsonUint(json, ".now");
        vm.warp(now_);

        verifier = new ConfidentialSpaceVerifier(owner, audience);
        vm.startPrank(owner);
        verifier.setSigningKey(
            kid, vm.parseJsonBytes(json, ".signing_key.modulus"), vm.parseJsonBytes(json, ".signing_key.exponent")
        );
        verifier.allowImage(imageDigest);
        verifier.allowProject(projectId);
        vm.stopPrank();
    }

    // --- every fixture case ---------------------------------------------------------------------

    /// The revert data case `name` must produce; empty for a token that must be accepted.
    function _expected(string memory json, string memory name) internal returns (bytes memory) {
        bytes32 id = keccak256(bytes(name));
        if (id == keccak256("valid") || id == keccak256("whitespace") || id == keccak256("without_iat_nbf")) {
            return "";
        }
        if (id == keccak256("expired")) {
            return abi.encodeWithSelector(ConfidentialSpaceVerifier.TokenExpired.selector, now_, now_);
        }
        if (id == keccak256("issued_in_future")) {
            return abi.encodeWithSelector(ConfidentialSpaceVerifier.TokenNotYetValid.selector, "iat", now_ + 1, now_);
        }
        if (id == keccak256("not_before_future")) {
            return abi.encodeWithSelector(ConfidentialSpaceVerifier.TokenNotYetValid.selector, "nbf", now_ + 1, now_);
        }
        if (id == keccak256("wrong_issuer")) {
            return _mismatch("iss", "https://accounts.google.com");
        }
        if (id == keccak256("wrong_audience")) return _mismatch("aud", "another-app");
        if (id == keccak256("nonce_for_other_key")) {
            address other = vm.parseJsonAddress(json, _field(name, "nonce_binds.key"));
            return _nonceMismatch(verifier.expectedNonce(registry, other));
        }
        if (id == keccak256("nonce_for_other_chain")) {
            uint256 chain = block.chainid;
            vm.chainId(vm.parseJsonUint(json, _field(name, "nonce_binds.chain_id")));
            string memory found = verifier.expectedNonce(registry, key);
            vm.chainId(chain);
            return _nonceMismatch(found);
        }
        if (id == keccak256("nonce_upper_case")) return _nonceMismatch(_upper(nonce));
        if (id == keccak256("nonce_list")) {
            return abi.encodeWithSelector(JsonClaims.ClaimNotAString.selector, "eat_nonce");
        }
        if (id == keccak256("image_not_allowed")) {
            string memory digest = string.concat("sha256:", _hex(sha256("walproof: an image nobody allowed")));
            return abi.encodeWithSelector(ConfidentialSpaceVerifier.ImageNotAllowed.selector, digest);
        }
        if (id == keccak256("project_not_allowed")) {
            return abi.encodeWithSelector(ConfidentialSpaceVerifier.ProjectNotAllowed.selector, OTHER_PROJECT);
        }
        if (id == keccak256("duplicated_project_id")) {
            return abi.encodeWithSelector(JsonClaims.ClaimRepeated.selector, "project_id");
        }
        if (id == keccak256("debug_enabled")) return _mismatch("dbgstat", "enabled");
        if (id == keccak256("swname_wrong")) return _mismatch("swname", "GCE");
        if (id == keccak256("secboot_false")) return _mismatch("secboot", "false");
        if (id == keccak256("unknown_kid")) {
            return abi.encodeWithSelector(ConfidentialSpaceVerifier.UnknownSigningKey.selector, "walproof-test-rsa-2");
        }
        if (id == keccak256("alg_none")) {
            return abi.encodeWithSelector(ConfidentialSpaceVerifier.UnsupportedAlgorithm.selector, "none");
        }
        if (id == keccak256("alg_hs256")) {
            return abi.encodeWithSelector(ConfidentialSpaceVerifier.UnsupportedAlgorithm.selector, "HS256");
        }
        if (id == keccak256("duplicated_image_digest")) {
            return abi.encodeWithSelector(JsonClaims.ClaimRepeated.selector, "image_digest");
        }
        if (id == keccak256("escaped_claim_value")) {
            return abi.encodeWithSelector(JsonClaims.ClaimEscaped.selector, "swname");
        }
        if (
            id == keccak256("other_signing_key") || id == keccak256("flipped_signature_byte")
                || id == keccak256("tampered_payload") || id == keccak256("truncated_signature")
        ) {
            return abi.encodeWithSelector(ConfidentialSpaceVerifier.BadRsaSignature.selector);
        }
        revert(string.concat("no expectation for the fixture case ", name));
    }

    function _mismatch(string memory claim, string memory found) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ConfidentialSpaceVerifier.ClaimMismatch.selector, claim, found);
    }

    function _nonceMismatch(string memory found) internal view returns (bytes memory) {
        return abi.encodeWithSelector(ConfidentialSpaceVerifier.NonceMismatch.selector, found, nonce);
    }

    /// `text` in upper case (a copy).
    function _upper(string memory text) internal pure returns (string memory) {
        bytes memory b = bytes.concat(bytes(text));
        for (uint256 i; i < b.length; i++) {
            if (b[i] >= "a" && b[i] <= "z") b[i] = bytes1(uint8(b[i]) - 32);
        }
        return string(b);
    }

    /// Verifies case `name` as the registry would and compares with {_expected}.
    function _check(string memory name) internal {
        string memory json = _fixture();
        bytes memory evidence = _evidence(json, name);
        bytes memory expected = _expected(json, name);
        vm.prank(registry);
        try verifier.verify(key, evidence) returns (bytes32 measurement) {
            vm.assertEq(expected.length, 0, string.concat(name, ": accepted, but must be rejected"));
            vm.assertEq(measurement, keccak256(bytes(imageDigest)), string.concat(name, ": measurement"));
        } catch (bytes memory reason) {
            vm.assertEq(reason, expected, string.concat(name, ": reverted with other data than expected"));
        }
    }

    /// A case added to make_tokens.py without an expectation in {_expected} fails here.
    function test_every_fixture_case_has_its_expected_outcome() public {
        string[] memory names = vm.parseJsonStringArray(_fixture(), ".case_names");
        vm.assertEq(names.length, 27, "the fixture's case count changed: review the expectations");
        for (uint256 i; i < names.length; i++) {
            _check(names[i]);
        }
    }

    function test_accepts_the_token_the_launcher_returns() public {
        _check("valid");
    }

    function test_accepts_whitespace_after_the_colons() public {
        _check("whitespace");
    }

    function test_accepts_a_token_without_iat_and_nbf() public {
        _check("without_iat_nbf");
    }

    function test_rejects_a_token_expiring_at_the_block_time() public {
        _check("expired");
    }

    function test_rejects_a_token_issued_after_the_block_time() public {
        _check("issued_in_future");
    }

    function test_rejects_a_token_not_valid_before_a_later_time() public {
        _check("not_before_future");
    }

    function test_rejects_another_issuer() public {
        _check("wrong_issuer");
    }

    function test_rejects_a_token_for_another_audience() public {
        _check("wrong_audience");
    }

    function test_rejects_a_nonce_that_binds_another_key() public {
        _check("nonce_for_other_key");
    }

    function test_rejects_a_nonce_that_binds_another_chain() public {
        _check("nonce_for_other_chain");
    }

    function test_rejects_the_binding_in_upper_case_hex() public {
        _check("nonce_upper_case");
    }

    function test_rejects_a_nonce_list() public {
        _check("nonce_list");
    }

    function test_rejects_an_image_not_allowed() public {
        _check("image_not_allowed");
    }

    function test_rejects_an_allowed_image_run_in_a_project_not_allowed() public {
        _check("project_not_allowed");
    }

    function test_rejects_a_project_id_injected_through_the_container_environment() public {
        _check("duplicated_project_id");
    }

    function test_rejects_the_debug_image() public {
        _check("debug_enabled");
    }

    function test_rejects_a_vm_not_running_the_launcher() public {
        _check("swname_wrong");
    }

    function test_rejects_a_vm_booted_without_secure_boot() public {
        _check("secboot_false");
    }

    function test_rejects_a_kid_that_is_not_pinned() public {
        _check("unknown_kid");
    }

    function test_rejects_an_unsigned_token() public {
        _check("alg_none");
    }

    function test_rejects_hs256_keyed_with_the_public_key() public {
        _check("alg_hs256");
    }

    function test_rejects_an_image_digest_injected_through_the_container_environment() public {
        _check("duplicated_image_digest");
    }

    function test_rejects_an_escaped_claim_value_that_decodes_to_the_required_one() public {
        _check("escaped_claim_value");
    }

    function test_rejects_a_signature_by_another_key_under_the_pinned_kid() public {
        _check("other_signing_key");
    }

    function test_rejects_a_signature_with_one_bit_flipped() public {
        _check("flipped_signature_byte");
    }

    function test_rejects_a_payload_the_signature_does_not_cover() public {
        _check("tampered_payload");
    }

    function test_rejects_a_truncated_signature() public {
        _check("truncated_signature");
    }

    // --- the binding ----------------------------------------------------------------------------

    function test_fixture_binds_the_registry_and_key_the_tests_use() public view {
        string memory json = _fixture();
        assertEq(key, vm.addr(1));
        assertEq(vm.parseJsonAddress(json, _field("nonce_for_other_key", "nonce_binds.key")), vm.addr(2));
        // The python keccak of make_tokens.py and KeyBinding agree.
        assertEq(verifier.expectedNonce(registry, key), nonce);
        string[] memory names = vm.parseJsonStringArray(json, ".case_names");
        for (uint256 i; i < names.length; i++) {
            vm.assertEq(vm.parseJsonUint(json, _field(names[i], "binds.chain_id")), block.chainid, names[i]);
            vm.assertEq(vm.parseJsonAddress(json, _field(names[i], "binds.registry")), registry, names[i]);
            vm.assertEq(vm.parseJsonAddress(json, _field(names[i], "binds.key")), key, names[i]);
        }
    }

    function test_rejects_the_token_when_another_contract_calls() public {
        address caller = address(0xCA11E5);
        bytes memory evidence = _evidence(_fixture(), "valid");
        vm.expectRevert(
            abi.encodeWithSelector(
                ConfidentialSpaceVerifier.NonceMismatch.selector, nonce, verifier.expectedNonce(caller, key)
            )
        );
        vm.prank(caller);
        verifier.verify(key, evidence);
    }

    function test_rejects_the_token_for_another_key() public {
        address other = vm.addr(2);
        bytes memory evidence = _evidence(_fixture(), "valid");
        vm.expectRevert(
            abi.encodeWithSelector(
                ConfidentialSpaceVerifier.NonceMismatch.selector, nonce, verifier.expectedNonce(registry, other)
            )
        );
        vm.prank(registry);
        verifier.verify(other, evidence);
    }

    // --- time -----------------------------------------------------------------------------------

    function test_accepts_until_one_second_before_exp() public {
        bytes memory evidence = _evidence(_fixture(), "valid");
        vm.warp(exp - 1);
        vm.prank(registry);
        assertEq(verifier.verify(key, evidence), keccak256(bytes(imageDigest)));

        vm.warp(exp);
        vm.expectRevert(abi.encodeWithSelector(ConfidentialSpaceVerifier.TokenExpired.selector, exp, exp));
        vm.prank(registry);
        verifier.verify(key, evidence);
    }

    function test_accepts_from_iat_on() public {
        bytes memory evidence = _evidence(_fixture(), "valid");
        vm.warp(iat);
        vm.prank(registry);
        assertEq(verifier.verify(key, evidence), keccak256(bytes(imageDigest)));

        vm.warp(iat - 1);
        vm.expectRevert(
            abi.encodeWithSelector(ConfidentialSpaceVerifier.TokenNotYetValid.selector, "iat", iat, iat - 1)
        );
        vm.prank(registry);
        verifier.verify(key, evidence);
    }

    // --- the key registry -----------------------------------------------------------------------

    /// The fixture's nonce binds a fixed registry address, so the registry must live there. A
    /// KeyRegistry's constructor only sets its immutable owner, which is part of its runtime code:
    /// etching that code at the fixture's address gives the registry the test deployed, at the
    /// address the token names, independent of deployer nonces or forge's test addresses.
    function _deployRegistryAtFixtureAddress() internal returns (KeyRegistry) {
        KeyRegistry deployed = new KeyRegistry(registryOwner);
        vm.etch(registry, address(deployed).code);
        KeyRegistry atFixture = KeyRegistry(registry);
        assertEq(atFixture.owner(), registryOwner);
        vm.prank(registryOwner);
        atFixture.setVerifier(verifier, true);
        return atFixture;
    }

    function test_registers_a_key_through_the_key_registry() public {
        KeyRegistry keys = _deployRegistryAtFixtureAddress();
        bytes memory evidence = _evidence(_fixture(), "valid");
        bytes32 measurement = keccak256(bytes(imageDigest));

        vm.expectEmit(true, true, true, true, registry);
        emit KeyRegistered(key, address(verifier), measurement);
        // Anyone may relay the evidence: it names the key and the registry itself.
        vm.prank(address(0x5E11D3));
        keys.register(key, verifier, evidence);

        assertTrue(keys.isActive(key));
        (address via, bytes32 recorded, uint64 registeredAt, bool revoked) = keys.keyInfo(key);
        assertEq(via, address(verifier));
        assertEq(recorded, measurement);
        assertEq(registeredAt, now_);
        assertFalse(revoked);

        // The same token cannot register the key twice, nor any other key.
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.AlreadyRegistered.selector, key));
        keys.register(key, verifier, evidence);
        address other = vm.addr(2);
        vm.expectRevert(
            abi.encodeWithSelector(
                ConfidentialSpaceVerifier.NonceMismatch.selector, nonce, verifier.expectedNonce(registry, other)
            )
        );
        keys.register(other, verifier, evidence);
    }

    function test_a_registry_at_another_address_cannot_use_the_token() public {
        KeyRegistry elsewhere = new KeyRegistry(registryOwner);
        vm.prank(registryOwner);
        elsewhere.setVerifier(verifier, true);
        bytes memory evidence = _evidence(_fixture(), "valid");
        vm.expectRevert(
            abi.encodeWithSelector(
                ConfidentialSpaceVerifier.NonceMismatch.selector, nonce, verifier.expectedNonce(address(elsewhere), key)
            )
        );
        elsewhere.register(key, verifier, evidence);
    }

    /// Rotation: Google publishes a new key; the owner pins it, then removes the retired one.
    /// Tokens under the new kid pass, tokens under the old one fail, keys registered before stay.
    function test_rotating_the_signing_key_keeps_keys_registered_before() public {
        KeyRegistry keys = _deployRegistryAtFixtureAddress();
        string memory json = _fixture();
        keys.register(key, verifier, _evidence(json, "valid"));

        string memory newKid = "walproof-test-rsa-2";
        vm.startPrank(owner);
        // The fixture's unknown_kid token is signed by the test key under this kid.
        verifier.setSigningKey(
            newKid, vm.parseJsonBytes(json, ".signing_key.modulus"), vm.parseJsonBytes(json, ".signing_key.exponent")
        );
        verifier.removeSigningKey(kid);
        vm.stopPrank();

        vm.prank(registry);
        assertEq(verifier.verify(key, _evidence(json, "unknown_kid")), keccak256(bytes(imageDigest)));
        vm.expectRevert(abi.encodeWithSelector(ConfidentialSpaceVerifier.UnknownSigningKey.selector, kid));
        vm.prank(registry);
        verifier.verify(key, _evidence(json, "valid"));
        assertTrue(keys.isActive(key));
    }

    // --- administration -------------------------------------------------------------------------

    function testFuzz_only_the_owner_administers(address caller) public {
        vm.assume(caller != owner);
        bytes memory notOwner = abi.encodeWithSelector(ConfidentialSpaceVerifier.NotOwner.selector, caller);
        vm.startPrank(caller);
        vm.expectRevert(notOwner);
        verifier.setSigningKey("k", new bytes(256), hex"010001");
        vm.expectRevert(notOwner);
        verifier.removeSigningKey(kid);
        vm.expectRevert(notOwner);
        verifier.allowImage(imageDigest);
        vm.expectRevert(notOwner);
        verifier.disallowImage(imageDigest);
        vm.expectRevert(notOwner);
        verifier.allowProject(projectId);
        vm.expectRevert(notOwner);
        verifier.disallowProject(projectId);
        vm.stopPrank();
    }

    function test_pins_a_signing_key_and_announces_it() public {
        bytes memory modulus = _soundModulus(256);
        bytes32 kidHash = keccak256("google-kid-2");
        vm.expectEmit(true, true, true, true, address(verifier));
        emit SigningKeySet(kidHash, "google-kid-2", modulus, hex"010001");
        vm.prank(owner);
        verifier.setSigningKey("google-kid-2", modulus, hex"010001");
        (bytes memory n, bytes memory e) = verifier.signingKey("google-kid-2");
        assertEq(n, modulus);
        assertEq(e, hex"010001");

        vm.expectEmit(true, true, true, true, address(verifier));
        emit SigningKeyRemoved(kidHash, "google-kid-2");
        vm.prank(owner);
        verifier.removeSigningKey("google-kid-2");
        (n, e) = verifier.signingKey("google-kid-2");
        assertEq(n.length, 0);
        assertEq(e.length, 0);
    }

    function _soundModulus(uint256 length) internal pure returns (bytes memory modulus) {
        modulus = new bytes(length);
        modulus[0] = 0xc1;
        modulus[length - 1] = 0x01;
    }

    function test_refuses_to_pin_unsound_keys() public {
        bytes memory sound = _soundModulus(256);
        bytes[] memory moduli = new bytes[](5);
        moduli[0] = _soundModulus(255); // below 2048 bits
        moduli[1] = _soundModulus(513); // above 4096 bits
        moduli[2] = bytes.concat(hex"00", _soundModulus(255)); // a leading zero byte
        moduli[3] = _soundModulus(256);
        moduli[3][255] = 0x02; // even
        moduli[4] = "";
        for (uint256 i; i < moduli.length; i++) {
            _expectUnsound(moduli[i], hex"010001");
        }
        bytes[] memory exponents = new bytes[](6);
        exponents[0] = hex"01"; // every encoded message would sign itself
        exponents[1] = hex"010000"; // even
        exponents[2] = hex"00010001"; // a leading zero byte
        exponents[3] = "";
        exponents[4] = bytes.concat(hex"01", new bytes(31), hex"01"); // 33 bytes
        exponents[5] = hex"02";
        for (uint256 i; i < exponents.length; i++) {
            _expectUnsound(sound, exponents[i]);
        }
        // The bounds themselves are accepted.
        vm.startPrank(owner);
        verifier.setSigningKey("min", _soundModulus(256), hex"03");
        verifier.setSigningKey("max", _soundModulus(512), bytes.concat(hex"01", new bytes(30), hex"01"));
        vm.stopPrank();
    }

    function _expectUnsound(bytes memory modulus, bytes memory exponent) internal {
        vm.expectRevert(
            abi.encodeWithSelector(ConfidentialSpaceVerifier.InvalidSigningKey.selector, "k", modulus, exponent)
        );
        vm.prank(owner);
        verifier.setSigningKey("k", modulus, exponent);
    }

    function test_removing_a_kid_that_is_not_pinned_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(ConfidentialSpaceVerifier.UnknownSigningKey.selector, "walproof-test-rsa")
        );
        vm.prank(owner);
        verifier.removeSigningKey("walproof-test-rsa");
    }

    function test_allows_and_disallows_images_and_announces_it() public {
        string memory json = _fixture();
        string memory other = string.concat("sha256:", _hex(sha256("walproof: an image nobody allowed")));
        bytes32 measurement = keccak256(bytes(other));
        assertFalse(verifier.isImageAllowed(other));

        vm.expectEmit(true, true, true, true, address(verifier));
        emit ImageAllowed(measurement, other);
        vm.prank(owner);
        verifier.allowImage(other);
        assertTrue(verifier.isImageAllowed(other));
        assertTrue(verifier.imageAllowed(measurement));
        // The token for that image now passes, and its measurement names that image.
        vm.prank(registry);
        assertEq(verifier.verify(key, _evidence(json, "image_not_allowed")), measurement);

        vm.expectEmit(true, true, true, true, address(verifier));
        emit ImageDisallowed(keccak256(bytes(imageDigest)), imageDigest);
        vm.prank(owner);
        verifier.disallowImage(imageDigest);
        vm.expectRevert(abi.encodeWithSelector(ConfidentialSpaceVerifier.ImageNotAllowed.selector, imageDigest));
        vm.prank(registry);
        verifier.verify(key, _evidence(json, "valid"));

        // Disallowing what is not allowed is a mistake worth hearing about.
        vm.expectRevert(abi.encodeWithSelector(ConfidentialSpaceVerifier.ImageNotAllowed.selector, imageDigest));
        vm.prank(owner);
        verifier.disallowImage(imageDigest);
    }

    function test_refuses_to_allow_malformed_image_digests() public {
        string memory hex64 = _hex(keccak256("image"));
        string[] memory digests = new string[](6);
        digests[0] = hex64; // no algorithm
        digests[1] = string.concat("sha256:", _upper(hex64)); // the token spells digests in lower case
        digests[2] = string.concat("sha512:", hex64);
        digests[3] = string.concat("sha256:", hex64, "0");
        digests[4] = string.concat("sha256:", _hex(keccak256("image")), " ");
        digests[5] = string.concat("sha256:g", _slice(hex64, 1));
        for (uint256 i; i < digests.length; i++) {
            vm.expectRevert(abi.encodeWithSelector(ConfidentialSpaceVerifier.InvalidImageDigest.selector, digests[i]));
            vm.prank(owner);
            verifier.allowImage(digests[i]);
        }
    }

    function test_allows_and_disallows_projects_and_announces_it() public {
        string memory json = _fixture();
        bytes32 projectHash = keccak256(bytes(OTHER_PROJECT));
        assertFalse(verifier.isProjectAllowed(OTHER_PROJECT));

        vm.expectEmit(true, true, true, true, address(verifier));
        emit ProjectAllowed(projectHash, OTHER_PROJECT);
        vm.prank(owner);
        verifier.allowProject(OTHER_PROJECT);
        assertTrue(verifier.isProjectAllowed(OTHER_PROJECT));
        assertTrue(verifier.projectAllowed(projectHash));
        // The token from that project now passes; the measurement still names the image only.
        vm.prank(registry);
        assertEq(verifier.verify(key, _evidence(json, "project_not_allowed")), keccak256(bytes(imageDigest)));

        vm.expectEmit(true, true, true, true, address(verifier));
        emit ProjectDisallowed(keccak256(bytes(projectId)), projectId);
        vm.prank(owner);
        verifier.disallowProject(projectId);
        assertFalse(verifier.isProjectAllowed(projectId));
        vm.expectRevert(abi.encodeWithSelector(ConfidentialSpaceVerifier.ProjectNotAllowed.selector, projectId));
        vm.prank(registry);
        verifier.verify(key, _evidence(json, "valid"));

        // Disallowing what is not allowed is a mistake worth hearing about.
        vm.expectRevert(abi.encodeWithSelector(ConfidentialSpaceVerifier.ProjectNotAllowed.selector, projectId));
        vm.prank(owner);
        verifier.disallowProject(projectId);
    }

    function test_refuses_to_allow_malformed_project_ids() public {
        string[] memory ids = new string[](9);
        ids[0] = ""; // empty
        ids[1] = "abcde"; // below 6 characters
        ids[2] = "a23456789012345678901234567890x"; // above 30
        ids[3] = "Example-project"; // the token spells ids in lower case
        ids[4] = "1example-project"; // starts with a digit
        ids[5] = "-example-project"; // starts with a hyphen
        ids[6] = "example-project-"; // ends with a hyphen
        ids[7] = "example.com:example-project"; // legacy domain-scoped
        ids[8] = "example-project "; // trailing space
        for (uint256 i; i < ids.length; i++) {
            vm.expectRevert(abi.encodeWithSelector(ConfidentialSpaceVerifier.InvalidProjectId.selector, ids[i]));
            vm.prank(owner);
            verifier.allowProject(ids[i]);
        }
        // The bounds themselves are accepted.
        vm.startPrank(owner);
        verifier.allowProject("abcdef");
        verifier.allowProject("a23456789-123456789-1234567890");
        vm.stopPrank();
        assertTrue(verifier.isProjectAllowed("a23456789-123456789-1234567890"));
    }

    function _slice(string memory text, uint256 from) internal pure returns (string memory) {
        bytes memory b = bytes(text);
        bytes memory out = new bytes(b.length - from);
        for (uint256 i; i < out.length; i++) {
            out[i] = b[from + i];
        }
        return string(out);
    }

    function test_rejects_an_empty_audience() public {
        vm.expectRevert(ConfidentialSpaceVerifier.EmptyAudience.selector);
        new ConfidentialSpaceVerifier(owner, "");
    }

    function test_a_verifier_for_another_audience_rejects_the_token() public {
        ConfidentialSpaceVerifier elsewhere = new ConfidentialSpaceVerifier(owner, "another-app");
        string memory json = _fixture();
        vm.startPrank(owner);
        elsewhere.setSigningKey(
            kid, vm.parseJsonBytes(json, ".signing_key.modulus"), vm.parseJsonBytes(json, ".signing_key.exponent")
        );
        elsewhere.allowImage(imageDigest);
        vm.stopPrank();
        assertEq(elsewhere.audience(), "another-app");
        vm.expectRevert(_mismatch("aud", audience));
        vm.prank(registry);
        elsewhere.verify(key, _evidence(json, "valid"));
    }

    // --- gas ------------------------------------------------------------------------------------

    function test_gas_of_a_successful_verify() public {
        bytes memory evidence = _evidence(_fixture(), "valid");
        vm.prank(registry);
        uint256 before = gasleft();
        verifier.verify(key, evidence);
        uint256 used = before - gasleft();
        emit log_named_uint("ConfidentialSpaceVerifier.verify gas (1.5 kB payload, RSA-2048)", used);
        // A regression guard with some room, not a target.
        assertLt(used, 350_000);
    }

    function assertLt(uint256 left, uint256 right) internal pure {
        vm.assertLt(left, right, "not below");
    }
}

/// RSASSA-PKCS1-v1_5 / SHA-256 against the fixture's keys and signatures.
contract RsaTest is ConfidentialSpaceFixture {
    bytes internal modulus;
    bytes internal exponent;
    bytes internal message;
    bytes internal signature;

    function setUp() public {
        string memory json = _fixture();
        modulus = vm.parseJsonBytes(json, ".rsa.google.modulus");
        exponent = vm.parseJsonBytes(json, ".rsa.google.exponent");
        message = vm.parseJsonBytes(json, ".rsa.message");
        signature = vm.parseJsonBytes(json, ".rsa.signature");
    }

    function test_verifies_the_fixture_signature() public view {
        assertTrue(Rsa.pkcs1Sha256(sha256(message), signature, modulus, exponent));
    }

    function test_verifies_the_signature_of_every_token_the_verifier_accepts() public view {
        string memory json = _fixture();
        string[3] memory accepted = ["valid", "whitespace", "without_iat_nbf"];
        for (uint256 i; i < accepted.length; i++) {
            bytes memory input = abi.encodePacked(
                Base64Url.encode(_header(json, accepted[i])), ".", Base64Url.encode(_payload(json, accepted[i]))
            );
            vm.assertTrue(Rsa.pkcs1Sha256(sha256(input), _signature(json, accepted[i]), modulus, exponent), accepted[i]);
        }
    }

    function testFuzz_rejects_any_changed_signature_byte(uint256 index, uint8 flip) public view {
        index = bound(index, 0, signature.length - 1);
        flip = uint8(bound(flip, 1, 255));
        bytes memory changed = bytes.concat(signature);
        changed[index] ^= bytes1(flip);
        assertFalse(Rsa.pkcs1Sha256(sha256(message), changed, modulus, exponent));
    }

    function testFuzz_rejects_random_signatures(bytes32 seed) public view {
        bytes memory random = new bytes(256);
        for (uint256 i; i < 8; i++) {
            bytes32 word = keccak256(abi.encode(seed, i));
            for (uint256 j; j < 32; j++) {
                random[32 * i + j] = word[j];
            }
        }
        assertFalse(Rsa.pkcs1Sha256(sha256(message), random, modulus, exponent));
    }

    function testFuzz_rejects_another_digest(bytes32 digest) public view {
        vm.assume(digest != sha256(message));
        assertFalse(Rsa.pkcs1Sha256(digest, signature, modulus, exponent));
    }

    /// s + n exponentiates to the same encoded message as s; only "signature < modulus" tells
    /// them apart, and it must, or every signature would have a second valid form.
    function test_rejects_the_unreduced_signature() public view {
        bytes memory unreduced = vm.parseJsonBytes(_fixture(), ".rsa.signature_plus_modulus");
        (bool ok1, bytes memory m1) = Rsa.modexp(signature, exponent, modulus);
        (bool ok2, bytes memory m2) = Rsa.modexp(unreduced, exponent, modulus);
        assertTrue(ok1 && ok2);
        assertEq(m1, m2);
        assertFalse(Rsa.pkcs1Sha256(sha256(message), unreduced, modulus, exponent));
    }

    function test_rejects_signatures_at_and_above_the_modulus() public view {
        assertFalse(Rsa.pkcs1Sha256(sha256(message), modulus, modulus, exponent));
        bytes memory ones = new bytes(modulus.length);
        for (uint256 i; i < ones.length; i++) {
            ones[i] = 0xff;
        }
        assertFalse(Rsa.pkcs1Sha256(sha256(message), ones, modulus, exponent));
    }

    /// The same number with a leading zero byte: only the length check rejects it.
    function test_rejects_a_signature_longer_than_the_modulus() public view {
        assertFalse(Rsa.pkcs1Sha256(sha256(message), bytes.concat(hex"00", signature), modulus, exponent));
    }

    /// A modulus with a leading zero byte claims one byte more than the key has. The fixture
    /// signs (raw RSA) the encoding for that length, so the exponentiation matches it exactly:
    /// only the rule against a leading zero rejects it.
    function test_rejects_a_modulus_with_a_leading_zero_byte() public view {
        bytes memory padded = bytes.concat(hex"00", modulus);
        bytes memory s = bytes.concat(hex"00", vm.parseJsonBytes(_fixture(), ".rsa.leading_zero_signature"));
        (bool ok, bytes memory encoded) = Rsa.modexp(s, exponent, padded);
        assertTrue(ok);
        bytes memory expected = new bytes(257);
        expected[1] = 0x01;
        for (uint256 i = 2; i < 257 - 52; i++) {
            expected[i] = 0xff;
        }
        bytes memory tail = bytes.concat(hex"3031300d060960864801650304020105000420", sha256(message));
        for (uint256 i; i < 51; i++) {
            expected[257 - 51 + i] = tail[i];
        }
        assertEq(encoded, expected);
        assertFalse(Rsa.pkcs1Sha256(sha256(message), s, padded, exponent));
    }

    function test_rejects_moduli_below_the_minimum() public view {
        bytes memory shortModulus = new bytes(63);
        shortModulus[0] = 0xc1;
        shortModulus[62] = 0x01;
        assertFalse(Rsa.pkcs1Sha256(sha256(message), new bytes(63), shortModulus, exponent));
    }

    function test_a_signature_by_another_key_verifies_only_under_that_key() public view {
        string memory json = _fixture();
        bytes memory otherModulus = vm.parseJsonBytes(json, ".rsa.other.modulus");
        bytes memory otherSignature = vm.parseJsonBytes(json, ".rsa.other_signature");
        assertTrue(Rsa.pkcs1Sha256(sha256(message), otherSignature, otherModulus, exponent));
        assertFalse(Rsa.pkcs1Sha256(sha256(message), otherSignature, modulus, exponent));
        assertFalse(Rsa.pkcs1Sha256(sha256(message), signature, otherModulus, exponent));
    }

    /// 257 bytes: the comparison's partial leading word, and a one-byte exponent (3).
    function test_verifies_under_a_modulus_that_is_not_whole_words() public view {
        string memory json = _fixture();
        bytes memory n = vm.parseJsonBytes(json, ".rsa.odd.modulus");
        bytes memory e = vm.parseJsonBytes(json, ".rsa.odd.exponent");
        bytes memory m = vm.parseJsonBytes(json, ".rsa.odd_message");
        bytes memory s = vm.parseJsonBytes(json, ".rsa.odd_signature");
        assertEq(n.length, 257);
        assertEq(e, hex"03");
        assertTrue(Rsa.pkcs1Sha256(sha256(m), s, n, e));
        // The unreduced form: equal to s modulo n, and not below n.
        bytes memory unreduced = vm.parseJsonBytes(json, ".rsa.odd_signature_plus_modulus");
        (, bytes memory reduced) = Rsa.modexp(s, e, n);
        (, bytes memory same) = Rsa.modexp(unreduced, e, n);
        assertEq(reduced, same);
        assertFalse(Rsa.pkcs1Sha256(sha256(m), unreduced, n, e));
        s[0] ^= 0x01;
        assertFalse(Rsa.pkcs1Sha256(sha256(m), s, n, e));
    }

    /// On a chain without the precompile, a call to 0x05 succeeds with no output: that is a
    /// failure, not a result of zeros.
    function test_modexp_fails_where_the_precompile_returns_nothing() public {
        vm.mockCall(address(0x05), "", ""); // any input: success, no output
        (bool ok,) = Rsa.modexp(signature, exponent, modulus);
        assertFalse(ok);
        assertFalse(Rsa.pkcs1Sha256(sha256(message), signature, modulus, exponent));
    }

    /// Bleichenbacher (2006): with e = 3, a cube root gives a block that starts like a valid
    /// encoding and ends in garbage. Comparing the whole encoded message rejects it.
    function test_rejects_the_cube_root_forgery() public view {
        string memory json = _fixture();
        bytes memory n = vm.parseJsonBytes(json, ".rsa.odd.modulus");
        bytes memory e = vm.parseJsonBytes(json, ".rsa.odd.exponent");
        bytes memory m = vm.parseJsonBytes(json, ".rsa.odd_message");
        bytes memory forgery = vm.parseJsonBytes(json, ".rsa.odd_forgery");
        (bool ok, bytes memory block_) = Rsa.modexp(forgery, e, n);
        assertTrue(ok);
        // What a parsing verifier would accept: 00 01 FF 00, the SHA-256 DigestInfo, the hash.
        bytes memory prefix = bytes.concat(hex"0001ff00", hex"3031300d060960864801650304020105000420", sha256(m));
        for (uint256 i; i < prefix.length; i++) {
            vm.assertEq(uint8(block_[i]), uint8(prefix[i]), "the forgery's prefix");
        }
        assertFalse(Rsa.pkcs1Sha256(sha256(m), forgery, n, e));
    }
}

/// Base64url without padding: RFC 4648 vectors, the URL alphabet, the fixture's tokens.
contract Base64UrlTest is ConfidentialSpaceFixture {
    function test_rfc4648_vectors() public pure {
        assertEq(Base64Url.encode(""), "");
        assertEq(Base64Url.encode("f"), "Zg");
        assertEq(Base64Url.encode("fo"), "Zm8");
        assertEq(Base64Url.encode("foo"), "Zm9v");
        assertEq(Base64Url.encode("foob"), "Zm9vYg");
        assertEq(Base64Url.encode("fooba"), "Zm9vYmE");
        assertEq(Base64Url.encode("foobar"), "Zm9vYmFy");
    }

    function test_uses_the_url_alphabet() public pure {
        assertEq(
            Base64Url.encode(
                hex"00108310518720928b30d38f41149351559761969b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3dfbf"
            ),
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        );
        assertEq(Base64Url.encode(hex"fbff"), "-_8");
        assertEq(Base64Url.encode(hex"fbefbe"), "----");
        assertEq(Base64Url.encode(hex"ffffff"), "____");
    }

    /// Every fixture token is python's base64url of its three parts.
    function test_encodes_the_segments_of_every_fixture_token() public view {
        string memory json = _fixture();
        string[] memory names = vm.parseJsonStringArray(json, ".case_names");
        for (uint256 i; i < names.length; i++) {
            string memory token = string.concat(
                Base64Url.encode(_header(json, names[i])),
                ".",
                Base64Url.encode(_payload(json, names[i])),
                ".",
                Base64Url.encode(_signature(json, names[i]))
            );
            vm.assertEq(token, vm.parseJsonString(json, _field(names[i], "token")), names[i]);
        }
    }

    /// The bytes after the input's end never leak into the last group.
    function test_ignores_the_bytes_past_the_end_of_the_input() public pure {
        bytes memory data = "foobar";
        for (uint256 visible = 4; visible <= 5; visible++) {
            assembly ("memory-safe") {
                mstore(data, visible)
            }
            assertEq(Base64Url.encode(data), visible == 4 ? "Zm9vYg" : "Zm9vYmE");
        }
    }

    /// The last word of the string holds nothing after its characters.
    function test_leaves_no_stray_bytes_after_the_string() public pure {
        for (uint256 length; length <= 33; length++) {
            string memory encoded = Base64Url.encode(new bytes(length));
            uint256 encodedLength = bytes(encoded).length;
            bytes32 lastWord;
            assembly ("memory-safe") {
                lastWord := mload(add(add(encoded, 0x20), and(encodedLength, not(0x1f))))
            }
            uint256 used = encodedLength % 32;
            uint256 after_ = used == 0 ? 0 : uint256(lastWord) & (type(uint256).max >> (8 * used));
            assertEq(after_, 0);
        }
    }

    function testFuzz_matches_a_bitwise_reference(bytes memory data) public pure {
        string memory encoded = Base64Url.encode(data);
        assertEq(encoded, _reference(data));
        assertEq(bytes(encoded).length, (data.length * 4 + 2) / 3);
    }

    /// One character per 6 bits, read bit by bit, the last group zero-filled.
    function _reference(bytes memory data) internal pure returns (string memory) {
        bytes memory alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        uint256 bits = data.length * 8;
        bytes memory out = new bytes((bits + 5) / 6);
        for (uint256 c; c < out.length; c++) {
            uint256 index;
            for (uint256 b = c * 6; b < c * 6 + 6; b++) {
                uint256 bit = b < bits ? (uint8(data[b / 8]) >> (7 - b % 8)) & 1 : 0;
                index = index << 1 | bit;
            }
            out[c] = alphabet[index];
        }
        return string(out);
    }
}

/// External entry points, so the library's reverts can be expected.
contract JsonClaimsHarness {
    using JsonClaims for JsonClaims.Document;

    function readString(bytes memory json, string memory name) external pure returns (string memory) {
        return JsonClaims.load(json).readString(name);
    }

    function readUint(bytes memory json, string memory name) external pure returns (uint256) {
        return JsonClaims.load(json).readUint(name);
    }

    function tryReadUint(bytes memory json, string memory name) external pure returns (bool, uint256) {
        return JsonClaims.load(json).tryReadUint(name);
    }

    function readBool(bytes memory json, string memory name) external pure returns (bool) {
        return JsonClaims.load(json).readBool(name);
    }

    function find(bytes memory json, string memory name) external pure returns (bool, uint256) {
        return JsonClaims.load(json).find(name);
    }

    /// {readString} on the first `visible` bytes of `json`, the rest left in memory after it.
    function readStringOfPrefix(bytes memory json, uint256 visible, string memory name)
        external
        pure
        returns (string memory)
    {
        assembly ("memory-safe") {
            mstore(json, visible)
        }
        return JsonClaims.load(json).readString(name);
    }
}

contract JsonClaimsTest is Test {
    JsonClaimsHarness internal claims = new JsonClaimsHarness();

    function _expectError(bytes4 selector, string memory name) internal {
        vm.expectRevert(abi.encodeWithSelector(selector, name));
    }

    function test_reads_a_top_level_and_a_nested_string() public view {
        bytes memory json = '{"iss":"a","submods":{"container":{"image_digest":"sha256:x"}}}';
        assertEq(claims.readString(json, "iss"), "a");
        assertEq(claims.readString(json, "image_digest"), "sha256:x");
        assertEq(claims.readString('{"iss":""}', "iss"), "");
    }

    function test_a_missing_claim_reverts() public {
        _expectError(JsonClaims.ClaimMissing.selector, "exp");
        claims.readString('{"iss":"a"}', "exp");
        // A key that only starts or ends like the claim is another key.
        _expectError(JsonClaims.ClaimMissing.selector, "iss");
        claims.readString('{"issuer":"a","xiss":"b"}', "iss");
    }

    function test_a_repeated_claim_reverts_at_any_depth() public {
        _expectError(JsonClaims.ClaimRepeated.selector, "a");
        claims.readString('{"a":"1","a":"1"}', "a");
        _expectError(JsonClaims.ClaimRepeated.selector, "a");
        claims.readString('{"a":"1","o":{"a":"1"}}', "a");
        _expectError(JsonClaims.ClaimRepeated.selector, "a");
        claims.tryReadUint('{"o":{"a":1},"a":2}', "a");
    }

    /// A key can end like the claim (an escaped quote before the name): it counts as an
    /// occurrence, so the document is rejected rather than read at the lookalike.
    function test_a_key_ending_like_the_claim_makes_it_repeated() public {
        _expectError(JsonClaims.ClaimRepeated.selector, "iss");
        claims.readString('{"x\\"iss":"evil","iss":"good"}', "iss");
    }

    /// A string value cannot hold an unescaped quote, so it cannot fake a key.
    function test_a_string_value_cannot_fake_a_key() public view {
        assertEq(claims.readString('{"note":"\\"iss\\":\\"evil\\"","iss":"good"}', "iss"), "good");
        assertEq(claims.readString('{"note":"iss:evil","iss":"good"}', "iss"), "good");
    }

    function test_a_string_value_with_an_escape_reverts() public {
        bytes[3] memory escaped = [bytes('{"iss":"a\\u0062"}'), bytes('{"iss":"a\\"b"}'), bytes('{"iss":"a\\\\"}')];
        for (uint256 i; i < escaped.length; i++) {
            _expectError(JsonClaims.ClaimEscaped.selector, "iss");
            claims.readString(escaped[i], "iss");
        }
    }

    function test_whitespace_is_allowed_after_the_colon_only() public {
        assertEq(claims.readString('{"iss": \t\n\r"a"}', "iss"), "a");
        assertEq(claims.readUint('{"exp":\n 7 }', "exp"), 7);
        assertTrue(claims.readBool('{"b":  true\n}', "b"));
        _expectError(JsonClaims.ClaimMissing.selector, "iss");
        claims.readString('{"iss" :"a"}', "iss");
    }

    function test_a_string_claim_must_hold_a_closed_string() public {
        bytes[5] memory bad =
            [bytes('{"iss":1}'), bytes('{"iss":["a"]}'), bytes('{"iss":"abc'), bytes('{"iss":"a"b}'), bytes('{"iss":')];
        for (uint256 i; i < bad.length; i++) {
            _expectError(JsonClaims.ClaimNotAString.selector, "iss");
            claims.readString(bad[i], "iss");
        }
    }

    function test_reads_unsigned_integers() public view {
        assertEq(claims.readUint('{"exp":1800003600}', "exp"), 1_800_003_600);
        assertEq(claims.readUint('{"exp":0,"x":1}', "exp"), 0);
        assertEq(claims.readUint('{"a":[{"exp":42}]}', "exp"), 42);
        bytes memory digits77 = new bytes(77);
        for (uint256 i; i < 77; i++) {
            digits77[i] = "9";
        }
        assertEq(claims.readUint(bytes.concat('{"n":', digits77, "}"), "n"), 10 ** 77 - 1);
    }

    function test_a_number_claim_must_be_a_plain_json_integer() public {
        bytes memory digits78 = new bytes(78);
        for (uint256 i; i < 78; i++) {
            digits78[i] = "1";
        }
        bytes[10] memory bad = [
            bytes('{"exp":-1}'),
            bytes('{"exp":1.5}'),
            bytes('{"exp":1e3}'),
            bytes('{"exp":"1"}'),
            bytes('{"exp":01}'),
            bytes('{"exp":}'),
            bytes('{"exp":12'),
            bytes('{"exp":true}'),
            bytes('{"exp":12x}'),
            bytes.concat('{"exp":', digits78, "}")
        ];
        for (uint256 i; i < bad.length; i++) {
            _expectError(JsonClaims.ClaimNotANumber.selector, "exp");
            claims.readUint(bad[i], "exp");
        }
    }

    function test_an_optional_number_may_be_absent() public view {
        (bool found, uint256 value) = claims.tryReadUint('{"exp":5}', "nbf");
        assertFalse(found);
        assertEq(value, 0);
        (found, value) = claims.tryReadUint('{"nbf":5}', "nbf");
        assertTrue(found);
        assertEq(value, 5);
    }

    function test_reads_booleans() public view {
        assertTrue(claims.readBool('{"secboot":true}', "secboot"));
        assertFalse(claims.readBool('{"secboot":false,"x":1}', "secboot"));
        assertTrue(claims.readBool('{"o":[{"secboot":true}]}', "secboot"));
    }

    function test_a_boolean_claim_must_be_true_or_false() public {
        bytes[7] memory bad = [
            bytes('{"b":tru}'),
            bytes('{"b":truex}'),
            bytes('{"b":"true"}'),
            bytes('{"b":null}'),
            bytes('{"b":1}'),
            bytes('{"b":true'),
            bytes('{"b":False}')
        ];
        for (uint256 i; i < bad.length; i++) {
            _expectError(JsonClaims.ClaimNotABool.selector, "b");
            claims.readBool(bad[i], "b");
        }
    }

    /// A pattern longer than a word: its first 32 bytes are compared by mask, all of it by hash.
    /// The other key here agrees with the pattern in those 32 bytes and differs after them.
    function test_finds_names_longer_than_a_word() public {
        string memory name = "a_claim_name_longer_than_one_word"; // `"` + 33 bytes before `":`
        bytes memory sameFirstWord = bytes.concat(bytes(_prefix(name, 31)), "zz");
        bytes memory json = bytes.concat('{"', sameFirstWord, '":"1","', bytes(name), '":"2"}');
        assertEq(claims.readString(json, name), "2");
        _expectError(JsonClaims.ClaimRepeated.selector, name);
        claims.readString(bytes.concat('{"', bytes(name), '":"1","', bytes(name), '":"2"}'), name);
    }

    function _prefix(string memory text, uint256 length) internal pure returns (string memory) {
        bytes memory out = new bytes(length);
        for (uint256 i; i < length; i++) {
            out[i] = bytes(text)[i];
        }
        return string(out);
    }

    /// The bytes before a document are its length word: a key end too close to the start must
    /// not be compared with them. Here the length is 34 = 0x22, a quote, so the word before
    /// `a":` reads like `"a":` if the comparison started one byte before the document.
    function test_never_matches_before_the_start_of_the_document() public {
        bytes memory json = 'a":"v","padding":"0123456789ab"}';
        json = bytes.concat(json, new bytes(34 - json.length));
        assertEq(json.length, 34);
        _expectError(JsonClaims.ClaimMissing.selector, "a");
        claims.readString(json, "a");
    }

    /// A pattern that would end past the document's last byte is not an occurrence, whatever
    /// memory holds after it.
    function test_never_matches_past_the_end_of_the_document() public {
        bytes memory json = '{"x":1,"a":"v"}';
        // The first 10 bytes are {"x":1,"a" ; the colon after them is not the document's.
        _expectError(JsonClaims.ClaimMissing.selector, "a");
        claims.readStringOfPrefix(json, 10, "a");
        assertEq(claims.readStringOfPrefix(json, json.length, "a"), "v");
    }

    /// Differential: the indexed lookup agrees with a byte-by-byte search for the pattern, on
    /// documents made of the characters that matter (quotes, colons, backslashes, the name).
    /// forge-config: default.fuzz.runs = 4096
    function testFuzz_find_agrees_with_a_plain_pattern_search(bytes memory seed) public {
        bytes memory alphabet = '":\\ab ';
        bytes memory json = new bytes(seed.length);
        for (uint256 i; i < seed.length; i++) {
            json[i] = alphabet[uint8(seed[i]) % alphabet.length];
        }
        bytes memory pattern = '"ab":';
        uint256 count;
        uint256 first;
        for (uint256 i; i + pattern.length <= json.length; i++) {
            bool matches = true;
            for (uint256 j; j < pattern.length && matches; j++) {
                matches = json[i + j] == pattern[j];
            }
            if (matches) {
                if (count == 0) first = i;
                count++;
            }
        }
        if (count > 1) _expectError(JsonClaims.ClaimRepeated.selector, "ab");
        (bool found, uint256 pos) = claims.find(json, "ab");
        if (count > 1) return;
        assertEq(found, count == 1);
        if (found) {
            uint256 expected = first + pattern.length;
            while (expected < json.length && json[expected] == " ") expected++;
            assertEq(pos, expected);
        }
    }

    function testFuzz_reads_back_any_string_value_without_quotes_or_backslashes(bytes memory value) public view {
        for (uint256 i; i < value.length; i++) {
            if (value[i] == '"' || value[i] == "\\") value[i] = "_";
        }
        assertEq(bytes(claims.readString(bytes.concat('{"k":"', value, '"}'), "k")), value);
    }

    function testFuzz_reads_back_any_integer_below_ten_to_the_77(uint256 value) public view {
        value = bound(value, 0, 10 ** 77 - 1);
        assertEq(claims.readUint(bytes.concat('{"n":', bytes(vm.toString(value)), "}"), "n"), value);
    }
}
