//! Why setup failed: refused (the user must fix the source) or a database error.

use std::error::Error as _;

use super::ident::TableNameError;
use super::problem::Problem;

/// `Result` with [`SetupError`].
pub type Result<T, E = SetupError> = std::result::Result<T, E>;

/// Why setup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The slot name is not one Postgres accepts.
    #[error("invalid slot name {slot:?}: {reason}")]
    InvalidSlotName {
        /// The name given.
        slot: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The publication name is not one Postgres accepts.
    #[error("invalid publication name {publication:?}: {reason}")]
    InvalidPublicationName {
        /// The name given.
        publication: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A table name that does not parse.
    #[error(transparent)]
    InvalidTableName(#[from] TableNameError),
    /// An empty table list: give none (all tables) or some.
    #[error("no tables given: name at least one table, or none to publish all tables")]
    NoTables,
    /// The source needs fixing first; nothing was changed. Each problem names its fix.
    #[error("setup refused, nothing was changed; fix these on the source first:{}", listed(.problems))]
    Refused {
        /// Every problem found, tables included.
        problems: Vec<Problem>,
    },
    /// Reading the catalog failed.
    #[error("reading {what} from the source's catalog")]
    Catalog {
        /// What was being read.
        what: &'static str,
        /// The database error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The catalog holds a value this version of walproof does not know.
    #[error("the source's catalog holds {value:?} in {what}, which walproof does not know")]
    UnknownCatalogValue {
        /// Where.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// A setup statement failed. Statements before it took effect; running setup again
    /// continues from there.
    #[error("running `{statement}` on the source")]
    Statement {
        /// The statement.
        statement: String,
        /// The database error.
        #[source]
        source: tokio_postgres::Error,
    },
}

impl SetupError {
    /// Whether trying again (a new connection, setup from the start) may succeed: the
    /// connection broke, or the server reported a transient condition. Refusals and invalid
    /// options are never retryable.
    pub fn is_retryable(&self) -> bool {
        match self {
            SetupError::Catalog { source, .. } | SetupError::Statement { source, .. } => {
                match source.code() {
                    // Connection exceptions, serialization failures, deadlocks, lock timeouts,
                    // a server shutting down or starting up.
                    Some(state) => {
                        let code = state.code();
                        code.starts_with("08")
                            || matches!(code, "40001" | "40P01" | "55P03" | "57P01" | "57P03")
                    }
                    None => {
                        source.is_closed()
                            || source
                                .source()
                                .is_some_and(|cause| cause.is::<std::io::Error>())
                    }
                }
            }
            _ => false,
        }
    }
}

fn listed(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|problem| format!("\n- {problem}\n  fix: {}", problem.fix()))
        .collect()
}
