//! Broadcasts between sites, sans IO: which `*` and `/DOMAIN[:NAME]`
//! broadcasts a site gateway publishes on the backbone, the id JetStream
//! dedups them by, and which published ones it re-broadcasts on its own LAN.
//!
//! Published: a MESSNGR broadcast heard on the site's LAN straight from its
//! originator, and one the gateway host sends itself ([`SiteBroadcasts::sent`]).
//! Not published: directed datagrams; copies a relay passed on (`[network]
//! relays` already carried them; see `relay`); anything heard from one of the
//! gateway's own addresses (its own sends went out through `sent`, and its
//! re-broadcasts must never go back to the backbone); and a text already
//! published or re-broadcast in the last [`RECENT_MS`] (the same broadcast
//! heard on two interfaces, or a re-broadcast heard back through another
//! host). Re-broadcast: a publication of another site whose domain is one of
//! this site's domains, heard within [`MAX_AGE_MS`], once per message id (in memory here for
//! [`SEEN_MS`]; the service keeps a durable record across restarts too).

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use netsend_wire::site_broadcast::SiteBroadcast;
use netsend_wire::NetbiosName;
use sha2::{Digest as _, Sha256};

use crate::mailslot::{Addressed, MailslotDatagram};
use netsend_wire::nbds::MessageType;
use netsend_wire::oem::CodePage;
use netsend_wire::smb::mailslot::{is_messenger_mailslot, MessengerPayload};

/// How long a published or re-broadcast text keeps an equal one from being
/// published again.
pub const RECENT_MS: u64 = 60_000;
/// How long a received message id is remembered (JetStream's duplicate
/// window of the stream).
pub const SEEN_MS: u64 = 10 * 60_000;
/// A publication older than this (by the origin site's clock) is not
/// re-broadcast: a gateway back after hours does not replay stale news.
pub const MAX_AGE_MS: u64 = 15 * 60_000;
/// Largest number of texts and of ids remembered.
pub const MAX_REMEMBERED: usize = 4096;
/// The coarse time step of a message id: copies heard within one step share
/// their id.
pub const ID_STEP_MS: u64 = 30_000;

/// A MESSNGR datagram heard on the site's LAN.
#[derive(Debug, Clone, Copy)]
pub struct Heard<'a> {
    /// The UDP source.
    pub peer: Ipv4Addr,
    /// The originator named in the datagram header.
    pub origin: Ipv4Addr,
    /// Whether it was a broadcast or a directed datagram.
    pub addressed: Addressed,
    /// Whether `peer` is one of the gateway host's own addresses.
    pub from_us: bool,
    /// The domain it went to, `NAME<00>`.
    pub domain: NetbiosName,
    /// The computer name it came from.
    pub source: NetbiosName,
    /// The sender shown.
    pub from: &'a str,
    /// The text.
    pub text: &'a str,
}

/// Why a heard broadcast is not published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotPublished {
    /// A directed datagram, not a broadcast.
    Directed,
    /// Heard from one of our own addresses: our send (published when sent)
    /// or our re-broadcast.
    FromUs,
    /// A copy a relay passed on, not the originator's own.
    Relayed,
    /// The same text was published or re-broadcast moments ago.
    Recent,
}

/// What to do with a publication of the backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Re-broadcast it on every broadcast interface, then acknowledge it.
    Rebroadcast,
    /// Acknowledge it without a re-broadcast.
    Skip(Skipped),
}

/// Why a publication is not re-broadcast here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Our own site published it.
    OwnSite,
    /// Its domain is none of ours.
    OtherDomain,
    /// Its id was re-broadcast already (a redelivery).
    Seen,
    /// Heard longer than [`MAX_AGE_MS`] ago.
    Stale,
}

impl Skipped {
    /// The word in logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OwnSite => "own site",
            Self::OtherDomain => "other domain",
            Self::Seen => "seen",
            Self::Stale => "stale",
        }
    }
}

/// The stable id of a publication (`Nats-Msg-Id`): the origin site and a
/// digest of the domain, source, sender, text and the [`ID_STEP_MS`] step
/// it was heard in. A retry reuses the publication, so its id.
pub fn message_id(b: &SiteBroadcast) -> String {
    let mut h = Sha256::new();
    h.update(fingerprint(&b.domain, &b.from, &b.text));
    h.update(b.source.as_raw());
    h.update((b.sent_at_ms / ID_STEP_MS).to_be_bytes());
    let hex: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("bcast-{}-{hex}", b.site)
}

/// The digest that says two broadcasts carry the same message.
fn fingerprint(domain: &NetbiosName, from: &str, text: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(domain.trimmed().to_ascii_uppercase());
    h.update([0]);
    h.update(from.as_bytes());
    h.update([0]);
    h.update(netsend_wire::oem::normalize_line_breaks(text).trim_end_matches('\n'));
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize()[..16]);
    out
}

