//! Trust: the keys walproof signs with, and the evidence that proves where they live.

pub mod signer;

pub use signer::{AttestationSigner, FileKey, KeyError, KeyOrigin, SignerError};
