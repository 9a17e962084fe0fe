//! Sites joined over a NATS JetStream backbone: the validated site name,
//! the subjects a gateway publishes on and consumes from, and the key a
//! NetBIOS name has in the cross-site name directory (a JetStream KV
//! bucket). Pure text rules; the service's `gateway` room drives them.

use std::fmt;

use netsend_wire::name::NetbiosName;

/// Longest site name, in characters.
pub const MAX_SITE_LEN: usize = 32;

/// The subjects the gateways' stream holds: every `netsend.` subject.
pub const STREAM_SUBJECTS: [&str; 1] = ["netsend.>"];

/// Longest domain token in a broadcast subject, in characters.
pub const MAX_DOMAIN_TOKEN_LEN: usize = 64;

/// Why a site name or a directory key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiteError {
    /// Empty or longer than [`MAX_SITE_LEN`].
    #[error("a site name is 1 to {MAX_SITE_LEN} characters")]
    Length,
    /// A character outside A–Z, 0–9, `-` and `_`.
    #[error("a site name holds only A-Z, 0-9, '-' and '_'")]
    Character,
    /// A directory key that is not 32 hex digits.
    #[error("a name key is 32 hex digits")]
    Key,
}

/// A site's name: 1–32 characters of A–Z, 0–9, `-` and `_`, kept in upper
/// case, so it is one NATS subject token and one consumer-name part.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteName(String);

impl SiteName {
    /// Checks `text` and upper-cases it.
    pub fn new(text: &str) -> Result<Self, SiteError> {
        if text.is_empty() || text.len() > MAX_SITE_LEN {
            return Err(SiteError::Length);
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SiteError::Character);
        }
        Ok(Self(text.to_ascii_uppercase()))
    }

    /// The name, upper case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SiteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteName({})", self.0)
    }
}

impl std::str::FromStr for SiteName {
    type Err = SiteError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The subject of directed messages for `site`: `netsend.msg.<SITE>`.
pub fn msg_subject(site: &SiteName) -> String {
    format!("netsend.msg.{site}")
}

/// The subject of delivery receipts for `site` (the origin of the message):
/// `netsend.receipt.<SITE>`.
pub fn receipt_subject(site: &SiteName) -> String {
    format!("netsend.receipt.{site}")
}

/// The subject of broadcasts to `domain`: `netsend.bcast.<DOMAIN>`.
///
/// The domain becomes one NATS token: upper-cased; A–Z, 0–9, `-` and `_`
/// are kept and every other byte (a dot, a space, `*`, `>`, OEM bytes) is
/// written `=XX` in hex, so two different domains never share a subject;
/// the token is cut at [`MAX_DOMAIN_TOKEN_LEN`] characters. An empty
/// domain is the token `=`.
pub fn bcast_subject(domain: &str) -> String {
    let mut token = String::with_capacity(domain.len().min(MAX_DOMAIN_TOKEN_LEN));
    for b in domain.bytes() {
        let piece = if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            char::from(b.to_ascii_uppercase()).to_string()
        } else {
            format!("={b:02X}")
        };
        if token.len() + piece.len() > MAX_DOMAIN_TOKEN_LEN {
            break;
        }
        token.push_str(&piece);
    }
    if token.is_empty() {
        token.push('=');
    }
    format!("netsend.bcast.{token}")
}

/// The dedup id (`Nats-Msg-Id`) of the outgoing queue's entry `queue_id`:
/// the same at every retry and after a restart, and different for another
/// message should the queue's ids start again (a new state directory),
/// as the content is part of it: `<SITE>-q<id>-<16 hex digits of
/// SHA-256(from NUL to NUL text)>`.
pub fn queued_msg_id(site: &SiteName, queue_id: i64, from: &str, to: &str, text: &str) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for part in [from, to, text] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let short: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{site}-q{queue_id}-{short}")
}

/// A fresh dedup id for a message sent once (not from the queue):
/// `<SITE>-<time>-<count>-<random>` in hex, from the caller's clock in
/// nanoseconds, a per-process counter and a random number.
pub fn fresh_msg_id(site: &SiteName, nanos: u64, count: u64, random: u64) -> String {
    format!("{site}-{nanos:x}-{count:x}-{random:016x}")
}

/// The key of `name` in the name directory: the 16 raw bytes (padding and
/// suffix included) as 32 upper-case hex digits, which any KV key accepts.
pub fn name_key(name: &NetbiosName) -> String {
    name.as_raw().iter().map(|b| format!("{b:02X}")).collect()
}

