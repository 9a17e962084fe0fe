//! Registering names with a WINS server (an NBNS, RFC 1001 §15.1 P-node
//! behaviour), sans IO: unicast registration with retries, WACK handling,
//! refresh at half the granted TTL, and release.
//!
//! Call order as for [`crate::registration::NameTable`]: after every input,
//! drain [`WinsClient::poll_transmit`] (each packet goes to the server, UDP 137)
//! and [`WinsClient::poll_event`], then wait for [`WinsClient::poll_timeout`].

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netsend_wire::nbns::{NbEntry, NodeType, Opcode, Packet, RData};
use netsend_wire::NetbiosName;

use crate::registration::{NameEvent, NameState};

/// TTL we ask the server for, in seconds (nmbd grants at most its `max ttl`).
pub const REQUESTED_TTL: u32 = 259_200;

/// Retry timing for unicast requests (RFC 1002: UCAST_REQ_RETRY_TIMEOUT 5 s,
/// UCAST_REQ_RETRY_COUNT 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinsConfig {
    /// Requests sent before giving up.
    pub retries: u32,
    /// Wait between them.
    pub interval: Duration,
    /// First pause before a name the server refused is registered again.
    pub conflict_retry: Duration,
    /// Longest such pause (it doubles after each refusal).
    pub conflict_max_retry: Duration,
}

impl Default for WinsConfig {
    fn default() -> Self {
        Self {
            retries: 3,
            interval: Duration::from_secs(5),
            conflict_retry: Duration::from_secs(60),
            conflict_max_retry: Duration::from_secs(900),
        }
    }
}

#[derive(Debug)]
struct Entry {
    name: NetbiosName,
    group: bool,
    trn_id: u16,
    state: NameState,
    /// Requests sent for the current registration or refresh.
    sent: u32,
    /// Whether the request in flight is a refresh.
    refreshing: bool,
    next: Option<Instant>,
    /// The pause before the next try after a refusal.
    pause: Duration,
}

/// The names registered with one WINS server.
#[derive(Debug)]
pub struct WinsClient {
    server: Ipv4Addr,
    address: Ipv4Addr,
    config: WinsConfig,
    entries: Vec<Entry>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<NameEvent>,
}

