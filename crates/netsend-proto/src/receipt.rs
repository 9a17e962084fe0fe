//! Receipts between netsend hosts: when a directed message was first shown to
//! its reader and first read, the receiving host tells the sending host with
//! a small datagram on its own mailslot, `\MAILSLOT\NETSEND\RECEIPT` (other
//! messengers ignore unknown mailslots). The sender matches it to what it
//! sent by recipient, sender and a digest of the text. Sans IO.
//!
//! Payload (ASCII lines, at most [`MAX_RECEIPT_LEN`] bytes):
//! `NSRCPT1`, the state (`shown` or `read`), the time (Unix ms), the digest
//! (32 hex digits), the recipient name, the sender name.

use std::net::Ipv4Addr;

use netsend_wire::nbds::{flags, Datagram, Header, MessageType};
use netsend_wire::smb::mailslot::MailslotWrite;
use netsend_wire::NetbiosName;
use sha2::{Digest as _, Sha256};

/// The mailslot receipts are written to.
pub const RECEIPT_MAILSLOT: &[u8] = b"\\MAILSLOT\\NETSEND\\RECEIPT";
/// Largest receipt payload.
pub const MAX_RECEIPT_LEN: usize = 256;
const MAGIC: &str = "NSRCPT1";

/// What happened to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptState {
    /// Shown on a terminal or a desktop.
    Shown,
    /// Read with `netsend inbox read`.
    Read,
}

impl ReceiptState {
    /// The word on the wire and in the CLI.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Shown => "shown",
            Self::Read => "read",
        }
    }
}

/// One receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// What happened.
    pub state: ReceiptState,
    /// When, Unix ms (the receiving host's clock).
    pub at_ms: i64,
    /// [`digest`] of the text.
    pub digest: String,
    /// The recipient name, as stored.
    pub to: String,
    /// The sender name, as stored.
    pub from: String,
}

/// Why a receipt payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad receipt: {0}")]
pub struct BadReceipt(&'static str);

/// A digest of a message's text that both hosts compute alike: line breaks
/// made `\n` (as the receiver stores them) and trailing ones dropped.
pub fn digest(text: &str) -> String {
    let normal = netsend_wire::oem::normalize_line_breaks(text);
    let hash = Sha256::digest(normal.trim_end_matches('\n').as_bytes());
    hash[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl Receipt {
    /// The payload.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BadReceipt> {
        let clean = |s: &str| !s.is_empty() && s.len() <= 64 && !s.chars().any(char::is_control);
        if !clean(&self.to) || !clean(&self.from) || self.digest.len() != 32 {
            return Err(BadReceipt("field"));
        }
        let text = format!(
            "{MAGIC}\n{}\n{}\n{}\n{}\n{}",
            self.state.as_str(),
            self.at_ms,
            self.digest,
            self.to,
            self.from
        );
        if text.len() > MAX_RECEIPT_LEN {
            return Err(BadReceipt("too long"));
        }
        Ok(text.into_bytes())
    }

    /// Parses a payload.
    pub fn parse(bytes: &[u8]) -> Result<Self, BadReceipt> {
        if bytes.len() > MAX_RECEIPT_LEN {
            return Err(BadReceipt("too long"));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| BadReceipt("not UTF-8"))?;
        let mut lines = text.split('\n');
        let mut next = |what| {
            lines
                .next()
                .filter(|l| !l.is_empty())
                .ok_or(BadReceipt(what))
        };
        if next("magic")? != MAGIC {
            return Err(BadReceipt("magic"));
        }
        let state = match next("state")? {
            "shown" => ReceiptState::Shown,
            "read" => ReceiptState::Read,
            _ => return Err(BadReceipt("state")),
        };
        let at_ms = next("time")?.parse().map_err(|_| BadReceipt("time"))?;
        let digest = next("digest")?;
        if digest.len() != 32 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BadReceipt("digest"));
        }
        let receipt = Self {
            state,
            at_ms,
            digest: digest.to_owned(),
            to: next("to")?.to_owned(),
            from: next("from")?.to_owned(),
        };
        if lines.next().is_some() {
            return Err(BadReceipt("trailing data"));
        }
        // Only the one way of writing each receipt is accepted.
        if receipt.to_bytes()? != bytes {
            return Err(BadReceipt("not canonical"));
        }
        Ok(receipt)
    }
}

/// The receipt a datagram carries, if it is one (a unique datagram writing
/// to [`RECEIPT_MAILSLOT`]).
pub fn from_datagram(bytes: &[u8]) -> Option<Receipt> {
    let Ok(Datagram::Data {
        header,
        packet_offset: 0,
        user_data,
        ..
    }) = Datagram::parse(bytes)
    else {
        return None;
    };
    if header.msg_type != MessageType::DIRECT_UNIQUE || header.flags & flags::MORE != 0 {
        return None;
    }
    let write = MailslotWrite::parse(&user_data).ok()?;
    if !write.name.eq_ignore_ascii_case(RECEIPT_MAILSLOT) {
        return None;
    }
    Receipt::parse(&write.data).ok()
}

/// A datagram carrying `receipt` from `source` (our computer name, with our
/// address and datagram port) to the sender's host.
pub fn to_datagram(
    receipt: &Receipt,
    source: NetbiosName,
    source_ip: Ipv4Addr,
    source_port: u16,
    id: u16,
) -> Result<Vec<u8>, BadReceipt> {
    let write = MailslotWrite {
        name: RECEIPT_MAILSLOT.to_vec(),
        ..MailslotWrite::messenger(receipt.to_bytes()?)
    };
    let user_data = write.to_bytes().map_err(|_| BadReceipt("mailslot"))?;
    Datagram::Data {
        header: Header {
            msg_type: MessageType::DIRECT_UNIQUE,
            flags: flags::FIRST | flags::NODE_H,
            id,
            source_ip,
            source_port,
        },
        packet_offset: 0,
        source_name: source.into(),
        destination_name: NetbiosName::WILDCARD.into(),
        user_data,
    }
    .to_bytes()
    .map_err(|_| BadReceipt("datagram"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_digest_ignores_line_break_style() {
        let r = Receipt {
            state: ReceiptState::Read,
            at_ms: 1_764_000_000_000,
            digest: digest("line one\r\nline two\r\n"),
            to: "BOB".into(),
            from: "alice".into(),
        };
        assert_eq!(Receipt::parse(&r.to_bytes().unwrap()).unwrap(), r);
        assert_eq!(r.digest, digest("line one\nline two"));
        assert_ne!(r.digest, digest("line one\nline 2"));
        assert!(Receipt::parse(b"NSRCPT1\nread\n1\nxyz\nBOB\nalice").is_err());
        let source = NetbiosName::new("HOSTB", 0).unwrap();
        let bytes = to_datagram(&r, source, Ipv4Addr::new(192, 0, 2, 2), 138, 9).unwrap();
        assert_eq!(from_datagram(&bytes), Some(r));
        // A MESSNGR datagram is no receipt.
        assert_eq!(from_datagram(&bytes[..bytes.len() - 1]), None);
        assert!(
            Receipt::parse(b"NSRCPT1\nseen\n1\n00000000000000000000000000000000\nB\na").is_err()
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Receipt::parse(&bytes);
        }
    }
}
