//! `walproof setup`: checks the source, creates or verifies the publication, DDL capture and
//! slot, and keys (or refuses) each published table.

mod catalog;
mod check;
mod ddl_capture;
mod error;
use walproof_core::ident;
mod key;
mod plan;
mod problem;
mod publication;
mod report;
mod server;
mod slot;

pub use check::{Check, Verdict};
pub use ddl_capture::{DdlCaptureNames, install_sql as ddl_capture_sql};
pub use error::{Result, SetupError};
pub use ident::{DEFAULT_SCHEMA, TableName, TableNameError, quote_ident, quote_literal};
pub use key::{TableKey, TableReport};
pub use plan::{SetupOptions, SetupPlan, apply, plan};

/// Whether DDL capture for `publication` is installed, enabled and current.
pub async fn ddl_capture_installed(
    client: &tokio_postgres::Client,
    publication: &str,
) -> Result<bool> {
    catalog::read_ddl_capture(client, publication).await
}
pub use problem::{Fix, MIN_SERVER_VERSION_NUM, PUBLISH_ACTIONS, Problem, Unkeyable};
pub use slot::PLUGIN;
