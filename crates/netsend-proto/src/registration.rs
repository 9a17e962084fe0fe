//! B-node name registration, release and conflict handling (RFC 1001 §15.2,
//! RFC 1002 §4.2), sans IO.
//!
//! Call order: after [`NameTable::register`] or [`NameTable::release`], and after
//! every [`NameTable::handle_datagram`] or [`NameTable::handle_timeout`], drain
//! [`NameTable::poll_transmit`] (each packet goes to the subnet broadcast address,
//! UDP 137) and [`NameTable::poll_event`], then sleep until
//! [`NameTable::poll_timeout`]. A registration is broadcast `retries` times,
//! `interval` apart, with the same transaction id; any negative response refuses
//! the name, silence after the last try registers it. A name conflict demand
//! puts a registered unique name in conflict: it is no longer answered for.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netsend_wire::nbns::{NbEntry, NodeType, Opcode, Packet, RData};
use netsend_wire::NetbiosName;

use crate::responder::OwnedName;

/// Where a name stands on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameState {
    /// Registration requests are being broadcast.
    Registering,
    /// Nobody objected: the name is ours and defended.
    Registered,
    /// Another host owns it (negative response) or demanded it (conflict).
    Conflict {
        /// The host that objected.
        owner: Ipv4Addr,
    },
}

/// Something the driver should act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameEvent {
    /// The name is ours.
    Registered(NetbiosName),
    /// Another host refused our registration or demanded the name.
    Conflict {
        /// The name.
        name: NetbiosName,
        /// Who objected.
        owner: Ipv4Addr,
    },
}

/// Retry timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// Broadcasts per registration or release (RFC 1002 BCAST_REQ_RETRY_COUNT 3).
    pub retries: u32,
    /// Spacing (BCAST_REQ_RETRY_TIMEOUT 250 ms; nmbd waits 1 s).
    pub interval: Duration,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            retries: 3,
            interval: Duration::from_millis(250),
        }
    }
}

#[derive(Debug)]
struct Entry {
    name: NetbiosName,
    group: bool,
    trn_id: u16,
    state: NameState,
    sent: u32,
    next: Option<Instant>,
}

#[derive(Debug)]
struct Release {
    packet: Vec<u8>,
    left: u32,
    next: Instant,
}

/// The names one interface holds, with their registration state.
#[derive(Debug)]
pub struct NameTable {
    address: Ipv4Addr,
    config: RegistrationConfig,
    entries: Vec<Entry>,
    releases: Vec<Release>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<NameEvent>,
}

