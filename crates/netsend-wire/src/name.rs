//! NetBIOS names: the 16-byte name, its first-level encoding (RFC 1001 §14.1) and
//! the second-level wire form with scope labels and label pointers (RFC 1002 §4.1).
//!
//! Pointers are accepted on input (registrations use `C0 0C`) but never written:
//! nbtscan reads answer names as a fixed 34-byte field.

use std::fmt;

use crate::error::{DecodeError, EncodeError, NameError};
use crate::oem::CodePage;
use crate::reader::Reader;

/// Bytes of a name before the suffix.
pub const NAME_LEN: usize = 15;
/// Length of the first-level encoded name (16 bytes, two letters each).
pub const ENCODED_LEN: usize = 32;
/// Length of an unscoped second-level name on the wire: length byte, 32 letters, root.
pub const WIRE_NAME_LEN: usize = ENCODED_LEN + 2;
/// Largest wire name, scope included (RFC 1002 follows DNS here).
pub const MAX_WIRE_NAME_LEN: usize = 255;
/// Label pointers followed before a name is refused (Samba stops at 10 as well).
pub const MAX_POINTER_HOPS: usize = 10;

/// Characters that may not appear in a NetBIOS name typed by a user.
const ILLEGAL_CHARS: &[char] = &[
    '\\', '/', ':', '*', '?', '"', '<', '>', '|', '.', '+', '=', ';', ',', '[', ']',
];

/// Well-known suffix ("type") bytes.
pub mod suffix {
    /// Workstation service / computer name, and the workgroup group name.
    pub const WORKSTATION: u8 = 0x00;
    /// Messenger service: every message alias.
    pub const MESSENGER: u8 = 0x03;
    /// File server service.
    pub const SERVER: u8 = 0x20;
    /// Browser election group name.
    pub const BROWSER_ELECTION: u8 = 0x1E;
    /// Local master browser.
    pub const MASTER_BROWSER: u8 = 0x1D;
}

/// A 16-byte NetBIOS name: 15 OEM bytes (upper case, space padded; `*` is NUL
/// padded) and a suffix byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetbiosName {
    bytes: [u8; 16],
}

impl NetbiosName {
    /// The wildcard name `*<00>` used by node status requests.
    pub const WILDCARD: Self = {
        let mut bytes = [0u8; 16];
        bytes[0] = b'*';
        Self { bytes }
    };

    /// Builds a name from text typed by a person or an API caller: validated,
    /// converted to the OEM code page, upper-cased and padded.
    pub fn new(text: &str, suffix: u8) -> Result<Self, NameError> {
        Self::with_code_page(text, suffix, CodePage::default())
    }

    /// Like [`NetbiosName::new`] with an explicit code page.
    pub fn with_code_page(text: &str, suffix: u8, code_page: CodePage) -> Result<Self, NameError> {
        let trimmed = text.trim_end_matches(' ');
        if trimmed.trim().is_empty() {
            return Err(NameError::Empty);
        }
        if trimmed == "*" {
            let mut name = Self::WILDCARD;
            name.bytes[15] = suffix;
            return Ok(name);
        }
        if let Some(c) = trimmed
            .chars()
            .find(|c| c.is_control() || ILLEGAL_CHARS.contains(c))
        {
            return Err(NameError::IllegalChar(c));
        }
        let upper = trimmed.to_uppercase();
        let oem = code_page.encode(&upper).map_err(NameError::NotOem)?;
        if oem.len() > NAME_LEN {
            return Err(NameError::TooLong { len: oem.len() });
        }
        let mut bytes = [b' '; 16];
        bytes[..oem.len()].copy_from_slice(&oem);
        bytes[15] = suffix;
        Ok(Self { bytes })
    }

    /// Builds a name from a name field found on the wire (SMB originator or
    /// destination, mailslot From/To): upper-cased, cut or padded to 15 bytes, as
    /// MS-MSRP's `CompareName` does. Never fails.
    pub fn from_oem_lossy(oem: &[u8], suffix: u8) -> Self {
        let mut bytes = [b' '; 16];
        for (dst, &src) in bytes.iter_mut().zip(oem.iter().take(NAME_LEN)) {
            *dst = if src == 0 {
                b' '
            } else {
                src.to_ascii_uppercase()
            };
        }
        bytes[15] = suffix;
        Self { bytes }
    }

    /// Builds a name from its 16 raw bytes, exactly as they are.
    pub const fn from_raw(bytes: [u8; 16]) -> Self {
        Self { bytes }
    }

    /// The 16 raw bytes (15 name bytes + suffix).
    pub const fn as_raw(&self) -> &[u8; 16] {
        &self.bytes
    }

    /// The 15 name bytes, padding included.
    pub fn padded(&self) -> &[u8] {
        &self.bytes[..NAME_LEN]
    }

    /// The name bytes without trailing spaces or NULs.
    pub fn trimmed(&self) -> &[u8] {
        let end = self.bytes[..NAME_LEN]
            .iter()
            .rposition(|&b| b != b' ' && b != 0)
            .map_or(0, |i| i + 1);
        &self.bytes[..end]
    }