impl WinsClient {
    /// A client registering names of the host at `address` with `server`.
    pub fn new(server: Ipv4Addr, address: Ipv4Addr, config: WinsConfig) -> Self {
        Self {
            server,
            address,
            config,
            entries: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The server's address.
    pub const fn server(&self) -> Ipv4Addr {
        self.server
    }

    fn nb(&self, group: bool) -> NbEntry {
        NbEntry::new(group, NodeType::H, self.address)
    }

    fn request(&self, e: &Entry) -> Option<Vec<u8>> {
        let mut p = if e.refreshing {
            Packet::refresh_request(e.trn_id, e.name, REQUESTED_TTL, self.nb(e.group))
        } else {
            let mut p = Packet::registration_request(e.trn_id, e.name, self.nb(e.group));
            p.additional[0].ttl = REQUESTED_TTL;
            p
        };
        // Unicast to the server: no B bit.
        p.flags.broadcast = false;
        p.to_bytes().ok()
    }

    /// Starts registering `name`.
    pub fn register(&mut self, now: Instant, name: NetbiosName, group: bool, trn_id: u16) {
        self.entries.retain(|e| e.name != name);
        self.entries.push(Entry {
            name,
            group,
            trn_id,
            state: NameState::Registering,
            sent: 0,
            refreshing: false,
            next: Some(now),
            pause: self.config.conflict_retry,
        });
        self.handle_timeout(now);
    }

    /// Releases `name` at the server (one request; the server's answer is not needed).
    pub fn release(&mut self, name: &NetbiosName, trn_id: u16) {
        let Some(i) = self.entries.iter().position(|e| e.name == *name) else {
            return;
        };
        let e = self.entries.remove(i);
        if e.state == NameState::Registered {
            let mut p = Packet::release_request(trn_id, e.name, self.nb(e.group));
            p.flags.broadcast = false;
            if let Ok(bytes) = p.to_bytes() {
                self.transmits.push_back(bytes);
            }
        }
    }

    /// Releases every registered name.
    pub fn release_all(&mut self, first_trn_id: u16) {
        let names: Vec<NetbiosName> = self.entries.iter().map(|e| e.name).collect();
        for (i, n) in names.iter().enumerate() {
            self.release(n, first_trn_id.wrapping_add(i as u16));
        }
    }

    /// The state of `name` at the server.
    pub fn state(&self, name: &NetbiosName) -> Option<NameState> {
        self.entries
            .iter()
            .find(|e| e.name == *name)
            .map(|e| e.state)
    }

    /// Feeds a packet from `src`; only the server's answers count.
    pub fn handle_datagram(&mut self, now: Instant, src: Ipv4Addr, bytes: &[u8]) {
        if src != self.server {
            return;
        }
        let Ok(packet) = Packet::parse(bytes) else {
            return;
        };
        if !packet.flags.response {
            return;
        }
        let Some(e) = self.entries.iter_mut().find(|e| e.trn_id == packet.trn_id) else {
            return;
        };
        let Some(answer) = packet.answers.first() else {
            return;
        };
        if answer.name.name != e.name {
            return;
        }
        match packet.flags.opcode() {
            // Wait for acknowledgement: the server is checking the old owner.
            Opcode::WACK => {
                let wait = Duration::from_secs(u64::from(answer.ttl.clamp(1, 120)));
                e.next = Some(now + wait);
            }
            Opcode::REGISTRATION
            | Opcode::REFRESH
            | Opcode::REFRESH_ALT
            | Opcode::MULTIHOMED_REGISTRATION => {
                if packet.flags.rcode == 0 {
                    let granted = answer.ttl.clamp(60, REQUESTED_TTL);
                    let was_registered = e.state == NameState::Registered;
                    e.state = NameState::Registered;
                    e.refreshing = false;
                    e.sent = 0;
                    e.next = Some(now + Duration::from_secs(u64::from(granted / 2)));
                    e.pause = self.config.conflict_retry;
                    if !was_registered {
                        self.events.push_back(NameEvent::Registered(e.name));
                    }
                } else if !e.refreshing {
                    let owner = match &answer.rdata {
                        RData::Nb(entries) => entries.first().map_or(self.server, |x| x.address),
                        _ => self.server,
                    };
                    let owner = if owner == self.address {
                        self.server
                    } else {
                        owner
                    };
                    // Tried again later: the other owner's registration
                    // may lapse.
                    e.state = NameState::Conflict { owner };
                    e.next = Some(now + e.pause);
                    e.pause = (e.pause * 2).min(self.config.conflict_max_retry);
                    self.events.push_back(NameEvent::Conflict {
                        name: e.name,
                        owner,
                    });
                }
            }
            _ => {}
        }
    }

    /// Advances time: sends due registrations and refreshes, and registers a
    /// refused name again when its pause is over (with the next transaction id).
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.entries.len() {
            let e = &mut self.entries[i];
            if e.next.is_none_or(|t| t > now) {
                continue;
            }
            if matches!(e.state, NameState::Conflict { .. }) {
                e.state = NameState::Registering;
                e.trn_id = e.trn_id.wrapping_add(1);
                e.sent = 0;
            }
            let e = &self.entries[i];
            if e.state == NameState::Registered && !e.refreshing {
                let e = &mut self.entries[i];
                e.refreshing = true;
                e.sent = 0;
            }
            let e = &self.entries[i];
            if e.sent >= self.config.retries {
                // The server did not answer: keep the name locally (broadcast
                // registration still protects it) and try again later.
                let e = &mut self.entries[i];
                e.sent = 0;
                e.next = Some(now + self.config.interval * 12);
                continue;
            }
            if let Some(p) = self.request(e) {
                self.transmits.push_back(p);
            }
            let e = &mut self.entries[i];
            e.sent += 1;
            e.next = Some(now + self.config.interval);
        }
    }

    /// The next packet for the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<NameEvent> {
        self.events.pop_front()
    }

    /// When to call [`WinsClient::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries.iter().filter_map(|e| e.next).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsend_wire::nbns::Rcode;

    const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

    fn alice() -> NetbiosName {
        NetbiosName::new("ALICE", 3).unwrap()
    }

    fn reply(request: &[u8], flags: u16, ttl: u32) -> Vec<u8> {
        let req = Packet::parse(request).unwrap();
        let entry = NbEntry::new(false, NodeType::H, US);
        let mut p = Packet::registration_response(
            req.trn_id,
            req.questions[0].name.clone(),
            Rcode(0),
            ttl,
            entry,
        );
        p.flags = netsend_wire::nbns::Flags::from_word(flags);
        if flags & 0x7800 == 0x3800 {
            p.answers[0].rdata = RData::Wack(req.flags.to_word());
        }
        p.to_bytes().unwrap()
    }