/// A bounded table of keys with the time each was added; old ones expire.
#[derive(Debug)]
struct Recent<K> {
    entries: VecDeque<(K, u64)>,
    ttl_ms: u64,
}

impl<K: PartialEq> Recent<K> {
    fn new(ttl_ms: u64) -> Self {
        Self {
            entries: VecDeque::new(),
            ttl_ms,
        }
    }

    fn expire(&mut self, now_ms: u64) {
        while let Some((_, at)) = self.entries.front() {
            if now_ms.saturating_sub(*at) < self.ttl_ms && self.entries.len() <= MAX_REMEMBERED {
                break;
            }
            self.entries.pop_front();
        }
    }

    fn contains(&mut self, key: &K, now_ms: u64) -> bool {
        self.expire(now_ms);
        self.entries.iter().any(|(k, _)| k == key)
    }

    fn insert(&mut self, key: K, now_ms: u64) {
        self.entries.push_back((key, now_ms));
        self.expire(now_ms);
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// One gateway's side of the rule: its site, its domains and what it
/// published or re-broadcast recently.
#[derive(Debug)]
pub struct SiteBroadcasts {
    site: String,
    domains: Vec<NetbiosName>,
    texts: Recent<[u8; 16]>,
    seen: Recent<String>,
}

impl SiteBroadcasts {
    /// The rule for `site` (validated, uppercase) whose hosts are in
    /// `domains` (`NAME<00>`; `[gateway] domains`, or the workgroup).
    pub fn new(site: &str, domains: Vec<NetbiosName>) -> Self {
        Self {
            site: site.to_owned(),
            domains,
            texts: Recent::new(RECENT_MS),
            seen: Recent::new(SEEN_MS),
        }
    }

    /// Whether `domain` is one of this site's.
    pub fn is_our_domain(&self, domain: &NetbiosName) -> bool {
        self.our_domain(domain).is_some()
    }

    /// This site's own spelling of `domain` (its `NAME<00>`), when it is
    /// one of this site's: what a re-broadcast goes to.
    pub fn our_domain(&self, domain: &NetbiosName) -> Option<NetbiosName> {
        self.domains
            .iter()
            .find(|d| d.trimmed().eq_ignore_ascii_case(domain.trimmed()))
            .copied()
    }

    /// Reads a datagram heard on the LAN from `peer` (`from_us`: one of our
    /// own addresses): `None` unless it is a MESSNGR group or broadcast
    /// datagram to one of this site's domains; else [`Self::hear`]'s verdict.
    pub fn hear_datagram(
        &mut self,
        bytes: &[u8],
        peer: Ipv4Addr,
        from_us: bool,
        code_page: CodePage,
        now_ms: u64,
    ) -> Option<Result<(SiteBroadcast, String), NotPublished>> {
        let d = MailslotDatagram::parse(bytes)?;
        if !is_messenger_mailslot(&d.write.name)
            || !matches!(
                d.header.msg_type,
                MessageType::DIRECT_GROUP | MessageType::BROADCAST
            )
            || !self.is_our_domain(&d.destination)
        {
            return None;
        }
        let payload = MessengerPayload::parse(&d.write.data).ok()?;
        let message = crate::message::Message::decode(
            &payload.from,
            &payload.to,
            &[payload.text],
            false,
            code_page,
        );
        let heard = Heard {
            peer,
            origin: d.header.source_ip,
            addressed: Addressed::Broadcast,
            from_us,
            domain: d.destination,
            source: d.source,
            from: &message.from,
            text: &message.text,
        };
        Some(self.hear(&heard, now_ms))
    }

    /// The publication of a broadcast heard on the LAN at `now_ms`, or why
    /// there is none.
    pub fn hear(
        &mut self,
        heard: &Heard<'_>,
        now_ms: u64,
    ) -> Result<(SiteBroadcast, String), NotPublished> {
        if heard.addressed != Addressed::Broadcast {
            return Err(NotPublished::Directed);
        }
        if heard.from_us {
            return Err(NotPublished::FromUs);
        }
        if heard.peer != heard.origin {
            return Err(NotPublished::Relayed);
        }
        let key = fingerprint(&heard.domain, heard.from, heard.text);
        if self.texts.contains(&key, now_ms) {
            return Err(NotPublished::Recent);
        }
        Ok(self.publish(key, heard, now_ms))
    }

    /// The publication of a broadcast the gateway host sent itself from
    /// `origin` as `source`.
    pub fn sent(
        &mut self,
        origin: Ipv4Addr,
        domain: NetbiosName,
        source: NetbiosName,
        from: &str,
        text: &str,
        now_ms: u64,
    ) -> (SiteBroadcast, String) {
        let heard = Heard {
            peer: origin,
            origin,
            addressed: Addressed::Broadcast,
            from_us: true,
            domain,
            source,
            from,
            text,
        };
        self.publish(fingerprint(&domain, from, text), &heard, now_ms)
    }

    fn publish(&mut self, key: [u8; 16], h: &Heard<'_>, now_ms: u64) -> (SiteBroadcast, String) {
        self.texts.insert(key, now_ms);
        let b = SiteBroadcast {
            site: self.site.clone(),
            origin: h.origin,
            sent_at_ms: now_ms,
            domain: h.domain,
            source: h.source,
            from: h.from.to_owned(),
            text: h.text.to_owned(),
        };
        let id = message_id(&b);
        (b, id)
    }

    /// What to do with publication `b` of id `id` received at `now_ms`. A
    /// re-broadcast is remembered, so hearing it back publishes nothing and
    /// a redelivery is not re-broadcast twice.
    pub fn receive(&mut self, b: &SiteBroadcast, id: &str, now_ms: u64) -> Received {
        if b.site == self.site {
            return Received::Skip(Skipped::OwnSite);
        }
        if !self.is_our_domain(&b.domain) {
            return Received::Skip(Skipped::OtherDomain);
        }
        if now_ms.saturating_sub(b.sent_at_ms) > MAX_AGE_MS {
            return Received::Skip(Skipped::Stale);
        }
        let id = id.to_owned();
        if self.seen.contains(&id, now_ms) {
            return Received::Skip(Skipped::Seen);
        }
        self.seen.insert(id, now_ms);
        self.texts
            .insert(fingerprint(&b.domain, &b.from, &b.text), now_ms);
        Received::Rebroadcast
    }

    /// How many texts and ids are remembered now.
    pub fn remembered(&self) -> (usize, usize) {
        (self.texts.len(), self.seen.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            crate::fuzzing::site_broadcast(&bytes);
        }
    }

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, last)
    }

