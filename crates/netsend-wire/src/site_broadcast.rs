//! The payload of a broadcast carried between sites: a `*` or
//! `/DOMAIN[:NAME]` message heard at one site, published by its gateway on
//! the backbone (NATS JetStream, subject `netsend.bcast.<DOMAIN>`) and
//! re-broadcast by the gateways of the other sites.
//!
//! Layout (big-endian): `NSBC`, version `1`, the origin site (length byte,
//! 1–[`MAX_SITE_LEN`] of `A–Z 0–9 - _`), the originating host's IPv4
//! address, the time it was heard (Unix ms, 8 bytes), the domain name and
//! the source computer name (16 raw NetBIOS bytes each), the sender (length
//! byte, UTF-8, at most [`MAX_FROM_LEN`]) and the text (2-byte length, UTF-8,
//! at most [`MAX_TEXT_LEN`]). Nothing may follow.

use std::net::Ipv4Addr;

use crate::error::{DecodeError, EncodeError};
use crate::name::NetbiosName;
use crate::reader::Reader;

const MAGIC: &[u8; 4] = b"NSBC";
const VERSION: u8 = 1;
/// Longest site name.
pub const MAX_SITE_LEN: usize = 32;
/// Longest sender name, in UTF-8 bytes.
pub const MAX_FROM_LEN: usize = 128;
/// Longest text, in UTF-8 bytes (a split broadcast travels one part each).
pub const MAX_TEXT_LEN: usize = 4096;

/// One broadcast between sites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteBroadcast {
    /// The site it was heard at (uppercase `A–Z 0–9 - _`).
    pub site: String,
    /// The originating host, at its own site.
    pub origin: Ipv4Addr,
    /// When the origin site's gateway heard or sent it, Unix ms.
    pub sent_at_ms: u64,
    /// The workgroup or domain it went to, `NAME<00>`.
    pub domain: NetbiosName,
    /// The computer name it came from.
    pub source: NetbiosName,
    /// Who it is from, as shown to recipients.
    pub from: String,
    /// The text.
    pub text: String,
}

/// Whether `site` is a site name this format carries.
pub fn is_site_name(site: &str) -> bool {
    (1..=MAX_SITE_LEN).contains(&site.len())
        && site
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl SiteBroadcast {
    /// Decodes a payload.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        if r.take(4, "magic")? != MAGIC {
            return Err(DecodeError::malformed("magic", "not a site broadcast"));
        }
        if r.u8("version")? != VERSION {
            return Err(DecodeError::malformed("version", "unknown version"));
        }
        let site_len = usize::from(r.u8("site length")?);
        let site = utf8(r.take(site_len, "site")?, "site")?;
        if !is_site_name(&site) {
            return Err(DecodeError::malformed("site", "not a site name"));
        }
        let origin = Ipv4Addr::from(r.array::<4>("origin")?);
        let sent_at_ms = u64::from_be_bytes(r.array::<8>("sent at")?);
        let domain = NetbiosName::from_raw(r.array::<16>("domain")?);
        let source = NetbiosName::from_raw(r.array::<16>("source")?);
        let from_len = usize::from(r.u8("from length")?);
        let from = bounded(&mut r, from_len, MAX_FROM_LEN, "from")?;
        let text_len = usize::from(r.u16_be("text length")?);
        let text = bounded(&mut r, text_len, MAX_TEXT_LEN, "text")?;
        r.finish("site broadcast")?;
        Ok(Self {
            site,
            origin,
            sent_at_ms,
            domain,
            source,
            from,
            text,
        })
    }

    /// Encodes the payload.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        if !is_site_name(&self.site) {
            return Err(EncodeError::Unencodable {
                field: "site",
                reason: "not a site name",
            });
        }
        check_len("from", self.from.len(), MAX_FROM_LEN)?;
        check_len("text", self.text.len(), MAX_TEXT_LEN)?;
        let mut out = Vec::with_capacity(64 + self.from.len() + self.text.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.site.len() as u8);
        out.extend_from_slice(self.site.as_bytes());
        out.extend_from_slice(&self.origin.octets());
        out.extend_from_slice(&self.sent_at_ms.to_be_bytes());
        out.extend_from_slice(self.domain.as_raw());
        out.extend_from_slice(self.source.as_raw());
        out.push(self.from.len() as u8);
        out.extend_from_slice(self.from.as_bytes());
        out.extend_from_slice(&(self.text.len() as u16).to_be_bytes());
        out.extend_from_slice(self.text.as_bytes());
        Ok(out)
    }
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), EncodeError> {
    if len > max {
        return Err(EncodeError::TooLong { field, len, max });
    }
    Ok(())
}

