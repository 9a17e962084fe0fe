//! A simulated LAN for the tests: hosts with their name tables (and WINS
//! clients) on broadcast segments, an optional WINS server, all stepped with
//! simulated time and no latency. Every loop is bounded, so a livelock
//! fails the test instead of hanging it.
//!
//! A host hears a broadcast when the broadcast address is its subnet's: the
//! hosts of [`Lan::new`] share one /24, and [`Lan::with_prefix`] cuts the
//! addresses into smaller subnets, one segment each.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use netsend_wire::nbns::{NbEntry, Opcode, Packet, RData, Rcode};
use netsend_wire::{CodePage, NetbiosName};

use ipnet::IpNet;

use crate::browse::{hear, is_request_for, Announcer, HostList};
use crate::interface::Interface;
use crate::mailslot::{receive, Received};
use crate::plan::{Next, ResolvePlan};
use crate::registration::{NameTable, RegistrationConfig};
use crate::relay::{RelayRule, Verdict};
use crate::responder::{answer, Host};
use crate::wins::WinsClient;

/// `address` at the name service port.
pub(crate) fn at(address: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(address, 137)
}

/// The interface of a host at `address` in a subnet of `prefix` bits.
pub(crate) fn interface(address: Ipv4Addr, prefix: u8) -> Interface {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Interface {
        address,
        broadcast: Some(Ipv4Addr::from(u32::from(address) | !mask)),
        netmask: Some(Ipv4Addr::from(mask)),
        mac: [0; 6],
    }
}

/// A WINS server as nmbd runs one: the first host to register a unique name
/// holds it, group names are shared, and unicast queries are answered from
/// the database (positive, or NAM_ERR).
#[derive(Debug)]
pub(crate) struct WinsServer {
    pub(crate) address: Ipv4Addr,
    /// Registered names: name, owner, group.
    pub(crate) names: Vec<(NetbiosName, Ipv4Addr, bool)>,
}

impl WinsServer {
    pub(crate) fn new(address: Ipv4Addr) -> Self {
        Self {
            address,
            names: Vec::new(),
        }
    }

    /// The server's reply to `bytes` from `src`, if it sends one.
    fn answer(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let request = Packet::parse(bytes).ok()?;
        if request.flags.response {
            return None;
        }
        let name = request.question()?.name.name;
        let claimed = request.additional.first().and_then(|rr| match &rr.rdata {
            RData::Nb(entries) => entries.first().copied(),
            _ => None,
        });
        let trn_id = request.trn_id;
        let reply = match request.flags.opcode() {
            Opcode::QUERY => {
                let owners: Vec<NbEntry> = self
                    .names
                    .iter()
                    .filter(|(n, _, _)| *n == name)
                    .map(|&(_, owner, group)| {
                        NbEntry::new(group, netsend_wire::nbns::NodeType::H, owner)
                    })
                    .collect();
                if owners.is_empty() {
                    Packet::negative_query_response(trn_id, name.into())
                } else {
                    Packet::positive_query_response(trn_id, name.into(), 600, owners)
                }
            }
            Opcode::REGISTRATION | Opcode::REFRESH | Opcode::REFRESH_ALT => {
                let entry = claimed?;
                let group = entry.flags & 0x8000 != 0;
                let holder = self
                    .names
                    .iter()
                    .find(|(n, owner, g)| *n == name && *owner != entry.address && !(*g && group));
                if let Some(&(_, owner, _)) = holder {
                    let refused = NbEntry {
                        address: owner,
                        ..entry
                    };
                    Packet::registration_response(trn_id, name.into(), Rcode::ACT_ERR, 0, refused)
                } else {
                    if !self
                        .names
                        .iter()
                        .any(|(n, o, _)| *n == name && *o == entry.address)
                    {
                        self.names.push((name, entry.address, group));
                    }
                    Packet::registration_response(trn_id, name.into(), Rcode::OK, 600, entry)
                }
            }
            Opcode::RELEASE => {
                let entry = claimed?;
                self.names
                    .retain(|(n, o, _)| !(*n == name && *o == entry.address));
                Packet::release_response(trn_id, name.into(), Rcode::OK, entry)
            }
            _ => return None,
        };
        reply.to_bytes().ok()
    }
}

/// Hosts on simulated broadcast segments, stepped with simulated time.
pub(crate) struct Lan {
    pub(crate) now: Instant,
    pub(crate) hosts: Vec<NameTable>,
    /// Hosts cut off the network (they neither send nor hear).
    pub(crate) cut: Vec<bool>,
    /// Each host's interface: its address and subnet.
    pub(crate) interfaces: Vec<Interface>,
    /// Each host's WINS client, when it registers with the server.
    pub(crate) wins_clients: Vec<Option<WinsClient>>,
    /// The WINS server, if the network has one.
    pub(crate) wins: Option<WinsServer>,
}

impl Lan {
    /// Hosts at `addresses`, all on one /24 segment.
    pub(crate) fn new(addresses: &[[u8; 4]]) -> Self {
        Self::with_prefix(addresses, 24)
    }

