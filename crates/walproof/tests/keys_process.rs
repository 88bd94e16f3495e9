//! `walproof keys` as an operator runs it, against the local stack's anvil: keys generated,
//! attested by a development attester, registered in a freshly deployed KeyRegistry and
//! shown active; a second registration and evidence made for another registry are refused
//! with the contract's error by name.
//!
//! Each test deploys its own KeyRegistry and DevAttestationVerifier and uses accounts of its
//! own (new keys funded with `anvil_setBalance`), so tests running side by side, here or in
//! other crates, never share a contract or race for an account's nonce.
//!
//! One test runs an anvil of its own whose clock lags the wall clock's, which the shared
//! anvil must not: a registration there waits for the chain to reach the token's issue time.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Output;

use alloy::network::{EthereumWallet, TransactionBuilder as _};
use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::{SolCall, SolValue};
use walproof_testkit::Stack;
use walproof_trust::FileKey;
use walproof_trust::registry::KeyRegistry;

mod common;
use common::walproof;

const CONTRACTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts");
const DEV_VERIFIER: &str = "src/verifiers/DevAttestationVerifier.sol";
const CS_VERIFIER: &str = "src/verifiers/ConfidentialSpaceVerifier.sol";
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../contracts/test/fixtures/confidential_space"
);

/// A directory of the test's own, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("walproof-keys-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `walproof keys <args>`; returns its output, whatever the exit status.
fn keys(env: &[(&str, String)], args: &[&str]) -> Output {
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    walproof(env, &all).output().unwrap()
}

/// Runs `walproof keys <args>`, which must succeed; returns its standard output.
fn keys_ok(env: &[(&str, String)], args: &[&str]) -> String {
    let output = keys(env, args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "walproof keys {args:?} failed:\n{stderr}\n{stdout}"
    );
    stdout.into_owned()
}

