// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAttestationVerifier, KeyBinding} from "./IAttestationVerifier.sol";
import {Base64Url} from "../lib/Base64Url.sol";
import {JsonClaims} from "../lib/JsonClaims.sol";
import {Rsa} from "../lib/Rsa.sol";

/// @title ConfidentialSpaceVerifier
/// @notice Accepts a key when a Google Cloud Confidential Space attestation token says an allowed
/// container image, running under the production Confidential Space launcher with Secure Boot
/// and no debugging in an allowed GCP project, asked for a token whose nonce binds the key to
/// the calling registry.
/// @dev The token is an OIDC JWT signed RS256 by Google's attestation service. The evidence
/// carries its header and payload decoded, exactly as signed, and the raw signature; the
/// contract re-encodes them to rebuild the signing input, so there is no second, lenient
/// base64 decoder to disagree with Google's. Claims are read by {JsonClaims}: each is found by
/// its quoted key, which must occur exactly once, and string values are compared undecoded.
///
/// IMPORTANT: what this trusts.
/// - Google's token signing keys, pinned here by kid by the owner. Google rotates them (the JWKS
///   named by `jwks_uri` at https://confidentialcomputing.googleapis.com/.well-known/openid-configuration);
///   the owner pins a new key before tokens signed with it are submitted and removes keys Google
///   retired. A removed key stops new registrations only: keys it attested stay registered.
/// - The launcher's claims: `swname`, `dbgstat` and `secboot` describe the VM, `project_id` the
///   GCP project it runs in, `image_digest` the container it started, `eat_nonce` what the
///   workload asked for. A nonce in a token proves
///   only that code in that image asked for it; that the key was generated inside the workload
///   and never leaves it is a property of the allowed images, reviewed before the owner allows
///   their digests.
/// - That allowed images ask for tokens with this audience only with the key's binding as their
///   one nonce, and do not let the operator name environment variables (launch policy): Google
///   emits `eat_nonce` only when nonces are asked for, and in a token without it a key named
///   `eat_nonce` elsewhere (an environment variable) would be read in its place. Where Google
///   emits a claim, such a lookalike only gets the token rejected (see {JsonClaims}).
/// - The allowed projects' owners: whoever controls an allowed project can run an allowed image
///   there, and register as many keys as it starts VMs.
/// - The owner: it can pin any key, so a compromised owner can register anything. Deploy it as
///   the same multisig or timelock that owns the registry.
contract ConfidentialSpaceVerifier is IAttestationVerifier {
    using JsonClaims for JsonClaims.Document;

    /// @notice The `iss` of Confidential Space attestation tokens.
    string public constant ISSUER = "https://confidentialcomputing.googleapis.com";
    /// @notice The `swname` of the Confidential Space launcher.
    string public constant SOFTWARE_NAME = "CONFIDENTIAL_SPACE";
    /// @notice The `dbgstat` of a production Confidential Space image (the debug image says "enabled").
    string public constant DEBUG_STATUS = "disabled-since-boot";
    /// @notice The only JWS algorithm accepted.
    string public constant ALGORITHM = "RS256";

    /// @notice The smallest modulus pinned, in bytes (RSA-2048).
    uint256 public constant MIN_MODULUS_LENGTH = 256;
    /// @notice The largest modulus pinned, in bytes (RSA-4096).
    uint256 public constant MAX_MODULUS_LENGTH = 512;

    /// @notice A pinned RSA public key: big-endian modulus and exponent.
    struct SigningKey {
        bytes modulus;
        bytes exponent;
    }

    /// @notice The account that pins signing keys and allows images and projects.
    address public immutable owner;

    /// @notice The `aud` tokens must carry: the audience the workload requested its token for.
    /// @dev Set once by the constructor; strings cannot be immutable, its hash is.
    string public audience;

    bytes32 private immutable audienceHash;

    /// @notice Whether the container image whose digest text hashes to `measurement` is allowed.
    mapping(bytes32 measurement => bool allowed) public imageAllowed;

    /// @notice Whether the GCP project whose id text hashes to `projectHash` is allowed.
    mapping(bytes32 projectHash => bool allowed) public projectAllowed;

    mapping(bytes32 kidHash => SigningKey key) private signingKeys;

    /// @notice Google's signing key `kid` was pinned (or replaced) with `modulus` and `exponent`.
    event SigningKeySet(bytes32 indexed kidHash, string kid, bytes modulus, bytes exponent);
    /// @notice The signing key `kid` is no longer accepted.
    event SigningKeyRemoved(bytes32 indexed kidHash, string kid);
    /// @notice Tokens for the image `digest` are accepted; `measurement` is what keys registered
    /// through it record.
    event ImageAllowed(bytes32 indexed measurement, string digest);
    /// @notice Tokens for the image `digest` are no longer accepted.
    event ImageDisallowed(bytes32 indexed measurement, string digest);
    /// @notice Tokens from VMs in the GCP project `projectId` are accepted (`projectHash` =
    /// `keccak256(bytes(projectId))`).
    event ProjectAllowed(bytes32 indexed projectHash, string projectId);
    /// @notice Tokens from VMs in the GCP project `projectId` are no longer accepted.
    event ProjectDisallowed(bytes32 indexed projectHash, string projectId);

    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice The audience given to the constructor is empty.
    error EmptyAudience();
    /// @notice The key is not an RSA key this verifier pins: a modulus of 256 to 512 bytes, odd,
    /// without a leading zero byte; an exponent of 1 to 32 bytes, odd, at least 3, without a
    /// leading zero byte.
    error InvalidSigningKey(string kid, bytes modulus, bytes exponent);
    /// @notice The digest is not `sha256:` followed by 64 lower-case hex digits.
    error InvalidImageDigest(string digest);
    /// @notice The image was not allowed (by {disallowImage}) or is not allowed (by {verify}).
    error ImageNotAllowed(string digest);
    /// @notice The project id is not a GCP project id: 6 to 30 lower-case letters, digits and
    /// hyphens, starting with a letter and not ending with a hyphen.
    error InvalidProjectId(string projectId);
    /// @notice The project was not allowed (by {disallowProject}) or is not allowed (by {verify}).
    error ProjectNotAllowed(string projectId);
    /// @notice No signing key is pinned under `kid`.
    error UnknownSigningKey(string kid);
    /// @notice The token header's `alg` is not RS256.
    error UnsupportedAlgorithm(string alg);
    /// @notice The signature is not the pinned key's RS256 signature of the header and payload.
    error BadRsaSignature();
    /// @notice Claim `claim` has the value `found`, which is not the one required.
    error ClaimMismatch(string claim, string found);
    /// @notice The token expired at `exp` (block time `now`; `exp` must be later).
    error TokenExpired(uint256 exp, uint256 now);
    /// @notice The token's `claim` (iat or nbf) is `value`, later than the block time `now`.
    error TokenNotYetValid(string claim, uint256 value, uint256 now);
    /// @notice The token's `eat_nonce` is `found`, not the binding `expected` of this key to the
    /// calling registry on this chain.
    error NonceMismatch(string found, string expected);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    /// @param owner_ The account that pins signing keys and allows images and projects.
    /// @param audience_ The `aud` every accepted token carries (the workload requests its token
    /// with this audience); it names the relying party, so tokens for other services never pass.
    constructor(address owner_, string memory audience_) {
        if (bytes(audience_).length == 0) revert EmptyAudience();
        owner = owner_;
        audience = audience_;
        audienceHash = keccak256(bytes(audience_));
    }

    /// @notice Pins Google's RS256 key `kid` (a key of Google's published JWKS), replacing any key
    /// pinned under the same kid.
    /// @param kid The JWK's `kid`, as token headers name it.
    /// @param modulus The JWK's `n`, base64url-decoded: big-endian, no leading zero byte.
    /// @param exponent The JWK's `e`, base64url-decoded (0x010001 for Google's keys).
    function setSigningKey(string calldata kid, bytes calldata modulus, bytes calldata exponent) external onlyOwner {
        if (!_isSoundKey(modulus, exponent)) revert InvalidSigningKey(kid, modulus, exponent);
        bytes32 kidHash = keccak256(bytes(kid));
        signingKeys[kidHash] = SigningKey({modulus: modulus, exponent: exponent});
        emit SigningKeySet(kidHash, kid, modulus, exponent);
    }

    /// @notice Stops accepting tokens signed by key `kid`. Reverts when none is pinned, so a
    /// mistyped kid cannot look like a removal.
    /// @dev Keys already registered through tokens of this key stay registered; revoke them in
    /// the registry if the signing key was compromised.
    function removeSigningKey(string calldata kid) external onlyOwner {
        bytes32 kidHash = keccak256(bytes(kid));
        if (signingKeys[kidHash].modulus.length == 0) revert UnknownSigningKey(kid);
        delete signingKeys[kidHash];
        emit SigningKeyRemoved(kidHash, kid);
    }

    /// @notice Accepts tokens for the container image `digest` ("sha256:" and 64 lower-case hex
    /// digits, as the token's `image_digest` spells it).
    /// @dev IMPORTANT: allow only images reviewed to generate the validator key inside the
    /// workload, request the token with that key's binding as nonce, and never export the key.
    function allowImage(string calldata digest) external onlyOwner {
        if (!_isImageDigest(bytes(digest))) revert InvalidImageDigest(digest);
        bytes32 measurement = keccak256(bytes(digest));
        imageAllowed[measurement] = true;
        emit ImageAllowed(measurement, digest);
    }

    /// @notice Stops accepting tokens for the image `digest`. Reverts when it is not allowed.
    /// @dev Keys already registered from this image stay registered; revoke them in the registry.
    function disallowImage(string calldata digest) external onlyOwner {
        bytes32 measurement = keccak256(bytes(digest));
        if (!imageAllowed[measurement]) revert ImageNotAllowed(digest);
        delete imageAllowed[measurement];
        emit ImageDisallowed(measurement, digest);
    }

    /// @notice Accepts tokens from VMs in the GCP project `projectId` (as the token's
    /// `submods.gce.project_id` spells it).
    /// @dev IMPORTANT: allow only projects of operators trusted to run a validator each; whoever
    /// controls an allowed project can start allowed images there and register their keys.
    /// Legacy domain-scoped ids (`example.com:project`) are not accepted.
    function allowProject(string calldata projectId) external onlyOwner {
        if (!_isProjectId(bytes(projectId))) revert InvalidProjectId(projectId);
        bytes32 projectHash = keccak256(bytes(projectId));
        projectAllowed[projectHash] = true;
        emit ProjectAllowed(projectHash, projectId);
    }

    /// @notice Stops accepting tokens from the GCP project `projectId`. Reverts when it is not
    /// allowed.
    /// @dev Keys already registered from this project stay registered; revoke them in the registry.
    function disallowProject(string calldata projectId) external onlyOwner {
        bytes32 projectHash = keccak256(bytes(projectId));
        if (!projectAllowed[projectHash]) revert ProjectNotAllowed(projectId);
        delete projectAllowed[projectHash];
        emit ProjectDisallowed(projectHash, projectId);
    }

    /// @notice The key pinned under `kid` (both empty when none is).
    function signingKey(string calldata kid) external view returns (bytes memory modulus, bytes memory exponent) {
        SigningKey storage pinned = signingKeys[keccak256(bytes(kid))];
        return (pinned.modulus, pinned.exponent);
    }

    /// @notice Whether tokens for the image `digest` are accepted.
    function isImageAllowed(string calldata digest) external view returns (bool) {
        return imageAllowed[keccak256(bytes(digest))];
    }

    /// @notice Whether tokens from the GCP project `projectId` are accepted.
    function isProjectAllowed(string calldata projectId) external view returns (bool) {
        return projectAllowed[keccak256(bytes(projectId))];
    }

    /// @notice The `eat_nonce` a workload requests its token with to register `key` in
    /// `registry` on this chain: {KeyBinding} as 64 lower-case hex digits, no `0x`.
    function expectedNonce(address registry, address key) public view returns (string memory) {
        return _hex(KeyBinding.compute(registry, key));
    }

    /// @inheritdoc IAttestationVerifier
    /// @dev `evidence` = `abi.encode(bytes header, bytes payload, bytes signature)`: the token's
    /// header and payload JSON exactly as signed (its first two segments, base64url-decoded) and
    /// its RSA signature (the third, decoded). Checks, in order: the header's `alg` is RS256 and
    /// its `kid` is pinned; the signature over `b64url(header) "." b64url(payload)`; then the
    /// claims `iss`, `aud`, `exp` (later than now), `iat` and `nbf` (not later than now, when
    /// present), `eat_nonce` (the binding of `key` to the caller), `swname`, `dbgstat`, `secboot`
    /// (true), `image_digest` (allowed) and `project_id` (allowed).
    /// @return measurement `keccak256(bytes(image_digest))`.
    function verify(address key, bytes calldata evidence) external view returns (bytes32 measurement) {
        (bytes memory header, bytes memory payload, bytes memory signature) =
            abi.decode(evidence, (bytes, bytes, bytes));
        _checkSignature(header, payload, signature);
        return _checkClaims(key, payload);
    }

    /// @dev The header names RS256 and a pinned key, and that key signed header and payload.
    /// Claims are read only after this, so they are only ever Google's.
    function _checkSignature(bytes memory header, bytes memory payload, bytes memory signature) private view {
        JsonClaims.Document memory fields = JsonClaims.load(header);
        string memory alg = fields.readString("alg");
        if (keccak256(bytes(alg)) != keccak256(bytes(ALGORITHM))) revert UnsupportedAlgorithm(alg);
        string memory kid = fields.readString("kid");
        SigningKey storage pinned = signingKeys[keccak256(bytes(kid))];
        bytes memory modulus = pinned.modulus;
        if (modulus.length == 0) revert UnknownSigningKey(kid);
        bytes32 digest = sha256(abi.encodePacked(Base64Url.encode(header), ".", Base64Url.encode(payload)));
        if (!Rsa.pkcs1Sha256(digest, signature, modulus, pinned.exponent)) revert BadRsaSignature();
    }

    function _checkClaims(address key, bytes memory payload) private view returns (bytes32 measurement) {
        JsonClaims.Document memory claims = JsonClaims.load(payload);
        _requireString(claims, "iss", ISSUER);
        string memory aud = claims.readString("aud");
        if (keccak256(bytes(aud)) != audienceHash) revert ClaimMismatch("aud", aud);

        uint256 exp = claims.readUint("exp");
        if (exp <= block.timestamp) revert TokenExpired(exp, block.timestamp);
        // Optional claims: a lookalike (see JsonClaims) could at most fail these checks.
        _requireNotLater(claims, "iat");
        _requireNotLater(claims, "nbf");

        string memory nonce = claims.readString("eat_nonce");
        string memory expected = expectedNonce(msg.sender, key);
        if (keccak256(bytes(nonce)) != keccak256(bytes(expected))) revert NonceMismatch(nonce, expected);

        _requireString(claims, "swname", SOFTWARE_NAME);
        _requireString(claims, "dbgstat", DEBUG_STATUS);
        if (!claims.readBool("secboot")) revert ClaimMismatch("secboot", "false");

        string memory digest = claims.readString("image_digest");
        measurement = keccak256(bytes(digest));
        if (!imageAllowed[measurement]) revert ImageNotAllowed(digest);

        // submods.gce.project_id: Google always emits it, so a lookalike (an environment
        // variable named project_id) makes it repeated and the token rejected.
        string memory projectId = claims.readString("project_id");
        if (!projectAllowed[keccak256(bytes(projectId))]) revert ProjectNotAllowed(projectId);
    }

    function _requireString(JsonClaims.Document memory claims, string memory claim, string memory required)
        private
        pure
    {
        string memory found = claims.readString(claim);
        if (keccak256(bytes(found)) != keccak256(bytes(required))) revert ClaimMismatch(claim, found);
    }

    function _requireNotLater(JsonClaims.Document memory claims, string memory claim) private view {
        (bool present, uint256 value) = claims.tryReadUint(claim);
        if (present && value > block.timestamp) revert TokenNotYetValid(claim, value, block.timestamp);
    }

    /// @dev RSA keys worth pinning: 2048 to 4096 bits, odd modulus and exponent, exponent >= 3,
    /// both minimally encoded. An exponent of 1 would make every encoded message a signature.
    function _isSoundKey(bytes calldata modulus, bytes calldata exponent) private pure returns (bool) {
        uint256 n = modulus.length;
        uint256 e = exponent.length;
        if (n < MIN_MODULUS_LENGTH || n > MAX_MODULUS_LENGTH || modulus[0] == 0 || uint8(modulus[n - 1]) & 1 == 0) {
            return false;
        }
        if (e == 0 || e > 32 || exponent[0] == 0 || uint8(exponent[e - 1]) & 1 == 0) return false;
        return e > 1 || uint8(exponent[0]) >= 3;
    }

    /// @dev "sha256:" followed by 64 lower-case hex digits.
    function _isImageDigest(bytes memory digest) private pure returns (bool) {
        bytes memory prefix = "sha256:";
        if (digest.length != 71) return false;
        for (uint256 i; i < 71; i++) {
            bytes1 c = digest[i];
            bool expected = i < 7 ? c == prefix[i] : (c >= "0" && c <= "9") || (c >= "a" && c <= "f");
            if (!expected) return false;
        }
        return true;
    }

    /// @dev A GCP project id: 6 to 30 of `a-z`, `0-9` and `-`, starting with a letter, not
    /// ending with a hyphen.
    function _isProjectId(bytes memory id) private pure returns (bool) {
        uint256 n = id.length;
        if (n < 6 || n > 30 || id[n - 1] == "-") return false;
        for (uint256 i; i < n; i++) {
            bytes1 c = id[i];
            bool letter = c >= "a" && c <= "z";
            if (!(letter || (i > 0 && ((c >= "0" && c <= "9") || c == "-")))) return false;
        }
        return true;
    }

    /// @dev `value` as 64 lower-case hex digits.
    function _hex(bytes32 value) private pure returns (string memory text) {
        text = new string(64);
        assembly ("memory-safe") {
            let digits := "0123456789abcdef"
            let p := add(text, 0x20)
            for { let i := 0 } lt(i, 32) { i := add(i, 1) } {
                let b := byte(i, value)
                mstore8(add(p, shl(1, i)), byte(shr(4, b), digits))
                mstore8(add(p, add(shl(1, i), 1)), byte(and(b, 0x0f), digits))
            }
        }
    }
}
