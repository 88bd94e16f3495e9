//! The trust path end to end on the local stack, every piece a real process or service: the
//! contracts deployed to anvil (`walproof chain deploy`), two validator keys attested and
//! registered (`walproof keys attest --provider dev`, `keys register`), the decoder, committer,
//! two validators and the relayer running against a source database.
//!
//! It shows: roots signed by both validators accepted on chain (threshold 2) and equal to the
//! committer's; a withdrawal row inserted on the source paid exactly once, also across a
//! relayer restart; a forged and an under-threshold submission rejected with the contract's
//! errors; and a withdrawal proven by the row's SMT proof against a committed root, verified on
//! chain with SHA-256, while a tampered proof is refused.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use walproof_core::{Digest, Lsn};
use walproof_relayer::chain::{Chain, ChainError};
use walproof_relayer::deploy::Deployment;
use walproof_relayer::pool::ReadyRoot;
use walproof_testkit::TestDatabase;
use walproof_testkit::database::current_wal_lsn;
use walproof_testkit::stack::wait_until;
use walproof_transport::KafkaSettings;
use walproof_transport::roots::read_roots;
use walproof_validator::attestation::{
    AttestationSigner, Domain, FileKey, KeyOrigin, SignedAttestation,
};

mod common;
use common::{setup_and_decode, sigterm, source, walproof};

const WAIT: Duration = Duration::from_secs(120);

/// Test keys of the development attester and the two validators (never funded).
const ATTESTER_KEY: &str = "3333333333333333333333333333333333333333333333333333333333333333";
const VALIDATOR_KEYS: [&str; 2] = [
    "4444444444444444444444444444444444444444444444444444444444444444",
    "5555555555555555555555555555555555555555555555555555555555555555",
];
/// A key no registry knows.
const STRANGER_KEY: &str = "6666666666666666666666666666666666666666666666666666666666666666";

const SCHEMA: &str = "
    CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(12,2));
    INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 20) g;
    CREATE TABLE walproof_withdrawals (id bigint PRIMARY KEY,
        recipient text NOT NULL CHECK (recipient ~ '^0x[0-9a-f]{40}$'),
        amount numeric(78,0) NOT NULL CHECK (amount > 0));";

/// A key of this run only (the deployer's, the relayer's), funded with 1000 ETH through
/// `anvil_setBalance`: no shared account, so no nonce races with tests running beside it.
async fn funded_key(rpc: &str, purpose: &str) -> String {
    use alloy::providers::{Provider, ProviderBuilder};
    use sha2::Digest as _;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let seed = format!(
        "walproof bridge e2e {purpose} {} {nanos}",
        std::process::id()
    );
    let text = hex::encode(sha2::Sha256::digest(seed.as_bytes()));
    let provider = ProviderBuilder::new().connect_http(rpc.parse().unwrap());
    let thousand_eth = U256::from(10u64).pow(U256::from(21));
    provider
        .raw_request::<_, serde_json::Value>(
            "anvil_setBalance".into(),
            (key(&text).address(), thousand_eth),
        )
        .await
        .unwrap();
    text
}

fn key(text: &str) -> FileKey {
    FileKey::parse(text, KeyOrigin::Env("TEST".into())).unwrap()
}

