//! Arrays: `{{1,NULL},{3,4}}`, `{"a b","q\"x",NULL}`, `[0:1]={1,2}`, as nested elements
//! whose text is each element's own text output.

/// Postgres's limit on an array's dimensions (`MAXDIM`).
const MAX_DIMENSIONS: usize = 6;

/// One element of a parsed array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// SQL NULL (unquoted `NULL`; a quoted `"NULL"` is text).
    Null,
    /// The element's text output, unquoted and unescaped.
    Text(String),
    /// A sub-array of a multi-dimensional array.
    Array(Vec<Element>),
}

/// Parses an array with the `,` delimiter (every built-in type but `box`, whose `;` this does
/// not read). Explicit lower bounds (`[0:1]=`) are dropped: only the elements come back, in
/// order.
pub fn parse_array(text: &str) -> Result<Vec<Element>, String> {
    let body = match text.strip_prefix('[') {
        Some(_) => match text.split_once('=') {
            Some((_, body)) => body,
            None => return Err(format!("{text:?}: dimensions without '='")),
        },
        None => text,
    };
    let mut parser = Parser {
        chars: body.chars().collect(),
        at: 0,
        depth: 0,
    };
    let elements = parser.array()?;
    if parser.at != parser.chars.len() {
        return Err(format!("{text:?}: text after the closing brace"));
    }
    Ok(elements)
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    /// Arrays open at `at`: bounded, so that nesting cannot exhaust the stack.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {c:?} at character {}", self.at))
        }
    }

    fn array(&mut self) -> Result<Vec<Element>, String> {
        self.expect('{')?;
        self.depth += 1;
        if self.depth > MAX_DIMENSIONS {
            return Err(format!(
                "more than {MAX_DIMENSIONS} dimensions at character {}",
                self.at
            ));
        }
        let mut elements = Vec::new();
        if self.peek() == Some('}') {
            self.at += 1;
            self.depth -= 1;
            return Ok(elements);
        }
        loop {
            elements.push(self.element()?);
            match self.peek() {
                Some(',') => self.at += 1,
                Some('}') => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(elements);
                }
                _ => return Err(format!("expected ',' or '}}' at character {}", self.at)),
            }
        }
    }

    fn element(&mut self) -> Result<Element, String> {
        match self.peek() {
            Some('{') => self.array().map(Element::Array),
            Some('"') => {
                self.at += 1;
                let mut text = String::new();
                loop {
                    match self.peek() {
                        Some('"') => {
                            self.at += 1;
                            return Ok(Element::Text(text));
                        }
                        Some('\\') => {
                            let escaped = self
                                .chars
                                .get(self.at + 1)
                                .copied()
                                .ok_or("unterminated escape")?;
                            text.push(escaped);
                            self.at += 2;
                        }
                        Some(c) => {
                            text.push(c);
                            self.at += 1;
                        }
                        None => return Err("unterminated quoted element".to_owned()),
                    }
                }
            }
            _ => {
                let start = self.at;
                while let Some(c) = self.peek() {
                    if c == ',' || c == '}' {
                        break;
                    }
                    self.at += 1;
                }
                let token: String = self.chars[start..self.at].iter().collect();
                if token.is_empty() {
                    Err(format!("empty element at character {start}"))
                } else if token.eq_ignore_ascii_case("NULL") {
                    Ok(Element::Null)
                } else {
                    Ok(Element::Text(token))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Element {
        Element::Text(s.to_owned())
    }

    #[test]
    fn two_dimensional_arrays_keep_their_nulls() {
        assert_eq!(
            parse_array("{{1,NULL},{3,4}}"),
            Ok(vec![
                Element::Array(vec![text("1"), Element::Null]),
                Element::Array(vec![text("3"), text("4")]),
            ])
        );
    }

    #[test]
    fn quoted_elements_are_unescaped_and_a_quoted_null_is_text() {
        assert_eq!(
            parse_array(r#"{"a b","NULL",NULL,"q\"x\\y",""}"#),
            Ok(vec![
                text("a b"),
                text("NULL"),
                Element::Null,
                text(r#"q"x\y"#),
                text(""),
            ])
        );
    }

    #[test]
    fn empty_arrays_and_explicit_bounds_parse() {
        assert_eq!(parse_array("{}"), Ok(vec![]));
        assert_eq!(parse_array("[0:1]={1,2}"), Ok(vec![text("1"), text("2")]));
    }

    #[test]
    fn six_dimensions_parse_and_a_seventh_is_an_error() {
        let six = (1..6).fold(vec![text("1")], |inner, _| vec![Element::Array(inner)]);
        assert_eq!(parse_array("{{{{{{1}}}}}}"), Ok(six));
        assert!(parse_array("{{{{{{{1}}}}}}}").is_err());
        assert!(parse_array(&"{".repeat(1_000_000)).is_err());
    }

    #[test]
    fn malformed_arrays_are_errors() {
        for bad in [
            "", "{", "{1,2", "{1,,2}", "{\"a}", "{1}x", "1,2", "[0:1]", "{\"a\\",
        ] {
            assert!(parse_array(bad).is_err(), "{bad:?}");
        }
    }
}