/// Runs `walproof keys <args>`, which must fail; returns its standard error.
fn keys_err(env: &[(&str, String)], args: &[&str]) -> String {
    let output = keys(env, args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "walproof keys {args:?} succeeded:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

/// The creation bytecode of contract `name`: from the artifact `contracts/artifacts/<name>.json`
/// (the one the relayer's bindings come from) when it is exported, else built with forge from
/// `contracts/<source>` into `dir` (only that file and its imports, so work in progress
/// elsewhere in `contracts/` does not stop the test).
fn bytecode(name: &str, source: &str, dir: &Path) -> Vec<u8> {
    let artifact = Path::new(CONTRACTS).join(format!("artifacts/{name}.json"));
    let json = if artifact.exists() {
        std::fs::read_to_string(&artifact).unwrap()
    } else {
        let out = dir.join(format!("forge-{name}"));
        let status = std::process::Command::new(forge())
            .current_dir(CONTRACTS)
            .args(["build", "--out"])
            .arg(&out)
            .arg("--cache-path")
            .arg(out.join("cache"))
            .arg(source)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "forge build {source} failed");
        std::fs::read_to_string(out.join(format!("{name}.sol/{name}.json"))).unwrap()
    };
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let hex_text = value["bytecode"]["object"]
        .as_str()
        .unwrap_or_else(|| panic!("no bytecode.object in the artifact of {name}"));
    hex::decode(hex_text.trim_start_matches("0x")).unwrap()
}

/// The stack's forge: WALPROOF_FORGE_BIN, else the stack's env file, else `forge`.
fn forge() -> String {
    stack_tool("WALPROOF_FORGE_BIN", "forge")
}

/// A tool the stack installed: `variable` from the environment, else the stack's env file,
/// else `name` on PATH.
fn stack_tool(variable: &str, name: &str) -> String {
    let env_file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.stack/env");
    let prefix = format!("{variable}=");
    std::env::var(variable)
        .ok()
        .or_else(|| {
            std::fs::read_to_string(std::env::var("WALPROOF_STACK_ENV").unwrap_or(env_file.into()))
                .ok()?
                .lines()
                .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
        })
        .unwrap_or_else(|| name.into())
}

/// An anvil of the test's own whose block time runs `lag` seconds behind the wall clock, as a
/// real chain's lags by up to a block interval; killed when dropped.
struct LaggingAnvil {
    child: std::process::Child,
    rpc_url: String,
}

impl LaggingAnvil {
    async fn start(lag: u64) -> LaggingAnvil {
        walproof_testkit::ensure_crypto_provider();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let child = std::process::Command::new(stack_tool("WALPROOF_ANVIL_BIN", "anvil"))
            .args(["--port", &port.to_string(), "--silent", "--timestamp"])
            .arg((now - lag).to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let anvil = LaggingAnvil {
            child,
            rpc_url: format!("http://127.0.0.1:{port}"),
        };
        let provider = ProviderBuilder::new().connect_http(anvil.rpc_url.parse().unwrap());
        for _ in 0..100 {
            if provider.get_chain_id().await.is_ok() {
                return anvil;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("anvil on port {port} did not answer within 10 s");
    }
}

impl Drop for LaggingAnvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The chain, an owner account of the test's own, and helpers to deploy and call.
struct Chain {
    rpc_url: String,
    chain_id: u64,
    dir: TempDir,
    env: Vec<(&'static str, String)>,
}

impl Chain {
    async fn new(test: &str) -> Chain {
        let stack = Stack::load().unwrap_or_else(|err| panic!("{err:#}"));
        let address = stack
            .eth_rpc_url
            .trim_start_matches("http://")
            .trim_end_matches('/');
        stack.require_listening("anvil", address).await.unwrap();
        Chain::at(test, stack.eth_rpc_url).await
    }

    /// The chain at `rpc_url`.
    async fn at(test: &str, rpc_url: String) -> Chain {
        let provider = ProviderBuilder::new().connect_http(rpc_url.parse().unwrap());
        let chain_id = provider.get_chain_id().await.unwrap();
        Chain {
            env: vec![("WALPROOF_ETH_RPC_URL", rpc_url.clone())],
            rpc_url,
            chain_id,
            dir: TempDir::new(test),
        }
    }

    /// `walproof keys generate --out <dir>/<name>.key`; checks `keys address` agrees and
    /// returns the file and the address.
    fn generate(&self, name: &str) -> (String, Address) {
        let file = self.dir.path(&format!("{name}.key"));
        let printed = keys_ok(&self.env, &["generate", "--out", &file]);
        let address: Address = printed.trim().parse().unwrap();
        let again = keys_ok(&self.env, &["address", "--key-file", &file]);
        assert_eq!(again.trim().parse::<Address>().unwrap(), address);
        (file, address)
    }

    /// Gives `account` 10 ETH (anvil only): no transaction, so no shared account's nonce.
    async fn fund(&self, account: Address) {
        let provider = ProviderBuilder::new().connect_http(self.rpc_url.parse().unwrap());
        let ten_eth = U256::from(10u64) * U256::from(10u64).pow(U256::from(18u64));
        provider
            .raw_request::<_, serde_json::Value>("anvil_setBalance".into(), (account, ten_eth))
            .await
            .unwrap();
    }

    /// A provider sending from the key in `key_file`.
    fn wallet(&self, key_file: &str) -> impl Provider {
        let key = FileKey::from_file(key_file).unwrap().into_local_signer();
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(key))
            .connect_http(self.rpc_url.parse().unwrap())
    }

    /// Deploys `name` (from `contracts/<source>`) with `args` (ABI-encoded constructor
    /// arguments) from `key_file`.
    async fn deploy(&self, key_file: &str, name: &str, source: &str, args: Vec<u8>) -> Address {
        let code = [bytecode(name, source, &self.dir.0), args].concat();
        let receipt = self
            .wallet(key_file)
            .send_transaction(TransactionRequest::default().with_deploy_code(code))
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "deploying {name} reverted");
        receipt.contract_address.unwrap()
    }

    /// A KeyRegistry owned by `owner`, accepting `verifier` when given.
    async fn registry(&self, owner: (&str, Address), verifier: Option<Address>) -> Address {
        let registry = self
            .deploy(
                owner.0,
                "KeyRegistry",
                "src/KeyRegistry.sol",
                owner.1.abi_encode(),
            )
            .await;
        if let Some(verifier) = verifier {
            let call = KeyRegistry::setVerifierCall {
                verifier,
                accepted: true,
            };
            self.send(owner.0, registry, call.abi_encode()).await;
        }
        registry
    }

    /// Sends `input` to `to` from `key_file` and waits for it to succeed.
    async fn send(&self, key_file: &str, to: Address, input: Vec<u8>) {
        let receipt = self
            .wallet(key_file)
            .send_transaction(TransactionRequest::default().with_to(to).with_input(input))
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "a transaction to {to} reverted");
    }

    /// Calls a view function of `to`; returns the output.
    async fn view(&self, to: Address, input: Vec<u8>) -> alloy::primitives::Bytes {
        let provider = ProviderBuilder::new().connect_http(self.rpc_url.parse().unwrap());
        provider
            .call(TransactionRequest::default().with_to(to).with_input(input))
            .await
            .unwrap()
    }

    /// `isActive(key)` read directly, not through walproof.
    async fn is_active(&self, registry: Address, key: Address) -> bool {
        let provider = ProviderBuilder::new().connect_http(self.rpc_url.parse().unwrap());
        let output = provider
            .call(
                TransactionRequest::default()
                    .with_to(registry)
                    .with_input(KeyRegistry::isActiveCall { key }.abi_encode()),
            )
            .await
            .unwrap();
        KeyRegistry::isActiveCall::abi_decode_returns(&output).unwrap()
    }

    /// `keys attest --provider dev` of `key_file` for `registry` and `verifier`.
    fn attest(
        &self,
        attester_file: &str,
        key_file: &str,
        registry: Address,
        verifier: Address,
        out: &str,
    ) -> String {
        keys_ok(
            &self.env,
            &[
                "attest",
                "--provider",
                "dev",
                "--attester-key-file",
                attester_file,
                "--key-file",
                key_file,
                "--registry",
                &registry.to_string(),
                "--verifier",
                &verifier.to_string(),
                "--chain-id",
                &self.chain_id.to_string(),
                "--out",
                out,
            ],
        )
    }

    fn status(&self, registry: Address, key: Address) -> String {
        keys_ok(
            &self.env,
            &[
                "status",
                "--registry",
                &registry.to_string(),
                "--key",
                &key.to_string(),
            ],
        )
    }
}

#[tokio::test]
async fn dev_attested_key_registers_shows_active_and_a_second_registration_is_refused_by_name() {
    let chain = Chain::new("register").await;
    let (owner_file, owner) = chain.generate("owner");
    let (attester_file, attester) = chain.generate("attester");
    let (validator_file, validator) = chain.generate("validator");
    let (sender_file, sender) = chain.generate("sender");
    chain.fund(owner).await;
    chain.fund(sender).await;

    // A key file is never overwritten.
    let err = keys_err(&chain.env, &["generate", "--out", &validator_file]);
    assert!(
        err.contains(&validator_file) && err.contains("exists"),
        "{err}"
    );
    assert_eq!(
        keys_ok(&chain.env, &["address", "--key-file", &validator_file]).trim(),
        validator.to_string()
    );

    let verifier = chain
        .deploy(
            &owner_file,
            "DevAttestationVerifier",
            DEV_VERIFIER,
            attester.abi_encode(),
        )
        .await;
    let registry = chain.registry((&owner_file, owner), Some(verifier)).await;

    let before = chain.status(registry, validator);
    assert!(before.contains("active        false"), "{before}");
    assert!(before.contains("registered    no"), "{before}");

    let evidence_file = chain.dir.path("evidence.json");
    let attested = chain.attest(
        &attester_file,
        &validator_file,
        registry,
        verifier,
        &evidence_file,
    );
    assert!(
        attested.contains(&format!(
            "dev attestation of key {validator} for registry {registry}"
        )),
        "{attested}"
    );
    assert!(
        attested.contains(&format!("attester     {attester}")),
        "{attested}"
    );
    let evidence: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&evidence_file).unwrap()).unwrap();
    assert_eq!(evidence["version"], 1);
    assert_eq!(evidence["provider"], "dev");
    assert_eq!(evidence["key"], validator.to_string());
    assert_eq!(evidence["registry"], registry.to_string());
    assert_eq!(evidence["verifier"], verifier.to_string());
    assert_eq!(evidence["chain_id"], chain.chain_id);
    assert!(evidence["expires_at"].as_u64().unwrap() > 1_700_000_000);
    assert!(evidence["evidence"].as_str().unwrap().starts_with("0x"));

    // The registry and the verifier come from the evidence file.
    let registered = keys_ok(
        &chain.env,
        &[
            "register",
            "--evidence",
            &evidence_file,
            "--from-key-file",
            &sender_file,
        ],
    );
    assert!(
        registered.contains(&format!(
            "registered key {validator} at registry {registry}"
        )),
        "{registered}"
    );
    assert!(registered.contains("active       true"), "{registered}");
    assert!(
        chain.is_active(registry, validator).await,
        "isActive, read directly"
    );

    let after = chain.status(registry, validator);
    assert!(after.contains("active        true"), "{after}");
    assert!(
        after.contains(&format!("verifier      {verifier}")),
        "{after}"
    );
    assert!(
        after.contains(&format!(
            "measurement   {}",
            evidence["measurement"].as_str().unwrap()
        )),
        "{after}"
    );
    assert!(after.contains("revoked       false"), "{after}");

    let twice = keys_err(
        &chain.env,
        &[
            "register",
            "--registry",
            &registry.to_string(),
            "--verifier",
            &verifier.to_string(),
            "--evidence",
            &evidence_file,
            "--from-key-file",
            &sender_file,
        ],
    );
    assert!(
        twice.contains(&format!(
            "reverted: KeyRegistry.AlreadyRegistered(key: {validator})"
        )),
        "{twice}"
    );

    // Revocation: not by a stranger; by the owner, for good.
    let revoke = |from: &str| {
        vec![
            "revoke".to_owned(),
            "--registry".to_owned(),
            registry.to_string(),
            "--key".to_owned(),
            validator.to_string(),
            "--from-key-file".to_owned(),
            from.to_owned(),
        ]
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let refused = keys_err(&chain.env, &args(&revoke(&sender_file)));
    assert!(
        refused.contains("KeyRegistry.NotAllowedToRevoke"),
        "{refused}"
    );
    assert!(chain.is_active(registry, validator).await);
    let revoked = keys_ok(&chain.env, &args(&revoke(&owner_file)));
    assert!(revoked.contains("active       false"), "{revoked}");
    assert!(!chain.is_active(registry, validator).await);
    assert!(
        chain
            .status(registry, validator)
            .contains("revoked       true")
    );
    let again = keys_err(
        &chain.env,
        &[
            "register",
            "--registry",
            &registry.to_string(),
            "--verifier",
            &verifier.to_string(),
            "--evidence",
            &evidence_file,
            "--from-key-file",
            &sender_file,
        ],
    );
    assert!(again.contains("KeyRegistry.KeyWasRevoked"), "{again}");
}

#[tokio::test]
async fn evidence_for_another_registry_or_through_an_unaccepted_verifier_is_refused_by_name() {
    let chain = Chain::new("refused").await;
    let (owner_file, owner) = chain.generate("owner");
    let (attester_file, attester) = chain.generate("attester");
    let (validator_file, validator) = chain.generate("validator");
    let (sender_file, sender) = chain.generate("sender");
    chain.fund(owner).await;
    chain.fund(sender).await;
    let verifier = chain
        .deploy(
            &owner_file,
            "DevAttestationVerifier",
            DEV_VERIFIER,
            attester.abi_encode(),
        )
        .await;
    let made_for = chain.registry((&owner_file, owner), Some(verifier)).await;
    let other = chain.registry((&owner_file, owner), Some(verifier)).await;
    let unaccepting = chain.registry((&owner_file, owner), None).await;

    let evidence_file = chain.dir.path("evidence.json");
    chain.attest(
        &attester_file,
        &validator_file,
        made_for,
        verifier,
        &evidence_file,
    );

    // The digest the attester signed names `made_for`: at `other` the signature recovers to
    // some other address, and the verifier says so.
    let err = keys_err(
        &chain.env,
        &[
            "register",
            "--registry",
            &other.to_string(),
            "--evidence",
            &evidence_file,
            "--from-key-file",
            &sender_file,
        ],
    );
    assert!(
        err.contains(&format!(
            "KeyRegistry.register of key {validator} at {other} reverted"
        )),
        "{err}"
    );
    assert!(
        err.contains("DevAttestationVerifier.NotTheAttester(signer: 0x"),
        "{err}"
    );
    assert!(err.contains(&format!("attester: {attester})")), "{err}");
    assert!(
        err.contains(&format!(
            "the evidence was made for registry {made_for} (not {other})"
        )),
        "{err}"
    );
    assert!(!chain.is_active(other, validator).await);
    assert!(
        chain
            .status(other, validator)
            .contains("active        false")
    );

    let err = keys_err(
        &chain.env,
        &[
            "register",
            "--registry",
            &unaccepting.to_string(),
            "--evidence",
            &evidence_file,
            "--from-key-file",
            &sender_file,
        ],
    );
    assert!(
        err.contains(&format!(
            "KeyRegistry.VerifierNotAccepted(verifier: {verifier})"
        )),
        "{err}"
    );

    // Where it was made for, it registers.
    keys_ok(
        &chain.env,
        &[
            "register",
            "--evidence",
            &evidence_file,
            "--from-key-file",
            &sender_file,
        ],
    );
    assert!(chain.is_active(made_for, validator).await);
}

#[tokio::test]
async fn status_of_an_address_without_a_registry_says_so() {
    let chain = Chain::new("no-registry").await;
    let nobody = Address::repeat_byte(0x42);
    let err = keys_err(
        &chain.env,
        &[
            "status",
            "--registry",
            &nobody.to_string(),
            "--key",
            &nobody.to_string(),
        ],
    );
    assert!(
        err.contains(&format!(
            "no contract at registry {nobody} on chain {}",
            chain.chain_id
        )),
        "{err}"
    );
}

/// A Confidential Space launcher on a unix socket, as the workload sees it: answers
/// `POST /v1/token` with the recorded token shape, the nonce and audience it was asked for
/// and fresh times, signed with the test RSA key that stands in for Google's.
struct FakeLauncher {
    socket: PathBuf,
    /// The pinned key as a JWK set, for `--jwks`.
    jwks: PathBuf,
    /// The RSA modulus and exponent, for `setSigningKey`.
    modulus: Vec<u8>,
    exponent: Vec<u8>,
    kid: String,
    image_digest: String,
    /// The token's `submods.gce.project_id`, for `allowProject`.
    project_id: String,
}

impl FakeLauncher {
    fn start(dir: &Path) -> FakeLauncher {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let shape: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{FIXTURES}/token_shape.json")).unwrap(),
        )
        .unwrap();
        let pem = std::fs::read_to_string(format!("{FIXTURES}/test_signing_key.pem")).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let key = ring::signature::RsaKeyPair::from_pkcs8(&STANDARD.decode(body).unwrap()).unwrap();
        let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(key.public());
        let kid = shape["header"]["kid"].as_str().unwrap().to_owned();
        let jwks = dir.join("jwks.json");
        let set = serde_json::json!({"keys": [{"kty": "RSA", "alg": "RS256", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e)}]});
        std::fs::write(&jwks, set.to_string()).unwrap();
        let socket = dir.join("teeserver.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let launcher = FakeLauncher {
            socket,
            jwks,
            modulus: public.n,
            exponent: public.e,
            kid,
            image_digest: shape["claims"]["submods"]["container"]["image_digest"]
                .as_str()
                .unwrap()
                .to_owned(),
            project_id: shape["claims"]["submods"]["gce"]["project_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        };
        // A thread of its own: the test thread blocks on the walproof processes it runs.
        std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                let body = loop {
                    let n = stream.read(&mut buffer).unwrap();
                    assert!(n > 0, "the client closed before a whole request");
                    request.extend_from_slice(&buffer[..n]);
                    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .unwrap()
                        .trim()
                        .parse()
                        .unwrap();
                    if request.len() >= end + 4 + length {
                        break request[end + 4..end + 4 + length].to_vec();
                    }
                };
                let asked: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let mut claims = shape["claims"].clone();
                claims["aud"] = asked["audience"].clone();
                claims["eat_nonce"] = asked["nonces"][0].clone();
                claims["iat"] = now.into();
                claims["nbf"] = now.into();
                claims["exp"] = (now + 3600).into();
                let input = format!(
                    "{}.{}",
                    URL_SAFE_NO_PAD.encode(shape["header"].to_string()),
                    URL_SAFE_NO_PAD.encode(claims.to_string())
                );
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &ring::rand::SystemRandom::new(),
                    input.as_bytes(),
                    &mut signature,
                )
                .unwrap();
                let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{token}",
                    token.len()
                );
            }
        });
        launcher
    }
}

