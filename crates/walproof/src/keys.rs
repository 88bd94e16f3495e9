//! `walproof keys`: validator keys and their registration in the `KeyRegistry` contract.
//!
//! ```text
//! keys generate --out FILE                  a new key file (mode 0600); prints the address
//! keys address [--key-file FILE]            the address of a key (or WALPROOF_VALIDATOR_KEY)
//! keys attest --provider dev …              registration evidence signed by a dev attester
//! keys attest --provider confidential-space a launcher token for a fresh in-memory key
//! keys register --evidence FILE …           KeyRegistry.register(key, verifier, evidence)
//! keys status --registry ADDR --key ADDR    isActive and keyInfo
//! ```
//!
//! The attestation work is `walproof-trust`'s; this module wires flags, files and the chain.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::network::TransactionBuilder as _;
use alloy::primitives::{Address, B256};
use alloy::providers::{Provider as _, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use walproof_relayer::chain::sending_provider;
use walproof_trust::confidential_space::{ConfidentialSpace, Launcher, TokenSigningKey};
use walproof_trust::dev::{DEFAULT_VALID_FOR, DevAttester, default_measurement};
use walproof_trust::registry::{KeyRegistry, describe_revert, token_ahead_of_chain};
use walproof_trust::{
    AttestationSigner, Evidence, EvidenceDetails, FileKey, KeyAttestor as _, Registration,
    WorkloadKey, generate_key_file,
};

use crate::config::FileConfig;
use crate::validate::KEY_VARIABLE;

/// `walproof keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// The `walproof keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a secp256k1 key into a new file and print its address.
    ///
    /// The file holds 64 hex digits, is readable by its owner only (mode 0600) and is never
    /// overwritten: an existing file is an error. The key itself is never printed.
    Generate {
        /// The new key file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },

    /// Print the address of a key file (or of WALPROOF_VALIDATOR_KEY), as `walproof validate`
    /// reads it.
    Address {
        /// The key file; else [validator] key_file of --config, else WALPROOF_VALIDATOR_KEY.
        #[arg(long, env = "WALPROOF_VALIDATOR_KEY_FILE", value_name = "FILE")]
        key_file: Option<PathBuf>,
    },

    /// Produce the evidence that lets a key be registered, as a JSON file for `keys register`.
    ///
    /// The evidence binds the key to one registry on one chain and is checked by one verifier
    /// contract, named here.
    ///
    /// --provider dev: the attester key (--attester-key-file) signs the EIP-712
    /// KeyAttestation{key, registry, measurement, expiresAt} for DevAttestationVerifier
    /// (--verifier), which must have been deployed with the attester's address. For
    /// development and test chains only: it proves nothing about where the key lives.
    ///
    /// --provider confidential-space: only meaningful inside a Confidential Space VM. The key
    /// must be generated inside the workload and never leave it, so it cannot come from a
    /// file: this command generates a fresh key in memory, asks the launcher
    /// (--launcher-socket) for a token whose nonce is the key's binding, checks the token's
    /// claims as ConfidentialSpaceVerifier will (and its signature with --jwks), and writes
    /// the evidence. The key dies when this command exits, so that evidence registers a key
    /// no one can sign with: use it to check that the launcher, the audience and the image
    /// produce evidence the verifier accepts. Signing with a Confidential Space key means
    /// generating and attesting it in the signing process itself, at its start: `walproof
    /// validate --key-provider confidential-space` does.
    Attest(Box<AttestArgs>),

    /// Register a key: send KeyRegistry.register(key, verifier, evidence) from an account.
    ///
    /// Reads the evidence file of `keys attest`, simulates the call first (a revert is
    /// reported as the contract's error with its values, e.g. AlreadyRegistered(key) or
    /// NotTheAttester(signer, attester), and costs nothing), then sends it, waits for the
    /// receipt and checks that the key is active.
    Register(RegisterArgs),

    /// Show what a registry knows of a key: isActive, and keyInfo (verifier, measurement,
    /// registration time, revoked).
    Status(StatusArgs),

    /// Revoke a key, for good: send KeyRegistry.revoke(key) from the registry's owner or from
    /// the key itself (--from-key-file). A revoked key's signatures stop counting at once and
    /// it can never be registered again; rotate by registering the new key first.
    Revoke(RevokeArgs),
}

/// Which attestation provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderArg {
    /// A development attester key signs (DevAttestationVerifier).
    Dev,
    /// A GCP Confidential Space launcher token (ConfidentialSpaceVerifier).
    ConfidentialSpace,
}

