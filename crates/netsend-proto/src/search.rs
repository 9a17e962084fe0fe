//! Inbox search (`netsend inbox --search TEXT`): what a caller's text means,
//! checked and bounded before it reaches the database. Sans IO.
//!
//! A text of [`MIN_INDEXED_CHARS`] characters or more becomes one FTS5
//! phrase for the inbox's trigram index (substring match, case folded); a
//! shorter one is matched by a scan (the index holds no shorter tokens); an
//! empty one matches everything. A text over [`MAX_SEARCH_LEN`] bytes, or one
//! holding NUL, is refused, so no caller can make one query arbitrarily
//! expensive by the length of its pattern.

/// Longest search text accepted, in bytes.
pub const MAX_SEARCH_LEN: usize = 256;
/// Characters the trigram index needs; shorter texts are scanned for.
pub const MIN_INDEXED_CHARS: usize = 3;

/// A checked search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    /// Every message (the empty text).
    All,
    /// One or two characters, lower-cased: matched by scanning the texts.
    Scan(String),
    /// An FTS5 query string: the text as one quoted phrase.
    Indexed(String),
}

/// Why a search text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// Longer than [`MAX_SEARCH_LEN`] bytes.
    #[error("search text of {0} bytes is longer than {MAX_SEARCH_LEN}")]
    TooLong(usize),
    /// Holds a NUL character, which no message text can be searched for.
    #[error("search text holds a NUL character")]
    Nul,
}

impl Search {
    /// Checks `text` and says how to search for it.
    pub fn parse(text: &str) -> Result<Self, SearchError> {
        if text.len() > MAX_SEARCH_LEN {
            return Err(SearchError::TooLong(text.len()));
        }
        if text.contains('\0') {
            return Err(SearchError::Nul);
        }
        Ok(match text.chars().count() {
            0 => Self::All,
            n if n < MIN_INDEXED_CHARS => Self::Scan(text.to_lowercase()),
            _ => Self::Indexed(quote(text)),
        })
    }
}

/// `text` as one FTS5 string (a phrase): in double quotes, each inner `"`
/// doubled, so no character of it is query syntax.
fn quote(text: &str) -> String {
    let mut q = String::with_capacity(text.len() + 2);
    q.push('"');
    for c in text.chars() {
        if c == '"' {
            q.push('"');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// The text of an FTS5 string made by [`Search::parse`], or `None` if `query`
/// is not exactly one such string.
pub fn unquote(query: &str) -> Option<String> {
    let inner = query.strip_prefix('"')?.strip_suffix('"')?;
    let mut text = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '"' && chars.next() != Some('"') {
            return None;
        }
        text.push(c);
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_short_text_that_lowercases_longer_is_still_a_scan() {
        // U+0130 lowercases to "i" and a combining dot: 2 characters in, 3 out.
        let text = "\u{130}\u{fffd}";
        assert_eq!(Search::parse(text), Ok(Search::Scan(text.to_lowercase())));
        crate::fuzzing::search(&[0xc4, 0xb0, 0xf2, 0xb6]);
    }

    #[test]
    fn lengths_pick_the_way_of_searching() {
        assert_eq!(Search::parse(""), Ok(Search::All));
        assert_eq!(Search::parse("Ë"), Ok(Search::Scan("ë".into())));
        assert_eq!(Search::parse("ab"), Ok(Search::Scan("ab".into())));
        assert_eq!(
            Search::parse("say \"hi\" OR x*"),
            Ok(Search::Indexed("\"say \"\"hi\"\" OR x*\"".into()))
        );
        let long = "a".repeat(MAX_SEARCH_LEN + 1);
        assert_eq!(
            Search::parse(&long),
            Err(SearchError::TooLong(MAX_SEARCH_LEN + 1))
        );
        assert!(Search::parse(&long[1..]).is_ok());
        assert_eq!(Search::parse("a\0b"), Err(SearchError::Nul));
        assert_eq!(unquote("\"a\"b\""), None);
        assert_eq!(unquote("abc"), None);
    }

    proptest! {
        #[test]
        fn an_indexed_query_is_one_phrase_of_exactly_the_text(text in "\\PC{0,300}") {
            match Search::parse(&text) {
                Ok(Search::Indexed(q)) => prop_assert_eq!(unquote(&q), Some(text)),
                Ok(Search::Scan(s)) => prop_assert_eq!(s, text.to_lowercase()),
                Ok(Search::All) => prop_assert!(text.is_empty()),
                Err(_) => prop_assert!(text.len() > MAX_SEARCH_LEN || text.contains('\0')),
            }
        }
    }
}
