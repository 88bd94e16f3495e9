//! The bridge and key registry on chain, through alloy: state reads, submissions, and reverts
//! decoded into the contracts' custom errors.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, Bytes, TxHash, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use walproof_core::Lsn;

use crate::bindings::{Bridge, KeyRegistry};
use crate::pool::{ReadyRoot, ReadyWithdrawal};

/// How long a submitted transaction may take to be mined before the relayer stops waiting
/// (and reads the chain again before anything else).
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// What went wrong on chain; the message names the call.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node could not be reached or answered with an error.
    #[error("{call}: the node at {rpc} failed: {reason}")]
    Rpc {
        /// The call.
        call: String,
        /// The node's URL.
        rpc: String,
        /// What failed.
        reason: String,
    },
    /// The contract refused the call; `error` is its custom error with values when the
    /// revert data decodes, else the raw revert.
    #[error("{call} reverted: {error}")]
    Reverted {
        /// The call.
        call: String,
        /// The decoded error, e.g. `LsnNotIncreasing { commitLsn: 5, last: 7 }`.
        error: String,
        /// The error's name when it decoded (e.g. `AlreadyPaid`).
        name: Option<String>,
    },
    /// The transaction was mined but failed.
    #[error("{call}: transaction {tx} was mined in block {block:?} but failed")]
    Failed {
        /// The call.
        call: String,
        /// The transaction.
        tx: TxHash,
        /// Its block.
        block: Option<u64>,
    },
}

impl ChainError {
    /// The custom error's name, when the contract reverted with one.
    pub fn revert_name(&self) -> Option<&str> {
        match self {
            ChainError::Reverted { name, .. } => name.as_deref(),
            _ => None,
        }
    }
}

/// A mined transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mined {
    /// Its hash.
    pub tx: TxHash,
    /// Its block.
    pub block: Option<u64>,
    /// The gas it used.
    pub gas_used: u64,
}

/// The bridge's state that decides what to submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeState {
    /// The last committed LSN (zero before the first root).
    pub last_commit_lsn: Lsn,
    /// Signatures needed.
    pub threshold: usize,
}

/// The bridge at one address, with its key registry, through one node and one sender key.
#[derive(Debug, Clone)]
pub struct Chain {
    rpc: String,
    provider: DynProvider,
    bridge: Bridge::BridgeInstance<DynProvider>,
    registry: KeyRegistry::KeyRegistryInstance<DynProvider>,
}

/// A provider that signs with `sender` and asks the node for the account's pending nonce
/// before every transaction. alloy's default caches nonces in the process, and a call that
/// fails after its nonce was taken (a revert found while estimating gas) leaves a gap that
/// holds every later transaction of the account back; asking the node cannot.
pub fn sending_provider(
    url: alloy::transports::http::reqwest::Url,
    sender: PrivateKeySigner,
) -> DynProvider {
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(sender))
        .connect_http(url)
        .erased()
}

/// Turns a contract call's error into a [`ChainError`], decoding the bridge's (and the
/// registry's) custom errors.
pub fn decode(call: &str, rpc: &str, err: alloy::contract::Error) -> ChainError {
    if let Some(error) = err.as_decoded_interface_error::<Bridge::BridgeErrors>() {
        return reverted(call, format!("{error:?}"));
    }
    if let Some(error) = err.as_decoded_interface_error::<KeyRegistry::KeyRegistryErrors>() {
        return reverted(call, format!("{error:?}"));
    }
    if let Some(data) = err.as_revert_data() {
        return ChainError::Reverted {
            call: call.to_owned(),
            error: format!("undecoded revert data {data}"),
            name: None,
        };
    }
    ChainError::Rpc {
        call: call.to_owned(),
        rpc: rpc.to_owned(),
        reason: err.to_string(),
    }
}

/// `Variant(Struct { field: value, … })` → a [`ChainError::Reverted`] named `Variant`, shown as
/// `Struct { field: value, … }`.
fn reverted(call: &str, debug: String) -> ChainError {
    let (name, shown) = match debug.split_once('(') {
        Some((name, rest)) => (
            name.to_owned(),
            rest.strip_suffix(')').unwrap_or(rest).to_owned(),
        ),
        None => (debug.clone(), debug),
    };
    ChainError::Reverted {
        call: call.to_owned(),
        error: shown,
        name: Some(name),
    }
}

impl Chain {
    /// Connects to the node at `rpc`, sending transactions from `sender`; reads the bridge's
    /// key registry from the bridge.
    pub async fn connect(
        rpc: &str,
        bridge: Address,
        sender: PrivateKeySigner,
    ) -> Result<Chain, ChainError> {
        let url = rpc.parse().map_err(|err| ChainError::Rpc {
            call: "connecting".into(),
            rpc: rpc.to_owned(),
            reason: format!("not a URL: {err}"),
        })?;
        let provider = sending_provider(url, sender);
        let bridge = Bridge::new(bridge, provider.clone());
        let registry_address = bridge
            .registry()
            .call()
            .await
            .map_err(|err| decode("Bridge.registry()", rpc, err))?;
        Ok(Chain {
            rpc: rpc.to_owned(),
            registry: KeyRegistry::new(registry_address, provider.clone()),
            provider,
            bridge,
        })
    }

    /// The bridge's address.
    pub fn bridge(&self) -> Address {
        *self.bridge.address()
    }

    /// The key registry's address.
    pub fn registry(&self) -> Address {
        *self.registry.address()
    }

    /// The node's chain id.
    pub async fn chain_id(&self) -> Result<u64, ChainError> {
        self.provider
            .get_chain_id()
            .await
            .map_err(|err| ChainError::Rpc {
                call: "eth_chainId".into(),
                rpc: self.rpc.clone(),
                reason: err.to_string(),
            })
    }