/// `walproof keys attest`.
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// Who vouches for the key.
    #[arg(long, value_enum)]
    pub provider: ProviderArg,
    /// The KeyRegistry contract the key is for.
    #[arg(long, env = "WALPROOF_KEY_REGISTRY", value_name = "0x…")]
    pub registry: Address,
    /// The attestation verifier contract the registry will ask (for dev: the EIP-712
    /// verifyingContract of the attester's signature).
    #[arg(long, value_name = "0x…")]
    pub verifier: Address,
    /// The chain id of the registry's chain.
    #[arg(long, env = "WALPROOF_CHAIN_ID")]
    pub chain_id: u64,
    /// Where to write the evidence (JSON).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// dev: the file of the key to attest (or give its address with --key) [default: the key
    /// in WALPROOF_VALIDATOR_KEY]
    #[arg(long, value_name = "FILE", conflicts_with = "key")]
    pub key_file: Option<PathBuf>,
    /// dev: the address of the key to attest (the attester needs no access to the key).
    #[arg(long, value_name = "0x…")]
    pub key: Option<Address>,
    /// dev: the attester's key file (the verifier's `attester`).
    #[arg(long, value_name = "FILE", required_if_eq("provider", "dev"))]
    pub attester_key_file: Option<PathBuf>,
    /// dev: the measurement to attest, 32 bytes as hex [default:
    /// keccak256("walproof/dev-measurement/v1")]
    #[arg(long, value_name = "HEX")]
    pub measurement: Option<B256>,
    /// dev: seconds the attestation stays valid (expiresAt = now + this) [default: 3600]
    #[arg(long, value_name = "S")]
    pub valid_for_secs: Option<u64>,

    /// confidential-space: the token audience ConfidentialSpaceVerifier was deployed with.
    #[arg(long, required_if_eq("provider", "confidential-space"))]
    pub audience: Option<String>,
    /// confidential-space: the launcher's socket.
    #[arg(
        long,
        value_name = "PATH",
        default_value = walproof_trust::confidential_space::DEFAULT_LAUNCHER_SOCKET
    )]
    pub launcher_socket: PathBuf,
    /// confidential-space: Google's token signing keys as a JWK set, to check the token's
    /// signature here too (else only the contract checks it).
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// confidential-space: refuse tokens of other images than this digest (sha256:<64 hex>);
    /// repeat for several.
    #[arg(long = "allow-image", value_name = "DIGEST")]
    pub allow_images: Vec<String>,
}

/// The chain to talk to.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// The chain's JSON-RPC URL.
    #[arg(long, env = "WALPROOF_ETH_RPC_URL", value_name = "URL")]
    pub rpc_url: String,
    /// The KeyRegistry contract (`register`: default from the evidence file).
    #[arg(long, env = "WALPROOF_KEY_REGISTRY", value_name = "0x…")]
    pub registry: Option<Address>,
}

/// `walproof keys register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The chain and the registry.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The verifier to name in the call [default: the evidence file's]
    #[arg(long, value_name = "0x…")]
    pub verifier: Option<Address>,
    /// The evidence file written by `keys attest`.
    #[arg(long, value_name = "FILE")]
    pub evidence: PathBuf,
    /// The key file of the account that sends (and pays for) the transaction; anyone may
    /// register a key, the evidence binds it.
    #[arg(long, env = "WALPROOF_ETH_FROM_KEY_FILE", value_name = "FILE")]
    pub from_key_file: PathBuf,
}

/// `walproof keys status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The chain and the registry.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The key's address.
    #[arg(long, value_name = "0x…")]
    pub key: Address,
}

/// `walproof keys revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The chain and the registry.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The key's address.
    #[arg(long, value_name = "0x…")]
    pub key: Address,
    /// The account that sends the transaction: the registry's owner, or the key itself
    #[arg(long, env = "WALPROOF_ETH_FROM_KEY_FILE", value_name = "FILE")]
    pub from_key_file: PathBuf,
}