    #[test]
    fn registers_refreshes_and_releases() {
        let t0 = Instant::now();
        let mut c = WinsClient::new(SERVER, US, WinsConfig::default());
        c.register(t0, alice(), false, 42);
        let req = c.poll_transmit().unwrap();
        let parsed = Packet::parse(&req).unwrap();
        assert_eq!(parsed.flags.to_word(), 0x2900);
        assert_eq!(parsed.additional[0].ttl, REQUESTED_TTL);
        // A WACK makes it wait, then the positive answer registers the name.
        c.handle_datagram(t0, SERVER, &reply(&req, 0xBC00, 10));
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        c.handle_datagram(t0, SERVER, &reply(&req, 0xAD80, 600));
        assert_eq!(c.state(&alice()), Some(NameState::Registered));
        assert_eq!(c.poll_event(), Some(NameEvent::Registered(alice())));
        // Refresh at half the granted TTL, with opcode 8.
        let refresh_at = c.poll_timeout().unwrap();
        assert_eq!(refresh_at, t0 + Duration::from_secs(300));
        c.handle_timeout(refresh_at);
        let refresh = Packet::parse(&c.poll_transmit().unwrap()).unwrap();
        assert_eq!(refresh.flags.opcode(), Opcode::REFRESH);
        c.release(&alice(), 7);
        assert_eq!(
            Packet::parse(&c.poll_transmit().unwrap())
                .unwrap()
                .flags
                .to_word(),
            0x3000
        );
    }

    #[test]
    fn refusal_and_strangers() {
        let t0 = Instant::now();
        let mut c = WinsClient::new(SERVER, US, WinsConfig::default());
        c.register(t0, alice(), false, 42);
        let req = c.poll_transmit().unwrap();
        // Answers from anyone but the server are ignored.
        c.handle_datagram(t0, Ipv4Addr::new(192, 0, 2, 66), &reply(&req, 0xAD86, 0));
        assert_eq!(c.state(&alice()), Some(NameState::Registering));
        c.handle_datagram(t0, SERVER, &reply(&req, 0xAD86, 0));
        assert!(matches!(
            c.state(&alice()),
            Some(NameState::Conflict { .. })
        ));
        // Tried again after the pause (60 s, then doubling); the server
        // accepts it this time.
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(60)));
        let later = t0 + Duration::from_secs(60);
        c.handle_timeout(later);
        let again = c.poll_transmit().unwrap();
        assert_eq!(Packet::parse(&again).unwrap().trn_id, 43);
        c.handle_datagram(later, SERVER, &reply(&again, 0xAD86, 0));
        assert_eq!(c.poll_timeout(), Some(later + Duration::from_secs(120)));
        let later = later + Duration::from_secs(120);
        c.handle_timeout(later);
        let again = c.poll_transmit().unwrap();
        c.handle_datagram(later, SERVER, &reply(&again, 0xAD80, 600));
        assert_eq!(c.state(&alice()), Some(NameState::Registered));
        // Unanswered requests are retried three times, then later again.
        let mut c = WinsClient::new(SERVER, US, WinsConfig::default());
        c.register(t0, alice(), false, 1);
        let mut sent = 0;
        let mut now = t0;
        while sent < 3 {
            while c.poll_transmit().is_some() {
                sent += 1;
            }
            now = c.poll_timeout().unwrap();
            c.handle_timeout(now);
        }
        assert_eq!(now - t0, Duration::from_secs(15));
        assert_eq!(c.state(&alice()), Some(NameState::Registering));
    }

    #[test]
    fn two_hosts_of_the_simulated_lan_register_one_name_with_the_server() {
        use crate::sim::Lan;
        let mut lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11]]).with_wins(SERVER);
        // Host 1 is off the segment: only the server can refuse the name.
        lan.cut[1] = true;
        lan.register(0, alice(), 1);
        lan.cut[1] = false;
        let client = |lan: &Lan, i: usize| lan.wins_clients[i].as_ref().unwrap().state(&alice());
        assert_eq!(client(&lan, 0), Some(NameState::Registered));
        let now = lan.now;
        lan.wins_clients[1]
            .as_mut()
            .unwrap()
            .register(now, alice(), false, 2);
        lan.drive_until(now + Duration::from_secs(1));
        assert_eq!(client(&lan, 1), Some(NameState::Conflict { owner: US }));
        // The owner releases it; at the next try the server grants it.
        lan.wins_clients[0].as_mut().unwrap().release(&alice(), 3);
        lan.wait(Duration::from_secs(61));
        assert_eq!(client(&lan, 1), Some(NameState::Registered));
        let server = &lan.wins.as_ref().unwrap().server;
        let record = server.get(&alice()).unwrap();
        let holders: Vec<Ipv4Addr> = record.live(lan.wall()).map(|m| m.address).collect();
        assert_eq!(holders, [Ipv4Addr::new(192, 0, 2, 11)]);
    }
}
