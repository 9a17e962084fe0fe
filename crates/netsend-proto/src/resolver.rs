//! A name query client, sans IO: sends a query up to `retries` times and
//! collects every distinct address that answers.
//!
//! Call order: [`Resolver::poll_transmit`] (send what it returns), then wait for
//! a datagram ([`Resolver::handle_datagram`]) or for [`Resolver::poll_timeout`]
//! ([`Resolver::handle_timeout`]); repeat until [`Resolver::result`] is `Some`.
//! After the first positive answer it waits one more interval, so a name held
//! by several hosts is reported as such instead of silently picked.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netsend_wire::nbns::{Opcode, Packet, RData};
use netsend_wire::NetbiosName;

/// The outcome of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Every distinct address that answered positively, in answer order.
    Found(Vec<Ipv4Addr>),
    /// Nobody answered positively.
    NotFound,
}

/// One name query in progress.
#[derive(Debug)]
pub struct Resolver {
    name: NetbiosName,
    query: Vec<u8>,
    trn_id: u16,
    retries: u32,
    sent: u32,
    interval: Duration,
    next_send: Option<Instant>,
    deadline: Option<Instant>,
    found: Vec<Ipv4Addr>,
    result: Option<Resolution>,
    broadcast: bool,
}

impl Resolver {
    /// A broadcast query for `name` with transaction id `trn_id`, sent at most
    /// `retries` times `interval` apart, starting at `now`.
    pub fn new(
        name: NetbiosName,
        trn_id: u16,
        now: Instant,
        retries: u32,
        interval: Duration,
    ) -> Self {
        Self::with_mode(name, trn_id, now, retries, interval, true)
    }

    /// Like [`Resolver::new`], choosing a broadcast or a unicast (WINS) query.
    pub fn with_mode(
        name: NetbiosName,
        trn_id: u16,
        now: Instant,
        retries: u32,
        interval: Duration,
        broadcast: bool,
    ) -> Self {
        let mut packet = Packet::name_query(trn_id, name, broadcast);
        // A unicast query goes to a WINS server: ask it to answer from its database.
        packet.flags.recursion_desired = true;
        let query = packet.to_bytes().unwrap_or_default();
        Self {
            name,
            query,
            trn_id,
            retries: retries.max(1),
            sent: 0,
            interval,
            next_send: Some(now),
            deadline: None,
            found: Vec::new(),
            result: None,
            broadcast,
        }
    }

    /// The query to send now, if one is due.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.result.is_some() || !self.found.is_empty() {
            return None;
        }
        match self.next_send {
            Some(at) if at <= now => {
                self.sent += 1;
                self.next_send = (self.sent < self.retries).then(|| now + self.interval);
                if self.next_send.is_none() {
                    self.deadline = Some(now + self.interval);
                }
                Some(self.query.clone())
            }
            _ => None,
        }
    }

    /// When to call [`Resolver::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.result.is_some() {
            return None;
        }
        match (self.next_send, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances time: finishes the query once its last wait is over.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.result.is_some() {
            return;
        }
        if self.deadline.is_some_and(|d| d <= now) {
            self.result = Some(if self.found.is_empty() {
                Resolution::NotFound
            } else {
                Resolution::Found(self.found.clone())
            });
        }
    }

    /// Feeds a datagram received from `src` at `now`. Only positive responses
    /// with our transaction id and name count; duplicates are ignored.
    pub fn handle_datagram(&mut self, now: Instant, _src: Ipv4Addr, bytes: &[u8]) {
        let Ok(packet) = Packet::parse(bytes) else {
            return;
        };
        if !packet.flags.response
            || packet.trn_id != self.trn_id
            || packet.flags.opcode() != Opcode::QUERY
        {
            return;
        }
        if packet.flags.rcode != 0 {
            // A server's "no such name" is final; broadcast answers are never negative.
            if !self.broadcast && self.found.is_empty() {
                self.result = Some(Resolution::NotFound);
            }
            return;
        }
        for answer in &packet.answers {
            if answer.name.name != self.name {
                continue;
            }
            if let RData::Nb(entries) = &answer.rdata {
                for e in entries {
                    if !self.found.contains(&e.address) {
                        self.found.push(e.address);
                    }
                }
            }
        }
        if !self.found.is_empty() && self.deadline.is_none_or(|d| d > now + self.interval) {
            // Give other owners one interval to answer, then finish.
            self.deadline = Some(now + self.interval);
            self.next_send = None;
        }
    }

    /// The outcome, once known.
    pub fn result(&self) -> Option<Resolution> {
        self.result.clone()
    }
}

