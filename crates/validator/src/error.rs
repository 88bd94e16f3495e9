//! Why the validator stops. A divergence is not an error: the validator keeps running, signs
//! nothing more, and reports it ([`crate::divergence`]). These are the failures of its own
//! means: the shadow database unreachable, the broker failing, a bad configuration.

/// Result alias of the validator.
pub type Result<T, E = ValidateError> = std::result::Result<T, E>;

/// A failure that stops the validator.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// A setting that cannot work.
    #[error("{0}")]
    Config(String),
    /// The shadow database failed.
    #[error("{context}: {source}")]
    Shadow {
        /// What the validator was doing.
        context: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// The broker failed.
    #[error(transparent)]
    Transport(#[from] walproof_transport::TransportError),
    /// The shadow writer's task ended while transactions were still queued for it (it
    /// panicked, or was stopped).
    #[error("the shadow writer stopped with transactions still queued")]
    WriterStopped,
    /// The signing key failed.
    #[error("signing: {0}")]
    Sign(String),
    /// Writing or reading the snapshot failed.
    #[error("the snapshot: {0}")]
    Snapshot(String),
}

impl ValidateError {
    /// A shadow database error in `context`, for `map_err`.
    pub fn shadow(
        context: impl Into<String>,
    ) -> impl FnOnce(tokio_postgres::Error) -> ValidateError {
        let context = context.into();
        move |source| ValidateError::Shadow { context, source }
    }
}
