//! Canonical session settings on every connection that reads rows from the source.

pub use walproof_core::value::{canonical_set_statements, canonical_startup_options};

#[cfg(test)]
mod tests {
    use super::*;
    use walproof_core::CANONICAL_SESSION_SETTINGS;

    #[test]
    fn startup_options_set_every_canonical_setting() {
        let options = canonical_startup_options();
        for (name, value) in CANONICAL_SESSION_SETTINGS {
            assert!(options.contains(&format!("-c {name}={value}")), "{options}");
        }
        assert!(canonical_set_statements().contains("SET TimeZone = 'UTC';"));
    }
}
