//! A checked cursor over input bytes.
//!
//! Every parser in this crate reads through [`Reader`]: it never indexes a slice
//! directly, so running out of bytes is an error value, never a panic.

use crate::error::DecodeError;

/// A cursor over a byte slice whose reads fail with [`DecodeError::Truncated`]
/// instead of panicking.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The whole underlying buffer (for label pointers, which count from the start).
    pub const fn buffer(&self) -> &'a [u8] {
        self.buf
    }

    /// Offset of the next byte to be read.
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// Number of bytes not yet read.
    pub const fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Moves the cursor to an absolute offset within the buffer.
    pub fn seek(&mut self, pos: usize, field: &'static str) -> Result<(), DecodeError> {
        if pos > self.buf.len() {
            return Err(DecodeError::Truncated { field });
        }
        self.pos = pos;
        Ok(())
    }

    /// Takes the next `len` bytes.
    pub fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let rest = &self.buf[self.pos..];
        let (head, _) = rest
            .split_at_checked(len)
            .ok_or(DecodeError::Truncated { field })?;
        self.pos += len;
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Takes the next `len` bytes as a reader of their own.
    pub fn sub(&mut self, len: usize, field: &'static str) -> Result<Self, DecodeError> {
        self.take(len, field).map(Self::new)
    }

    /// Takes everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        self.pos = self.buf.len();
        rest
    }

    /// Reads one byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Reads a big-endian `u16` (NetBIOS headers).
    pub fn u16_be(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    /// Reads a little-endian `u16` (SMB).
    pub fn u16_le(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_le_bytes)
    }

    /// Reads a big-endian `u32`.
    pub fn u32_be(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    /// Reads a little-endian `u32`.
    pub fn u32_le(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_le_bytes)
    }

    /// Reads a NUL-terminated byte string of at most `max` bytes (NUL excluded) and
    /// consumes the NUL.
    pub fn cstring(&mut self, max: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let rest = &self.buf[self.pos..];
        let window = &rest[..rest.len().min(max + 1)];
        match window.iter().position(|&b| b == 0) {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None if rest.len() > max => Err(DecodeError::TooLong {
                field,
                len: rest.len(),
                max,
            }),
            None => Err(DecodeError::Truncated { field }),
        }
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless every byte was read.
    pub fn finish(&self, field: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { field, count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_runs_out_cleanly() {
        let mut r = Reader::new(&[0x12, 0x34, 0x56]);
        assert_eq!(r.u16_be("a").unwrap(), 0x1234);
        assert_eq!(r.u16_le("b"), Err(DecodeError::Truncated { field: "b" }));
        assert_eq!(r.u8("c").unwrap(), 0x56);
        r.finish("x").unwrap();
    }

    #[test]
    fn cstring_is_bounded() {
        let mut r = Reader::new(b"abc\0rest");
        assert_eq!(r.cstring(3, "s").unwrap(), b"abc");
        assert_eq!(r.rest(), b"rest");
        let mut r = Reader::new(b"abcdef");
        assert!(matches!(
            r.cstring(3, "s"),
            Err(DecodeError::TooLong { .. })
        ));
        let mut r = Reader::new(b"ab");
        assert!(matches!(
            r.cstring(3, "s"),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
