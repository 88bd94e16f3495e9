//! The development attester: a configured key signs that a validator key may be registered.
//!
//! For development and the local stack only. `DevAttestationVerifier(attester)` accepts a key
//! when `attester` signed the EIP-712 struct
//!
//! ```solidity
//! struct KeyAttestation { address key; address registry; bytes32 measurement; uint64 expiresAt; }
//! ```
//!
//! under the domain `{name "walproof", version "1", chainId, verifyingContract = the
//! DevAttestationVerifier}`, with `registry` the `KeyRegistry` that asks and `expiresAt` after
//! the block's timestamp. The evidence is `abi.encode(bytes32 measurement, uint64 expiresAt,
//! bytes signature)`, the signature 65 bytes `r‖s‖v` with `v` 27 or 28 and low `s`.
//!
//! IMPORTANT: nothing about a TEE is proven. The attester is trusted to have checked where the
//! key came from; whoever holds the attester key can register any key.

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::sol_types::{SolStruct, SolValue, eip712_domain};

use crate::evidence::{
    AttestError, Evidence, EvidenceDetails, KeyAttestor, Provider, Registration, unix_now,
};
use crate::signer::AttestationSigner;

alloy::sol! {
    /// The EIP-712 struct the dev attester signs: "`key` may be registered at `registry`;
    /// it runs `measurement`; this holds until `expiresAt`".
    #[derive(Debug, PartialEq, Eq)]
    struct KeyAttestation {
        /// The validator key's address.
        address key;
        /// The `KeyRegistry` that will ask the verifier.
        address registry;
        /// What runs with the key (any 32 bytes the deployment agrees on).
        bytes32 measurement;
        /// Unix seconds after which the verifier refuses the attestation.
        uint64 expiresAt;
    }
}

/// The measurement used when none is given: `keccak256("walproof/dev-measurement/v1")`.
pub fn default_measurement() -> B256 {
    keccak256(b"walproof/dev-measurement/v1")
}

/// How long a dev attestation is valid when not said otherwise.
pub const DEFAULT_VALID_FOR: Duration = Duration::from_secs(3600);

impl KeyAttestation {
    /// The EIP-712 signing hash under the DevAttestationVerifier `verifier` on `chain_id`:
    /// what `DevAttestationVerifier.attestationDigest` returns.
    pub fn signing_hash(&self, chain_id: u64, verifier: Address) -> B256 {
        self.eip712_signing_hash(&eip712_domain! {
            name: "walproof",
            version: "1",
            chain_id: chain_id,
            verifying_contract: verifier,
        })
    }
}

/// Signs [`KeyAttestation`]s with a development attester key.
#[derive(Debug)]
pub struct DevAttester<S> {
    attester: S,
    measurement: B256,
    valid_for: Duration,
}

impl<S: AttestationSigner> DevAttester<S> {
    /// An attester signing with `attester`, the [`default_measurement`], valid for
    /// [`DEFAULT_VALID_FOR`].
    pub fn new(attester: S) -> DevAttester<S> {
        DevAttester {
            attester,
            measurement: default_measurement(),
            valid_for: DEFAULT_VALID_FOR,
        }
    }

    /// Attests `measurement` instead of the default.
    pub fn with_measurement(mut self, measurement: B256) -> DevAttester<S> {
        self.measurement = measurement;
        self
    }

    /// Makes attestations valid for `valid_for` from when they are made.
    pub fn valid_for(mut self, valid_for: Duration) -> DevAttester<S> {
        self.valid_for = valid_for;
        self
    }

    /// The attester's address (what the verifier was deployed with).
    pub fn attester(&self) -> Address {
        self.attester.address()
    }

    /// Evidence for `key` at `registration`, valid for the configured time from now. Only
    /// the key's address is needed: the attester vouches for it without holding the key.
    pub fn attest_address(
        &self,
        key: Address,
        registration: &Registration,
    ) -> Result<Evidence, AttestError> {
        let expires_at = unix_now()?.saturating_add(self.valid_for.as_secs());
        self.attest_until(key, registration, expires_at)
    }

