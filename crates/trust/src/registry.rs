//! The on-chain side of key registration: the ABI of `KeyRegistry` and of the attestation
//! verifiers, and revert data turned into the custom error's name and values.
//!
//! Declared here with `sol!` from the Solidity sources (`contracts/src/KeyRegistry.sol`,
//! `contracts/src/verifiers/DevAttestationVerifier.sol`,
//! `contracts/src/verifiers/ConfidentialSpaceVerifier.sol`, `contracts/src/lib/JsonClaims.sol`,
//! `contracts/src/lib/Signatures.sol`); they are small and change rarely. A unit test checks
//! every declared function and error against the built contracts (`contracts/artifacts/*.json`,
//! which `contracts/build.sh --check` keeps current), so a changed signature fails in CI. The
//! relayer's bindings (`walproof_relayer::bindings`) are generated from the same artifacts.
//!
//! A revert inside `register` carries the error of whichever contract raised it: the
//! registry's own (`AlreadyRegistered`, `VerifierNotAccepted`, …) or the verifier's, bubbled up
//! unchanged (`NotTheAttester`, `AttestationExpired`, a signature error). [`describe_revert`]
//! tries each known contract and names the one that matched.

use alloy::sol_types::SolInterface;

alloy::sol! {
    /// The validator keys whose signatures the bridge counts (contracts/src/KeyRegistry.sol).
    #[derive(Debug, PartialEq, Eq)]
    interface KeyRegistry {
        /// A verifier was accepted or no longer is.
        event VerifierSet(address indexed verifier, bool accepted);
        /// `key` was registered after `verifier` checked its attestation.
        event KeyRegistered(address indexed key, address indexed verifier, bytes32 indexed measurement);
        /// `key` was revoked by `by`.
        event KeyRevoked(address indexed key, address indexed by);

        /// The caller is not the owner.
        error NotOwner(address caller);
        /// The verifier is not accepted by this registry.
        error VerifierNotAccepted(address verifier);
        /// The key is already registered.
        error AlreadyRegistered(address key);
        /// The key was revoked; a revoked key never comes back.
        error KeyWasRevoked(address key);
        /// The key is not registered.
        error NotRegistered(address key);
        /// Neither the owner nor the key itself asked for the revocation.
        error NotAllowedToRevoke(address caller, address key);
        /// The zero address is not a key.
        error ZeroKey();

        /// The account that accepts verifiers and revokes keys.
        function owner() external view returns (address);
        /// Whether `verifier`'s attestations register keys.
        function acceptedVerifier(address verifier) external view returns (bool);
        /// Accepts `verifier` or stops accepting it (owner only).
        function setVerifier(address verifier, bool accepted) external;
        /// Registers `key` once `verifier` confirms `evidence` binds it to this registry.
        function register(address key, address verifier, bytes calldata evidence) external;
        /// Revokes `key` for good (the owner, or the key itself).
        function revoke(address key) external;
        /// Whether `key`'s signatures count.
        function isActive(address key) external view returns (bool);
        /// Everything the registry knows of `key`.
        function keyInfo(address key) external view returns (address verifier, bytes32 measurement, uint64 registeredAt, bool revoked);
    }

    /// The development verifier (contracts/src/verifiers/DevAttestationVerifier.sol).
    #[derive(Debug, PartialEq, Eq)]
    interface DevAttestationVerifier {
        /// The attestation expired at `expiresAt` (block time `now`).
        error AttestationExpired(uint64 expiresAt, uint256 now);
        /// The attestation was signed by `signer`, not by the attester.
        error NotTheAttester(address signer, address attester);

        /// The key whose signature attests a validator key.
        function attester() external view returns (address);
        /// The EIP-712 domain separator: walproof / 1 / this chain / this verifier.
        function domainSeparator() external view returns (bytes32);
        /// The digest the attester signs.
        function attestationDigest(address key, address registry, bytes32 measurement, uint64 expiresAt) external view returns (bytes32);
        /// Checks `evidence` for `key` on behalf of the calling registry.
        function verify(address key, bytes calldata evidence) external view returns (bytes32 measurement);
    }

    /// The Confidential Space verifier (contracts/src/verifiers/ConfidentialSpaceVerifier.sol):
    /// the errors `verify` raises, and what its owner configures.
    #[derive(Debug, PartialEq, Eq)]
    interface ConfidentialSpaceVerifier {
        /// The `aud` tokens must carry.
        function audience() external view returns (string);
        /// Pins Google's RS256 key `kid` (owner only).
        function setSigningKey(string kid, bytes modulus, bytes exponent) external;
        /// Accepts tokens of the container image `digest` (owner only).
        function allowImage(string digest) external;
        /// Stops accepting tokens of the image `digest` (owner only).
        function disallowImage(string digest) external;
        /// Whether tokens of the image `digest` are accepted.
        function isImageAllowed(string digest) external view returns (bool);
        /// Accepts tokens from VMs in the GCP project `projectId` (owner only).
        function allowProject(string projectId) external;
        /// Stops accepting tokens from the GCP project `projectId` (owner only).
        function disallowProject(string projectId) external;
        /// Whether tokens from the GCP project `projectId` are accepted.
        function isProjectAllowed(string projectId) external view returns (bool);
        /// The `eat_nonce` that registers `key` in `registry` on this chain.
        function expectedNonce(address registry, address key) external view returns (string);
        /// Checks `evidence` for `key` on behalf of the calling registry.
        function verify(address key, bytes calldata evidence) external view returns (bytes32 measurement);

        /// The image was not allowed or is not allowed.
        error ImageNotAllowed(string digest);
        /// The token's `submods.gce.project_id` was not allowed or is not allowed.
        error ProjectNotAllowed(string projectId);
        /// No signing key is pinned under `kid`.
        error UnknownSigningKey(string kid);
        /// The token header's `alg` is not RS256.
        error UnsupportedAlgorithm(string alg);
        /// The signature is not the pinned key's RS256 signature of the header and payload.
        error BadRsaSignature();
        /// Claim `claim` has the value `found`, which is not the one required.
        error ClaimMismatch(string claim, string found);
        /// The token expired at `exp` (block time `now`).
        error TokenExpired(uint256 exp, uint256 now);
        /// The token's `claim` (iat or nbf) is `value`, later than the block time `now`.
        error TokenNotYetValid(string claim, uint256 value, uint256 now);
        /// The token's `eat_nonce` is `found`, not the binding `expected`.
        error NonceMismatch(string found, string expected);
    }

    /// How the Confidential Space verifier reads claims (contracts/src/lib/JsonClaims.sol).
    #[derive(Debug, PartialEq, Eq)]
    interface JsonClaims {
        /// The pattern `"name":` does not occur.
        error ClaimMissing(string name);
        /// The pattern `"name":` occurs more than once.
        error ClaimRepeated(string name);
        /// The claim's value is not a string.
        error ClaimNotAString(string name);
        /// The claim's string value contains a backslash.
        error ClaimEscaped(string name);
        /// The claim's value is not an unsigned decimal integer.
        error ClaimNotANumber(string name);
        /// The claim's value is neither `true` nor `false`.
        error ClaimNotABool(string name);
    }

    /// The signature checks every verifier shares (contracts/src/lib/Signatures.sol).
    #[derive(Debug, PartialEq, Eq)]
    interface Signatures {
        /// The signature is not 65 bytes.
        error SignatureLength(uint256 length);
        /// `v` is neither 27 nor 28.
        error SignatureV(uint8 v);
        /// `s` is in the upper half of the curve order.
        error SignatureHighS(bytes32 s);
        /// No key recovers from the signature.
        error SignatureUnrecoverable();
    }
}

