//! Identifiers and table names, quoted the way Postgres's `quote_ident` quotes them.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// Postgres truncates longer identifiers (NAMEDATALEN - 1), so a longer name would silently
/// mean another object.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The schema of a table named without one. Fixed rather than the session's `search_path`, so
/// the same option means the same table on every connection.
pub const DEFAULT_SCHEMA: &str = "public";

/// Keywords that `quote_ident` quotes: every keyword not in the unreserved category, from
/// PostgreSQL 15's `pg_get_keywords()`, in byte order for binary search.
#[rustfmt::skip]
const QUOTED_KEYWORDS: [&str; 151] = [
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "authorization",
    "between", "bigint", "binary", "bit", "boolean", "both", "case", "cast", "char", "character",
    "check", "coalesce", "collate", "collation", "column", "concurrently", "constraint", "create",
    "cross", "current_catalog", "current_date", "current_role", "current_schema", "current_time",
    "current_timestamp", "current_user", "dec", "decimal", "default", "deferrable", "desc",
    "distinct", "do", "else", "end", "except", "exists", "extract", "false", "fetch", "float",
    "for", "foreign", "freeze", "from", "full", "grant", "greatest", "group", "grouping", "having",
    "ilike", "in", "initially", "inner", "inout", "int", "integer", "intersect", "interval", "into",
    "is", "isnull", "join", "lateral", "leading", "least", "left", "like", "limit", "localtime",
    "localtimestamp", "national", "natural", "nchar", "none", "normalize", "not", "notnull", "null",
    "nullif", "numeric", "offset", "on", "only", "or", "order", "out", "outer", "overlaps",
    "overlay", "placing", "position", "precision", "primary", "real", "references", "returning",
    "right", "row", "select", "session_user", "setof", "similar", "smallint", "some", "substring",
    "symmetric", "table", "tablesample", "then", "time", "timestamp", "to", "trailing", "treat",
    "trim", "true", "union", "unique", "user", "using", "values", "varchar", "variadic", "verbose",
    "when", "where", "window", "with", "xmlattributes", "xmlconcat", "xmlelement", "xmlexists",
    "xmlforest", "xmlnamespaces", "xmlparse", "xmlpi", "xmlroot", "xmlserialize", "xmltable",
];

/// `ident` as SQL, with `quote_ident` semantics: unchanged when Postgres reads it back unquoted
/// as the same name (lower-case ASCII letters, digits and `_`, not starting with a digit, not
/// a keyword that needs quoting), else in double quotes with every `"` doubled.
pub fn quote_ident(ident: &str) -> Cow<'_, str> {
    let safe = ident
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && ident
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && QUOTED_KEYWORDS.binary_search(&ident).is_err();
    if safe {
        Cow::Borrowed(ident)
    } else {
        Cow::Owned(format!("\"{}\"", ident.replace('"', "\"\"")))
    }
}

/// `text` as an SQL string literal, with `quote_literal` semantics: single quotes doubled, and
/// the `E''` form with doubled backslashes when it holds a backslash (correct whatever
/// `standard_conforming_strings` is).
pub fn quote_literal(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 3);
    push_literal(&mut quoted, text);
    quoted
}

/// Appends [`quote_literal`]`(text)` to `sql`, without a string of its own: for statements
/// that quote many values.
pub fn push_literal(sql: &mut String, text: &str) {
    let escaped = text.contains('\\');
    if escaped {
        sql.push('E');
    }
    sql.push('\'');
    let mut rest = text;
    while let Some(at) = rest.find(['\'', '\\']) {
        sql.push_str(&rest[..=at]);
        sql.push_str(&rest[at..=at]);
        rest = &rest[at + 1..];
    }
    sql.push_str(rest);
    sql.push('\'');
}

/// A table, schema-qualified.
///
/// Parsed from `schema.table` or `table` (schema [`DEFAULT_SCHEMA`]) with SQL's rules:
/// unquoted names fold to lower case, `"Quoted"` names keep their case and may hold `.`, spaces
/// and `""` for a quote. Displayed quoted where SQL needs it, so `to_string()` is valid SQL and
/// parses back to the same name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    /// Schema (namespace) name, as stored in the catalog.
    pub schema: String,
    /// Table name, as stored in the catalog.
    pub name: String,
}

impl TableName {
    /// A table name from catalog spellings (no folding, no quoting).
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> TableName {
        TableName {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            quote_ident(&self.schema),
            quote_ident(&self.name)
        )
    }
}

/// A table name that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid table name {input:?}: {reason}")]
pub struct TableNameError {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for TableName {
    type Err = TableNameError;

