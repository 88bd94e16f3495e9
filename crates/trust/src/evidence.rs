//! Registration evidence — what a key registry's attestation verifier is given to accept a
//! key — and [`KeyAttestor`], the interface of the providers that produce it.
//!
//! `KeyRegistry.register(key, verifier, evidence)` hands `evidence` to `verifier.verify(key,
//! evidence)`, which returns the measurement (what ran) or reverts. Each provider makes the
//! bytes its verifier contract reads:
//!
//! | [`Provider`] | module | verifier contract | evidence |
//! |---|---|---|---|
//! | `dev` | [`crate::dev`] | `DevAttestationVerifier` | `abi.encode(bytes32 measurement, uint64 expiresAt, bytes signature)` |
//! | `confidential-space` | [`crate::confidential_space`] | `ConfidentialSpaceVerifier` | `abi.encode(bytes header, bytes payload, bytes signature)` |
//!
//! # Adding a TEE
//!
//! Another TEE (an Intel TDX quote checked by Intel Trust Authority, an AWS Nitro enclave
//! document, …) is a new module implementing [`KeyAttestor`] (its `Key` is the key type it
//! can vouch for, normally a [`crate::WorkloadKey`] generated inside the TEE; its nonce or
//! report data is [`crate::binding::key_binding`]), a [`Provider`] variant with its
//! [`EvidenceDetails`], and a verifier contract implementing `IAttestationVerifier` that the
//! registry's owner accepts. Nothing else changes: the registry, the evidence file and
//! `walproof keys register` are provider-neutral.

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use alloy::primitives::{Address, B256, Bytes};

use crate::binding::key_binding;
use crate::confidential_space::{LauncherError, TokenError, TokenSummary};
use crate::signer::{AttestationSigner, SignerError};

/// The version of the evidence file's JSON form ([`Evidence::to_json`]).
pub const EVIDENCE_JSON_VERSION: u64 = 1;

/// Who vouches that a key was generated where it should have been.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Provider {
    /// A development attester key signs for the key: nothing about a TEE is proven.
    Dev,
    /// A GCP Confidential Space attestation token whose nonce is the key binding.
    ConfidentialSpace,
}

impl Provider {
    /// The name used on the command line and in evidence files.
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Dev => "dev",
            Provider::ConfidentialSpace => "confidential-space",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Provider {
    type Err = String;

    fn from_str(text: &str) -> Result<Provider, String> {
        match text {
            "dev" => Ok(Provider::Dev),
            "confidential-space" => Ok(Provider::ConfidentialSpace),
            other => Err(format!(
                "unknown attestation provider {other:?}: expected \"dev\" or \"confidential-space\""
            )),
        }
    }
}

/// Where a key is to be registered: the chain, the `KeyRegistry` and the verifier the
/// registry will ask. Evidence is only valid for these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Registration {
    /// The EIP-155 chain id.
    pub chain_id: u64,
    /// The `KeyRegistry` contract (the verifier's `msg.sender`).
    pub registry: Address,
    /// The attestation verifier contract (for the dev provider also the EIP-712
    /// `verifyingContract` of the attester's signature).
    pub verifier: Address,
}

impl Registration {
    /// The binding of `key` to this registry and chain ([`key_binding`]).
    pub fn binding(&self, key: Address) -> B256 {
        key_binding(self.chain_id, self.registry, key)
    }
}

impl fmt::Display for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "registry {} (verifier {}) on chain {}",
            self.registry, self.verifier, self.chain_id
        )
    }
}

/// What a provider says beyond the evidence bytes, kept in the evidence file for people.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EvidenceDetails {
    /// The dev attester's attestation is valid until `expires_at` (Unix seconds, compared
    /// with the block timestamp).
    Dev {
        /// Unix seconds.
        expires_at: u64,
    },
    /// The Confidential Space token's claims that the verifier checks.
    ConfidentialSpace(Box<TokenSummary>),
}

/// Evidence that `key` may be registered at `registration`: the bytes for
/// `KeyRegistry.register(key, verifier, evidence)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Who produced it.
    pub provider: Provider,
    /// The key it vouches for.
    pub key: Address,
    /// Where it is valid.
    pub registration: Registration,
    /// The measurement the verifier will return (what ran), as computed locally.
    pub measurement: B256,
    /// The verifier's `evidence` argument.
    pub bytes: Bytes,
    /// Provider-specific details, for people.
    pub details: EvidenceDetails,
}

