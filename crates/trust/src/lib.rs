//! Trust: the keys walproof signs with, and the evidence that proves where they live.
//!
//! Consumes a key (a file, an environment variable, or one generated inside a TEE workload)
//! and, for registration, an attestation source (a development attester key, the Confidential
//! Space launcher). Produces signatures ([`AttestationSigner`]) and registration evidence
//! ([`Evidence`]) that a `KeyRegistry` contract's attestation verifier accepts. Guarantees that
//! key material never appears in a log line, a `Debug` output or an error, and that evidence
//! it produces passes the checks the verifier contract makes, which are repeated locally.
//!
//! # Layout
//!
//! - [`signer`]: the [`AttestationSigner`] interface; [`FileKey`] (a key read from a file or
//!   the environment), [`WorkloadKey`] (generated in this process, never leaves it),
//!   [`generate_key_file`].
//! - [`binding`]: the key binding a TEE attestation's nonce commits to (chain, registry, key).
//! - [`evidence`]: [`Evidence`] and its JSON file, [`Registration`] (where a key is to be
//!   registered), the [`KeyAttestor`] interface of providers, and how to add a TEE.
//! - [`dev`]: the development attester (an EIP-712 `KeyAttestation` signed by a configured key).
//! - [`confidential_space`]: GCP Confidential Space: the launcher client, the token's checks,
//!   the provider.
//! - [`registry`]: the ABI of `KeyRegistry` and the verifiers, reverts decoded into names.

pub mod binding;
pub mod confidential_space;
pub mod dev;
pub mod evidence;
pub mod registry;
pub mod signer;

pub use evidence::{AttestError, Evidence, EvidenceDetails, KeyAttestor, Provider, Registration};
pub use signer::{
    AttestationSigner, FileKey, KeyError, KeyOrigin, SignerError, WorkloadKey, generate_key_file,
};
