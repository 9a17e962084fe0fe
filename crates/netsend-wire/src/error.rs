//! Error types shared by every codec in this crate.
//!
//! Decoding distinguishes *why* bytes were refused so that the service can pick the
//! protocol's own error reply, and names the field so that a log line points at it.

use thiserror::Error;

/// Why a byte sequence could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before `field` was complete.
    #[error("truncated input: {field} is incomplete")]
    Truncated {
        /// The field being read when the input ran out.
        field: &'static str,
    },
    /// Bytes were left over after the last field of `field`.
    #[error("{count} trailing bytes after {field}")]
    TrailingBytes {
        /// The structure that should have ended.
        field: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A length or count is larger than this implementation accepts.
    #[error("{field} is too long: {len} > {max}")]
    TooLong {
        /// The field whose length was checked.
        field: &'static str,
        /// The length found on the wire.
        len: usize,
        /// The largest length accepted.
        max: usize,
    },
    /// A field holds a value the format does not allow.
    #[error("malformed {field}: {reason}")]
    Malformed {
        /// The offending field.
        field: &'static str,
        /// A short explanation.
        reason: &'static str,
    },
}

impl DecodeError {
    /// Shorthand for [`DecodeError::Malformed`].
    pub const fn malformed(field: &'static str, reason: &'static str) -> Self {
        Self::Malformed { field, reason }
    }
}

/// Why a typed value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A value does not fit in its wire field.
    #[error("{field} is too long to encode: {len} > {max}")]
    TooLong {
        /// The field being written.
        field: &'static str,
        /// The length of the value.
        len: usize,
        /// The largest length the field can carry.
        max: usize,
    },
    /// A value cannot be represented on the wire at all.
    #[error("cannot encode {field}: {reason}")]
    Unencodable {
        /// The field being written.
        field: &'static str,
        /// A short explanation.
        reason: &'static str,
    },
}

/// Why a NetBIOS name typed by a person or an API caller was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty (or only blanks).
    #[error("the name is empty")]
    Empty,
    /// The name is longer than 15 bytes in the OEM code page.
    #[error("the name is {len} bytes long; NetBIOS names hold at most 15")]
    TooLong {
        /// Length in OEM bytes.
        len: usize,
    },
    /// The name contains a character NetBIOS names may not hold.
    #[error("the name contains the character {0:?}, which NetBIOS names may not hold")]
    IllegalChar(char),
    /// The name cannot be written in the OEM code page.
    #[error("the character {0:?} has no equivalent in the OEM code page")]
    NotOem(char),
}
