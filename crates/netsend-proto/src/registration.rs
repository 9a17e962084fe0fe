//! B-node name registration, release and conflict handling (RFC 1001 §15.2,
//! RFC 1002 §4.2), sans IO.
//!
//! Call order: after [`NameTable::register`] or [`NameTable::release`], and after
//! every [`NameTable::handle_datagram`] or [`NameTable::handle_timeout`], drain
//! [`NameTable::poll_transmit`] (each packet goes to the subnet broadcast address,
//! UDP 137) and [`NameTable::poll_event`], then sleep until
//! [`NameTable::poll_timeout`]. A registration is broadcast `retries` times,
//! `interval` apart, with the same transaction id; silence after the last try
//! registers it.
//!
//! Nothing in the name service is authenticated, so one spoofed packet used
//! to take a name off the network for good (the weakness behind MS00-047).
//! Before giving a name up — on a negative response to our registration, a
//! name conflict demand or a name release demand for it — the table checks
//! that another host really holds it: it broadcasts a name query (a fresh
//! random transaction id, `retries` tries) and gives the name up only when a
//! host other than us answers. Otherwise the demand is ignored
//! ([`NameEvent::Ignored`]), and further demands for that name are ignored
//! without a new check for [`CHECK_QUIET`], so a flood of them costs at most
//! `retries` queries per name per quiet period. A name lost to another host
//! is registered again after `conflict_retry`, the pause doubling up to
//! `conflict_max_retry`, and at once when that host releases it.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use netsend_wire::nbns::{NbEntry, NodeType, Opcode, Packet, RData, Rcode};
use netsend_wire::NetbiosName;

use crate::responder::OwnedName;

/// After a check found nobody else holding a name, how long further demands
/// for it are ignored without another check.
pub const CHECK_QUIET: Duration = Duration::from_secs(10);

/// Most events queued between two drains; beyond it, ignored demands are
/// not reported one by one (they are still ignored).
const MAX_EVENTS: usize = 1024;

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

/// What another host asked of one of our names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demand {
    /// A negative response to our registration: "the name is mine".
    Refusal,
    /// A name conflict demand (registration response, rcode CFT_ERR).
    Conflict,
    /// A name release request carrying our own address: "give it up".
    Release,
}

impl Demand {
    /// How people read it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Refusal => "refusal",
            Self::Conflict => "conflict demand",
            Self::Release => "release demand",
        }
    }
}

/// Something the driver should act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameEvent {
    /// The name is ours.
    Registered(NetbiosName),
    /// Another host holds the name: it refused our registration or demanded
    /// the name, and answered a query for it.
    Conflict {
        /// The name.
        name: NetbiosName,
        /// The host that holds it.
        owner: Ipv4Addr,
    },
    /// Demands for one of our names that no other host's answer bore out:
    /// they were ignored and the name is kept.
    Ignored {
        /// The name.
        name: NetbiosName,
        /// Where the (last) demand came from.
        from: SocketAddrV4,
        /// What it was.
        demand: Demand,
        /// How many such demands this event stands for.
        count: u32,
    },
}

/// Retry timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// Broadcasts per registration, release or check (RFC 1002
    /// BCAST_REQ_RETRY_COUNT 3).
    pub retries: u32,
    /// Spacing (BCAST_REQ_RETRY_TIMEOUT 250 ms; nmbd waits 1 s).
    pub interval: Duration,
    /// First pause before a name lost to another host is registered again.
    pub conflict_retry: Duration,
    /// Longest such pause (it doubles after each failed try).
    pub conflict_max_retry: Duration,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            retries: 3,
            interval: Duration::from_millis(250),
            conflict_retry: Duration::from_secs(60),
            conflict_max_retry: Duration::from_secs(900),
        }
    }
}

/// A name query under way: does another host hold the name?
#[derive(Debug, Clone, Copy)]
struct Check {
    trn_id: u16,
    sent: u32,
    next: Instant,
    from: SocketAddrV4,
    demand: Demand,
    count: u32,
}

/// A demand that was ignored, for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IgnoredDemand {
    /// Where it came from.
    pub from: SocketAddrV4,
    /// What it was.
    pub demand: Demand,
    /// When it was ignored.
    pub at: Instant,
}

/// What happened to a name lately, for `netsend name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameReport {
    /// Where it stands.
    pub state: NameState,
    /// When a name in conflict is tried again.
    pub retry_at: Option<Instant>,
    /// A demand being checked now.
    pub checking: Option<Demand>,
    /// Demands ignored since the name was added.
    pub ignored: u32,
    /// The last of them.
    pub last_ignored: Option<IgnoredDemand>,
    /// The host it was last in conflict with, and when that began.
    pub last_conflict: Option<(Ipv4Addr, Instant)>,
}