/// Runs a `keys` subcommand; returns what to print.
pub async fn run(args: KeysArgs, file: &FileConfig) -> anyhow::Result<String> {
    match args.command {
        KeysCommand::Generate { out } => {
            let address = generate_key_file(&out)?;
            tracing::info!(file = %out.display(), %address, "wrote a new key (mode 0600; the key is never printed)");
            Ok(format!("{address}\n"))
        }
        KeysCommand::Address { key_file } => {
            let key = load_key(key_file.or(file.validator.key_file.clone()))?;
            Ok(format!("{}\n", key.address()))
        }
        KeysCommand::Attest(args) => attest(*args).await,
        KeysCommand::Register(args) => register(args).await,
        KeysCommand::Status(args) => status(args).await,
        KeysCommand::Revoke(args) => revoke(args).await,
    }
}

/// The key of `path`, else of WALPROOF_VALIDATOR_KEY.
fn load_key(path: Option<PathBuf>) -> anyhow::Result<FileKey> {
    Ok(match path {
        Some(path) => FileKey::from_file(&path)?,
        None => FileKey::from_env(KEY_VARIABLE).context(
            "no key: give --key-file, WALPROOF_VALIDATOR_KEY_FILE, [validator] key_file or WALPROOF_VALIDATOR_KEY",
        )?,
    })
}

async fn attest(args: AttestArgs) -> anyhow::Result<String> {
    let registration = Registration {
        chain_id: args.chain_id,
        registry: args.registry,
        verifier: args.verifier,
    };
    match args.provider {
        ProviderArg::Dev => {
            for (flag, given) in [
                ("--audience", args.audience.is_some()),
                ("--jwks", args.jwks.is_some()),
                ("--allow-image", !args.allow_images.is_empty()),
            ] {
                if given {
                    bail!("{flag} is for --provider confidential-space, not dev");
                }
            }
            let attester_file = args
                .attester_key_file
                .context("--provider dev needs --attester-key-file")?;
            let attester = DevAttester::new(FileKey::from_file(&attester_file)?)
                .with_measurement(args.measurement.unwrap_or_else(default_measurement))
                .valid_for(
                    args.valid_for_secs
                        .map_or(DEFAULT_VALID_FOR, Duration::from_secs),
                );
            let key = match args.key {
                Some(key) => key,
                None => load_key(args.key_file)?.address(),
            };
            let evidence = attester.attest_address(key, &registration)?;
            write_evidence(&args.out, &evidence)?;
            let EvidenceDetails::Dev { expires_at } = evidence.details else {
                bail!("the dev attester produced {:?}", evidence.details);
            };
            Ok(format!(
                "dev attestation of key {key} for {registration}\n\
                 \x20 attester     {attester}\n\
                 \x20 measurement  {measurement}\n\
                 \x20 expires at   {expires_at} ({utc})\n\
                 \x20 evidence     {out} ({len} bytes: abi.encode(measurement, expiresAt, signature))\n\
                 register it with: walproof keys register --rpc-url URL --evidence {out} --from-key-file FILE\n",
                key = evidence.key,
                attester = attester.attester(),
                measurement = evidence.measurement,
                utc = utc(expires_at),
                out = args.out.display(),
                len = evidence.bytes.len(),
            ))
        }
        ProviderArg::ConfidentialSpace => {
            for (flag, given) in [
                ("--key-file", args.key_file.is_some()),
                ("--key", args.key.is_some()),
                ("--attester-key-file", args.attester_key_file.is_some()),
                ("--measurement", args.measurement.is_some()),
                ("--valid-for-secs", args.valid_for_secs.is_some()),
            ] {
                if given {
                    bail!(
                        "{flag} is for --provider dev: a Confidential Space key is generated inside the workload, and the token says what runs and until when"
                    );
                }
            }
            let audience = args
                .audience
                .context("--provider confidential-space needs --audience")?;
            let mut provider =
                ConfidentialSpace::new(Launcher::new(&args.launcher_socket), audience)
                    .allow_images(args.allow_images);
            if let Some(path) = &args.jwks {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--jwks {}", path.display()))?;
                let keys = TokenSigningKey::from_jwks(&text)
                    .with_context(|| format!("--jwks {}", path.display()))?;
                provider = provider.pin_signing_keys(keys);
            }
            let key = WorkloadKey::generate()?;
            let evidence = provider.attest(&key, &registration).await?;
            write_evidence(&args.out, &evidence)?;
            let EvidenceDetails::ConfidentialSpace(token) = &evidence.details else {
                bail!(
                    "the Confidential Space provider produced {:?}",
                    evidence.details
                );
            };
            Ok(format!(
                "confidential-space attestation of a new in-memory key {key} for {registration}\n\
                 \x20 launcher     {socket}\n\
                 \x20 token        kid {kid}, aud {aud}, hwmodel {hwmodel}, expires {exp} ({utc}){signature}\n\
                 \x20 image        {image}\n\
                 \x20 measurement  {measurement} (keccak256 of the image digest)\n\
                 \x20 evidence     {out} ({len} bytes: abi.encode(header, payload, signature))\n\
                 NOTE: the key existed only in this process and is gone now that it exits: this evidence\n\
                 registers a key no one can sign with. It shows that this launcher, audience and image\n\
                 produce evidence the verifier accepts. Signing with a Confidential Space key means generating\n\
                 and attesting it in the signing process itself (`walproof validate --key-provider confidential-space`).\n",
                key = evidence.key,
                socket = args.launcher_socket.display(),
                kid = token.kid,
                aud = token.aud,
                hwmodel = token.hwmodel.as_deref().unwrap_or("?"),
                exp = token.exp,
                utc = utc(token.exp),
                signature = if args.jwks.is_some() {
                    ", signature checked against --jwks"
                } else {
                    ", signature left to the contract (no --jwks)"
                },
                image = token.image_digest,
                measurement = evidence.measurement,
                out = args.out.display(),
                len = evidence.bytes.len(),
            ))
        }
    }
}

