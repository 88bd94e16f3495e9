//! Canonical column values, exactly as design.md defines them.

/// One column value as it travels through walproof.
///
/// Values are Postgres's text output produced under fixed session settings
/// ([`CANONICAL_SESSION_SETTINGS`]), so the decoder (from pgoutput) and a validator (from its
/// shadow database, `col::text`) produce identical bytes. NULL is distinct from every string,
/// the empty string included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// The value's text output.
    Text(String),
    /// An unchanged TOASTed value that the source did not send. It is never replaced by a
    /// placeholder: each consumer resolves it from its own state (the committer from the column
    /// hash it holds, a validator from its shadow row).
    Unchanged,
}

impl Value {
    /// The text, or `None` for NULL and for an unchanged marker.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            Value::Null | Value::Unchanged => None,
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

/// The session settings under which every connection that reads or writes rows produces text
/// values, as `(parameter, value)` pairs: design.md's five, plus `lc_monetary = C` because
/// `money`'s text output follows that locale too.
///
/// Values are each type's *text output* (what a text-format query returns), not a `::text`
/// cast: the cast differs from the output for `bool` (`true` vs `t`), `inet` (always shows the
/// mask) and `char(n)` (trims the padding).
pub const CANONICAL_SESSION_SETTINGS: [(&str, &str); 6] = [
    ("DateStyle", "ISO"),
    ("TimeZone", "UTC"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    ("lc_monetary", "C"),
];

/// The startup `options` string (`-c name=value …`) that puts a connection, the walsender
/// included, under the canonical settings: pgoutput's text values on the source are then the
/// same bytes a validator reads back from its shadow database.
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