    fn from_str(input: &str) -> Result<TableName, TableNameError> {
        let error = |reason| TableNameError {
            input: input.to_owned(),
            reason,
        };
        let mut parts = parse_dotted(input.trim()).map_err(error)?;
        match parts.len() {
            1 => Ok(TableName::new(DEFAULT_SCHEMA, parts.remove(0))),
            2 => {
                let name = parts.remove(1);
                Ok(TableName::new(parts.remove(0), name))
            }
            _ => Err(error("expected `table` or `schema.table`")),
        }
    }
}

/// Splits `a."B c".d` into identifiers, folding unquoted ones to lower case.
fn parse_dotted(input: &str) -> Result<Vec<String>, &'static str> {
    let mut parts = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        let part = if chars.next_if_eq(&'"').is_some() {
            let mut ident = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted name"),
                    Some('"') if chars.next_if_eq(&'"').is_some() => ident.push('"'),
                    Some('"') => break,
                    Some(c) => ident.push(c),
                }
            }
            if ident.is_empty() {
                return Err("empty quoted name");
            }
            ident
        } else {
            let mut ident = String::new();
            while let Some(c) = chars.next_if(|&c| c != '.') {
                let valid = if ident.is_empty() {
                    c.is_alphabetic() || c == '_'
                } else {
                    c.is_alphanumeric() || c == '_' || c == '$'
                };
                if !valid {
                    return Err(if c == '"' {
                        "a quote inside an unquoted name"
                    } else {
                        "unquoted names hold only letters, digits, `_` and `$` and start with a \
                         letter or `_`; quote other names with double quotes"
                    });
                }
                // Postgres folds only ASCII letters of unquoted names.
                ident.push(c.to_ascii_lowercase());
            }
            if ident.is_empty() {
                return Err("empty name");
            }
            ident
        };
        if part.len() > MAX_IDENTIFIER_BYTES {
            return Err("a name is longer than 63 bytes (Postgres would truncate it)");
        }
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some('.') => {}
            Some(_) => return Err("expected `.` after a quoted name"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> TableName {
        match input.parse() {
            Ok(table) => table,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn keyword_list_is_in_byte_order_for_binary_search() {
        assert!(QUOTED_KEYWORDS.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn plain_lower_case_names_stay_unquoted() {
        for ident in [
            "orders",
            "_private",
            "t2",
            "order_items",
            "name",
            "data",
            "public",
        ] {
            assert_eq!(quote_ident(ident), ident);
        }
    }

    #[test]
    fn names_sql_would_misread_are_quoted() {
        assert_eq!(quote_ident("Orders"), "\"Orders\"");
        assert_eq!(quote_ident("Odd Table"), "\"Odd Table\"");
        assert_eq!(quote_ident("2fast"), "\"2fast\"");
        assert_eq!(quote_ident("a.b"), "\"a.b\"");
        assert_eq!(quote_ident("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("table"), "\"table\"");
        assert_eq!(quote_ident("café"), "\"café\"");
        assert_eq!(quote_ident("a$"), "\"a$\"");
        assert_eq!(quote_ident(""), "\"\"");
    }

    #[test]
    fn literals_double_quotes_and_escape_backslashes() {
        assert_eq!(quote_literal("walproof"), "'walproof'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\b'c"), r"E'a\\b''c'");
    }

    #[test]
    fn a_bare_table_name_is_in_the_public_schema() {
        assert_eq!(parse("orders"), TableName::new("public", "orders"));
        assert_eq!(parse("  orders "), TableName::new("public", "orders"));
    }

    #[test]
    fn unquoted_names_fold_to_lower_case_like_sql() {
        assert_eq!(parse("Sales.Orders"), TableName::new("sales", "orders"));
        assert_eq!(
            parse("shop.order_items$2"),
            TableName::new("shop", "order_items$2")
        );
    }

    #[test]
    fn quoted_names_keep_case_spaces_dots_and_quotes() {
        assert_eq!(
            parse(r#""My Schema"."Odd Table""#),
            TableName::new("My Schema", "Odd Table")
        );
        assert_eq!(parse(r#""a.b""#), TableName::new("public", "a.b"));
        assert_eq!(
            parse(r#"s."say ""hi""""#),
            TableName::new("s", "say \"hi\"")
        );
    }

    #[test]
    fn display_quotes_where_needed_and_parses_back_to_the_same_name() {
        let names = [
            TableName::new("public", "orders"),
            TableName::new("My Schema", "Odd Table"),
            TableName::new("s", "say \"hi\""),
            TableName::new("user", "select"),
            TableName::new("a.b", "c.d"),
            TableName::new("Ünï", "ß"),
        ];
        assert_eq!(names[0].to_string(), "public.orders");
        assert_eq!(names[1].to_string(), r#""My Schema"."Odd Table""#);
        assert_eq!(names[3].to_string(), r#""user"."select""#);
        for name in names {
            assert_eq!(parse(&name.to_string()), name);
        }
    }

    #[test]
    fn malformed_table_names_are_rejected_with_the_reason() {
        for (input, reason) in [
            ("", "empty name"),
            ("a.", "empty name"),
            (".a", "empty name"),
            ("a.b.c", "expected `table` or `schema.table`"),
            (r#""open"#, "unterminated quoted name"),
            (r#""""#, "empty quoted name"),
            (r#""a"b"#, "expected `.` after a quoted name"),
            ("odd table", "unquoted names hold only"),
            ("1table", "unquoted names hold only"),
        ] {
            let err = match input.parse::<TableName>() {
                Ok(table) => panic!("{input:?} parsed as {table:?}"),
                Err(err) => err,
            };
            assert!(err.reason.starts_with(reason), "{input:?}: {err}");
            assert_eq!(err.input, input);
        }
        let long = "x".repeat(64);
        assert!(long.parse::<TableName>().is_err());
        assert!("x".repeat(63).parse::<TableName>().is_ok());
    }
}