/// Writes the evidence file whole or not at all (a temporary file renamed into place), so a
/// reader polling for it never reads half of it.
pub fn write_evidence(path: &Path, evidence: &Evidence) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(&evidence.to_json())?;
    text.push('\n');
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("writing the evidence to {}", path.display()))
}

async fn register(args: RegisterArgs) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(&args.evidence)
        .with_context(|| format!("--evidence {}", args.evidence.display()))?;
    let evidence = Evidence::from_json(&text)
        .with_context(|| format!("--evidence {}", args.evidence.display()))?;
    let registry = args
        .chain
        .registry
        .unwrap_or(evidence.registration.registry);
    let verifier = args.verifier.unwrap_or(evidence.registration.verifier);
    let sender = FileKey::from_file(&args.from_key_file)?;
    submit_registration(&args.chain.rpc_url, &evidence, registry, verifier, sender).await
}

/// Sends `KeyRegistry.register(evidence.key, verifier, evidence)` to `registry` from `sender`
/// (simulated first, so a revert is named with its values) and checks the key is active.
/// Returns what to print.
pub async fn submit_registration(
    rpc: &str,
    evidence: &Evidence,
    registry: Address,
    verifier: Address,
    sender: FileKey,
) -> anyhow::Result<String> {
    let from = sender.address();
    let provider = sending_provider(rpc_url(rpc)?, sender.into_local_signer());
    let chain_id = provider
        .get_chain_id()
        .await
        .with_context(|| format!("asking {rpc} for its chain id"))?;
    require_contract(&provider, registry, chain_id).await?;

    // Where the evidence was made for something else, the contract's error will say only
    // that a check failed: say what differs.
    let made_for = &evidence.registration;
    let mut differs = Vec::new();
    if made_for.chain_id != chain_id {
        differs.push(format!(
            "chain {} (this chain is {chain_id})",
            made_for.chain_id
        ));
    }
    if made_for.registry != registry {
        differs.push(format!("registry {} (not {registry})", made_for.registry));
    }
    if made_for.verifier != verifier {
        differs.push(format!("verifier {} (not {verifier})", made_for.verifier));
    }
    let note = if differs.is_empty() {
        String::new()
    } else {
        format!("; note: the evidence was made for {}", differs.join(", "))
    };

    let call = KeyRegistry::registerCall {
        key: evidence.key,
        verifier,
        evidence: evidence.bytes.clone(),
    };
    let request = TransactionRequest::default()
        .with_from(from)
        .with_to(registry)
        .with_input(call.abi_encode());
    let what = format!("KeyRegistry.register of key {} at {registry}", evidence.key);
    let receipt = simulate_and_send(&provider, request, &what, &note).await?;
    let hash = receipt.transaction_hash;
    let (active, info) = read_status(&provider, registry, evidence.key).await?;
    if !active {
        bail!("{what}: transaction {hash} succeeded but the key is not active");
    }
    Ok(format!(
        "registered key {key} at registry {registry} on chain {chain_id}\n\
         \x20 verifier     {verifier}\n\
         \x20 measurement  {measurement}\n\
         \x20 transaction  {hash} (block {block}, gas {gas}, from {from})\n\
         \x20 active       true\n",
        key = evidence.key,
        verifier = info.verifier,
        measurement = info.measurement,
        block = receipt.block_number.unwrap_or_default(),
        gas = receipt.gas_used,
    ))
}