fn write_key(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// Runs `walproof <args>` to completion and returns its stdout; fails the test with its stderr.
fn run_ok(env: &[(&str, String)], args: &[&str]) -> String {
    let output = walproof(env, args).output().unwrap();
    assert!(
        output.status.success(),
        "walproof {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The shadow database's URL.
async fn shadow(stack: &walproof_testkit::Stack, test: &str) -> (TestDatabase, String) {
    let db = TestDatabase::create(stack, test).await.unwrap();
    let (host, port, user) = db.host_port_user();
    let url = format!("postgres://{user}@{host}:{port}/{}", db.name());
    (db, url)
}

fn spawn_logged(env: &[(&str, String)], args: &[&str], log: &Path) -> Child {
    walproof(env, args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn relayer(env: &[(&str, String)], dir: &Path, extra: &[&str], log: &str) -> Child {
    let deployment = dir.join("deployment.json");
    let sender = dir.join("relayer.key");
    let mut args = vec![
        "relayer",
        "--deployment",
        deployment.to_str().unwrap(),
        "--sender-key-file",
        sender.to_str().unwrap(),
        "--batch-interval-ms",
        "300",
        "--http-addr",
        "off",
    ];
    args.extend_from_slice(extra);
    spawn_logged(env, &args, &dir.join(log))
}

/// The commit LSN and root of the first transaction committed after `after`, once its root
/// is out.
async fn first_root_after(settings: &KafkaSettings, after: Lsn) -> (Lsn, Digest) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let roots = read_roots(settings, Duration::from_secs(30)).await.unwrap();
        if let Some(root) = roots.into_iter().find(|r| r.commit_lsn > after) {
            return (root.commit_lsn, root.root);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no root after {after} within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_committed_through(chain: &Chain, lsn: Lsn) {
    wait_until(&format!("the bridge to commit {lsn}"), WAIT, || async {
        Ok(chain.state().await?.last_commit_lsn >= lsn)
    })
    .await
    .unwrap();
}

async fn wait_balance(chain: &Chain, account: Address, expected: U256) {
    wait_until(
        &format!("{account} to hold {expected} wei"),
        WAIT,
        || async { Ok(chain.balance(account).await? >= expected) },
    )
    .await
    .unwrap();
    assert_eq!(
        chain.balance(account).await.unwrap(),
        expected,
        "paid exactly once"
    );
}

fn revert_name(result: Result<walproof_relayer::chain::Mined, ChainError>) -> String {
    match result {
        Err(err) => {
            let name = err.revert_name().map(str::to_owned);
            name.unwrap_or_else(|| panic!("expected a decoded revert, got {err}"))
        }
        Ok(mined) => panic!("expected a revert, the transaction was mined: {mined:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_land_on_chain_and_withdrawals_are_paid_once_by_approvals_or_by_proof() {
    let (stack, _db, topics, sql, env) = source("bridge_e2e", SCHEMA).await;
    let settings = KafkaSettings::new(stack.kafka_brokers.clone(), topics.prefix().to_owned());
    let dir = std::env::temp_dir().join(format!("walproof-bridge-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rpc = stack.eth_rpc_url.clone();
    let mut env = env;
    env.push(("WALPROOF_ETH_RPC_URL", rpc.clone()));

    // The contracts, threshold 2, funded with 100 ETH.
    let deployer_key = funded_key(&rpc, "deployer").await;
    let deployer = write_key(&dir, "deployer.key", &deployer_key);
    let attester = key(ATTESTER_KEY).address().to_checksum(None);
    let deployment_path = dir.join("deployment.json");
    run_ok(
        &env,
        &[
            "chain",
            "deploy",
            "--deployer-key-file",
            deployer.to_str().unwrap(),
            "--attester",
            &attester,
            "--threshold",
            "2",
            "--fund-wei",
            "100000000000000000000",
            "--out",
            deployment_path.to_str().unwrap(),
        ],
    );
    let deployment = Deployment::read(&deployment_path).unwrap();
    write_key(&dir, "relayer.key", &funded_key(&rpc, "relayer").await);
    let attester_file = write_key(&dir, "attester.key", ATTESTER_KEY);
    let registry = deployment.registry.to_checksum(None);
    let verifier = deployment.dev_verifier.to_checksum(None);
    let chain_id = deployment.chain_id.to_string();

    // Both validator keys attested by the development attester and registered.
    let mut validator_files = Vec::new();
    for (i, text) in VALIDATOR_KEYS.iter().enumerate() {
        let file = write_key(&dir, &format!("validator-{i}.key"), text);
        let evidence = dir.join(format!("evidence-{i}.json"));
        run_ok(
            &env,
            &[
                "keys",
                "attest",
                "--provider",
                "dev",
                "--registry",
                &registry,
                "--verifier",
                &verifier,
                "--chain-id",
                &chain_id,
                "--key-file",
                file.to_str().unwrap(),
                "--attester-key-file",
                attester_file.to_str().unwrap(),
                "--out",
                evidence.to_str().unwrap(),
            ],
        );
        run_ok(
            &env,
            &[
                "keys",
                "register",
                "--registry",
                &registry,
                "--verifier",
                &verifier,
                "--evidence",
                evidence.to_str().unwrap(),
                "--from-key-file",
                deployer.to_str().unwrap(),
            ],
        );
        validator_files.push(file);
    }

    // The pipeline: decoder, committer, two validators, relayer.
    let mut decoder = setup_and_decode(&env);
    let mut committer = walproof(&env, &["commit", "--in-memory", "--proof-addr", "off"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let bridge = deployment.bridge.to_checksum(None);
    let mut validators = Vec::new();
    let mut shadows = Vec::new();
    let mut endpoints = Vec::new();
    for (i, file) in validator_files.iter().enumerate() {
        let (db, url) = shadow(&stack, &format!("bridge_e2e_shadow_{i}")).await;
        shadows.push(db);
        // A free port for the validator's HTTP endpoint (the relayer polls it below).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let http = format!("127.0.0.1:{port}");
        endpoints.push(format!("http://{http}"));
        let state = std::env::temp_dir().join(format!(
            "walproof-validator-bridge-e2e-{i}-{}",
            std::process::id()
        ));
        let state = state.to_str().unwrap().to_owned();
        validators.push(spawn_logged(
            &env,
            &[
                "validate",
                "--state-dir",
                &state,
                "--shadow-url",
                &url,
                "--key-file",
                file.to_str().unwrap(),
                "--chain-id",
                &chain_id,
                "--bridge",
                &bridge,
                "--http-addr",
                &http,
            ],
            &dir.join(format!("validator-{i}.log")),
        ));
    }
    let mut relay = relayer(&env, &dir, &[], "relayer-1.log");
    let reader = Chain::connect(
        &rpc,
        deployment.bridge,
        PrivateKeySigner::from_bytes(&B256::repeat_byte(0x77)).unwrap(),
    )
    .await
    .unwrap();

    // Traffic, then a withdrawal request.
    for i in 1..=5 {
        sql.batch_execute(&format!(
            "UPDATE accounts SET balance = balance + {i} WHERE id = {i}"
        ))
        .await
        .unwrap();
    }
    // Recipients of this run only: anvil's state outlives the test.
    let first_recipient = key(&funded_key(&rpc, "recipient 1").await).address();
    let second_recipient = key(&funded_key(&rpc, "recipient 2").await).address();
    let (first_start, second_start) = (
        reader.balance(first_recipient).await.unwrap(),
        reader.balance(second_recipient).await.unwrap(),
    );
    let before = current_wal_lsn(&sql).await.unwrap();
    sql.batch_execute(&format!(
        "INSERT INTO walproof_withdrawals VALUES (1, '{first_recipient:#x}', 12345)"
    ))
    .await
    .unwrap();
    let (withdrawal_lsn, withdrawal_root) = first_root_after(&settings, before).await;

    // The root of the withdrawal's transaction lands on chain, as the committer computed it;
    // only both validators' signatures reach the threshold of 2.
    wait_committed_through(&reader, withdrawal_lsn).await;
    assert_eq!(
        reader.root_of(withdrawal_lsn).await.unwrap(),
        Some(B256::from(withdrawal_root.0))
    );
    for root in read_roots(&settings, Duration::from_secs(30))
        .await
        .unwrap()
    {
        if root.commit_lsn <= withdrawal_lsn {
            let held = reader.root_of(root.commit_lsn).await.unwrap();
            assert_eq!(
                held,
                Some(B256::from(root.root.0)),
                "root of {}",
                root.commit_lsn
            );
        }
    }
    // The withdrawal is paid, exactly its amount.
    wait_balance(&reader, first_recipient, first_start + U256::from(12345)).await;
    assert!(reader.paid(1).await.unwrap());

    // A relayer restarted from scratch re-reads every approval and pays nothing twice; this
    // one collects from the validators' HTTP endpoints instead of the topic, and keeps
    // committing roots.
    sigterm(&mut relay);
    let mut relay = relayer(
        &env,
        &dir,
        &[
            "--no-topic",
            "--validator-url",
            &endpoints[0],
            "--validator-url",
            &endpoints[1],
        ],
        "relayer-2.log",
    );
    wait_until(
        "the restarted relayer to see withdrawal 1 paid",
        WAIT,
        || async {
            Ok(std::fs::read_to_string(dir.join("relayer-2.log"))?.contains("already paid"))
        },
    )
    .await
    .unwrap();
    assert_eq!(
        reader.balance(first_recipient).await.unwrap(),
        first_start + U256::from(12345)
    );
    let before = current_wal_lsn(&sql).await.unwrap();
    sql.batch_execute("UPDATE accounts SET balance = 0 WHERE id = 20")
        .await
        .unwrap();
    let (over_http, _) = first_root_after(&settings, before).await;
    wait_committed_through(&reader, over_http).await;
    sigterm(&mut relay);

    // Forged and under-threshold submissions, sent straight to the bridge, are refused.
    let submitter = Chain::connect(
        &rpc,
        deployment.bridge,
        PrivateKeySigner::from_bytes(&deployer_key.parse().unwrap()).unwrap(),
    )
    .await
    .unwrap();
    let domain = Domain::new(deployment.chain_id, deployment.bridge);
    let next = Lsn::new(reader.state().await.unwrap().last_commit_lsn.as_u64() + 1);
    let forged_root = Digest([0xf0; 32]);
    let signed = |signers: &[&FileKey]| {
        let mut signatures: Vec<(Address, alloy::primitives::Signature)> = signers
            .iter()
            .map(|k| {
                let a = SignedAttestation::sign(*k, domain, next, forged_root, Digest([1; 32]))
                    .unwrap();
                (a.validator, a.signature)
            })
            .collect();
        signatures.sort_by_key(|(address, _)| *address);
        vec![ReadyRoot {
            commit_lsn: next,
            root: forged_root,
            ledger_hash: Digest([1; 32]),
            signatures,
        }]
    };
    let (one, two, stranger) = (
        key(VALIDATOR_KEYS[0]),
        key(VALIDATOR_KEYS[1]),
        key(STRANGER_KEY),
    );
    assert_eq!(
        revert_name(submitter.commit_roots(&signed(&[&one])).await),
        "BelowThreshold"
    );
    assert_eq!(
        revert_name(submitter.commit_roots(&signed(&[&one, &stranger])).await),
        "SignerNotActive"
    );
    // A validator's signature over another root recovers to a key no registry knows.
    let mut tampered = signed(&[&one, &two]);
    tampered[0].root = Digest([0xf1; 32]);
    assert!(matches!(
        revert_name(submitter.commit_roots(&tampered).await).as_str(),
        "SignerNotActive" | "SignersNotAscending"
    ));
    assert_eq!(reader.root_of(next).await.unwrap(), None);

    // A withdrawal proven by its row's SMT proof: the relayer submits roots only.
    let mut relay = relayer(&env, &dir, &["--no-withdrawals"], "relayer-3.log");
    let before = current_wal_lsn(&sql).await.unwrap();
    let recipient_text = format!("{second_recipient:#x}");
    sql.batch_execute(&format!(
        "INSERT INTO walproof_withdrawals VALUES (2, '{recipient_text}', 777)"
    ))
    .await
    .unwrap();
    let (proof_lsn, _) = first_root_after(&settings, before).await;
    wait_committed_through(&reader, proof_lsn).await;
    let at = proof_lsn.to_string();
    let proof = run_ok(
        &env,
        &[
            "prove",
            "--table",
            "public.walproof_withdrawals",
            "--key",
            "2",
            "--at",
            &at,
        ],
    );
    let proof: serde_json::Value = serde_json::from_str(&proof).unwrap();
    assert_eq!(proof["present"], true, "{proof}");
    let nodes: Vec<Bytes> = proof["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| Bytes::from(hex::decode(n.as_str().unwrap()).unwrap()))
        .collect();
    let values = ["2", recipient_text.as_str(), "777"];
    // A tampered node, and a row with another amount, are refused.
    let mut bad = nodes.clone();
    let mut last = bad.pop().unwrap().to_vec();
    last[0] ^= 1;
    bad.push(Bytes::from(last));
    assert!(
        submitter
            .withdraw_with_proof(proof_lsn, values, bad)
            .await
            .is_err()
    );
    assert!(
        submitter
            .withdraw_with_proof(
                proof_lsn,
                ["2", recipient_text.as_str(), "778"],
                nodes.clone()
            )
            .await
            .is_err()
    );
    assert_eq!(
        reader.balance(second_recipient).await.unwrap(),
        second_start
    );
    submitter
        .withdraw_with_proof(proof_lsn, values, nodes.clone())
        .await
        .unwrap();
    assert_eq!(
        reader.balance(second_recipient).await.unwrap(),
        second_start + U256::from(777)
    );
    assert_eq!(
        revert_name(
            submitter
                .withdraw_with_proof(proof_lsn, values, nodes)
                .await
        ),
        "AlreadyPaid"
    );
    sigterm(&mut relay);
    // The validators approved withdrawal 2 as well: a relayer that pays withdrawals finds it
    // paid and does not submit it.
    let mut relay = relayer(&env, &dir, &[], "relayer-4.log");
    wait_until("the relayer to see withdrawal 2 paid", WAIT, || async {
        let log = std::fs::read_to_string(dir.join("relayer-4.log"))?;
        Ok(log.matches("already paid").count() >= 2)
    })
    .await
    .unwrap();
    assert_eq!(
        reader.balance(second_recipient).await.unwrap(),
        second_start + U256::from(777)
    );

    // A withdrawal the bridge cannot pay (its recipient, the registry contract, refuses ETH)
    // holds back none after it.
    let third_recipient = key(&funded_key(&rpc, "recipient 3").await).address();
    let third_start = reader.balance(third_recipient).await.unwrap();
    sql.batch_execute(&format!(
        "INSERT INTO walproof_withdrawals VALUES (3, '{:#x}', 5), (4, '{third_recipient:#x}', 9)",
        deployment.registry
    ))
    .await
    .unwrap();
    wait_balance(&reader, third_recipient, third_start + U256::from(9)).await;
    assert!(!reader.paid(3).await.unwrap());
    assert!(reader.paid(4).await.unwrap());
    wait_until("the refused payment to be logged", WAIT, || async {
        Ok(std::fs::read_to_string(dir.join("relayer-4.log"))?.contains("PaymentFailed"))
    })
    .await
    .unwrap();

    sigterm(&mut relay);
    for validator in &mut validators {
        sigterm(validator);
    }
    sigterm(&mut committer);
    sigterm(&mut decoder);
    let _ = std::fs::remove_dir_all(&dir);
}
