//! A WINS server (an NBNS, RFC 1001 §15.1.3 and RFC 1002 §4.2/§5.1.3), sans
//! IO, following nmbd's `nmbd_winsserver.c`: unicast registration, refresh,
//! release and query, with a challenge of a live owner before its unique
//! name is given to another address.
//!
//! * Registration (opcode 5, multi-homed 15 answered like 5) and refresh
//!   (8 and 9, treated as a registration, as nmbd does): a new name, or one
//!   its registrant already holds, is granted with a TTL clamped to
//!   `min_ttl..=max_ttl` (0 asks for `max_ttl`). A unique name held by
//!   another live address gets a WAIT FOR ACKNOWLEDGEMENT to the registrant
//!   and a unicast name query to the owner (`challenge_retries` tries,
//!   `challenge_interval` apart): a positive answer keeps the name with its
//!   owner and the registrant gets ACT_ERR (its RDATA naming the owner's
//!   address, as our WINS client reads it); a negative answer or silence
//!   gives it to the registrant. A unique registration of a group name is
//!   refused (RFS_ERR, as nmbd does).
//! * Group names accept every member (up to `max_group_members`, each with
//!   its own expiry) and a query lists the members' addresses (nmbd answers
//!   normal groups with 255.255.255.255; the members are more useful to a
//!   WINS-only client and to the site gateway).
//! * Release from a member's address ends its membership (a unique name is
//!   tombstoned: kept, not answered, until its expiry, then dropped);
//!   release from any other address is refused (RFS_ERR), of an unknown
//!   name NAM_ERR.
//! * Query (B bit clear): positive with the address(es) and the remaining
//!   TTL, else the fallback (the site gateway's), else NAM_ERR. The server
//!   host's own names (`Context::own`) are answered and defended first.
//! * Bounds: at most `max_names` names, `max_per_address` per registered
//!   address, `max_challenges` in flight; past them a registration is
//!   refused (RFS_ERR).
//!
//! Every change of the table is an [`Action::Persist`], queued before the
//! reply it allows: the driver commits it before it sends what follows, so a
//! registration is acknowledged only once it is durable.
//!
//! Time is wall-clock ([`SystemTime`]) because expiries outlive a restart.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, SystemTime};

use netsend_wire::nbns::{rr_type, NbEntry, NodeType, Opcode, Packet, RData, Rcode};
use netsend_wire::{NetbiosName, WireName};

use crate::responder::Host;

/// The bounds and timing of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinsServerConfig {
    /// Shortest TTL granted, seconds (nmbd's `min wins ttl`, 6 hours).
    pub min_ttl: u32,
    /// Longest TTL granted, seconds (nmbd's `max wins ttl`, 6 days).
    pub max_ttl: u32,
    /// Most names held (released ones included).
    pub max_names: usize,
    /// Most names one address may hold.
    pub max_per_address: usize,
    /// Most members of one group name.
    pub max_group_members: usize,
    /// Most challenges in flight.
    pub max_challenges: usize,
    /// Queries sent to a challenged owner before it counts as gone.
    pub challenge_retries: u32,
    /// Wait between them.
    pub challenge_interval: Duration,
    /// TTL put in a WACK, seconds (nmbd's 60).
    pub wack_ttl: u32,
}

impl Default for WinsServerConfig {
    fn default() -> Self {
        Self {
            min_ttl: 21_600,
            max_ttl: 518_400,
            max_names: 10_000,
            max_per_address: 256,
            max_group_members: 25,
            max_challenges: 256,
            challenge_retries: 3,
            challenge_interval: Duration::from_secs(2),
            wack_ttl: 60,
        }
    }
}

/// One address holding a name, until its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The address registered.
    pub address: Ipv4Addr,
    /// When it lapses unless refreshed.
    pub expires: SystemTime,
}

/// One name of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The name with its suffix.
    pub name: NetbiosName,
    /// Group (true) or unique.
    pub group: bool,
    /// NB_FLAGS of the last registration (node type; the G bit follows `group`).
    pub nb_flags: u16,
    /// The holders; one for a unique name.
    pub members: Vec<Member>,
    /// Released: kept as a tombstone until its expiry, never answered.
    pub released: bool,
}

impl Record {
    /// The members whose registration has not lapsed at `now`.
    pub fn live(&self, now: SystemTime) -> impl Iterator<Item = &Member> {
        self.members
            .iter()
            .filter(move |m| !self.released && m.expires > now)
    }

    /// Whether a query at `now` is answered from this record.
    pub fn is_active(&self, now: SystemTime) -> bool {
        self.live(now).next().is_some()
    }

