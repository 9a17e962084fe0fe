//! Delivery tags: one message's identity across the retries of a sender
//! that cannot know whether its last attempt arrived.
//!
//! A site gateway, or the outgoing queue, may crash after the recipient
//! acknowledged a message and before it recorded that; it then sends the
//! message again. To keep that repeat from being shown twice, such senders
//! put an 8-byte tag in the SMB header's SecurityFeatures field (unused
//! without signing, which the message commands never negotiate) of every
//! request of the exchange, the same tag at every retry. A netsend receiver
//! remembers `(source address, tag)` with the stored message for
//! [`REMEMBERED_FOR_MS`] and acknowledges a repeat without storing or showing
//! it again. smbd, Windows and older netsend hosts ignore the field, so for
//! them a retry after such a crash is shown twice, as before.
//!
//! Tags are keyed by the source address, so a host can only make its own
//! later messages look like repeats.

use sha2::Digest;

/// How long a receiver remembers a tag: longer than the gateway's
/// redeliveries (about a day) and the queue's default expiry.
pub const REMEMBERED_FOR_MS: i64 = 2 * 24 * 60 * 60 * 1000;

/// The tag of one message, never all zeros (zeros mean "no tag").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryTag([u8; 8]);

impl DeliveryTag {
    /// The tag in a request's SecurityFeatures field; `None` when the field
    /// is all zeros (untagged, as every other sender leaves it).
    pub fn from_wire(field: [u8; 8]) -> Option<Self> {
        (field != [0; 8]).then_some(Self(field))
    }

    /// The bytes to put in the SecurityFeatures field.
    pub const fn to_wire(self) -> [u8; 8] {
        self.0
    }

    /// The tag of a message that came over the site backbone with the dedup
    /// id `msg_id`: every redelivery of it has the same one.
    pub fn for_site_message(msg_id: &str) -> Self {
        Self::digest(&[b"site", msg_id.as_bytes()])
    }

    /// The tag of the outgoing queue's entry `id`, queued at `created_at`
    /// (Unix ms) with this sender, recipient and text: the same at every
    /// retry and after a restart, another one should a new state directory
    /// start the ids again.
    pub fn for_queue_entry(id: i64, created_at: i64, from: &str, to: &str, text: &str) -> Self {
        Self::digest(&[
            b"queue",
            &id.to_le_bytes(),
            &created_at.to_le_bytes(),
            from.as_bytes(),
            to.as_bytes(),
            text.as_bytes(),
        ])
    }

    /// The receiver's key of this tag from `source` (the sender's address
    /// without the port, which changes at every connection).
    pub fn key(self, source: std::net::IpAddr) -> String {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        format!("{source}/{hex}")
    }

    /// The first 8 bytes of SHA-256 over the length-prefixed parts; a zero
    /// result (no tag) becomes 1.
    fn digest(parts: &[&[u8]]) -> Self {
        let mut hash = sha2::Sha256::new();
        for part in parts {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        let digest = hash.finalize();
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&digest[..8]);
        if tag == [0; 8] {
            tag[7] = 1;
        }
        Self(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_zero_field_is_no_tag() {
        assert_eq!(DeliveryTag::from_wire([0; 8]), None);
        let tag = DeliveryTag::for_site_message("NORTH-q1-00");
        assert_eq!(DeliveryTag::from_wire(tag.to_wire()), Some(tag));
    }

    #[test]
    fn retries_share_a_tag_and_other_messages_do_not() {
        let a = DeliveryTag::for_queue_entry(7, 1000, "ALICE", "BOB", "hi");
        assert_eq!(
            a,
            DeliveryTag::for_queue_entry(7, 1000, "ALICE", "BOB", "hi")
        );
        assert_ne!(
            a,
            DeliveryTag::for_queue_entry(7, 1001, "ALICE", "BOB", "hi")
        );
        assert_ne!(
            a,
            DeliveryTag::for_queue_entry(8, 1000, "ALICE", "BOB", "hi")
        );
        assert_ne!(
            DeliveryTag::for_queue_entry(7, 1000, "AB", "C", ""),
            DeliveryTag::for_queue_entry(7, 1000, "A", "BC", "")
        );
        assert_ne!(
            DeliveryTag::for_site_message("N-1"),
            DeliveryTag::for_site_message("N-2")
        );
    }

    #[test]
    fn keys_hold_the_address_without_the_port() {
        let tag = DeliveryTag::from_wire([1, 2, 3, 4, 5, 6, 7, 0xff]).unwrap();
        let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(tag.key(ip), "192.0.2.7/01020304050607ff");
    }

    proptest! {
        #[test]
        fn a_derived_tag_is_never_empty(id in any::<String>()) {
            prop_assert!(DeliveryTag::from_wire(DeliveryTag::for_site_message(&id).to_wire()).is_some());
        }
    }
}
