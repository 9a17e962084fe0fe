//! The payload one site gateway publishes for another over the NATS
//! backbone: a directed message with its id, origin and times.
//!
//! A directed message, version 1, big-endian (receipts: [`SiteReceipt`]):
//!
//! ```text
//! u8  version (1)
//! u16 length + bytes  msg_id       (ASCII 0x21..=0x7E, 1..=MAX_ID_LEN)
//! u16 length + bytes  origin site  (ASCII 0x21..=0x7E, 1..=MAX_SITE_LEN)
//! u16 length + bytes  from         (UTF-8, 1..=MAX_NAME_LEN)
//! u16 length + bytes  to           (UTF-8, 1..=MAX_NAME_LEN)
//! u16 length + bytes  text         (UTF-8, 0..=MAX_TEXT_LEN)
//! u64 received        (ms since the Unix epoch, at the origin gateway)
//! u32 sender address  (IPv4 of the host that sent it at its site)
//! ```
//!
//! Names and text travel as UTF-8 (the origin decoded them from its code
//! page); the receiving site encodes them with its own, like any send. No
//! length a peer writes allocates beyond its bound; nothing may follow.

use std::net::Ipv4Addr;

use crate::error::{DecodeError, EncodeError};
use crate::reader::Reader;

/// The version this module writes and reads.
pub const VERSION: u8 = 1;
/// Longest message id, bytes.
pub const MAX_ID_LEN: usize = 96;
/// Longest origin site name, bytes.
pub const MAX_SITE_LEN: usize = 32;
/// Longest sender or recipient name, bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 64;
/// Longest text, bytes of UTF-8.
pub const MAX_TEXT_LEN: usize = 16 * 1024;

/// A directed message carried between sites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteMessage {
    /// The id stable across retries (JetStream's `Nats-Msg-Id`).
    pub msg_id: String,
    /// The site it was sent at.
    pub origin: String,
    /// The sender's name as it claimed it.
    pub from: String,
    /// The recipient name.
    pub to: String,
    /// The text.
    pub text: String,
    /// When the origin gateway received it, ms since the Unix epoch.
    pub received_ms: u64,
    /// The sending host's address at its site.
    pub sender: Ipv4Addr,
}

fn token(bytes: &[u8], field: &'static str) -> Result<String, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::malformed(field, "empty"));
    }
    if !bytes.iter().all(|b| (0x21..=0x7E).contains(b)) {
        return Err(DecodeError::malformed(field, "not printable ASCII"));
    }
    Ok(bytes.iter().map(|&b| char::from(b)).collect())
}

fn ascii(s: &str, name: &'static str) -> Result<(), EncodeError> {
    if s.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
        Ok(())
    } else {
        Err(EncodeError::Unencodable {
            field: name,
            reason: "not printable ASCII",
        })
    }
}

fn utf8(bytes: &[u8], field: &'static str) -> Result<String, DecodeError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| DecodeError::malformed(field, "not UTF-8"))
}

fn field<'a>(r: &mut Reader<'a>, max: usize, name: &'static str) -> Result<&'a [u8], DecodeError> {
    let len = usize::from(r.u16_be(name)?);
    if len > max {
        return Err(DecodeError::TooLong {
            field: name,
            len,
            max,
        });
    }
    r.take(len, name)
}