/// The name a directory key stands for, the inverse of [`name_key`]; upper-
/// or lower-case hex digits.
pub fn name_from_key(key: &str) -> Result<NetbiosName, SiteError> {
    let bytes = key.as_bytes();
    if bytes.len() != 32 {
        return Err(SiteError::Key);
    }
    let mut raw = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let text = std::str::from_utf8(pair).map_err(|_| SiteError::Key)?;
        if !pair.iter().all(u8::is_ascii_hexdigit) {
            return Err(SiteError::Key);
        }
        raw[i] = u8::from_str_radix(text, 16).map_err(|_| SiteError::Key)?;
    }
    Ok(NetbiosName::from_raw(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn site_names_are_checked_and_upper_cased() {
        assert_eq!(SiteName::new("north-1_a").unwrap().as_str(), "NORTH-1_A");
        assert_eq!(SiteName::new(""), Err(SiteError::Length));
        assert_eq!(SiteName::new(&"A".repeat(33)), Err(SiteError::Length));
        assert!(SiteName::new(&"A".repeat(32)).is_ok());
        for bad in ["NO.RTH", "NORTH*", "a>b", "SÜD", "a b"] {
            assert_eq!(SiteName::new(bad), Err(SiteError::Character), "{bad}");
        }
    }

    #[test]
    fn subjects_carry_the_site() {
        let site = SiteName::new("north").unwrap();
        assert_eq!(msg_subject(&site), "netsend.msg.NORTH");
        assert_eq!(receipt_subject(&site), "netsend.receipt.NORTH");
        assert!(STREAM_SUBJECTS[0] == "netsend.>");
    }

    #[test]
    fn broadcast_subjects_escape_the_domain_into_one_token() {
        assert_eq!(bcast_subject("workgroup"), "netsend.bcast.WORKGROUP");
        assert_eq!(bcast_subject("A.B"), "netsend.bcast.A=2EB");
        assert_eq!(bcast_subject("*"), "netsend.bcast.=2A");
        assert_eq!(bcast_subject(""), "netsend.bcast.=");
        assert_ne!(bcast_subject("A B"), bcast_subject("A_B"));
    }

    #[test]
    fn message_ids_are_stable_per_entry_and_fit_the_codec() {
        let site = SiteName::new("north").unwrap();
        let a = queued_msg_id(&site, 7, "ALICE", "BOB", "hi");
        assert_eq!(a, queued_msg_id(&site, 7, "ALICE", "BOB", "hi"));
        assert!(a.starts_with("NORTH-q7-"), "{a}");
        assert_ne!(a, queued_msg_id(&site, 8, "ALICE", "BOB", "hi"));
        assert_ne!(a, queued_msg_id(&site, 7, "ALICE", "BOB", "hi!"));
        // The separators keep the fields apart.
        assert_ne!(
            queued_msg_id(&site, 7, "AB", "C", ""),
            queued_msg_id(&site, 7, "A", "BC", "")
        );
        let long = SiteName::new(&"S".repeat(32)).unwrap();
        for id in [
            queued_msg_id(&long, i64::MIN, "A", "B", "C"),
            fresh_msg_id(&long, u64::MAX, u64::MAX, u64::MAX),
        ] {
            assert!(id.len() <= netsend_wire::site::MAX_ID_LEN, "{id}");
            assert!(id.bytes().all(|b| (0x21..=0x7E).contains(&b)), "{id}");
        }
        assert_ne!(fresh_msg_id(&site, 1, 1, 5), fresh_msg_id(&site, 1, 2, 5));
    }

    #[test]
    fn name_keys_round_trip() {
        let name = NetbiosName::new("alice", 3).unwrap();
        let key = name_key(&name);
        assert_eq!(key, format!("414C494345{}03", "20".repeat(10)));
        assert_eq!(name_from_key(&key).unwrap(), name);
        assert_eq!(name_from_key(&key.to_lowercase()).unwrap(), name);
        assert_eq!(name_from_key("41"), Err(SiteError::Key));
        assert_eq!(name_from_key(&"G".repeat(32)), Err(SiteError::Key));
        assert_eq!(name_from_key(&"+1".repeat(16)), Err(SiteError::Key));
    }

    proptest! {
        #[test]
        fn any_name_round_trips_through_its_key(raw in any::<[u8; 16]>()) {
            let name = NetbiosName::from_raw(raw);
            prop_assert_eq!(name_from_key(&name_key(&name)).unwrap(), name);
        }

        #[test]
        fn keys_never_panic(key in ".{0,40}") {
            let _ = name_from_key(&key);
        }

        #[test]
        fn broadcast_subjects_are_one_valid_token(domain in any::<Vec<u8>>()) {
            let domain = String::from_utf8_lossy(&domain);
            let subject = bcast_subject(&domain);
            let token = subject.strip_prefix("netsend.bcast.").unwrap();
            prop_assert!(!token.is_empty() && token.len() <= MAX_DOMAIN_TOKEN_LEN);
            prop_assert!(token.bytes().all(|b| b.is_ascii_uppercase()
                || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'='));
        }
    }
}
