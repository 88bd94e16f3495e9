//! Canonical session settings on every connection that reads rows from the source.

use walproof_core::CANONICAL_SESSION_SETTINGS;

/// The startup `options` string (`-c name=value …`) that puts a connection, the walsender
/// included, under walproof's canonical settings, so pgoutput's text values are the same bytes
/// a validator's `col::text` produces.
pub fn canonical_startup_options() -> String {
    CANONICAL_SESSION_SETTINGS
        .iter()
        .map(|(name, value)| format!("-c {name}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The same settings as SQL, for a session that is already open.
pub fn canonical_set_statements() -> String {
    CANONICAL_SESSION_SETTINGS
        .iter()
        .map(|(name, value)| format!("SET {name} = '{value}';"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_options_set_every_canonical_setting() {
        let options = canonical_startup_options();
        for (name, value) in CANONICAL_SESSION_SETTINGS {
            assert!(options.contains(&format!("-c {name}={value}")), "{options}");
        }
        assert!(canonical_set_statements().contains("SET TimeZone = 'UTC';"));
    }
}
