//! `walproof setup`: checks the source, creates or verifies the publication and slot, and keys (or refuses) each published table.

mod catalog;
mod check;
mod error;
mod ident;
mod key;
mod plan;
mod problem;
mod publication;
mod report;
mod server;
mod slot;

pub use check::{Check, Verdict};
pub use error::{Result, SetupError};
pub use ident::{DEFAULT_SCHEMA, TableName, TableNameError, quote_ident, quote_literal};
pub use key::{TableKey, TableReport};
pub use plan::{SetupOptions, SetupPlan, apply, plan};
pub use problem::{Fix, MIN_SERVER_VERSION_NUM, PUBLISH_ACTIONS, Problem, Unkeyable};
pub use slot::PLUGIN;
