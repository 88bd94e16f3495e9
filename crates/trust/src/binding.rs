//! The key binding: the 32 bytes a TEE attestation commits to, naming one chain, one key
//! registry and one key.
//!
//! ```solidity
//! binding(chainId, registry, key) = keccak256(abi.encode(
//!     keccak256("walproof/key-binding/v1"), uint256 chainId, address registry, address key))
//! ```
//!
//! exactly as `KeyBinding.compute` in `contracts/src/verifiers/IAttestationVerifier.sol`, with
//! `registry` the contract that calls the verifier. A TEE quote or token whose nonce is this
//! binding cannot be replayed for another key, another registry or another chain. As text (a
//! Confidential Space `eat_nonce`) it is 64 lower-case hex digits without `0x`:
//! [`binding_nonce`].

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;

/// The domain tag hashed into every binding.
pub const KEY_BINDING_TAG: &str = "walproof/key-binding/v1";

/// The binding of `key` to `registry` on chain `chain_id`.
pub fn key_binding(chain_id: u64, registry: Address, key: Address) -> B256 {
    let tag = keccak256(KEY_BINDING_TAG.as_bytes());
    // abi.encode of four static words: no offsets, each value in its 32-byte slot.
    keccak256((tag, U256::from(chain_id), registry, key).abi_encode_params())
}

/// `binding` as a TEE nonce: 64 lower-case hex digits, no `0x`.
pub fn binding_nonce(binding: &B256) -> String {
    hex::encode(binding.as_slice())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    /// Computed with foundry's cast (1.7.1):
    ///
    /// ```sh
    /// TAG=$(cast keccak "walproof/key-binding/v1")
    /// cast keccak $(cast abi-encode "f(bytes32,uint256,address,address)" $TAG 31337 \
    ///     0x5FbDB2315678afecb367f032d93F642f64180aa3 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266)
    /// cast keccak $(cast abi-encode "f(bytes32,uint256,address,address)" $TAG 1 \
    ///     0x00000000000000000000000000000000000000ff 0x70997970C51812dc3A010C7d01b50e0d17dc79C8)
    /// ```
    const VECTORS: [(u64, &str, &str, &str); 2] = [
        (
            31337,
            "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "256ff10bd888604adc4c007df243e36a34a0ad0483174c29996376de8f8a056d",
        ),
        (
            1,
            "0x00000000000000000000000000000000000000ff",
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "26ab9eb5335e3536cb8758ff763aa3f42fc3127a9094cfd7ed1926361f29bbbe",
        ),
    ];

    #[test]
    fn binding_matches_the_value_cast_computes() {
        for (chain_id, registry, key, expected) in VECTORS {
            let binding = key_binding(chain_id, registry.parse().unwrap(), key.parse().unwrap());
            assert_eq!(binding_nonce(&binding), expected, "chain {chain_id}");
        }
    }

    #[test]
    fn tag_hash_matches_cast() {
        // cast keccak "walproof/key-binding/v1"
        assert_eq!(
            keccak256(KEY_BINDING_TAG.as_bytes()).to_string(),
            "0x8afea72fc5aa360661c589084cd37b299a688a069ad854a1952076046b9fcbff"
        );
    }

    #[test]
    fn nonce_is_64_lower_case_hex_digits_without_0x() {
        let nonce = binding_nonce(&key_binding(
            31337,
            "0x5FbDB2315678afecb367f032d93F642f64180aa3"
                .parse()
                .unwrap(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse()
                .unwrap(),
        ));
        assert_eq!(nonce.len(), 64);
        assert!(
            nonce.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
            "{nonce}"
        );
    }

    #[test]
    fn every_input_changes_the_binding() {
        let registry: Address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
            .parse()
            .unwrap();
        let key: Address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
            .parse()
            .unwrap();
        let base = key_binding(31337, registry, key);
        assert_ne!(base, key_binding(31338, registry, key));
        assert_ne!(base, key_binding(31337, key, registry));
        assert_ne!(base, key_binding(31337, registry, Address::ZERO));
    }
}