impl Evidence {
    /// The evidence file's JSON form (version 1):
    ///
    /// ```json
    /// {"version": 1, "provider": "dev", "key": "0x7099…79C8", "registry": "0x5FbD…0aa3",
    ///  "chain_id": 31337, "verifier": "0xe7f1…0512", "measurement": "0x<64 hex>",
    ///  "evidence": "0x…", "expires_at": 1900000000}
    /// ```
    ///
    /// `confidential-space` evidence has `"token": {…}` (the [`TokenSummary`]) instead of
    /// `expires_at`. Only `key`, `registry`, `chain_id`, `verifier` and `evidence` matter to
    /// the chain; the rest says what the evidence contains.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::json!({
            "version": EVIDENCE_JSON_VERSION,
            "provider": self.provider.name(),
            "key": self.key.to_checksum(None),
            "registry": self.registration.registry.to_checksum(None),
            "chain_id": self.registration.chain_id,
            "verifier": self.registration.verifier.to_checksum(None),
            "measurement": self.measurement.to_string(),
            "evidence": self.bytes.to_string(),
        });
        match &self.details {
            EvidenceDetails::Dev { expires_at } => {
                value["expires_at"] = (*expires_at).into();
            }
            EvidenceDetails::ConfidentialSpace(summary) => {
                value["token"] = summary.to_json();
            }
        }
        value
    }

    /// Reads the JSON form back; the error names the field.
    pub fn from_json(text: &str) -> Result<Evidence, EvidenceFileError> {
        use EvidenceFileError::{Invalid, Missing};
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|err| EvidenceFileError::NotJson {
                problem: err.to_string(),
            })?;
        if value["version"].as_u64() != Some(EVIDENCE_JSON_VERSION) {
            return Err(EvidenceFileError::Version {
                found: value["version"].to_string(),
            });
        }
        let text = |field: &'static str| -> Result<&str, EvidenceFileError> {
            match &value[field] {
                serde_json::Value::Null => Err(Missing { field }),
                serde_json::Value::String(text) => Ok(text.as_str()),
                other => Err(Invalid {
                    field,
                    problem: format!("{other} is not a string"),
                }),
            }
        };
        let number = |field: &'static str| -> Result<u64, EvidenceFileError> {
            match &value[field] {
                serde_json::Value::Null => Err(Missing { field }),
                other => other.as_u64().ok_or_else(|| Invalid {
                    field,
                    problem: format!("{other} is not an unsigned integer"),
                }),
            }
        };
        /// The text of a field parsed as `T`.
        fn hex_field<T: FromStr>(
            field: &'static str,
            text: Result<&str, EvidenceFileError>,
        ) -> Result<T, EvidenceFileError>
        where
            T::Err: fmt::Display,
        {
            let text = text?;
            text.parse().map_err(|err| Invalid {
                field,
                problem: format!("{text:?}: {err}"),
            })
        }
        let address = |field| hex_field::<Address>(field, text(field));
        let provider: Provider = text("provider")?.parse().map_err(|problem| Invalid {
            field: "provider",
            problem,
        })?;
        let measurement = hex_field::<B256>("measurement", text("measurement"))?;
        let bytes = hex_field::<Bytes>("evidence", text("evidence"))?;
        let details = match provider {
            Provider::Dev => EvidenceDetails::Dev {
                expires_at: number("expires_at")?,
            },
            Provider::ConfidentialSpace => EvidenceDetails::ConfidentialSpace(Box::new(
                TokenSummary::from_json(&value["token"]).map_err(|problem| Invalid {
                    field: "token",
                    problem,
                })?,
            )),
        };
        Ok(Evidence {
            provider,
            key: address("key")?,
            registration: Registration {
                chain_id: number("chain_id")?,
                registry: address("registry")?,
                verifier: address("verifier")?,
            },
            measurement,
            bytes,
            details,
        })
    }
}

/// An evidence file that cannot be read; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceFileError {
    /// Not JSON.
    #[error("the evidence file is not JSON: {problem}")]
    NotJson {
        /// serde_json's reason.
        problem: String,
    },
    /// A version this code does not read.
    #[error(
        "the evidence file has version {found}, this walproof reads version {EVIDENCE_JSON_VERSION}"
    )]
    Version {
        /// The `version` value as found.
        found: String,
    },
    /// A field is absent.
    #[error("the evidence file has no {field}")]
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A field holds something else than it should.
    #[error("the evidence file's {field} is invalid: {problem}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// Produces registration evidence for keys of type [`KeyAttestor::Key`].