/// A fresh transaction id from the generator state `seed` (splitmix64), so
/// that a random seed makes every following id unpredictable to other hosts.
pub(crate) fn next_trn_id(seed: &mut u64) -> u16 {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsend_wire::nbns::{NbEntry, NodeType};

    fn answer(trn: u16, name: NetbiosName, ip: [u8; 4]) -> Vec<u8> {
        let entry = NbEntry::new(false, NodeType::B, Ipv4Addr::from(ip));
        Packet::positive_query_response(trn, name.into(), 0, vec![entry])
            .to_bytes()
            .unwrap()
    }

    #[test]
    fn three_tries_then_not_found() {
        let t0 = Instant::now();
        let name = NetbiosName::new("BOB", 3).unwrap();
        let mut r = Resolver::new(name, 7, t0, 3, Duration::from_millis(250));
        let mut sends = 0;
        let mut now = t0;
        for _ in 0..20 {
            while r.poll_transmit(now).is_some() {
                sends += 1;
            }
            let Some(t) = r.poll_timeout() else { break };
            now = t;
            r.handle_timeout(now);
        }
        assert_eq!(sends, 3);
        assert_eq!(r.result(), Some(Resolution::NotFound));
        assert_eq!(now - t0, Duration::from_millis(750));
    }

    #[test]
    fn first_answer_then_collects_duplicates_and_ignores_strangers() {
        let t0 = Instant::now();
        let name = NetbiosName::new("BOB", 3).unwrap();
        let mut r = Resolver::new(name, 7, t0, 3, Duration::from_millis(250));
        let query = r.poll_transmit(t0).unwrap();
        assert_eq!(Packet::parse(&query).unwrap().flags.to_word(), 0x0110);
        let mut wins = Resolver::with_mode(name, 9, t0, 3, Duration::from_millis(250), false);
        let q = Packet::parse(&wins.poll_transmit(t0).unwrap()).unwrap();
        assert_eq!(q.flags.to_word(), 0x0100);
        let negative = Packet::negative_query_response(9, name.into())
            .to_bytes()
            .unwrap();
        wins.handle_datagram(t0, Ipv4Addr::new(192, 0, 2, 1), &negative);
        assert_eq!(wins.result(), Some(Resolution::NotFound));
        let src = Ipv4Addr::new(192, 0, 2, 1);
        r.handle_datagram(t0, src, &answer(8, name, [192, 0, 2, 66])); // other trn id
        r.handle_datagram(
            t0,
            src,
            &answer(7, NetbiosName::new("EVE", 3).unwrap(), [192, 0, 2, 66]),
        );
        r.handle_datagram(t0, src, &answer(7, name, [192, 0, 2, 11]));
        r.handle_datagram(t0, src, &answer(7, name, [192, 0, 2, 11])); // nmbd answers twice
        assert!(r.poll_transmit(t0 + Duration::from_millis(300)).is_none());
        r.handle_datagram(t0, src, &answer(7, name, [192, 0, 2, 12]));
        r.handle_timeout(r.poll_timeout().unwrap());
        assert_eq!(
            r.result(),
            Some(Resolution::Found(vec![
                Ipv4Addr::new(192, 0, 2, 11),
                Ipv4Addr::new(192, 0, 2, 12)
            ]))
        );
    }
}
