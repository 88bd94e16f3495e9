//! How walproof reaches the source: one URL for its SQL sessions and its replication session.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use pgwire_replication::{ReplicationConfig, TlsConfig};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use crate::session::{canonical_set_statements, canonical_startup_options};

/// The source database, from a `postgres://user:password@host:port/database` URL. Its password
/// never prints.
#[derive(Clone)]
pub struct SourceConnection {
    config: Config,
}

/// A URL that is not a usable Postgres connection string.
#[derive(Debug, thiserror::Error)]
#[error("invalid source URL: {reason} (expected postgres://user[:password]@host[:port]/database)")]
pub struct SourceUrlError {
    reason: String,
}

impl FromStr for SourceConnection {
    type Err = SourceUrlError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let config: Config = url
            .parse()
            .map_err(|err: tokio_postgres::Error| SourceUrlError {
                reason: err.to_string(),
            })?;
        if config.get_dbname().is_none() {
            return Err(SourceUrlError {
                reason: "no database name".into(),
            });
        }
        if config.get_hosts().is_empty() {
            return Err(SourceUrlError {
                reason: "no host".into(),
            });
        }
        Ok(SourceConnection { config })
    }
}

impl fmt::Debug for SourceConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceConnection({self})")
    }
}

impl fmt::Display for SourceConnection {
    /// `postgres://user@host:port/database`, without the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (host, port) = self.host_port();
        let user = self.config.get_user().unwrap_or("postgres");
        write!(f, "postgres://{user}@{host}:{port}/{}", self.database())
    }
}

impl SourceConnection {
    /// The database name.
    pub fn database(&self) -> &str {
        self.config.get_dbname().unwrap_or("postgres")
    }

    fn host_port(&self) -> (String, u16) {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        (
            host,
            self.config.get_ports().first().copied().unwrap_or(5432),
        )
    }

    /// Opens a SQL session under the canonical session settings; the connection task runs in
    /// the background until the client is dropped.
    pub async fn connect_sql(&self, application: &str) -> Result<Client, tokio_postgres::Error> {
        let mut config = self.config.clone();
        config
            .application_name(application)
            .connect_timeout(Duration::from_secs(10));
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("source SQL connection ended: {err}");
            }
        });
        client.batch_execute(&canonical_set_statements()).await?;
        Ok(client)
    }

    /// The replication session's settings: pgoutput from `slot` for `publication`, under the
    /// canonical session settings, reporting progress every `status_interval`.
    pub fn replication_config(
        &self,
        slot: &str,
        publication: &str,
        status_interval: Duration,
    ) -> ReplicationConfig {
        let (host, port) = self.host_port();
        let password = self
            .config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        ReplicationConfig::new(
            host,
            self.config.get_user().unwrap_or("postgres"),
            password,
            self.database(),
            slot,
            publication,
        )
        .with_port(port)
        .with_tls(TlsConfig::disabled())
        .with_options(canonical_startup_options())
        .with_status_interval(status_interval)
        .with_application_name("walproof-decoder")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_prints() {
        let source: SourceConnection = "postgres://alice:s3cret@db.example:6543/shop"
            .parse()
            .unwrap();
        assert_eq!(source.to_string(), "postgres://alice@db.example:6543/shop");
        assert!(!format!("{source:?}").contains("s3cret"));
        let replication = source.replication_config("slot", "pub", Duration::from_secs(1));
        assert_eq!(
            (replication.port, replication.password.as_str()),
            (6543, "s3cret")
        );
    }

    #[test]
    fn a_url_without_a_database_is_refused() {
        let err = "postgres://alice@db.example"
            .parse::<SourceConnection>()
            .unwrap_err();
        assert!(err.to_string().contains("no database name"), "{err}");
    }
}