/// How many seconds the chain's clock is behind a Confidential Space token, when `data` is
/// the verifier's `TokenNotYetValid` revert: the token was issued (or becomes valid) after the
/// block time the call ran at. A token just issued can be ahead of a chain whose blocks lag
/// the wall clock.
pub fn token_ahead_of_chain(data: &[u8]) -> Option<u64> {
    use ConfidentialSpaceVerifier::ConfidentialSpaceVerifierErrors as Cs;
    match Cs::abi_decode(data) {
        Ok(Cs::TokenNotYetValid(e)) => Some(e.value.saturating_sub(e.now).saturating_to()),
        _ => None,
    }
}

/// The revert `data` of a registry call as `Contract.Error(name: value, …)`, with a hint
/// where the usual cause is known. Unknown data is shown as its selector and bytes.
pub fn describe_revert(data: &[u8]) -> String {
    use ConfidentialSpaceVerifier::ConfidentialSpaceVerifierErrors as Cs;
    use DevAttestationVerifier::DevAttestationVerifierErrors as Dev;
    use JsonClaims::JsonClaimsErrors as Json;
    use KeyRegistry::KeyRegistryErrors as Registry;
    use Signatures::SignaturesErrors as Sig;
    if data.is_empty() {
        return "a revert without data".into();
    }
    if let Ok(error) = Registry::abi_decode(data) {
        return match error {
            Registry::NotOwner(e) => format!("KeyRegistry.NotOwner(caller: {})", e.caller),
            Registry::VerifierNotAccepted(e) => format!(
                "KeyRegistry.VerifierNotAccepted(verifier: {}): the registry's owner must accept it first (setVerifier(verifier, true))",
                e.verifier
            ),
            Registry::AlreadyRegistered(e) => {
                format!(
                    "KeyRegistry.AlreadyRegistered(key: {}): the key is registered already",
                    e.key
                )
            }
            Registry::KeyWasRevoked(e) => format!(
                "KeyRegistry.KeyWasRevoked(key: {}): a revoked key never comes back; generate a new one",
                e.key
            ),
            Registry::NotRegistered(e) => format!("KeyRegistry.NotRegistered(key: {})", e.key),
            Registry::NotAllowedToRevoke(e) => format!(
                "KeyRegistry.NotAllowedToRevoke(caller: {}, key: {})",
                e.caller, e.key
            ),
            Registry::ZeroKey(_) => "KeyRegistry.ZeroKey(): the zero address is not a key".into(),
        };
    }
    if let Ok(error) = Dev::abi_decode(data) {
        return match error {
            Dev::AttestationExpired(e) => format!(
                "DevAttestationVerifier.AttestationExpired(expiresAt: {}, now: {}): attest the key again",
                e.expiresAt, e.now
            ),
            Dev::NotTheAttester(e) => format!(
                "DevAttestationVerifier.NotTheAttester(signer: {}, attester: {}): the attestation was made for another key, registry, chain or verifier, or by another attester",
                e.signer, e.attester
            ),
        };
    }
    if let Ok(error) = Cs::abi_decode(data) {
        return match error {
            Cs::ImageNotAllowed(e) => format!(
                "ConfidentialSpaceVerifier.ImageNotAllowed(digest: {:?}): the verifier's owner has not allowed this image (allowImage)",
                e.digest
            ),
            Cs::ProjectNotAllowed(e) => format!(
                "ConfidentialSpaceVerifier.ProjectNotAllowed(projectId: {:?}): the verifier's owner has not allowed this project (allowProject)",
                e.projectId
            ),
            Cs::UnknownSigningKey(e) => format!(
                "ConfidentialSpaceVerifier.UnknownSigningKey(kid: {:?}): the verifier's owner must pin Google's key first (setSigningKey)",
                e.kid
            ),
            Cs::UnsupportedAlgorithm(e) => {
                format!(
                    "ConfidentialSpaceVerifier.UnsupportedAlgorithm(alg: {:?})",
                    e.alg
                )
            }
            Cs::BadRsaSignature(_) => "ConfidentialSpaceVerifier.BadRsaSignature()".into(),
            Cs::ClaimMismatch(e) => format!(
                "ConfidentialSpaceVerifier.ClaimMismatch(claim: {:?}, found: {:?})",
                e.claim, e.found
            ),
            Cs::TokenExpired(e) => format!(
                "ConfidentialSpaceVerifier.TokenExpired(exp: {}, now: {}): attest the key again",
                e.exp, e.now
            ),
            Cs::TokenNotYetValid(e) => format!(
                "ConfidentialSpaceVerifier.TokenNotYetValid(claim: {:?}, value: {}, now: {})",
                e.claim, e.value, e.now
            ),
            Cs::NonceMismatch(e) => format!(
                "ConfidentialSpaceVerifier.NonceMismatch(found: {:?}, expected: {:?}): the token binds another key, registry or chain",
                e.found, e.expected
            ),
        };
    }
    if let Ok(error) = Json::abi_decode(data) {
        let (error, name) = match error {
            Json::ClaimMissing(e) => ("ClaimMissing", e.name),
            Json::ClaimRepeated(e) => ("ClaimRepeated", e.name),
            Json::ClaimNotAString(e) => ("ClaimNotAString", e.name),
            Json::ClaimEscaped(e) => ("ClaimEscaped", e.name),
            Json::ClaimNotANumber(e) => ("ClaimNotANumber", e.name),
            Json::ClaimNotABool(e) => ("ClaimNotABool", e.name),
        };
        return format!("JsonClaims.{error}(name: {name:?})");
    }
    if let Ok(error) = Sig::abi_decode(data) {
        return match error {
            Sig::SignatureLength(e) => format!("Signatures.SignatureLength(length: {})", e.length),
            Sig::SignatureV(e) => format!("Signatures.SignatureV(v: {})", e.v),
            Sig::SignatureHighS(e) => format!("Signatures.SignatureHighS(s: {})", e.s),
            Sig::SignatureUnrecoverable(_) => "Signatures.SignatureUnrecoverable()".into(),
        };
    }
    if let Some(reason) = alloy::sol_types::decode_revert_reason(data) {
        return reason;
    }
    match data.get(..4) {
        Some(selector) => format!(
            "an unknown error (selector 0x{}, data 0x{})",
            hex::encode(selector),
            hex::encode(data)
        ),
        None => format!("a revert with data 0x{}", hex::encode(data)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use alloy::primitives::{Address, U256};
    use alloy::sol_types::SolError;

    /// The selectors of every function and error in `artifact`'s ABI (exported by
    /// `contracts/build.sh` from the Solidity sources), from their canonical signatures.
    fn artifact_selectors(artifact: &str) -> Vec<[u8; 4]> {
        let path = format!(
            "{}/../../contracts/artifacts/{artifact}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json["abi"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|item| matches!(item["type"].as_str(), Some("function" | "error")))
            .map(|item| {
                let types: Vec<&str> = item["inputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|input| {
                        let ty = input["type"].as_str().unwrap();
                        assert!(
                            !ty.starts_with("tuple"),
                            "{path}: tuples are not expected here"
                        );
                        ty
                    })
                    .collect();
                let signature = format!("{}({})", item["name"].as_str().unwrap(), types.join(","));
                let hash = alloy::primitives::keccak256(signature.as_bytes());
                [hash[0], hash[1], hash[2], hash[3]]
            })
            .collect()
    }

    /// The ABI declared by hand above must exist, signature for signature, in the contracts
    /// as built: a changed Solidity signature fails here, not on a chain.
    #[test]
    fn the_declared_abi_matches_the_built_contracts() {
        let check = |declared: &[[u8; 4]], artifact: &str, what: &str| {
            let built = artifact_selectors(artifact);
            for selector in declared {
                assert!(
                    built.contains(selector),
                    "{what}: selector 0x{} is not in contracts/artifacts/{artifact}.json",
                    hex::encode(selector)
                );
            }
        };
        check(
            KeyRegistry::KeyRegistryCalls::SELECTORS,
            "KeyRegistry",
            "KeyRegistry calls",
        );
        check(
            KeyRegistry::KeyRegistryErrors::SELECTORS,
            "KeyRegistry",
            "KeyRegistry errors",
        );
        check(
            DevAttestationVerifier::DevAttestationVerifierCalls::SELECTORS,
            "DevAttestationVerifier",
            "DevAttestationVerifier calls",
        );
        check(
            DevAttestationVerifier::DevAttestationVerifierErrors::SELECTORS,
            "DevAttestationVerifier",
            "DevAttestationVerifier errors",
        );
        check(
            ConfidentialSpaceVerifier::ConfidentialSpaceVerifierCalls::SELECTORS,
            "ConfidentialSpaceVerifier",
            "ConfidentialSpaceVerifier calls",
        );
        check(
            ConfidentialSpaceVerifier::ConfidentialSpaceVerifierErrors::SELECTORS,
            "ConfidentialSpaceVerifier",
            "ConfidentialSpaceVerifier errors",
        );
        check(
            JsonClaims::JsonClaimsErrors::SELECTORS,
            "ConfidentialSpaceVerifier",
            "JsonClaims errors",
        );
        check(
            Signatures::SignaturesErrors::SELECTORS,
            "DevAttestationVerifier",
            "Signatures errors",
        );
    }

    use super::*;

    #[test]
    fn reverts_are_named_with_their_contract_and_values() {
        let key: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
            .parse()
            .unwrap();
        let data = KeyRegistry::AlreadyRegistered { key }.abi_encode();
        assert_eq!(
            describe_revert(&data),
            "KeyRegistry.AlreadyRegistered(key: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8): the key is registered already"
        );
        let data = DevAttestationVerifier::AttestationExpired {
            expiresAt: 5,
            now: U256::from(9),
        }
        .abi_encode();
        assert!(
            describe_revert(&data)
                .starts_with("DevAttestationVerifier.AttestationExpired(expiresAt: 5, now: 9)")
        );
        let data = ConfidentialSpaceVerifier::NonceMismatch {
            found: "aa".into(),
            expected: "bb".into(),
        }
        .abi_encode();
        assert!(
            describe_revert(&data).starts_with(
                "ConfidentialSpaceVerifier.NonceMismatch(found: \"aa\", expected: \"bb\")"
            ),
            "{}",
            describe_revert(&data)
        );
        let data = ConfidentialSpaceVerifier::ProjectNotAllowed {
            projectId: "someone-elses-project".into(),
        }
        .abi_encode();
        assert_eq!(
            describe_revert(&data),
            "ConfidentialSpaceVerifier.ProjectNotAllowed(projectId: \"someone-elses-project\"): the verifier's owner has not allowed this project (allowProject)"
        );
        let data = JsonClaims::ClaimRepeated {
            name: "image_digest".into(),
        }
        .abi_encode();
        assert_eq!(
            describe_revert(&data),
            "JsonClaims.ClaimRepeated(name: \"image_digest\")"
        );
        let data = Signatures::SignatureV { v: 3 }.abi_encode();
        assert_eq!(describe_revert(&data), "Signatures.SignatureV(v: 3)");
        let data = alloy::sol_types::Revert::from("nope").abi_encode();
        assert!(
            describe_revert(&data).contains("nope"),
            "{}",
            describe_revert(&data)
        );
        assert_eq!(
            describe_revert(&[0xde, 0xad, 0xbe, 0xef, 1]),
            "an unknown error (selector 0xdeadbeef, data 0xdeadbeef01)"
        );
        assert_eq!(describe_revert(&[]), "a revert without data");
    }

    #[test]
    fn selectors_match_the_solidity_signatures() {
        // cast sig "register(address,address,bytes)"; cast sig "AlreadyRegistered(address)"
        use alloy::sol_types::SolCall;
        assert_eq!(hex::encode(KeyRegistry::registerCall::SELECTOR), "2543d0b4");
        assert_eq!(
            hex::encode(KeyRegistry::AlreadyRegistered::SELECTOR),
            "45ed80e9"
        );
    }
}