fn put(
    out: &mut Vec<u8>,
    bytes: &[u8],
    min: usize,
    max: usize,
    name: &'static str,
) -> Result<(), EncodeError> {
    if bytes.len() > max {
        return Err(EncodeError::TooLong {
            field: name,
            len: bytes.len(),
            max,
        });
    }
    if bytes.len() < min {
        return Err(EncodeError::Unencodable {
            field: name,
            reason: "empty",
        });
    }
    let len = u16::try_from(bytes.len()).map_err(|_| EncodeError::TooLong {
        field: name,
        len: bytes.len(),
        max,
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

impl SiteMessage {
    /// Reads a payload; never panics, and refuses other versions, fields
    /// past their bounds, bad text and trailing bytes.
    pub fn parse(data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(DecodeError::malformed("version", "unknown version"));
        }
        let msg_id = token(field(&mut r, MAX_ID_LEN, "msg_id")?, "msg_id")?;
        let origin = token(field(&mut r, MAX_SITE_LEN, "origin")?, "origin")?;
        let from = utf8(field(&mut r, MAX_NAME_LEN, "from")?, "from")?;
        let to = utf8(field(&mut r, MAX_NAME_LEN, "to")?, "to")?;
        if from.is_empty() || to.is_empty() {
            return Err(DecodeError::malformed("names", "empty"));
        }
        let text = utf8(field(&mut r, MAX_TEXT_LEN, "text")?, "text")?;
        let high = u64::from(r.u32_be("received")?);
        let low = u64::from(r.u32_be("received")?);
        let sender = Ipv4Addr::from(r.u32_be("sender")?);
        r.finish("site message")?;
        Ok(Self {
            msg_id,
            origin,
            from,
            to,
            text,
            received_ms: (high << 32) | low,
            sender,
        })
    }

    /// Writes the payload; fails on a field past its bound or an id or
    /// site that is not printable ASCII.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        ascii(&self.msg_id, "msg_id")?;
        ascii(&self.origin, "origin")?;
        let mut out = Vec::with_capacity(32 + self.text.len());
        out.push(VERSION);
        put(&mut out, self.msg_id.as_bytes(), 1, MAX_ID_LEN, "msg_id")?;
        put(&mut out, self.origin.as_bytes(), 1, MAX_SITE_LEN, "origin")?;
        put(&mut out, self.from.as_bytes(), 1, MAX_NAME_LEN, "from")?;
        put(&mut out, self.to.as_bytes(), 1, MAX_NAME_LEN, "to")?;
        put(&mut out, self.text.as_bytes(), 0, MAX_TEXT_LEN, "text")?;
        out.extend_from_slice(&self.received_ms.to_be_bytes());
        out.extend_from_slice(&u32::from(self.sender).to_be_bytes());
        Ok(out)
    }
}

/// A receipt for a message another site gave up (the name is not there),
/// published back to the message's origin site:
///
/// ```text
/// u8  version (1)
/// u16 length + bytes  msg_id     (of the message, ASCII 0x21..=0x7E)
/// u16 length + bytes  site       (that gave up, ASCII 0x21..=0x7E)
/// u16 length + bytes  from       (the message's sender, UTF-8)
/// u16 length + bytes  to         (the message's recipient, UTF-8)
/// u32 status                     (the NERR code, e.g. 2273)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteReceipt {
    /// The message's id.
    pub msg_id: String,
    /// The site that gave the message up.
    pub site: String,
    /// The message's sender, at the origin site.
    pub from: String,
    /// The message's recipient.
    pub to: String,
    /// Why: the NERR code.
    pub status: u32,
}

impl SiteReceipt {
    /// Reads a receipt; never panics, and refuses what
    /// [`SiteMessage::parse`] would refuse for the same fields.
    pub fn parse(data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        if r.u8("version")? != VERSION {
            return Err(DecodeError::malformed("version", "unknown version"));
        }
        let msg_id = token(field(&mut r, MAX_ID_LEN, "msg_id")?, "msg_id")?;
        let site = token(field(&mut r, MAX_SITE_LEN, "site")?, "site")?;
        let from = utf8(field(&mut r, MAX_NAME_LEN, "from")?, "from")?;
        let to = utf8(field(&mut r, MAX_NAME_LEN, "to")?, "to")?;
        if from.is_empty() || to.is_empty() {
            return Err(DecodeError::malformed("names", "empty"));
        }
        let status = r.u32_be("status")?;
        r.finish("site receipt")?;
        Ok(Self {
            msg_id,
            site,
            from,
            to,
            status,
        })
    }

    /// Writes the receipt.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        ascii(&self.msg_id, "msg_id")?;
        ascii(&self.site, "site")?;
        let mut out = vec![VERSION];
        put(&mut out, self.msg_id.as_bytes(), 1, MAX_ID_LEN, "msg_id")?;
        put(&mut out, self.site.as_bytes(), 1, MAX_SITE_LEN, "site")?;
        put(&mut out, self.from.as_bytes(), 1, MAX_NAME_LEN, "from")?;
        put(&mut out, self.to.as_bytes(), 1, MAX_NAME_LEN, "to")?;
        out.extend_from_slice(&self.status.to_be_bytes());
        Ok(out)
    }
}