    /// The balance of `account` in wei.
    pub async fn balance(&self, account: Address) -> Result<U256, ChainError> {
        self.provider
            .get_balance(account)
            .await
            .map_err(|err| ChainError::Rpc {
                call: format!("eth_getBalance({account})"),
                rpc: self.rpc.clone(),
                reason: err.to_string(),
            })
    }

    /// The bridge's last committed LSN and threshold.
    pub async fn state(&self) -> Result<BridgeState, ChainError> {
        let last = self
            .bridge
            .lastCommitLsn()
            .call()
            .await
            .map_err(|err| decode("Bridge.lastCommitLsn()", &self.rpc, err))?;
        let threshold = self
            .bridge
            .threshold()
            .call()
            .await
            .map_err(|err| decode("Bridge.threshold()", &self.rpc, err))?;
        Ok(BridgeState {
            last_commit_lsn: Lsn::new(last),
            threshold: usize::try_from(threshold).unwrap_or(usize::MAX),
        })
    }

    /// The root the bridge holds for `commit_lsn`, if it holds one.
    pub async fn root_of(&self, commit_lsn: Lsn) -> Result<Option<B256>, ChainError> {
        let held = self
            .bridge
            .rootOf(commit_lsn.as_u64())
            .call()
            .await
            .map_err(|err| decode("Bridge.rootOf()", &self.rpc, err))?;
        Ok(held.known.then_some(held.root))
    }

    /// Whether the registry counts `key`'s signatures.
    pub async fn is_active(&self, key: Address) -> Result<bool, ChainError> {
        self.registry
            .isActive(key)
            .call()
            .await
            .map_err(|err| decode("KeyRegistry.isActive()", &self.rpc, err))
    }

    /// Whether withdrawal `id` was paid.
    pub async fn paid(&self, id: u64) -> Result<bool, ChainError> {
        self.bridge
            .paid(U256::from(id))
            .call()
            .await
            .map_err(|err| decode("Bridge.paid()", &self.rpc, err))
    }

    /// Submits `roots` in one `commitRoots` and waits until it is mined.
    pub async fn commit_roots(&self, roots: &[ReadyRoot]) -> Result<Mined, ChainError> {
        let attestations: Vec<Bridge::RootAttestation> = roots
            .iter()
            .map(|root| Bridge::RootAttestation {
                commitLsn: root.commit_lsn.as_u64(),
                root: B256::from(root.root.0),
                ledgerHash: B256::from(root.ledger_hash.0),
            })
            .collect();
        let signatures: Vec<Vec<Bytes>> = roots
            .iter()
            .map(|root| signature_bytes(&root.signatures))
            .collect();
        let call = format!(
            "Bridge.commitRoots({} roots, {}..={})",
            roots.len(),
            roots.first().map_or(Lsn::ZERO, |r| r.commit_lsn),
            roots.last().map_or(Lsn::ZERO, |r| r.commit_lsn)
        );
        self.send(&call, self.bridge.commitRoots(attestations, signatures))
            .await
    }

    /// Submits one threshold-approved withdrawal and waits until it is mined.
    pub async fn withdraw(&self, ready: &ReadyWithdrawal) -> Result<Mined, ChainError> {
        let w = &ready.withdrawal;
        let approval = Bridge::WithdrawalApproval {
            id: U256::from(w.id),
            recipient: w.recipient,
            amount: w.amount,
            commitLsn: w.commit_lsn.as_u64(),
        };
        let call = format!("Bridge.withdraw(id {})", w.id);
        self.send(
            &call,
            self.bridge
                .withdraw(approval, signature_bytes(&ready.signatures)),
        )
        .await
    }

    /// Submits a withdrawal proven by the row's SMT proof against the root of `commit_lsn`.
    pub async fn withdraw_with_proof(
        &self,
        commit_lsn: Lsn,
        values: [&str; 3],
        nodes: Vec<Bytes>,
    ) -> Result<Mined, ChainError> {
        let call = format!(
            "Bridge.withdrawWithProof(id {}, at {commit_lsn})",
            values[0]
        );
        self.send(
            &call,
            self.bridge.withdrawWithProof(
                commit_lsn.as_u64(),
                values[0].to_owned(),
                values[1].to_owned(),
                values[2].to_owned(),
                nodes,
            ),
        )
        .await
    }

    async fn send<C: alloy::sol_types::SolCall>(
        &self,
        call: &str,
        builder: alloy::contract::CallBuilder<&DynProvider, std::marker::PhantomData<C>>,
    ) -> Result<Mined, ChainError> {
        let pending = builder
            .send()
            .await
            .map_err(|err| decode(call, &self.rpc, err))?;
        let tx = *pending.tx_hash();
        let receipt = pending
            .with_timeout(Some(RECEIPT_TIMEOUT))
            .get_receipt()
            .await
            .map_err(|err| ChainError::Rpc {
                call: format!("{call}: waiting for transaction {tx}"),
                rpc: self.rpc.clone(),
                reason: err.to_string(),
            })?;
        if !receipt.status() {
            return Err(ChainError::Failed {
                call: call.to_owned(),
                tx,
                block: receipt.block_number,
            });
        }
        Ok(Mined {
            tx,
            block: receipt.block_number,
            gas_used: receipt.gas_used,
        })
    }
}

fn signature_bytes(signatures: &[(Address, alloy::primitives::Signature)]) -> Vec<Bytes> {
    signatures
        .iter()
        .map(|(_, signature)| Bytes::from(signature.as_bytes().to_vec()))
        .collect()
}
