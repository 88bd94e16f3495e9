//! The contracts deployed to a chain: key registry, development attestation verifier and
//! bridge, wired and funded (`walproof chain deploy`; the local stack deploys to anvil).

use std::path::Path;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use serde::{Deserialize, Serialize};

use crate::bindings::{Bridge, DevAttestationVerifier, KeyRegistry};
use crate::chain::{ChainError, decode, sending_provider};

/// What to deploy.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Signatures the bridge needs per root and per withdrawal.
    pub threshold: u64,
    /// The development attester whose signature registers a key (the local stack's).
    pub attester: Address,
    /// The outbound table's schema and name, as the bridge hashes its rows.
    pub withdrawal_table: (String, String),
    /// Wei sent to the bridge after deployment, to pay withdrawals.
    pub fund_wei: U256,
}

/// Where the contracts are; written as JSON for the other commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The chain id.
    pub chain_id: u64,
    /// The bridge (the EIP-712 domain's verifying contract).
    pub bridge: Address,
    /// The key registry.
    pub registry: Address,
    /// The development attestation verifier, accepted by the registry.
    pub dev_verifier: Address,
    /// The account that deployed and owns them.
    pub owner: Address,
    /// The bridge's threshold.
    pub threshold: u64,
}

impl Deployment {
    /// Reads a deployment file.
    pub fn read(path: &Path) -> Result<Deployment, String> {
        let bytes =
            std::fs::read(path).map_err(|err| format!("reading {}: {err}", path.display()))?;
        serde_json::from_slice(&bytes)
            .map_err(|err| format!("{} is not a walproof deployment: {err}", path.display()))
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// Deploys registry, development verifier and bridge from `deployer` (who owns them), accepts
/// the verifier in the registry, and funds the bridge.
pub async fn deploy(
    rpc: &str,
    deployer: PrivateKeySigner,
    options: &DeployOptions,
) -> Result<Deployment, ChainError> {
    let failed = |call: &str| {
        let call = call.to_owned();
        move |err: alloy::contract::Error| decode(&call, rpc, err)
    };
    let url = rpc.parse().map_err(|err| ChainError::Rpc {
        call: "connecting".into(),
        rpc: rpc.to_owned(),
        reason: format!("not a URL: {err}"),
    })?;
    let owner = deployer.address();
    let provider = sending_provider(url, deployer);
    let rpc_error = |call: &str, err: String| ChainError::Rpc {
        call: call.to_owned(),
        rpc: rpc.to_owned(),
        reason: err,
    };
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|err| rpc_error("eth_chainId", err.to_string()))?;
    let registry = KeyRegistry::deploy(provider.clone(), owner)
        .await
        .map_err(failed("deploying KeyRegistry"))?;
    let verifier = DevAttestationVerifier::deploy(provider.clone(), options.attester)
        .await
        .map_err(failed("deploying DevAttestationVerifier"))?;
    let accepted = registry
        .setVerifier(*verifier.address(), true)
        .send()
        .await
        .map_err(failed("KeyRegistry.setVerifier"))?
        .get_receipt()
        .await
        .map_err(|err| rpc_error("KeyRegistry.setVerifier receipt", err.to_string()))?;
    if !accepted.status() {
        return Err(ChainError::Failed {
            call: "KeyRegistry.setVerifier".into(),
            tx: accepted.transaction_hash,
            block: accepted.block_number,
        });
    }
    let bridge = Bridge::deploy(
        provider.clone(),
        owner,
        *registry.address(),
        U256::from(options.threshold),
        Address::ZERO,
        options.withdrawal_table.0.clone(),
        options.withdrawal_table.1.clone(),
    )
    .await
    .map_err(failed("deploying Bridge"))?;
    if !options.fund_wei.is_zero() {
        let funding = TransactionRequest::default()
            .with_to(*bridge.address())
            .with_value(options.fund_wei);
        provider
            .send_transaction(funding)
            .await
            .map_err(|err| rpc_error("funding the bridge", err.to_string()))?
            .get_receipt()
            .await
            .map_err(|err| rpc_error("funding the bridge: receipt", err.to_string()))?;
    }
    Ok(Deployment {
        chain_id,
        bridge: *bridge.address(),
        registry: *registry.address(),
        dev_verifier: *verifier.address(),
        owner,
        threshold: options.threshold,
    })
}