/// Reads `len` bytes of UTF-8 text, refusing a length beyond `max` before
/// it is read.
fn bounded(
    r: &mut Reader<'_>,
    len: usize,
    max: usize,
    field: &'static str,
) -> Result<String, DecodeError> {
    if len > max {
        return Err(DecodeError::TooLong { field, len, max });
    }
    utf8(r.take(len, field)?, field)
}

fn utf8(bytes: &[u8], field: &'static str) -> Result<String, DecodeError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| DecodeError::malformed(field, "not UTF-8"))
}

/// Fuzz entry: a payload that parses re-encodes byte for byte.
#[doc(hidden)]
pub fn fuzz_site_broadcast(data: &[u8]) {
    if let Ok(b) = SiteBroadcast::parse(data) {
        let bytes = b.to_bytes().expect("a parsed site broadcast re-encodes");
        assert_eq!(bytes, data, "site broadcasts re-encode byte for byte");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> SiteBroadcast {
        SiteBroadcast {
            site: "NORTH".into(),
            origin: Ipv4Addr::new(192, 0, 2, 10),
            sent_at_ms: 1_764_000_000_000,
            domain: NetbiosName::new("WORKGROUP", 0).unwrap(),
            source: NetbiosName::new("HOSTA", 0).unwrap(),
            from: "alice".into(),
            text: "fire drill at 3\n".into(),
        }
    }

    #[test]
    fn round_trips_and_refuses_what_it_cannot_carry() {
        let b = sample();
        let bytes = b.to_bytes().unwrap();
        assert_eq!(SiteBroadcast::parse(&bytes).unwrap(), b);
        // Every truncation fails, and so does a trailing byte.
        for cut in 0..bytes.len() {
            assert!(SiteBroadcast::parse(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(SiteBroadcast::parse(&long).is_err());
        for site in ["", "north", "A.B", &"X".repeat(33)] {
            let bad = SiteBroadcast {
                site: site.into(),
                ..sample()
            };
            assert!(bad.to_bytes().is_err(), "{site:?}");
        }
        let big = SiteBroadcast {
            text: "x".repeat(MAX_TEXT_LEN + 1),
            ..sample()
        };
        assert!(big.to_bytes().is_err());
        // A length field beyond the bound is refused before it is read.
        let mut lie = bytes;
        let at = lie.len() - b.text.len() - 2;
        lie[at..at + 2].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(
            SiteBroadcast::parse(&lie),
            Err(DecodeError::TooLong { field: "text", .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            fuzz_site_broadcast(&bytes);
        }

        #[test]
        fn any_broadcast_round_trips(
            site in "[A-Z0-9_-]{1,32}",
            origin in any::<u32>(),
            at in any::<u64>(),
            domain in any::<[u8; 16]>(),
            source in any::<[u8; 16]>(),
            from in "\\PC{0,30}",
            text in "\\PC{0,300}",
        ) {
            let b = SiteBroadcast {
                site,
                origin: Ipv4Addr::from(origin),
                sent_at_ms: at,
                domain: NetbiosName::from_raw(domain),
                source: NetbiosName::from_raw(source),
                from,
                text,
            };
            let bytes = b.to_bytes().unwrap();
            prop_assert_eq!(SiteBroadcast::parse(&bytes).unwrap(), b);
        }
    }
}