    /// The latest expiry of its members (the tombstone's end when released).
    pub fn expires(&self) -> Option<SystemTime> {
        self.members.iter().map(|m| m.expires).max()
    }

    fn entries(&self, now: SystemTime) -> Vec<NbEntry> {
        self.live(now)
            .map(|m| NbEntry {
                flags: self.flags(),
                address: m.address,
            })
            .collect()
    }

    fn flags(&self) -> u16 {
        (self.nb_flags & 0x6000) | if self.group { 0x8000 } else { 0 }
    }
}

/// A change the driver makes durable before it sends what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Store the record (new, refreshed, member added or gone, released).
    Put(Record),
    /// Forget the name (its tombstone or last registration lapsed).
    Remove(NetbiosName),
}

/// What the driver does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Commit the change; skip the rest of this batch if that fails.
    Persist(Change),
    /// An answer to a client.
    Reply {
        /// Where the request came from.
        to: SocketAddrV4,
        /// The encoded response.
        packet: Vec<u8>,
    },
    /// A name query to the owner of a challenged name (port 137).
    Challenge {
        /// The owner.
        to: SocketAddrV4,
        /// The encoded query.
        packet: Vec<u8>,
    },
}

/// What the server decided since start (`messenger status` shows them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Registrations and refreshes granted.
    pub granted: u64,
    /// Registrations refused (ACT_ERR after a challenge, RFS_ERR by a bound or rule).
    pub refused: u64,
    /// Challenges started.
    pub challenges: u64,
    /// Challenges the owner answered (its name kept).
    pub defended: u64,
    /// Releases carried out.
    pub released: u64,
    /// Queries answered positively.
    pub answered: u64,
    /// Queries answered NAM_ERR.
    pub unknown: u64,
}

/// Addresses for a name the table does not hold.
pub type Lookup<'a> = &'a dyn Fn(&NetbiosName) -> Option<Vec<Ipv4Addr>>;

/// What a request is checked against besides the table.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The server host's own names and the address the request came in on.
    pub own: Host<'a>,
    /// Addresses for a name the table does not hold (the site gateway's).
    pub fallback: Option<Lookup<'a>>,
}

/// The registration a challenge decides.
#[derive(Debug)]
struct Challenge {
    name: NetbiosName,
    owner: Ipv4Addr,
    trn_id: u16,
    sent: u32,
    next: SystemTime,
    claim: Claim,
}

/// A registration request, as needed to answer it later.
#[derive(Debug, Clone)]
struct Claim {
    from: SocketAddrV4,
    trn_id: u16,
    wire: WireName,
    entry: NbEntry,
    ttl: u32,
}

/// The WINS server's table and challenges in flight.
#[derive(Debug)]
pub struct WinsServer {
    config: WinsServerConfig,
    records: HashMap<NetbiosName, Record>,
    held: HashMap<Ipv4Addr, usize>,
    challenges: Vec<Challenge>,
    actions: VecDeque<Action>,
    /// State of the challenges' transaction id generator (splitmix64), so
    /// an off-path host cannot guess the id a forged answer needs.
    seed: u64,
    counters: Counters,
}

/// Largest TTL put in an answer (seconds), whatever the table holds.
const MAX_ANSWER_TTL: u64 = u32::MAX as u64;

impl WinsServer {
    /// A server with `records` loaded from the store; those lapsed at `now`
    /// and those over the bounds are left out (and forgotten with a
    /// [`Change::Remove`]). `seed` (random) seeds the challenges'
    /// transaction ids.
    pub fn new(config: WinsServerConfig, records: Vec<Record>, now: SystemTime, seed: u64) -> Self {
        let mut server = Self {
            config,
            records: HashMap::new(),
            held: HashMap::new(),
            challenges: Vec::new(),
            actions: VecDeque::new(),
            seed,
            counters: Counters::default(),
        };
        for record in records {
            let lapsed = record.expires().is_none_or(|e| e <= now);
            if lapsed || server.records.len() >= config.max_names {
                server.persist(Change::Remove(record.name));
            } else {
                server.set(record);
            }
        }
        server
    }

    /// The counters so far.
    pub const fn counters(&self) -> Counters {
        self.counters
    }

    /// Names held (released ones included) and challenges in flight.
    pub fn size(&self) -> (usize, usize) {
        (self.records.len(), self.challenges.len())
    }

    /// The records answered at `now` (the site gateway publishes them).
    pub fn active(&self, now: SystemTime) -> impl Iterator<Item = &Record> {
        self.records.values().filter(move |r| r.is_active(now))
    }

