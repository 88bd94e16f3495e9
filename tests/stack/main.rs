//! Each service of the local stack is really there and really used, through the same client
//! library walproof's stages use. A test whose service is down fails naming
//! `bash deploy/stack.sh up`; none of them skips.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod anvil;
mod gcs;
mod kafka;
mod postgres;

use walproof_testkit::Stack;

/// The stack's settings, or a failure that says how to start it.
fn stack() -> Stack {
    match Stack::load() {
        Ok(stack) => stack,
        Err(err) => panic!("{err:#}"),
    }
}

#[tokio::test]
async fn a_service_that_is_down_fails_with_the_command_that_starts_it() {
    // Nothing listens on port 1 of the loopback address.
    let dead = Stack {
        pg_url: "postgres://postgres@127.0.0.1:1/postgres".into(),
        kafka_brokers: "127.0.0.1:1".into(),
        gcs_endpoint: "http://127.0.0.1:1".into(),
        eth_rpc_url: "http://127.0.0.1:1".into(),
        env_file: "/nonexistent/env".into(),
    };
    let failures = [
        walproof_testkit::TestDatabase::create(&dead, "down")
            .await
            .unwrap_err(),
        walproof_testkit::TestBucket::create(&dead, "down")
            .await
            .unwrap_err(),
        dead.require_listening("Kafka broker", &dead.kafka_brokers)
            .await
            .unwrap_err(),
        dead.require_listening("anvil", "127.0.0.1:1")
            .await
            .unwrap_err(),
    ];
    for err in failures {
        let message = format!("{err:#}");
        assert!(message.contains("bash deploy/stack.sh up"), "{message}");
    }
}
