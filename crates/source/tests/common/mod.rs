//! Fixtures shared by the integration tests of this crate.

pub(crate) mod every_type;