    /// The record of `name`, if the table holds one.
    pub fn get(&self, name: &NetbiosName) -> Option<&Record> {
        self.records.get(name)
    }

    /// The next action, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`WinsServer::handle_timeout`] is next due: a challenge's next
    /// try, or the earliest expiry.
    pub fn poll_timeout(&self) -> Option<SystemTime> {
        let challenges = self.challenges.iter().map(|c| c.next);
        let expiries = self.records.values().filter_map(|r| {
            if r.released {
                r.expires()
            } else {
                r.members.iter().map(|m| m.expires).min()
            }
        });
        challenges.chain(expiries).min()
    }

    /// Sends challenges due again, decides those whose owner stayed silent
    /// (the registrant gets the name), and drops lapsed registrations.
    pub fn handle_timeout(&mut self, now: SystemTime) {
        let mut i = 0;
        while i < self.challenges.len() {
            let c = &mut self.challenges[i];
            if c.next > now {
                i += 1;
            } else if c.sent < self.config.challenge_retries {
                c.sent += 1;
                c.next = now + self.config.challenge_interval;
                let query = Packet::name_query(c.trn_id, c.name, false);
                let to = SocketAddrV4::new(c.owner, 137);
                if let Ok(packet) = query.to_bytes() {
                    self.actions.push_back(Action::Challenge { to, packet });
                }
                i += 1;
            } else {
                let c = self.challenges.swap_remove(i);
                self.grant(now, c.name, false, &c.claim);
            }
        }
        let lapsed: Vec<NetbiosName> = self
            .records
            .values()
            .filter(|r| r.members.iter().any(|m| m.expires <= now))
            .map(|r| r.name)
            .collect();
        for name in lapsed {
            let Some(mut record) = self.records.get(&name).cloned() else {
                continue;
            };
            if !record.released {
                record.members.retain(|m| m.expires > now);
            }
            if record.members.is_empty() || record.released {
                self.unset(&name);
                self.persist(Change::Remove(name));
            } else {
                self.set(record.clone());
                self.persist(Change::Put(record));
            }
        }
    }

    /// Handles one datagram from `src`: a request to the server, or the
    /// answer to one of its challenges. Anything else is ignored.
    pub fn handle_datagram(
        &mut self,
        now: SystemTime,
        src: SocketAddrV4,
        bytes: &[u8],
        cx: &Context<'_>,
    ) {
        let Ok(packet) = Packet::parse(bytes) else {
            return;
        };
        if packet.flags.response {
            self.challenge_answer(now, *src.ip(), &packet);
            return;
        }
        if packet.flags.broadcast {
            return;
        }
        let Some(question) = packet.question() else {
            return;
        };
        if question.qtype != rr_type::NB {
            return;
        }
        let wire = question.name.clone();
        match packet.flags.opcode() {
            Opcode::QUERY => self.query(now, src, packet.trn_id, wire, cx),
            Opcode::REGISTRATION
            | Opcode::MULTIHOMED_REGISTRATION
            | Opcode::REFRESH
            | Opcode::REFRESH_ALT => {
                let Some((entry, ttl)) = claimed(&packet) else {
                    return;
                };
                let claim = Claim {
                    from: src,
                    trn_id: packet.trn_id,
                    wire,
                    entry,
                    ttl,
                };
                self.register(now, packet.flags.to_word(), claim, cx);
            }
            Opcode::RELEASE => {
                let Some((entry, _)) = claimed(&packet) else {
                    return;
                };
                self.release(now, src, packet.trn_id, wire, entry);
            }
            _ => {}
        }
    }

    fn query(
        &mut self,
        now: SystemTime,
        src: SocketAddrV4,
        trn_id: u16,
        wire: WireName,
        cx: &Context<'_>,
    ) {
        let name = wire.name;
        let mut entries = Vec::new();
        let mut ttl = crate::responder::NAME_TTL;
        if let Some(own) = cx.own.names.iter().find(|n| n.name == name) {
            entries.push(NbEntry::new(own.group, NodeType::H, cx.own.address));
        }
        if let Some(record) = self.records.get(&name).filter(|r| r.is_active(now)) {
            let left = record.live(now).map(|m| m.expires).max();
            let secs = left
                .and_then(|e| e.duration_since(now).ok())
                .map_or(0, |d| d.as_secs().min(MAX_ANSWER_TTL));
            ttl = u32::try_from(secs).unwrap_or(u32::MAX);
            let known: Vec<Ipv4Addr> = entries.iter().map(|e| e.address).collect();
            entries.extend(
                record
                    .entries(now)
                    .into_iter()
                    .filter(|e| !known.contains(&e.address)),
            );
        }
        if entries.is_empty() {
            if let Some(addresses) = cx.fallback.and_then(|f| f(&name)) {
                entries.extend(
                    addresses
                        .into_iter()
                        .take(self.config.max_group_members)
                        .map(|a| NbEntry::new(false, NodeType::H, a)),
                );
            }
        }
        entries.truncate(netsend_wire::nbns::MAX_SECTION_ENTRIES * 8);
        let packet = if entries.is_empty() {
            self.counters.unknown += 1;
            Packet::negative_query_response(trn_id, wire)
        } else {
            self.counters.answered += 1;
            Packet::positive_query_response(trn_id, wire, ttl, entries)
        };
        self.reply(src, &packet);
    }