///
/// Calls may be concurrent (`&self`). An attestation is a one-off at key registration, not
/// on any hot path: an implementation may talk to a local daemon (the Confidential Space
/// launcher) or a remote attestation service and take seconds.
pub trait KeyAttestor {
    /// The keys this provider can vouch for. A TEE provider takes only keys generated inside
    /// the TEE ([`crate::WorkloadKey`]): attesting a key that exists elsewhere would prove
    /// nothing about who holds it.
    type Key: AttestationSigner + ?Sized;

    /// The provider.
    fn provider(&self) -> Provider;

    /// Evidence that `key` may be registered at `registration`.
    fn attest(
        &self,
        key: &Self::Key,
        registration: &Registration,
    ) -> impl Future<Output = Result<Evidence, AttestError>> + Send;
}

/// No evidence could be produced.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// The dev attester's key could not sign. Retryable when the signer is remote.
    #[error("the attester could not sign: {0}")]
    Signer(#[from] SignerError),
    /// The attester's signature does not recover to the attester (a broken signer). Fatal.
    #[error("the attester {attester} returned a signature that recovers to {recovered}")]
    WrongSigner {
        /// The attester's address.
        attester: Address,
        /// What the signature recovers to (zero when nothing recovers).
        recovered: Address,
    },
    /// The Confidential Space launcher did not give a token.
    #[error(transparent)]
    Launcher(#[from] LauncherError),
    /// The launcher gave a token the verifier would not accept.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The system clock is before 1970 or past 2554 (a u64 of seconds).
    #[error("the system clock is unusable: {problem}")]
    Clock {
        /// What is wrong.
        problem: String,
    },
}

impl AttestError {
    /// Whether trying again later may succeed (a launcher that is starting, a network
    /// blip); otherwise the configuration or the environment is wrong.
    pub fn is_retryable(&self) -> bool {
        match self {
            AttestError::Signer(_) => true,
            AttestError::Launcher(err) => err.is_retryable(),
            AttestError::WrongSigner { .. } | AttestError::Token(_) | AttestError::Clock { .. } => {
                false
            }
        }
    }
}

/// Seconds since the Unix epoch, as block timestamps count.
pub(crate) fn unix_now() -> Result<u64, AttestError> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .map_err(|err| AttestError::Clock {
            problem: err.to_string(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    fn dev_evidence() -> Evidence {
        Evidence {
            provider: Provider::Dev,
            key: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
                .parse()
                .unwrap(),
            registration: Registration {
                chain_id: 31337,
                registry: "0x5FbDB2315678afecb367f032d93F642f64180aa3"
                    .parse()
                    .unwrap(),
                verifier: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
                    .parse()
                    .unwrap(),
            },
            measurement: B256::repeat_byte(7),
            bytes: Bytes::from_static(&[1, 2, 3]),
            details: EvidenceDetails::Dev {
                expires_at: 1_900_000_000,
            },
        }
    }

    #[test]
    fn evidence_json_round_trips_with_checksummed_addresses() {
        let evidence = dev_evidence();
        let json = evidence.to_json();
        assert_eq!(json["provider"], "dev");
        assert_eq!(json["key"], "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
        assert_eq!(json["evidence"], "0x010203");
        assert_eq!(json["measurement"], format!("0x{}", "07".repeat(32)));
        assert_eq!(json["expires_at"], 1_900_000_000u64);
        assert_eq!(Evidence::from_json(&json.to_string()).unwrap(), evidence);
    }

    #[test]
    fn evidence_file_errors_name_the_field() {
        let good = dev_evidence().to_json();
        let cases: [(&str, serde_json::Value, &str); 5] = [
            ("version", serde_json::json!(2), "version 2"),
            ("provider", serde_json::json!("sgx"), "provider"),
            ("key", serde_json::json!("0x1234"), "key"),
            ("evidence", serde_json::json!("zz"), "evidence"),
            ("chain_id", serde_json::json!("31337"), "chain_id"),
        ];
        for (field, bad, expected) in cases {
            let mut value = good.clone();
            value[field] = bad;
            let err = Evidence::from_json(&value.to_string()).unwrap_err();
            assert!(err.to_string().contains(expected), "{field}: {err}");
        }
        let mut value = good.clone();
        value.as_object_mut().unwrap().remove("registry");
        let err = Evidence::from_json(&value.to_string()).unwrap_err();
        assert_eq!(err, EvidenceFileError::Missing { field: "registry" });
        assert!(Evidence::from_json("not json").is_err());
    }

    #[test]
    fn provider_names_parse_back() {
        for provider in [Provider::Dev, Provider::ConfidentialSpace] {
            assert_eq!(provider.name().parse::<Provider>().unwrap(), provider);
        }
        assert!("tdx".parse::<Provider>().unwrap_err().contains("tdx"));
    }
}
