//! What the process tests of the `walproof` binary share: running it as an operator would,
//! and a private source database with walproof's settings pointing at it.

#![allow(dead_code)] // each test file uses its own part

use std::process::{Child, Command};

use walproof_testkit::topics::TestTopics;
use walproof_testkit::{Stack, TestDatabase};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_walproof");

/// `walproof <args>` with a clean environment: `PATH`, warnings only, and `env`.
pub(crate) fn walproof(env: &[(&str, String)], args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    command
}

/// Stops a `walproof` process with SIGTERM and asserts it stopped cleanly.
pub(crate) fn sigterm(child: &mut Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success(), "a clean stop");
}

/// A private database with `schema`, a topic prefix, a session, and the `WALPROOF_*`
/// settings (source, slot, brokers, prefix) pointing at them.
pub(crate) async fn source(
    test: &str,
    schema: &str,
) -> (
    Stack,
    TestDatabase,
    TestTopics,
    tokio_postgres::Client,
    Vec<(&'static str, String)>,
) {
    let stack = Stack::load().unwrap_or_else(|err| panic!("{err:#}"));
    let db = TestDatabase::create(&stack, test).await.unwrap();
    let sql = db.connect().await.unwrap();
    sql.batch_execute(schema).await.unwrap();
    let topics = TestTopics::new(&stack, test);
    let (host, port, user) = db.host_port_user();
    let env = vec![
        (
            "WALPROOF_SOURCE_URL",
            format!("postgres://{user}@{host}:{port}/{}", db.name()),
        ),
        ("WALPROOF_SLOT", db.slot_name("slot")),
        ("WALPROOF_KAFKA_BROKERS", stack.kafka_brokers.clone()),
        ("WALPROOF_TOPIC_PREFIX", topics.prefix().to_owned()),
    ];
    (stack, db, topics, sql, env)
}

/// The stack's Python: its venv has the PyPI wheels the tests use (confluent-kafka, since
/// Debian's librdkafka is too old; duckdb).
pub(crate) fn python() -> String {
    let env_file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.stack/env");
    std::env::var("WALPROOF_PYTHON")
        .ok()
        .or_else(|| {
            std::fs::read_to_string(std::env::var("WALPROOF_STACK_ENV").unwrap_or(env_file.into()))
                .ok()?
                .lines()
                .find_map(|line| line.strip_prefix("WALPROOF_PYTHON=").map(str::to_owned))
        })
        .unwrap_or_else(|| "python3".into())
}

/// Runs `walproof setup`, then starts `walproof decode` (ledger only, no metrics endpoint).
pub(crate) fn setup_and_decode(env: &[(&str, String)]) -> Child {
    let setup = walproof(env, &["setup"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(setup.success(), "walproof setup failed");
    walproof(env, &["decode", "--metrics-addr", "off", "--no-debezium"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A small deterministic generator (xorshift) of numbers below a bound, from `seed`.
pub(crate) fn xorshift(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut seed = seed | 1;
    move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    }
}

/// How many of the restarts `2..=kills + 1` logged `marker` in their `<dir>/start-<n>.log`
/// (e.g. that they resumed from their own state rather than from the ledger's start).
pub(crate) fn restarts_logging(dir: &std::path::Path, kills: usize, marker: &str) -> usize {
    (2..=kills + 1)
        .filter(|n| {
            std::fs::read_to_string(dir.join(format!("start-{n}.log")))
                .unwrap_or_default()
                .contains(marker)
        })
        .count()
}