    /// Hosts at `addresses` in subnets of `prefix` bits: hosts of one subnet
    /// share a segment, and hear no other segment's broadcasts.
    pub(crate) fn with_prefix(addresses: &[[u8; 4]], prefix: u8) -> Self {
        Self {
            now: Instant::now(),
            hosts: addresses
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    NameTable::new(Ipv4Addr::from(*a), RegistrationConfig::default(), i as u64)
                })
                .collect(),
            cut: vec![false; addresses.len()],
            interfaces: addresses
                .iter()
                .map(|a| interface(Ipv4Addr::from(*a), prefix))
                .collect(),
            wins_clients: addresses.iter().map(|_| None).collect(),
            wins: None,
        }
    }

    /// Adds a WINS server at `server`, and a WINS client of it to every host.
    pub(crate) fn with_wins(mut self, server: Ipv4Addr) -> Self {
        self.wins = Some(WinsServer::new(server));
        for (i, client) in self.wins_clients.iter_mut().enumerate() {
            let address = self.interfaces[i].address;
            *client = Some(WinsClient::new(server, address, Default::default()));
        }
        self
    }

    /// The host at `address`, if one is there and on the network.
    fn host_at(&self, address: Ipv4Addr) -> Option<usize> {
        (0..self.hosts.len()).find(|&i| self.interfaces[i].address == address && !self.cut[i])
    }

    /// The hosts other than `from` that hear a broadcast to `target`.
    fn hearing(&self, from: usize, target: Ipv4Addr) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|&i| i != from && !self.cut[i] && self.interfaces[i].broadcast == Some(target))
            .collect()
    }

    /// Host `to`'s name service answer to `request`, by the responder rules.
    fn answer_of(&self, to: usize, request: &Packet) -> Option<Vec<u8>> {
        let names = self.hosts[to].owned();
        let host = Host {
            names: &names,
            address: self.interfaces[to].address,
            mac: [0; 6],
        };
        answer(request, &host).and_then(|reply| reply.to_bytes().ok())
    }

    /// Delivers every broadcast of the name tables to the other hosts of the
    /// segment, lets each answer with the responder rules (and feeds
    /// releases to its table), carries WINS traffic to the server and back,
    /// and advances time; bounded, so a livelock fails. Stops once nothing
    /// is due before `until`.
    pub(crate) fn drive_until(&mut self, until: Instant) {
        for _ in 0..1000 {
            let mut sent = false;
            for from in 0..self.hosts.len() {
                while let Some(packet) = self.hosts[from].poll_transmit() {
                    sent = true;
                    if self.cut[from] {
                        continue;
                    }
                    let request = Packet::parse(&packet).unwrap();
                    let sender = self.interfaces[from].address;
                    let target = self.interfaces[from].broadcast.unwrap();
                    for to in self.hearing(from, target) {
                        self.hosts[to].handle_datagram(self.now, at(sender), &packet);
                        if let Some(bytes) = self.answer_of(to, &request) {
                            let replier = self.interfaces[to].address;
                            self.hosts[from].handle_datagram(self.now, at(replier), &bytes);
                        }
                    }
                }
                sent |= self.carry_wins(from);
            }
            let tables = self.hosts.iter().filter_map(NameTable::poll_timeout);
            let clients = self.wins_clients.iter().flatten();
            let next = tables
                .chain(clients.filter_map(WinsClient::poll_timeout))
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.timeout_all();
                }
                _ if !sent => return,
                _ => {}
            }
        }
        panic!("the simulated LAN did not settle");
    }

    /// Carries host `from`'s WINS requests to the server and its answers
    /// back; whether anything was sent.
    fn carry_wins(&mut self, from: usize) -> bool {
        let mut sent = false;
        let Some(client) = self.wins_clients[from].as_mut() else {
            return false;
        };
        while let Some(packet) = client.poll_transmit() {
            sent = true;
            let server = self.wins.as_mut().filter(|_| !self.cut[from]);
            if let Some(reply) = server.and_then(|s| s.answer(&packet)) {
                let address = client.server();
                client.handle_datagram(self.now, address, &reply);
            }
        }
        sent
    }

    fn timeout_all(&mut self) {
        for h in &mut self.hosts {
            h.handle_timeout(self.now);
        }
        for c in self.wins_clients.iter_mut().flatten() {
            c.handle_timeout(self.now);
        }
    }

    /// [`Lan::drive_until`] with no end but quiet.
    pub(crate) fn drive(&mut self) {
        let far = self.now + Duration::from_secs(30);
        self.drive_until(far);
    }

    /// Lets `d` pass (timers due meanwhile fire).
    pub(crate) fn wait(&mut self, d: Duration) {
        let until = self.now + d;
        self.drive_until(until);
        self.now = until;
        self.timeout_all();
        self.drive_until(until);
    }

    /// Registers `name` (unique) on host `i`, by broadcast and with the WINS
    /// server when the host has a client, and lets the network settle.
    pub(crate) fn register(&mut self, i: usize, name: NetbiosName, trn_id: u16) {
        let now = self.now;
        self.hosts[i].register(now, name, false, trn_id);
        if let Some(client) = self.wins_clients[i].as_mut() {
            client.register(now, name, false, trn_id);
        }
        self.drive();
    }

    /// Drives `plan` from host `from` until it decides: its queries go to
    /// the WINS server, to a host, or as broadcasts to the hosts of the
    /// segment, which answer with the responder rules; time moves to each
    /// wait's end. Returns the decision and how long it took.
    pub(crate) fn resolve(&mut self, from: usize, plan: &mut ResolvePlan) -> (Next, Duration) {
        let start = self.now;
        for _ in 0..1000 {
            match plan.poll(self.now) {
                Next::Send(query) => {
                    if self.cut[from] {
                        continue;
                    }
                    let target = *query.target.ip();
                    let mut replies = Vec::new();
                    if let Some(server) = self.wins.as_mut().filter(|s| s.address == target) {
                        replies.extend(server.answer(&query.bytes).map(|r| (target, r)));
                    } else {
                        let request = Packet::parse(&query.bytes).unwrap();
                        let to = match self.host_at(target) {
                            Some(host) => vec![host],
                            None => self.hearing(from, target),
                        };
                        for to in to {
                            let replier = self.interfaces[to].address;
                            replies.extend(self.answer_of(to, &request).map(|r| (replier, r)));
                        }
                    }
                    for (src, reply) in replies {
                        plan.handle_datagram(self.now, src, &reply);
                    }
                }
                Next::Wait(t) => {
                    self.now = self.now.max(t);
                    plan.handle_timeout(self.now);
                }
                decided => return (decided, self.now - start),
            }
        }
        panic!("the resolution plan did not decide");
    }

    /// Carries MESSNGR datagrams (host, target address, bytes) through the
    /// network, the segments joined by a router: a broadcast reaches every
    /// host of its segment, the sender included (a socket hears its own
    /// broadcast), a unicast reaches its host, and each host applies the
    /// relay rule with its `relay_from` and re-broadcasts what it says.
    /// Returns the messages each host took; bounded, so a relay loop fails.
    pub(crate) fn carry_datagrams(
        &self,
        relay_from: &[Vec<IpNet>],
        first: Vec<(usize, Ipv4Addr, Vec<u8>)>,
    ) -> Vec<Vec<Received>> {
        let workgroup = NetbiosName::new("WORKGROUP", 0).unwrap();
        let mut taken = vec![Vec::new(); self.hosts.len()];
        let mut queue = std::collections::VecDeque::from(first);
        let mut steps = 0;
        while let Some((from, target, bytes)) = queue.pop_front() {
            steps += 1;
            assert!(steps < 1000, "datagrams loop between relays");
            if self.cut[from] {
                continue;
            }
            let hearing = (0..self.hosts.len()).filter(|&i| {
                let iface = &self.interfaces[i];
                !self.cut[i] && (iface.address == target || iface.broadcast == Some(target))
            });
            for to in hearing {
                let Some(got) = receive(&bytes, &workgroup, &|_| false, CodePage::Cp850) else {
                    continue;
                };
                let rule = RelayRule {
                    interfaces: &self.interfaces[to..=to],
                    relay_from: &relay_from[to],
                };
                let peer = self.interfaces[from].address;
                if let Verdict::Take { relay_to } = rule.judge(peer, got.origin, got.addressed) {
                    for (_, broadcast) in relay_to {
                        queue.push_back((to, broadcast, bytes.clone()));
                    }
                    taken[to].push(got);
                }
            }
        }
        taken
    }

    /// Steps the browsing of every host until `until`: each host's
    /// announcer broadcasts on its segment (heard by every host there, the
    /// sender included), each hearer feeds announcements to its host list and
    /// requests for its workgroup to its announcer. Bounded.
    pub(crate) fn drive_browse(
        &mut self,
        announcers: &mut [Option<Announcer>],
        lists: &mut [HostList],
        until: Instant,
    ) {
        let workgroup = NetbiosName::new("WORKGROUP", 0).unwrap();
        for _ in 0..10_000 {
            for from in 0..announcers.len() {
                let Some(a) = announcers[from].as_mut() else {
                    continue;
                };
                let mut sent = Vec::new();
                while let Some(bytes) = a.poll_transmit() {
                    sent.push(bytes);
                }
                if self.cut[from] {
                    continue;
                }
                let target = self.interfaces[from].broadcast;
                let peer = self.interfaces[from].address;
                for bytes in sent {
                    let heard = hear(&bytes).expect("our own datagrams decode");
                    for to in (0..lists.len())
                        .filter(|&i| !self.cut[i] && self.interfaces[i].broadcast == target)
                    {
                        let _ = lists[to].observe(self.now, peer, &heard, CodePage::Cp850);
                        if to != from && is_request_for(&heard, &workgroup) {
                            if let Some(b) = announcers[to].as_mut() {
                                b.handle_request(self.now);
                            }
                        }
                    }
                }
            }
            let next = announcers
                .iter()
                .flatten()
                .filter_map(Announcer::poll_timeout)
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    for a in announcers.iter_mut().flatten() {
                        a.handle_timeout(self.now);
                    }
                }
                // Everything queued was carried at the top of this round.
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
        panic!("the simulated browsing did not settle");
    }
}