    /// The suffix (type) byte.
    pub const fn suffix(&self) -> u8 {
        self.bytes[15]
    }

    /// The same name with another suffix.
    pub const fn with_suffix(mut self, suffix: u8) -> Self {
        self.bytes[15] = suffix;
        self
    }

    /// Whether this is `*` (the wildcard), whatever its suffix.
    pub fn is_wildcard(&self) -> bool {
        self.bytes[0] == b'*' && self.bytes[1..NAME_LEN].iter().all(|&b| b == 0)
    }

    /// The name as text in `code_page`, trailing padding removed.
    pub fn to_text(&self, code_page: CodePage) -> String {
        code_page.decode(self.trimmed())
    }

    /// First-level encoding: each byte becomes `'A' + high nibble`, `'A' + low nibble`.
    pub fn encode_first_level(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        for (pair, &b) in out.chunks_exact_mut(2).zip(self.bytes.iter()) {
            pair[0] = b'A' + (b >> 4);
            pair[1] = b'A' + (b & 0x0F);
        }
        out
    }

    /// Reverses [`NetbiosName::encode_first_level`]; every byte must be `A`..=`P`.
    pub fn decode_first_level(encoded: &[u8; ENCODED_LEN]) -> Result<Self, DecodeError> {
        let mut bytes = [0u8; 16];
        for (dst, pair) in bytes.iter_mut().zip(encoded.chunks_exact(2)) {
            let nibble = |c: u8| match c {
                b'A'..=b'P' => Ok(c - b'A'),
                _ => Err(DecodeError::malformed("netbios name", "byte outside A..P")),
            };
            *dst = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(Self { bytes })
    }
}

impl fmt::Display for NetbiosName {
    /// `NAME<03>`, with non-printable bytes escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.trimmed() {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        write!(f, "<{:02x}>", self.suffix())
    }
}

impl fmt::Debug for NetbiosName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A name as carried in name and datagram service packets: the NetBIOS name plus
/// its NetBIOS scope (dot-separated labels, empty for none).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct WireName {
    /// The 16-byte NetBIOS name.
    pub name: NetbiosName,
    /// The scope labels joined by dots, as bytes; empty when there is no scope.
    pub scope: Vec<u8>,
}

impl WireName {
    /// A name without scope.
    pub const fn new(name: NetbiosName) -> Self {
        Self {
            name,
            scope: Vec::new(),
        }
    }

    /// Bytes this name takes when emitted (never compressed).
    pub fn buffer_len(&self) -> usize {
        if self.scope.is_empty() {
            WIRE_NAME_LEN
        } else {
            WIRE_NAME_LEN + 1 + self.scope.len()
        }
    }

    /// Reads a name at the reader's position, following label pointers backwards
    /// within the reader's whole buffer. The reader ends after the name's last byte
    /// in place (after the pointer, when one was used).
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let message = r.buffer();
        let mut pos = r.position();
        let mut resume_at: Option<usize> = None;
        let mut hops = 0;
        // Each pointer must point before the place the previous one led to, so a
        // pointer can never revisit a byte.
        let mut floor = usize::MAX;
        let mut labels: Vec<&[u8]> = Vec::new();
        let mut total = 0usize;
        loop {
            let len = *message.get(pos).ok_or(DecodeError::Truncated {
                field: "name label",
            })?;
            match len & 0xC0 {
                0x00 => {
                    let len = usize::from(len);
                    if len == 0 {
                        pos += 1;
                        break;
                    }
                    let label =
                        message
                            .get(pos + 1..pos + 1 + len)
                            .ok_or(DecodeError::Truncated {
                                field: "name label",
                            })?;
                    total += len + 1;
                    if total + 1 > MAX_WIRE_NAME_LEN {
                        return Err(DecodeError::TooLong {
                            field: "netbios name",
                            len: total + 1,
                            max: MAX_WIRE_NAME_LEN,
                        });
                    }
                    labels.push(label);
                    pos += 1 + len;
                }
                0xC0 => {
                    let low = *message.get(pos + 1).ok_or(DecodeError::Truncated {
                        field: "label pointer",
                    })?;
                    let target = usize::from(u16::from_be_bytes([len & 0x3F, low]));
                    if target >= pos.min(floor) {
                        return Err(DecodeError::malformed(
                            "label pointer",
                            "does not point backwards",
                        ));
                    }
                    hops += 1;
                    if hops > MAX_POINTER_HOPS {
                        return Err(DecodeError::malformed("label pointer", "too many hops"));
                    }
                    resume_at.get_or_insert(pos + 2);
                    floor = target;
                    pos = target;
                }
                _ => return Err(DecodeError::malformed("name label", "reserved label type")),
            }
        }
        r.seek(resume_at.unwrap_or(pos), "netbios name")?;
        let (first, scope) = labels
            .split_first()
            .ok_or(DecodeError::malformed("netbios name", "empty name"))?;
        let encoded: &[u8; ENCODED_LEN] = (*first)
            .try_into()
            .map_err(|_| DecodeError::malformed("netbios name", "first label is not 32 bytes"))?;
        let name = NetbiosName::decode_first_level(encoded)?;
        if scope.iter().any(|l| l.len() > 63 || l.contains(&b'.')) {
            return Err(DecodeError::malformed(
                "netbios scope",
                "labels are 1..=63 bytes without dots",
            ));
        }
        Ok(Self {
            name,
            scope: scope.join(&b'.'),
        })
    }

    /// Reads a name where label pointers are not allowed (datagram and session
    /// service names are always written in full).
    pub fn read_uncompressed(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.position();
        let name = Self::read(r)?;
        if r.position() - start != name.buffer_len() {
            return Err(DecodeError::malformed(
                "netbios name",
                "label pointers are not allowed here",
            ));
        }
        Ok(name)
    }

    /// Writes the name uncompressed.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.buffer_len() > MAX_WIRE_NAME_LEN {
            return Err(EncodeError::TooLong {
                field: "netbios scope",
                len: self.buffer_len(),
                max: MAX_WIRE_NAME_LEN,
            });
        }
        out.push(ENCODED_LEN as u8);
        out.extend_from_slice(&self.name.encode_first_level());
        if !self.scope.is_empty() {
            for label in self.scope.split(|&b| b == b'.') {
                if label.is_empty() || label.len() > 63 {
                    return Err(EncodeError::Unencodable {
                        field: "netbios scope",
                        reason: "labels must be 1..=63 bytes",
                    });
                }
                out.push(label.len() as u8);
                out.extend_from_slice(label);
            }
        }
        out.push(0);
        Ok(())
    }
}

