//! Unique names for per-test resources.

use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call, readable in logs: `wp_<test>_<pid>_<n>`, lower-case
/// ASCII letters, digits and `_` only, at most 48 characters (fits Postgres identifiers, slot
/// names, Kafka topics and GCS buckets).
pub fn unique_name(test: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("_{}_{n}", std::process::id());
    let mut stem: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    stem.truncate(48 - 3 - suffix.len());
    format!("wp_{stem}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_short_and_safe() {
        let a = unique_name("Kafka: a very long test name that goes on and on and on");
        let b = unique_name("Kafka: a very long test name that goes on and on and on");
        assert_ne!(a, b);
        for name in [a, b] {
            assert!(name.len() <= 48, "{name}");
            assert!(name.starts_with("wp_kafka__a_very"), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            );
        }
    }
}