    /// Evidence for `key` at `registration`, expiring at `expires_at` (Unix seconds).
    pub fn attest_until(
        &self,
        key: Address,
        registration: &Registration,
        expires_at: u64,
    ) -> Result<Evidence, AttestError> {
        let attestation = KeyAttestation {
            key,
            registry: registration.registry,
            measurement: self.measurement,
            expiresAt: expires_at,
        };
        let digest = attestation.signing_hash(registration.chain_id, registration.verifier);
        // The contract rejects a high s; k256 signs low-s already, normalising costs nothing.
        let signature = self.attester.sign_digest(&digest)?.normalized_s();
        if !self.attester.signs_with_its_own_key() {
            let recovered = signature
                .recover_address_from_prehash(&digest)
                .unwrap_or(Address::ZERO);
            if recovered != self.attester.address() {
                return Err(AttestError::WrongSigner {
                    attester: self.attester.address(),
                    recovered,
                });
            }
        }
        // as_bytes: r ‖ s ‖ v with v 27 or 28, what ecrecover takes.
        let signature = Bytes::from(signature.as_bytes().to_vec());
        let bytes = (self.measurement, expires_at, signature).abi_encode_params();
        Ok(Evidence {
            provider: Provider::Dev,
            key,
            registration: *registration,
            measurement: self.measurement,
            bytes: bytes.into(),
            details: EvidenceDetails::Dev { expires_at },
        })
    }
}

impl<S: AttestationSigner> KeyAttestor for DevAttester<S> {
    /// Any key: the dev attester vouches for whatever it is asked to.
    type Key = dyn AttestationSigner;

    fn provider(&self) -> Provider {
        Provider::Dev
    }