impl From<NetbiosName> for WireName {
    fn from(name: NetbiosName) -> Self {
        Self::new(name)
    }
}

impl fmt::Display for WireName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.scope.is_empty() {
            write!(f, ".{}", String::from_utf8_lossy(&self.scope))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(text: &str, suffix: u8) -> String {
        let name = NetbiosName::new(text, suffix).unwrap();
        String::from_utf8(name.encode_first_level().to_vec()).unwrap()
    }

    #[test]
    fn first_level_vectors_from_the_digest() {
        assert_eq!(enc("ALICE", 3), "EBEMEJEDEFCACACACACACACACACACAAD");
        assert_eq!(enc("bob", 0), "ECEPECCACACACACACACACACACACACAAA");
        assert_eq!(enc("WORKGROUP", 0), "FHEPFCELEHFCEPFFFACACACACACACAAA");
        assert_eq!(enc("*", 0), "CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn validation_errors() {
        assert_eq!(NetbiosName::new("", 3), Err(NameError::Empty));
        assert_eq!(NetbiosName::new("   ", 3), Err(NameError::Empty));
        assert_eq!(
            NetbiosName::new("ABCDEFGHIJKLMNOP", 3),
            Err(NameError::TooLong { len: 16 })
        );
        assert_eq!(NetbiosName::new("a*b", 3), Err(NameError::IllegalChar('*')));
        assert_eq!(
            NetbiosName::new("a\u{7}", 3),
            Err(NameError::IllegalChar('\u{7}'))
        );
        assert_eq!(NetbiosName::new("€uro", 3), Err(NameError::NotOem('€')));
        assert_eq!(
            NetbiosName::new("jürgen", 3).unwrap().trimmed(),
            &[b'J', 0x9A, b'R', b'G', b'E', b'N']
        );
    }

    #[test]
    fn reads_pointers_backwards_only() {
        let name = WireName::new(NetbiosName::new("ALICE", 3).unwrap());
        let mut msg = vec![0u8; 12];
        name.emit(&mut msg).unwrap();
        msg.extend_from_slice(&[0xC0, 0x0C, 0xAA]);
        let mut r = Reader::new(&msg);
        r.seek(12, "t").unwrap();
        assert_eq!(WireName::read(&mut r).unwrap(), name);
        assert_eq!(r.position(), 46);
        assert_eq!(WireName::read(&mut r).unwrap(), name);
        assert_eq!(r.position(), 48);
        // A pointer to itself or forwards is refused.
        let mut r = Reader::new(&[0xC0, 0x00]);
        assert!(WireName::read(&mut r).is_err());
    }

    #[test]
    fn scope_labels_with_dots_or_too_long_are_refused() {
        let mut wire = vec![32u8];
        wire.extend_from_slice(&NetbiosName::new("HOST", 0).unwrap().encode_first_level());
        let mut dotted = wire.clone();
        dotted.extend_from_slice(&[3, b'a', b'.', b'b', 0]);
        assert!(WireName::read(&mut Reader::new(&dotted)).is_err());
        let mut long = wire;
        long.push(0x3F + 1);
        long.extend_from_slice(&[b'x'; 64]);
        long.push(0);
        assert!(WireName::read(&mut Reader::new(&long)).is_err());
    }

    #[test]
    fn scope_round_trips() {
        let name = WireName {
            name: NetbiosName::new("HOST", 0).unwrap(),
            scope: b"corp.example".to_vec(),
        };
        let mut out = Vec::new();
        name.emit(&mut out).unwrap();
        assert_eq!(out.len(), name.buffer_len());
        assert_eq!(WireName::read(&mut Reader::new(&out)).unwrap(), name);
    }
}