    fn register(&mut self, now: SystemTime, request_flags: u16, claim: Claim, cx: &Context<'_>) {
        let name = claim.wire.name;
        let group = claim.entry.is_group();
        let address = claim.entry.address;
        // The server host defends its own unique names, and its group names
        // cannot become unique.
        if let Some(own) = cx.own.names.iter().find(|n| n.name == name) {
            if own.group && !group {
                return self.refuse(&claim, Rcode::RFS_ERR);
            }
            if !own.group && address != cx.own.address {
                let claim = Claim {
                    entry: NbEntry {
                        address: cx.own.address,
                        ..claim.entry
                    },
                    ..claim
                };
                return self.refuse(&claim, Rcode::ACT_ERR);
            }
        }
        if let Some(c) = self.challenges.iter().find(|c| c.name == name) {
            // A retransmission of the challenged request gets its WACK
            // again; another registrant waits for the outcome by retrying.
            if c.claim.from == claim.from && c.claim.trn_id == claim.trn_id {
                self.wack(&claim, request_flags);
            }
            return;
        }
        let record = self.records.get(&name).filter(|r| r.is_active(now));
        match record {
            Some(r) if r.group && !group => self.refuse(&claim, Rcode::RFS_ERR),
            Some(r) if r.group => self.grant(now, name, true, &claim),
            // Its holder registering again (as unique or as a group).
            Some(r) if r.live(now).any(|m| m.address == address) => {
                self.grant(now, name, false, &claim)
            }
            Some(r) => {
                let owner = r.live(now).map(|m| m.address).next();
                match owner {
                    Some(owner) if self.challenges.len() < self.config.max_challenges => {
                        self.challenge(now, name, owner, request_flags, claim)
                    }
                    _ => self.refuse(&claim, Rcode::RFS_ERR),
                }
            }
            None => self.grant(now, name, group, &claim),
        }
    }

    fn challenge(
        &mut self,
        now: SystemTime,
        name: NetbiosName,
        owner: Ipv4Addr,
        request_flags: u16,
        claim: Claim,
    ) {
        self.counters.challenges += 1;
        self.wack(&claim, request_flags);
        let trn_id = crate::resolver::next_trn_id(&mut self.seed);
        self.challenges.push(Challenge {
            name,
            owner,
            trn_id,
            sent: 0,
            next: now,
            claim,
        });
        self.handle_timeout(now);
    }

    fn challenge_answer(&mut self, now: SystemTime, src: Ipv4Addr, packet: &Packet) {
        if packet.flags.opcode() != Opcode::QUERY {
            return;
        }
        let Some(i) = self
            .challenges
            .iter()
            .position(|c| c.trn_id == packet.trn_id && c.owner == src)
        else {
            return;
        };
        let c = self.challenges.swap_remove(i);
        let still_owned = packet.flags.rcode() == Rcode::OK
            && packet.answers.iter().any(|rr| {
                rr.name.name == c.name
                    && matches!(&rr.rdata, RData::Nb(e) if e.iter().any(|e| e.address == c.owner))
            });
        if still_owned {
            self.counters.defended += 1;
            // The refusal names the owner (the client shows who holds it).
            let claim = Claim {
                entry: NbEntry {
                    address: c.owner,
                    ..c.claim.entry
                },
                ..c.claim
            };
            self.refuse(&claim, Rcode::ACT_ERR);
        } else {
            self.grant(now, c.name, false, &c.claim);
        }
    }