/// Fuzz entry: a payload parses (as a message and as a receipt) without
/// panicking, and what parsed re-encodes to the same bytes.
pub fn fuzz_site(data: &[u8]) {
    if let Ok(message) = SiteMessage::parse(data) {
        let bytes = message
            .to_bytes()
            .expect("a parsed site message re-encodes");
        assert_eq!(bytes, data);
        assert_eq!(SiteMessage::parse(&bytes).expect("re-parse"), message);
    }
    if let Ok(receipt) = SiteReceipt::parse(data) {
        let bytes = receipt
            .to_bytes()
            .expect("a parsed site receipt re-encodes");
        assert_eq!(bytes, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> SiteMessage {
        SiteMessage {
            msg_id: "NORTH-0123456789abcdef".into(),
            origin: "NORTH".into(),
            from: "ALICE".into(),
            to: "BOB".into(),
            text: "Grüße aus dem Norden\nzweite Zeile".into(),
            received_ms: 1_764_650_000_123,
            sender: Ipv4Addr::new(192, 0, 2, 10),
        }
    }

    #[test]
    fn a_message_round_trips() {
        let m = sample();
        let bytes = m.to_bytes().unwrap();
        assert_eq!(bytes[0], VERSION);
        assert_eq!(SiteMessage::parse(&bytes).unwrap(), m);
    }

    #[test]
    fn bad_payloads_are_refused() {
        let bytes = sample().to_bytes().unwrap();
        let mut other = bytes.clone();
        other[0] = 2;
        assert!(SiteMessage::parse(&other).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            SiteMessage::parse(&trailing),
            Err(DecodeError::TrailingBytes { .. })
        ));
        for cut in 0..bytes.len() {
            assert!(SiteMessage::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // A length past its bound is refused before anything is read.
        let mut long = vec![VERSION];
        long.extend_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(
            SiteMessage::parse(&long),
            Err(DecodeError::TooLong {
                field: "msg_id",
                ..
            })
        ));
        let mut spaced = sample();
        spaced.msg_id = "NORTH 1".into();
        assert!(spaced.to_bytes().is_err());
        let mut huge = sample();
        huge.text = "x".repeat(MAX_TEXT_LEN + 1);
        assert!(huge.to_bytes().is_err());
        let mut nameless = sample();
        nameless.to = String::new();
        assert!(nameless.to_bytes().is_err());
    }

    #[test]
    fn text_that_is_not_utf8_is_refused() {
        let mut m = sample();
        m.text = "ab".into();
        let mut bytes = m.to_bytes().unwrap();
        let at = bytes.len() - 12 - 2;
        bytes[at] = 0xFF;
        assert!(matches!(
            SiteMessage::parse(&bytes),
            Err(DecodeError::Malformed { field: "text", .. })
        ));
    }

    #[test]
    fn a_receipt_round_trips_and_is_checked() {
        let receipt = SiteReceipt {
            msg_id: "NORTH-q1-00".into(),
            site: "SOUTH".into(),
            from: "ALICE".into(),
            to: "NOBODY".into(),
            status: 2273,
        };
        let bytes = receipt.to_bytes().unwrap();
        assert_eq!(SiteReceipt::parse(&bytes).unwrap(), receipt);
        fuzz_site(&bytes);
        for cut in 0..bytes.len() {
            assert!(SiteReceipt::parse(&bytes[..cut]).is_err());
        }
        let mut trailing = bytes;
        trailing.push(1);
        assert!(SiteReceipt::parse(&trailing).is_err());
    }

    proptest! {
        #[test]
        fn any_valid_receipt_round_trips(
            id in "[!-~]{1,96}",
            site in "[A-Z0-9_-]{1,32}",
            from in "[A-Z]{1,15}",
            to in "[a-z]{1,15}",
            status in any::<u32>(),
        ) {
            let r = SiteReceipt { msg_id: id, site, from, to, status };
            let bytes = r.to_bytes().unwrap();
            prop_assert_eq!(SiteReceipt::parse(&bytes).unwrap(), r);
        }

        #[test]
        fn any_bytes_parse_without_panicking(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            fuzz_site(&data);
        }

        #[test]
        fn any_valid_message_round_trips(
            id in "[!-~]{1,96}",
            origin in "[A-Z0-9_-]{1,32}",
            from in "\\PC{1,15}",
            to in "\\PC{1,15}",
            text in "\\PC{0,200}",
            received_ms in any::<u64>(),
            sender in any::<u32>(),
        ) {
            let m = SiteMessage { msg_id: id, origin, from, to, text, received_ms, sender: Ipv4Addr::from(sender) };
            match m.to_bytes() {
                Ok(bytes) => {
                    prop_assert_eq!(SiteMessage::parse(&bytes).unwrap(), m);
                    fuzz_site(&bytes);
                }
                // A generated name may be more than MAX_NAME_LEN bytes of UTF-8.
                Err(_) => prop_assert!(m.from.len() > MAX_NAME_LEN || m.to.len() > MAX_NAME_LEN),
            }
        }
    }
}