/// A Confidential Space set-up on a chain: its owner's key file, the key file of an account
/// that sends registrations, the verifier and the registry.
struct CsRegistry {
    owner_file: String,
    sender_file: String,
    verifier: Address,
    registry: Address,
}

/// A ConfidentialSpaceVerifier (audience "walproof") that pins the fake launcher's key and
/// allows its image and project, and a KeyRegistry that accepts it, both owned by a new
/// account; a new account funded to send registrations.
async fn cs_registry(chain: &Chain, launcher: &FakeLauncher) -> CsRegistry {
    use walproof_trust::registry::ConfidentialSpaceVerifier as Csv;
    let (owner_file, owner) = chain.generate("owner");
    let (sender_file, sender) = chain.generate("sender");
    chain.fund(owner).await;
    chain.fund(sender).await;
    let owner = (owner_file.as_str(), owner);
    let verifier = chain
        .deploy(
            owner.0,
            "ConfidentialSpaceVerifier",
            CS_VERIFIER,
            (owner.1, "walproof").abi_encode_params(),
        )
        .await;
    let registry = chain.registry(owner, Some(verifier)).await;
    let set_key = Csv::setSigningKeyCall {
        kid: launcher.kid.clone(),
        modulus: launcher.modulus.clone().into(),
        exponent: launcher.exponent.clone().into(),
    };
    chain.send(owner.0, verifier, set_key.abi_encode()).await;
    let allow = Csv::allowImageCall {
        digest: launcher.image_digest.clone(),
    };
    chain.send(owner.0, verifier, allow.abi_encode()).await;
    let allow = Csv::allowProjectCall {
        projectId: launcher.project_id.clone(),
    };
    chain.send(owner.0, verifier, allow.abi_encode()).await;
    CsRegistry {
        owner_file,
        sender_file,
        verifier,
        registry,
    }
}