async fn status(args: StatusArgs) -> anyhow::Result<String> {
    let registry = args
        .chain
        .registry
        .context("no registry: give --registry or WALPROOF_KEY_REGISTRY")?;
    let provider = ProviderBuilder::new().connect_http(rpc_url(&args.chain.rpc_url)?);
    let chain_id = provider
        .get_chain_id()
        .await
        .with_context(|| format!("asking {} for its chain id", args.chain.rpc_url))?;
    require_contract(&provider, registry, chain_id).await?;
    let (active, info) = read_status(&provider, registry, args.key).await?;
    let mut out = format!(
        "key           {key}\n\
         registry      {registry} on chain {chain_id}\n\
         active        {active}\n",
        key = args.key,
    );
    if info.registeredAt == 0 {
        out.push_str("registered    no\n");
    } else {
        out.push_str(&format!(
            "verifier      {}\n\
             measurement   {}\n\
             registered at {} ({})\n\
             revoked       {}\n",
            info.verifier,
            info.measurement,
            info.registeredAt,
            utc(info.registeredAt),
            info.revoked
        ));
    }
    Ok(out)
}

async fn revoke(args: RevokeArgs) -> anyhow::Result<String> {
    let registry = args
        .chain
        .registry
        .context("no registry: give --registry or WALPROOF_KEY_REGISTRY")?;
    let sender = FileKey::from_file(&args.from_key_file)?;
    let from = sender.address();
    let provider = sending_provider(rpc_url(&args.chain.rpc_url)?, sender.into_local_signer());
    let chain_id = provider
        .get_chain_id()
        .await
        .with_context(|| format!("asking {} for its chain id", args.chain.rpc_url))?;
    require_contract(&provider, registry, chain_id).await?;
    let request = TransactionRequest::default()
        .with_from(from)
        .with_to(registry)
        .with_input(KeyRegistry::revokeCall { key: args.key }.abi_encode());
    let what = format!("KeyRegistry.revoke of key {} at {registry}", args.key);
    let receipt = simulate_and_send(&provider, request, &what, "").await?;
    let hash = receipt.transaction_hash;
    let (active, _) = read_status(&provider, registry, args.key).await?;
    if active {
        bail!("{what}: transaction {hash} succeeded but the key is still active");
    }
    Ok(format!(
        "revoked key {key} at registry {registry} on chain {chain_id}\n\
         \x20 transaction  {hash} (block {block}, gas {gas}, from {from})\n\
         \x20 active       false (for good)\n",
        key = args.key,
        block = receipt.block_number.unwrap_or_default(),
        gas = receipt.gas_used,
    ))
}

/// Simulates `request` (a revert costs nothing and comes back with its data, named by
/// [`describe_revert`]), sends it, and waits until it is mined successfully.
async fn simulate_and_send(
    provider: &impl alloy::providers::Provider,
    request: TransactionRequest,
    what: &str,
    note: &str,
) -> anyhow::Result<alloy::rpc::types::TransactionReceipt> {
    simulate(provider, &request, what)
        .await
        .map_err(|err| revert_error(what, err, note))?;
    let pending = provider
        .send_transaction(request)
        .await
        .map_err(|err| revert_error(what, err, note))?;
    let hash = *pending.tx_hash();
    let receipt = pending
        .with_timeout(Some(Duration::from_secs(120)))
        .get_receipt()
        .await
        .with_context(|| format!("waiting for the receipt of {hash}"))?;
    if !receipt.status() {
        bail!(
            "{what}: transaction {hash} reverted in block {} (the simulation passed: the chain changed in between; run `walproof keys status`){note}",
            receipt.block_number.unwrap_or_default()
        );
    }
    Ok(receipt)
}