#[derive(Debug)]
struct Entry {
    name: NetbiosName,
    group: bool,
    trn_id: u16,
    state: NameState,
    sent: u32,
    next: Option<Instant>,
    check: Option<Check>,
    quiet_until: Option<Instant>,
    pause: Duration,
    ignored: u32,
    last_ignored: Option<IgnoredDemand>,
    last_conflict: Option<(Ipv4Addr, Instant)>,
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
    /// State of the transaction id generator (splitmix64).
    seed: u64,
}

impl NameTable {
    /// An empty table for the interface at `address`; `seed` (random, e.g.
    /// from the OS) makes the transaction ids of its checks and retries
    /// unpredictable to other hosts.
    pub fn new(address: Ipv4Addr, config: RegistrationConfig, seed: u64) -> Self {
        Self {
            address,
            config,
            entries: Vec::new(),
            releases: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            seed,
        }
    }

    fn entry(&self, group: bool) -> NbEntry {
        NbEntry::new(group, NodeType::B, self.address)
    }

    /// A fresh transaction id (splitmix64 over the seed).
    fn trn_id(&mut self) -> u16 {
        crate::resolver::next_trn_id(&mut self.seed)
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
            check: None,
            quiet_until: None,
            pause: self.config.conflict_retry,
            ignored: 0,
            last_ignored: None,
            last_conflict: None,
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

    /// What happened to `name` lately, if it is in the table.
    pub fn report(&self, name: &NetbiosName) -> Option<NameReport> {
        let e = self.entries.iter().find(|e| e.name == *name)?;
        Some(NameReport {
            state: e.state,
            retry_at: match e.state {
                NameState::Conflict { .. } => e.next,
                _ => None,
            },
            checking: e.check.map(|c| c.demand),
            ignored: e.ignored,
            last_ignored: e.last_ignored,
            last_conflict: e.last_conflict,
        })
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

    /// Feeds a name service packet received from `src`: negative responses
    /// to our registrations, conflict demands and release requests for our
    /// names, and answers to our checks.
    pub fn handle_datagram(&mut self, now: Instant, src: SocketAddrV4, bytes: &[u8]) {
        let Ok(packet) = Packet::parse(bytes) else {
            return;
        };
        let opcode = packet.flags.opcode();
        if !packet.flags.response {
            if opcode == Opcode::RELEASE {
                self.handle_release(now, src, &packet);
            }
            return;
        }
        let Some(answer) = packet.answers.first() else {
            return;
        };
        let Some(i) = self.entries.iter().position(|e| e.name == answer.name.name) else {
            return;
        };
        let e = &self.entries[i];
        let from_us = *src.ip() == self.address;
        if opcode == Opcode::QUERY {
            let held_elsewhere = packet.flags.rcode == 0
                && matches!(&answer.rdata, RData::Nb(nb) if nb.iter().any(|x| x.address != self.address));
            if !from_us && held_elsewhere && e.check.is_some_and(|c| c.trn_id == packet.trn_id) {
                self.entries[i].check = None;
                self.lose(now, i, *src.ip());
            }
            return;
        }
        if opcode != Opcode::REGISTRATION || packet.flags.rcode == 0 || from_us {
            return;
        }
        let claimed_by_us = match &answer.rdata {
            RData::Nb(entries) => entries.iter().any(|x| x.address == self.address),
            _ => false,
        };
        let refused =
            e.state == NameState::Registering && packet.trn_id == e.trn_id && claimed_by_us;
        let demanded =
            packet.flags.rcode == Rcode::CFT_ERR.0 && e.state == NameState::Registered && !e.group;
        if refused {
            self.demand(now, i, src, Demand::Refusal);
        } else if demanded {
            self.demand(now, i, src, Demand::Conflict);
        }
    }

    /// A release request for one of our unique names: from the host we lost
    /// it to, the name is free again; with our own address (from anyone
    /// else), a demand that we give it up.
    fn handle_release(&mut self, now: Instant, src: SocketAddrV4, packet: &Packet) {
        let Some(question) = packet.question() else {
            return;
        };
        let claimed = packet.additional.iter().find_map(|rr| match &rr.rdata {
            RData::Nb(entries) => entries.first().copied(),
            _ => None,
        });
        let Some(claimed) = claimed else {
            return;
        };
        let Some(i) = self
            .entries
            .iter()
            .position(|e| e.name == question.name.name && !e.group)
        else {
            return;
        };
        match self.entries[i].state {
            NameState::Conflict { owner } if owner == *src.ip() && claimed.address == owner => {
                // Try again now.
                self.entries[i].next = Some(now);
                self.handle_timeout(now);
            }
            NameState::Registered
                if claimed.address == self.address && *src.ip() != self.address =>
            {
                self.demand(now, i, src, Demand::Release);
            }
            _ => {}
        }
    }

    /// Another host demands entry `i`'s name (or refused it): check that it
    /// really holds it, unless a check is under way or just found nobody.
    fn demand(&mut self, now: Instant, i: usize, from: SocketAddrV4, demand: Demand) {
        let trn_id = self.trn_id();
        let e = &mut self.entries[i];
        if let Some(c) = &mut e.check {
            c.count = c.count.saturating_add(1);
            c.from = from;
            c.demand = demand;
            return;
        }
        if e.quiet_until.is_some_and(|t| t > now) {
            self.ignore(now, i, from, demand, 1);
            return;
        }
        // A registration under way pauses while its refusal is checked.
        if e.state == NameState::Registering {
            e.next = None;
        }
        e.check = Some(Check {
            trn_id,
            sent: 0,
            next: now,
            from,
            demand,
            count: 1,
        });
        self.handle_timeout(now);
    }

    /// Records `count` ignored demands for entry `i`'s name and reports them
    /// (merged with the last event when it is the same).
    fn ignore(&mut self, now: Instant, i: usize, from: SocketAddrV4, demand: Demand, count: u32) {
        let e = &mut self.entries[i];
        e.ignored = e.ignored.saturating_add(count);
        e.last_ignored = Some(IgnoredDemand {
            from,
            demand,
            at: now,
        });
        let name = e.name;
        if let Some(NameEvent::Ignored {
            name: n,
            from: f,
            demand: d,
            count: c,
        }) = self.events.back_mut()
        {
            if *n == name && *f == from && *d == demand {
                *c = c.saturating_add(count);
                return;
            }
        }
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(NameEvent::Ignored {
                name,
                from,
                demand,
                count,
            });
        }
    }

    /// Entry `i`'s name is held by `owner`: stop answering for it and try
    /// again later.
    fn lose(&mut self, now: Instant, i: usize, owner: Ipv4Addr) {
        let max = self.config.conflict_max_retry;
        let e = &mut self.entries[i];
        e.state = NameState::Conflict { owner };
        e.next = Some(now + e.pause);
        e.pause = (e.pause * 2).min(max);
        e.last_conflict = Some((owner, now));
        self.events.push_back(NameEvent::Conflict {
            name: e.name,
            owner,
        });
    }

    /// Advances time: sends due registrations, checks and releases, registers
    /// names whose last try went unanswered, ignores demands no host bore
    /// out, and tries names lost to a conflict again when their pause is over.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.entries.len() {
            self.step_check(now, i);
            let e = &self.entries[i];
            if e.check.is_some() || e.next.is_none_or(|t| t > now) {
                continue;
            }
            if matches!(e.state, NameState::Conflict { .. }) {
                let trn_id = self.trn_id();
                let e = &mut self.entries[i];
                e.state = NameState::Registering;
                e.trn_id = trn_id;
                e.sent = 0;
            }
            let e = &self.entries[i];
            if e.state != NameState::Registering {
                continue;
            }
            if e.sent >= self.config.retries {
                let name = e.name;
                let first = self.config.conflict_retry;
                let e = &mut self.entries[i];
                e.state = NameState::Registered;
                e.next = None;
                e.pause = first;
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

    /// Sends entry `i`'s due check query, or ends a check nobody answered.
    fn step_check(&mut self, now: Instant, i: usize) {
        let Some(c) = self.entries[i].check else {
            return;
        };
        if c.next > now {
            return;
        }
        if c.sent < self.config.retries {
            let name = self.entries[i].name;
            if let Ok(p) = Packet::name_query(c.trn_id, name, true).to_bytes() {
                self.transmits.push_back(p);
            }
            self.entries[i].check = Some(Check {
                sent: c.sent + 1,
                next: now + self.config.interval,
                ..c
            });
            return;
        }
        let e = &mut self.entries[i];
        e.check = None;
        e.quiet_until = Some(now + CHECK_QUIET);
        if e.state == NameState::Registering {
            e.next = Some(now);
        }
        self.ignore(now, i, c.from, c.demand, c.count);
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
            .chain(self.entries.iter().filter_map(|e| e.check.map(|c| c.next)))
            .chain(self.releases.iter().map(|r| r.next))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{at, Lan};

    fn name(s: &str) -> NetbiosName {
        NetbiosName::new(s, 3).unwrap()
    }

    fn events(t: &mut NameTable) -> Vec<NameEvent> {
        std::iter::from_fn(|| t.poll_event()).collect()
    }

    const ATTACKER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);

    fn conflict_demand(n: &str, trn_id: u16) -> Vec<u8> {
        Packet::conflict_demand(trn_id, name(n).into(), 0)
            .to_bytes()
            .unwrap()
    }

    fn release_demand(n: &str, address: Ipv4Addr) -> Vec<u8> {
        let entry = NbEntry::new(false, NodeType::B, address);
        Packet::release_request(9, name(n), entry)
            .to_bytes()
            .unwrap()
    }

    /// A negative registration response (ACT_ERR) to `address`'s claim.
    fn refusal(n: &str, trn_id: u16, address: Ipv4Addr) -> Vec<u8> {
        let entry = NbEntry::new(false, NodeType::B, address);
        Packet::registration_response(trn_id, name(n).into(), Rcode::ACT_ERR, 0, entry)
            .to_bytes()
            .unwrap()
    }

    /// A lone host that registered ALICE.
    fn registered() -> NameTable {
        let mut lan = Lan::new(&[[192, 0, 2, 10]]);
        let now = lan.now;
        lan.hosts[0].register(now, name("ALICE"), false, 1);
        lan.drive();
        let mut t = lan.hosts.pop().unwrap();
        assert_eq!(t.state(&name("ALICE")), Some(NameState::Registered));
        events(&mut t);
        t
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
    fn a_spoofed_conflict_demand_is_checked_and_ignored() {
        let mut t = registered();
        let now = Instant::now();
        t.handle_datagram(now, at(ATTACKER), &conflict_demand("ALICE", 77));
        // The name is still answered for while a query checks the demand.
        assert_eq!(t.owned().len(), 1);
        let mut queries = 0;
        for i in 0..=4 {
            let later = now + Duration::from_millis(250 * i);
            t.handle_timeout(later);
            while let Some(p) = t.poll_transmit() {
                let p = Packet::parse(&p).unwrap();
                assert_eq!(p.flags.to_word(), 0x0110);
                assert_eq!(p.question().unwrap().name.name, name("ALICE"));
                queries += 1;
            }
            // Our own answer to our own broadcast counts for nothing.
            let own = Packet::positive_query_response(
                0,
                name("ALICE").into(),
                0,
                vec![NbEntry::new(
                    false,
                    NodeType::B,
                    Ipv4Addr::new(192, 0, 2, 10),
                )],
            );
            t.handle_datagram(
                later,
                at(Ipv4Addr::new(192, 0, 2, 10)),
                &own.to_bytes().unwrap(),
            );
        }
        assert_eq!(queries, 3);
        assert_eq!(t.state(&name("ALICE")), Some(NameState::Registered));
        assert_eq!(
            events(&mut t),
            [NameEvent::Ignored {
                name: name("ALICE"),
                from: at(ATTACKER),
                demand: Demand::Conflict,
                count: 1
            }]
        );
        let report = t.report(&name("ALICE")).unwrap();
        assert_eq!(report.ignored, 1);
        assert_eq!(report.last_ignored.unwrap().demand, Demand::Conflict);
        // A flood in the quiet period that follows costs no query at all.
        let later = now + Duration::from_secs(2);
        for trn_id in 0..1000 {
            t.handle_datagram(later, at(ATTACKER), &conflict_demand("ALICE", trn_id));
        }
        assert!(t.poll_transmit().is_none());
        assert_eq!(t.report(&name("ALICE")).unwrap().ignored, 1001);
        assert!(matches!(
            events(&mut t)[..],
            [NameEvent::Ignored { count: 1000, .. }]
        ));
        assert_eq!(t.state(&name("ALICE")), Some(NameState::Registered));
    }

    #[test]
    fn a_spoofed_release_demand_and_a_spoofed_refusal_are_ignored() {
        let mut t = registered();
        let now = Instant::now();
        let ours = Ipv4Addr::new(192, 0, 2, 10);
        t.handle_datagram(now, at(ATTACKER), &release_demand("ALICE", ours));
        for i in 1..=4 {
            t.handle_timeout(now + Duration::from_millis(250 * i));
        }
        assert_eq!(t.state(&name("ALICE")), Some(NameState::Registered));
        assert!(matches!(
            events(&mut t)[..],
            [NameEvent::Ignored {
                demand: Demand::Release,
                ..
            }]
        ));
        // Someone else's release of the name is not a demand.
        let mut t = registered();
        t.handle_datagram(now, at(ATTACKER), &release_demand("ALICE", ATTACKER));
        assert!(t.poll_transmit().is_none());
        // A refusal of a registration, with its transaction id, is checked
        // too; nobody answers, so the registration goes on.
        let mut t = NameTable::new(ours, RegistrationConfig::default(), 5);
        t.register(now, name("BOB"), false, 5);
        t.handle_datagram(now, at(ATTACKER), &refusal("BOB", 5, ours));
        for i in 1..=12 {
            t.handle_timeout(now + Duration::from_millis(250 * i));
        }
        assert_eq!(t.state(&name("BOB")), Some(NameState::Registered));
        // A stale negative response with another transaction id changes nothing.
        let mut t2 = NameTable::new(ours, RegistrationConfig::default(), 6);
        t2.register(now, name("BOB"), false, 5);
        t2.handle_datagram(now, at(ATTACKER), &refusal("BOB", 6, ours));
        assert_eq!(t2.state(&name("BOB")), Some(NameState::Registering));
        assert!(t2.report(&name("BOB")).unwrap().checking.is_none());
    }

    #[test]
    fn a_real_conflict_is_tried_again_on_a_schedule_and_at_the_owners_release() {
        let mut lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11]]);
        let other = Ipv4Addr::new(192, 0, 2, 11);
        // Both registered ALICE while the segment was split.
        lan.cut[1] = true;
        let now = lan.now;
        lan.hosts[0].register(now, name("ALICE"), false, 1);
        lan.hosts[1].register(now, name("ALICE"), false, 2);
        lan.drive();
        lan.cut[1] = false;
        events(&mut lan.hosts[0]);
        // A conflict demand (from a third host): the other owner answers
        // the check, so the name is given up.
        let now = lan.now;
        lan.hosts[0].handle_datagram(now, at(ATTACKER), &conflict_demand("ALICE", 3));
        lan.drive_until(now + Duration::from_secs(5));
        assert_eq!(
            lan.hosts[0].state(&name("ALICE")),
            Some(NameState::Conflict { owner: other })
        );
        assert!(lan.hosts[0].owned().is_empty());
        assert_eq!(
            events(&mut lan.hosts[0]),
            [NameEvent::Conflict {
                name: name("ALICE"),
                owner: other
            }]
        );
        let retry = lan.hosts[0]
            .report(&name("ALICE"))
            .unwrap()
            .retry_at
            .unwrap();
        assert_eq!(retry - lan.now, Duration::from_secs(60));
        // After the pause it is tried again; the owner still holds it, so
        // it stays in conflict, the next pause doubled.
        lan.wait(Duration::from_secs(61));
        assert_eq!(
            lan.hosts[0].state(&name("ALICE")),
            Some(NameState::Conflict { owner: other })
        );
        let retry = lan.hosts[0]
            .report(&name("ALICE"))
            .unwrap()
            .retry_at
            .unwrap();
        assert!(
            retry - lan.now > Duration::from_secs(100),
            "{:?}",
            retry - lan.now
        );
        // The owner releases it: it is ours again at once.
        let now = lan.now;
        lan.hosts[1].release(now, &name("ALICE"), 4);
        lan.drive_until(now + Duration::from_secs(5));
        assert_eq!(
            lan.hosts[0].state(&name("ALICE")),
            Some(NameState::Registered)
        );
        let report = lan.hosts[0].report(&name("ALICE")).unwrap();
        assert_eq!(report.last_conflict.map(|(o, _)| o), Some(other));
    }

    #[test]
    fn a_name_whose_owner_left_silently_comes_back_at_the_next_try() {
        let mut lan = Lan::new(&[[192, 0, 2, 10], [192, 0, 2, 11]]);
        let now = lan.now;
        lan.hosts[1].register(now, name("ALICE"), false, 1);
        lan.drive();
        let now = lan.now;
        lan.hosts[0].register(now, name("ALICE"), false, 2);
        lan.drive_until(now + Duration::from_secs(5));
        assert!(matches!(
            lan.hosts[0].state(&name("ALICE")),
            Some(NameState::Conflict { .. })
        ));
        // The owner goes away without a release (as nmbd does on SIGTERM).
        lan.cut[1] = true;
        lan.wait(Duration::from_secs(62));
        assert_eq!(
            lan.hosts[0].state(&name("ALICE")),
            Some(NameState::Registered)
        );
    }
}
