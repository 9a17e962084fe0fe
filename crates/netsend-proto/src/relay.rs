//! The relay rule for domain broadcasts, sans IO: which received
//! `\MAILSLOT\MESSNGR` datagrams we take, which we re-broadcast into our
//! subnets, and where to.
//!
//! A host on another subnet reaches ours by sending its domain broadcast to
//! us (its `[network] relays`); we re-broadcast it unchanged, so the
//! originator stays in the datagram header. A datagram is relayed only when
//! it came straight from its originator (a relayed copy is never relayed
//! again, so two relays cannot loop), from outside our subnets (a local
//! broadcast was heard by everyone already), and from a network we relay
//! for (`[network] relay_from`). Our own relayed copy, heard back on our
//! socket, is not taken a second time.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use crate::interface::Interface;
use crate::mailslot::Addressed;

/// What to do with a received MESSNGR datagram.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Our own relayed copy of another host's broadcast, heard back: drop it.
    HeardBack,
    /// Take the message (the admission policy still applies), and first
    /// re-broadcast the datagram, unchanged, to each of `relay_to`.
    Take {
        /// Where to re-broadcast it: from which of our addresses to which
        /// broadcast address (empty: not relayed).
        relay_to: Vec<(Ipv4Addr, Ipv4Addr)>,
    },
}

/// Our side of the relay rule: our interfaces and the networks we relay for.
#[derive(Debug, Clone, Copy)]
pub struct RelayRule<'a> {
    /// The interfaces we serve.
    pub interfaces: &'a [Interface],
    /// Networks whose hosts may use us as a relay.
    pub relay_from: &'a [IpNet],
}

impl RelayRule<'_> {
    fn is_ours(&self, ip: Ipv4Addr) -> bool {
        self.interfaces.iter().any(|i| i.address == ip)
    }

    /// The verdict on a datagram addressed as `addressed` that arrived from
    /// `peer` (the UDP source) and names `origin` as its originator (the
    /// datagram header).
    pub fn judge(&self, peer: Ipv4Addr, origin: Ipv4Addr, addressed: Addressed) -> Verdict {
        if self.is_ours(peer) && !self.is_ours(origin) {
            return Verdict::HeardBack;
        }
        let relay = addressed == Addressed::Broadcast
            && peer == origin
            && !self.interfaces.iter().any(|i| i.is_on_link(peer))
            && self
                .relay_from
                .iter()
                .any(|n| n.contains(&IpAddr::V4(peer)));
        let relay_to = if relay {
            self.interfaces
                .iter()
                .filter_map(|i| i.broadcast.map(|b| (i.address, b)))
                .collect()
        } else {
            Vec::new()
        };
        Verdict::Take { relay_to }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::{datagrams, Broadcast, Targets};
    use crate::sim::{interface, Lan};
    use netsend_wire::{CodePage, NetbiosName};

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, last)
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    const KEEP: Verdict = Verdict::Take {
        relay_to: Vec::new(),
    };

    #[test]
    fn only_a_broadcast_straight_from_an_allowed_off_link_originator_is_relayed() {
        let ours = [interface(ip(130), 25)];
        let rule = RelayRule {
            interfaces: &ours,
            relay_from: &[net("192.0.2.0/25")],
        };
        let relayed = Verdict::Take {
            relay_to: vec![(ip(130), ip(255))],
        };
        assert_eq!(rule.judge(ip(10), ip(10), Addressed::Broadcast), relayed);
        // Direct messages are only taken.
        assert_eq!(rule.judge(ip(10), ip(10), Addressed::Direct), KEEP);
        // Already relayed by someone else: never relayed again.
        assert_eq!(rule.judge(ip(20), ip(10), Addressed::Broadcast), KEEP);
        // From our own subnet: everyone heard it already.
        assert_eq!(rule.judge(ip(140), ip(140), Addressed::Broadcast), KEEP);
        // From a network we do not relay for.
        let other = Ipv4Addr::new(198, 51, 100, 7);
        assert_eq!(rule.judge(other, other, Addressed::Broadcast), KEEP);
        // Our relayed copy heard back is dropped; our own broadcast is not.
        assert_eq!(
            rule.judge(ip(130), ip(10), Addressed::Broadcast),
            Verdict::HeardBack
        );
        assert_eq!(rule.judge(ip(130), ip(130), Addressed::Broadcast), KEEP);
        // Without relay_from, nothing is relayed.
        let closed = RelayRule {
            interfaces: &ours,
            relay_from: &[],
        };
        assert_eq!(closed.judge(ip(10), ip(10), Addressed::Broadcast), KEEP);
        // A subnet without a broadcast address gets no copy.
        let lo = [Interface {
            broadcast: None,
            ..ours[0]
        }];
        let rule = RelayRule {
            interfaces: &lo,
            relay_from: &[net("192.0.2.0/25")],
        };
        assert_eq!(rule.judge(ip(10), ip(10), Addressed::Broadcast), KEEP);
    }

    #[test]
    fn a_relay_carries_a_domain_broadcast_into_another_segment_once() {
        // Segment A: the sender .10 and .20; segment B: the relay .130,
        // .140, and .150, which would relay for A too.
        let lan = Lan::with_prefix(
            &[
                [192, 0, 2, 10],
                [192, 0, 2, 20],
                [192, 0, 2, 130],
                [192, 0, 2, 140],
                [192, 0, 2, 150],
            ],
            25,
        );
        let for_a = vec![net("192.0.2.0/25")];
        let relay_from = [vec![], vec![], for_a.clone(), vec![], for_a];
        let message = Broadcast {
            domain: NetbiosName::new("WORKGROUP", 0).unwrap(),
            source: NetbiosName::new("SENDER", 0).unwrap(),
            from: "alice",
            text: "fire drill at 3",
            split: false,
            code_page: CodePage::Cp850,
        };
        let targets = Targets {
            interfaces: &lan.interfaces[..1],
            extra: &[],
            relays: &[ip(130)],
            port: 138,
        };
        let first = datagrams(&message, &targets, 1)
            .unwrap()
            .into_iter()
            .map(|o| (0, o.target, o.bytes))
            .collect();
        let taken = lan.carry_datagrams(&relay_from, first);
        // Every host takes the message exactly once, with the sender as its
        // origin, however many relays could have passed it on.
        for (i, got) in taken.iter().enumerate() {
            assert_eq!(got.len(), 1, "host {i} took {got:?}");
            assert_eq!(got[0].origin, ip(10));
            assert_eq!(got[0].message.text, "fire drill at 3");
        }
    }
}
