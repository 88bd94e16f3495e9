//! A private Postgres database per test, dropped with its replication slots afterwards.

use std::time::Duration;

use anyhow::Context;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use crate::names::unique_name;
use crate::stack::Stack;

/// A database created for one test on the stack's Postgres. Dropping it terminates its
/// sessions (walsenders included), drops the replication slots in it, then the database.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    config: Config,
    admin: Config,
}

impl TestDatabase {
    /// Creates a fresh database named after `test`.
    pub async fn create(stack: &Stack, test: &str) -> anyhow::Result<TestDatabase> {
        let admin: Config = stack
            .pg_url
            .parse()
            .with_context(|| format!("WALPROOF_PG_URL {:?} is not a Postgres URL", stack.pg_url))?;
        let client = connect(&admin)
            .await
            .map_err(|err| stack.not_answering("Postgres", &stack.pg_url, err))?;
        let name = unique_name(test);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating database {name}"))?;
        let mut config = admin.clone();
        config.dbname(&name);
        Ok(TestDatabase {
            name,
            config,
            admin,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connection settings for the database.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `(host, port, user)` of the server, for clients that take them separately.
    pub fn host_port_user(&self) -> (String, u16, String) {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "127.0.0.1".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        (
            host,
            port,
            self.config.get_user().unwrap_or("postgres").to_owned(),
        )
    }

    /// A new session on the database.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        connect(&self.config)
            .await
            .with_context(|| format!("connecting to database {}", self.name))
    }

    /// A replication slot name private to this test; slots left in the database are dropped
    /// with it.
    pub fn slot_name(&self, purpose: &str) -> String {
        unique_name(purpose)
    }
}

async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        // The connection ends when the client is dropped; an error then is expected.
        let _ = connection.await;
    });
    Ok(client)
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (name, admin) = (self.name.clone(), self.admin.clone());
        crate::run_cleanup(format!("database {name}"), move || async move {
            let client = connect(&admin).await?;
            // A walsender may need a moment to exit after termination before its slot is free.
            for attempt in 0.. {
                client
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = $1 AND pid <> pg_backend_pid()",
                        &[&name],
                    )
                    .await?;
                let dropped = client
                    .execute(
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                         WHERE database = $1 AND NOT active",
                        &[&name],
                    )
                    .await;
                let remaining: i64 = client
                    .query_one(
                        "SELECT count(*) FROM pg_replication_slots WHERE database = $1",
                        &[&name],
                    )
                    .await?
                    .get(0);
                if dropped.is_ok() && remaining == 0 {
                    break;
                }
                anyhow::ensure!(attempt < 100, "slots of {name} still active after 5 s");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            Ok(())
        });
    }
}

/// The server's current WAL position: everything committed so far ends at or before it.
pub async fn current_wal_lsn(client: &Client) -> anyhow::Result<walproof_core::Lsn> {
    let text: String = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?
        .get(0);
    text.parse().map_err(anyhow::Error::msg)
}

/// The slot's confirmed position, or `None` while it does not exist (or has none).
pub async fn slot_position(
    client: &Client,
    slot: &str,
) -> anyhow::Result<Option<walproof_core::Lsn>> {
    let row = client
        .query_opt(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    let text: Option<String> = row.and_then(|row| row.get(0));
    text.map(|t| t.parse().map_err(anyhow::Error::msg))
        .transpose()
}

/// Waits until the slot confirms `target`: with walproof's decoder, everything committed up to
/// there is in the ledger and acknowledged.
pub async fn wait_slot_confirmed(
    client: &Client,
    slot: &str,
    target: walproof_core::Lsn,
    timeout: Duration,
) -> anyhow::Result<()> {
    crate::stack::wait_until(
        &format!("slot {slot} to confirm {target}"),
        timeout,
        || async {
            Ok(slot_position(client, slot)
                .await?
                .is_some_and(|position| position >= target))
        },
    )
    .await
}
