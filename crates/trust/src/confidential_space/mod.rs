//! GCP Confidential Space: a workload key attested by a launcher token whose nonce is the key binding.

mod attestor;
mod launcher;
mod token;

pub use attestor::ConfidentialSpace;
pub use launcher::{DEFAULT_LAUNCHER_SOCKET, DEFAULT_TIMEOUT, Launcher, LauncherError};
pub use token::{
    ALGORITHM, DEBUG_STATUS, Expectations, ISSUER, SOFTWARE_NAME, Token, TokenError,
    TokenSigningKey, TokenSummary,
};