/// `walproof keys attest --provider confidential-space` of a new key through `launcher`, for
/// `registry` and its `verifier`, into `out`; returns what it printed.
fn cs_attest(
    chain: &Chain,
    launcher: &FakeLauncher,
    (verifier, registry): (Address, Address),
    out: &str,
) -> String {
    keys_ok(
        &chain.env,
        &[
            "attest",
            "--provider",
            "confidential-space",
            "--audience",
            "walproof",
            "--launcher-socket",
            launcher.socket.to_str().unwrap(),
            "--jwks",
            launcher.jwks.to_str().unwrap(),
            "--registry",
            &registry.to_string(),
            "--verifier",
            &verifier.to_string(),
            "--chain-id",
            &chain.chain_id.to_string(),
            "--out",
            out,
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_with_a_confidential_space_key_registers_it_and_signs_with_it() {
    use walproof_transport::KafkaSettings;
    use walproof_transport::attestations::read_attestations;
    use walproof_validator::attestation::{Domain, SignedAttestation};

    let chain = Chain::new("cs-validator").await;
    let launcher = FakeLauncher::start(&chain.dir.0);
    let CsRegistry {
        owner_file: _,
        sender_file,
        verifier,
        registry,
    } = cs_registry(&chain, &launcher).await;

    let (stack, _db, topics, sql, mut env) = common::source(
        "cs_validator",
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, 'x' FROM generate_series(1, 10) g;",
    )
    .await;
    env.extend(chain.env.iter().cloned());
    let shadow = walproof_testkit::TestDatabase::create(&stack, "cs_validator_shadow")
        .await
        .unwrap();
    let (host, port, user) = shadow.host_port_user();
    let shadow_url = format!("postgres://{user}@{host}:{port}/{}", shadow.name());
    let mut decoder = common::setup_and_decode(&env);
    let mut committer = walproof(&env, &["commit", "--in-memory", "--proof-addr", "off"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let evidence_file = chain.dir.path("validator-evidence.json");
    let log = chain.dir.path("validator.log");
    let bridge = Address::repeat_byte(0xb1);
    let (chain_id, bridge_text) = (chain.chain_id.to_string(), bridge.to_string());
    let (registry_text, verifier_text) = (registry.to_string(), verifier.to_string());
    let state_dir = chain.dir.path("validator-state");
    let start = |evidence_file: &str, log: &str| {
        walproof(
            &env,
            &[
                "validate",
                "--shadow-url",
                &shadow_url,
                "--http-addr",
                "off",
                "--chain-id",
                &chain_id,
                "--bridge",
                &bridge_text,
                "--key-provider",
                "confidential-space",
                "--tee-audience",
                "walproof",
                "--launcher-socket",
                launcher.socket.to_str().unwrap(),
                "--registry",
                &registry_text,
                "--verifier",
                &verifier_text,
                "--evidence-out",
                evidence_file,
                "--register-from-key-file",
                &sender_file,
                "--state-dir",
                &state_dir,
            ],
        )
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
    };
    let mut validator = start(&evidence_file, &log);

    // The key the validator generated, attested by the launcher, registered by itself.
    let wait = std::time::Duration::from_secs(60);
    walproof_testkit::stack::wait_until("the validator's evidence", wait, || async {
        Ok(std::path::Path::new(&evidence_file).exists())
    })
    .await
    .unwrap();
    let evidence: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&evidence_file).unwrap()).unwrap();
    assert_eq!(evidence["provider"], "confidential-space", "{evidence}");
    let key: Address = evidence["key"].as_str().unwrap().parse().unwrap();
    walproof_testkit::stack::wait_until("the validator's key to be active", wait, || async {
        Ok(chain.is_active(registry, key).await)
    })
    .await
    .unwrap_or_else(|err| panic!("{err}: {}", std::fs::read_to_string(&log).unwrap()));

    // It signs roots with that key, for the bridge's domain: the snapshot's, and a later
    // transaction's.
    let settings = KafkaSettings::new(&stack.kafka_brokers, topics.prefix());
    walproof_testkit::stack::wait_until("the snapshot's root", wait, || async {
        Ok(
            !walproof_transport::roots::read_roots(&settings, std::time::Duration::from_secs(30))
                .await?
                .is_empty(),
        )
    })
    .await
    .unwrap();
    sql.batch_execute("UPDATE t SET v = 'y' WHERE id < 5")
        .await
        .unwrap();
    let domain = Domain::new(chain.chain_id, bridge);
    let deadline = tokio::time::Instant::now() + wait;
    let signed: Vec<SignedAttestation> = loop {
        let signed: Vec<SignedAttestation> =
            read_attestations(&settings, std::time::Duration::from_secs(30))
                .await
                .unwrap()
                .into_iter()
                .map(|(_, _, value)| SignedAttestation::from_json(&value).unwrap())
                .collect();
        if signed.len() >= 2 {
            break signed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} attestations: {}",
            signed.len(),
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    for attestation in &signed {
        assert_eq!(attestation.verify(&domain).unwrap(), key);
    }
    // The key never reached the disk: only the evidence file names it, by address.
    let files: Vec<_> = std::fs::read_dir(&chain.dir.0).unwrap().collect();
    assert!(
        files.iter().all(|f| !f
            .as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("workload")),
        "{files:?}"
    );

    // A transaction the validator applies but cannot sign yet (the committer is down, so its
    // root is not published), then a restart: the new key must sign it, since the first did
    // not, although the shadow already holds it.
    common::sigterm(&mut committer);
    let before = walproof_testkit::database::current_wal_lsn(&sql)
        .await
        .unwrap();
    sql.batch_execute("UPDATE t SET v = 'w' WHERE id = 10")
        .await
        .unwrap();
    let shadow_sql = shadow.connect().await.unwrap();
    walproof_testkit::stack::wait_until(
        "the shadow to hold the unsigned transaction",
        wait,
        || async {
            let rows = shadow_sql
                .query(
                    "SELECT commit_lsn::text FROM walproof_validator.progress",
                    &[],
                )
                .await?;
            Ok(rows
                .first()
                .map(|r| r.get::<_, String>(0).parse::<walproof_core::Lsn>().unwrap())
                .is_some_and(|lsn| lsn > before))
        },
    )
    .await
    .unwrap();
    common::sigterm(&mut validator);
    let mut committer = walproof(&env, &["commit", "--in-memory", "--proof-addr", "off"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // Restarted, it has a new key, registered the same way, and resumes signing after what
    // the first key signed: between them, every root is signed.
    let second_evidence = chain.dir.path("validator-evidence-2.json");
    let mut validator = start(&second_evidence, &chain.dir.path("validator-2.log"));
    walproof_testkit::stack::wait_until("the second evidence", wait, || async {
        Ok(std::path::Path::new(&second_evidence).exists())
    })
    .await
    .unwrap();
    let second: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&second_evidence).unwrap()).unwrap();
    let second_key: Address = second["key"].as_str().unwrap().parse().unwrap();
    assert_ne!(second_key, key, "a new key at each start");
    sql.batch_execute("UPDATE t SET v = 'z' WHERE id > 5")
        .await
        .unwrap();
    let roots = loop {
        let roots =
            walproof_transport::roots::read_roots(&settings, std::time::Duration::from_secs(30))
                .await
                .unwrap();
        if roots.len() >= 4 {
            break roots;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let signed: Vec<(Address, walproof_core::Lsn)> =
            read_attestations(&settings, std::time::Duration::from_secs(30))
                .await
                .unwrap()
                .into_iter()
                .map(|(_, _, value)| {
                    let a = SignedAttestation::from_json(&value).unwrap();
                    (a.verify(&domain).unwrap(), a.commit_lsn)
                })
                .collect();
        let covered = roots
            .iter()
            .all(|r| signed.iter().any(|(_, lsn)| *lsn == r.commit_lsn));
        if covered {
            assert!(signed.iter().all(|(k, _)| *k == key || *k == second_key));
            assert!(signed.iter().any(|(k, _)| *k == second_key));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "roots {roots:?} not all signed: {signed:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(chain.is_active(registry, second_key).await);

    common::sigterm(&mut validator);
    common::sigterm(&mut committer);
    common::sigterm(&mut decoder);
}

#[tokio::test]
async fn confidential_space_evidence_from_the_launcher_registers_through_the_verifier_contract() {
    use walproof_trust::registry::ConfidentialSpaceVerifier as Csv;
    let chain = Chain::new("confidential-space").await;
    let launcher = FakeLauncher::start(&chain.dir.0);

    let CsRegistry {
        owner_file,
        sender_file,
        verifier,
        registry,
    } = cs_registry(&chain, &launcher).await;

    let attest = |out: &str| cs_attest(&chain, &launcher, (verifier, registry), out);
    let evidence_file = chain.dir.path("cs-evidence.json");
    let printed = attest(&evidence_file);
    assert!(
        printed.contains("signature checked against --jwks"),
        "{printed}"
    );
    assert!(
        printed.contains("the key existed only in this process"),
        "{printed}"
    );
    let evidence: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&evidence_file).unwrap()).unwrap();
    assert_eq!(evidence["provider"], "confidential-space");
    assert_eq!(
        evidence["token"]["image_digest"],
        launcher.image_digest.as_str()
    );
    let key: Address = evidence["key"].as_str().unwrap().parse().unwrap();

    // The nonce the workload asked for is the one the contract expects for this key.
    let expected = chain
        .view(
            verifier,
            Csv::expectedNonceCall { registry, key }.abi_encode(),
        )
        .await;
    let expected = Csv::expectedNonceCall::abi_decode_returns(&expected).unwrap();
    assert_eq!(evidence["token"]["eat_nonce"], expected.as_str());

    keys_ok(
        &chain.env,
        &[
            "register",
            "--evidence",
            &evidence_file,
            "--from-key-file",
            &sender_file,
        ],
    );
    assert!(chain.is_active(registry, key).await);
    let status = chain.status(registry, key);
    let measurement = alloy::primitives::keccak256(launcher.image_digest.as_bytes());
    assert!(
        status.contains(&format!("measurement   {measurement}")),
        "{status}"
    );
    assert!(
        status.contains(&format!("verifier      {verifier}")),
        "{status}"
    );

    // Once the owner disallows the image, its tokens register nothing, and the error says why.
    let disallow = Csv::disallowImageCall {
        digest: launcher.image_digest.clone(),
    };
    chain
        .send(&owner_file, verifier, disallow.abi_encode())
        .await;
    let second_file = chain.dir.path("cs-evidence-2.json");
    attest(&second_file);
    let err = keys_err(
        &chain.env,
        &[
            "register",
            "--evidence",
            &second_file,
            "--from-key-file",
            &sender_file,
        ],
    );
    assert!(
        err.contains(&format!(
            "reverted: ConfidentialSpaceVerifier.ImageNotAllowed(digest: {:?})",
            launcher.image_digest
        )),
        "{err}"
    );
}

/// A chain's block time lags the wall clock, so a token issued a moment ago can be ahead of it
/// ("iat" after the block's timestamp). Registration then waits for the chain, and says so,
/// instead of failing with `TokenNotYetValid`.
#[tokio::test]
async fn a_token_ahead_of_the_chains_clock_registers_once_the_chain_has_caught_up() {
    const LAG: u64 = 4;
    let anvil = LaggingAnvil::start(LAG).await;
    let chain = Chain::at("cs-lagging-chain", anvil.rpc_url.clone()).await;
    let launcher = FakeLauncher::start(&chain.dir.0);
    let CsRegistry {
        owner_file: _,
        sender_file,
        verifier,
        registry,
    } = cs_registry(&chain, &launcher).await;
    let evidence_file = chain.dir.path("cs-evidence.json");
    cs_attest(&chain, &launcher, (verifier, registry), &evidence_file);
    let evidence: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&evidence_file).unwrap()).unwrap();
    let key: Address = evidence["key"].as_str().unwrap().parse().unwrap();

    let started = std::time::Instant::now();
    let mut env = chain.env.clone();
    env.push(("RUST_LOG", "info".into()));
    let output = keys(
        &env,
        &[
            "register",
            "--evidence",
            &evidence_file,
            "--from-key-file",
            &sender_file,
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("ahead of the chain's block time; waiting for the chain"),
        "{stderr}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(LAG - 2),
        "registered after {:?}, before the chain's clock could reach the token",
        started.elapsed()
    );
    assert!(chain.is_active(registry, key).await);
}
