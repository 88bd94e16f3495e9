//! Cross-process tests of walproof against the local stack of real services.
//!
//! The tests live under `stack/` (each service really used) and, as stages arrive, beside it
//! for end-to-end flows. Run them with `bash deploy/test.sh`, which brings the stack up first.