/// Most a registration waits for the chain's clock to reach a token's `iat` and `nbf`.
const CHAIN_CLOCK_WAIT: Duration = Duration::from_secs(60);

/// Simulates `request` (`eth_call`). While it reverts because a token is ahead of the chain's
/// clock (issued a moment ago, on a chain whose block time lags), waits for the chain, for at
/// most [`CHAIN_CLOCK_WAIT`]; any other outcome is the simulation's.
async fn simulate(
    provider: &impl alloy::providers::Provider,
    request: &TransactionRequest,
    what: &str,
) -> Result<(), alloy::transports::TransportError> {
    let deadline = std::time::Instant::now() + CHAIN_CLOCK_WAIT;
    loop {
        let Err(err) = provider.call(request.clone()).await else {
            return Ok(());
        };
        let ahead = err
            .as_error_resp()
            .and_then(|payload| payload.as_revert_data())
            .and_then(|data| token_ahead_of_chain(&data));
        let Some(ahead) = ahead.filter(|_| std::time::Instant::now() < deadline) else {
            return Err(err);
        };
        tracing::info!(
            ahead_s = ahead,
            "{what}: the token is {ahead} s ahead of the chain's block time; waiting for the chain"
        );
        tokio::time::sleep(Duration::from_secs(ahead.clamp(1, 15))).await;
    }
}

/// `isActive(key)` and `keyInfo(key)`.
async fn read_status(
    provider: &impl alloy::providers::Provider,
    registry: Address,
    key: Address,
) -> anyhow::Result<(bool, KeyRegistry::keyInfoReturn)> {
    let view = |input: Vec<u8>| {
        TransactionRequest::default()
            .with_to(registry)
            .with_input(input)
    };
    let active = provider
        .call(view(KeyRegistry::isActiveCall { key }.abi_encode()))
        .await
        .map_err(|err| revert_error("KeyRegistry.isActive", err, ""))?;
    let active = KeyRegistry::isActiveCall::abi_decode_returns(&active).with_context(|| {
        format!(
            "{registry} answered isActive with something else than a bool: is it a KeyRegistry?"
        )
    })?;
    let info = provider
        .call(view(KeyRegistry::keyInfoCall { key }.abi_encode()))
        .await
        .map_err(|err| revert_error("KeyRegistry.keyInfo", err, ""))?;
    let info = KeyRegistry::keyInfoCall::abi_decode_returns(&info).with_context(|| {
        format!("{registry} answered keyInfo with something else: is it a KeyRegistry?")
    })?;
    Ok((active, info))
}

/// Fails, naming the chain, unless `address` holds code.
async fn require_contract(
    provider: &impl alloy::providers::Provider,
    address: Address,
    chain_id: u64,
) -> anyhow::Result<()> {
    let code = provider
        .get_code_at(address)
        .await
        .with_context(|| format!("reading the code at {address}"))?;
    if code.is_empty() {
        bail!("no contract at registry {address} on chain {chain_id}");
    }
    Ok(())
}

fn rpc_url(text: &str) -> anyhow::Result<alloy::transports::http::reqwest::Url> {
    text.parse()
        .with_context(|| format!("--rpc-url {text:?} is not a URL"))
}

/// An RPC error as the contract's revert when it is one, else as the transport's error.
fn revert_error(what: &str, err: alloy::transports::TransportError, note: &str) -> anyhow::Error {
    match err
        .as_error_resp()
        .and_then(|payload| payload.as_revert_data())
    {
        Some(data) => anyhow::anyhow!("{what} reverted: {}{note}", describe_revert(&data)),
        None => anyhow::anyhow!("{what} failed: {err}{note}"),
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX);
    let (year, month, day) = walproof_core::pg_text::civil_from_days(days);
    let rest = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_unix_seconds() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_900_000_000), "2030-03-17 17:46:40 UTC");
    }
}