    /// Gives `name` to the claim's address (joining a group when `join`),
    /// persisting before the positive answer.
    fn grant(&mut self, now: SystemTime, name: NetbiosName, join: bool, claim: &Claim) {
        let address = claim.entry.address;
        let ttl = self.ttl(claim.ttl);
        let member = Member {
            address,
            expires: now + Duration::from_secs(u64::from(ttl)),
        };
        let existing = self
            .records
            .get(&name)
            .filter(|r| join && r.group && r.is_active(now));
        let mut record = match existing {
            Some(r) => {
                let mut r = r.clone();
                r.members
                    .retain(|m| m.address != address && m.expires > now);
                r
            }
            None => Record {
                name,
                group: claim.entry.is_group(),
                nb_flags: claim.entry.flags,
                members: Vec::new(),
                released: false,
            },
        };
        record.nb_flags = claim.entry.flags;
        let new_here = !self
            .records
            .get(&name)
            .is_some_and(|r| r.members.iter().any(|m| m.address == address));
        let full = record.members.len() >= self.config.max_group_members
            || (!self.records.contains_key(&name) && self.records.len() >= self.config.max_names)
            || (new_here
                && self.held.get(&address).copied().unwrap_or(0) >= self.config.max_per_address);
        if full {
            return self.refuse(claim, Rcode::RFS_ERR);
        }
        record.members.push(member);
        self.counters.granted += 1;
        self.set(record.clone());
        self.persist(Change::Put(record));
        let packet = Packet::registration_response(
            claim.trn_id,
            claim.wire.clone(),
            Rcode::OK,
            ttl,
            claim.entry,
        );
        self.reply(claim.from, &packet);
    }

    fn release(
        &mut self,
        now: SystemTime,
        src: SocketAddrV4,
        trn_id: u16,
        wire: WireName,
        entry: NbEntry,
    ) {
        let name = wire.name;
        let Some(mut record) = self.records.get(&name).filter(|r| !r.released).cloned() else {
            let packet = Packet::release_response(trn_id, wire, Rcode::NAM_ERR, entry);
            return self.reply(src, &packet);
        };
        let from = *src.ip();
        if !record.members.iter().any(|m| m.address == from) {
            let packet = Packet::release_response(trn_id, wire, Rcode::RFS_ERR, entry);
            return self.reply(src, &packet);
        }
        self.counters.released += 1;
        if record.group && record.live(now).any(|m| m.address != from) {
            record.members.retain(|m| m.address != from);
        } else {
            // The tombstone keeps the last expiry and no live holder.
            record.released = true;
            let end = record.expires().unwrap_or(now);
            record.members = vec![Member {
                address: from,
                expires: end,
            }];
        }
        self.set(record.clone());
        self.persist(Change::Put(record));
        let packet = Packet::release_response(trn_id, wire, Rcode::OK, entry);
        self.reply(src, &packet);
    }

    fn ttl(&self, asked: u32) -> u32 {
        if asked == 0 {
            self.config.max_ttl
        } else {
            asked.clamp(self.config.min_ttl, self.config.max_ttl)
        }
    }

    fn wack(&mut self, claim: &Claim, request_flags: u16) {
        let packet = Packet::wack(
            claim.trn_id,
            claim.wire.clone(),
            self.config.wack_ttl,
            request_flags,
        );
        self.reply(claim.from, &packet);
    }

    fn refuse(&mut self, claim: &Claim, rcode: Rcode) {
        self.counters.refused += 1;
        let packet =
            Packet::registration_response(claim.trn_id, claim.wire.clone(), rcode, 0, claim.entry);
        self.reply(claim.from, &packet);
    }

    fn reply(&mut self, to: SocketAddrV4, packet: &Packet) {
        if let Ok(packet) = packet.to_bytes() {
            self.actions.push_back(Action::Reply { to, packet });
        }
    }

    fn persist(&mut self, change: Change) {
        self.actions.push_back(Action::Persist(change));
    }

    /// Replaces the record of its name, keeping the per-address counts.
    fn set(&mut self, record: Record) {
        self.unset(&record.name);
        for m in &record.members {
            *self.held.entry(m.address).or_default() += 1;
        }
        self.records.insert(record.name, record);
    }

    fn unset(&mut self, name: &NetbiosName) {
        if let Some(old) = self.records.remove(name) {
            for m in &old.members {
                if let Some(n) = self.held.get_mut(&m.address) {
                    *n -= 1;
                    if *n == 0 {
                        self.held.remove(&m.address);
                    }
                }
            }
        }
    }
}

/// The NB entry and TTL a registration, refresh or release claims.
fn claimed(request: &Packet) -> Option<(NbEntry, u32)> {
    request.additional.iter().find_map(|rr| match &rr.rdata {
        RData::Nb(entries) => entries.first().map(|e| (*e, rr.ttl)),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