    fn name(s: &str) -> NetbiosName {
        NetbiosName::new(s, 0).unwrap()
    }

    fn heard<'a>(peer: u8, origin: u8, text: &'a str) -> Heard<'a> {
        Heard {
            peer: ip(peer),
            origin: ip(origin),
            addressed: Addressed::Broadcast,
            from_us: false,
            domain: name("WORKGROUP"),
            source: name("HOSTA"),
            from: "alice",
            text,
        }
    }

    #[test]
    fn a_broadcast_heard_from_its_originator_is_published_once() {
        let mut north = SiteBroadcasts::new("NORTH", vec![name("WORKGROUP")]);
        let (b, id) = north.hear(&heard(10, 10, "fire drill"), 1_000).unwrap();
        assert_eq!(b.site, "NORTH");
        assert_eq!(b.origin, ip(10));
        assert!(id.starts_with("bcast-NORTH-"), "{id}");
        // The same broadcast heard on a second interface, or its second
        // datagram with other line breaks: not published again.
        assert_eq!(
            north.hear(&heard(10, 10, "fire drill\r\n"), 1_200),
            Err(NotPublished::Recent)
        );
        // Later, the same text is a new broadcast.
        let (again, id2) = north
            .hear(&heard(10, 10, "fire drill"), 1_000 + RECENT_MS)
            .unwrap();
        assert_ne!(id, id2);
        assert_eq!(again.text, "fire drill");
        // Directed datagrams, relayed copies and our own sends heard back
        // are never published.
        let mut direct = heard(10, 10, "x");
        direct.addressed = Addressed::Direct;
        assert_eq!(north.hear(&direct, 0), Err(NotPublished::Directed));
        assert_eq!(
            north.hear(&heard(20, 10, "y"), 0),
            Err(NotPublished::Relayed)
        );
        let mut ours = heard(1, 1, "z");
        ours.from_us = true;
        assert_eq!(north.hear(&ours, 0), Err(NotPublished::FromUs));
    }

    #[test]
    fn the_id_is_stable_within_its_step_and_names_the_site() {
        let mut a = SiteBroadcasts::new("NORTH", vec![]);
        let (b, id) = a.sent(ip(1), name("WG"), name("GW"), "bob", "hi", 5 * ID_STEP_MS);
        assert_eq!(message_id(&b), id);
        let later = SiteBroadcast {
            sent_at_ms: 6 * ID_STEP_MS - 1,
            ..b.clone()
        };
        assert_eq!(message_id(&later), id);
        let next = SiteBroadcast {
            sent_at_ms: 6 * ID_STEP_MS,
            ..b.clone()
        };
        assert_ne!(message_id(&next), id);
        let other = SiteBroadcast {
            text: "ho".into(),
            ..b.clone()
        };
        assert_ne!(message_id(&other), id);
        let south = SiteBroadcast {
            site: "SOUTH".into(),
            ..b
        };
        assert!(message_id(&south).starts_with("bcast-SOUTH-"));
    }

    #[test]
    fn a_publication_is_rebroadcast_once_in_our_domains_and_never_published_back() {
        let mut north = SiteBroadcasts::new("NORTH", vec![name("WORKGROUP")]);
        let mut south = SiteBroadcasts::new("SOUTH", vec![name("workgroup"), name("SALES")]);
        let (b, id) = north.hear(&heard(10, 10, "lunch"), 0).unwrap();
        // The publisher's own site does not take its publication back.
        assert_eq!(north.receive(&b, &id, 10), Received::Skip(Skipped::OwnSite));
        assert_eq!(south.receive(&b, &id, 10), Received::Rebroadcast);
        assert_eq!(south.our_domain(&b.domain), Some(name("WORKGROUP")));
        // A redelivery is not re-broadcast again.
        assert_eq!(south.receive(&b, &id, 20), Received::Skip(Skipped::Seen));
        // The re-broadcast, heard back through another host (it keeps the
        // origin at NORTH, so peer = origin is possible only via a relay of
        // a relay; any host here), is not published.
        let echo = Heard {
            peer: ip(140),
            origin: ip(140),
            ..heard(0, 0, "lunch")
        };
        assert_eq!(south.hear(&echo, 30), Err(NotPublished::Recent));
        // A domain SOUTH's hosts are not in.
        let hr = SiteBroadcast {
            domain: name("HR"),
            ..b.clone()
        };
        assert_eq!(
            south.receive(&hr, "other", 40),
            Received::Skip(Skipped::OtherDomain)
        );
        // Too old to be news.
        let old = SiteBroadcast {
            text: "yesterday".into(),
            ..b.clone()
        };
        assert_eq!(
            south.receive(&old, "old", b.sent_at_ms + MAX_AGE_MS + 1),
            Received::Skip(Skipped::Stale)
        );
        // After the seen window the id is forgotten (JetStream's duplicate
        // window is as long, so a later redelivery is new).
        assert_eq!(south.receive(&b, &id, 20 + SEEN_MS), Received::Rebroadcast);
    }

    #[test]
    fn a_heard_datagram_is_read_for_our_domains_only() {
        use crate::broadcast::{datagrams, Broadcast, Targets};
        let ours = [crate::sim::interface(ip(1), 24)];
        let message = Broadcast {
            domain: name("SALES"),
            source: name("HOSTA"),
            from: "alice",
            text: "stand-up now",
            split: false,
            code_page: CodePage::Cp850,
        };
        let targets = Targets {
            interfaces: &ours,
            extra: &[],
            relays: &[],
            port: 138,
        };
        let bytes = datagrams(&message, &targets, 1).unwrap().remove(0).bytes;
        let mut north = SiteBroadcasts::new("NORTH", vec![name("WORKGROUP"), name("SALES")]);
        let (b, _) = north
            .hear_datagram(&bytes, ip(1), false, CodePage::Cp850, 0)
            .unwrap()
            .unwrap();
        assert_eq!(
            (b.domain, b.source, b.from.as_str(), b.text.as_str()),
            (name("SALES"), name("HOSTA"), "alice", "stand-up now")
        );
        assert_eq!(b.origin, ip(1));
        // Heard again (a second interface): not published twice.
        assert_eq!(
            north.hear_datagram(&bytes, ip(1), false, CodePage::Cp850, 5),
            Some(Err(NotPublished::Recent))
        );
        // A site not in SALES does not read it; garbage is nothing.
        let mut south = SiteBroadcasts::new("SOUTH", vec![name("WORKGROUP")]);
        assert_eq!(
            south.hear_datagram(&bytes, ip(1), false, CodePage::Cp850, 0),
            None
        );
        assert_eq!(
            south.hear_datagram(&bytes[..20], ip(1), false, CodePage::Cp850, 0),
            None
        );
    }

    #[test]
    fn the_tables_stay_bounded() {
        let mut s = SiteBroadcasts::new("S", vec![name("WG")]);
        for i in 0..(MAX_REMEMBERED as u64 + 100) {
            let b = SiteBroadcast {
                site: "T".into(),
                origin: ip(1),
                sent_at_ms: i,
                domain: name("WG"),
                source: name("X"),
                from: "a".into(),
                text: i.to_string(),
            };
            assert_eq!(s.receive(&b, &i.to_string(), 0), Received::Rebroadcast);
        }
        let (texts, ids) = s.remembered();
        assert!(texts <= MAX_REMEMBERED && ids <= MAX_REMEMBERED);
    }
}
