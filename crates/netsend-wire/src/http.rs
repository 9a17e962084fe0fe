//! The request head of HTTP/1.x, as far as the metrics endpoint reads it:
//! the request line (method, target, version) once the head is complete
//! (`CRLF CRLF`). Header fields are skipped: the endpoint serves one path
//! and closes the connection after each answer.
//!
//! [`RequestHead::parse`] never panics and allocates nothing: the method
//! and target borrow from the input, which the caller bounds
//! ([`MAX_HEAD_LEN`]).

/// The longest request head the endpoint reads; a longer one is refused.
pub const MAX_HEAD_LEN: usize = 8192;

/// A request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// `GET`, `HEAD`, ...
    pub method: &'a str,
    /// The request target (`/metrics`, `/metrics?x=1`).
    pub target: &'a str,
    /// The minor version: `HTTP/1.0` or `HTTP/1.1`.
    pub minor_version: u8,
}

/// Why a request head is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No `CRLF CRLF` within [`MAX_HEAD_LEN`] bytes.
    #[error("request head longer than {MAX_HEAD_LEN} bytes")]
    TooLong,
    /// The request line is not `METHOD SP TARGET SP HTTP/1.x`.
    #[error("malformed request line")]
    Malformed,
}

/// Whether `s` is a method token (RFC 9110 `token`, upper-case letters
/// in practice).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl<'a> RequestHead<'a> {
    /// The request line of `buf` once it holds the whole head (`Ok(None)`
    /// while it does not yet).
    pub fn parse(buf: &'a [u8]) -> Result<Option<(Self, usize)>, HttpError> {
        let window = &buf[..buf.len().min(MAX_HEAD_LEN)];
        let Some(end) = window.windows(4).position(|w| w == b"\r\n\r\n") else {
            return if buf.len() >= MAX_HEAD_LEN {
                Err(HttpError::TooLong)
            } else {
                Ok(None)
            };
        };
        let head = &window[..end];
        let line_end = head
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(head.len());
        let line = std::str::from_utf8(&head[..line_end]).map_err(|_| HttpError::Malformed)?;
        let mut parts = line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(HttpError::Malformed);
        };
        let minor_version = match version {
            "HTTP/1.0" => 0,
            "HTTP/1.1" => 1,
            _ => return Err(HttpError::Malformed),
        };
        if !is_token(method) || target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HttpError::Malformed);
        }
        Ok(Some((
            Self {
                method,
                target,
                minor_version,
            },
            end + 4,
        )))
    }

    /// The target's path, without a query.
    pub fn path(&self) -> &'a str {
        self.target.split('?').next().unwrap_or(self.target)
    }

    /// The request line as sent (for the round trip).
    pub fn to_line(&self) -> String {
        format!(
            "{} {} HTTP/1.{}\r\n",
            self.method, self.target, self.minor_version
        )
    }
}

/// Fuzz entry point: parse; if it parsed, the request line re-parses to
/// the same value.
#[doc(hidden)]
pub fn fuzz_http(data: &[u8]) {
    if let Ok(Some((head, used))) = RequestHead::parse(data) {
        assert!(used <= data.len() && used <= MAX_HEAD_LEN);
        let again = format!("{}\r\n", head.to_line());
        let (reparsed, _) = RequestHead::parse(again.as_bytes())
            .expect("a parsed head re-parses")
            .expect("complete");
        assert_eq!(reparsed, head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_scrape_request_parses() {
        let req = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\nrest";
        let (head, used) = RequestHead::parse(req).unwrap().unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.path(), "/metrics");
        assert_eq!(head.minor_version, 1);
        assert_eq!(&req[used..], b"rest");
    }

    #[test]
    fn incomplete_too_long_and_malformed_heads() {
        assert_eq!(RequestHead::parse(b"GET /metrics HTTP/1.1\r\n"), Ok(None));
        let long = vec![b'a'; MAX_HEAD_LEN];
        assert_eq!(RequestHead::parse(&long), Err(HttpError::TooLong));
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2\r\n\r\n",
            b"G(T /metrics HTTP/1.1\r\n\r\n",
            b"GET /m\x01 HTTP/1.1\r\n\r\n",
            b"\xff /metrics HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                RequestHead::parse(bad),
                Err(HttpError::Malformed),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            fuzz_http(&data);
        }

        #[test]
        fn request_lines_round_trip(
            method in "[A-Z]{1,8}",
            target in "/[!-~]{0,40}",
            minor in 0u8..2,
        ) {
            let text = format!("{method} {target} HTTP/1.{minor}\r\nHost: x\r\n\r\n");
            let (head, used) = RequestHead::parse(text.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(used, text.len());
            prop_assert_eq!(head.method, method.as_str());
            prop_assert_eq!(head.target, target.as_str());
            prop_assert_eq!(head.minor_version, minor);
            fuzz_http(text.as_bytes());
        }
    }
}
