//! Test harness for tests that cross a process boundary: each test gets a private database
//! (and the replication slots in it), topic prefix and bucket on the local stack, removed again
//! when the guard drops, so tests never interfere.
//!
//! **Consumes** the local stack's env file, written by `deploy/stack.sh up` to
//! `.stack/env` (or the path in `WALPROOF_STACK_ENV`); variables already set in the
//! environment win over the file.
//!
//! **Guarantees** that a test whose stack is not up fails with a message naming the command
//! that starts it: nothing here skips or passes silently.
//!
//! # Layout
//! - [`stack`]: where the services are ([`Stack`]) and a clear failure when they are not up.
//! - [`names`]: unique, readable names per test.
//! - [`database`]: a private Postgres database per test ([`TestDatabase`]).
//! - [`topics`]: a private Kafka topic prefix per test ([`TestTopics`]).
//! - [`bucket`]: a private bucket on the GCS emulator per test ([`TestBucket`]).
//! - [`model`]: the source's tables rebuilt from the ledger, to compare with the source.

pub mod bucket;
pub mod database;
pub mod model;
pub mod names;
pub mod stack;
pub mod topics;

pub use bucket::TestBucket;
pub use database::TestDatabase;
pub use names::unique_name;
pub use stack::Stack;

/// Installs rustls's ring crypto provider for this process, once. The HTTP clients of
/// google-cloud-storage and alloy are built without a default provider (to avoid the slow
/// aws-lc-sys build) and panic when none is installed.
pub fn ensure_crypto_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // Err means another provider is already installed, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Runs `cleanup` to completion on a fresh thread with its own runtime. `Drop` cannot await,
/// and may run inside or outside a Tokio runtime; a separate thread works in both cases.
pub(crate) fn run_cleanup<F>(what: String, cleanup: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let joined = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(cleanup())
    })
    .join();
    match joined {
        Ok(Ok(())) => {}
        Ok(Err(err)) => eprintln!("testkit: cleanup of {what} failed: {err:#}"),
        Err(_) => eprintln!("testkit: cleanup of {what} panicked"),
    }
}