    async fn attest(
        &self,
        key: &Self::Key,
        registration: &Registration,
    ) -> Result<Evidence, AttestError> {
        self.attest_address(key.address(), registration)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;
    use crate::signer::{FileKey, KeyOrigin};

    /// anvil's first well-known test key (public; never fund it), the attester.
    const ATTESTER_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    fn registration() -> Registration {
        Registration {
            chain_id: 31337,
            registry: "0x5FbDB2315678afecb367f032d93F642f64180aa3"
                .parse()
                .unwrap(),
            verifier: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
                .parse()
                .unwrap(),
        }
    }

    fn attester() -> DevAttester<FileKey> {
        let key = FileKey::parse(ATTESTER_KEY, KeyOrigin::Env("ATTESTER".into())).unwrap();
        DevAttester::new(key).with_measurement(keccak256("walproof-dev"))
    }

    /// The digest, signature and evidence below were computed with foundry's cast (1.7.1),
    /// by hand and through cast's own EIP-712 encoder, which agree:
    ///
    /// ```sh
    /// ATT=ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
    /// KEY=0x70997970C51812dc3A010C7d01b50e0d17dc79C8
    /// REG=0x5FbDB2315678afecb367f032d93F642f64180aa3
    /// VER=0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512
    /// M=$(cast keccak "walproof-dev"); EXP=1900000000
    /// DTH=$(cast keccak "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    /// DS=$(cast keccak $(cast abi-encode "f(bytes32,bytes32,bytes32,uint256,address)" \
    ///     $DTH $(cast keccak walproof) $(cast keccak 1) 31337 $VER))
    /// TH=$(cast keccak "KeyAttestation(address key,address registry,bytes32 measurement,uint64 expiresAt)")
    /// SH=$(cast keccak $(cast abi-encode "f(bytes32,address,address,bytes32,uint64)" $TH $KEY $REG $M $EXP))
    /// DIG=$(cast keccak $(cast concat-hex 0x1901 $DS $SH))
    /// SIG=$(cast wallet sign --no-hash --private-key $ATT $DIG)
    /// # the same signature from typed data (types, domain, message as above in a JSON file):
    /// cast wallet sign --data --from-file --private-key $ATT typed.json
    /// cast abi-encode "f(bytes32,uint64,bytes)" $M $EXP $SIG
    /// ```
    const DIGEST: &str = "0x9ef3add534a1a7c46a6bbcccf58ccf86cb9fa2ed2640736239086d39402cdd19";
    const SIGNATURE: &str = "0318359b6170b37bd8616195122212bc4c3176ef4b4e37598bb84253ad9546927f73711d940eadb48a14618999fca8f01724b7d2cc91363ca9994ca13b5e58b71b";
    const EVIDENCE: &str = "0x95583988fc4510ea62b1712012204ffc98e7f9f71010e3b37c0401e80f4b67e000000000000000000000000000000000000000000000000000000000713fb300000000000000000000000000000000000000000000000000000000000000006000000000000000000000000000000000000000000000000000000000000000410318359b6170b37bd8616195122212bc4c3176ef4b4e37598bb84253ad9546927f73711d940eadb48a14618999fca8f01724b7d2cc91363ca9994ca13b5e58b71b00000000000000000000000000000000000000000000000000000000000000";

    fn key() -> Address {
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
            .parse()
            .unwrap()
    }

    #[test]
    fn key_attestation_digest_matches_cast() {
        let attestation = KeyAttestation {
            key: key(),
            registry: registration().registry,
            measurement: keccak256("walproof-dev"),
            expiresAt: 1_900_000_000,
        };
        assert_eq!(
            attestation
                .signing_hash(31337, registration().verifier)
                .to_string(),
            DIGEST
        );
    }

    #[test]
    fn dev_evidence_matches_cast() {
        let evidence = attester()
            .attest_until(key(), &registration(), 1_900_000_000)
            .unwrap();
        assert_eq!(evidence.bytes.to_string(), EVIDENCE);
        assert!(evidence.bytes.to_string().contains(SIGNATURE));
        assert_eq!(evidence.measurement, keccak256("walproof-dev"));
        assert_eq!(evidence.key, key());
        assert_eq!(evidence.registration, registration());
        assert_eq!(
            evidence.details,
            EvidenceDetails::Dev {
                expires_at: 1_900_000_000
            }
        );
    }

    #[test]
    fn dev_evidence_decodes_as_the_verifier_reads_it() {
        let evidence = attester()
            .attest_until(key(), &registration(), 1_900_000_000)
            .unwrap();
        let (measurement, expires_at, signature) =
            <(B256, u64, Bytes)>::abi_decode_params(&evidence.bytes).unwrap();
        assert_eq!(measurement, keccak256("walproof-dev"));
        assert_eq!(expires_at, 1_900_000_000);
        assert_eq!(signature.len(), 65);
        assert!(matches!(signature[64], 27 | 28));
        let signature = alloy::primitives::Signature::from_raw(&signature).unwrap();
        assert_eq!(
            signature
                .recover_address_from_prehash(&DIGEST.parse().unwrap())
                .unwrap(),
            attester().attester()
        );
    }

    #[tokio::test]
    async fn attest_expires_valid_for_seconds_from_now() {
        let attester = attester().valid_for(Duration::from_secs(600));
        let key = FileKey::parse(
            "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
            KeyOrigin::Env("KEY".into()),
        )
        .unwrap();
        let before = unix_now().unwrap();
        let evidence = attester.attest(&key, &registration()).await.unwrap();
        let after = unix_now().unwrap();
        let EvidenceDetails::Dev { expires_at } = evidence.details else {
            panic!("{:?}", evidence.details)
        };
        assert!(
            (before + 600..=after + 600).contains(&expires_at),
            "{expires_at}"
        );
        assert_eq!(evidence.key, key.address());
    }
}