impl NameTable {
    /// An empty table for the interface at `address`.
    pub fn new(address: Ipv4Addr, config: RegistrationConfig) -> Self {
        Self {
            address,
            config,
            entries: Vec::new(),
            releases: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    fn entry(&self, group: bool) -> NbEntry {
        NbEntry::new(group, NodeType::B, self.address)
    }

    /// Starts registering `name` (unique or group) with transaction id `trn_id`.
    /// Registering a name already in the table restarts it.
    pub fn register(&mut self, now: Instant, name: NetbiosName, group: bool, trn_id: u16) {
        self.entries.retain(|e| e.name != name);
        self.entries.push(Entry {
            name,
            group,
            trn_id,
            state: NameState::Registering,
            sent: 0,
            next: Some(now),
        });
        self.handle_timeout(now);
    }

    /// Drops `name` and broadcasts its release (when we held it).
    pub fn release(&mut self, now: Instant, name: &NetbiosName, trn_id: u16) {
        let Some(i) = self.entries.iter().position(|e| e.name == *name) else {
            return;
        };
        let entry = self.entries.remove(i);
        if entry.state == NameState::Registered {
            if let Ok(packet) =
                Packet::release_request(trn_id, entry.name, self.entry(entry.group)).to_bytes()
            {
                self.releases.push(Release {
                    packet,
                    left: self.config.retries,
                    next: now,
                });
                self.handle_timeout(now);
            }
        }
    }

    /// Releases every registered name (service stop).
    pub fn release_all(&mut self, now: Instant, first_trn_id: u16) {
        let names: Vec<NetbiosName> = self.entries.iter().map(|e| e.name).collect();
        for (i, name) in names.iter().enumerate() {
            self.release(now, name, first_trn_id.wrapping_add(i as u16));
        }
    }

    /// The state of `name`, if it is in the table.
    pub fn state(&self, name: &NetbiosName) -> Option<NameState> {
        self.entries
            .iter()
            .find(|e| e.name == *name)
            .map(|e| e.state)
    }

    /// The names we answer for: the registered ones.
    pub fn owned(&self) -> Vec<OwnedName> {
        self.entries
            .iter()
            .filter(|e| e.state == NameState::Registered)
            .map(|e| OwnedName {
                name: e.name,
                group: e.group,
            })
            .collect()
    }

    /// Feeds a name service packet received from `src`: negative registration
    /// responses to our requests and conflict demands for our names.
    pub fn handle_datagram(&mut self, _now: Instant, src: Ipv4Addr, bytes: &[u8]) {
        let Ok(packet) = Packet::parse(bytes) else {
            return;
        };
        if !packet.flags.response
            || packet.flags.opcode() != Opcode::REGISTRATION
            || packet.flags.rcode == 0
        {
            return;
        }
        let Some(answer) = packet.answers.first() else {
            return;
        };
        let conflict_demand = packet.flags.rcode == 7;
        let claimed_by_us = match &answer.rdata {
            RData::Nb(entries) => entries.iter().any(|e| e.address == self.address),
            _ => false,
        };
        let Some(entry) = self.entries.iter_mut().find(|e| e.name == answer.name.name) else {
            return;
        };
        let refused =
            entry.state == NameState::Registering && packet.trn_id == entry.trn_id && claimed_by_us;
        let demanded = conflict_demand && entry.state == NameState::Registered && !entry.group;
        if refused || demanded {
            entry.state = NameState::Conflict { owner: src };
            entry.next = None;
            self.events.push_back(NameEvent::Conflict {
                name: entry.name,
                owner: src,
            });
        }
    }

    /// Advances time: sends due registrations and releases, and registers names
    /// whose last try went unanswered.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            if e.state != NameState::Registering || e.next.is_none_or(|t| t > now) {
                continue;
            }
            if e.sent >= self.config.retries {
                let name = e.name;
                let e = &mut self.entries[i];
                e.state = NameState::Registered;
                e.next = None;
                self.events.push_back(NameEvent::Registered(name));
                continue;
            }
            let (name, group, trn_id) = (e.name, e.group, e.trn_id);
            if let Ok(p) = Packet::registration_request(trn_id, name, self.entry(group)).to_bytes()
            {
                self.transmits.push_back(p);
            }
            let e = &mut self.entries[i];
            e.sent += 1;
            e.next = Some(now + self.config.interval);
        }
        let interval = self.config.interval;
        for r in &mut self.releases {
            if r.left > 0 && r.next <= now {
                self.transmits.push_back(r.packet.clone());
                r.left -= 1;
                r.next = now + interval;
            }
        }
        self.releases.retain(|r| r.left > 0);
    }

    /// The next packet to broadcast.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<NameEvent> {
        self.events.pop_front()
    }

    /// When to call [`NameTable::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter_map(|e| e.next)
            .chain(self.releases.iter().map(|r| r.next))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responder::{answer, Host};

    /// Hosts on one simulated broadcast segment, stepped with simulated time.
    struct Lan {
        now: Instant,
        hosts: Vec<NameTable>,
    }

    impl Lan {
        fn new(addresses: &[[u8; 4]]) -> Self {
            Self {
                now: Instant::now(),
                hosts: addresses
                    .iter()
                    .map(|a| NameTable::new(Ipv4Addr::from(*a), RegistrationConfig::default()))
                    .collect(),
            }
        }

        /// Delivers every broadcast to every other host, lets each answer with the
        /// responder rules, and advances time; bounded, so a livelock fails.
        fn drive(&mut self) {
            for _ in 0..100 {
                let mut sent = false;
                for from in 0..self.hosts.len() {
                    while let Some(packet) = self.hosts[from].poll_transmit() {
                        sent = true;
                        let request = Packet::parse(&packet).unwrap();
                        for to in 0..self.hosts.len() {
                            if to == from {
                                continue;
                            }
                            let names = self.hosts[to].owned();
                            let host = Host {
                                names: &names,
                                address: self.hosts[to].address,
                                mac: [0; 6],
                            };
                            if let Some(reply) = answer(&request, &host) {
                                let bytes = reply.to_bytes().unwrap();
                                let replier = self.hosts[to].address;
                                self.hosts[from].handle_datagram(self.now, replier, &bytes);
                            }
                        }
                    }
                }
                let next = self.hosts.iter().filter_map(NameTable::poll_timeout).min();
                match next {
                    Some(t) => {
                        self.now = self.now.max(t);
                        for h in &mut self.hosts {
                            h.handle_timeout(self.now);
                        }
                    }
                    None if !sent => return,
                    None => {}
                }
            }
            panic!("name registration did not settle");
        }
    }

    fn name(s: &str) -> NetbiosName {
        NetbiosName::new(s, 3).unwrap()
    }

    #[test]
    fn unopposed_registration_takes_three_tries() {
        let mut lan = Lan::new(&[[192, 0, 2, 10]]);
        let t0 = lan.now;
        lan.hosts[0].register(t0, name("ALICE"), false, 1);
        lan.drive();
        assert_eq!(
            lan.hosts[0].state(&name("ALICE")),
            Some(NameState::Registered)
        );
        assert_eq!(
            lan.hosts[0].poll_event(),
            Some(NameEvent::Registered(name("ALICE")))
        );
        assert_eq!(lan.now - t0, Duration::from_millis(750));
    }

    #[test]
    fn second_host_is_refused_and_first_keeps_the_name() {
        let mut lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11]]);
        let now = lan.now;
        lan.hosts[0].register(now, name("ALICE"), false, 1);
        lan.drive();
        let now = lan.now;
        lan.hosts[1].register(now, name("ALICE"), false, 2);
        lan.drive();
        assert_eq!(
            lan.hosts[0].state(&name("ALICE")),
            Some(NameState::Registered)
        );
        assert_eq!(
            lan.hosts[1].state(&name("ALICE")),
            Some(NameState::Conflict {
                owner: Ipv4Addr::new(192, 0, 2, 10)
            })
        );
        assert!(lan.hosts[1].owned().is_empty());
        // Group names are shared.
        let wg = NetbiosName::new("WORKGROUP", 0).unwrap();
        let now = lan.now;
        lan.hosts[0].register(now, wg, true, 3);
        lan.hosts[1].register(now, wg, true, 4);
        lan.drive();
        assert_eq!(lan.hosts[1].state(&wg), Some(NameState::Registered));
    }

    #[test]
    fn release_broadcasts_and_frees_the_name() {
        let mut lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11]]);
        let now = lan.now;
        lan.hosts[0].register(now, name("ALICE"), false, 1);
        lan.drive();
        let now = lan.now;
        lan.hosts[0].release(now, &name("ALICE"), 9);
        let first = lan.hosts[0].poll_transmit().unwrap();
        assert_eq!(Packet::parse(&first).unwrap().flags.to_word(), 0x3010);
        lan.drive();
        let now = lan.now;
        lan.hosts[1].register(now, name("ALICE"), false, 2);
        lan.drive();
        assert_eq!(
            lan.hosts[1].state(&name("ALICE")),
            Some(NameState::Registered)
        );
    }

    #[test]
    fn conflict_demand_puts_a_registered_name_in_conflict() {
        let mut t = NameTable::new(Ipv4Addr::new(192, 0, 2, 10), RegistrationConfig::default());
        let now = Instant::now();
        t.register(now, name("ALICE"), false, 1);
        for i in 1..=4 {
            t.handle_timeout(now + Duration::from_millis(250 * i));
        }
        assert_eq!(t.state(&name("ALICE")), Some(NameState::Registered));
        let demand = Packet::conflict_demand(77, name("ALICE").into(), 0)
            .to_bytes()
            .unwrap();
        t.handle_datagram(now, Ipv4Addr::new(192, 0, 2, 99), &demand);
        assert!(matches!(
            t.state(&name("ALICE")),
            Some(NameState::Conflict { .. })
        ));
        // A stale negative response with another transaction id changes nothing.
        let mut t2 = NameTable::new(Ipv4Addr::new(192, 0, 2, 10), RegistrationConfig::default());
        t2.register(now, name("BOB"), false, 5);
        let entry = NbEntry::new(false, NodeType::B, Ipv4Addr::new(192, 0, 2, 10));
        let wrong = Packet::registration_response(
            6,
            name("BOB").into(),
            netsend_wire::nbns::Rcode::ACT_ERR,
            0,
            entry,
        );
        t2.handle_datagram(
            now,
            Ipv4Addr::new(192, 0, 2, 99),
            &wrong.to_bytes().unwrap(),
        );
        assert_eq!(t2.state(&name("BOB")), Some(NameState::Registering));
    }
}
